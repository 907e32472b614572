package httpapi

import (
	"bufio"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net/http"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/raftkv/raftkv/internal/testcerts"
)

func TestAdminRequest(t *testing.T) {
	for _, tc := range []struct {
		method, path string
		want         bool
	}{
		{"POST", "/4", true},
		{"DELETE", "/4", true},
		{"POST", "/4/promote", true},
		{"POST", "/4/update", true},
		{"PUT", "/4/update", false}, // a key
		{"POST", "/join", true},
		{"POST", "/leader/transfer", true},
		{"GET", "/snapshot", true},
		{"HEAD", "/snapshot", true},
		{"POST", "/debug/hash", true},
		{"GET", "/debug/hash", false}, // reads a hash taken already
		{"GET", "/debug/state", true}, // hashes the whole state
		{"HEAD", "/debug/state", true},
		{"GET", "/4", false}, // a key
		{"PUT", "/4", false}, // a key
		{"GET", "/leader/transfer", false},
		{"DELETE", "/key/4", false},
		{"POST", "/key", false},
		{"POST", "/abc", false}, // 400 whoever asks
		{"DELETE", "/abc", false},
		{"POST", "/4/other", false},
		{"DELETE", "/4/promote", false},
		{"POST", "/", false},
		{"GET", "/status", false},
		{"POST", "/config/join", true},
		{"POST", "/config/leave", true},
		{"POST", "/config/move", true},
		{"GET", "/config", false}, // the bucket map, which every client reads
		{"GET", "/config/join", false},
		{"GET", "/shard/pull", true}, // a copy of a bucket
		{"HEAD", "/shard/pull", true},
		{"POST", "/shard/delete", true},
		{"GET", "/shard/delete", false},
	} {
		if got := adminRequest(tc.method, tc.path); got != tc.want {
			t.Errorf("adminRequest(%s %s) = %v, want %v", tc.method, tc.path, got, tc.want)
		}
	}
	for _, tc := range []struct {
		method, path string
		want         bool
	}{
		{"POST", "/config/join", true},
		{"POST", "/config/leave", false}, // an operator's
		{"POST", "/config/move", false},
		{"GET", "/shard/pull", true},
		{"POST", "/shard/delete", true},
		{"POST", "/4", false},
		{"GET", "/snapshot", false},
	} {
		if got := BetweenGroups(tc.method, tc.path); got != tc.want {
			t.Errorf("BetweenGroups(%s %s) = %v, want %v", tc.method, tc.path, got, tc.want)
		}
	}
}

// TestAdminRefuses: an admin request Config.Admin refuses gets 403 with
// the reason and reaches no Cluster call; others, and admitted ones, are
// served as without Admin.
func TestAdminRefuses(t *testing.T) {
	var (
		asked   []*tls.ConnectionState
		between []bool
	)
	e := newEnv(t, map[string]string{"4": "v"}, func(c *Config) {
		ok := func(w http.ResponseWriter, r *http.Request) error { w.WriteHeader(http.StatusOK); return nil }
		c.Routes = map[string]RouteFunc{"/config": ok, "/config/": ok, "/shard/": ok}
		c.Admin = func(st *tls.ConnectionState, betweenGroups bool) error {
			asked = append(asked, st)
			between = append(between, betweenGroups)
			return errors.New("this connection presented no client certificate")
		}
	})
	rec := e.do(t, "POST", "/4", "http://127.0.0.1:42379")
	if rec.Code != http.StatusForbidden || !strings.Contains(rec.Body.String(), "a membership change needs an admin client certificate: this connection presented no client certificate") {
		t.Fatalf("POST /4 = %d %q; want 403 with the reason", rec.Code, rec.Body.String())
	}
	if len(asked) != 1 || asked[0] != nil {
		t.Fatalf("Admin asked %v; want once, with no TLS state", asked)
	}
	if _, ok := e.cluster.snapshot()[4]; ok {
		t.Fatal("member 4 was added despite the 403")
	}
	for _, target := range []string{"/leader/transfer", "/4/promote", "/join"} {
		if rec := e.do(t, "POST", target, `{"id":4,"raftAddr":"127.0.0.1:1"}`); rec.Code != http.StatusForbidden {
			t.Errorf("POST %s = %d; want 403", target, rec.Code)
		}
	}
	if rec := e.do(t, "DELETE", "/1", ""); rec.Code != http.StatusForbidden {
		t.Errorf("DELETE /1 = %d; want 403", rec.Code)
	}
	if rec := e.do(t, "GET", "/snapshot", ""); rec.Code != http.StatusForbidden || !strings.Contains(rec.Body.String(), "a snapshot download") {
		t.Errorf("GET /snapshot = %d %q; want 403 naming a snapshot download", rec.Code, rec.Body.String())
	}
	if rec := e.do(t, "POST", "/debug/hash", ""); rec.Code != http.StatusForbidden || !strings.Contains(rec.Body.String(), "a hash check") {
		t.Errorf("POST /debug/hash = %d %q; want 403 naming a hash check", rec.Code, rec.Body.String())
	}
	between = nil
	for _, tc := range []struct{ method, target, what string }{
		{"POST", "/config/move", "a change of the shard config"},
		{"POST", "/config/join", "a change of the shard config"},
		{"GET", "/shard/pull?bucket=1&version=2", "a bucket's move between groups"},
		{"POST", "/shard/delete?bucket=1&version=2", "a bucket's move between groups"},
	} {
		if rec := e.do(t, tc.method, tc.target, ""); rec.Code != http.StatusForbidden || !strings.Contains(rec.Body.String(), tc.what) {
			t.Errorf("%s %s = %d %q; want 403 naming %s", tc.method, tc.target, rec.Code, rec.Body.String(), tc.what)
		}
	}
	if want := []bool{false, true, true, true}; !slices.Equal(between, want) {
		t.Errorf("Admin asked with betweenGroups %v; want %v", between, want)
	}
	asked = nil
	if rec := e.do(t, "GET", "/config", ""); rec.Code != http.StatusOK || len(asked) != 0 {
		t.Errorf("GET /config = %d, Admin asked %d times; want 200 without asking", rec.Code, len(asked))
	}
	if rec := e.do(t, "GET", "/4", ""); rec.Code != http.StatusOK || len(asked) != 0 {
		t.Errorf("GET /4 = %d, Admin asked %d times; want 200 without asking", rec.Code, len(asked))
	}

	open := newEnv(t, nil, func(c *Config) { c.Admin = func(*tls.ConnectionState, bool) error { return nil } })
	if rec := open.do(t, "POST", "/4", "http://127.0.0.1:42379"); rec.Code != http.StatusNoContent {
		t.Fatalf("admitted POST /4 = %d %q; want 204", rec.Code, rec.Body.String())
	}
}

// TestAdminSeesTLSOfHandedOffConnection: Server's own loop hands a
// membership change to net/http, which does not see the *tls.Conn under
// it; Config.Admin must still get the client's certificate.
func TestAdminSeesTLSOfHandedOffConnection(t *testing.T) {
	certs := testcerts.NewSet(t, t.TempDir())
	var seen []string
	e := newEnv(t, map[string]string{"k": "v"}, func(c *Config) {
		c.Admin = func(st *tls.ConnectionState, _ bool) error {
			if st == nil || len(st.PeerCertificates) == 0 {
				seen = append(seen, "")
				return errors.New("no certificate")
			}
			seen = append(seen, st.PeerCertificates[0].Subject.CommonName)
			return nil
		}
	})
	srvCert, err := tls.LoadX509KeyPair(certs.Server.CertFile, certs.Server.KeyFile)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	caPEM, err := os.ReadFile(certs.CA.CertFile)
	if err != nil || !pool.AppendCertsFromPEM(caPEM) {
		t.Fatalf("CA: %v", err)
	}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{
		Certificates: []tls.Certificate{srvCert}, ClientCAs: pool, ClientAuth: tls.VerifyClientCertIfGiven,
	})
	if err != nil {
		t.Fatal(err)
	}
	srv := NewServer(ln.Addr().String(), e.h, 0)
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })

	cliCert, err := tls.LoadX509KeyPair(certs.Client.CertFile, certs.Client.KeyFile)
	if err != nil {
		t.Fatal(err)
	}
	ask := func(cfg *tls.Config) int {
		t.Helper()
		c, err := tls.Dial("tcp", ln.Addr().String(), cfg)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		// A GET on the fast path first, so the membership change comes on
		// a connection the fast loop read from and then handed over.
		if _, err := c.Write([]byte("GET /k HTTP/1.1\r\nHost: x\r\n\r\nPOST /4 HTTP/1.1\r\nHost: x\r\nContent-Length: 22\r\n\r\nhttp://127.0.0.1:42379")); err != nil {
			t.Fatal(err)
		}
		br := bufio.NewReader(c)
		var codes []int
		for range 2 {
			resp, err := http.ReadResponse(br, nil)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			codes = append(codes, resp.StatusCode)
		}
		if codes[0] != http.StatusOK {
			t.Fatalf("GET /k = %d; want 200", codes[0])
		}
		return codes[1]
	}
	if code := ask(&tls.Config{RootCAs: pool, Certificates: []tls.Certificate{cliCert}, ServerName: "127.0.0.1"}); code != http.StatusNoContent {
		t.Errorf("POST /4 with a certificate = %d; want 204", code)
	}
	if code := ask(&tls.Config{RootCAs: pool, ServerName: "127.0.0.1"}); code != http.StatusForbidden {
		t.Errorf("POST /4 without a certificate = %d; want 403", code)
	}
	if strings.Join(seen, ",") != "client," {
		t.Errorf("Admin saw client certificates %q; want \"client\", then none", seen)
	}
}

// TestPlainHTTPToTLSPort: plain HTTP to the TLS client port gets net/http's
// own 400, "Client sent an HTTP request to an HTTPS server.", rather than
// a closed connection that a client retries until its deadline.
func TestPlainHTTPToTLSPort(t *testing.T) {
	certs := testcerts.NewSet(t, t.TempDir())
	e := newEnv(t, map[string]string{"k": "v"}, nil)
	srvCert, err := tls.LoadX509KeyPair(certs.Server.CertFile, certs.Server.KeyFile)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{srvCert}})
	if err != nil {
		t.Fatal(err)
	}
	srv := NewServer(ln.Addr().String(), e.h, 0)
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	for _, method := range []string{"GET", "PUT"} {
		req, err := http.NewRequest(method, "http://"+ln.Addr().String()+"/k", strings.NewReader("v"))
		if err != nil {
			t.Fatal(err)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("%s: %v", method, err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest || string(body) != "Client sent an HTTP request to an HTTPS server.\n" {
			t.Errorf("%s over plain HTTP: %d %q", method, resp.StatusCode, body)
		}
	}
}
