package raftnode

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"
)

// noticesTo counts the appends without entries the leader sent to
// followers among the messages recorded from mark on.
func noticesTo(c *testCluster, lead uint64, mark int) int {
	n := 0
	for _, m := range c.net.messages(func(sentMsg) bool { return true })[mark:] {
		if m.from == lead && m.typ == raftpb.MsgApp && m.entries == 0 {
			n++
		}
	}
	return n
}

func counterValue(t *testing.T, c prometheus.Counter) float64 {
	t.Helper()
	m := &dto.Metric{}
	if err := c.Write(m); err != nil {
		t.Fatal(err)
	}
	return m.GetCounter().GetValue()
}

// settle waits until every member published its client URL (entries
// proposed in the background at start) and applied everything, so that
// only the test's own writes commit from then on.
func settle(c *testCluster) {
	c.t.Helper()
	c.eventually(15*time.Second, func() error {
		for _, m := range c.running() {
			for _, mem := range m.node.Members() {
				if mem.ClientURL == "" {
					return fmt.Errorf("member %d does not know member %d's client URL yet", m.id, mem.ID)
				}
			}
		}
		return nil
	})
	c.waitConverged([]string{"warm"})
}

// A leader serving writes alone holds the commit notices; its followers
// still apply every write, learning the commit index from heartbeats.
func TestCommitNoticesHeldForIdleFollowers(t *testing.T) {
	counts := map[string]int{}
	for _, tc := range []struct {
		name  string
		delay time.Duration
	}{{"at once", -1}, {"held", time.Hour}} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := fastConfig()
			cfg.CommitNoticeDelay = tc.delay
			c := newTestCluster(t, 3, cfg)
			c.put("warm")
			lead := c.waitLeader()
			settle(c)
			mark := len(c.net.messages(func(sentMsg) bool { return true }))
			want := c.putN(tc.name, 20)
			counts[tc.name] = noticesTo(c, lead.id, mark)
			held := counterValue(t, lead.node.met.noticesHeld)
			t.Logf("%d commit notices sent for 20 writes, %v held", counts[tc.name], held)
			if tc.delay < 0 && held != 0 {
				t.Errorf("%v notices held with the delay off", held)
			}
			if tc.delay > 0 && held < 20 {
				t.Errorf("%v notices held for 20 writes to the leader, want at least 20", held)
			}
			c.waitConverged(append([]string{"warm"}, want...))
		})
	}
	if counts["at once"] < 20 {
		t.Errorf("%d notices sent at once for 20 writes, want at least 20", counts["at once"])
	}
	if counts["held"] >= counts["at once"]/2 {
		t.Errorf("%d notices sent while held against %d at once", counts["held"], counts["at once"])
	}
}

// A follower that forwarded a write gets the commit notice of its entry at
// once, so it can answer its client; the other follower's is held.
func TestForwarderGetsCommitNoticeAtOnce(t *testing.T) {
	cfg := fastConfig()
	cfg.CommitNoticeDelay = time.Hour
	// Heartbeats (which carry the commit index too) every 0.5 s.
	cfg.HeartbeatTicks, cfg.ElectionTicks = 25, 100
	c := newTestCluster(t, 3, cfg)
	c.put("warm")
	lead := c.waitLeader()
	settle(c)
	var fwd, other *testMember
	for _, m := range c.running() {
		switch {
		case m.id == lead.id:
		case fwd == nil:
			fwd = m
		default:
			other = m
		}
	}
	mark := len(c.net.messages(func(sentMsg) bool { return true }))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := fwd.node.Propose(ctx, []byte("forwarded")); err != nil {
		t.Fatalf("propose on follower %d: %v", fwd.id, err)
	}
	var index uint64
	c.eventually(10*time.Second, func() error {
		vals, i := fwd.app.state()
		if !slices.Contains(vals, "forwarded") {
			return fmt.Errorf("follower %d has not applied it", fwd.id)
		}
		index = i
		return nil
	})
	var toFwd, toOther int
	for _, m := range c.net.messages(func(sentMsg) bool { return true })[mark:] {
		if m.from != lead.id || m.typ != raftpb.MsgApp || m.commit < index {
			continue
		}
		switch m.to {
		case fwd.id:
			toFwd++
		case other.id:
			toOther++
		}
	}
	if toFwd == 0 {
		t.Errorf("no append told forwarding follower %d that index %d committed", fwd.id, index)
	}
	if toOther != 0 {
		t.Errorf("%d appends told follower %d of index %d, whose notice should be held", toOther, other.id, index)
	}
	c.waitConverged([]string{"warm", "forwarded"})
}

// Raft may send a commit notice in a later Ready than the one with the
// committed entries: when the follower's appends were paused then, or
// when a heartbeat since (carrying only what the follower acknowledged)
// made raft send the commit index again once the follower acknowledged
// them. Such a notice is held for a follower that waits for nothing, and
// sent at once to one that waits for it.
func TestLateNoticesHeldUnlessAwaited(t *testing.T) {
	n := &Node{cfg: Config{ID: 1, CommitNoticeDelay: time.Hour}, met: newMetrics(nil), notices: newHeldNotices()}
	n.batch = newBatcher(n)
	defer n.notices.timer.Stop()
	notice := func(to, commit uint64) *raftpb.Message {
		return &raftpb.Message{Type: raftpb.MsgApp.Enum(), To: proto.Uint64(to), Commit: proto.Uint64(commit)}
	}
	heartbeat := func(to, commit uint64) *raftpb.Message {
		return &raftpb.Message{Type: raftpb.MsgHeartbeat.Enum(), To: proto.Uint64(to), Commit: proto.Uint64(commit)}
	}
	batch := func(index, seq uint64, forwarders ...uint64) *raftpb.Entry {
		if forwarders != nil {
			n.batch.mu.forwarders = map[uint64][]uint64{seq: forwarders}
		}
		return &raftpb.Entry{Index: proto.Uint64(index), Data: encodeBatch(1, seq, [][]byte{[]byte("v")})}
	}
	sentTo := func(ms []*raftpb.Message) (to []uint64) {
		for _, m := range ms {
			to = append(to, m.GetTo())
		}
		return to
	}
	steps := []struct {
		name      string
		ms        []*raftpb.Message
		committed []*raftpb.Entry
		want      []uint64 // receivers of the messages sent now
	}{
		{"a leader's own write: both held", []*raftpb.Message{notice(2, 5), notice(3, 5)},
			[]*raftpb.Entry{batch(5, 1)}, nil},
		{"a heartbeat to 3 goes", []*raftpb.Message{heartbeat(3, 4)}, nil, []uint64{3}},
		{"raft repeats 3's notice after the heartbeat: held",
			[]*raftpb.Message{notice(3, 5)}, nil, nil},
		{"2 forwarded a write, its appends paused: nothing to send",
			nil, []*raftpb.Entry{batch(6, 2, 2)}, nil},
		{"2's late notice goes at once, 3's is held",
			[]*raftpb.Message{notice(2, 6), notice(3, 6)}, nil, []uint64{2}},
		{"2 was told: its next late notice is held",
			[]*raftpb.Message{notice(2, 6)}, nil, nil},
		{"an entry of unknown origin, 3 paused: 2's goes",
			[]*raftpb.Message{notice(2, 7)}, []*raftpb.Entry{{Index: proto.Uint64(7), Type: raftpb.EntryConfChange.Enum()}}, []uint64{2}},
		{"3's late notice goes at once", []*raftpb.Message{notice(3, 7)}, nil, []uint64{3}},
		{"3 was told: a heartbeat's lower commit index does not undo it",
			[]*raftpb.Message{heartbeat(3, 6), notice(3, 7)}, nil, []uint64{3}},
	}
	for _, s := range steps {
		got := sentTo(n.holdNotices(s.ms, s.committed))
		if !slices.Equal(got, s.want) {
			t.Errorf("%s: sent to %v, want %v", s.name, got, s.want)
		}
	}
}
