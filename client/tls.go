package client

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
)

// TLSFiles names the PEM files of a Client's TLS setup, as etcdctl's
// --cacert, --cert and --key do. Every field may be empty.
type TLSFiles struct {
	// CACert holds the certificates of the authorities that sign the
	// members' server certificates; empty means the system's roots.
	CACert string
	// Cert and Key are the Client's own certificate and private key, for
	// members that ask for one; both or neither.
	Cert, Key string
	// InsecureSkipVerify accepts any server certificate: for tests only.
	InsecureSkipVerify bool
}

// Empty reports whether f sets nothing, so that Go's defaults apply.
func (f TLSFiles) Empty() bool { return f == TLSFiles{} }

// LoadTLS reads the files f names and returns the tls.Config for
// Config.TLS (TLS 1.2 at least). Its errors name the file at fault.
func LoadTLS(f TLSFiles) (*tls.Config, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: f.InsecureSkipVerify}
	if f.CACert != "" {
		pem, err := os.ReadFile(f.CACert)
		if err != nil {
			return nil, fmt.Errorf("client: CA certificate: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("client: CA certificate %s: no PEM certificate in it", f.CACert)
		}
		cfg.RootCAs = pool
	}
	switch {
	case f.Cert != "" && f.Key != "":
		cert, err := tls.LoadX509KeyPair(f.Cert, f.Key)
		if err != nil {
			return nil, fmt.Errorf("client: certificate %s and key %s: %w", f.Cert, f.Key, err)
		}
		cfg.Certificates = []tls.Certificate{cert}
	case f.Cert != "" || f.Key != "":
		return nil, errors.New("client: a client certificate needs both its certificate and its key file")
	}
	return cfg, nil
}
