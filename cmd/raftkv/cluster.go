package main

import (
	"context"
	"fmt"
	"net/url"
	"strconv"

	"github.com/raftkv/raftkv/httpapi"
	"github.com/raftkv/raftkv/kvstore"
	"github.com/raftkv/raftkv/raftnode"
)

// healthLag is how far the applied index may trail the commit index
// before the member reports itself unhealthy.
const healthLag = 1000

// store adapts kvstore to the HTTP layer's interface.
type store struct{ *kvstore.Store }

func (s store) Get(ctx context.Context, key string, o httpapi.ReadOptions) ([]byte, error) {
	return s.Store.Get(ctx, key, kvstore.ReadOptions{Stale: o.Stale, MinIndex: o.MinIndex})
}

func (s store) Digest() httpapi.Digest {
	index, keys, hash := s.Store.Digest()
	return httpapi.Digest{AppliedIndex: index, Keys: keys, Hash: hash}
}

// cluster adapts raftnode's membership to the HTTP layer's interface.
type cluster struct {
	node  *raftnode.Node
	store *kvstore.Store
}

func (c cluster) AddMember(ctx context.Context, id uint64, peerURL string) error {
	return c.node.AddMember(ctx, id, peerURL)
}

func (c cluster) RemoveMember(ctx context.Context, id uint64) error {
	return c.node.RemoveMember(ctx, id)
}

func (c cluster) Health() error {
	st := c.node.Status()
	applied := c.store.AppliedIndex()
	switch {
	case st.Leader == 0:
		return fmt.Errorf("no leader")
	case st.CommitIndex > applied+healthLag:
		return fmt.Errorf("applied index %d is %d entries behind commit index %d", applied, st.CommitIndex-applied, st.CommitIndex)
	}
	return nil
}

func (c cluster) Status() httpapi.Status {
	st := c.node.Status()
	out := httpapi.Status{
		ID:            st.ID,
		Leader:        st.Leader,
		Term:          st.Term,
		CommitIndex:   st.CommitIndex,
		AppliedIndex:  c.store.AppliedIndex(),
		SnapshotIndex: st.SnapshotIndex,
	}
	for _, m := range st.Members {
		hm := httpapi.Member{ID: m.ID, PeerURLs: []string{m.PeerURL}}
		if m.ClientURL != "" {
			hm.ClientURLs = []string{m.ClientURL}
		}
		out.Members = append(out.Members, hm)
	}
	if len(st.Progress) > 0 {
		out.Progress = make(map[string]httpapi.Progress, len(st.Progress))
		for id, pr := range st.Progress {
			out.Progress[strconv.FormatUint(id, 10)] = httpapi.Progress{Match: pr.Match, Next: pr.Next, State: pr.State}
		}
	}
	return out
}

func urlHost(raw string) (string, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return "", err
	}
	return u.Hostname(), nil
}
