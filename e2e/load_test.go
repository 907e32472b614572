package e2e

import (
	"fmt"
	"maps"
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/raftkv/raftkv/testcluster"
)

// TestLoadThroughOneFollower: 256 concurrent writers through one follower for 10s. In a
// healthy cluster every request is answered 204 (no 5xx, no timeout, no transport
// error), and afterwards every acknowledged key reads back with its value on every node.
// Throughput is logged, never asserted.
func TestLoadThroughOneFollower(t *testing.T) {
	const (
		writers  = 256
		duration = 10 * time.Second
	)
	c, leader := startCluster(t, testcluster.Options{})
	f := followers(c, leader)[0]
	before, err := c.Status(leader)
	if err != nil {
		t.Fatal(err)
	}

	type result struct {
		acked    map[string][]byte
		statuses map[int]int // HTTP status -> count
		errs     []error
	}
	results := make([]result, writers)
	deadline := time.Now().Add(duration)
	var wg sync.WaitGroup
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := result{acked: make(map[string][]byte), statuses: make(map[int]int)}
			for i := 0; time.Now().Before(deadline); i++ {
				key := fmt.Sprintf("load/%03d/%06d", w, i)
				val := []byte(fmt.Sprintf("w%d-i%d", w, i))
				st, err := c.Put(f, key, val)
				if err != nil {
					r.errs = append(r.errs, err)
					continue
				}
				r.statuses[st]++
				if st == http.StatusNoContent {
					r.acked[key] = val
				}
			}
			results[w] = r
		}()
	}
	wg.Wait()

	acked := make(map[string][]byte)
	statuses := make(map[int]int)
	var errs []error
	for _, r := range results {
		maps.Copy(acked, r.acked)
		for st, n := range r.statuses {
			statuses[st] += n
		}
		errs = append(errs, r.errs...)
	}
	after, err := c.Status(leader)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d writers through follower %d for %v: %d acknowledged (%.0f/s), statuses %v, %d transport errors; term %d -> %d",
		writers, f, duration, len(acked), float64(len(acked))/duration.Seconds(), statuses, len(errs), before.Term, after.Term)

	if after.Term != before.Term || after.Leader != before.Leader {
		t.Errorf("leadership changed under load: leader %d term %d -> leader %d term %d",
			before.Leader, before.Term, after.Leader, after.Term)
	}
	for _, st := range slices.Sorted(maps.Keys(statuses)) {
		if st != http.StatusNoContent {
			t.Errorf("%d requests answered %d, want every one 204", statuses[st], st)
		}
	}
	for i, err := range errs {
		if i == 5 {
			t.Errorf("... and %d more transport errors", len(errs)-5)
			break
		}
		t.Errorf("transport error: %v", err)
	}
	if len(acked) == 0 {
		t.Fatal("no write was acknowledged")
	}

	c.WaitConverged(t, convergeTimeout)
	for _, id := range c.Live() {
		waitKeys(t, c, id, acked, valueTimeout)
	}
}
