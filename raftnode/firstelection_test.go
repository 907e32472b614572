package raftnode

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/quorum"
	"go.etcd.io/raft/v3/raftpb"
	"go.etcd.io/raft/v3/tracker"
	"google.golang.org/protobuf/proto"
)

func TestFirstElectionStep(t *testing.T) {
	status := func(id, lead uint64, state raft.StateType, voters ...uint64) raft.Status {
		var st raft.Status
		st.ID, st.Lead, st.RaftState = id, lead, state
		st.Config = tracker.Config{Voters: quorum.JointConfig{quorum.MajorityConfig{}, nil}}
		for _, v := range voters {
			st.Config.Voters[0][v] = struct{}{}
		}
		return st
	}
	// joint is status with the outgoing half of a joint configuration.
	joint := func(st raft.Status, outgoing ...uint64) raft.Status {
		st.Config.Voters[1] = quorum.MajorityConfig{}
		for _, v := range outgoing {
			st.Config.Voters[1][v] = struct{}{}
		}
		return st
	}
	// unapplied is st with its first entry committed and not yet applied.
	unapplied := func(st raft.Status) raft.Status {
		st.HardState, st.Applied = &raftpb.HardState{Commit: proto.Uint64(1)}, 0
		return st
	}
	up := func(ids ...uint64) func(uint64) bool {
		return func(id uint64) bool { return slices.Contains(ids, id) }
	}
	tests := []struct {
		name      string
		st        raft.Status
		connected func(uint64) bool
		want      firstStep
	}{
		{"the only voter", status(1, 0, raft.StateFollower, 1), up(), stepCampaign},
		{"the only voter, its bootstrap entry committed, not applied", unapplied(status(1, 0, raft.StateFollower, 1)), up(), stepWait},
		{"a quorum of three, an entry committed, not applied", unapplied(status(1, 0, raft.StateFollower, 1, 2, 3)), up(2, 3), stepWait},
		{"a leader is known, an entry committed, not applied", unapplied(status(1, 2, raft.StateFollower, 1, 2, 3)), up(2, 3), stepDone},
		{"the only voter with learners", status(1, 0, raft.StateFollower, 1), up(2, 3), stepCampaign},
		{"a learner", status(2, 0, raft.StateFollower, 1), up(1), stepDone},
		{"not yet a member (joining)", status(4, 0, raft.StateFollower), up(), stepDone},
		{"a leader is known", status(1, 2, raft.StateFollower, 1, 2, 3), up(2, 3), stepDone},
		{"already campaigning", status(1, 0, raft.StatePreCandidate, 1, 2, 3), up(2, 3), stepDone},
		{"no peer connected", status(1, 0, raft.StateFollower, 1, 2, 3), up(), stepWait},
		{"a quorum of three", status(1, 0, raft.StateFollower, 1, 2, 3), up(3), stepAdvance},
		{"a learner connected is no quorum", status(1, 0, raft.StateFollower, 1, 2, 3), up(4), stepWait},
		{"two of five", status(1, 0, raft.StateFollower, 1, 2, 3, 4, 5), up(2), stepWait},
		{"a quorum of five", status(1, 0, raft.StateFollower, 1, 2, 3, 4, 5), up(2, 5), stepAdvance},
		{"two voters, the other up", status(2, 0, raft.StateFollower, 1, 2), up(1), stepAdvance},
		{"two voters, the other down", status(2, 0, raft.StateFollower, 1, 2), up(), stepWait},
		{"joint, a quorum of both halves", joint(status(1, 0, raft.StateFollower, 1, 2, 3), 1, 4, 5), up(2, 4), stepAdvance},
		{"joint, a quorum of one half only", joint(status(1, 0, raft.StateFollower, 1, 2, 3), 1, 4, 5), up(2, 3), stepWait},
	}
	for _, tt := range tests {
		if got := firstElectionStep(tt.st, tt.connected); got != tt.want {
			t.Errorf("%s: firstElectionStep = %d, want %d", tt.name, got, tt.want)
		}
	}
}

// TestLoneVoterLeadsAtOnce: a member that is the only voter leads at once
// when it starts, fresh and again from its data dir, though its election
// timeout is far longer than the test's deadline: raft alone would make it
// wait one to two of those timeouts.
func TestLoneVoterLeadsAtOnce(t *testing.T) {
	cfg := fastConfig()
	cfg.TickInterval, cfg.ElectionTicks = 100*time.Millisecond, 600 // 60-120 s
	c := newTestCluster(t, 1, cfg)
	leadsSoon := func(what string) {
		t.Helper()
		c.eventually(20*time.Second, func() error {
			if l := c.members[0].node.Leader(); l != 1 {
				return fmt.Errorf("%s: leader %d, want 1", what, l)
			}
			return nil
		})
	}
	leadsSoon("fresh")
	want := c.putN("v", 3)
	c.stop(1)
	c.start(1, false)
	leadsSoon("restarted")
	c.waitConverged(append(want, c.putN("w", 2)...))
}
