// Package testcerts makes the certificates raftkv's TLS tests need, at run
// time, with crypto/x509: a certificate authority and certificates it
// signs, written as PEM files into a directory of the test's. Nothing is
// checked in: every test gets keys of its own.
//
// It is a leaf: it imports only the standard library, so any package's
// tests can use it. It starts no goroutine.
package testcerts

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// CA is a certificate authority whose certificate is in CertFile.
type CA struct {
	// CertFile is the PEM file of the CA's certificate (a --trusted-ca-file).
	CertFile string
	cert     *x509.Certificate
	key      *ecdsa.PrivateKey
	dir      string
}

// Pair is a certificate and its key, as PEM files.
type Pair struct {
	CertFile, KeyFile string
}

// Kind says what a certificate is for: its extended key usages.
type Kind int

const (
	// Server is for a server (ServerAuth): a member's client port.
	Server Kind = iota
	// Client is for a client (ClientAuth): a user or an admin.
	Client
	// Peer is for both ends of a connection between members (ServerAuth and
	// ClientAuth), as etcd's peer certificates are.
	Peer
)

// NewCA makes a CA named name, its files in dir.
func NewCA(t testing.TB, dir, name string) *CA {
	t.Helper()
	key := newKey(t)
	tmpl := &x509.Certificate{
		SerialNumber:          serial(t),
		Subject:               pkix.Name{CommonName: name, Organization: []string{"raftkv tests"}},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatalf("testcerts: CA %s: %v", name, err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatalf("testcerts: CA %s: %v", name, err)
	}
	ca := &CA{CertFile: filepath.Join(dir, name+".crt"), cert: cert, key: key, dir: dir}
	writePEM(t, ca.CertFile, "CERTIFICATE", der)
	return ca
}

// Issue makes a certificate of kind for common name cn, valid for 127.0.0.1,
// ::1 and localhost when it is a Server or Peer certificate, and writes it
// and its key as <file>.crt and <file>.key in the CA's directory.
func (ca *CA) Issue(t testing.TB, file, cn string, kind Kind) Pair {
	t.Helper()
	key := newKey(t)
	tmpl := &x509.Certificate{
		SerialNumber: serial(t),
		Subject:      pkix.Name{CommonName: cn, Organization: []string{"raftkv tests"}},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
	}
	switch kind {
	case Server:
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
	case Client:
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	case Peer:
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}
	}
	if kind != Client {
		tmpl.IPAddresses = []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback}
		tmpl.DNSNames = []string{"localhost"}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatalf("testcerts: %s: %v", file, err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatalf("testcerts: %s: %v", file, err)
	}
	p := Pair{CertFile: filepath.Join(ca.dir, file+".crt"), KeyFile: filepath.Join(ca.dir, file+".key")}
	writePEM(t, p.KeyFile, "PRIVATE KEY", keyDER)
	writePEM(t, p.CertFile, "CERTIFICATE", der)
	return p
}

// Set is what a TLS cluster test needs: one CA for everything, a server
// certificate, a peer certificate, a client certificate (CN "client") and
// an admin certificate (CN "admin") from a second CA, AdminCA.
type Set struct {
	CA, AdminCA                 *CA
	Server, Peer, Client, Admin Pair
}

// NewSet makes a Set in dir.
func NewSet(t testing.TB, dir string) *Set {
	t.Helper()
	ca := NewCA(t, dir, "ca")
	admin := NewCA(t, dir, "admin-ca")
	return &Set{
		CA:      ca,
		AdminCA: admin,
		Server:  ca.Issue(t, "server", "raftkv-server", Server),
		Peer:    ca.Issue(t, "peer", "raftkv-peer", Peer),
		Client:  ca.Issue(t, "client", "client", Client),
		Admin:   admin.Issue(t, "admin", "admin", Client),
	}
}

// Serial is the serial number of the certificate in the PEM file certFile,
// so a test can tell which certificate a server presented.
func Serial(t testing.TB, certFile string) *big.Int {
	t.Helper()
	b, err := os.ReadFile(certFile)
	if err != nil {
		t.Fatalf("testcerts: %v", err)
	}
	block, _ := pem.Decode(b)
	if block == nil {
		t.Fatalf("testcerts: %s holds no PEM block", certFile)
	}
	c, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatalf("testcerts: %s: %v", certFile, err)
	}
	return c.SerialNumber
}

func newKey(t testing.TB) *ecdsa.PrivateKey {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatalf("testcerts: key: %v", err)
	}
	return key
}

func serial(t testing.TB) *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 126))
	if err != nil {
		t.Fatalf("testcerts: serial: %v", err)
	}
	return n.Add(n, big.NewInt(1))
}

// writePEM writes one PEM block to path through a temporary file renamed
// over it, so a server reading the file meanwhile sees the old or the new
// one, whole.
func writePEM(t testing.TB, path, typ string, der []byte) {
	t.Helper()
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatalf("testcerts: %v", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatalf("testcerts: %v", err)
	}
}

// Pool is a certificate pool holding ca's certificate, as a server's
// ClientCAs or a client's RootCAs.
func (ca *CA) Pool() *x509.CertPool {
	pool := x509.NewCertPool()
	pool.AddCert(ca.cert)
	return pool
}

// Certificate loads p as a tls.Certificate, as a test server's.
func (p Pair) Certificate(t testing.TB) tls.Certificate {
	t.Helper()
	c, err := tls.LoadX509KeyPair(p.CertFile, p.KeyFile)
	if err != nil {
		t.Fatalf("testcerts: %v", err)
	}
	return c
}
