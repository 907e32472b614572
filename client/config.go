package client

import (
	"crypto/tls"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/raftkv/raftkv/internal/clienturl"
	"go.uber.org/zap"
)

// Defaults of the Config fields whose zero value means "default".
const (
	// DefaultRequestTimeout bounds a call, its retries included. It is
	// twice a member's default --request-timeout, so that a call can still
	// retry after a member answered 504 at its own deadline.
	DefaultRequestTimeout = 10 * time.Second
	// DefaultBackoff is the pause before the second try of a call; it
	// doubles at each try up to DefaultMaxBackoff.
	DefaultBackoff    = 10 * time.Millisecond
	DefaultMaxBackoff = 500 * time.Millisecond
	// DefaultMaxIdleConnsPerHost is how many idle keep-alive connections
	// the Client's own transport keeps to each member.
	DefaultMaxIdleConnsPerHost = 64
)

// Config configures a Client. Exactly one of Endpoints and ConfigEndpoints
// is required; every other field may be zero.
type Config struct {
	// Endpoints are the client URLs (http://host:port) of the members of
	// one raft group, or of routers. Any of them serves every key; the
	// Client sends to one and moves to the next when it fails.
	Endpoints []string
	// ConfigEndpoints are the client URLs of the config group's members
	// of a sharded deployment. The Client fetches the config from them,
	// caches it and sends each key's calls to the group that serves the
	// key's bucket. Admin calls (Join, Leave, Move, Query) need them.
	ConfigEndpoints []string
	// ClientID identifies this Client's writes to the servers' dedup
	// tables (header X-Client-ID): 1 to 64 of [A-Za-z0-9._-]. Two live
	// Clients must not share one. Empty means 16 random hex digits. A
	// Client with a fixed id numbers its writes from the time it starts
	// (in µs), so that a process started again under the same id does
	// not reuse the numbers of its earlier writes, whose results the
	// servers keep (a new write would get an old one's answer).
	ClientID string
	// RequestTimeout bounds each call, all its tries and pauses included,
	// unless the call's context has an earlier deadline. Zero means
	// DefaultRequestTimeout.
	RequestTimeout time.Duration
	// Backoff is the pause after the first failed try; it doubles at each
	// try up to MaxBackoff, with up to half of it added at random. Zero
	// means DefaultBackoff and DefaultMaxBackoff.
	Backoff, MaxBackoff time.Duration
	// HTTPClient sends the requests. Its redirect policy is replaced: the
	// Client follows no redirect (a 3xx is a wrong group). Nil means a
	// client of the Client's own whose transport keeps
	// DefaultMaxIdleConnsPerHost idle connections per member.
	HTTPClient *http.Client
	// TLS configures https to members and routers whose URLs are https:
	// the CAs to trust (RootCAs) and the client certificate to show
	// (Certificates, or GetClientCertificate), as a member started with
	// --client-cert-auth requires. It is cloned. Nil means Go's defaults:
	// the system's CAs and no client certificate. It configures the
	// Client's own transport, so it cannot be set with HTTPClient.
	TLS *tls.Config
	// Logger receives a debug entry per retried try and an info entry per
	// config refresh. Nil discards logs.
	Logger *zap.Logger
	// AutoSyncInterval, when positive, makes a Client of Endpoints call
	// Sync at that interval until Close, so that it follows the group's
	// membership: members added since are tried, removed ones dropped (as
	// etcd's clientv3 AutoSyncInterval). Zero: the Endpoints stay as
	// given, unless Sync or SetEndpoints is called.
	AutoSyncInterval time.Duration
}

// Validate reports the first problem with c; its errors wrap
// ErrInvalidConfig. Zero fields are valid and mean their defaults.
func (c Config) Validate() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: "+format, append([]any{ErrInvalidConfig}, args...)...)
	}
	switch {
	case len(c.Endpoints) == 0 && len(c.ConfigEndpoints) == 0:
		return bad("neither Endpoints nor ConfigEndpoints is set")
	case len(c.Endpoints) > 0 && len(c.ConfigEndpoints) > 0:
		return bad("Endpoints and ConfigEndpoints are exclusive: Endpoints name one group or routers, ConfigEndpoints a sharded deployment's config group")
	case c.ClientID != "" && !ValidClientID(c.ClientID):
		return bad("ClientID %q: want 1 to 64 of [A-Za-z0-9._-]", c.ClientID)
	case c.RequestTimeout < 0:
		return bad("RequestTimeout %v is negative", c.RequestTimeout)
	case c.Backoff < 0 || c.MaxBackoff < 0:
		return bad("Backoff %v and MaxBackoff %v must not be negative", c.Backoff, c.MaxBackoff)
	case c.TLS != nil && c.HTTPClient != nil:
		return bad("TLS configures the Client's own transport; with HTTPClient, set TLS in its transport")
	case c.AutoSyncInterval < 0:
		return bad("AutoSyncInterval %v is negative", c.AutoSyncInterval)
	case c.AutoSyncInterval > 0 && len(c.ConfigEndpoints) > 0:
		return bad("AutoSyncInterval follows the members of Endpoints' group; a sharded Client follows the config instead")
	}
	for _, e := range append(append([]string(nil), c.Endpoints...), c.ConfigEndpoints...) {
		if _, err := normalizeURL(e); err != nil {
			return bad("%v", err)
		}
	}
	return nil
}

func (c Config) withDefaults() Config {
	if c.RequestTimeout == 0 {
		c.RequestTimeout = DefaultRequestTimeout
	}
	if c.Backoff == 0 {
		c.Backoff = DefaultBackoff
	}
	if c.MaxBackoff == 0 {
		c.MaxBackoff = max(DefaultMaxBackoff, c.Backoff)
	}
	if c.Logger == nil {
		c.Logger = zap.NewNop()
	}
	return c
}

// ValidClientID reports whether id is a usable X-Client-ID: 1 to 64 of
// [A-Za-z0-9._-].
func ValidClientID(id string) bool {
	if len(id) < 1 || len(id) > 64 {
		return false
	}
	for i := 0; i < len(id); i++ {
		switch c := id[i]; {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '.', c == '_', c == '-':
		default:
			return false
		}
	}
	return true
}

// normalizeURL returns a member's base URL as the Client uses it:
// scheme://host:port with no trailing slash. A host:port without a scheme
// (eraft's configs list servers so) means http://host:port.
func normalizeURL(s string) (string, error) {
	s = strings.TrimRight(strings.TrimSpace(s), "/")
	if !strings.Contains(s, "://") {
		s = "http://" + s
	}
	if err := clienturl.Check(s); err != nil {
		return "", fmt.Errorf("endpoint %q %v: want http(s)://host:port", s, err)
	}
	return s, nil
}
