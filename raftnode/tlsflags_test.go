package raftnode

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/raftkv/raftkv/internal/testcerts"
	"go.etcd.io/etcd/client/pkg/v3/transport"
)

// TestCheckServerTLS: each rule of a set of server TLS flags, named with
// its prefix; complete sets and no TLS at all pass.
func TestCheckServerTLS(t *testing.T) {
	for _, tc := range []struct {
		prefix string
		info   transport.TLSInfo
		want   string // "" passes
	}{
		{"", transport.TLSInfo{}, ""},
		{"", transport.TLSInfo{CertFile: "c", KeyFile: "k"}, ""},
		{"peer-", transport.TLSInfo{CertFile: "c", KeyFile: "k", TrustedCAFile: "ca", ClientCertAuth: true}, ""},
		{"", transport.TLSInfo{CertFile: "c"}, "--cert-file and --key-file go together"},
		{"peer-", transport.TLSInfo{KeyFile: "k"}, "--peer-cert-file and --peer-key-file go together"},
		{"", transport.TLSInfo{TrustedCAFile: "ca"}, "--trusted-ca-file and --client-cert-auth need --cert-file and --key-file"},
		{"peer-", transport.TLSInfo{ClientCertAuth: true}, "--peer-trusted-ca-file and --peer-client-cert-auth need --peer-cert-file and --peer-key-file"},
		{"", transport.TLSInfo{CertFile: "c", KeyFile: "k", ClientCertAuth: true}, "--client-cert-auth needs --trusted-ca-file"},
		{"peer-", transport.TLSInfo{CertFile: "c", KeyFile: "k", ClientCertAuth: true}, "--peer-client-cert-auth needs --peer-trusted-ca-file"},
	} {
		err := CheckServerTLS(tc.prefix, tc.info)
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%q %+v: %v", tc.prefix, tc.info, err)
		case tc.want != "" && (err == nil || !strings.HasPrefix(err.Error(), tc.want)):
			t.Errorf("%q %+v: %v, want %q", tc.prefix, tc.info, err, tc.want)
		}
	}
}

// TestCheckCAFile: a CA file must hold certificates, and only those; what
// is wrong is said naming the file, as etcd's TLSInfo does not (an empty
// or text file is an empty pool to it, which refuses every client at its
// handshake).
func TestCheckCAFile(t *testing.T) {
	dir := t.TempDir()
	ca := testcerts.NewCA(t, dir, "ca")
	pair := ca.Issue(t, "server", "server", testcerts.Server)
	if err := CheckCAFile(ca.CertFile); err != nil {
		t.Fatalf("the CA's own file: %v", err)
	}
	caPEM, err := os.ReadFile(ca.CertFile)
	if err != nil {
		t.Fatal(err)
	}
	keyPEM, err := os.ReadFile(pair.KeyFile)
	if err != nil {
		t.Fatal(err)
	}
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	bundle := write("bundle.pem", append(append([]byte("# two CAs\n"), caPEM...), caPEM...))
	if err := CheckCAFile(bundle); err != nil {
		t.Fatalf("a bundle of two certificates with a comment: %v", err)
	}
	for name, tc := range map[string]struct {
		content []byte
		want    string
	}{
		"empty.pem":  {nil, "holds no PEM certificate"},
		"text.pem":   {[]byte("not a certificate\n"), "holds no PEM certificate"},
		"key.pem":    {keyPEM, "holds a PRIVATE KEY, not only certificates"},
		"broken.pem": {[]byte("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"), "certificate 1: x509:"},
		"ca+key.pem": {append(append([]byte{}, caPEM...), keyPEM...), "not only certificates"},
	} {
		p := write(name, tc.content)
		err := CheckCAFile(p)
		if err == nil || !strings.Contains(err.Error(), "CA file "+p) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v; want an error naming it and saying %q", name, err, tc.want)
		}
		if _, err := ServerTLSConfig(transport.TLSInfo{CertFile: pair.CertFile, KeyFile: pair.KeyFile, TrustedCAFile: p}); err == nil {
			t.Errorf("%s: ServerTLSConfig took it", name)
		}
	}
	if err := CheckCAFile(filepath.Join(dir, "missing.pem")); err == nil || !strings.Contains(err.Error(), "missing.pem") {
		t.Errorf("a missing file: %v", err)
	}
}
