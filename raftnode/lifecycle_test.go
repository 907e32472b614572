package raftnode

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"testing"
	"time"

	"go.etcd.io/etcd/server/v3/storage/wal"
	"go.uber.org/zap"
	"google.golang.org/protobuf/proto"
)

// memberState is what a member must find again in its data dir.
type memberState struct {
	vals      []string
	applied   uint64
	commit    uint64
	lastIndex uint64
	members   []Member
}

func stateOf(t *testing.T, m *testMember) memberState {
	t.Helper()
	vals, applied := m.app.state()
	last, err := m.node.disk.storage.LastIndex()
	if err != nil {
		t.Fatal(err)
	}
	return memberState{vals: vals, applied: applied, commit: m.node.Status().CommitIndex, lastIndex: last, members: m.node.Members()}
}

// sameLog checks that two members' raft logs hold the same entries where
// both still hold them.
func sameLog(t *testing.T, a, b *Node) {
	t.Helper()
	fa, _ := a.disk.storage.FirstIndex()
	fb, _ := b.disk.storage.FirstIndex()
	la, _ := a.disk.storage.LastIndex()
	lb, _ := b.disk.storage.LastIndex()
	lo, hi := max(fa, fb), min(la, lb)
	if lo > hi {
		return
	}
	ea, err := a.disk.storage.Entries(lo, hi+1, 1<<62)
	if err != nil {
		t.Fatal(err)
	}
	eb, err := b.disk.storage.Entries(lo, hi+1, 1<<62)
	if err != nil {
		t.Fatal(err)
	}
	for i := range ea {
		if !proto.Equal(ea[i], eb[i]) {
			t.Fatalf("entry %d differs: %v / %v", ea[i].GetIndex(), ea[i], eb[i])
		}
	}
}

// TestRestart stops members and restarts them from their data dirs, cut
// off from the others at first: alone, each must find its log, its commit
// index, the state it applied and the membership (a fourth member was
// added), with and without a snapshot that compacted the log. Then the
// cluster must go on.
func TestRestart(t *testing.T) {
	tests := []struct {
		name     string
		snapshot bool
		all      bool
	}{
		{"one member", false, false},
		{"one member with a snapshot", true, false},
		{"all members", false, true},
		{"all members with snapshots", true, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := fastConfig()
			if tt.snapshot {
				cfg.SnapshotCount, cfg.SnapshotCatchUpEntries = 20, 5
			}
			c := newTestCluster(t, 3, cfg)
			c.waitLeader()
			c.addMember(1)
			want := c.putN("v", 30)
			c.waitConverged(want)

			targets := []uint64{c.members[c.waitLeader().id%4].id}
			if tt.all {
				targets = []uint64{1, 2, 3, 4}
			}
			// Quiet: every target applied all that is committed, and
			// knows all four members with their client URLs.
			c.eventually(10*time.Second, func() error {
				for _, id := range targets {
					m := c.members[id-1]
					st := stateOf(t, m)
					if st.commit != st.applied || len(st.members) != 4 || st.members[3].ClientURL == "" {
						return fmt.Errorf("member %d: commit %d, applied %d, members %v", id, st.commit, st.applied, st.members)
					}
					if tt.snapshot && m.node.Status().SnapshotIndex == 0 {
						return fmt.Errorf("member %d took no snapshot", id)
					}
				}
				return nil
			})
			before := map[uint64]memberState{}
			stopped := map[uint64]*Node{}
			for _, id := range targets {
				before[id] = stateOf(t, c.members[id-1])
				stopped[id] = c.members[id-1].node
				c.stop(id)
			}

			for _, id := range targets {
				c.net.isolate(id)
				m := c.start(id, false)
				want := before[id]
				c.eventually(10*time.Second, func() error {
					if _, applied := m.app.state(); applied < want.applied {
						return fmt.Errorf("member %d replayed up to %d of %d", id, applied, want.applied)
					}
					return nil
				})
				got := stateOf(t, m)
				if !slices.Equal(got.vals, want.vals) || got.applied != want.applied {
					t.Errorf("member %d applied %d values up to %d after restart, %d up to %d before",
						id, len(got.vals), got.applied, len(want.vals), want.applied)
				}
				if got.commit != want.commit || got.lastIndex != want.lastIndex {
					t.Errorf("member %d: commit %d, last index %d after restart; %d, %d before",
						id, got.commit, got.lastIndex, want.commit, want.lastIndex)
				}
				if !reflect.DeepEqual(got.members, want.members) {
					t.Errorf("member %d: members %v after restart, %v before", id, got.members, want.members)
				}
				sameLog(t, m.node, stopped[id])
				if tt.snapshot && m.app.snapshotsApplied() == 0 {
					t.Errorf("member %d restarted without its snapshot", id)
				}
				peers := slices.Sorted(maps.Keys(c.net.peersOf(id)))
				var others []uint64
				for _, mem := range want.members {
					if mem.ID != id {
						others = append(others, mem.ID)
					}
				}
				if !slices.Equal(peers, others) {
					t.Errorf("member %d: transport peers %v after restart, want %v", id, peers, others)
				}
			}

			c.net.heal()
			want = append(want, c.putN("after", 10)...)
			c.waitConverged(want)
		})
	}
}

// TestRemoveMember removes a member: it stops with ErrRemoved, whether it
// applies its own removal or, cut off meanwhile, learns it from the
// others refusing its messages; the others drop it and go on.
func TestRemoveMember(t *testing.T) {
	const (
		either  = iota
		applies // the member applies its own removal
		told    // the others' refusal tells it
	)
	tests := []struct {
		name   string
		leader bool // remove the leader rather than a follower
		cutOff bool // the member is cut off while it is removed
		learns int
	}{
		{"a follower", false, false, either},
		{"the leader", true, false, applies},
		{"a cut-off follower", false, true, told},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newTestCluster(t, 3, fastConfig())
			want := c.putN("v", 10)
			lead := c.waitLeader()
			victim, via := c.members[lead.id%3], lead
			if tt.leader {
				victim, via = lead, c.members[lead.id%3]
			}
			if tt.cutOff {
				c.net.isolate(victim.id)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if err := via.node.RemoveMember(ctx, victim.id); err != nil {
				t.Fatalf("remove member %d through %d: %v", victim.id, via.id, err)
			}
			c.net.heal()
			select {
			case <-victim.node.Done():
			case <-time.After(15 * time.Second):
				t.Fatalf("removed member %d still runs", victim.id)
			}
			if err := victim.node.Err(); !errors.Is(err, ErrRemoved) {
				t.Fatalf("removed member %d stopped with %v, want ErrRemoved", victim.id, err)
			}
			applied := !slices.ContainsFunc(victim.node.Members(), func(m Member) bool { return m.ID == victim.id })
			if tt.learns == applies && !applied || tt.learns == told && applied {
				t.Errorf("member %d: applied its own removal: %v; stopped with %v", victim.id, applied, victim.node.Err())
			}

			want = append(want, c.putN("after", 10)...)
			c.waitConverged(want)
			for _, m := range c.running() {
				if m.id == victim.id {
					t.Fatalf("member %d counts as running", m.id)
				}
				for _, mem := range m.node.Members() {
					if mem.ID == victim.id {
						t.Errorf("member %d still lists %d", m.id, victim.id)
					}
				}
				if _, ok := c.net.peersOf(m.id)[victim.id]; ok {
					t.Errorf("member %d's transport still has %d", m.id, victim.id)
				}
			}
			if err := via.node.RemoveMember(ctx, victim.id); !errors.Is(err, ErrMemberNotFound) {
				t.Errorf("removing %d again: %v, want ErrMemberNotFound", victim.id, err)
			}
		})
	}
}

// TestFirstStartThatSavedNothing: a member whose first start created its
// WAL and then stopped before raft's first Ready was saved (a transport
// that failed to start, the application failing to build, a crash) has
// a WAL with no HardState, no entries and no snapshot. The next start
// bootstraps from the peer list as a new member would; restarting raft
// from that WAL would leave it with no voters, never to elect.
func TestFirstStartThatSavedNothing(t *testing.T) {
	c := newTestCluster(t, 3, fastConfig(), func(c *testCluster) {
		for _, dir := range c.dirs {
			if err := os.MkdirAll(dir, 0o700); err != nil {
				t.Fatal(err)
			}
			w, err := wal.Create(zap.NewNop(), walDir(dir), nil)
			if err != nil {
				t.Fatal(err)
			}
			w.Close()
		}
	})
	want := c.putN("v", 5)
	c.waitConverged(want)
	for _, m := range c.running() {
		if st := m.node.Status(); len(st.Members) != 3 {
			t.Fatalf("member %d knows members %v, want 3", m.id, st.Members)
		}
	}
}

// TestPartialSnapshotRemovedAtStart: a snapshot being received when the
// member died leaves rafthttp's tmp* file in the snapshot dir; the next
// start removes it (nothing else would, and each such death left up to
// the whole state's size), and keeps the member's own files.
func TestPartialSnapshotRemovedAtStart(t *testing.T) {
	var partial, own string
	c := newTestCluster(t, 1, fastConfig(), func(c *testCluster) {
		dir := snapDir(c.dirs[0])
		if err := os.MkdirAll(dir, 0o700); err != nil {
			t.Fatal(err)
		}
		partial, own = filepath.Join(dir, "tmp123456"), filepath.Join(dir, "0000000000000001-0000000000000001.snap.db")
		for _, f := range []string{partial, own} {
			if err := os.WriteFile(f, []byte("x"), 0o600); err != nil {
				t.Fatal(err)
			}
		}
	})
	c.waitLeader()
	if _, err := os.Stat(partial); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the partly received snapshot %s is still there: %v", partial, err)
	}
	if _, err := os.Stat(own); err != nil {
		t.Fatalf("a data file was removed with it: %v", err)
	}
}
