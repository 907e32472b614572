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
