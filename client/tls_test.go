package client_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/raftkv/raftkv/client"
	"github.com/raftkv/raftkv/internal/testcerts"
)

// testPKI is a CA made for one test, with a server certificate for
// 127.0.0.1 and a client certificate it signed, as PEM files in a
// temporary directory.
type testPKI struct {
	caFile, certFile, keyFile string
	pool                      *x509.CertPool
	server                    tls.Certificate
}

func newTestPKI(t *testing.T) testPKI {
	t.Helper()
	ca := testcerts.NewCA(t, t.TempDir(), "ca")
	cli := ca.Issue(t, "client", "raftkv test client", testcerts.Client)
	return testPKI{
		caFile:   ca.CertFile,
		certFile: cli.CertFile,
		keyFile:  cli.KeyFile,
		pool:     ca.Pool(),
		server:   ca.Issue(t, "server", "raftkv test server", testcerts.Server).Certificate(t),
	}
}

// TestTLS: a Client given the CA and a client certificate reads from a
// member that serves TLS and asks for client certificates; without the
// CA it refuses the server, without the certificate the server refuses it.
func TestTLS(t *testing.T) {
	pki := newTestPKI(t)
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/greeting" || len(r.TLS.PeerCertificates) == 0 {
			http.Error(w, "unexpected request", http.StatusBadRequest)
			return
		}
		w.Write([]byte("hello over tls"))
	}))
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{pki.server}, ClientCAs: pki.pool, ClientAuth: tls.RequireAndVerifyClientCert}
	srv.StartTLS()
	defer srv.Close()
	if !strings.HasPrefix(srv.URL, "https://127.0.0.1:") {
		t.Fatalf("server URL %s", srv.URL)
	}
	get := func(files client.TLSFiles) ([]byte, error) {
		cfg, err := client.LoadTLS(files)
		if err != nil {
			t.Fatalf("LoadTLS(%+v): %v", files, err)
		}
		c, err := client.New(client.Config{Endpoints: []string{srv.URL}, TLS: cfg, RequestTimeout: 2 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		return c.Get(context.Background(), "greeting")
	}

	v, err := get(client.TLSFiles{CACert: pki.caFile, Cert: pki.certFile, Key: pki.keyFile})
	if err != nil || string(v) != "hello over tls" {
		t.Fatalf("Get with CA and client certificate = %q, %v; want the value", v, err)
	}
	_, err = get(client.TLSFiles{Cert: pki.certFile, Key: pki.keyFile})
	var unknown x509.UnknownAuthorityError
	if !errors.As(err, &unknown) {
		t.Fatalf("Get without the CA = %v; want x509.UnknownAuthorityError", err)
	}
	if _, err = get(client.TLSFiles{CACert: pki.caFile}); err == nil {
		t.Fatal("Get without a client certificate succeeded; the server requires one")
	}
}

// TestLoadTLSErrors: every file problem is reported, naming the file.
func TestLoadTLSErrors(t *testing.T) {
	pki := newTestPKI(t)
	notPEM := filepath.Join(t.TempDir(), "not.pem")
	if err := os.WriteFile(notPEM, []byte("not a certificate\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		files client.TLSFiles
		want  string
	}{
		{client.TLSFiles{CACert: "/nonexistent/ca.pem"}, "/nonexistent/ca.pem"},
		{client.TLSFiles{CACert: notPEM}, "no PEM certificate"},
		{client.TLSFiles{Cert: pki.certFile}, "both its certificate and its key"},
		{client.TLSFiles{Key: pki.keyFile}, "both its certificate and its key"},
		{client.TLSFiles{Cert: pki.certFile, Key: pki.caFile}, pki.certFile},
	} {
		if _, err := client.LoadTLS(tc.files); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("LoadTLS(%+v) = %v; want an error containing %q", tc.files, err, tc.want)
		}
	}
	cfg, err := client.LoadTLS(client.TLSFiles{})
	if err != nil || cfg.RootCAs != nil || len(cfg.Certificates) != 0 {
		t.Errorf("LoadTLS of nothing = %+v, %v; want Go's defaults", cfg, err)
	}
	if _, err := client.New(client.Config{Endpoints: []string{"https://127.0.0.1:1"}, TLS: cfg, HTTPClient: http.DefaultClient}); !errors.Is(err, client.ErrInvalidConfig) {
		t.Errorf("New with TLS and HTTPClient = %v; want ErrInvalidConfig", err)
	}
}
