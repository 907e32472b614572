package raftnode

import (
	"strings"
	"testing"

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
