package main

import (
	"context"
	"net/url"

	"github.com/raftkv/raftkv/httpapi"
	"github.com/raftkv/raftkv/kvstore"
	"github.com/raftkv/raftkv/raftnode"
)

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
	return out
}

func urlHost(raw string) (string, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return "", err
	}
	return u.Hostname(), nil
}
