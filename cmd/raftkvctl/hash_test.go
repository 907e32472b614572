package main

import (
	"fmt"
	"strings"
	"testing"

	"github.com/raftkv/raftkv/testcluster"
)

// hashkvJSON is hashkv -w json.
type hashkvJSON struct {
	OK     bool        `json:"ok"`
	Groups []groupHash `json:"groups"`
}

// TestHashKV: the members of a real cluster agree, in every output
// format; a member that is down makes the exit status 1 and is named.
func TestHashKV(t *testing.T) {
	t.Parallel()
	c, leader := startCluster(t, testcluster.Options{})
	ctl := newCtl(t, "RAFTKVCTL_ENDPOINTS="+endpoints(c))
	for i := range 20 {
		ctl.ok("put", fmt.Sprintf("k%d", i), "v")
	}

	var hk hashkvJSON
	decode(t, ctl.ok("-w", "json", "hashkv"), &hk)
	if !hk.OK || len(hk.Groups) != 1 || hk.Groups[0].Index == 0 || len(hk.Groups[0].Members) != 3 {
		t.Fatalf("hashkv -w json: %+v", hk)
	}
	first := hk.Groups[0].Members[0]
	for _, m := range hk.Groups[0].Members {
		if m.Hash != first.Hash || m.Keys != 20 || len(m.Hash) != 64 || m.Error != "" {
			t.Errorf("hashkv member %+v; want the first's hash %s and 20 keys", m, first.Hash)
		}
	}
	out := ctl.ok("hashkv")
	if !strings.HasPrefix(out, "index ") || !strings.Contains(out, ": members agree\n") ||
		!strings.Contains(out, fmt.Sprintf("  member 2 (%s): ", c.ClientURL(2))) || !strings.Contains(out, ", 20 keys\n") {
		t.Errorf("hashkv printed\n%s", out)
	}
	if out := ctl.ok("-w", "table", "hashkv"); !strings.Contains(out, "| GROUP | ENDPOINT") || !strings.Contains(out, "| 20   |") {
		t.Errorf("hashkv -w table printed\n%s", out)
	}

	down := 1
	if down == leader {
		down = 2
	}
	c.Kill(down)
	r := ctl.fails(1, fmt.Sprintf("1 of 3 members gave no hash (member %d: ", down), "--command-timeout", "3s", "hashkv")
	if !strings.Contains(r.stdout, fmt.Sprintf("  member %d (%s): ", down, c.ClientURL(down))) {
		t.Errorf("hashkv with member %d down printed\n%s", down, r.stdout)
	}
}
