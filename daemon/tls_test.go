package daemon

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.etcd.io/etcd/client/pkg/v3/transport"
	"go.uber.org/zap/zaptest"

	"github.com/raftkv/raftkv/internal/testcerts"
	"github.com/raftkv/raftkv/internal/testutil"
	"github.com/raftkv/raftkv/raftnode"
)

// tlsClient is an https client that trusts ca and shows pair (none when
// pair is empty).
func tlsClient(t *testing.T, ca string, pair testcerts.Pair) *http.Client {
	t.Helper()
	pool := x509.NewCertPool()
	b, err := os.ReadFile(ca)
	if err != nil || !pool.AppendCertsFromPEM(b) {
		t.Fatalf("CA %s: %v", ca, err)
	}
	cfg := &tls.Config{RootCAs: pool}
	if pair.CertFile != "" {
		c, err := tls.LoadX509KeyPair(pair.CertFile, pair.KeyFile)
		if err != nil {
			t.Fatal(err)
		}
		cfg.Certificates = []tls.Certificate{c}
	}
	tr := &http.Transport{TLSClientConfig: cfg}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 10 * time.Second}
}

// do sends one request with c and returns the status and body.
func do(t *testing.T, c *http.Client, method, url, body string) (int, string, error) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := c.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, strings.TrimSpace(string(b)), nil
}

// TestTLSCluster runs three members with TLS on both ports, client
// certificates required and admin requests restricted to the admin CA: a
// client without a certificate is refused at the handshake, one with a
// certificate writes and reads, a membership change through a follower
// needs an admin certificate (and the follower passes it on to the leader
// with its peer certificate), and a new member's peer URL must be https.
func TestTLSCluster(t *testing.T) {
	dir := t.TempDir()
	certs := testcerts.NewSet(t, dir)
	const n = 3
	ports := testutil.FreePorts(t, n)
	peers := make([]string, n)
	for i, p := range ports {
		peers[i] = fmt.Sprintf("https://127.0.0.1:%d", p)
	}
	members := make([]*Member, n)
	for i := range members {
		cfg := Config{
			ID:               uint64(i + 1),
			Peers:            peers,
			DataDir:          filepath.Join(dir, fmt.Sprintf("m%d", i+1)),
			ClientListenAddr: "127.0.0.1:0",
			// An election timeout of 500 ms: with 10 ms ticks (100 ms),
			// two copies of the suite at once starved the leader's
			// heartbeats, and the members elected again mid-test.
			TickInterval: 50 * time.Millisecond,
			Logger:       zaptest.NewLogger(t).Named(fmt.Sprintf("m%d", i+1)),
			ClientTLS: &transport.TLSInfo{CertFile: certs.Server.CertFile, KeyFile: certs.Server.KeyFile,
				TrustedCAFile: certs.CA.CertFile, ClientCertAuth: true},
			PeerTLS: &transport.TLSInfo{CertFile: certs.Peer.CertFile, KeyFile: certs.Peer.KeyFile,
				TrustedCAFile: certs.CA.CertFile, ClientCertAuth: true},
			AdminCAFile:      certs.AdminCA.CertFile,
			SnapshotDownload: true,
		}
		m, err := Start(context.Background(), cfg)
		if err != nil {
			t.Fatalf("member %d: %v", i+1, err)
		}
		t.Cleanup(m.Stop)
		members[i] = m
		if !strings.HasPrefix(m.ClientURL(), "https://") {
			t.Fatalf("member %d publishes client URL %s; want https", i+1, m.ClientURL())
		}
	}
	user := tlsClient(t, certs.CA.CertFile, certs.Client)
	admin := tlsClient(t, certs.CA.CertFile, certs.Admin)
	anonymous := tlsClient(t, certs.CA.CertFile, testcerts.Pair{})

	// Every member must know the leader and its client URL, so that the
	// follower below passes the membership change on to it.
	var leader uint64
	testutil.WaitFor(t, 20*time.Second, "a leader every member knows, and every client URL", func() error {
		leader = 0
		for _, m := range members {
			code, body, err := do(t, user, "GET", m.ClientURL()+"/status", "")
			var st struct {
				Leader  uint64
				Members []struct{ ClientURLs []string }
			}
			if err != nil || code != 200 || json.Unmarshal([]byte(body), &st) != nil || st.Leader == 0 || (leader != 0 && st.Leader != leader) {
				return fmt.Errorf("member %d: %d %s %v", m.ID(), code, body, err)
			}
			for _, mm := range st.Members {
				if len(mm.ClientURLs) == 0 {
					return fmt.Errorf("member %d: %s", m.ID(), body)
				}
			}
			leader = st.Leader
		}
		return nil
	})
	follower := members[leader%n] // the member after the leader

	if _, _, err := do(t, anonymous, "GET", follower.ClientURL()+"/k", ""); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("GET without a client certificate: %v; want a TLS error about the certificate", err)
	}
	if code, body, err := do(t, user, "PUT", follower.ClientURL()+"/k", "v"); err != nil || code != 204 {
		t.Fatalf("PUT /k through follower %d: %d %q %v", follower.ID(), code, body, err)
	}
	if code, body, err := do(t, user, "GET", members[leader-1].ClientURL()+"/k", ""); err != nil || code != 200 || body != "v" {
		t.Fatalf("GET /k on the leader: %d %q %v", code, body, err)
	}

	// The dashboard asks the other members over TLS, with the member's
	// peer certificate: every one is up.
	testutil.WaitFor(t, 10*time.Second, "the dashboard to see every member up", func() error {
		code, body, err := do(t, user, "GET", follower.ClientURL()+"/ui/api/cluster", "")
		var view struct {
			Members []struct {
				ID    uint64
				Up    bool
				Error string
			}
		}
		if err != nil || code != 200 || json.Unmarshal([]byte(body), &view) != nil || len(view.Members) != n {
			return fmt.Errorf("GET /ui/api/cluster: %d %q %v", code, body, err)
		}
		for _, m := range view.Members {
			if !m.Up {
				return fmt.Errorf("member %d is down: %s", m.ID, m.Error)
			}
		}
		return nil
	})

	code, body, err := do(t, user, "GET", follower.ClientURL()+"/snapshot", "")
	if err != nil || code != http.StatusForbidden || !strings.Contains(body, "a snapshot download needs an admin client certificate") {
		t.Fatalf("GET /snapshot with a user's certificate: %d %q %v; want 403", code, body, err)
	}
	if code, body, err := do(t, admin, "GET", follower.ClientURL()+"/snapshot", ""); err != nil || code != http.StatusOK || len(body) == 0 {
		t.Fatalf("GET /snapshot with the admin's certificate: %d (%d bytes) %v; want 200 and a backup", code, len(body), err)
	}

	newPeer := fmt.Sprintf("https://127.0.0.1:%d", testutil.FreePorts(t, 1)[0])
	code, body, err = do(t, user, "POST", follower.ClientURL()+"/4?learner=true", newPeer)
	if err != nil || code != http.StatusForbidden || !strings.Contains(body, "admin client certificate") {
		t.Fatalf("POST /4 with a user's certificate: %d %q %v; want 403 about the admin certificate", code, body, err)
	}
	code, body, err = do(t, admin, "POST", follower.ClientURL()+"/4?learner=true", strings.Replace(newPeer, "https", "http", 1))
	if err != nil || code != http.StatusBadRequest || !strings.Contains(body, "must be https") {
		t.Fatalf("POST /4 of an http peer URL: %d %q %v; want 400 saying it must be https", code, body, err)
	}
	code, body, err = do(t, admin, "POST", follower.ClientURL()+"/4?learner=true", newPeer)
	if err != nil || code != http.StatusNoContent {
		t.Fatalf("POST /4 with the admin's certificate through follower %d: %d %q %v; want 204", follower.ID(), code, body, err)
	}
	code, body, err = do(t, admin, "DELETE", members[leader-1].ClientURL()+"/4", "")
	if err != nil || code != http.StatusNoContent {
		t.Fatalf("DELETE /4 with the admin's certificate: %d %q %v; want 204", code, body, err)
	}

	// raftdb's join over TLS: member 5 asks a follower (host:port, so
	// https by its own client port) to add it, with its https peer URL;
	// it shows its peer certificate, valid for a member's host.
	cfg := members[0].cfg
	cfg.ID = 5
	cfg.Peers = append(append([]string(nil), peers...), newPeer, fmt.Sprintf("https://127.0.0.1:%d", testutil.FreePorts(t, 1)[0]))
	cfg.DataDir = filepath.Join(dir, "m5")
	cfg.PeerListenAddr = ""
	cfg.JoinAddr = strings.TrimPrefix(follower.ClientURL(), "https://")
	cfg.Logger = zaptest.NewLogger(t).Named("m5")
	m5, err := Start(context.Background(), cfg)
	if err != nil {
		t.Fatalf("member 5 joining through %s: %v", cfg.JoinAddr, err)
	}
	t.Cleanup(m5.Stop)
	testutil.WaitFor(t, 20*time.Second, "member 5 to catch up", func() error {
		code, body, err := do(t, user, "GET", m5.ClientURL()+"/k?level=stale", "")
		if err != nil || code != 200 || body != "v" {
			return fmt.Errorf("GET /k on member 5: %d %q %v", code, body, err)
		}
		return nil
	})
}

// TestTLSStartErrors: a bad TLS setup is one line at start-up, before
// anything listens.
func TestTLSStartErrors(t *testing.T) {
	dir := t.TempDir()
	certs := testcerts.NewSet(t, dir)
	base := func() Config {
		return Config{
			ID: 1, Peers: []string{freePeerURL(t)}, DataDir: filepath.Join(dir, "data"),
			ClientListenAddr: "127.0.0.1:0", Logger: zaptest.NewLogger(t),
		}
	}
	server := &transport.TLSInfo{CertFile: certs.Server.CertFile, KeyFile: certs.Server.KeyFile, TrustedCAFile: certs.CA.CertFile}
	emptyCA := filepath.Join(dir, "empty-ca.crt")
	if err := os.WriteFile(emptyCA, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		edit func(*Config)
		want string
	}{
		{"https peer without peer TLS", func(c *Config) { c.Peers[0] = strings.Replace(c.Peers[0], "http:", "https:", 1) },
			"is https, which needs the peer TLS certificate and key"},
		{"http peer with peer TLS", func(c *Config) { c.PeerTLS = server }, "is http, but the peer links use TLS"},
		{"https advertise URL without client TLS", func(c *Config) { c.AdvertiseClientURL = "https://127.0.0.1:1" },
			"needs the client TLS certificate and key"},
		{"http advertise URL with client TLS", func(c *Config) { c.ClientTLS, c.AdvertiseClientURL = server, "http://127.0.0.1:1" },
			"is http, but the client port serves TLS"},
		{"admin CA without client TLS", func(c *Config) { c.AdminCAFile = certs.AdminCA.CertFile }, "needs TLS on the client port"},
		{"client cert auth without a CA", func(c *Config) {
			c.ClientTLS = &transport.TLSInfo{CertFile: certs.Server.CertFile, KeyFile: certs.Server.KeyFile, ClientCertAuth: true}
		}, "needs a trusted CA file"},
		{"missing certificate file", func(c *Config) {
			c.ClientTLS = &transport.TLSInfo{CertFile: filepath.Join(dir, "nope.crt"), KeyFile: certs.Server.KeyFile}
		}, "nope.crt"},
		{"missing admin CA file", func(c *Config) { c.ClientTLS, c.AdminCAFile = server, filepath.Join(dir, "nope-ca.crt") }, "nope-ca.crt"},
		// etcd's TLSInfo takes a CA file without a certificate as an empty
		// pool, and a key file with a bare x509 error.
		{"empty trusted CA file", func(c *Config) {
			c.ClientTLS = &transport.TLSInfo{CertFile: certs.Server.CertFile, KeyFile: certs.Server.KeyFile, TrustedCAFile: emptyCA, ClientCertAuth: true}
		}, "client TLS: CA file " + emptyCA + " holds no PEM certificate"},
		{"key as the peer trusted CA file", func(c *Config) {
			c.Peers[0] = strings.Replace(c.Peers[0], "http:", "https:", 1)
			c.PeerTLS = &transport.TLSInfo{CertFile: certs.Server.CertFile, KeyFile: certs.Server.KeyFile, TrustedCAFile: certs.Server.KeyFile}
		}, "peer TLS: CA file " + certs.Server.KeyFile + " holds a PRIVATE KEY"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := base()
			tc.edit(&cfg)
			m, err := Start(context.Background(), cfg)
			if err == nil {
				m.Stop()
				t.Fatalf("Start succeeded; want an error containing %q", tc.want)
			}
			if !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "\n") {
				t.Fatalf("Start: %q; want one line containing %q", err, tc.want)
			}
			if _, err := os.Stat(cfg.DataDir); err == nil {
				t.Fatalf("the data dir was made by a start that failed")
			}
		})
	}
}

// TestAdminRule: who the admin rule admits, by the TLS state of the
// connection.
func TestAdminRule(t *testing.T) {
	dir := t.TempDir()
	certs := testcerts.NewSet(t, dir)
	other := testcerts.NewCA(t, dir, "other-ca")
	load := func(p testcerts.Pair) *x509.Certificate {
		c, err := tls.LoadX509KeyPair(p.CertFile, p.KeyFile)
		if err != nil {
			t.Fatal(err)
		}
		x, err := x509.ParseCertificate(c.Certificate[0])
		if err != nil {
			t.Fatal(err)
		}
		return x
	}
	// verified is the state of a handshake that verified cert (the server
	// trusted its CA); shown, of one that did not ask to.
	verified := func(c *x509.Certificate) *tls.ConnectionState {
		return &tls.ConnectionState{PeerCertificates: []*x509.Certificate{c}, VerifiedChains: [][]*x509.Certificate{{c}}}
	}
	shown := func(c *x509.Certificate) *tls.ConnectionState {
		return &tls.ConnectionState{PeerCertificates: []*x509.Certificate{c}}
	}
	admin, user, peer := load(certs.Admin), load(certs.Client), load(certs.Peer)
	stranger := load(other.Issue(t, "stranger", "admin", testcerts.Client))
	members := func() []raftnode.Member { return []raftnode.Member{{ID: 1, PeerURL: "https://127.0.0.1:2380"}} }
	elsewhere := func() []raftnode.Member { return []raftnode.Member{{ID: 1, PeerURL: "https://10.1.2.3:2380"}} }

	peerTLS := &transport.TLSInfo{CertFile: certs.Peer.CertFile, KeyFile: certs.Peer.KeyFile, TrustedCAFile: certs.CA.CertFile}
	for _, tc := range []struct {
		name    string
		cfg     Config
		members func() []raftnode.Member
		state   *tls.ConnectionState
		admit   bool
		// between: a request the groups make of each other, with the
		// servers the shard config lists.
		between bool
		servers []string
	}{
		{"no TLS", Config{AdminCAFile: certs.AdminCA.CertFile}, members, nil, false, false, nil},
		{"no certificate", Config{AdminCAFile: certs.AdminCA.CertFile}, members, &tls.ConnectionState{}, false, false, nil},
		{"admin CA", Config{AdminCAFile: certs.AdminCA.CertFile}, members, verified(admin), true, false, nil},
		{"user", Config{AdminCAFile: certs.AdminCA.CertFile}, members, verified(user), false, false, nil},
		{"admin CN of another CA", Config{AdminCAFile: certs.AdminCA.CertFile}, members, shown(stranger), false, false, nil},
		{"listed CN", Config{AdminCNs: []string{"client"}}, members, verified(user), true, false, nil},
		{"listed CN, not verified", Config{AdminCNs: []string{"admin"}}, members, shown(stranger), false, false, nil},
		{"CN not listed", Config{AdminCNs: []string{"root"}}, members, verified(user), false, false, nil},
		{"member on a member's host", Config{AdminCAFile: certs.AdminCA.CertFile, PeerTLS: peerTLS}, members, verified(peer), true, false, nil},
		{"member elsewhere", Config{AdminCAFile: certs.AdminCA.CertFile, PeerTLS: peerTLS}, elsewhere, verified(peer), false, false, nil},
		{"peer certificate without peer TLS", Config{AdminCAFile: certs.AdminCA.CertFile}, members, verified(peer), false, false, nil},
		{"another group's member", Config{AdminCAFile: certs.AdminCA.CertFile, PeerTLS: peerTLS}, elsewhere, verified(peer), true,
			true, []string{"https://10.9.9.9:6088", "https://127.0.0.1:7180"}},
		{"another group's member, bare host:port", Config{AdminCAFile: certs.AdminCA.CertFile, PeerTLS: peerTLS}, elsewhere, verified(peer), true,
			true, []string{"127.0.0.1:7180"}},
		{"another group's member, not between groups", Config{AdminCAFile: certs.AdminCA.CertFile, PeerTLS: peerTLS}, elsewhere, verified(peer), false,
			false, []string{"https://127.0.0.1:7180"}},
		{"a host the config does not list", Config{AdminCAFile: certs.AdminCA.CertFile, PeerTLS: peerTLS}, elsewhere, verified(peer), false,
			true, []string{"https://10.9.9.9:6088"}},
		{"user between groups", Config{AdminCAFile: certs.AdminCA.CertFile, PeerTLS: peerTLS}, elsewhere, verified(user), false,
			true, []string{"https://127.0.0.1:7180"}},
		{"peer certificate between groups without peer TLS", Config{AdminCAFile: certs.AdminCA.CertFile}, elsewhere, verified(peer), false,
			true, []string{"https://127.0.0.1:7180"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rule, err := tc.cfg.adminRule()
			if err != nil {
				t.Fatal(err)
			}
			rule.members = tc.members
			if tc.servers != nil {
				rule.servers = func() []string { return tc.servers }
			}
			err = rule.admit(tc.state, tc.between)
			if (err == nil) != tc.admit {
				t.Fatalf("admit = %v; want admitted %v", err, tc.admit)
			}
		})
	}
}
