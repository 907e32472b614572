package e2e

import (
	"fmt"
	"sync"
	"testing"

	"github.com/raftkv/raftkv/testcluster"
)

// TestKillLeaderLosesNoAckedWrite: writers run through the leader and a follower while
// the leader is killed with SIGKILL. A new leader is elected and takes writes, and every
// write acknowledged before, during and after the failover is readable on every node.
func TestKillLeaderLosesNoAckedWrite(t *testing.T) {
	t.Parallel()
	c, leader := startCluster(t, testcluster.Options{})
	follower := followers(c, leader)[0]
	a := newAcked()
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); writer(c, leader, "via-leader", a, stop, true) }()
	go func() { defer wg.Done(); writer(c, follower, "via-follower", a, stop, false) }()
	defer func() {
		select {
		case <-stop:
		default:
			close(stop)
		}
		wg.Wait()
	}()

	testcluster.WaitFor(t, valueTimeout, "50 acknowledged writes", func() error {
		if n := a.count("via-"); n < 50 {
			return fmt.Errorf("%d acknowledged", n)
		}
		return nil
	})
	c.Kill(leader)
	t.Logf("killed leader %d after %d acknowledged writes", leader, a.count("via-"))

	newLeader := c.WaitLeader(t, leaderTimeout)
	if newLeader == leader {
		t.Fatalf("WaitLeader returned the killed node %d", leader)
	}
	before := a.count("via-follower")
	testcluster.WaitFor(t, valueTimeout, "20 more writes through the follower", func() error {
		if n := a.count("via-follower"); n < before+20 {
			return fmt.Errorf("%d more acknowledged", n-before)
		}
		return nil
	})
	close(stop)
	wg.Wait()
	mustPut(t, c, newLeader, "after-failover", []byte("x"))
	a.add("after-failover", []byte("x"))

	c.WaitConverged(t, convergeTimeout)
	want := a.all()
	t.Logf("checking %d acknowledged writes on nodes %v", len(want), c.Live())
	for _, id := range c.Live() {
		waitKeys(t, c, id, want, valueTimeout)
	}
}

// TestFollowerRestartsFromWAL: a follower killed with SIGKILL and restarted with the same
// data dir serves the writes made before it died and those made while it was down.
func TestFollowerRestartsFromWAL(t *testing.T) {
	t.Parallel()
	c, leader := startCluster(t, testcluster.Options{})
	f := followers(c, leader)[0]
	want := make(map[string][]byte)
	for i := range 20 {
		k := fmt.Sprintf("before-%02d", i)
		want[k] = []byte("v-" + k)
		mustPut(t, c, leader, k, want[k])
	}
	c.WaitConverged(t, convergeTimeout)
	c.Kill(f)

	down := make(map[string][]byte)
	for i := range 50 {
		k := fmt.Sprintf("while-down-%02d", i)
		down[k] = []byte("v-" + k)
		want[k] = down[k]
	}
	putMany(t, c, []int{leader}, down)

	c.Restart(f)
	waitKeys(t, c, f, want, valueTimeout)
	mustPut(t, c, f, "after-restart", []byte("x"))
	c.WaitValue(t, leader, "after-restart", []byte("x"), valueTimeout)
}

// TestWholeClusterKillKeepsAckedWrites: writers run through every node while all nodes
// are killed with SIGKILL; after a restart of all of them every acknowledged write is
// there.
func TestWholeClusterKillKeepsAckedWrites(t *testing.T) {
	t.Parallel()
	c, _ := startCluster(t, testcluster.Options{})
	a := newAcked()
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for _, id := range c.Live() {
		wg.Add(1)
		go func() { defer wg.Done(); writer(c, id, fmt.Sprintf("via-%d", id), a, stop, false) }()
	}
	defer func() {
		select {
		case <-stop:
		default:
			close(stop)
		}
		wg.Wait()
	}()
	testcluster.WaitFor(t, valueTimeout, "100 acknowledged writes", func() error {
		if n := a.count("via-"); n < 100 {
			return fmt.Errorf("%d acknowledged", n)
		}
		return nil
	})
	ids := c.Live()
	for _, id := range ids {
		c.Kill(id)
	}
	close(stop)
	wg.Wait()
	want := a.all()
	t.Logf("killed all nodes after %d acknowledged writes", len(want))

	for _, id := range ids {
		c.Restart(id)
	}
	leader := c.WaitLeader(t, leaderTimeout)
	c.WaitConverged(t, convergeTimeout)
	for _, id := range ids {
		waitKeys(t, c, id, want, valueTimeout)
	}
	mustPut(t, c, leader, "after-restart", []byte("x"))
}
