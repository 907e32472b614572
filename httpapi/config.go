package httpapi

import (
	"fmt"
	"net/http"
	"strings"
	"time"

	"go.uber.org/zap"
)

// Defaults applied by New to zero Config fields.
const (
	DefaultRequestTimeout       = 5 * time.Second
	DefaultMaxValueBytes  int64 = 1572864 // 1.5 MiB, etcd's default request size limit
	DefaultMaxKeyBytes          = 4096
	// DefaultMaxInFlight bounds the requests served at once. Each holds a
	// goroutine, its body (at most MaxValueBytes: 3 GiB for 2048 of them at
	// the default) and, for a write, a pending proposal.
	DefaultMaxInFlight = 2048
	// DefaultMaxWatchers bounds the watches open at once. Each holds a
	// connection, two goroutines and its buffer of events.
	DefaultMaxWatchers = 10000
	// DefaultWatchProgressInterval is how often an idle watch gets a
	// heartbeat.
	DefaultWatchProgressInterval = 5 * time.Second
)

// Config configures the handler built by New. The zero value of every field
// except Store and Cluster means its default.
type Config struct {
	// Store serves key reads and writes. Required.
	Store Store
	// Cluster serves membership changes and GET /status. Required.
	Cluster Cluster
	// Logger receives one warn entry per 5xx response, except the 503 of GET
	// /health. Nil discards logs.
	Logger *zap.Logger
	// RequestTimeout is the deadline put on each Store or Cluster call. When it
	// expires the client gets 504. Zero means DefaultRequestTimeout.
	RequestTimeout time.Duration
	// MaxValueBytes is the largest request body a PUT /<key>, PUT /key/<key>
	// or POST /key accepts, in bytes; a larger one gets 413. Zero means
	// DefaultMaxValueBytes.
	MaxValueBytes int64
	// MaxKeyBytes is the longest key accepted, in bytes after percent-decoding;
	// a longer one gets 400. Zero means DefaultMaxKeyBytes.
	MaxKeyBytes int
	// MaxInFlight is the most requests served at once, from the moment the
	// handler is entered (before the body is read) until it returns. A
	// request beyond it is answered at once with 503, Retry-After: 1 and
	// "too many requests in flight", without reading its body or calling
	// Store or Cluster. GET /health, /status and /metrics are exempt and not
	// counted, so an overloaded member can still be observed. Zero means
	// DefaultMaxInFlight.
	MaxInFlight int
	// MaxWatchers is the most watches (GET ...?watch=true) open at once.
	// Watches are not counted in MaxInFlight and have no RequestTimeout:
	// they last until their client goes or the server shuts down. One
	// beyond it is answered 503, Retry-After: 1, code too_many_watchers.
	// Zero means DefaultMaxWatchers.
	MaxWatchers int
	// WatchProgressInterval is how often a watch with no event to send
	// gets a heartbeat (": progress <index>"), which keeps proxies from
	// closing it and tells the client how far the member has looked.
	// Zero means DefaultWatchProgressInterval.
	WatchProgressInterval time.Duration
	// Metrics serves GET and HEAD /metrics, e.g. a Prometheus handler. Nil
	// means /metrics answers 404 "metrics are not enabled".
	Metrics http.Handler
	// Dashboard serves every method of /ui and /ui/..., e.g. package ui's
	// handler; it answers them itself, 405 included. Nil means those paths
	// answer 404 "the dashboard is not enabled".
	Dashboard http.Handler
	// Pprof serves net/http/pprof under /debug/pprof/. It exposes the command
	// line and lets clients run CPU profiles and traces, so enable it only on
	// a trusted network. False means /debug/pprof/ answers 404.
	Pprof bool
	// Snapshot serves GET /snapshot, a backup of the whole state (see
	// Snapshotter and SnapshotRoute, an admin route): anyone who can
	// reach the client port can then read every key, so a member enables
	// it on purpose. Nil means /snapshot answers 404 "snapshot download
	// is not enabled on this member" to every method.
	Snapshot Snapshotter
	// Routes mounts other packages' endpoints on the client port, such as
	// a config group's /config or a shard group's /shard/: a name ending
	// in "/" serves every path under it, any other name that path alone.
	// They are dispatched before every route of this package, count
	// toward MaxInFlight, and are never served on the fast path; a key
	// whose path they take stays reachable as /key/<key>. Nil means none.
	Routes map[string]RouteFunc
	// Group is a shard member's group id, named in HeaderGroup on its
	// watch streams with markers (a router's); zero (any other member)
	// names none.
	Group uint64
	// Admin, when set, is asked before every admin request is served (a
	// membership change, a leader transfer, a snapshot download, a change
	// of the shard config; see adminRequest), with the TLS state of its
	// connection and whether the groups make it of each other
	// (BetweenGroups); a refusal is
	// answered 403 with code forbidden. Nil admits every client.
	Admin AdminFunc
}

// Validate reports the first problem with c. Zero fields are valid: New
// replaces them with defaults.
func (c Config) Validate() error {
	switch {
	case c.Store == nil:
		return fmt.Errorf("%w: Store is nil", ErrInvalidConfig)
	case c.Cluster == nil:
		return fmt.Errorf("%w: Cluster is nil", ErrInvalidConfig)
	case c.RequestTimeout < 0:
		return fmt.Errorf("%w: RequestTimeout %v is negative", ErrInvalidConfig, c.RequestTimeout)
	case c.MaxValueBytes < 0:
		return fmt.Errorf("%w: MaxValueBytes %d is negative", ErrInvalidConfig, c.MaxValueBytes)
	case c.MaxKeyBytes < 0:
		return fmt.Errorf("%w: MaxKeyBytes %d is negative", ErrInvalidConfig, c.MaxKeyBytes)
	case c.MaxInFlight < 0:
		return fmt.Errorf("%w: MaxInFlight %d is negative", ErrInvalidConfig, c.MaxInFlight)
	case c.MaxWatchers < 0:
		return fmt.Errorf("%w: MaxWatchers %d is negative", ErrInvalidConfig, c.MaxWatchers)
	case c.WatchProgressInterval < 0:
		return fmt.Errorf("%w: WatchProgressInterval %v is negative", ErrInvalidConfig, c.WatchProgressInterval)
	}
	for name, f := range c.Routes {
		switch {
		case len(name) < 2 || name[0] != '/':
			return fmt.Errorf("%w: route %q must be a path below /", ErrInvalidConfig, name)
		case exemptFromLimit(name) || name == "/key" || strings.HasPrefix(name, "/key/") || name == SnapshotRoute.Path:
			return fmt.Errorf("%w: route %q would hide an endpoint of the client API", ErrInvalidConfig, name)
		case f == nil:
			return fmt.Errorf("%w: route %q has no handler", ErrInvalidConfig, name)
		}
	}
	return nil
}

func (c Config) withDefaults() Config {
	if c.Logger == nil {
		c.Logger = zap.NewNop()
	}
	if c.RequestTimeout == 0 {
		c.RequestTimeout = DefaultRequestTimeout
	}
	if c.MaxValueBytes == 0 {
		c.MaxValueBytes = DefaultMaxValueBytes
	}
	if c.MaxKeyBytes == 0 {
		c.MaxKeyBytes = DefaultMaxKeyBytes
	}
	if c.MaxInFlight == 0 {
		c.MaxInFlight = DefaultMaxInFlight
	}
	if c.MaxWatchers == 0 {
		c.MaxWatchers = DefaultMaxWatchers
	}
	if c.WatchProgressInterval == 0 {
		c.WatchProgressInterval = DefaultWatchProgressInterval
	}
	return c
}

// New validates cfg, applies defaults and returns the client API handler.
// The handler is safe for concurrent use; its only state is the count of
// requests in flight.
func New(cfg Config) (http.Handler, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &handler{cfg: cfg.withDefaults(), stopping: make(chan struct{})}, nil
}
