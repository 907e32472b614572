package e2e

// A rolling upgrade from a binary of a lower feature level: the
// operations of the higher level are refused until every member runs the
// new binary, the leader then raises the cluster level, and an older
// binary no longer starts on a member's data dir.

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/raftkv/raftkv/internal/buildinfo"
	"github.com/raftkv/raftkv/internal/testcerts"
	"github.com/raftkv/raftkv/testcluster"
)

// olderBinary is raftkv built to speak feature level level: it stands for
// the binary being upgraded from (0: the binaries from before levels).
func olderBinary(t *testing.T, level uint32) string {
	return testcluster.BuildBinaryFlags(t, fmt.Sprintf("-ldflags=-X github.com/raftkv/raftkv/internal/buildinfo.level=%d", level))
}

// levels waits until every live member reports cluster level want.
func waitClusterLevel(t *testing.T, c *testcluster.Cluster, want uint32) {
	t.Helper()
	testcluster.WaitFor(t, 30*time.Second, fmt.Sprintf("every member at cluster level %d", want), func() error {
		for _, id := range c.Live() {
			st, err := c.Status(id)
			if err != nil {
				return err
			}
			if st.ClusterLevel != want {
				return fmt.Errorf("member %d at cluster level %d", id, st.ClusterLevel)
			}
		}
		return nil
	})
}

// levelRequests are the requests of each feature level.
var levelRequests = []struct {
	need               uint32
	method, path, body string
	ifNoneMatch        string
}{
	{1, http.MethodPut, "/session?ttl=30s", "s", ""},
	{1, http.MethodPost, "/txn", `{"compare":[{"key":"k","target":"value","result":"=","value":"x"}],"success":[{"put":{"key":"k","value":"v"}}]}`, ""},
	{1, http.MethodPut, "/lock", "me", "*"},
	{2, http.MethodDelete, "/key?prefix=gone/", "", ""},
}

// gated checks that node id, in a group at cluster level at, refuses the
// requests of a higher level with 503 cluster_level and takes the others
// (an If-None-Match may find the key present: 412), and a plain write.
func gated(t *testing.T, hc *http.Client, c *testcluster.Cluster, id int, at uint32) {
	t.Helper()
	url := c.ClientURL(id)
	for _, req := range levelRequests {
		hdr := map[string]string{"Accept": "application/json"}
		if req.ifNoneMatch != "" {
			hdr["If-None-Match"] = req.ifNoneMatch
		}
		r, body := sendVia(t, hc, req.method, url+req.path, req.body, hdr)
		refused := r.StatusCode == http.StatusServiceUnavailable && strings.Contains(body, `"code":"cluster_level"`) && strings.Contains(body, "upgrade every member")
		switch {
		case req.need > at && !refused:
			t.Fatalf("member %d: %s %s (level %d) at cluster level %d: %d %s, want 503 cluster_level", id, req.method, req.path, req.need, at, r.StatusCode, body)
		case req.need <= at && r.StatusCode/100 != 2 && r.StatusCode != http.StatusPreconditionFailed:
			t.Fatalf("member %d: %s %s (level %d) at cluster level %d: %d %s, want it taken", id, req.method, req.path, req.need, at, r.StatusCode, body)
		}
	}
	if r, body := sendVia(t, hc, http.MethodPut, url+"/plain", "p", nil); r.StatusCode != http.StatusNoContent && r.StatusCode != http.StatusOK {
		t.Fatalf("member %d: a plain PUT at cluster level %d: %d %s", id, at, r.StatusCode, body)
	}
}

// TestRollingUpgradeRaisesClusterLevel: from a binary of level 1, whose
// TTLs and transactions work throughout, to this one: range deletes wait
// for the last member.
func TestRollingUpgradeRaisesClusterLevel(t *testing.T) {
	t.Parallel()
	rollingUpgrade(t, nil, 1)
}

// TestRollingUpgradeRaisesClusterLevelTLS: from a binary of level 0 (as
// before levels) over TLS, with client certificates required, so that
// the leader asks the members for their levels over TLS.
func TestRollingUpgradeRaisesClusterLevelTLS(t *testing.T) {
	t.Parallel()
	rollingUpgrade(t, testcerts.NewSet(t, t.TempDir()), 0)
}

func rollingUpgrade(t *testing.T, certs *testcerts.Set, from uint32) {
	older := olderBinary(t, from)
	c, _ := startCluster(t, testcluster.Options{N: 3, Binary: older, TLS: certs})
	hc := http.DefaultClient
	if certs != nil {
		hc = &http.Client{Transport: &http.Transport{TLSClientConfig: c.ClientTLS(certs.Client)}, Timeout: 30 * time.Second}
	}
	newer, level := testcluster.BuildBinary(t), buildinfo.Level()
	waitClusterLevel(t, c, from)
	gated(t, hc, c, 1, from)

	// Members 1 and 2 upgraded: member 3 still speaks the older level.
	for _, id := range []int{1, 2} {
		c.Stop(id)
		c.RestartWith(id, newer)
		c.AwaitNodeListening(id)
		c.WaitLeader(t, leaderTimeout)
		// A restarted member reports the group's level once it replayed
		// the entry or snapshot that holds it.
		testcluster.WaitFor(t, 30*time.Second, fmt.Sprintf("member %d upgraded to report levels %d and %d", id, level, from), func() error {
			st, err := c.Status(id)
			if err != nil {
				return err
			}
			if st.Build.Level != level || st.ClusterLevel != from {
				return fmt.Errorf("binary level %d, cluster level %d", st.Build.Level, st.ClusterLevel)
			}
			return nil
		})
		gated(t, hc, c, id, from)
	}

	// The last one upgraded: the leader raises the level, and every
	// request is taken.
	c.Stop(3)
	c.RestartWith(3, newer)
	c.AwaitNodeListening(3)
	waitClusterLevel(t, c, level)
	for _, id := range c.Live() {
		gated(t, hc, c, id, level)
	}
	for _, k := range []string{"gone/1", "gone/2"} {
		if r, body := sendVia(t, hc, http.MethodPut, c.ClientURL(2)+"/"+k, "x", nil); r.StatusCode/100 != 2 {
			t.Fatalf("PUT %s: %d %s", k, r.StatusCode, body)
		}
	}
	if r, body := sendVia(t, hc, http.MethodDelete, c.ClientURL(1)+"/key?prefix=gone/", "", nil); r.StatusCode != http.StatusOK || !strings.Contains(body, `"deleted":2`) {
		t.Fatalf("a range delete at cluster level %d: %d %s", level, r.StatusCode, body)
	}

	// An older binary no longer starts on a member's data dir: it stops
	// with a sentence that says why, and the new one takes over again.
	c.Stop(2)
	c.RestartWith(2, older)
	if code, err := c.Wait(2, 30*time.Second); err != nil || code == 0 {
		t.Fatalf("the older binary on member 2's data dir at cluster level %d: exit %d, %v; want it to stop with an error", level, code, err)
	}
	if !c.LogContains(2, fmt.Sprintf("this binary speaks only level %d", from)) {
		t.Fatalf("member 2's log does not say why it stopped")
	}
	c.RestartWith(2, newer)
	c.AwaitNodeListening(2)
	waitClusterLevel(t, c, level)
	c.WaitValue(t, 2, "plain", []byte("p"), 30*time.Second)
}
