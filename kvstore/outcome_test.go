package kvstore

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/raftkv/raftkv/internal/testutil"
	"github.com/raftkv/raftkv/raftnode"
)

// The tests of this file check what a write is answered when this member
// can no longer learn its outcome: "not applied" (ErrStopped, a refusal by
// raft; 503 to a client) only if no entry carrying it reached raft, and
// "outcome unknown" (504) otherwise.

// status is the HTTP status httpapi answers err with (its statusOf, for
// the errors a write gets): 0 for success.
func status(err error) int {
	var (
		u   interface{ Unavailable() bool }
		to  interface{ Timeout() bool }
		bad interface{ BadRequest() bool }
		c   interface{ Conflict() bool }
		g   interface{ Gone() bool }
	)
	switch {
	case err == nil:
		return 0
	case errors.As(err, &bad) && bad.BadRequest():
		return 400
	case errors.As(err, &c) && c.Conflict():
		return 409
	case errors.As(err, &g) && g.Gone():
		return 410
	case errors.As(err, &u) && u.Unavailable():
		return 503
	case errors.As(err, &to) && to.Timeout():
		return 504
	case errors.Is(err, context.Canceled):
		return 503
	}
	return 500
}

// putAsync starts s.Put(ctx, key) and returns where its error goes.
func putAsync(ctx context.Context, s *Store, key string) <-chan error {
	errc := make(chan error, 1)
	go func() {
		_, err := s.Put(ctx, key, []byte("v"))
		errc <- err
	}()
	return errc
}

// waitProposed waits until member i's raftnode, as leader, has proposed
// want entries of its batcher in all, or a write of errc is answered first.
// It returns an error if the member lost its leadership first: the attempt
// then tests nothing, and runs again on a new cluster.
func (c *inprocCluster) waitProposed(i int, want uint64, errc <-chan error) error {
	c.t.Helper()
	var (
		answered bool
		answer   error
	)
	testutil.WaitFor(c.t, 10*time.Second, fmt.Sprintf("member %d to propose %d entries", i+1, want), func() error {
		n, _ := histogram(c.t, c.regs[i], "raftkv_raft_entry_payloads")
		if n >= want {
			return nil
		}
		select {
		case answer = <-errc:
			answered = true
			return nil
		default:
			return fmt.Errorf("%d proposed", n)
		}
	})
	switch {
	case answered && errors.Is(answer, raftnode.ErrNoLeader):
		return fmt.Errorf("member %d lost its leadership before the write was proposed: %w", i+1, answer)
	case answered:
		c.t.Fatalf("write answered before raft took it: %v", answer)
	}
	return nil
}

// leaderAlone starts a 3-member cluster and stops both followers, so the
// leader still appends proposals but commits none (until CheckQuorum makes
// it step down, two election timeouts later at most). Writes are never
// retried, so each write is one entry of the leader's batcher.
func leaderAlone(t *testing.T) (*inprocCluster, int) {
	c := newInprocClusterWith(t, 3, raftnode.Config{TickInterval: 50 * time.Millisecond, ElectionTicks: 20},
		Config{RetryInterval: time.Hour})
	lead := c.waitLeader()
	c.put(lead, "warm", []byte("up"))
	for i := range c.nodes {
		if i != lead {
			c.stop(i)
		}
	}
	return c, lead
}

func wantUnknown(t *testing.T, what string, err error) {
	t.Helper()
	if status(err) != 504 {
		t.Errorf("%s: %v (status %d), want an unknown outcome (504): raft has the entry, which may still commit", what, err, status(err))
	}
}

// TestWriteOutcomeWhenNodeStops: a write and a membership change raft took
// are answered "outcome unknown" when the node stops under them (as when
// this member is removed); a write arriving afterwards "not applied".
func TestWriteOutcomeWhenNodeStops(t *testing.T) {
	testutil.Retry(t, leaderChangeAttempts, "write outcome when the node stops", func(int) error { return writeOutcomeWhenNodeStops(t) })
}

// writeOutcomeWhenNodeStops is one attempt of TestWriteOutcomeWhenNodeStops
// on a new cluster. It returns an error if the lone leader stepped down
// before raft took the write and the change.
func writeOutcomeWhenNodeStops(t *testing.T) error {
	c, lead := leaderAlone(t)
	defer c.stopAll()
	s, node := c.stors[lead], c.nodes[lead]
	base, _ := histogram(t, c.regs[lead], "raftkv_raft_entry_payloads")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	put := putAsync(ctx, s, "proposed")
	if err := c.waitProposed(lead, base+1, put); err != nil {
		return err
	}
	add := make(chan error, 1)
	go func() { add <- node.AddMember(ctx, 10, "http://127.0.0.1:1") }()
	// Once the change is pending, the next one is refused at once.
	var lost error
	testutil.WaitFor(t, 10*time.Second, "the membership change to be pending", func() error {
		err := node.RemoveMember(ctx, 99)
		switch {
		case errors.Is(err, raftnode.ErrConfChangeInProgress):
			return nil
		case errors.Is(err, raftnode.ErrNoLeader):
			lost = err
			return nil
		}
		return fmt.Errorf("another change: %v", err)
	})
	if lost != nil {
		return fmt.Errorf("member %d lost its leadership before the change was proposed: %w", lead+1, lost)
	}

	node.Stop()
	wantUnknown(t, "write proposed before the node stopped", <-put)
	wantUnknown(t, "membership change proposed before the node stopped", <-add)
	if _, err := s.Put(ctx, "after", []byte("v")); status(err) != 503 {
		t.Errorf("write after the node stopped: %v (status %d), want not applied (503)", err, status(err))
	}
	return nil
}

// TestWriteOutcomeWhenStoreStopsOrCallerLeaves: a write raft took is
// answered "outcome unknown" when its caller cancels, and when the store
// stops (as in a daemon's shutdown); a write arriving afterwards "not
// applied".
func TestWriteOutcomeWhenStoreStopsOrCallerLeaves(t *testing.T) {
	testutil.Retry(t, leaderChangeAttempts, "write outcome when the store stops or the caller leaves", func(int) error {
		return writeOutcomeWhenStoreStopsOrCallerLeaves(t)
	})
}

// writeOutcomeWhenStoreStopsOrCallerLeaves is one attempt of
// TestWriteOutcomeWhenStoreStopsOrCallerLeaves on a new cluster. It returns
// an error if the lone leader stepped down before raft took a write.
func writeOutcomeWhenStoreStopsOrCallerLeaves(t *testing.T) error {
	c, lead := leaderAlone(t)
	defer c.stopAll()
	s := c.stors[lead]
	base, _ := histogram(t, c.regs[lead], "raftkv_raft_entry_payloads")

	ctx, cancel := context.WithCancel(context.Background())
	put := putAsync(ctx, s, "canceled")
	if err := c.waitProposed(lead, base+1, put); err != nil {
		cancel()
		return err
	}
	cancel()
	wantUnknown(t, "write proposed, then canceled by its caller", <-put)

	ctx, cancel = context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	put = putAsync(ctx, s, "proposed")
	if err := c.waitProposed(lead, base+2, put); err != nil {
		return err
	}
	s.Stop()
	wantUnknown(t, "write proposed before the store stopped", <-put)
	if _, err := s.Put(ctx, "after", []byte("v")); status(err) != 503 {
		t.Errorf("write after the store stopped: %v (status %d), want not applied (503)", err, status(err))
	}
	return nil
}

// TestProposalFailedOnlyOnOutrightRefusal: raftnode's answers that leave
// an entry possibly in a log leave its writes waiting; only an outright
// refusal fails them.
func TestProposalFailedOnlyOnOutrightRefusal(t *testing.T) {
	at := time.Now()
	for _, tc := range []struct {
		err  error
		fail bool
	}{
		{raftnode.ErrNoLeader, true},
		{raftnode.ErrProposalDropped, true},
		{raftnode.ErrStopped, true},
		{raftnode.ErrTimeout, false},
		{raftnode.ErrOutcomeUnknown, false},
		{errors.New("raft: something else"), false},
	} {
		s := newBareStore(t)
		p := &pending{id: 1, done: make(chan result, 1), proposedAt: at, handed: true}
		s.pmu.pending[p.id] = p
		s.proposalFailed(refusal{first: 1, reqs: []*pending{p}, at: at, err: tc.err})
		select {
		case r := <-p.done:
			if !tc.fail {
				t.Errorf("%v: the write failed with %v; raft may have its entry", tc.err, r.err)
			} else if !errors.Is(r.err, tc.err) {
				t.Errorf("%v: the write failed with %v", tc.err, r.err)
			}
		default:
			if tc.fail {
				t.Errorf("%v: the write still waits; raft refused it outright", tc.err)
			}
		}
	}
}

// TestClusterRemovedMemberSaysNotAppliedOnlyIfNot: writers keep writing
// through a member while it is removed; every write it answered "not
// applied" (503) must be absent from the cluster afterwards, and every
// write it acknowledged present.
func TestClusterRemovedMemberSaysNotAppliedOnlyIfNot(t *testing.T) {
	c := newInprocCluster(t, 3, raftnode.Config{TickInterval: 50 * time.Millisecond})
	lead := c.waitLeader()
	victim := c.follower()
	s := c.stors[victim]

	const writers = 32
	type answer struct {
		key string
		err error
	}
	var (
		mu      sync.Mutex
		answers []answer
		wg      sync.WaitGroup
	)
	count := func() int {
		mu.Lock()
		defer mu.Unlock()
		return len(answers)
	}
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				key := fmt.Sprintf("w%d/%d", w, i)
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				_, err := s.Put(ctx, key, []byte("v"))
				cancel()
				mu.Lock()
				answers = append(answers, answer{key, err})
				mu.Unlock()
				if err != nil {
					return // the member is gone, or going
				}
				// Out of step with each other, so that proposals reach the
				// leader all the time rather than in waves, one per commit.
				time.Sleep(time.Duration(rand.IntN(2000)) * time.Microsecond)
			}
		}()
	}
	deadline := time.Now().Add(20 * time.Second)
	for count() < 10*writers && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.nodes[lead].RemoveMember(ctx, uint64(victim+1)); err != nil {
		t.Fatalf("remove member %d: %v", victim+1, err)
	}
	select {
	case <-c.nodes[victim].Done():
	case <-time.After(10 * time.Second):
		t.Fatal("removed member did not stop")
	}
	wg.Wait()
	c.stop(victim)

	// A write through the leader commits after everything the removed
	// member had sent it; once applied, the leader's state is final.
	lead = c.waitLeader()
	c.put(lead, "last", []byte("v"))
	by := map[int]int{}
	for _, a := range answers {
		code := status(a.err)
		by[code]++
		_, err := c.stors[lead].local(a.key)
		applied := err == nil
		switch {
		case code == 0 && !applied:
			t.Errorf("%s: acknowledged, but not applied", a.key)
		case (code == 503 || code >= 400 && code < 500) && applied:
			t.Errorf("%s: answered %q (%d, not applied), but applied", a.key, a.err, code)
		}
	}
	t.Logf("%d writes through the removed member, by status (0: acknowledged): %v", len(answers), by)
}
