package raftnode

import (
	"bytes"
	"context"
	"encoding/gob"
	"errors"
	"fmt"
	"maps"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// addLearner grows the cluster by member len+1, added as a learner
// through member via, and starts it.
func (c *testCluster) addLearner(via uint64) *testMember {
	c.t.Helper()
	id := uint64(len(c.peers) + 1)
	c.peers = append(c.peers, peerURLOf(id))
	c.dirs = append(c.dirs, filepath.Join(filepath.Dir(c.dirs[0]), fmt.Sprintf("member-%d", id)))
	c.members = append(c.members, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.members[via-1].node.AddLearner(ctx, id, c.peers[id-1]); err != nil {
		c.t.Fatalf("add learner %d: %v", id, err)
	}
	return c.start(id, true)
}

// waitRole waits until every running member lists id with the role
// learner says.
func (c *testCluster) waitRole(id uint64, learner bool) {
	c.t.Helper()
	c.eventually(10*time.Second, func() error {
		for _, m := range c.running() {
			i := slices.IndexFunc(m.node.Members(), func(mem Member) bool { return mem.ID == id })
			if i < 0 {
				return fmt.Errorf("member %d does not list %d", m.id, id)
			}
			if got := m.node.Members()[i].IsLearner; got != learner {
				return fmt.Errorf("member %d lists %d with IsLearner %v", m.id, id, got)
			}
		}
		return nil
	})
}

// promote promotes id through via, retrying while the learner has not
// caught up yet.
func (c *testCluster) promote(via, id uint64) {
	c.t.Helper()
	c.eventually(10*time.Second, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		return c.members[via-1].node.PromoteMember(ctx, id)
	})
}

// isVoter reports whether raft on m counts id among its voters.
func isVoter(m *testMember, id uint64) bool {
	_, ok := m.node.node.Status().Config.Voters.IDs()[id]
	return ok
}

// TestLearner: a learner receives the log but takes no part in the
// quorum: cut off, the leader of a one-voter cluster still commits alone.
// While it is behind, the leader refuses to promote it (and a member that
// does not lead cannot tell); caught up again, it is promoted, and every
// member, raft's configuration included, counts it a voter.
func TestLearner(t *testing.T) {
	c := newTestCluster(t, 1, fastConfig())
	leader := c.waitLeader()
	want := c.putN("v", 5)
	learner := c.addLearner(1)
	c.waitConverged(want)
	c.waitRole(2, true)
	if isVoter(leader, 2) {
		t.Fatal("raft counts the learner among the voters")
	}
	if pr, ok := leader.node.Status().Progress[2]; !ok || !pr.IsLearner {
		t.Errorf("leader's progress of the learner: %+v (present %v), want IsLearner", pr, ok)
	}
	// A learner is no voter to remain: raft would panic on a cluster
	// without one.
	rctx, rcancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer rcancel()
	if err := leader.node.RemoveMember(rctx, 1); !errors.Is(err, ErrLastMember) {
		t.Fatalf("removing the only voter beside a learner: %v, want ErrLastMember", err)
	}

	c.net.isolate(2)
	want = append(want, c.putN("alone", 40)...)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := leader.node.PromoteMember(ctx, 2)
	var lr interface{ LearnerNotReady() bool }
	if !errors.Is(err, ErrLearnerNotReady) || !errors.As(err, &lr) || !lr.LearnerNotReady() {
		t.Fatalf("promoting a learner cut off since 40 entries: %v, want ErrLearnerNotReady", err)
	}
	if h := err.(interface{ HumanMessage() string }).HumanMessage(); !strings.Contains(h, "learner 2 is not caught up") {
		t.Errorf("refusal says %q", h)
	}
	if err := learner.node.PromoteMember(ctx, 2); !errors.Is(err, ErrNotLeader) {
		t.Errorf("promoting through the learner itself: %v, want ErrNotLeader", err)
	}
	c.waitRole(2, true)

	c.net.heal()
	c.waitConverged(want)
	c.promote(1, 2)
	c.waitRole(2, false)
	if !isVoter(leader, 2) || !isVoter(learner, 2) {
		t.Error("raft does not count the promoted member among the voters")
	}
	if err := leader.node.PromoteMember(ctx, 2); !errors.Is(err, ErrNotLearner) {
		t.Errorf("promoting it again: %v, want ErrNotLearner", err)
	}
	want = append(want, c.putN("voter", 5)...)
	c.waitConverged(want)
}

// TestLearnerCatchesUpBySnapshot: a learner added after the log was
// compacted catches up from a snapshot; once a later snapshot covers its
// addition, members restarted from their snapshots (the learner too) still
// list it as a learner, and after its promotion as a voter.
func TestLearnerCatchesUpBySnapshot(t *testing.T) {
	cfg := fastConfig()
	cfg.SnapshotCount, cfg.SnapshotCatchUpEntries = 20, 5
	c := newTestCluster(t, 3, cfg)
	want := c.putN("v", 40)
	lead := c.waitLeader()
	c.eventually(10*time.Second, func() error {
		if first, _ := lead.node.disk.storage.FirstIndex(); first < 10 {
			return fmt.Errorf("leader's log starts at %d", first)
		}
		return nil
	})
	learner := c.addLearner(lead.id)
	want = append(want, c.putN("w", 5)...)
	c.waitConverged(want)
	if learner.app.snapshotsApplied() == 0 {
		t.Fatal("the learner caught up without a snapshot")
	}
	c.waitRole(4, true)

	// A snapshot on every member that covers the learner's addition.
	addedAt := c.waitLeader().node.Status().CommitIndex
	want = append(want, c.putN("x", 30)...)
	c.eventually(10*time.Second, func() error {
		for _, m := range c.running() {
			if s := m.node.Status().SnapshotIndex; s <= addedAt {
				return fmt.Errorf("member %d's snapshot is at %d, the learner was added by %d", m.id, s, addedAt)
			}
		}
		return nil
	})
	restart := func(role bool) {
		t.Helper()
		for _, id := range []uint64{1, 4} {
			c.stop(id)
			c.net.isolate(id) // alone, the member has only its own files to go by
			m := c.start(id, false)
			if m.node.Status().SnapshotIndex == 0 {
				t.Fatalf("member %d restarted without a snapshot", id)
			}
			i := slices.IndexFunc(m.node.Members(), func(mem Member) bool { return mem.ID == 4 })
			if i < 0 || m.node.Members()[i].IsLearner != role {
				t.Fatalf("member %d restarted with members %+v, want 4 with IsLearner %v", id, m.node.Members(), role)
			}
			c.net.heal()
		}
	}
	restart(true)
	c.promote(c.waitLeader().id, 4)
	c.waitRole(4, false)
	promotedBy := c.waitLeader().node.Status().CommitIndex
	want = append(want, c.putN("y", 30)...)
	c.eventually(10*time.Second, func() error {
		for _, m := range c.running() {
			if s := m.node.Status().SnapshotIndex; s <= promotedBy {
				return fmt.Errorf("member %d's snapshot is at %d, the learner was promoted by %d", m.id, s, promotedBy)
			}
		}
		return nil
	})
	restart(false)
	want = append(want, c.putN("z", 5)...)
	c.waitConverged(want)
}

// TestPromoteRefused: only a learner can be promoted, only by the leader.
func TestPromoteRefused(t *testing.T) {
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
		id   uint64
		want error
	}{
		{"a voter", lead, follower.id, ErrNotLearner},
		{"the leader", lead, lead.id, ErrNotLearner},
		{"an unknown id", lead, 9, ErrMemberNotFound},
		{"through a follower", follower, 4, ErrNotLeader},
	} {
		if err := tt.via.node.PromoteMember(ctx, tt.id); !errors.Is(err, tt.want) {
			t.Errorf("promoting %s (%d) through %d: %v, want %v", tt.name, tt.id, tt.via.id, err, tt.want)
		}
	}
	c.waitRole(4, true)
	c.promote(lead.id, 4)
	c.waitRole(4, false)
}

func TestLearnerChecks(t *testing.T) {
	m := newMembership()
	m.Members[1] = Member{ID: 1, PeerURL: "http://127.0.0.1:12379"}
	m.Members[4] = Member{ID: 4, PeerURL: "http://127.0.0.1:42379", IsLearner: true}
	tests := []struct {
		name  string
		err   error
		want  error
		human string
	}{
		{"promote learner", m.checkPromote(4), nil, ""},
		{"promote voter", m.checkPromote(1), ErrNotLearner, "member 1 is a voting member already; only a learner can be promoted"},
		{"promote unknown", m.checkPromote(9), ErrMemberNotFound, "there is no member 9"},
		{"transfer to voter", m.checkTransferee(1), nil, ""},
		{"transfer to learner", m.checkTransferee(4), ErrTransferTarget, "member 4 is a learner, which cannot lead; promote it first"},
		{"transfer to unknown", m.checkTransferee(9), ErrTransferTarget, "there is no member 9 to transfer leadership to"},
		// raft panics on a change that leaves no voter.
		{"remove the only voter", m.checkRemove(1), ErrLastMember, "cannot remove the last voting member"},
		{"remove the learner", m.checkRemove(4), nil, ""},
	}
	for _, tt := range tests {
		if tt.want == nil {
			if tt.err != nil {
				t.Errorf("%s: %v", tt.name, tt.err)
			}
			continue
		}
		if !errors.Is(tt.err, tt.want) {
			t.Errorf("%s: %v, want %v", tt.name, tt.err, tt.want)
			continue
		}
		if h := tt.err.(interface{ HumanMessage() string }).HumanMessage(); h != tt.human {
			t.Errorf("%s: says %q, want %q", tt.name, h, tt.human)
		}
	}
}

// TestEnvelopeWithoutLearners: a snapshot written before members had
// IsLearner decodes with every member a voter, as they all were; one
// written now keeps the learners.
func TestEnvelopeWithoutLearners(t *testing.T) {
	type oldMember struct {
		ID                 uint64
		PeerURL, ClientURL string
	}
	type oldMembership struct {
		Members map[uint64]oldMember
		Removed map[uint64]bool
	}
	type oldEnvelope struct{ Membership oldMembership }
	var buf bytes.Buffer
	old := oldEnvelope{Membership: oldMembership{
		Members: map[uint64]oldMember{1: {1, "http://a:1", "http://a:2"}, 2: {2, "http://b:1", ""}},
		Removed: map[uint64]bool{3: true},
	}}
	if err := gob.NewEncoder(&buf).Encode(old); err != nil {
		t.Fatal(err)
	}
	env, err := decodeEnvelope(buf.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	want := map[uint64]Member{1: {ID: 1, PeerURL: "http://a:1", ClientURL: "http://a:2"}, 2: {ID: 2, PeerURL: "http://b:1"}}
	if len(env.Membership.Members) != 2 || env.Membership.Members[1] != want[1] || env.Membership.Members[2] != want[2] || !env.Membership.Removed[3] {
		t.Fatalf("old envelope decoded as %+v", env.Membership)
	}

	m := newMembership()
	m.Members[1] = want[1]
	m.Members[4] = Member{ID: 4, PeerURL: "http://d:1", IsLearner: true}
	data, err := encodeEnvelope(m)
	if err != nil {
		t.Fatal(err)
	}
	if env, err = decodeEnvelope(data); err != nil || env.Membership.Members[4] != m.Members[4] || env.Membership.Members[1] != want[1] {
		t.Fatalf("envelope with a learner decoded as %+v, %v", env.Membership, err)
	}
}

// peerURLs returns each member's URL in m's member list and, for the
// others, in its transport.
func peerURLs(m *testMember) (list, transport map[uint64]string) {
	list = map[uint64]string{}
	for _, mem := range m.node.Members() {
		list[mem.ID] = mem.PeerURL
	}
	e := m.node.transport.(*endpoint)
	e.mu.Lock()
	defer e.mu.Unlock()
	return list, maps.Clone(e.peers)
}

// TestUpdateMember: a member's new peer URL reaches every member's list
// and transport, and stays after restarts, from the WAL and from a
// snapshot; an unknown id, a URL in use and a bad URL are refused.
func TestUpdateMember(t *testing.T) {
	cfg := fastConfig()
	cfg.SnapshotCount, cfg.SnapshotCatchUpEntries = 20, 5
	c := newTestCluster(t, 3, cfg)
	lead := c.waitLeader()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, tc := range []struct {
		id   uint64
		url  string
		want error
	}{
		{9, "http://member-9.test:2380", ErrMemberNotFound},
		{3, peerURLOf(2), ErrPeerURLExists},
		{3, "member-3.test:2380", ErrInvalidMember},
	} {
		if err := lead.node.UpdateMember(ctx, tc.id, tc.url); !errors.Is(err, tc.want) {
			t.Errorf("UpdateMember(%d, %s) = %v, want %v", tc.id, tc.url, err, tc.want)
		}
	}
	const moved = "http://member-3-moved.test:2380"
	if err := lead.node.UpdateMember(ctx, 3, moved); err != nil {
		t.Fatal(err)
	}
	want := c.putN("a", 3)
	check := func() error {
		for _, m := range c.running() {
			list, tr := peerURLs(m)
			if list[3] != moved {
				return fmt.Errorf("member %d lists member 3 at %s", m.id, list[3])
			}
			if m.id != 3 && tr[3] != moved {
				return fmt.Errorf("member %d sends to member 3 at %s", m.id, tr[3])
			}
		}
		return nil
	}
	c.eventually(10*time.Second, check)

	// From the WAL: member 1's command line names member 3's old URL,
	// and the update replayed after it wins.
	c.stop(1)
	c.start(1, false)
	c.waitConverged(append(want, c.putN("b", 2)...))
	if err := check(); err != nil {
		t.Fatal(err)
	}
	// From a snapshot taken after the update: the member list has it.
	c.putN("c", 30)
	c.eventually(10*time.Second, func() error {
		if s := c.members[1].node.Status().SnapshotIndex; s < 20 {
			return fmt.Errorf("member 2's snapshot is at %d", s)
		}
		return nil
	})
	c.stop(2)
	c.net.isolate(2)
	m := c.start(2, false)
	if list, _ := peerURLs(m); list[3] != moved || m.node.Status().SnapshotIndex == 0 {
		t.Fatalf("member 2 restarted from snapshot %d lists member 3 at %s", m.node.Status().SnapshotIndex, list[3])
	}
	// Its command line, not edited, still names the old URL, and comes
	// first (it may name a proxy); the member warns of the difference.
	if _, tr := peerURLs(m); tr[3] != peerURLOf(3) {
		t.Fatalf("member 2 restarted on its old command line sends to member 3 at %s, want %s", tr[3], peerURLOf(3))
	}
	c.net.heal()
}

// TestSnapshotFromLeaderUpdatesTransport: a member that was down while
// another member's peer URL changed, and catches up by the leader's
// snapshot because the change's entry was compacted away, sends to the
// new URL, as a member that applied the change's entry does (it kept the
// old one until it restarted).
func TestSnapshotFromLeaderUpdatesTransport(t *testing.T) {
	cfg := fastConfig()
	cfg.SnapshotCount, cfg.SnapshotCatchUpEntries = 20, 5
	c := newTestCluster(t, 3, cfg)
	lead := c.waitLeader()
	down := lead.id%3 + 1 // a follower
	moving := down%3 + 1  // another member, the leader maybe
	c.putN("a", 3)
	c.stop(down)

	const moved = "http://moved.test:2380"
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := lead.node.UpdateMember(ctx, moving, moved); err != nil {
		t.Fatal(err)
	}
	c.putN("b", 40)
	c.eventually(10*time.Second, func() error {
		if s := lead.node.Status().SnapshotIndex; s < 40 {
			return fmt.Errorf("the leader's snapshot is at %d", s)
		}
		return nil
	})

	m := c.start(down, false)
	c.eventually(10*time.Second, func() error {
		if m.node.Status().SnapshotIndex == 0 {
			return errors.New("no snapshot from the leader yet")
		}
		list, tr := peerURLs(m)
		if list[moving] != moved || tr[moving] != moved {
			return fmt.Errorf("member %d lists member %d at %s and sends to it at %s, want %s", down, moving, list[moving], tr[moving], moved)
		}
		return nil
	})
}

// TestSnapshotKeepsOwnViewOfPeers: each member's --cluster names the
// others at URLs of its own (a proxy per link, as the fault tests run).
// A follower that catches up by the leader's snapshot keeps sending to
// the URLs its own command line gives, and lists them: the snapshot's
// list holds the leader's view of the same members, set by the same
// bootstrap entries. (Before, it took the leader's URLs, and cutting
// its own links no longer cut it off.)
func TestSnapshotKeepsOwnViewOfPeers(t *testing.T) {
	cfg := fastConfig()
	cfg.SnapshotCount, cfg.SnapshotCatchUpEntries = 20, 5
	view := func(from, to uint64) string { return fmt.Sprintf("http://link-%d-to-%d.test:2380", from, to) }
	c := newTestCluster(t, 3, cfg, func(c *testCluster) {
		c.peersOf = func(id uint64) []string {
			var out []string
			for to := uint64(1); to <= 3; to++ {
				out = append(out, view(id, to))
			}
			return out
		}
	})
	lead := c.waitLeader()
	down := lead.id%3 + 1 // a follower
	c.putN("a", 3)
	c.stop(down)
	c.putN("b", 40)
	c.eventually(10*time.Second, func() error {
		if s := lead.node.Status().SnapshotIndex; s < 40 {
			return fmt.Errorf("the leader's snapshot is at %d", s)
		}
		return nil
	})
	m := c.start(down, false)
	c.eventually(10*time.Second, func() error {
		if m.node.Status().SnapshotIndex < 40 {
			return errors.New("no snapshot from the leader yet")
		}
		return nil
	})
	list, tr := peerURLs(m)
	for to := uint64(1); to <= 3; to++ {
		if to == down {
			continue
		}
		if tr[to] != view(down, to) || list[to] != view(down, to) {
			t.Errorf("member %d, caught up by the leader's snapshot, sends to member %d at %s and lists it at %s; want its own %s",
				down, to, tr[to], list[to], view(down, to))
		}
	}
}
