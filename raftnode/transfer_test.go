package raftnode

import (
	"context"
	"errors"
	"testing"
	"time"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
	"go.etcd.io/raft/v3/tracker"
)

// timeoutNowSent reports whether from told to to campaign at once.
func timeoutNowSent(c *testCluster, from, to uint64) bool {
	return len(c.net.messages(func(m sentMsg) bool {
		return m.typ == raftpb.MsgTimeoutNow && m.from == from && m.to == to
	})) > 0
}

// TestTransferLeadership: the leader hands leadership to the member asked
// for, through raft's MsgTimeoutNow rather than an election timeout, and
// answers once it sees the new leader; with no member named, to the most
// caught-up voter, never a learner. Writes go on through the new leader.
func TestTransferLeadership(t *testing.T) {
	c := newTestCluster(t, 3, fastConfig())
	want := c.putN("v", 5)
	lead := c.waitLeader()
	c.addLearner(lead.id)
	c.waitRole(4, true)
	to := c.members[lead.id%3]

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	got, err := lead.node.TransferLeadership(ctx, to.id)
	if err != nil || got != to.id {
		t.Fatalf("transfer from %d to %d: %d, %v", lead.id, to.id, got, err)
	}
	if l := lead.node.Leader(); l != to.id {
		t.Errorf("the old leader answered while it sees %d lead", l)
	}
	if !timeoutNowSent(c, lead.id, to.id) {
		t.Errorf("member %d leads without a MsgTimeoutNow from %d", to.id, lead.id)
	}
	if newLead := c.waitLeader(); newLead.id != to.id {
		t.Fatalf("leader %d, want %d", newLead.id, to.id)
	}
	want = append(want, c.putN("after", 5)...)

	// To this member itself: nothing to do.
	if got, err := to.node.TransferLeadership(ctx, to.id); err != nil || got != to.id {
		t.Errorf("transfer to the leader itself: %d, %v", got, err)
	}
	// No member named: a voter, not the learner.
	got, err = to.node.TransferLeadership(ctx, 0)
	if err != nil || got == to.id || got == 4 {
		t.Fatalf("transfer from %d to the most caught-up voter: %d, %v", to.id, got, err)
	}
	if !timeoutNowSent(c, to.id, got) {
		t.Errorf("member %d leads without a MsgTimeoutNow from %d", got, to.id)
	}
	want = append(want, c.putN("again", 5)...)
	c.waitConverged(want)
}

// TestTransferLeadershipRefused: a transfer to a learner or a stranger is
// refused, as is one asked of a follower; one to a member cut off times
// out, and the leader stays.
func TestTransferLeadershipRefused(t *testing.T) {
	c := newTestCluster(t, 3, fastConfig())
	lead := c.waitLeader()
	c.addLearner(lead.id)
	c.waitRole(4, true)
	follower := c.members[lead.id%3]
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, tt := range []struct {
		name string
		via  *testMember
		to   uint64
		want error
	}{
		{"to a learner", lead, 4, ErrTransferTarget},
		{"to an unknown id", lead, 9, ErrTransferTarget},
		{"through a follower", follower, lead.id, ErrNotLeader},
		{"through a follower, no target", follower, 0, ErrNotLeader},
		{"through the learner", c.members[3], follower.id, ErrNotLeader},
	} {
		if got, err := tt.via.node.TransferLeadership(ctx, tt.to); !errors.Is(err, tt.want) {
			t.Errorf("transfer %s (%d) through %d: %d, %v, want %v", tt.name, tt.to, tt.via.id, got, err, tt.want)
		}
	}

	c.net.isolate(follower.id)
	short, cancelShort := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancelShort()
	_, err := lead.node.TransferLeadership(short, follower.id)
	var tt interface{ LeaderTransferTimeout() bool }
	if !errors.Is(err, ErrTransferTimeout) || !errors.As(err, &tt) || !tt.LeaderTransferTimeout() {
		t.Fatalf("transfer to a member cut off: %v, want ErrTransferTimeout", err)
	}
	c.net.heal()
	if l := c.waitLeader(); l.id != lead.id {
		t.Errorf("leader %d after a transfer that timed out, want %d", l.id, lead.id)
	}
	c.putN("after", 5)
}

// TestTransferee: with no member named, leadership goes to the voter
// connected and heard from lately whose log goes furthest; never to a
// learner, one not heard from or not connected (5 here), or the leader.
func TestTransferee(t *testing.T) {
	pr := func(match uint64, learner, active bool) tracker.Progress {
		return tracker.Progress{Match: match, IsLearner: learner, RecentActive: active}
	}
	tests := []struct {
		name     string
		progress map[uint64]tracker.Progress
		want     uint64 // 0: none
	}{
		{"longest log", map[uint64]tracker.Progress{1: pr(10, false, true), 2: pr(8, false, true), 3: pr(9, false, true)}, 3},
		{"lowest id of equals", map[uint64]tracker.Progress{1: pr(10, false, true), 3: pr(9, false, true), 2: pr(9, false, true)}, 2},
		{"not a learner", map[uint64]tracker.Progress{1: pr(10, false, true), 2: pr(5, false, true), 4: pr(10, true, true)}, 2},
		{"not one not heard from", map[uint64]tracker.Progress{1: pr(10, false, true), 2: pr(10, false, false), 3: pr(4, false, true)}, 3},
		{"alone", map[uint64]tracker.Progress{1: pr(10, false, true)}, 0},
		{"only a learner", map[uint64]tracker.Progress{1: pr(10, false, true), 4: pr(10, true, true)}, 0},
		{"nobody heard from", map[uint64]tracker.Progress{1: pr(10, false, true), 2: pr(10, false, false)}, 0},
		{"not one disconnected", map[uint64]tracker.Progress{1: pr(10, false, true), 5: pr(10, false, true), 2: pr(4, false, true)}, 2},
		{"nobody connected", map[uint64]tracker.Progress{1: pr(10, false, true), 5: pr(10, false, true)}, 0},
	}
	for _, tt := range tests {
		rs := raft.Status{Progress: tt.progress}
		rs.ID = 1
		got, ok := transferee(rs, func(id uint64) bool { return id != 5 })
		if got != tt.want || ok != (tt.want != 0) {
			t.Errorf("%s: transferee = %d, %v; want %d", tt.name, got, ok, tt.want)
		}
	}
}

// TestLearnerErrorsBehave: the new errors classify as the HTTP layer
// expects.
func TestLearnerErrorsBehave(t *testing.T) {
	for _, tt := range []struct {
		err                         error
		kind                        kind
		learnerNotReady, transferTO bool
	}{
		{ErrNotLearner, conflict, false, false},
		{ErrLearnerNotReady, conflict, true, false},
		{ErrNotLeader, unavailable, false, false},
		{ErrTransferTarget, conflict, false, false},
		{ErrTransferTimeout, timeout, false, true},
	} {
		e := tt.err.(*nodeError)
		if e.kind != tt.kind || e.LearnerNotReady() != tt.learnerNotReady || e.LeaderTransferTimeout() != tt.transferTO || e.NoLeader() {
			t.Errorf("%v: kind %d, LearnerNotReady %v, LeaderTransferTimeout %v, NoLeader %v", tt.err, e.kind,
				e.LearnerNotReady(), e.LeaderTransferTimeout(), e.NoLeader())
		}
		if e.HumanMessage() == "" {
			t.Errorf("%v: no sentence for clients", tt.err)
		}
	}
}
