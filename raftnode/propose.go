package raftnode

import (
	"context"
	"errors"
	"time"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"
)

// serveChannels feeds proposals and conf changes into raft. A proposal
// that arrives while no leader is known waits for one (leaderwait.go),
// parked here so that the proposals behind it are not held up.
func (n *Node) serveChannels() {
	defer n.wg.Done()
	var (
		parked  []parkedProposal
		expiry  = time.NewTimer(time.Hour)
		expired <-chan time.Time
	)
	expiry.Stop()
	defer func() {
		expiry.Stop()
		for _, p := range parked {
			answer(p.Proposal, ErrStopped) // never handed to raft
		}
	}()
	// unpark dispatches the parked proposals, in their order, once a
	// leader is known, and answers those that waited long enough; it
	// arms the timer for the next one to give up.
	unpark := func() {
		if n.leader.Load() != raft.None {
			for _, p := range parked {
				n.dispatch(p.Proposal)
			}
			parked = parked[:0]
		}
		now := time.Now()
		for len(parked) > 0 && !parked[0].until.After(now) {
			n.met.proposalsDropped.Inc()
			answer(parked[0].Proposal, ErrNoLeader)
			parked = parked[1:]
		}
		expired = nil
		if len(parked) > 0 {
			expiry.Reset(time.Until(parked[0].until))
			expired = expiry.C
		}
	}
	for {
		var known <-chan struct{}
		if len(parked) > 0 {
			known = n.leaderKnown.wait()
		}
		select {
		case p := <-n.proposeC:
			if n.leader.Load() == raft.None && n.stopCtx.Err() == nil {
				parked = append(parked, parkedProposal{Proposal: p, until: time.Now().Add(n.leaderWait())})
				if len(parked) == 1 {
					unpark() // arms the timer
				}
				continue
			}
			if len(parked) > 0 {
				unpark() // those first
			}
			n.dispatch(p)
		case <-known:
			expiry.Stop()
			unpark()
		case <-expired:
			unpark()
		case cc := <-n.confChangeC:
			n.proposeConfChange(cc)
		case <-n.stopc:
			return
		}
	}
}

// dispatch hands one proposal on: the leader merges proposals (see
// batcher); a follower sends its own to the leader's.
func (n *Node) dispatch(p Proposal) {
	var err error
	switch lead := n.leader.Load(); {
	case lead == n.cfg.ID && n.batch.add(p.Data, p.Result, 0):
		return
	case lead != raft.None && lead != n.cfg.ID:
		n.forward(lead, p.Data)
	default:
		err = n.propose(p.Data)
	}
	answer(p, err)
}

// answer gives a proposal raft's answer, if its sender asked for one.
func answer(p Proposal, err error) {
	if p.Result != nil {
		p.Result <- err
	}
}

// forward sends application data to the leader lead as a proposal
// (MsgProp), as raft forwards a follower's proposal, but from here rather
// than from raft's next Ready: that would take two more goroutine
// hand-offs and a Ready cycle for each. Its Process hands the payload to
// its batcher, or, if it is no longer leader, to raft, which forwards or
// drops it; like any message, the transport may drop it too, and the
// application proposes it again.
func (n *Node) forward(lead uint64, data []byte) {
	n.transport.Send([]*raftpb.Message{{
		Type:    raftpb.MsgProp.Enum(),
		From:    proto.Uint64(n.cfg.ID),
		To:      proto.Uint64(lead),
		Entries: []*raftpb.Entry{{Type: raftpb.EntryNormal.Enum(), Data: wrapAppData(data)}},
	}})
}

// propose hands application data to raft as one entry.
func (n *Node) propose(data []byte) error { return n.proposeEntry(wrapAppData(data)) }

// proposeEntry hands entry data, kind byte included, to raft.
// raft.Node.Propose blocks while no leader is known, so that case is
// answered here at once, as is a node already stopping: in both the entry
// certainly reaches no log.
func (n *Node) proposeEntry(entry []byte) error {
	if n.leader.Load() == raft.None {
		n.met.proposalsDropped.Inc()
		return ErrNoLeader
	}
	if n.stopCtx.Err() != nil {
		return ErrStopped
	}
	ctx, cancel := context.WithTimeout(n.stopCtx, n.electionTimeout())
	defer cancel()
	return n.proposeError(n.node.Propose(ctx, entry))
}

func (n *Node) electionTimeout() time.Duration {
	return time.Duration(n.cfg.ElectionTicks) * n.cfg.TickInterval
}

// proposeError turns raft's answer to a proposal into this package's. Only
// raft's own refusal (ErrProposalDropped) says the entry reached no log:
// raft.Node.Propose also gives up with raft.ErrStopped or its context's
// error after it handed the proposal to raft's goroutine, which may have
// appended it and sent it to the followers, so those mean the outcome is
// unknown.
func (n *Node) proposeError(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, raft.ErrProposalDropped) && n.leader.Load() == raft.None:
		n.met.proposalsDropped.Inc()
		return ErrNoLeader
	case errors.Is(err, raft.ErrProposalDropped):
		n.met.proposalsDropped.Inc()
		return ErrProposalDropped
	case errors.Is(err, raft.ErrStopped), errors.Is(err, context.Canceled):
		return ErrOutcomeUnknown
	case errors.Is(err, context.DeadlineExceeded):
		return ErrTimeout
	}
	return err
}

// Propose sends data through proposeC and returns raft's answer: nil once
// the entry was appended or forwarded to the leader. It does not wait for
// the entry to commit. ErrNoLeader, ErrProposalDropped and ErrStopped mean
// the entry reached no log; after ErrTimeout and ErrOutcomeUnknown that is
// unknown.
func (n *Node) Propose(ctx context.Context, data []byte) error {
	res := make(chan error, 1)
	select {
	case n.proposeC <- Proposal{Data: data, Result: res}:
	case <-ctx.Done():
		return ErrTimeout
	case <-n.stopc:
		return ErrStopped
	}
	select {
	case err := <-res:
		return err
	case <-ctx.Done():
		return ErrTimeout
	case <-n.stopc:
		// The proposal is in the node's hands and may be in raft's log.
		select {
		case err := <-res:
			return err
		default:
			return ErrOutcomeUnknown
		}
	}
}
