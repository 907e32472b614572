package raftnode

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"go.etcd.io/raft/v3"
)

// TestProposeErrorSaysNotProposedOnlyWhenTrue: of raft's answers to a
// proposal only its own refusal becomes an error that says the entry
// reached no log (503 to a client); raft.Node.Propose giving up after it
// handed the proposal over (node stopped, context canceled) leaves the
// outcome unknown (504).
func TestProposeErrorSaysNotProposedOnlyWhenTrue(t *testing.T) {
	for _, tc := range []struct {
		raftErr error
		leader  uint64
		want    error
	}{
		{nil, 2, nil},
		{raft.ErrProposalDropped, 2, ErrProposalDropped},
		{raft.ErrProposalDropped, raft.None, ErrNoLeader},
		{raft.ErrStopped, 2, ErrOutcomeUnknown},
		{context.Canceled, 2, ErrOutcomeUnknown},
		{fmt.Errorf("wrapped: %w", context.Canceled), 2, ErrOutcomeUnknown},
		{context.DeadlineExceeded, 2, ErrTimeout},
	} {
		n := &Node{met: newMetrics(nil)}
		n.leader.Store(tc.leader)
		got := n.proposeError(tc.raftErr)
		if !errors.Is(got, tc.want) {
			t.Errorf("proposeError(%v) with leader %d = %v, want %v", tc.raftErr, tc.leader, got, tc.want)
		}
	}
}

// TestProposeEntryOnStoppingNode: a proposal made once the node is stopping
// is never handed to raft, so it is refused as reaching no log
// (ErrStopped), not answered as unknown.
func TestProposeEntryOnStoppingNode(t *testing.T) {
	storage := raft.NewMemoryStorage()
	rn := raft.StartNode(&raft.Config{ID: 1, ElectionTick: 10, HeartbeatTick: 1, Storage: storage,
		MaxSizePerMsg: 1 << 20, MaxInflightMsgs: 16}, []raft.Peer{{ID: 1}})
	rn.Stop()
	n := &Node{met: newMetrics(nil), node: rn, cfg: Config{ElectionTicks: 10, TickInterval: 1}}
	n.leader.Store(1)
	n.stopCtx, n.cancel = context.WithCancel(context.Background())
	n.cancel()
	for range 20 {
		if err := n.proposeEntry([]byte{entryApp, 'x'}); !errors.Is(err, ErrStopped) {
			t.Fatalf("proposeEntry on a stopping node = %v, want %v", err, ErrStopped)
		}
	}
}

// TestProposeWhenTheNodeStopsMeanwhile: Node.Propose returns the node's
// answer if it has one, and otherwise, the proposal being in the node's
// hands, an unknown outcome rather than ErrStopped.
func TestProposeWhenTheNodeStopsMeanwhile(t *testing.T) {
	for i := range 50 {
		answer := i%2 == 0
		n := &Node{proposeC: make(chan Proposal), stopc: make(chan struct{})}
		go func() {
			p := <-n.proposeC
			if answer {
				p.Result <- nil
			}
			close(n.stopc)
		}()
		err := n.Propose(context.Background(), []byte("x"))
		switch {
		case answer && err != nil:
			t.Fatalf("taken, answered nil, then stopped: Propose = %v, want nil", err)
		case !answer && !errors.Is(err, ErrOutcomeUnknown):
			t.Fatalf("taken, then stopped without an answer: Propose = %v, want %v", err, ErrOutcomeUnknown)
		}
	}
}

// TestBatcherTakesNothingOnceStopped: the payloads queued when the batcher
// stops are answered ErrStopped (never proposed), and one offered after
// that is refused, so the caller proposes it itself instead of waiting for
// an answer that would never come.
func TestBatcherTakesNothingOnceStopped(t *testing.T) {
	b := newBatcher(&Node{cfg: Config{MaxBatchQueueBytes: 1 << 20}})
	res := make(chan error, 1)
	if !b.add([]byte("queued"), res, 0) {
		t.Fatal("a running batcher refused a payload")
	}
	b.failQueued()
	if err := <-res; !errors.Is(err, ErrStopped) {
		t.Fatalf("queued payload answered %v, want %v", err, ErrStopped)
	}
	if b.add([]byte("late"), make(chan error, 1), 0) {
		t.Fatal("a stopped batcher took a payload")
	}
}
