package raftnode

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"
)

// TestRequestsWaitForLeader: a member that knows no leader holds a
// proposal, a linearizable read, a membership change and a leadership
// transfer for a while instead of refusing them at once; once it hears
// from the leader the first three go through (and the transfer, asked of
// a follower, is refused as not the leader's), and without a leader they
// fail with ErrNoLeader after leaderWait, not before.
func TestRequestsWaitForLeader(t *testing.T) {
	cfg := fastConfig()
	cfg.ElectionTicks = 25 // leaderWait 250ms, many heartbeats
	c := newTestCluster(t, 3, cfg)
	lead := c.waitLeader()
	c.put("warm")
	f := c.members[lead.id%3]
	wait := f.node.leaderWait()

	cutOff := func() {
		t.Helper()
		c.net.isolate(f.id)
		// A follower that hears nothing for an election timeout starts a
		// pre-vote and forgets the leader.
		c.eventually(10*time.Second, func() error {
			if l := f.node.Leader(); l != 0 {
				return fmt.Errorf("member %d still sees leader %d", f.id, l)
			}
			return nil
		})
	}

	// No leader comes back: refused, after the wait.
	cutOff()
	start := time.Now()
	res := make(chan error, 1)
	f.node.ProposeC() <- Proposal{Data: []byte("refused"), Result: res}
	if err := <-res; !errors.Is(err, ErrNoLeader) {
		t.Fatalf("proposal with no leader: %v, want ErrNoLeader", err)
	}
	if took := time.Since(start); took < wait*9/10 {
		t.Errorf("proposal refused after %v, before waiting %v for a leader", took, wait)
	}
	start = time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := f.node.ReadIndex(ctx); !errors.Is(err, ErrNoLeader) {
		t.Fatalf("read with no leader: %v, want ErrNoLeader", err)
	}
	if took := time.Since(start); took < wait*9/10 {
		t.Errorf("read refused after %v, before waiting %v for a leader", took, wait)
	}
	start = time.Now()
	if err := f.node.AddLearner(ctx, 9, peerURLOf(9)); !errors.Is(err, ErrNoLeader) {
		t.Fatalf("membership change with no leader: %v, want ErrNoLeader", err)
	}
	if took := time.Since(start); took < wait*9/10 {
		t.Errorf("membership change refused after %v, before waiting %v for a leader", took, wait)
	}
	start = time.Now()
	if _, err := f.node.TransferLeadership(ctx, 0); !errors.Is(err, ErrNoLeader) {
		t.Fatalf("leadership transfer with no leader: %v, want ErrNoLeader", err)
	}
	if took := time.Since(start); took < wait*9/10 {
		t.Errorf("leadership transfer refused after %v, before waiting %v for a leader", took, wait)
	}

	// The leader is heard from again while they wait: both go through.
	// The next heartbeat (one tick) reaches the member well within the
	// wait; an attempt that misses it is tried again.
	for attempt := 0; ; attempt++ {
		if attempt > 0 {
			cutOff()
		}
		val := fmt.Sprintf("waited-%d", attempt)
		res := make(chan error, 1)
		f.node.ProposeC() <- Proposal{Data: []byte(val), Result: res}
		read, change := make(chan error, 1), make(chan error, 1)
		go func() {
			_, err := f.node.ReadIndex(ctx)
			read <- err
		}()
		learner := uint64(10 + attempt)
		go func() { change <- f.node.AddLearner(ctx, learner, peerURLOf(learner)) }()
		// A transfer asked of a follower is refused either way, but
		// with where the leader is once one is known.
		transfer := make(chan error, 1)
		go func() {
			_, err := f.node.TransferLeadership(ctx, 0)
			transfer <- err
		}()
		c.net.heal()
		perr, rerr, cerr, terr := <-res, <-read, <-change, <-transfer
		if slices.ContainsFunc([]error{perr, rerr, cerr, terr}, func(err error) bool { return errors.Is(err, ErrNoLeader) }) && attempt < 5 {
			t.Logf("attempt %d: the member heard from no leader within %v", attempt, wait)
			continue
		}
		if perr != nil || rerr != nil || cerr != nil {
			t.Fatalf("proposal %v, read %v, membership change %v while the leader came back; want all served", perr, rerr, cerr)
		}
		if !errors.Is(terr, ErrNotLeader) {
			t.Fatalf("leadership transfer asked of follower %d while the leader came back: %v, want ErrNotLeader", f.id, terr)
		}
		c.eventually(10*time.Second, func() error {
			if vals, _ := f.app.state(); !slices.Contains(vals, val) {
				return fmt.Errorf("%q not applied on member %d", val, f.id)
			}
			return nil
		})
		return
	}
}
