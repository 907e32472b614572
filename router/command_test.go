package router

import (
	"io"
	"path/filepath"
	"strings"
	"testing"

	"github.com/raftkv/raftkv/internal/testcerts"
)

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
