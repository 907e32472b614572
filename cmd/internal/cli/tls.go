package cli

import (
	"crypto/tls"
	"flag"

	"github.com/raftkv/raftkv/client"
)

// ClientTLSFlags adds --cacert, --cert and --key (raftkvctl's names) to fs
// and returns what loads them once fs is parsed: the TLS configuration to
// reach https members with, or nil when none of the three was given.
func ClientTLSFlags(fs *flag.FlagSet) func() (*tls.Config, error) {
	var f client.TLSFiles
	fs.StringVar(&f.CACert, "cacert", "", "https endpoints: CA that verifies the members' certificates (default: the system's)")
	fs.StringVar(&f.Cert, "cert", "", "https endpoints: client certificate, for members that require one (--client-cert-auth)")
	fs.StringVar(&f.Key, "key", "", "key of --cert")
	return func() (*tls.Config, error) {
		if f == (client.TLSFiles{}) {
			return nil, nil
		}
		return client.LoadTLS(f)
	}
}
