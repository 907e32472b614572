package raftnode

import (
	"context"
	"sync"
	"time"

	"go.etcd.io/raft/v3"
)

// A member that knows no leader cannot propose or confirm a read. Right
// after an election it is often only a heartbeat away from knowing one:
// the voters learn the new leader from its first append, which reaches
// them a few milliseconds after a majority elected it. Answering "no
// leader" at once would fail the requests of that gap, so proposals,
// reads and membership changes wait for a leader up to leaderWait and
// only then fail with ErrNoLeader (the entry still reached no log).

// leaderWait is how long a request waits for this member to learn of a
// leader: half an election timeout, enough for the election under way
// and a heartbeat to end, and less than the application's retry interval
// so a waiting proposal is not proposed a second time meanwhile.
func (n *Node) leaderWait() time.Duration { return n.electionTimeout() / 2 }

// leaderSignal tells waiters when this member learns of a leader.
type leaderSignal struct {
	mu    sync.Mutex
	known chan struct{} // closed while a leader is known
}

func newLeaderSignal() *leaderSignal {
	return &leaderSignal{known: make(chan struct{})}
}

// set records whether a leader is known.
func (s *leaderSignal) set(known bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	select {
	case <-s.known:
		if !known {
			s.known = make(chan struct{})
		}
	default:
		if known {
			close(s.known)
		}
	}
}

// wait returns a channel that is closed once a leader is known.
func (s *leaderSignal) wait() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.known
}

// setLeader records the leader raft reported (raft.None for none).
func (n *Node) setLeader(lead uint64) (old uint64) {
	old = n.leader.Swap(lead)
	n.leaderKnown.set(lead != raft.None)
	return old
}

// awaitLeader waits up to d for this member to know a leader and reports
// whether it does.
func (n *Node) awaitLeader(d time.Duration) bool {
	var t *time.Timer
	for {
		if n.leader.Load() != raft.None {
			return true
		}
		known := n.leaderKnown.wait()
		if n.leader.Load() != raft.None {
			return true
		}
		if t == nil {
			t = time.NewTimer(d)
			defer t.Stop()
		}
		select {
		case <-known:
		case <-t.C:
			return n.leader.Load() != raft.None
		case <-n.stopc:
			return false
		}
	}
}

// awaitLeaderCtx waits up to leaderWait, and no later than ctx's
// deadline, for this member to know a leader, and reports whether it does.
func (n *Node) awaitLeaderCtx(ctx context.Context) bool {
	wait := n.leaderWait()
	if d, ok := ctx.Deadline(); ok {
		wait = min(wait, time.Until(d))
	}
	return n.awaitLeader(wait)
}

// parkedProposal is a proposal that arrived while no leader was known.
type parkedProposal struct {
	Proposal
	until time.Time // when it is answered ErrNoLeader if no leader is known by then
}
