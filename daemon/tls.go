package daemon

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/raftkv/raftkv/peerurl"
	"github.com/raftkv/raftkv/raftnode"
	"go.etcd.io/etcd/client/pkg/v3/transport"
)

// TLS, as etcd has it: the client port serves https with Config.ClientTLS,
// the peer links with Config.PeerTLS (raftnode hands it to rafthttp), and
// the member's own calls to other members' client ports (membership
// changes passed on to the leader, the join request, the config group's
// and shard groups' endpoints, the dashboard's questions) go out with
// memberTLS: the peer certificate (the client one without peer TLS) as a
// client certificate, and the client port's trusted CA. Certificates are
// read from their files at each handshake (etcd's TLSInfo does so), so
// renewed files take effect without a restart; the CA files are read once,
// at start.

// checkTLS checks the TLS fields against the URLs that need them: https
// peer URLs need PeerTLS, an https client URL ClientTLS, and the admin
// restriction a client port with TLS. It touches no file.
func (c Config) checkTLS() error {
	for i, p := range c.Peers {
		switch s := peerurl.Scheme(p); {
		case s == "https" && c.PeerTLS == nil:
			return fmt.Errorf("daemon: peer %d %s is https, which needs the peer TLS certificate and key", i+1, p)
		case s == "http" && c.PeerTLS != nil:
			return fmt.Errorf("daemon: peer %d %s is http, but the peer links use TLS; make it https", i+1, p)
		}
	}
	for what, info := range map[string]*transport.TLSInfo{"client": c.ClientTLS, "peer": c.PeerTLS} {
		if info != nil && (info.CertFile == "" || info.KeyFile == "") {
			return fmt.Errorf("daemon: %s TLS needs both a certificate and a key file", what)
		}
	}
	if c.ClientTLS != nil && c.ClientTLS.ClientCertAuth && c.ClientTLS.TrustedCAFile == "" {
		return errors.New("daemon: client certificate authentication needs a trusted CA file")
	}
	if c.PeerTLS != nil && c.PeerTLS.ClientCertAuth && c.PeerTLS.TrustedCAFile == "" {
		return errors.New("daemon: peer client certificate authentication needs a peer trusted CA file")
	}
	if c.AdvertiseClientURL != "" {
		u, _ := url.Parse(c.AdvertiseClientURL)
		switch {
		case u.Scheme == "https" && c.ClientTLS == nil:
			return fmt.Errorf("daemon: advertise client URL %s is https, which needs the client TLS certificate and key", c.AdvertiseClientURL)
		case u.Scheme == "http" && c.ClientTLS != nil:
			return fmt.Errorf("daemon: advertise client URL %s is http, but the client port serves TLS; make it https", c.AdvertiseClientURL)
		}
	}
	if (c.AdminCAFile != "" || len(c.AdminCNs) > 0) && c.ClientTLS == nil {
		return errors.New("daemon: restricting admin requests to certificates needs TLS on the client port")
	}
	if len(c.AdminCNs) > 0 && c.AdminCAFile == "" && c.ClientTLS.TrustedCAFile == "" {
		return errors.New("daemon: admin common names need a trusted CA file (or an admin CA file) to verify certificates with")
	}
	return nil
}

// tlsSetup is what Start makes of the TLS fields: the client port's server
// configuration, the client to other members and the admin rule.
type tlsSetup struct {
	server *tls.Config  // nil: plain http
	client *http.Client // to other members' client ports
	admin  *adminRule   // nil: no restriction
}

// setupTLS reads the certificates and CA files the TLS fields name, so a
// missing or bad file stops Start before anything listens.
func (c Config) setupTLS() (*tlsSetup, error) {
	s := &tlsSetup{client: forwardClient}
	if c.PeerTLS != nil {
		// raftnode builds it again when the transport starts; a bad file is
		// best named before anything else happens.
		if _, err := raftnode.ServerTLSConfig(*c.PeerTLS); err != nil {
			return nil, fmt.Errorf("peer TLS: %w", err)
		}
	}
	if c.ClientTLS == nil {
		return s, nil
	}
	info := *c.ClientTLS
	if c.Logger != nil {
		info.Logger = c.Logger.Named("client-tls") // a certificate that fails to load at a handshake
	}
	var err error
	if s.server, err = raftnode.ServerTLSConfig(info); err != nil {
		return nil, fmt.Errorf("client TLS: %w", err)
	}
	// Admins may hold certificates of a CA of their own, and members
	// passing requests on present their peer certificates: the client port
	// verifies both, besides its trusted CA's.
	extra := []string{c.AdminCAFile}
	if c.PeerTLS != nil {
		extra = append(extra, c.PeerTLS.TrustedCAFile)
	}
	for _, f := range extra {
		if f == "" || f == c.ClientTLS.TrustedCAFile {
			continue
		}
		if s.server.ClientCAs == nil {
			s.server.ClientCAs = x509.NewCertPool()
		}
		if err := appendPEM(s.server.ClientCAs, f); err != nil {
			return nil, err
		}
	}
	if !c.ClientTLS.ClientCertAuth && s.server.ClientCAs != nil {
		s.server.ClientAuth = tls.VerifyClientCertIfGiven
	}
	cfg, err := c.memberTLS().ClientConfig()
	if err != nil {
		return nil, fmt.Errorf("TLS to other members: %w", err)
	}
	s.client = &http.Client{
		Transport: &http.Transport{
			Proxy:               nil, // members are reached directly
			TLSClientConfig:     cfg,
			TLSHandshakeTimeout: 10 * time.Second,
			MaxIdleConnsPerHost: 16,
			IdleConnTimeout:     30 * time.Second,
		},
		CheckRedirect: forwardClient.CheckRedirect,
	}
	if c.AdminCAFile != "" || len(c.AdminCNs) > 0 {
		if s.admin, err = c.adminRule(); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// memberTLS is the TLS this member speaks to other members' client ports:
// its peer certificate, or without peer TLS its client port's own, as a
// client certificate, and the client port's trusted CA (the peer one when
// there is none) to verify theirs.
func (c Config) memberTLS() transport.TLSInfo {
	info := transport.TLSInfo{CertFile: c.ClientTLS.CertFile, KeyFile: c.ClientTLS.KeyFile, TrustedCAFile: c.ClientTLS.TrustedCAFile}
	if c.PeerTLS != nil {
		info.CertFile, info.KeyFile = c.PeerTLS.CertFile, c.PeerTLS.KeyFile
		if info.TrustedCAFile == "" {
			info.TrustedCAFile = c.PeerTLS.TrustedCAFile
		}
	}
	return info
}

// adminRule decides who may make admin requests (httpapi's membership
// changes, leader transfer, snapshot download, shard config changes and
// bucket moves): a client whose certificate the admin CA verifies, or
// whose verified certificate's common name is listed; so that requests
// passed on to the leader are admitted, a member: a certificate the peer
// trusted CA verifies and that is valid for the host of a member's peer
// URL (etcd's --peer-cert-allowed-hostname check); and, for the requests
// the groups of a sharded deployment make of each other (a join, a
// bucket's pull and delete), a member of another group: a certificate
// the peer trusted CA verifies and that is valid for the host of a
// server the shard config lists.
type adminRule struct {
	ca      *x509.CertPool // nil: no admin CA
	cns     []string
	peers   *x509.CertPool           // nil: members are not recognized
	members func() []raftnode.Member // set by Start once the node exists
	// servers lists the client URLs of the groups in the shard config
	// this member knows; nil outside a sharded deployment.
	servers func() []string
}

func (c Config) adminRule() (*adminRule, error) {
	a := &adminRule{cns: c.AdminCNs}
	if c.AdminCAFile != "" {
		a.ca = x509.NewCertPool()
		if err := appendPEM(a.ca, c.AdminCAFile); err != nil {
			return nil, err
		}
	}
	if c.PeerTLS != nil && c.PeerTLS.TrustedCAFile != "" {
		a.peers = x509.NewCertPool()
		if err := appendPEM(a.peers, c.PeerTLS.TrustedCAFile); err != nil {
			return nil, err
		}
	}
	return a, nil
}

// admit is the httpapi.AdminFunc of the rule.
func (a *adminRule) admit(st *tls.ConnectionState, betweenGroups bool) error {
	if st == nil || len(st.PeerCertificates) == 0 {
		return errors.New("this connection presented no client certificate")
	}
	leaf := st.PeerCertificates[0]
	inter := x509.NewCertPool()
	for _, c := range st.PeerCertificates[1:] {
		inter.AddCert(c)
	}
	verifies := func(roots *x509.CertPool) bool {
		_, err := leaf.Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}})
		return err == nil
	}
	switch {
	case a.ca != nil && verifies(a.ca):
		return nil
	case len(st.VerifiedChains) > 0 && slices.Contains(a.cns, leaf.Subject.CommonName):
		return nil
	case a.peers != nil && a.members != nil && verifies(a.peers) && a.isMemberHost(leaf):
		return nil
	case betweenGroups && a.peers != nil && a.servers != nil && verifies(a.peers) && validForOne(leaf, a.servers()):
		return nil
	}
	return fmt.Errorf("the client certificate %q is not an admin's", leaf.Subject.CommonName)
}

// isMemberHost reports whether cert is valid for the host of a member's
// peer URL.
func (a *adminRule) isMemberHost(cert *x509.Certificate) bool {
	var urls []string
	for _, m := range a.members() {
		urls = append(urls, m.PeerURL)
	}
	return validForOne(cert, urls)
}

// validForOne reports whether cert is valid for the host of one of urls,
// each a URL or, as a shard config may list servers, a bare host:port.
func validForOne(cert *x509.Certificate, urls []string) bool {
	for _, s := range urls {
		hostport := s
		if strings.Contains(s, "://") {
			u, err := url.Parse(s)
			if err != nil {
				continue
			}
			hostport = u.Host
		}
		host, _, err := net.SplitHostPort(hostport)
		if err == nil && cert.VerifyHostname(host) == nil {
			return true
		}
	}
	return false
}

// appendPEM adds the certificates of the PEM file path to pool.
func appendPEM(pool *x509.CertPool, path string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("CA file: %w", err)
	}
	if !pool.AppendCertsFromPEM(b) {
		return fmt.Errorf("CA file %s holds no PEM certificate", path)
	}
	return nil
}

// peerSchemeError refuses a new member whose peer URL's scheme is not the
// one this cluster's peer links speak: rafthttp could not reach it.
type peerSchemeError struct{ url, want string }

func (e *peerSchemeError) Error() string {
	return fmt.Sprintf("daemon: peer URL %s is not %s", e.url, e.want)
}
func (e *peerSchemeError) BadRequest() bool { return true }
func (e *peerSchemeError) HumanMessage() string {
	if e.want == "https" {
		return fmt.Sprintf("peer URL %s must be https: this cluster's peer links use TLS", e.url)
	}
	return fmt.Sprintf("peer URL %s must be http: this cluster's peer links have no TLS", e.url)
}
