package testcluster

import (
	"fmt"
	"net/http"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// TestBlackholeLeader: a blackholed leader loses its role to the others,
// who elect one of their own and take writes, while its client port still
// answers; nothing is refused or reset on the way (the blackhole is
// silent); after Unblackhole its rules are gone and it catches up.
func TestBlackholeLeader(t *testing.T) {
	if testing.Short() {
		t.Skip("starts real processes")
	}
	RequireBlackhole(t)
	c := Start(t, Options{Blackholable: true})
	old := c.WaitLeader(t, 20*time.Second)
	if st, err := c.Put(old, "before", []byte("1")); err != nil || st != http.StatusNoContent {
		t.Fatalf("put before: %d %v", st, err)
	}
	c.Blackhole(old)
	c.mu.Lock()
	chain := c.mu.blackholes[old].chain
	c.mu.Unlock()
	WaitFor(t, 20*time.Second, "a new leader among the others", func() error {
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
		t.Fatalf("put on the others: %d %v", st, err)
	}
	WaitFor(t, 20*time.Second, "the blackholed node to know it leads no more", func() error {
		st, err := c.Status(old) // its client port still answers
		if err != nil {
			return err
		}
		if st.Leader == uint64(old) {
			return fmt.Errorf("node %d still reports itself leader", old)
		}
		return nil
	})
	if _, st, _ := c.Get(old, "during"); st == http.StatusOK {
		t.Fatalf("blackholed node answered a linearizable read")
	}
	for _, id := range c.IDs() {
		for _, silent := range []string{"connection refused", "connection reset"} {
			if c.LogContains(id, silent) {
				t.Errorf("node %d log mentions %q: the blackhole was not silent", id, silent)
			}
		}
	}
	c.Unblackhole(old)
	for _, table := range []string{"filter", "mangle"} {
		out, err := exec.Command("iptables", "-w", iptablesWait, "-t", table, "-S").CombinedOutput()
		if err != nil {
			t.Fatalf("iptables -S: %v: %s", err, out)
		}
		if strings.Contains(string(out), chain) {
			t.Errorf("table %s still holds chain %s after Unblackhole:\n%s", table, chain, out)
		}
	}
	c.WaitValue(t, old, "during", []byte("2"), 30*time.Second)
}
