package router

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/raftkv/raftkv/internal/testcerts"
	"github.com/raftkv/raftkv/internal/testutil"
)

// TestParseConfigEndpoints: --config-endpoints takes http(s)://host:port
// URLs, as a member's flag does, and says which entry is not one.
func TestParseConfigEndpoints(t *testing.T) {
	for _, tc := range []struct {
		endpoints string
		wantErr   string
	}{
		{"http://127.0.0.1:6081,https://h:6082", ""},
		{"", "--config-endpoints lists no URL"},
		{"notaurl", `--config-endpoints entry 1 "notaurl" is not an http(s)://host:port URL`},
		{"http://127.0.0.1:6081,127.0.0.1:6082", `--config-endpoints entry 2 "127.0.0.1:6082" is not an http(s)://host:port URL`},
		{"ftp://h:1", `--config-endpoints entry 1 "ftp://h:1" is not an http(s)://host:port URL`},
		{"http://h:1/path", `--config-endpoints entry 1 "http://h:1/path" is not an http(s)://host:port URL: it has a path`},
	} {
		_, err := parseFlags([]string{"--config-endpoints", tc.endpoints, "--port", "7000"}, io.Discard)
		if tc.wantErr == "" && err != nil || tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)) {
			t.Errorf("--config-endpoints %q: %v; want an error containing %q", tc.endpoints, err, tc.wantErr)
		}
	}
}

// TestParseTLSFlags: --cert, --key and --cacert build the client's TLS,
// and a bad combination or file is a one-line error.
func TestParseTLSFlags(t *testing.T) {
	dir := t.TempDir()
	certs := testcerts.NewSet(t, dir)
	base := []string{"--config-endpoints", "https://127.0.0.1:6380", "--port", "7000"}
	for _, tc := range []struct {
		name    string
		args    []string
		wantErr string
	}{
		{"none", nil, ""},
		{"CA only", []string{"--cacert", certs.CA.CertFile}, ""},
		{"certificate", []string{"--cacert", certs.CA.CertFile, "--cert", certs.Client.CertFile, "--key", certs.Client.KeyFile}, ""},
		{"cert without key", []string{"--cert", certs.Client.CertFile}, "--cert and --key go together"},
		{"missing CA file", []string{"--cacert", filepath.Join(dir, "nope.crt")}, "nope.crt"},
		{"key of another certificate", []string{"--cert", certs.Client.CertFile, "--key", certs.Admin.KeyFile}, "TLS to the members"},
		{"serving cert without key", []string{"--cert-file", certs.Server.CertFile}, "--cert-file and --key-file go together"},
		{"client CA without serving", []string{"--trusted-ca-file", certs.CA.CertFile}, "need --cert-file and --key-file"},
		{"client auth without CA", []string{"--cert-file", certs.Server.CertFile, "--key-file", certs.Server.KeyFile, "--client-cert-auth"}, "--client-cert-auth needs --trusted-ca-file"},
		{"serving key of another certificate", []string{"--cert-file", certs.Server.CertFile, "--key-file", certs.Client.KeyFile}, "TLS of the router's port"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o, err := parseFlags(append(append([]string(nil), base...), tc.args...), io.Discard)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("parseFlags: %v; want an error containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("parseFlags: %v", err)
			}
			if (o.tls != nil) != (len(tc.args) > 0) {
				t.Fatalf("tls %v for flags %q", o.tls, tc.args)
			}
			if o.tls != nil && o.tls.RootCAs == nil {
				t.Fatal("--cacert did not set the CAs to trust")
			}
		})
	}
}

// TestRouterServesTLS: with --cert-file and --key-file the router's port
// speaks https only, and with --client-cert-auth it refuses a client
// without a certificate its --trusted-ca-file verifies.
func TestRouterServesTLS(t *testing.T) {
	dir := t.TempDir()
	certs := testcerts.NewSet(t, dir)
	port := testutil.FreePorts(t, 1)[0]
	o, err := parseFlags([]string{"--config-endpoints", "http://127.0.0.1:1", "--port", fmt.Sprint(port), "--listen-host", "127.0.0.1",
		"--cert-file", certs.Server.CertFile, "--key-file", certs.Server.KeyFile,
		"--trusted-ca-file", certs.CA.CertFile, "--client-cert-auth", "--log-level", "error"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int, 1)
	go func() { done <- run(ctx, o, io.Discard) }()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	url := fmt.Sprintf("https://127.0.0.1:%d/status", port)
	get := func(cfg *tls.Config) (int, error) {
		c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: cfg}}
		defer c.CloseIdleConnections()
		resp, err := c.Get(url)
		if err != nil {
			return 0, err
		}
		resp.Body.Close()
		return resp.StatusCode, nil
	}
	withCert := &tls.Config{RootCAs: certs.CA.Pool(), Certificates: []tls.Certificate{certs.Client.Certificate(t)}}
	testutil.WaitFor(t, 10*time.Second, "the router to answer over https", func() error {
		_, err := get(withCert)
		return err
	})
	if _, err := get(&tls.Config{RootCAs: certs.CA.Pool()}); err == nil {
		t.Error("a client without a certificate was answered despite --client-cert-auth")
	}
	c := &http.Client{Timeout: 5 * time.Second}
	if resp, err := c.Get(fmt.Sprintf("http://127.0.0.1:%d/status", port)); err == nil {
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("plain http to the https port: %d, want net/http's 400", resp.StatusCode)
		}
	}
}
