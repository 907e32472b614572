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

	"github.com/raftkv/raftkv/internal/testcerts"
	"github.com/raftkv/raftkv/testcluster"
)

// olderBinary is raftkv built to speak feature level 0, as the binaries
// from before levels do: it stands for the binary being upgraded from.
func olderBinary(t *testing.T) string {
	return testcluster.BuildBinaryFlags(t, "-ldflags=-X github.com/raftkv/raftkv/internal/buildinfo.level=0")
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

// gated checks that node id refuses a TTL write and a transaction with
// 503 cluster_level and still takes a plain write.
func gated(t *testing.T, hc *http.Client, c *testcluster.Cluster, id int) {
	t.Helper()
	url := c.ClientURL(id)
	for _, req := range []struct {
		method, path, body string
		ifNoneMatch        string
	}{
		{http.MethodPut, "/session?ttl=30s", "s", ""},
		{http.MethodPost, "/txn", `{"compare":[{"key":"k","target":"value","result":"=","value":"x"}],"success":[{"put":{"key":"k","value":"v"}}]}`, ""},
		{http.MethodPut, "/lock", "me", "*"},
	} {
		hdr := map[string]string{"Accept": "application/json"}
		if req.ifNoneMatch != "" {
			hdr["If-None-Match"] = req.ifNoneMatch
		}
		r, body := sendVia(t, hc, req.method, url+req.path, req.body, hdr)
		if r.StatusCode != http.StatusServiceUnavailable || !strings.Contains(body, `"code":"cluster_level"`) || !strings.Contains(body, "upgrade every member") {
			t.Fatalf("member %d: %s %s at cluster level 0: %d %s, want 503 cluster_level", id, req.method, req.path, r.StatusCode, body)
		}
	}
	if r, body := sendVia(t, hc, http.MethodPut, url+"/plain", "p", nil); r.StatusCode != http.StatusNoContent && r.StatusCode != http.StatusOK {
		t.Fatalf("member %d: a plain PUT at cluster level 0: %d %s", id, r.StatusCode, body)
	}
}

func TestRollingUpgradeRaisesClusterLevel(t *testing.T) {
	t.Parallel()
	rollingUpgrade(t, nil)
}

// TestRollingUpgradeRaisesClusterLevelTLS: the leader asks the members
// for their levels over TLS, with client certificates required.
func TestRollingUpgradeRaisesClusterLevelTLS(t *testing.T) {
	t.Parallel()
	rollingUpgrade(t, testcerts.NewSet(t, t.TempDir()))
}

func rollingUpgrade(t *testing.T, certs *testcerts.Set) {
	older := olderBinary(t)
	c, _ := startCluster(t, testcluster.Options{N: 3, Binary: older, TLS: certs})
	hc := http.DefaultClient
	if certs != nil {
		hc = &http.Client{Transport: &http.Transport{TLSClientConfig: c.ClientTLS(certs.Client)}, Timeout: 30 * time.Second}
	}
	newer := testcluster.BuildBinary(t)
	waitClusterLevel(t, c, 0)
	gated(t, hc, c, 1)

	// Members 1 and 2 upgraded: member 3 still speaks level 0.
	for _, id := range []int{1, 2} {
		c.Stop(id)
		c.RestartWith(id, newer)
		c.AwaitNodeListening(id)
		c.WaitLeader(t, leaderTimeout)
		st, err := c.Status(id)
		if err != nil {
			t.Fatal(err)
		}
		if st.Build.Level != 1 || st.ClusterLevel != 0 {
			t.Fatalf("member %d upgraded: binary level %d, cluster level %d; want 1 and 0", id, st.Build.Level, st.ClusterLevel)
		}
		gated(t, hc, c, id)
	}

	// The last one upgraded: the leader raises the level.
	c.Stop(3)
	c.RestartWith(3, newer)
	c.AwaitNodeListening(3)
	waitClusterLevel(t, c, 1)
	for _, id := range c.Live() {
		r, body := sendVia(t, hc, http.MethodPut, c.ClientURL(id)+fmt.Sprintf("/session%d?ttl=60s", id), "s", nil)
		if r.StatusCode/100 != 2 {
			t.Fatalf("member %d: a TTL write at cluster level 1: %d %s", id, r.StatusCode, body)
		}
	}
	if r, body := sendVia(t, hc, http.MethodPut, c.ClientURL(1)+"/lock", "me", map[string]string{"If-None-Match": "*"}); r.StatusCode/100 != 2 {
		t.Fatalf("a conditional write at cluster level 1: %d %s", r.StatusCode, body)
	}

	// An older binary no longer starts on a member's data dir: it stops
	// with a sentence that says why, and the new one takes over again.
	c.Stop(2)
	c.RestartWith(2, older)
	if code, err := c.Wait(2, 30*time.Second); err != nil || code == 0 {
		t.Fatalf("the older binary on member 2's data dir at cluster level 1: exit %d, %v; want it to stop with an error", code, err)
	}
	if !c.LogContains(2, "this binary speaks only level 0") {
		t.Fatalf("member 2's log does not say why it stopped")
	}
	c.RestartWith(2, newer)
	c.AwaitNodeListening(2)
	waitClusterLevel(t, c, 1)
	c.WaitValue(t, 2, "session1", []byte("s"), 30*time.Second)
}
