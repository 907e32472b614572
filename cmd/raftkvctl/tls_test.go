package main

import (
	"crypto/tls"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"

	"github.com/raftkv/raftkv/internal/testcerts"
)

// TestTLS: --cacert, --cert and --key (and their RAFTKVCTL_ variables)
// reach the client's transport: raftkvctl reads from an https server that
// requires a client certificate signed by a CA made for the test, and
// fails without the CA or the certificate.
func TestTLS(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	pki := testcerts.NewCA(t, dir, "ca")
	cli := pki.Issue(t, "client", "raftkvctl test client", testcerts.Client)
	cert := pki.Issue(t, "server", "raftkvctl test server", testcerts.Server).Certificate(t)
	pool := pki.Pool()
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/greeting" || r.Method != http.MethodGet {
			http.Error(w, "unexpected request", http.StatusBadRequest)
			return
		}
		w.Write([]byte("hello over tls"))
	}))
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{cert}, ClientCAs: pool, ClientAuth: tls.RequireAndVerifyClientCert}
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the refused handshakes are the point
	srv.StartTLS()
	defer srv.Close()
	ca, crt, key := pki.CertFile, cli.CertFile, cli.KeyFile
	ctl := newCtl(t, "RAFTKVCTL_ENDPOINTS="+srv.URL, "RAFTKVCTL_COMMAND_TIMEOUT=2s")

	if out := ctl.ok("--cacert", ca, "--cert", crt, "--key", key, "get", "greeting"); out != "hello over tls\n" {
		t.Errorf("get over TLS printed %q", out)
	}
	env := ctl.with("RAFTKVCTL_CACERT="+ca, "RAFTKVCTL_CERT="+crt, "RAFTKVCTL_KEY="+key)
	if out := env.ok("get", "greeting"); out != "hello over tls\n" {
		t.Errorf("get over TLS with RAFTKVCTL_CACERT, _CERT, _KEY printed %q", out)
	}
	ctl.fails(1, "certificate signed by unknown authority", "--cert", crt, "--key", key, "get", "greeting")
	ctl.fails(1, "certificate", "--cacert", ca, "get", "greeting")
	if out := ctl.ok("--insecure-skip-tls-verify", "--cert", crt, "--key", key, "get", "greeting"); out != "hello over tls\n" {
		t.Errorf("get with --insecure-skip-tls-verify printed %q", out)
	}
	ctl.fails(2, "--cert and --key", "--cacert", ca, "--cert", crt, "get", "greeting")
	ctl.fails(2, "no PEM certificate", "--cacert", key, "get", "greeting")
	ctl.fails(2, filepath.Join(dir, "nope.pem"), "--cacert", filepath.Join(dir, "nope.pem"), "get", "greeting")
}
