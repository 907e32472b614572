package e2e

import (
	"bytes"
	"fmt"
	"net/http"
	"strconv"
	"testing"

	"github.com/raftkv/raftkv/testcluster"
)

// TestFollowerReadsItsOwnWrites: a write acknowledged by a follower (204) has been
// applied there, so the very next GET on that follower sees it, and a delete likewise.
func TestFollowerReadsItsOwnWrites(t *testing.T) {
	t.Parallel()
	c, leader := startCluster(t, testcluster.Options{InProcess: true})
	for _, f := range followers(c, leader) {
		key := fmt.Sprintf("ryw-%d", f)
		for i := range 20 {
			val := []byte(fmt.Sprintf("value %d through follower %d", i, f))
			r, err := c.Do(f, http.MethodPut, "/"+key, val)
			if err != nil || r.Status != http.StatusNoContent {
				t.Fatalf("node %d: PUT %s: %d %q %v", f, key, r.Status, r.Body, err)
			}
			// The write was applied before the 204, so the node's applied index
			// already covers the index it reports.
			idx, err := strconv.ParseUint(r.Header.Get("X-Raft-Index"), 10, 64)
			if err != nil {
				t.Fatalf("node %d: PUT %s: bad X-Raft-Index %q", f, key, r.Header.Get("X-Raft-Index"))
			}
			got, st, err := c.Get(f, key)
			if err != nil || st != http.StatusOK || !bytes.Equal(got, val) {
				t.Fatalf("node %d: GET %s right after its 204: %d %q %v, want 200 %q", f, key, st, got, err, val)
			}
			s, err := c.Status(f)
			if err != nil {
				t.Fatal(err)
			}
			if s.AppliedIndex < idx {
				t.Fatalf("node %d: applied index %d < X-Raft-Index %d of an acknowledged write", f, s.AppliedIndex, idx)
			}
		}
		if st, err := c.Delete(f, key); err != nil || st != http.StatusNoContent {
			t.Fatalf("node %d: DELETE /key/%s: %d %v, want 204", f, key, st, err)
		}
		if got, st, err := c.Get(f, key); err != nil || st != http.StatusNotFound {
			t.Fatalf("node %d: GET %s right after its delete: %d %q %v, want 404", f, key, st, got, err)
		}
	}
	// The followers' writes reach the leader too.
	c.WaitConverged(t, convergeTimeout)
	for _, f := range followers(c, leader) {
		if got, st, err := c.Get(leader, fmt.Sprintf("ryw-%d", f)); err != nil || st != http.StatusNotFound {
			t.Errorf("leader %d: GET ryw-%d after the delete: %d %q %v, want 404", leader, f, st, got, err)
		}
	}
}
