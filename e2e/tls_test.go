package e2e

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"math/big"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/raftkv/raftkv/client"
	"github.com/raftkv/raftkv/internal/testcerts"
	"github.com/raftkv/raftkv/testcluster"
)

// TestTLS runs 3 raftkv processes with TLS on the client and peer ports,
// client certificates required (--client-cert-auth) and admin requests
// restricted to the admin CA (--admin-ca-file): a client without a
// certificate is refused at the handshake; one with a certificate writes
// through a follower and reads back; a membership change without an admin
// certificate gets 403 forbidden, with one (through a follower, which
// passes it on to the leader over TLS) it is applied, and so is its
// removal; and a server or peer certificate replaced on disk is the one
// the next handshake presents, without a restart.
func TestTLS(t *testing.T) {
	t.Parallel()
	certs := testcerts.NewSet(t, t.TempDir())
	c, leader := startCluster(t, testcluster.Options{
		TLS:       certs,
		ExtraArgs: []string{"--admin-ca-file", certs.AdminCA.CertFile},
	})
	follower := leader%3 + 1
	if !strings.HasPrefix(c.ClientURL(follower), "https://") {
		t.Fatalf("client URL %s; want https", c.ClientURL(follower))
	}

	// No certificate: refused at the handshake (TLS 1.3 reports it on the
	// first read, as the alert "certificate required").
	anonymous := &http.Client{Transport: &http.Transport{TLSClientConfig: c.ClientTLS(testcerts.Pair{})}, Timeout: 10 * time.Second}
	defer anonymous.CloseIdleConnections()
	if resp, err := anonymous.Get(c.ClientURL(follower) + "/status"); err == nil {
		resp.Body.Close()
		t.Fatalf("GET /status without a client certificate: %s; want a refused handshake", resp.Status)
	} else if !strings.Contains(err.Error(), "certificate required") {
		t.Fatalf("GET /status without a client certificate: %v; want the TLS alert \"certificate required\"", err)
	}

	// The Go client without a certificate: the refusal ends the call at
	// once, and a write it refused was certainly not applied.
	nocert, err := client.New(client.Config{Endpoints: []string{c.ClientURL(follower)}, TLS: c.ClientTLS(testcerts.Pair{})})
	if err != nil {
		t.Fatal(err)
	}
	defer nocert.Close()
	_, err = nocert.Put(context.Background(), "refused", []byte("x"))
	var ce *client.Error
	if !errors.As(err, &ce) || ce.Tries != 1 || errors.Is(err, client.ErrOutcomeUnknown) || !strings.Contains(err.Error(), "certificate required") {
		t.Fatalf("Put without a client certificate: %v; want one try refused with \"certificate required\", not of unknown outcome", err)
	}

	// With a certificate: the Go client writes through a follower (which
	// passes the write to the leader over the TLS peer links) and reads it
	// back from every member.
	kv, err := client.New(client.Config{Endpoints: []string{c.ClientURL(follower)}, TLS: c.ClientTLS(certs.Client)})
	if err != nil {
		t.Fatal(err)
	}
	defer kv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	index, err := kv.Put(ctx, "greeting", []byte("hello over tls"))
	if err != nil {
		t.Fatalf("Put through follower %d: %v", follower, err)
	}
	for _, id := range c.Live() {
		r, err := c.Do(id, http.MethodGet, fmt.Sprintf("/greeting?min_index=%d", index), nil)
		if err != nil || r.Status != http.StatusOK || string(r.Body) != "hello over tls" {
			t.Fatalf("GET /greeting on node %d: %d %q %v", id, r.Status, r.Body, err)
		}
	}

	// Membership: the follower must know the leader's client URL to pass
	// the change on.
	testcluster.WaitFor(t, leaderTimeout, "every member to know every client URL", func() error {
		st, err := c.Status(follower)
		if err != nil {
			return err
		}
		for _, m := range st.Members {
			if len(m.ClientURLs) == 0 {
				return fmt.Errorf("member %d has published no client URL yet", m.ID)
			}
		}
		return nil
	})
	id, peerURL := 4, fmt.Sprintf("https://127.0.0.1:%d", testcluster.FreePorts(t, 1)[0])
	r, err := c.Do(follower, http.MethodPost, "/4?learner=true", []byte(peerURL))
	if err != nil || r.Status != http.StatusForbidden || !strings.Contains(string(r.Body), "admin client certificate") {
		t.Fatalf("POST /4 with a user's certificate: %d %q %v; want 403 about the admin certificate", r.Status, r.Body, err)
	}
	admin := &http.Client{Transport: &http.Transport{TLSClientConfig: c.ClientTLS(certs.Admin)}, Timeout: 30 * time.Second}
	defer admin.CloseIdleConnections()
	status, body := send(t, admin, http.MethodPost, c.ClientURL(follower)+"/4?learner=true", peerURL)
	if status != http.StatusNoContent {
		t.Fatalf("POST /4 with the admin's certificate through follower %d: %d %q; want 204", follower, status, body)
	}
	st, err := c.Status(leader)
	if err != nil || len(st.Members) != 4 {
		t.Fatalf("leader's members after the add: %+v %v; want 4", st.Members, err)
	}
	if status, body := send(t, admin, http.MethodDelete, c.ClientURL(leader)+fmt.Sprintf("/%d", id), ""); status != http.StatusNoContent {
		t.Fatalf("DELETE /%d with the admin's certificate: %d %q; want 204", id, status, body)
	}

	// A hash check is started by an admin only; every member's hash at
	// its index is read with a user's certificate.
	if r, err := c.Do(follower, http.MethodPost, "/debug/hash", nil); err != nil || r.Status != http.StatusForbidden || !strings.Contains(string(r.Body), "a hash check needs an admin client certificate") {
		t.Fatalf("POST /debug/hash with a user's certificate: %d %q %v; want 403", r.Status, r.Body, err)
	}
	status, body = send(t, admin, http.MethodPost, c.ClientURL(follower)+"/debug/hash", "")
	var started struct {
		Index uint64 `json:"index"`
		Hash  string `json:"hash"`
	}
	if status != http.StatusOK || json.Unmarshal([]byte(body), &started) != nil || started.Hash == "" {
		t.Fatalf("POST /debug/hash with the admin's certificate: %d %q; want 200 with a hash", status, body)
	}
	for _, id := range c.Live() {
		r, err := c.Do(id, http.MethodGet, fmt.Sprintf("/debug/hash?index=%d", started.Index), nil)
		if err != nil || r.Status != http.StatusOK || !strings.Contains(string(r.Body), started.Hash) {
			t.Fatalf("GET /debug/hash?index=%d on node %d: %d %q %v; want the hash %s", started.Index, id, r.Status, r.Body, err, started.Hash)
		}
	}

	// Certificate reload: a new server certificate written over the files
	// is presented by the next handshake, with no restart.
	before := presented(t, c, follower, certs.Client)
	if want := testcerts.Serial(t, certs.Server.CertFile); before.Cmp(want) != 0 {
		t.Fatalf("node %d presents certificate %v; want the server's %v", follower, before, want)
	}
	certs.CA.Issue(t, "server", "raftkv-server-renewed", testcerts.Server)
	renewed := testcerts.Serial(t, certs.Server.CertFile)
	testcluster.WaitFor(t, 10*time.Second, "the renewed server certificate to be presented", func() error {
		if got := presented(t, c, follower, certs.Client); got.Cmp(renewed) != 0 {
			return fmt.Errorf("node %d presents %v; want the renewed %v", follower, got, renewed)
		}
		return nil
	})
	// The peer certificate too; the members still replicate once their
	// links are dialed again with it.
	certs.CA.Issue(t, "peer", "raftkv-peer-renewed", testcerts.Peer)
	renewedPeer := testcerts.Serial(t, certs.Peer.CertFile)
	testcluster.WaitFor(t, 10*time.Second, "the renewed peer certificate to be presented", func() error {
		if got := presentedAt(t, c, c.PeerURL(follower), certs.Peer); got.Cmp(renewedPeer) != 0 {
			return fmt.Errorf("node %d's peer port presents %v; want the renewed %v", follower, got, renewedPeer)
		}
		return nil
	})
	if !c.Running(follower) {
		t.Fatalf("node %d is not running", follower)
	}
	if _, err := kv.Put(ctx, "after-renewal", []byte("x")); err != nil {
		t.Fatalf("Put after the renewals: %v", err)
	}
	if r, err := c.Do(follower, http.MethodGet, "/after-renewal", nil); err != nil || r.Status != http.StatusOK {
		t.Fatalf("GET /after-renewal: %d %q %v", r.Status, r.Body, err)
	}
}

// send sends one request with hc and returns the status and body.
func send(t *testing.T, hc *http.Client, method, rawURL, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, rawURL, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, rawURL, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, strings.TrimSpace(string(b))
}

// presented is the serial number of the certificate node id's client port
// shows in a new handshake, made with pair as the client certificate.
func presented(t *testing.T, c *testcluster.Cluster, id int, pair testcerts.Pair) *big.Int {
	t.Helper()
	return presentedAt(t, c, c.ClientURL(id), pair)
}

// presentedAt is presented for the server at rawURL.
func presentedAt(t *testing.T, c *testcluster.Cluster, rawURL string, pair testcerts.Pair) *big.Int {
	t.Helper()
	u, err := url.Parse(rawURL)
	if err != nil {
		t.Fatal(err)
	}
	d := &tls.Dialer{Config: c.ClientTLS(pair)}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := d.DialContext(ctx, "tcp", u.Host)
	if err != nil {
		// A handshake while the files are half written fails; the caller
		// polls.
		return big.NewInt(-1)
	}
	defer conn.Close()
	return conn.(*tls.Conn).ConnectionState().PeerCertificates[0].SerialNumber
}

// TestTLSNewNodeCatchesUpFromSnapshot: on a TLS cluster whose log is
// compacted, a node added later can only catch up from a snapshot, which
// the leader streams over the TLS peer links; it must serve every key,
// and take writes.
func TestTLSNewNodeCatchesUpFromSnapshot(t *testing.T) {
	t.Parallel()
	certs := testcerts.NewSet(t, t.TempDir())
	c, _ := startCluster(t, testcluster.Options{TLS: certs, SnapshotCount: 50, SnapshotCatchUpEntries: 10})
	want := make(map[string][]byte)
	for i := range 200 {
		want[fmt.Sprintf("key-%03d", i)] = []byte(fmt.Sprintf("value-%03d", i))
	}
	putMany(t, c, c.Live(), want)
	c.WaitConverged(t, convergeTimeout)
	for _, id := range c.Live() {
		waitSnapshot(t, c, id)
	}
	n := c.AddNode(t)
	waitKeys(t, c, n, want, 60*time.Second)
	waitSnapshot(t, c, n)
	mustPut(t, c, n, "written-via-new-node", []byte("x"))
	c.WaitValue(t, 1, "written-via-new-node", []byte("x"), valueTimeout)
}

// TestTLSShardedDeployment: a config group and two shard groups whose
// members all serve TLS with client certificates required and admin
// requests restricted (--admin-ca-file). The shard groups join the config
// and move buckets between them over https, with their peer
// certificates; a user's config changes and bucket moves are refused
// 403, an admin's move is applied; the Go client routes keys to both
// groups, and so does `raftkv route` given --cacert, --cert and --key.
func TestTLSShardedDeployment(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("e2e: starts real raftkv processes")
	}
	certs := testcerts.NewSet(t, t.TempDir())
	d := &deployment{t: t, groups: map[uint64]*testcluster.Cluster{}}
	d.config = testcluster.Start(t, testcluster.Options{N: 1, TLS: certs,
		ExtraArgs: []string{"--config-group", "--buckets", strconv.Itoa(shardBuckets), "--admin-ca-file", certs.AdminCA.CertFile}})
	d.config.WaitLeader(t, leaderTimeout)
	for gid := uint64(1); gid <= 2; gid++ {
		g := testcluster.Start(t, testcluster.Options{N: 1, TLS: certs, ExtraArgs: []string{
			"--group", strconv.FormatUint(gid, 10),
			"--config-endpoints", strings.Join(d.configURLs(), ","),
			"--config-poll-interval", "20ms",
			"--admin-ca-file", certs.AdminCA.CertFile,
		}})
		g.WaitLeader(t, leaderTimeout)
		d.groups[gid] = g
		d.waitSettled(slices.Collect(maps.Keys(d.groups))...) // group 2 pulls half of group 1's buckets
	}
	settled := d.waitSettled(1, 2)
	if len(settled.BucketsOf(1)) == 0 || len(settled.BucketsOf(2)) == 0 {
		t.Fatalf("config %d: buckets %v; want both groups to serve some", settled.Version, settled.Buckets)
	}

	kv, err := client.New(client.Config{ConfigEndpoints: d.configURLs(), TLS: d.config.ClientTLS(certs.Client)})
	if err != nil {
		t.Fatal(err)
	}
	defer kv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	want := map[string]string{}
	for i := range 32 {
		k, v := fmt.Sprintf("k%d", i), fmt.Sprintf("v%d", i)
		if _, err := kv.Put(ctx, k, []byte(v)); err != nil {
			t.Fatalf("Put %s: %v", k, err)
		}
		want[k] = v
	}

	// Under --admin-ca-file the config's changes and a bucket's moves are
	// admin requests: the groups made theirs above (their joins, the
	// pulls and deletes) with their peer certificates; a user's are
	// refused, and an admin moves a bucket.
	https := func(pair testcerts.Pair) *http.Client {
		return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: d.config.ClientTLS(pair)}}
	}
	user, admin := https(certs.Client), https(certs.Admin)
	b := settled.BucketsOf(1)[0]
	move := fmt.Sprintf(`{"bucket":%d,"gid":2}`, b)
	for _, req := range []struct{ method, url, body string }{
		{http.MethodPost, d.config.ClientURL(1) + "/config/move", move},
		{http.MethodPost, d.config.ClientURL(1) + "/config/leave", `{"gids":[2]}`},
		{http.MethodPost, d.config.ClientURL(1) + "/config/join", `{"groups":{"3":["https://127.0.0.1:1"]}}`},
		{http.MethodGet, fmt.Sprintf("%s/shard/pull?bucket=%d&version=%d", d.groups[1].ClientURL(1), b, settled.Version), ""},
		{http.MethodPost, fmt.Sprintf("%s/shard/delete?bucket=%d&version=%d", d.groups[1].ClientURL(1), b, settled.Version), ""},
	} {
		code, body := do(t, user, req.method, req.url, req.body)
		if code != http.StatusForbidden || !strings.Contains(body, "needs an admin client certificate") {
			t.Fatalf("a user's %s %s = %d %s; want 403 forbidden", req.method, req.url, code, body)
		}
	}
	if c, err := d.latestConfig(); err != nil || c.Version != settled.Version {
		t.Fatalf("after the refused requests the config is %d (%v); want still %d", c.Version, err, settled.Version)
	}
	if code, body := do(t, admin, http.MethodPost, d.config.ClientURL(1)+"/config/move", move); code != http.StatusOK {
		t.Fatalf("an admin's POST /config/move = %d %s; want 200", code, body)
	}
	if moved := d.waitSettled(1, 2); moved.Buckets[b] != 2 {
		t.Fatalf("config %d: bucket %d served by %d; want 2 after the admin's move", moved.Version, b, moved.Buckets[b])
	}

	route := testcluster.StartRouterOver(t, d.configURLs(),
		"--cacert", certs.CA.CertFile, "--cert", certs.Client.CertFile, "--key", certs.Client.KeyFile)
	hc := &http.Client{Timeout: 10 * time.Second}
	for k, v := range want {
		testcluster.WaitFor(t, valueTimeout, "GET "+k+" through the router", func() error {
			resp, err := hc.Get(route.URL() + "/" + k)
			if err != nil {
				return err
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != http.StatusOK || string(b) != v {
				return fmt.Errorf("%d %q, want %q", resp.StatusCode, b, v)
			}
			return nil
		})
	}
}

// do sends one request with c and returns its status and body.
func do(t *testing.T, c *http.Client, method, u, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, u, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, u, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}
