package bench

import (
	"cmp"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/raftkv/raftkv/client"
)

// ErrRoute is wrapped by Run's error when a sharded run cannot route its
// keyspace: the config could not be fetched, or gives some key's bucket
// to no group.
var ErrRoute = errors.New("bench: cannot route the keyspace")

// rerouteEvery bounds how often a run asks the config group for a new
// config after members answered 421: workers that hit 421 together cause
// one fetch.
const rerouteEvery = 100 * time.Millisecond

// sharding routes a sharded run's requests: the config comes from the
// config group through a client.Client, and each key number goes to the
// group the client routes it to, over the run's own connections.
type sharding struct {
	client *client.Client
	table  atomic.Pointer[shardTable]
	// lastTry is when a reroute last asked for a config, in Unix nanoseconds.
	lastTry atomic.Int64

	mu struct {
		sync.Mutex
		// conns are every connection made, by endpoint, reused by later
		// tables so that a new config costs no new connections to the
		// members that stay.
		conns map[string][]*conn
		all   []*conn
	}
	conns   int           // connections per group
	timeout time.Duration // of each request
	tls     *tls.Config   // for https members; nil: Go's defaults
}

// shardTable is one config's routing: for each key number the index of
// its group, and each group's connections (Config.Conns of them, spread
// over its members).
type shardTable struct {
	version uint64
	groups  int
	groupOf []uint16
	pools   [][]*conn
}

func newSharding(cfg *Config) (*sharding, error) {
	c, err := client.New(client.Config{ConfigEndpoints: cfg.ConfigEndpoints, RequestTimeout: cfg.Timeout, TLS: cfg.TLS})
	if err != nil {
		return nil, err
	}
	s := &sharding{client: c, conns: cfg.Conns, timeout: cfg.Timeout, tls: cfg.TLS}
	s.mu.conns = map[string][]*conn{}
	return s, nil
}

// conn returns worker id's connection for key number k.
func (s *sharding) conn(id, k int) *conn {
	t := s.table.Load()
	p := t.pools[t.groupOf[k]]
	return p[id%len(p)]
}

// route builds the table of the client's config, fetching it if the
// client has none or force is set; a table of the same version is kept.
func (s *sharding) route(ctx context.Context, keyspace, keySize int, force bool) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	var err error
	if force || s.table.Load() == nil {
		_, err = s.client.Refresh(ctx, 0)
	}
	if err != nil {
		return fmt.Errorf("%w: %w", ErrRoute, err)
	}
	cfg, _ := s.client.CachedConfig()
	if old := s.table.Load(); old != nil && old.version == cfg.Version {
		return nil
	}
	gids := cfg.GIDs()
	index := make(map[uint64]uint16, len(gids))
	t := &shardTable{version: cfg.Version, groups: len(gids), groupOf: make([]uint16, keyspace)}
	for i, gid := range gids {
		index[gid] = uint16(i)
		t.pools = append(t.pools, s.poolLocked(cfg.Groups[gid]))
	}
	for k := range keyspace {
		key := Key(uint64(k), keySize)
		rt, err := s.client.Route(ctx, key)
		if err != nil {
			return fmt.Errorf("%w: %w", ErrRoute, err)
		}
		if rt.Group == 0 {
			return fmt.Errorf("%w: config %d gives bucket %d of key %s to no group", ErrRoute, rt.Version, rt.Bucket, key)
		}
		t.groupOf[k] = index[rt.Group]
	}
	s.table.Store(t)
	return nil
}

// poolLocked returns s.conns connections to a group's members, round-robin.
func (s *sharding) poolLocked(servers []string) []*conn {
	servers = slices.Clone(servers)
	slices.SortFunc(servers, cmp.Compare)
	used := map[string]int{}
	pool := make([]*conn, 0, s.conns)
	for j := range s.conns {
		e, err := normalizeEndpoint(servers[j%len(servers)])
		if err != nil {
			continue // an unusable URL in the config: its share goes elsewhere
		}
		n := used[e]
		used[e]++
		if n == len(s.mu.conns[e]) {
			c, err := newConn(e, s.timeout, s.tls)
			if err != nil {
				continue
			}
			c.routing = true
			s.mu.conns[e] = append(s.mu.conns[e], c)
			s.mu.all = append(s.mu.all, c)
		}
		pool = append(pool, s.mu.conns[e][n])
	}
	if len(pool) == 0 {
		// Every URL is unusable: requests fail on a conn that cannot dial.
		c, _ := newConn("http://invalid.invalid:1", s.timeout, nil)
		s.mu.all = append(s.mu.all, c)
		pool = append(pool, c)
	}
	return pool
}

// reroute fetches the config again after a 421, at most once per
// rerouteEvery, and switches to its table; a failure keeps the old one.
func (s *sharding) reroute(ctx context.Context, keyspace, keySize int) {
	now := time.Now().UnixNano()
	last := s.lastTry.Load()
	if now-last < int64(rerouteEvery) || !s.lastTry.CompareAndSwap(last, now) {
		return
	}
	_ = s.route(ctx, keyspace, keySize, true)
}

func (s *sharding) close() {
	s.mu.Lock()
	all := slices.Clone(s.mu.all)
	s.mu.Unlock()
	for _, c := range all {
		c.close()
	}
	s.client.Close()
}

// normalizeEndpoint is a config's server URL as a conn takes it: a
// host:port without scheme (eraft's form) means http://host:port.
func normalizeEndpoint(e string) (string, error) {
	if !strings.Contains(e, "://") {
		e = "http://" + e
	}
	for len(e) > 0 && e[len(e)-1] == '/' {
		e = e[:len(e)-1]
	}
	return e, checkEndpoint(e)
}
