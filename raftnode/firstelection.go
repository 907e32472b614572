package raftnode

import (
	"context"
	"time"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/quorum"
	"go.uber.org/zap"
)

// firstElectionWait bounds how long a starting member looks for a reason
// to campaign early: rafthttp's connection read timeout, as in etcd.
const firstElectionWait = 5 * time.Second

// hastenFirstElection shortens this member's first election timeout after
// it starts, as etcd's server does (adjustTicks). raft starts every
// member's election clock at zero and campaigns after a random 1 to 2
// election timeouts, so a lone voter restarted waits that long for nobody,
// and after the whole cluster restarts the first election comes that late
// though there is no leader to wait for.
//
// It waits until every entry raft knows committed is applied (the conf
// changes among them decide who votes, and raft refuses to campaign while
// one is unapplied: a fresh member's bootstrap entries are committed but
// not yet applied when it starts), then:
//   - the only voter campaigns at once;
//   - any other voter that still knows no leader, once it is connected to
//     enough voters to make a quorum with itself, advances its clock to
//     two ticks short of the election timeout. A leader, if there is one,
//     has two heartbeats to reach it, raft's pre-vote keeps a member that
//     campaigns anyway from disturbing one, and the random part of the
//     timeout is kept, so members that start together seldom campaign at
//     once.
//
// It gives up after firstElectionWait. It does nothing for a learner or a
// member that joins (it knows no voters yet), nor, in a cluster of several
// voters, when the transport cannot tell which peers it is connected to
// (the in-process tests' cannot).
func (n *Node) hastenFirstElection() {
	defer n.wg.Done()
	deadline := time.NewTimer(firstElectionWait)
	defer deadline.Stop()
	poll := time.NewTicker(10 * time.Millisecond)
	defer poll.Stop()
	activity, canTell := n.transport.(peerActivity)
	for {
		select {
		case <-poll.C:
		case <-deadline.C:
			return
		case <-n.stopc:
			return
		}
		st := n.node.Status()
		connected := func(id uint64) bool { return canTell && !activity.ActiveSince(id).IsZero() }
		switch firstElectionStep(st, connected) {
		case stepDone:
			return
		case stepCampaign:
			n.lg.Info("the only voter: campaigning at once")
			ctx, cancel := context.WithTimeout(n.stopCtx, firstElectionWait)
			err := n.node.Campaign(ctx)
			cancel()
			if err != nil {
				n.lg.Warn("campaign of the only voter", zap.Error(err))
			}
			return
		case stepAdvance:
			ticks := n.cfg.ElectionTicks - 2
			n.lg.Info("connected to a quorum with no leader known: advancing the election clock",
				zap.Int("ticks", ticks), zap.Int("election-ticks", n.cfg.ElectionTicks))
			for range ticks {
				n.node.Tick()
			}
			return
		}
	}
}

// firstStep is what a starting member does about its first election.
type firstStep int

const (
	stepWait     firstStep = iota // not yet connected to a quorum
	stepDone                      // nothing: a learner, or a leader is known
	stepCampaign                  // the only voter
	stepAdvance                   // advance the election clock
)

// firstElectionStep decides, from raft's status, what a starting member
// does about its first election; connected tells whether the transport is
// connected to a peer.
func firstElectionStep(st raft.Status, connected func(id uint64) bool) firstStep {
	if st.Lead != raft.None || st.RaftState != raft.StateFollower {
		return stepDone
	}
	if st.Applied < st.HardState.GetCommit() {
		return stepWait // a conf change may be among them: raft would not campaign
	}
	voters := st.Config.Voters.IDs()
	if _, ok := voters[st.ID]; !ok {
		return stepDone
	}
	if len(voters) == 1 {
		return stepCampaign
	}
	// Itself and the voters it is connected to, as raft counts a quorum
	// (of both halves of a joint configuration).
	up := map[uint64]bool{st.ID: true}
	for id := range voters {
		if id != st.ID && connected(id) {
			up[id] = true
		}
	}
	if st.Config.Voters.VoteResult(up) == quorum.VoteWon {
		return stepAdvance
	}
	return stepWait
}
