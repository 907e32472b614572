package main

import (
	"strings"
	"testing"

	"github.com/raftkv/raftkv/testcluster"
)

// TestCheck: check passes against a healthy cluster, in both of its
// output forms, and leaves no key behind.
func TestCheck(t *testing.T) {
	t.Parallel()
	c, _ := startCluster(t, testcluster.Options{})
	ctl := newCtl(t, "RAFTKVCTL_ENDPOINTS="+endpoints(c))
	out := ctl.ok("check", "--duration", "2s", "--prefix", "chk/")
	if !strings.HasPrefix(out, "PASS: ") || !strings.Contains(out, "Ok (porcupine") {
		t.Fatalf("check printed %q; want PASS", out)
	}
	t.Log(strings.TrimSpace(out))
	var r checkResult
	decode(t, ctl.ok("-w", "json", "check", "--duration", "2s", "--clients", "3", "--keys", "2", "--prefix", "chk/"), &r)
	if !r.OK || r.Result != "Ok" || r.Reads == 0 || r.AckedWrites == 0 || r.Keys != 2 || r.Checked == 0 {
		t.Errorf("check -w json = %+v; want ok with reads and writes on 2 keys", r)
	}
	for _, k := range []string{"chk/0", "chk/1", "chk/2", "chk/3"} {
		if _, code, err := c.Get(1, k); err != nil || code != 404 {
			t.Errorf("after check, GET %s = %d, %v; want 404", k, code, err)
		}
	}
	ctl.fails(2, "--clients and --keys must be positive", "check", "--clients", "0")
}

// TestCheckFailsOnBrokenReads: against members built with
// raftkv_brokenreads, whose linearizable reads serve local state without
// ReadIndex, check must say FAIL and exit 1: a follower answers reads from
// state that lags the writes other members acknowledged.
func TestCheckFailsOnBrokenReads(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("raftkvctl: starts real raftkv processes")
	}
	bin := testcluster.BuildBinaryTags(t, "raftkv_brokenreads")
	c, _ := startCluster(t, testcluster.Options{Binary: bin})
	ctl := newCtl(t, "RAFTKVCTL_ENDPOINTS="+endpoints(c))
	out := t.TempDir()
	r := ctl.run("check", "--duration", "5s", "--clients", "6", "--keys", "2", "--out", out)
	t.Logf("check against broken reads: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	if r.code != 1 || !strings.HasPrefix(r.stdout, "FAIL: ") || !strings.Contains(r.stdout, "Illegal") {
		t.Fatalf("check against a broken build: exit %d, stdout %q; want FAIL, exit 1", r.code, r.stdout)
	}
	checkErrLine(t, []string{"check"}, r.stderr, "check failed")
	if !strings.Contains(r.stdout, out) {
		t.Errorf("check did not name the visualization under %s", out)
	}
}
