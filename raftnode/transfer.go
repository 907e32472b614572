package raftnode

import (
	"context"
	"fmt"
	"time"

	"go.etcd.io/raft/v3"
	"go.uber.org/zap"
)

// transferPoll is how often TransferLeadership looks whether this member
// sees the transferee lead.
const transferPoll = 10 * time.Millisecond

// TransferLeadership hands leadership from this member, the leader, to
// the voting member to, and returns the new leader once this member sees
// it lead. With to == 0 it picks, among the voters connected to this
// member and heard from within the last election timeout, the one whose
// log matches the leader's furthest.
//
// raft first brings the transferee's log up to the leader's, then tells it
// to campaign at once (MsgTimeoutNow), so the cluster does not wait out an
// election timeout; meanwhile the leader drops proposals, and gives up
// after an election timeout if the transferee has not taken over. ctx
// bounds the wait. ErrTransferTimeout means leadership had not moved when
// ctx ended or the transferee's connection went down; it may still move.
//
// Only the leader knows the voters' progress, so elsewhere it fails with
// ErrNotLeader (ErrNoLeader when no leader is known after waiting
// leaderWait for one). A transferee that is
// this member is answered at once; one that is not a member, is a learner
// or is not connected, or no other voter to pick, is ErrTransferTarget.
func (n *Node) TransferLeadership(ctx context.Context, to uint64) (uint64, error) {
	// Like a proposal, a transfer waits a while for a leader to be known
	// (leaderwait.go), so that right after an election it is answered by
	// the leader, or with where the leader is, rather than with none.
	n.awaitLeaderCtx(ctx)
	switch lead := n.leader.Load(); {
	case n.stopCtx.Err() != nil:
		return 0, ErrStopped
	case lead == raft.None:
		return 0, ErrNoLeader
	case lead != n.cfg.ID:
		return 0, withDetail(ErrNotLeader, fmt.Sprintf("member %d leads", lead),
			fmt.Sprintf("this member is not the leader (member %d is); retry shortly, or send the request to member %d", lead, lead))
	}
	rs := n.node.Status()
	if rs.RaftState != raft.StateLeader {
		return 0, ErrNotLeader
	}
	switch {
	case to == n.cfg.ID:
		return to, nil
	case to == raft.None:
		var ok bool
		if to, ok = transferee(rs, n.peerConnected); !ok {
			return 0, withDetail(ErrTransferTarget, "no other voter connected",
				"there is no other voting member, connected and heard from within the last election timeout, to transfer leadership to")
		}
	default:
		n.mu.RLock()
		err := n.mu.members.checkTransferee(to)
		n.mu.RUnlock()
		if err == nil && !n.peerConnected(to) {
			err = withDetail(ErrTransferTarget, fmt.Sprintf("%d not connected", to),
				fmt.Sprintf("member %d is not connected to the leader; leadership stays with member %d", to, n.cfg.ID))
		}
		if err != nil {
			return 0, err
		}
	}
	start := time.Now()
	n.lg.Info("transferring leadership", zap.Uint64("to", to), zap.Uint64("term", rs.HardState.GetTerm()),
		zap.Uint64("transferee-match", rs.Progress[to].Match), zap.Uint64("leader-match", rs.Progress[rs.ID].Match))
	n.node.TransferLeadership(ctx, n.cfg.ID, to)
	t := time.NewTicker(transferPoll)
	defer t.Stop()
	for {
		lead := n.leader.Load()
		if lead == to {
			n.lg.Info("leadership transferred", zap.Uint64("to", to), zap.Duration("took", time.Since(start)))
			return to, nil
		}
		var why string
		if !n.peerConnected(to) {
			// Stopping, say, as every member does when a whole cluster
			// is shut down: no need to wait for raft to give up.
			why = "lost its connection to the leader"
		}
		if why == "" {
			select {
			case <-t.C:
				continue
			case <-ctx.Done():
				why = "did not take over before the deadline"
			case <-n.stopc:
				return 0, ErrStopped
			}
		}
		n.lg.Warn("leadership transfer not completed", zap.Uint64("to", to), zap.String("transferee", why),
			zap.Uint64("leader", lead), zap.Duration("waited", time.Since(start)))
		return 0, withDetail(ErrTransferTimeout, fmt.Sprintf("member %d %s", to, why),
			fmt.Sprintf("leadership did not move: member %d %s; it may still take over, or leadership stays where it is", to, why))
	}
}

// peerActivity is what a transport may tell of its connection to a peer:
// since when it is up, zero while it is down. rafthttp's does.
type peerActivity interface{ ActiveSince(id uint64) time.Time }

// peerConnected reports whether the transport's connection to peer id is
// up; true when the transport cannot tell.
func (n *Node) peerConnected(id uint64) bool {
	a, ok := n.transport.(peerActivity)
	return !ok || !a.ActiveSince(id).IsZero()
}

// transferee picks, among the voters other than the leader that are
// connected and that the leader heard from within the last election
// timeout, the one whose log matches the leader's furthest (the lowest id
// among equals): raft can hand it leadership soonest. False if there is
// none.
func transferee(rs raft.Status, connected func(id uint64) bool) (uint64, bool) {
	var best, bestMatch uint64
	for id, pr := range rs.Progress {
		if id == rs.ID || pr.IsLearner || !pr.RecentActive || !connected(id) {
			continue
		}
		if best == raft.None || pr.Match > bestMatch || pr.Match == bestMatch && id < best {
			best, bestMatch = id, pr.Match
		}
	}
	return best, best != raft.None
}
