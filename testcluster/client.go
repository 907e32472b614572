package testcluster

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"
)

const (
	// statusTimeout bounds one GET /status, so one hung node cannot stall a poll.
	statusTimeout = 2 * time.Second
)

// Status is the JSON body of GET /status.
type Status struct {
	ID            uint64   `json:"id"`
	Leader        uint64   `json:"leader"` // 0: no leader known
	Term          uint64   `json:"term"`
	CommitIndex   uint64   `json:"commitIndex"`
	AppliedIndex  uint64   `json:"appliedIndex"`
	SnapshotIndex uint64   `json:"snapshotIndex"`
	Members       []Member `json:"members"`
	// Progress is, on the leader, each follower's replication progress
	// by member id.
	Progress map[string]Progress `json:"progress,omitempty"`
	// ClusterLevel is the feature level the member's group runs at.
	ClusterLevel uint32 `json:"clusterLevel"`
	// ClusterID is the member's cluster id, in hex.
	ClusterID string `json:"clusterId"`
	// DataBytes is the size of the member's keys as its space quota
	// counts them; QuotaBytes is that quota (0: none).
	DataBytes  int64 `json:"dataBytes"`
	QuotaBytes int64 `json:"quotaBytes"`
	// Build is the binary the member runs.
	Build struct {
		Level uint32 `json:"level"` // the feature level it speaks
	} `json:"build"`
	// Shard is a shard group member's view of its buckets; nil on other
	// members.
	Shard *ShardStatus `json:"shard,omitempty"`
}

// ShardStatus is the "shard" section of a shard group member's status.
type ShardStatus struct {
	Group         uint64       `json:"group"`
	ConfigVersion uint64       `json:"configVersion"`
	Buckets       BucketStates `json:"buckets"`
}

// BucketStates lists a shard group's buckets by state, each ascending.
type BucketStates struct {
	Serving   []int `json:"serving"`
	Pulling   []int `json:"pulling"`
	BePulling []int `json:"bePulling"`
	GCing     []int `json:"gcing"`
}

// Moving is the number of buckets in flight: pulling, being pulled or
// waiting for the old owner's delete.
func (b BucketStates) Moving() int { return len(b.Pulling) + len(b.BePulling) + len(b.GCing) }

// Progress is a follower's replication progress as its leader sees it.
type Progress struct {
	Match uint64 `json:"match"`
	Next  uint64 `json:"next"`
	State string `json:"state"` // probe|replicate|snapshot
}

// Member is one entry of Status.Members.
type Member struct {
	ID        uint64   `json:"id"`
	PeerURLs  []string `json:"peerURLs"`
	IsLearner bool     `json:"isLearner"`
	// ClientURLs is the client URL the member published; empty until its
	// publication is applied.
	ClientURLs []string `json:"clientURLs"`
}

// Voters returns the number of members that are not learners.
func (s Status) Voters() int {
	n := 0
	for _, m := range s.Members {
		if !m.IsLearner {
			n++
		}
	}
	return n
}

// MemberIDs returns the sorted ids of s.Members.
func (s Status) MemberIDs() []uint64 {
	ids := make([]uint64, 0, len(s.Members))
	for _, m := range s.Members {
		ids = append(ids, m.ID)
	}
	slices.Sort(ids)
	return ids
}

// Response is an HTTP response read in full.
type Response struct {
	Status int
	Header http.Header
	Body   []byte
}

// Do sends one request to node id's client API. path is sent as is (e.g. "/4",
// "/key/foo"); body may be nil. The error is a transport error or a timeout.
func (c *Cluster) Do(id int, method, path string, body []byte) (Response, error) {
	return c.do(context.Background(), method, c.ClientURL(id)+path, body)
}

func (c *Cluster) do(ctx context.Context, method, rawURL string, body []byte) (Response, error) {
	var r io.Reader
	if body != nil {
		r = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, rawURL, r)
	if err != nil {
		return Response{}, err
	}
	resp, err := c.client.Do(req)
	if err != nil {
		return Response{}, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return Response{}, fmt.Errorf("%s %s: reading body: %w", method, rawURL, err)
	}
	return Response{Status: resp.StatusCode, Header: resp.Header, Body: b}, nil
}

// keyURL is the URL of key on node id; '/' in the key stays a path separator.
func (c *Cluster) keyURL(id int, prefix, key string) string {
	u, err := url.Parse(c.ClientURL(id))
	if err != nil {
		panic(err)
	}
	u.Path = prefix + key
	return u.String()
}

// Put writes key=val through node id (PUT /<key>) and returns the HTTP status.
func (c *Cluster) Put(id int, key string, val []byte) (int, error) {
	if val == nil {
		val = []byte{}
	}
	r, err := c.do(context.Background(), http.MethodPut, c.keyURL(id, "/", key), val)
	return r.Status, err
}

// Get reads key through node id (GET /<key>) and returns the body and HTTP status.
func (c *Cluster) Get(id int, key string) ([]byte, int, error) {
	r, err := c.do(context.Background(), http.MethodGet, c.keyURL(id, "/", key), nil)
	return r.Body, r.Status, err
}

// Delete deletes key through node id (DELETE /key/<key>) and returns the HTTP status.
func (c *Cluster) Delete(id int, key string) (int, error) {
	r, err := c.do(context.Background(), http.MethodDelete, c.keyURL(id, "/key/", key), nil)
	return r.Status, err
}

// Status returns node id's GET /status.
func (c *Cluster) Status(id int) (Status, error) {
	ctx, cancel := context.WithTimeout(context.Background(), statusTimeout)
	defer cancel()
	r, err := c.do(ctx, http.MethodGet, c.ClientURL(id)+"/status", nil)
	if err != nil {
		return Status{}, err
	}
	if r.Status != http.StatusOK {
		return Status{}, fmt.Errorf("node %d: GET /status: %d %s", id, r.Status, bytes.TrimSpace(r.Body))
	}
	var s Status
	if err := json.Unmarshal(r.Body, &s); err != nil {
		return Status{}, fmt.Errorf("node %d: GET /status: %w: %q", id, err, r.Body)
	}
	return s, nil
}

// statuses polls GET /status on every live node; nodes that fail are in errs.
func (c *Cluster) statuses() (map[int]Status, []string) {
	st := make(map[int]Status)
	var errs []string
	for _, id := range c.Live() {
		s, err := c.Status(id)
		if err != nil {
			errs = append(errs, fmt.Sprintf("node %d: %v", id, err))
			continue
		}
		st[id] = s
	}
	return st, errs
}

// WaitLeader polls the live nodes until one of them, L, reports itself leader and a
// majority of L's voting members report L as leader; it returns L.
func (c *Cluster) WaitLeader(t testing.TB, timeout time.Duration) int {
	t.Helper()
	var leader int
	WaitFor(t, timeout, "a leader agreed on by a majority", func() error {
		st, errs := c.statuses()
		votes := make(map[uint64]int)
		for _, s := range st {
			if s.Leader != 0 {
				votes[s.Leader]++
			}
		}
		for l, n := range votes {
			ls, ok := st[int(l)]
			if !ok || ls.Leader != l {
				continue
			}
			voters := ls.Voters()
			if voters == 0 {
				voters = len(c.Live())
			}
			if n >= voters/2+1 {
				leader = int(l)
				return nil
			}
		}
		return fmt.Errorf("statuses %s; errors %v", summarize(st), errs)
	})
	return leader
}

// WaitConverged polls the live nodes until all of them answer /status with the same
// commit and applied index, at least the highest commit index seen in the first poll;
// it returns that applied index.
func (c *Cluster) WaitConverged(t testing.TB, timeout time.Duration) uint64 {
	t.Helper()
	var target, applied uint64
	first := true
	WaitFor(t, timeout, "all live nodes converged", func() error {
		st, errs := c.statuses()
		if first {
			for _, s := range st {
				target = max(target, s.CommitIndex)
			}
			first = false
		}
		if len(errs) > 0 {
			return fmt.Errorf("errors %v", errs)
		}
		if len(st) == 0 {
			return fmt.Errorf("no live node")
		}
		var want *Status
		for _, s := range st {
			if want == nil {
				want = &s
			}
			if s.AppliedIndex != want.AppliedIndex || s.CommitIndex != want.CommitIndex || s.AppliedIndex < target {
				return fmt.Errorf("want applied index >= %d everywhere; statuses %s", target, summarize(st))
			}
		}
		applied = want.AppliedIndex
		return nil
	})
	return applied
}

// WaitValue polls GET key on node id until it returns 200 with want. When
// that takes longer than timeout it fails the test with the last answer
// and every node's status at that moment (the leader's with each
// follower's progress): the log tails printed later cover the shutdown.
func (c *Cluster) WaitValue(t testing.TB, id int, key string, want []byte, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	WaitFor(t, timeout, fmt.Sprintf("node %d to serve %q", id, key), func() error {
		got, status, err := c.Get(id, key)
		switch {
		case err != nil:
		case status != http.StatusOK:
			err = fmt.Errorf("status %d: %s", status, bytes.TrimSpace(got))
		case !bytes.Equal(got, want):
			err = fmt.Errorf("got %q, want %q", clip(got), clip(want))
		}
		if err != nil && time.Now().After(deadline) { // WaitFor's last try
			st, _ := c.statuses()
			err = fmt.Errorf("%w; statuses %s", err, summarize(st))
		}
		return err
	})
}

// summarize renders statuses compactly for error messages, ordered by node id.
func summarize(st map[int]Status) string {
	ids := make([]int, 0, len(st))
	for id := range st {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	var b strings.Builder
	for _, id := range ids {
		s := st[id]
		fmt.Fprintf(&b, "[node %d: leader=%d term=%d commit=%d applied=%d snapshot=%d members=%v",
			id, s.Leader, s.Term, s.CommitIndex, s.AppliedIndex, s.SnapshotIndex, s.MemberIDs())
		for _, f := range slices.Sorted(maps.Keys(s.Progress)) {
			pr := s.Progress[f]
			fmt.Fprintf(&b, " %s:%s/%d/%d", f, pr.State, pr.Match, pr.Next)
		}
		b.WriteString("] ")
	}
	return strings.TrimSpace(b.String())
}

// clip shortens b for error messages.
func clip(b []byte) []byte {
	if len(b) > 64 {
		return append(b[:64:64], "..."...)
	}
	return b
}
