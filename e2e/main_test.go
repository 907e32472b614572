package e2e

import (
	"bytes"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/raftkv/raftkv/testcluster"
)

func TestMain(m *testing.M) { testcluster.Main(m) }

// Deadlines of the waits. Generous: nodes built with -race on two cores are slow.
const (
	leaderTimeout   = 20 * time.Second
	convergeTimeout = 30 * time.Second
	valueTimeout    = 30 * time.Second
)

// startCluster starts a cluster and waits for its first leader, which it returns.
// Tests of behaviour a process adds nothing to (the HTTP API's) run their members in
// process; those about crashes, signals and exit codes run processes, which -short
// skips.
func startCluster(t *testing.T, opts testcluster.Options) (*testcluster.Cluster, int) {
	t.Helper()
	if testing.Short() && !opts.InProcess {
		t.Skip("e2e: starts real raftkv processes")
	}
	c := testcluster.Start(t, opts)
	leader := c.WaitLeader(t, leaderTimeout)
	// A majority agreeing is enough for WaitLeader; the tests then talk to
	// any member, so every one must know the leader (a member that does
	// not yet would answer 503 no_leader).
	testcluster.WaitFor(t, leaderTimeout, "every member to know the leader", func() error {
		known := map[uint64]bool{}
		for _, id := range c.Live() {
			st, err := c.Status(id)
			if err != nil {
				return err
			}
			if st.Leader == 0 {
				return fmt.Errorf("node %d knows no leader", id)
			}
			known[st.Leader] = true
		}
		if len(known) != 1 {
			return fmt.Errorf("members name different leaders: %v", known)
		}
		for l := range known {
			leader = int(l) // a new election may have happened meanwhile
		}
		return nil
	})
	return c, leader
}

// followers returns the live nodes other than leader.
func followers(c *testcluster.Cluster, leader int) []int {
	var fs []int
	for _, id := range c.Live() {
		if id != leader {
			fs = append(fs, id)
		}
	}
	return fs
}

// put writes key=val through node id. It retries while the cluster has no leader (503)
// and after a timeout (504, outcome unknown; writing the same value again is harmless),
// logging each retry so a slow or lossy daemon stays visible. Tests that require every
// write to succeed the first time call c.Put directly.
func put(t *testing.T, c *testcluster.Cluster, id int, key string, val []byte) error {
	deadline := time.Now().Add(2 * leaderTimeout)
	for {
		st, err := c.Put(id, key, val)
		switch {
		case err != nil:
			return fmt.Errorf("node %d: PUT %q: %w", id, key, err)
		case st == http.StatusNoContent:
			return nil
		case st == http.StatusGatewayTimeout && time.Now().Before(deadline):
			t.Logf("node %d: PUT %q: 504, retrying", id, key)
		case st == http.StatusServiceUnavailable && time.Now().Before(deadline):
			time.Sleep(50 * time.Millisecond) // back off; the next attempt checks again
		default:
			return fmt.Errorf("node %d: PUT %q: status %d", id, key, st)
		}
	}
}

// mustPut is put that fails the test on error.
func mustPut(t *testing.T, c *testcluster.Cluster, id int, key string, val []byte) {
	t.Helper()
	if err := put(t, c, id, key, val); err != nil {
		t.Fatal(err)
	}
}

// putMany writes every pair of kv, spreading them over nodes with a few concurrent
// writers, and fails the test if any write is not acknowledged.
func putMany(t *testing.T, c *testcluster.Cluster, nodes []int, kv map[string][]byte) {
	t.Helper()
	keys := slices.Sorted(maps.Keys(kv))
	const workers = 8
	errs := make(chan error, len(keys))
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < len(keys); i += workers {
				if err := put(t, c, nodes[i%len(nodes)], keys[i], kv[keys[i]]); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

// waitKeys polls node id until it serves every pair of want, re-reading only the keys
// it has not served correctly yet.
func waitKeys(t *testing.T, c *testcluster.Cluster, id int, want map[string][]byte, timeout time.Duration) {
	t.Helper()
	pending := slices.Sorted(maps.Keys(want))
	testcluster.WaitFor(t, timeout, fmt.Sprintf("node %d to serve %d keys", id, len(want)), func() error {
		const workers = 16
		var mu sync.Mutex
		var still []string
		var firstErr error
		var wg sync.WaitGroup
		for w := range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := w; i < len(pending); i += workers {
					k := pending[i]
					got, st, err := c.Get(id, k)
					if err == nil && st == http.StatusOK && bytes.Equal(got, want[k]) {
						continue
					}
					if err == nil {
						err = fmt.Errorf("GET %q: status %d, got %s, want %s", k, st, clip(got), clip(want[k]))
					}
					mu.Lock()
					still = append(still, k)
					if firstErr == nil {
						firstErr = err
					}
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
		slices.Sort(still)
		pending = still
		if len(pending) > 0 {
			return fmt.Errorf("%d keys not served, e.g. %v", len(pending), firstErr)
		}
		return nil
	})
}

// acked records acknowledged writes; safe for concurrent use.
type acked struct {
	mu sync.Mutex
	m  map[string][]byte
}

func newAcked() *acked { return &acked{m: make(map[string][]byte)} }

func (a *acked) add(key string, val []byte) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.m[key] = val
}

// count returns how many acknowledged keys start with prefix.
func (a *acked) count(prefix string) int {
	a.mu.Lock()
	defer a.mu.Unlock()
	n := 0
	for k := range a.m {
		if strings.HasPrefix(k, prefix) {
			n++
		}
	}
	return n
}

func (a *acked) all() map[string][]byte {
	a.mu.Lock()
	defer a.mu.Unlock()
	return maps.Clone(a.m)
}

// writer writes keys prefix-00000, prefix-00001, ... through node id until stop is
// closed, recording acknowledged ones in a. It pauses briefly after a failed write and
// returns on a transport error if quitOnErr (its node is gone).
func writer(c *testcluster.Cluster, id int, prefix string, a *acked, stop <-chan struct{}, quitOnErr bool) {
	for i := 0; ; i++ {
		select {
		case <-stop:
			return
		default:
		}
		key := fmt.Sprintf("%s-%05d", prefix, i)
		val := []byte("value of " + key)
		st, err := c.Put(id, key, val)
		switch {
		case err == nil && st == http.StatusNoContent:
			a.add(key, val)
		case err != nil && quitOnErr:
			return
		default:
			time.Sleep(20 * time.Millisecond) // back off; not a synchronization
		}
	}
}

// checkMembers waits until node id reports exactly the member ids want, or fails the test.
func checkMembers(t *testing.T, c *testcluster.Cluster, id int, want ...uint64) {
	t.Helper()
	testcluster.WaitFor(t, convergeTimeout, fmt.Sprintf("node %d to list members %v", id, want), func() error {
		s, err := c.Status(id)
		if err != nil {
			return err
		}
		if got := s.MemberIDs(); !slices.Equal(got, want) {
			return fmt.Errorf("members %v", got)
		}
		return nil
	})
}

// clip shortens b for error messages.
func clip(b []byte) string {
	if len(b) > 64 {
		return fmt.Sprintf("%q... (%d bytes)", b[:64], len(b))
	}
	return fmt.Sprintf("%q", b)
}
