package testcluster

import (
	"fmt"
	"net/http"
	"testing"
	"time"
)

// TestIsolateLeaderAndHeal: through the proxies, an isolated leader loses
// its role to the majority, which keeps taking writes; after Heal every
// member converges on the same state.
func TestIsolateLeaderAndHeal(t *testing.T) {
	if testing.Short() {
		t.Skip("starts real processes")
	}
	c := Start(t, Options{Proxied: true, TickMs: 50})
	old := c.WaitLeader(t, 20*time.Second)
	if st, err := c.Put(old, "before", []byte("1")); err != nil || st != http.StatusNoContent {
		t.Fatalf("put before: %d %v", st, err)
	}
	c.Isolate(old)
	WaitFor(t, 20*time.Second, "a new leader among the majority", func() error {
		for _, id := range c.Live() {
			if id == old {
				continue
			}
			st, err := c.Status(id)
			if err != nil {
				return err
			}
			if st.Leader == 0 || st.Leader == uint64(old) {
				return fmt.Errorf("node %d sees leader %d", id, st.Leader)
			}
		}
		return nil
	})
	// On a loaded machine the majority may be between two leaders when
	// the put comes (503, certainly not applied): a client sends it again.
	other := old%3 + 1
	WaitFor(t, 20*time.Second, "a put on the majority", func() error {
		if st, err := c.Put(other, "during", []byte("2")); err != nil || st != http.StatusNoContent {
			return fmt.Errorf("status %d, %v", st, err)
		}
		return nil
	})
	// The isolated member must not serve a linearizable read.
	if _, st, _ := c.Get(old, "during"); st == http.StatusOK {
		t.Fatalf("isolated member answered a linearizable read")
	}
	c.Heal()
	c.WaitValue(t, old, "during", []byte("2"), 20*time.Second)
	WaitFor(t, 20*time.Second, "equal digests", func() error {
		var first Digest
		for i, id := range c.Live() {
			d, err := c.Digest(id)
			if err != nil {
				return err
			}
			if i == 0 {
				first = d
			} else if d != first {
				return fmt.Errorf("node %d digest %+v, node %d %+v", id, d, c.Live()[0], first)
			}
		}
		if first.Keys != 2 {
			return fmt.Errorf("digest counts %d keys, want 2", first.Keys)
		}
		return nil
	})
}

// TestAddedNodeLinks: a node added to a proxied cluster has its links
// proxied too, each one on its own, though the others reach it at one
// URL. In a partition that leaves it in the majority with two original
// nodes (four voters: a quorum of three), writes commit only through its
// links; with only the leader's link to it cut, the others still take
// writes while it cannot serve a linearizable read, as its inbound proxy
// cut the leader's connections and not the others'.
func TestAddedNodeLinks(t *testing.T) {
	if testing.Short() {
		t.Skip("starts real processes")
	}
	c := Start(t, Options{Proxied: true, TickMs: 50})
	leader := c.WaitLeader(t, 20*time.Second)
	added := c.AddNode(t)
	put := func(key string) {
		t.Helper()
		WaitFor(t, 20*time.Second, "a put of "+key+" through the leader", func() error {
			if st, err := c.Put(leader, key, []byte(key)); err != nil || st != http.StatusNoContent {
				return fmt.Errorf("status %d, %v", st, err)
			}
			return nil
		})
	}
	put("joined")
	c.WaitValue(t, added, "joined", []byte("joined"), 20*time.Second)

	var others []int
	for _, id := range c.IDs() {
		if id != leader && id != added {
			others = append(others, id)
		}
	}
	c.Partition([]int{leader, others[0], added}, []int{others[1]})
	put("with-the-added-node")
	c.WaitValue(t, added, "with-the-added-node", []byte("with-the-added-node"), 20*time.Second)

	// The read must fail while the leader it was cut from keeps leading. On
	// a loaded machine the others may hear the leader's heartbeats late and
	// a new term begin, and the added node may lead or reach the new
	// leader: then cut it from whoever leads, and try again.
	for attempt := 1; ; attempt++ {
		term, ok := leaderTerm(c, leader)
		ok = ok && leader != added
		if ok {
			c.SetLinks(func(a, b int) bool { return a == leader && b == added || a == added && b == leader })
			put("without-it")
			_, st, _ := c.Get(added, "without-it")
			if st != http.StatusOK {
				break
			}
		}
		all, _ := c.statuses()
		moved := !ok
		for _, s := range all {
			moved = moved || s.Term != term
		}
		if !moved {
			t.Fatalf("the added node served a linearizable read with its link to leader %d cut, all in term %d (%s)", leader, term, summarize(all))
		}
		if attempt == 3 {
			t.Fatalf("the leader changed in each of %d tries to cut the added node from it (%s)", attempt, summarize(all))
		}
		t.Logf("leader %d (term %d) did not keep leading while cut from the added node (%s); again", leader, term, summarize(all))
		c.Heal()
		if leader = c.WaitLeader(t, 20*time.Second); leader == added {
			// Cut from everyone, it steps down (CheckQuorum) and the
			// others elect one of themselves.
			c.Isolate(added)
			WaitFor(t, 20*time.Second, "a leader other than the added node", func() error {
				s, err := c.Status(others[0])
				if err == nil && (s.Leader == 0 || s.Leader == uint64(added)) {
					err = fmt.Errorf("node %d knows leader %d", others[0], s.Leader)
				}
				return err
			})
			c.Heal()
			leader = c.WaitLeader(t, 20*time.Second)
		}
	}

	c.Heal()
	c.WaitValue(t, added, "without-it", []byte("without-it"), 20*time.Second)
}

// leaderTerm returns the term in which node id leads, and false if it
// does not lead (or does not answer).
func leaderTerm(c *Cluster, id int) (uint64, bool) {
	s, err := c.Status(id)
	return s.Term, err == nil && s.Leader == uint64(id)
}
