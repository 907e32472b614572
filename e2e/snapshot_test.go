package e2e

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"net/http"
	"testing"
	"time"

	"github.com/raftkv/raftkv/testcluster"
)

// waitSnapshot waits until node id reports a snapshot (snapshotIndex > 0).
func waitSnapshot(t *testing.T, c *testcluster.Cluster, id int) {
	t.Helper()
	testcluster.WaitFor(t, convergeTimeout, fmt.Sprintf("node %d to report a snapshot", id), func() error {
		s, err := c.Status(id)
		if err != nil {
			return err
		}
		if s.SnapshotIndex == 0 {
			return fmt.Errorf("snapshotIndex 0 at applied index %d", s.AppliedIndex)
		}
		return nil
	})
}

// TestNewNodeCatchesUpFromSnapshot: the log is compacted (snapshot every 50 entries,
// 10 kept), so a node added afterwards can only catch up from a snapshot; it must serve
// every key and then take part in writes.
func TestNewNodeCatchesUpFromSnapshot(t *testing.T) {
	t.Parallel()
	c, _ := startCluster(t, testcluster.Options{SnapshotCount: 50, SnapshotCatchUpEntries: 10})
	want := make(map[string][]byte)
	for i := range 300 {
		k := fmt.Sprintf("key-%03d", i)
		want[k] = []byte(fmt.Sprintf("value-%03d", i))
	}
	putMany(t, c, c.Live(), want)
	c.WaitConverged(t, convergeTimeout)
	for _, id := range c.Live() {
		waitSnapshot(t, c, id)
	}

	n := c.AddNode(t)
	if n != 4 {
		t.Fatalf("AddNode returned id %d, want 4", n)
	}
	waitKeys(t, c, n, want, 60*time.Second)
	// Entry 1 is long compacted away on every node, so node 4 restored a snapshot.
	waitSnapshot(t, c, n)
	for _, id := range c.Live() {
		checkMembers(t, c, id, 1, 2, 3, 4)
	}
	mustPut(t, c, n, "written-via-4", []byte("x"))
	c.WaitValue(t, 1, "written-via-4", []byte("x"), valueTimeout)
	c.WaitLeader(t, leaderTimeout)
}

// binaryValues returns keys (some containing '/' or needing URL escaping) with values that are not text: every
// byte value alone, all 256 in a row, NULs, invalid UTF-8 and a large random blob.
func binaryValues() map[string][]byte {
	kv := make(map[string][]byte)
	all := make([]byte, 256)
	for b := range 256 {
		kv[fmt.Sprintf("bin/byte/%03d", b)] = []byte{byte(b)}
		all[b] = byte(b)
	}
	kv["bin/all-bytes"] = all
	kv["bin/nuls"] = make([]byte, 100)
	kv["bin/nul-inside"] = []byte("a\x00b\x00\x00c")
	kv["bin/invalid-utf8"] = []byte("\xff\xfe\xfd\xc3\x28\xa0\xa1\xe2\x28\xa1\xf0\x28\x8c\xbc\xed\xa0\x80")
	kv["bin/crlf"] = []byte("line1\r\nline2\n\r\x1b[0m")
	kv["bin/a/b/c/d"] = []byte("nested\x00path")
	// Key names that need percent-encoding in a URL, and a "//" that must not be cleaned.
	kv["bin/with space, ünïcödé"] = []byte("k1")
	kv["bin/pct%2F%41"] = []byte("k2")
	kv["bin/q?x#y"] = []byte("k3")
	kv["bin/x//y"] = []byte("k4")
	blob := make([]byte, 64<<10)
	r := rand.New(rand.NewPCG(1, 2))
	for i := range blob {
		blob[i] = byte(r.UintN(256))
	}
	kv["bin/blob"] = blob
	return kv
}

// TestRestartAfterSnapshotKeepsBinaryValues: values survive a snapshot and a restart of
// every node byte for byte, and a key deleted before the snapshot stays deleted.
func TestRestartAfterSnapshotKeepsBinaryValues(t *testing.T) {
	t.Parallel()
	c, leader := startCluster(t, testcluster.Options{SnapshotCount: 20, SnapshotCatchUpEntries: 5})
	mustPut(t, c, leader, "bin/deleted", []byte("gone"))
	if st, err := c.Delete(leader, "bin/deleted"); err != nil || st != http.StatusNoContent {
		t.Fatalf("DELETE /key/bin/deleted: %d %v, want 204", st, err)
	}
	want := binaryValues()
	putMany(t, c, c.Live(), want)
	c.WaitConverged(t, convergeTimeout)
	ids := c.Live()
	for _, id := range ids {
		waitSnapshot(t, c, id)
		waitKeys(t, c, id, want, valueTimeout)
	}

	for _, id := range ids {
		if code := c.Stop(id); code != 0 {
			t.Errorf("node %d exited with status %d on SIGTERM, want 0", id, code)
		}
	}
	for _, id := range ids {
		c.Restart(id)
	}
	c.WaitLeader(t, leaderTimeout)
	c.WaitConverged(t, convergeTimeout)
	for _, id := range ids {
		for k, v := range want {
			got, st, err := c.Get(id, k)
			if err != nil || st != http.StatusOK || !bytes.Equal(got, v) {
				t.Errorf("node %d after restart: GET %q: %d %v, got %s, want %s", id, k, st, err, clip(got), clip(v))
			}
		}
		if got, st, err := c.Get(id, "bin/deleted"); err != nil || st != http.StatusNotFound {
			t.Errorf("node %d after restart: GET bin/deleted: %d %q %v, want 404", id, st, got, err)
		}
	}
}

// TestRestartedMemberSharesThePreamble: a follower restarted after a
// snapshot decodes the snapshot (with gob) before any entry, and must
// still write entries with the type numbering of the members that kept
// running: after writes through every member, every member decoded all
// entries but its first with one primed decoder.
func TestRestartedMemberSharesThePreamble(t *testing.T) {
	t.Parallel()
	c, leader := startCluster(t, testcluster.Options{SnapshotCount: 20, SnapshotCatchUpEntries: 5})
	before := make(map[string][]byte)
	for i := range 40 { // one at a time: 40 entries, past SnapshotCount
		k := fmt.Sprintf("before-%02d", i)
		before[k] = []byte("v")
		mustPut(t, c, c.Live()[i%3], k, before[k])
	}
	f := followers(c, leader)[0]
	waitSnapshot(t, c, f)
	if code := c.Stop(f); code != 0 {
		t.Errorf("node %d exited with status %d on SIGTERM, want 0", f, code)
	}
	c.Restart(f)
	waitKeys(t, c, f, before, valueTimeout)
	const n = 10
	for i := range n {
		for _, id := range c.Live() {
			mustPut(t, c, id, fmt.Sprintf("after-%d-%02d", id, i), []byte("v"))
		}
	}
	c.WaitConverged(t, convergeTimeout)
	checkDecodedPrimed(t, c, n)
}
