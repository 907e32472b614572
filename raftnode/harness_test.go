package raftnode

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/raftkv/raftkv/internal/testutil"
)

// testApp is the smallest application: its state is the list of payloads
// it applied, in order, and a snapshot's data file is that list as JSON.
type testApp struct {
	mu        sync.Mutex
	vals      []string
	index     uint64 // Commit.Index of the last commit applied
	snapshots int    // snapshot commits applied
	// lens maps the index of each commit applied to the number of values
	// held after it.
	lens map[uint64]int
	// delay is how long applying a commit with entries takes.
	delay time.Duration
}

func (a *testApp) apply(c *Commit) error {
	if a.delay > 0 && len(c.Entries) > 0 {
		time.Sleep(a.delay)
	}
	var restored []string
	if c.SnapshotPath != "" {
		data, err := os.ReadFile(c.SnapshotPath)
		if err != nil {
			return err
		}
		if err := json.Unmarshal(data, &restored); err != nil {
			return fmt.Errorf("snapshot %s: %w", c.SnapshotPath, err)
		}
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if c.SnapshotPath != "" {
		a.vals = restored
		a.snapshots++
	}
	for _, e := range c.Entries {
		a.vals = append(a.vals, string(e.Data))
	}
	a.index = c.Index
	if a.lens == nil {
		a.lens = map[uint64]int{}
	}
	a.lens[c.Index] = len(a.vals)
	return nil
}

// snapshot is the application's SnapshotFunc.
func (a *testApp) snapshot() (func(io.Writer) error, error) {
	a.mu.Lock()
	vals := slices.Clone(a.vals)
	a.mu.Unlock()
	return func(w io.Writer) error { return json.NewEncoder(w).Encode(vals) }, nil
}

func (a *testApp) snapshotsApplied() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.snapshots
}

func (a *testApp) state() (vals []string, index uint64) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return slices.Clone(a.vals), a.index
}

// testMember is one Node with its application.
type testMember struct {
	id      uint64
	dir     string
	node    *Node
	app     *testApp
	appErr  error
	appDone chan struct{}
}

// testCluster runs members in this process on a fake network, each with
// real WAL and snapshot files in its own t.TempDir.
type testCluster struct {
	t       *testing.T
	net     *network
	cfg     Config // the template of every member's Config
	peers   []string
	members []*testMember // members[i] has id i+1; nil while stopped
	dirs    []string
	// prepare, if set, is called with each Node before it starts.
	prepare func(*Node)
	// appDelay is how long each member's application takes to apply a
	// commit with entries.
	appDelay time.Duration
	// peersOf, if set, gives member id's own --cluster (Config.Peers)
	// instead of peers: how it reaches each other member.
	peersOf func(id uint64) []string
}

// fastConfig is a Config for tests: short ticks, and no snapshot unless a
// test asks for one.
func fastConfig() Config {
	return Config{
		TickInterval:  20 * time.Millisecond,
		ElectionTicks: 10,
		SnapshotCount: 1 << 30,
		PurgeInterval: time.Hour,
	}
}

func peerURLOf(id uint64) string { return fmt.Sprintf("http://member-%d.test:2380", id) }

// newTestCluster starts size members with cfg; each option may change
// the cluster (its network, prepare) before they start.
func newTestCluster(t *testing.T, size int, cfg Config, options ...func(*testCluster)) *testCluster {
	t.Helper()
	c := &testCluster{t: t, net: newNetwork(), cfg: cfg}
	root := t.TempDir()
	for i := range size {
		c.peers = append(c.peers, peerURLOf(uint64(i+1)))
		c.dirs = append(c.dirs, filepath.Join(root, fmt.Sprintf("member-%d", i+1)))
	}
	c.members = make([]*testMember, size)
	for _, o := range options {
		o(c)
	}
	t.Cleanup(func() {
		for id := range c.members {
			c.stop(uint64(id + 1))
		}
	})
	for i := range size {
		c.start(uint64(i+1), false)
	}
	return c
}

// start starts member id from its data dir; join says it joins a running
// cluster.
func (c *testCluster) start(id uint64, join bool) *testMember {
	c.t.Helper()
	cfg := c.cfg
	cfg.ID, cfg.Peers, cfg.DataDir, cfg.Join = id, c.peers, c.dirs[id-1], join
	if c.peersOf != nil {
		cfg.Peers = c.peersOf(id)
	}
	cfg.ClientURL = fmt.Sprintf("http://member-%d.test:2379", id)
	cfg.Logger = zaptest.NewLogger(c.t).Named(fmt.Sprintf("m%d", id))
	cfg.NewTransport = c.net.transport
	n, err := New(cfg)
	if err != nil {
		c.t.Fatalf("member %d: %v", id, err)
	}
	if c.prepare != nil {
		c.prepare(n)
	}
	m := &testMember{id: id, dir: cfg.DataDir, node: n, app: &testApp{delay: c.appDelay}, appDone: make(chan struct{})}
	go func() {
		defer close(m.appDone)
		for cm := range n.Commits() {
			if err := m.app.apply(cm); err != nil && m.appErr == nil {
				m.appErr = err
			}
			cm.Applied()
		}
	}()
	if err := n.Start(m.app.snapshot); err != nil {
		c.t.Fatalf("start member %d: %v", id, err)
	}
	c.members[id-1] = m
	return m
}

// stop stops member id, if it runs, and its application.
func (c *testCluster) stop(id uint64) {
	m := c.members[id-1]
	if m == nil {
		return
	}
	m.node.Stop()
	<-m.appDone
	if m.appErr != nil {
		c.t.Errorf("member %d application: %v", id, m.appErr)
	}
	c.members[id-1] = nil
}

// addMember grows the cluster by member len+1, added through member via,
// and starts it.
func (c *testCluster) addMember(via uint64) *testMember {
	c.t.Helper()
	id := uint64(len(c.peers) + 1)
	c.peers = append(c.peers, peerURLOf(id))
	c.dirs = append(c.dirs, filepath.Join(filepath.Dir(c.dirs[0]), fmt.Sprintf("member-%d", id)))
	c.members = append(c.members, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.members[via-1].node.AddMember(ctx, id, c.peers[id-1]); err != nil {
		c.t.Fatalf("add member %d: %v", id, err)
	}
	return c.start(id, true)
}

// running returns the members started and not stopped, by Stop or by
// themselves.
func (c *testCluster) running() []*testMember {
	var out []*testMember
	for _, m := range c.members {
		if m == nil {
			continue
		}
		select {
		case <-m.node.Done():
		default:
			out = append(out, m)
		}
	}
	return out
}

// waitLeader returns the leader that a majority of the members see and
// no running member contradicts (a cut-off member may see none).
func (c *testCluster) waitLeader() *testMember {
	c.t.Helper()
	var lead uint64
	c.eventually(15*time.Second, func() error {
		lead = 0
		seen := 0
		for _, m := range c.running() {
			l := m.node.Leader()
			if l == 0 {
				continue
			}
			if lead != 0 && l != lead {
				return fmt.Errorf("member %d sees leader %d, another %d", m.id, l, lead)
			}
			lead = l
			seen++
		}
		if lead == 0 || seen <= len(c.members)/2 || !slices.ContainsFunc(c.running(), func(m *testMember) bool { return m.id == lead }) {
			return fmt.Errorf("no running leader seen by a majority (leader %d, seen by %d)", lead, seen)
		}
		return nil
	})
	return c.members[lead-1]
}

// eventually polls f until it returns nil, and fails the test with its
// last error after d (testutil.WaitFor).
func (c *testCluster) eventually(d time.Duration, f func() error) {
	c.t.Helper()
	testutil.WaitFor(c.t, d, "a condition", f)
}

// put proposes val through the current leader until the leader applied
// it, and returns the leader's applied index then. A proposal refused, or
// made to a leader that stopped, is made again.
func (c *testCluster) put(val string) uint64 {
	c.t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		lead := c.waitLeader()
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		err := lead.node.Propose(ctx, []byte(val))
		cancel()
		if errors.Is(err, ErrNoLeader) || errors.Is(err, ErrProposalDropped) || errors.Is(err, ErrStopped) || errors.Is(err, ErrTimeout) {
			time.Sleep(10 * time.Millisecond)
			continue
		}
		if err != nil && !errors.Is(err, ErrOutcomeUnknown) {
			c.t.Fatalf("propose %q: %v", val, err)
		}
		// Taken, or perhaps (the node stopped meanwhile): wait for it to
		// apply, and propose it again if it does not.
		applyBy := time.Now().Add(3 * time.Second)
		for time.Now().Before(applyBy) {
			if vals, index := lead.app.state(); slices.Contains(vals, val) {
				return index
			}
			time.Sleep(5 * time.Millisecond)
		}
		// Lost with a leader change: propose it again. Should both
		// copies commit, every member applies both alike.
	}
	c.t.Fatalf("%q not applied within 15s", val)
	return 0
}

// putN writes n values named prefix-i and returns them.
func (c *testCluster) putN(prefix string, n int) []string {
	c.t.Helper()
	var out []string
	for i := range n {
		v := fmt.Sprintf("%s-%d", prefix, i)
		c.put(v)
		out = append(out, v)
	}
	return out
}

// waitConverged waits until every running member applied the same state,
// holding every value in want, and returns it.
func (c *testCluster) waitConverged(want []string) []string {
	c.t.Helper()
	var state []string
	c.eventually(15*time.Second, func() error {
		ms := c.running()
		first, index := ms[0].app.state()
		for _, m := range ms[1:] {
			vals, i := m.app.state()
			if i != index || !slices.Equal(vals, first) {
				return fmt.Errorf("member %d applied %d values up to index %d, member %d %d up to %d",
					ms[0].id, len(first), index, m.id, len(vals), i)
			}
		}
		for _, v := range want {
			if !slices.Contains(first, v) {
				return fmt.Errorf("%q not applied", v)
			}
		}
		state = first
		return nil
	})
	return state
}
