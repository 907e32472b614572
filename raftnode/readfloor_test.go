package raftnode

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"go.etcd.io/etcd/server/v3/storage/wal"
	"go.etcd.io/etcd/server/v3/storage/wal/walpb"
	"go.etcd.io/raft/v3/raftpb"
	"go.uber.org/zap"
	"google.golang.org/protobuf/proto"
)

// TestLoneVoterReadAfterUnsavedCommit: a lone member restarts with a
// write it applied (and so acknowledged) beyond the commit index its WAL
// saved, as a kill -9 between applying and saving the HardState leaves
// it (the save is not synced, and applying overlaps it). raft answers a
// lone voter's ReadIndex at once with its commit index, so a read right
// after the restart must still be served at an index that covers the
// write. Several rounds, each read sent as the member restarts.
func TestLoneVoterReadAfterUnsavedCommit(t *testing.T) {
	c := newTestCluster(t, 1, fastConfig())
	c.waitLeader()
	for round := range 5 {
		index := c.put(fmt.Sprintf("v%d", round))
		c.stop(1)
		saveCommit(t, c.dirs[0], index-1)
		m := c.start(1, false)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		// Each try waits for a leader a while, and is sent the moment
		// the member knows it leads.
		got, err := m.node.ReadIndex(ctx)
		for errors.Is(err, ErrNoLeader) && ctx.Err() == nil {
			got, err = m.node.ReadIndex(ctx)
		}
		cancel()
		if err != nil {
			t.Fatalf("round %d: read after the restart: %v", round, err)
		}
		if got < index {
			t.Fatalf("round %d: read index %d after the restart, below %d, where the member applied a write before it", round, got, index)
		}
	}
}

// saveCommit appends a HardState with commit index commit to the WAL in
// dataDir, as the last one saved.
func saveCommit(t *testing.T, dataDir string, commit uint64) {
	t.Helper()
	w, err := wal.Open(zap.NewNop(), walDir(dataDir), &walpb.Snapshot{})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	_, hs, _, err := w.ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	hs.Commit = proto.Uint64(commit)
	if err := w.Save(hs, nil); err != nil {
		t.Fatal(err)
	}
}

// TestReadIndexAnswerRaisedToFloor: a leader's answer to another
// member's ReadIndex (a learner's, which a lone voter answers at once
// with its commit index) is raised to the leader's read floor, as its own
// reads are, so that a learner's read right after the leader restarted
// also covers the writes the leader applied before its saved commit.
// Other messages, and answers past the floor, go as raft made them.
func TestReadIndexAnswerRaisedToFloor(t *testing.T) {
	n := &Node{}
	n.readFloor.Store(10)
	resp := func(index uint64) *raftpb.Message {
		return &raftpb.Message{Type: raftpb.MsgReadIndexResp.Enum(), To: proto.Uint64(2), Index: proto.Uint64(index)}
	}
	app := &raftpb.Message{Type: raftpb.MsgApp.Enum(), To: proto.Uint64(2), Index: proto.Uint64(3)}
	ms := n.processMessages([]*raftpb.Message{resp(7), resp(12), app})
	if got := []uint64{ms[0].GetIndex(), ms[1].GetIndex(), ms[2].GetIndex()}; !slices.Equal(got, []uint64{10, 12, 3}) {
		t.Fatalf("indexes after processMessages: %v, want [10 12 3]", got)
	}
	n.readFloor.Store(0) // not leading
	if ms := n.processMessages([]*raftpb.Message{resp(7)}); ms[0].GetIndex() != 7 {
		t.Fatalf("answer %d with no floor, want 7", ms[0].GetIndex())
	}
}
