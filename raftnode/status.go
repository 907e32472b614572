package raftnode

import (
	"strings"

	"go.etcd.io/raft/v3"
)

// Status is a snapshot of this member's raft state.
type Status struct {
	ID            uint64
	Leader        uint64
	Term          uint64
	CommitIndex   uint64
	AppliedIndex  uint64 // highest index handed to the application
	SnapshotIndex uint64
	Members       []Member
	// ClusterLevel is the cluster level this member applied (level.go).
	ClusterLevel uint32
	// Progress is each follower's replication state, learners included;
	// only on the leader.
	Progress map[uint64]Progress
}

// Progress is the leader's view of one follower.
type Progress struct {
	Match, Next uint64
	State       string // probe, replicate or snapshot
	IsLearner   bool
}

// Status reports this member's raft state.
func (n *Node) Status() Status {
	st := Status{
		ID:            n.cfg.ID,
		Leader:        n.leader.Load(),
		AppliedIndex:  n.published.Load(),
		SnapshotIndex: n.snapIndex.Load(),
		Members:       n.Members(),
		ClusterLevel:  n.ClusterLevel(),
	}
	select {
	case <-n.stopc:
		return st
	default:
	}
	rs := n.node.Status()
	st.Term, st.CommitIndex = rs.HardState.GetTerm(), rs.HardState.GetCommit()
	if rs.RaftState == raft.StateLeader && len(rs.Progress) > 0 {
		st.Progress = make(map[uint64]Progress, len(rs.Progress))
		for id, pr := range rs.Progress {
			if id == n.cfg.ID {
				continue
			}
			st.Progress[id] = Progress{Match: pr.Match, Next: pr.Next, State: strings.ToLower(strings.TrimPrefix(pr.State.String(), "State")), IsLearner: pr.IsLearner}
		}
	}
	return st
}
