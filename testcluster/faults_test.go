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
	other := old%3 + 1
	if st, err := c.Put(other, "during", []byte("2")); err != nil || st != http.StatusNoContent {
		t.Fatalf("put on the majority: %d %v", st, err)
	}
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

	c.SetLinks(func(a, b int) bool { return a == leader && b == added || a == added && b == leader })
	put("without-it")
	if _, st, _ := c.Get(added, "without-it"); st == http.StatusOK {
		t.Fatal("the added node served a linearizable read with its link to the leader cut")
	}

	c.Heal()
	c.WaitValue(t, added, "without-it", []byte("without-it"), 20*time.Second)
}
