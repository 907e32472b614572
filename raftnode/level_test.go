package raftnode

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"go.etcd.io/etcd/server/v3/storage/wal"
	"go.etcd.io/raft/v3/raftpb"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"
	"google.golang.org/protobuf/proto"
)

// levels reports an error unless every running member applied level,
// logged as logged says.
func (c *testCluster) levels(level uint32, logged bool) error {
	for _, m := range c.running() {
		if got, l := m.node.ClusterLevel(), m.node.ClusterLevelLogged(); got != level || l != logged {
			return fmt.Errorf("member %d at cluster level %d (logged %v), want %d (logged %v)", m.id, got, l, level, logged)
		}
		if st := m.node.Status(); st.ClusterLevel != level {
			return fmt.Errorf("member %d's status says cluster level %d, want %d", m.id, st.ClusterLevel, level)
		}
	}
	return nil
}

// proposeLevel proposes level through the leader until it took it.
func (c *testCluster) proposeLevel(level uint32) {
	c.t.Helper()
	c.eventually(10*time.Second, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		return c.waitLeader().node.ProposeClusterLevel(ctx, level)
	})
}

// TestClusterLevel: a new cluster starts at its binary's level, unlogged
// until an entry holds it; the level only rises, survives snapshots and
// restarts, and a member whose binary speaks less stops, whether it meets
// the level in an entry or in a snapshot.
func TestClusterLevel(t *testing.T) {
	cfg := fastConfig()
	cfg.Level = 2
	cfg.SnapshotCount, cfg.SnapshotCatchUpEntries = 20, 5
	c := newTestCluster(t, 3, cfg)
	if err := c.levels(2, false); err != nil {
		t.Fatal(err)
	}
	c.proposeLevel(2)
	c.eventually(10*time.Second, func() error { return c.levels(2, true) })
	c.proposeLevel(1) // a lower level changes nothing
	c.waitConverged(c.putN("a", 3))
	if err := c.levels(2, true); err != nil {
		t.Fatal(err)
	}

	// A member of a binary that speaks level 1 stops at the level's entry.
	c.stop(3)
	c.cfg.Level = 1
	old := c.start(3, false)
	if err := levelErr(t, old.node); err.Cluster != 2 || err.Binary != 1 {
		t.Fatalf("member 3 stopped with %+v, want cluster 2, binary 1", err)
	}
	c.members[2] = nil
	c.cfg.Level = 2
	c.start(3, false)

	// The level survives a snapshot: a member restarted alone from it
	// has it, and an older binary stops on reading it.
	want := c.putN("b", 30)
	c.eventually(10*time.Second, func() error {
		for _, m := range c.running() {
			if s := m.node.Status().SnapshotIndex; s < 20 {
				return fmt.Errorf("member %d's snapshot is at %d", m.id, s)
			}
		}
		return nil
	})
	c.stop(2)
	c.net.isolate(2)
	m := c.start(2, false)
	if m.node.Status().SnapshotIndex == 0 || m.node.ClusterLevel() != 2 || !m.node.ClusterLevelLogged() {
		t.Fatalf("member 2 restarted from snapshot %d at level %d (logged %v), want a snapshot and level 2, logged",
			m.node.Status().SnapshotIndex, m.node.ClusterLevel(), m.node.ClusterLevelLogged())
	}
	c.stop(2)
	ocfg := c.cfg
	ocfg.ID, ocfg.Peers, ocfg.DataDir, ocfg.Level = 2, c.peers, c.dirs[1], 1
	ocfg.Logger = zaptest.NewLogger(t).Named("m2-old")
	ocfg.NewTransport = c.net.transport
	n, err := New(ocfg)
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		for cm := range n.Commits() {
			cm.Applied()
		}
	}()
	var le *LevelError
	if err := n.Start(func() (func(w io.Writer) error, error) { return nil, errors.New("no snapshots") }); !errors.As(err, &le) || le.Cluster != 2 {
		n.Stop()
		t.Fatalf("an older binary started on a snapshot at level 2: %v", err)
	}
	c.net.heal()
	c.start(2, false)
	c.waitConverged(want)
	if err := c.levels(2, true); err != nil {
		t.Fatal(err)
	}
}

// levelErr waits for n to stop and returns its LevelError.
func levelErr(t *testing.T, n *Node) *LevelError {
	t.Helper()
	select {
	case <-n.Done():
	case <-time.After(15 * time.Second):
		t.Fatal("the member did not stop")
	}
	var le *LevelError
	if err := n.Err(); !errors.As(err, &le) {
		t.Fatalf("the member stopped with %v, want a LevelError", err)
	}
	return le
}

// TestClusterLevelJoiner: a member that joins an existing cluster starts
// at level 0 and learns the level from the log.
func TestClusterLevelJoiner(t *testing.T) {
	cfg := fastConfig()
	cfg.Level = 1
	c := newTestCluster(t, 3, cfg)
	c.proposeLevel(1)
	c.eventually(10*time.Second, func() error { return c.levels(1, true) })
	c.addMember(c.waitLeader().id)
	c.waitConverged(c.putN("a", 2))
	if err := c.levels(1, true); err != nil {
		t.Fatal(err)
	}
}

// TestClusterLevelRestartBeforeLogged: a member that started a new
// cluster and restarts before any entry holds the level starts again at
// the level it started the cluster at (its WAL keeps it), unlogged,
// rather than at 0; a member that joined keeps none. (TestClusterLevel
// has a binary that speaks less than the start level stop as before.)
func TestClusterLevelRestartBeforeLogged(t *testing.T) {
	cfg := fastConfig()
	cfg.Level = 2
	c := newTestCluster(t, 3, cfg)
	c.waitConverged(c.putN("a", 2))
	if err := c.levels(2, false); err != nil {
		t.Fatal(err)
	}
	for id := uint64(1); id <= 3; id++ {
		c.stop(id)
	}
	for id := uint64(1); id <= 3; id++ {
		if m := c.start(id, false); m.node.ClusterLevel() != 2 || m.node.ClusterLevelLogged() {
			t.Fatalf("member %d restarted at level %d (logged %v), want 2, unlogged", id, m.node.ClusterLevel(), m.node.ClusterLevelLogged())
		}
	}
	c.waitConverged(c.putN("b", 2))
	if err := c.levels(2, false); err != nil {
		t.Fatal(err)
	}
	c.proposeLevel(2)
	c.eventually(10*time.Second, func() error { return c.levels(2, true) })
	j := c.addMember(c.waitLeader().id)
	if j.node.disk.startLevel != 0 {
		t.Fatalf("a joiner's WAL holds start level %d, want none", j.node.disk.startLevel)
	}
	c.waitConverged(c.putN("c", 2))
	if err := c.levels(2, true); err != nil {
		t.Fatal(err)
	}
}

// TestClusterLevelUnfinishedFirstStart: a first start that did not finish
// leaves a WAL whose metadata holds its start level; the start that then
// bootstraps (or joins) writes its own instead, so that a later restart
// takes the level this member really started the cluster at, or none.
func TestClusterLevelUnfinishedFirstStart(t *testing.T) {
	unfinished := func(dir string) {
		t.Helper()
		if err := os.MkdirAll(dir, 0o700); err != nil {
			t.Fatal(err)
		}
		w, err := wal.Create(zaptest.NewLogger(t), walDir(dir), encodeWALMetadata(DefaultClusterID, 0, 3))
		if err != nil {
			t.Fatal(err)
		}
		w.Close()
	}
	cfg := fastConfig()
	cfg.Level = 2
	c := newTestCluster(t, 3, cfg, func(c *testCluster) { unfinished(c.dirs[0]) })
	if got := c.members[0].node.disk.startLevel; got != 2 {
		t.Fatalf("member 1 bootstrapped at level 2 over an unfinished start of level 3: its WAL holds start level %d", got)
	}
	c.proposeLevel(2)
	c.eventually(10*time.Second, func() error { return c.levels(2, true) })
	c.waitConverged(c.putN("a", 2))
	c.stop(1)
	c.cfg.Level = 3 // member 1 upgraded first; 2 and 3 still speak 2
	if m := c.start(1, false); m.node.ClusterLevel() != 2 {
		t.Fatalf("member 1, upgraded, restarted at level %d in a cluster at level 2", m.node.ClusterLevel())
	}
	c.waitConverged(c.putN("b", 2)) // and a leader again, for the change

	// A joiner over an unfinished start of its own keeps no start level.
	id := uint64(len(c.peers) + 1)
	unfinished(filepath.Join(filepath.Dir(c.dirs[0]), fmt.Sprintf("member-%d", id)))
	j := c.addMember(c.waitLeader().id)
	if got := j.node.disk.startLevel; got != 0 {
		t.Fatalf("a joiner over an unfinished start of level 3 holds start level %d, want none", got)
	}
	c.waitConverged(c.putN("c", 2))
	c.stop(j.id)
	if m := c.start(j.id, false); m.node.ClusterLevel() > 2 {
		t.Fatalf("the joiner restarted at level %d in a cluster at level 2", m.node.ClusterLevel())
	}
}

// TestUnfinishedStartWALReplaced: the WAL that replaces an unfinished
// first start's is whole and keeps what is saved to it. An open WAL
// makes its next segment file in the background: removed under it, the
// directory could not be removed ("directory not empty"), and the old
// WAL's close then removed the new WAL's next segment by name, so that
// its first cut failed. Small segments make cuts, and the race, early.
func TestUnfinishedStartWALReplaced(t *testing.T) {
	defer func(size int64) { wal.SegmentSizeBytes = size }(wal.SegmentSizeBytes)
	wal.SegmentSizeBytes = 4 << 10
	lg := zap.NewNop()
	const entries = 24
	for i := range 40 {
		dir := t.TempDir()
		w, err := wal.Create(lg, walDir(dir), encodeWALMetadata(DefaultClusterID, 1, 3))
		if err != nil {
			t.Fatal(err)
		}
		w.Close()
		ds, err := openDisk(lg, dir, DefaultClusterID, 1, 2)
		if err != nil {
			t.Fatalf("start %d over an unfinished one: %v", i, err)
		}
		for j := uint64(1); j <= entries; j++ {
			e := &raftpb.Entry{Index: proto.Uint64(j), Term: proto.Uint64(1), Data: make([]byte, 1<<10)}
			st := &raftpb.HardState{Term: proto.Uint64(1), Commit: proto.Uint64(j)}
			if err := ds.wal.Save(st, []*raftpb.Entry{e}); err != nil {
				t.Fatalf("start %d: save entry %d to the new WAL: %v", i, j, err)
			}
		}
		ds.wal.Close()
		ds, err = openDisk(lg, dir, DefaultClusterID, 1, 2)
		if err != nil {
			t.Fatalf("start %d: restart: %v", i, err)
		}
		last, _ := ds.storage.LastIndex()
		ds.wal.Close()
		if last != entries || ds.startLevel != 2 {
			t.Fatalf("start %d: restarted with last index %d, start level %d; want %d, 2", i, last, ds.startLevel, entries)
		}
	}
}
