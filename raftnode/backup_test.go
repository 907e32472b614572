package raftnode

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"
)

// captured is a capture whose state was written out, with what the
// member's application held at the capture's index.
type captured struct {
	Capture
	vals []string
}

func captureFrom(t *testing.T, m *testMember) captured {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := m.node.CaptureState(ctx)
	if err != nil {
		t.Fatalf("member %d: CaptureState: %v", m.id, err)
	}
	var buf bytes.Buffer
	if err := c.Write(&buf); err != nil {
		t.Fatalf("member %d: write the capture: %v", m.id, err)
	}
	var vals []string
	if err := json.Unmarshal(buf.Bytes(), &vals); err != nil {
		t.Fatalf("member %d: capture: %v", m.id, err)
	}
	return captured{Capture: c, vals: vals}
}

// TestCaptureStateIsExact: a capture holds the state of exactly its
// index, on the leader and on followers, while writes keep coming: as
// many values as the application held after applying that index, and
// the term of the entry there. The applications are slow, so that raft
// publishes commits ahead of them.
func TestCaptureStateIsExact(t *testing.T) {
	c := newTestCluster(t, 3, fastConfig(), func(c *testCluster) { c.appDelay = 3 * time.Millisecond })
	lead := c.waitLeader()
	c.putN("before", 5)

	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; ctx.Err() == nil; i++ {
			pctx, pcancel := context.WithTimeout(ctx, time.Second)
			_ = lead.node.Propose(pctx, []byte(fmt.Sprintf("load-%d", i))) // refusals only thin the load
			pcancel()
		}
	}()
	defer func() {
		cancel()
		wg.Wait()
	}()

	var last uint64
	for round := range 30 {
		m := c.members[round%3]
		// Under load: entries keep being applied.
		_, from := m.app.state()
		c.eventually(10*time.Second, func() error {
			if _, index := m.app.state(); index <= from {
				return fmt.Errorf("member %d applies nothing past index %d", m.id, from)
			}
			return nil
		})
		got := captureFrom(t, m)
		m.app.mu.Lock()
		want, ok := m.app.lens[got.Index]
		m.app.mu.Unlock()
		if !ok {
			t.Fatalf("member %d: captured at index %d, which it applied no commit at", m.id, got.Index)
		}
		if len(got.vals) != want {
			t.Fatalf("member %d: capture at index %d holds %d values; the member held %d after that index", m.id, got.Index, len(got.vals), want)
		}
		term, err := m.node.disk.storage.Term(got.Index)
		if err != nil || term != got.Term {
			t.Fatalf("member %d: capture at index %d says term %d; the log says %d (%v)", m.id, got.Index, got.Term, term, err)
		}
		if m == lead && got.Index < last {
			t.Fatalf("leader's captures went back from index %d to %d", last, got.Index)
		}
		if m == lead {
			last = got.Index
		}
	}
}

// TestBootstrapFromCapture: a new cluster on other addresses, every
// member bootstrapped from one capture, elects a leader, holds the
// captured state, takes writes and restarts from its data dir.
func TestBootstrapFromCapture(t *testing.T) {
	old := newTestCluster(t, 3, fastConfig())
	old.waitLeader()
	want := old.putN("old", 30)
	old.waitConverged(want)
	snapshot := captureFrom(t, old.members[1]) // a follower, or the leader: either must do
	var data bytes.Buffer
	if err := json.NewEncoder(&data).Encode(snapshot.vals); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(snapshot.vals, want) {
		t.Fatalf("captured %v, want %v", snapshot.vals, want)
	}

	newPeers := []string{"http://restored-1.test:2380", "http://restored-2.test:2380", "http://restored-3.test:2380"}
	restored := newTestCluster(t, 3, fastConfig(), func(c *testCluster) {
		c.peers = newPeers
		for _, dir := range c.dirs {
			err := Bootstrap(BootstrapConfig{DataDir: dir, Peers: newPeers, Index: snapshot.Index, Term: snapshot.Term,
				Logger: zaptest.NewLogger(t)}, func(w io.Writer) error {
				_, err := w.Write(data.Bytes())
				return err
			})
			if err != nil {
				t.Fatalf("Bootstrap %s: %v", dir, err)
			}
			if !HasState(dir) {
				t.Fatalf("Bootstrap %s: no WAL", dir)
			}
		}
	})
	restored.waitLeader()
	got := restored.waitConverged(want)
	if !slices.Equal(got, want) {
		t.Fatalf("restored members hold %v, want %v", got, want)
	}
	for _, m := range restored.members {
		if n := m.app.snapshotsApplied(); n != 1 {
			t.Errorf("member %d applied %d snapshots, want the bootstrapped one", m.id, n)
		}
		if st := m.node.Status(); st.SnapshotIndex != snapshot.Index || len(st.Members) != 3 {
			t.Errorf("member %d: snapshot index %d (want %d), %d members", m.id, st.SnapshotIndex, snapshot.Index, len(st.Members))
		}
		for _, mem := range m.node.Members() {
			if mem.PeerURL != newPeers[mem.ID-1] || mem.URLIndex != snapshot.Index {
				t.Errorf("member %d knows member %d at %s (set at %d), want %s at the backup's index %d",
					m.id, mem.ID, mem.PeerURL, mem.URLIndex, newPeers[mem.ID-1], snapshot.Index)
			}
		}
	}
	more := restored.putN("new", 5)
	restored.waitConverged(append(slices.Clone(want), more...))
	// A member restarts from its data dir, now holding the new log too.
	restored.stop(2)
	restored.start(2, false)
	restored.waitConverged(append(slices.Clone(want), more...))
}

// TestBootstrapRefuses: a data dir with anything in it, and configs that
// cannot make a cluster, are refused before anything is written.
func TestBootstrapRefuses(t *testing.T) {
	write := func(w io.Writer) error { _, err := w.Write([]byte("[]")); return err }
	peers := []string{"http://a.test:2380", "http://b.test:2380"}
	full := t.TempDir()
	if err := os.WriteFile(filepath.Join(full, "leftover"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		cfg  BootstrapConfig
		want string
	}{
		{"non-empty dir", BootstrapConfig{DataDir: full, Peers: peers, Index: 5, Term: 2}, "not empty"},
		{"relative dir", BootstrapConfig{DataDir: "data", Peers: peers, Index: 5, Term: 2}, "absolute"},
		{"no peers", BootstrapConfig{DataDir: filepath.Join(t.TempDir(), "d"), Index: 5, Term: 2}, "peer list"},
		{"index 0", BootstrapConfig{DataDir: filepath.Join(t.TempDir(), "d"), Peers: peers, Term: 2}, "index 0"},
		{"term 0", BootstrapConfig{DataDir: filepath.Join(t.TempDir(), "d"), Peers: peers, Index: 5}, "term 0"},
		{"peer twice", BootstrapConfig{DataDir: filepath.Join(t.TempDir(), "d"), Peers: []string{peers[0], peers[0]}, Index: 5, Term: 2}, "twice"},
		{"bad peer", BootstrapConfig{DataDir: filepath.Join(t.TempDir(), "d"), Peers: []string{"a.test:2380"}, Index: 5, Term: 2}, "peer 1"},
	} {
		err := Bootstrap(tc.cfg, write)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want an error about %q", tc.name, err, tc.want)
		}
		if tc.cfg.DataDir != full && filepath.IsAbs(tc.cfg.DataDir) {
			if _, err := os.Stat(tc.cfg.DataDir); !os.IsNotExist(err) {
				t.Errorf("%s: the data dir was made", tc.name)
			}
		}
	}
	ents, _ := os.ReadDir(full)
	if len(ents) != 1 {
		t.Errorf("the non-empty dir holds %d entries now", len(ents))
	}
}
