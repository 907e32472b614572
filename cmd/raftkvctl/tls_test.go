package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"log"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// writePKI makes a CA, a server certificate for 127.0.0.1 and a client
// certificate, writes the CA and the client's PEM files into dir and
// returns the server's certificate and the CA pool.
func writePKI(t *testing.T, dir string) (server tls.Certificate, pool *x509.CertPool) {
	t.Helper()
	key := func() *ecdsa.PrivateKey {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	write := func(name, kind string, der []byte) {
		if err := os.WriteFile(filepath.Join(dir, name), pem.EncodeToMemory(&pem.Block{Type: kind, Bytes: der}), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	now := time.Now()
	caKey := key()
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "raftkvctl test CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		t.Fatal(err)
	}
	issue := func(serial int64, usage x509.ExtKeyUsage, k *ecdsa.PrivateKey) []byte {
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: "raftkvctl test"},
			NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour), ExtKeyUsage: []x509.ExtKeyUsage{usage},
			KeyUsage: x509.KeyUsageDigitalSignature, IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &k.PublicKey, caKey)
		if err != nil {
			t.Fatal(err)
		}
		return der
	}
	srvKey, cliKey := key(), key()
	srvDER := issue(2, x509.ExtKeyUsageServerAuth, srvKey)
	cliKeyDER, err := x509.MarshalECPrivateKey(cliKey)
	if err != nil {
		t.Fatal(err)
	}
	write("ca.pem", "CERTIFICATE", caDER)
	write("client.pem", "CERTIFICATE", issue(3, x509.ExtKeyUsageClientAuth, cliKey))
	write("client-key.pem", "EC PRIVATE KEY", cliKeyDER)
	pool = x509.NewCertPool()
	pool.AddCert(ca)
	return tls.Certificate{Certificate: [][]byte{srvDER}, PrivateKey: srvKey}, pool
}

// TestTLS: --cacert, --cert and --key (and their RAFTKVCTL_ variables)
// reach the client's transport: raftkvctl reads from an https server that
// requires a client certificate signed by a CA made for the test, and
// fails without the CA or the certificate.
func TestTLS(t *testing.T) {
	dir := t.TempDir()
	cert, pool := writePKI(t, dir)
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
	ca, crt, key := filepath.Join(dir, "ca.pem"), filepath.Join(dir, "client.pem"), filepath.Join(dir, "client-key.pem")
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
