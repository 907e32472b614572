package client

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/raftkv/raftkv/shardmap"
	"go.uber.org/zap"
)

// Route is where the Client sends a key's calls.
type Route struct {
	// Version is the config version the route comes from (0 when the
	// Client is not sharded).
	Version uint64
	// Bucket is the key's bucket (-1 when the Client is not sharded).
	Bucket int
	// Group serves the bucket (0 when the Client is not sharded, or when
	// the config gives the bucket to no group).
	Group uint64
	// Servers are the client URLs calls go to: the group's members, or
	// Config.Endpoints.
	Servers []string
}

// routes is one config and the members of each of its groups.
type routes struct {
	cfg    shardmap.Config
	groups map[uint64]*members
}

// configCache holds the newest config the Client has seen, and the
// refresh in flight if any. Refreshes are single-flight: a caller that
// needs a config at least as new as the one being fetched waits for that
// fetch instead of sending its own. It also keeps the last
// maxPastConfigs configs it saw by version, for Query: a config never
// changes once published.
type configCache struct {
	routes  atomic.Pointer[routes]
	fetches atomic.Uint64
	mu      struct {
		sync.Mutex
		inFlight *flight
		past     map[uint64]shardmap.Config
	}
}

// maxPastConfigs bounds the configs a Client keeps for Query.
const maxPastConfigs = 64

// remember keeps cfg for Query, forgetting the oldest kept beyond
// maxPastConfigs.
func (cc *configCache) remember(cfg shardmap.Config) {
	cc.mu.Lock()
	defer cc.mu.Unlock()
	if cc.mu.past == nil {
		cc.mu.past = make(map[uint64]shardmap.Config)
	}
	if _, ok := cc.mu.past[cfg.Version]; ok {
		return
	}
	cc.mu.past[cfg.Version] = cfg.Clone()
	if len(cc.mu.past) > maxPastConfigs {
		delete(cc.mu.past, slices.Min(slices.Collect(maps.Keys(cc.mu.past))))
	}
}

// pastConfig returns the config of version v if the Client kept it.
func (cc *configCache) pastConfig(v uint64) (shardmap.Config, bool) {
	cc.mu.Lock()
	defer cc.mu.Unlock()
	cfg, ok := cc.mu.past[v]
	if !ok {
		return shardmap.Config{}, false
	}
	return cfg.Clone(), true
}

// flight is one config fetch; done is closed when err is set.
type flight struct {
	done chan struct{}
	err  error
}

// CachedConfig returns the config the Client routes by, without sending
// anything; false when it has none yet or is not sharded.
func (c *Client) CachedConfig() (shardmap.Config, bool) {
	r := c.cache.routes.Load()
	if r == nil {
		return shardmap.Config{}, false
	}
	return r.cfg.Clone(), true
}

// ConfigFetches returns how many times the Client has fetched the config.
func (c *Client) ConfigFetches() uint64 { return c.cache.fetches.Load() }

// Refresh makes the Client's cached config at least minVersion, fetching
// the latest from the config group unless the cache already is; minVersion
// 0 fetches in any case. Concurrent refreshes share one fetch. It returns
// the cached config.
//
// The fetch is bounded by RequestTimeout, not by ctx, so that a waiter
// whose context ends does not fail the others; Refresh itself returns when
// ctx ends.
func (c *Client) Refresh(ctx context.Context, minVersion uint64) (shardmap.Config, error) {
	if !c.Sharded() {
		return shardmap.Config{}, ErrNoConfigGroup
	}
	for forced := minVersion == 0; ; {
		if r := c.cache.routes.Load(); r != nil && !forced && r.cfg.Version >= minVersion {
			return r.cfg.Clone(), nil
		}
		c.cache.mu.Lock()
		f := c.cache.mu.inFlight
		if f == nil {
			if r := c.cache.routes.Load(); r != nil && !forced && r.cfg.Version >= minVersion {
				c.cache.mu.Unlock()
				continue
			}
			f = &flight{done: make(chan struct{})}
			c.cache.mu.inFlight = f
			go c.fetch(context.WithoutCancel(ctx), f, minVersion)
		}
		c.cache.mu.Unlock()
		select {
		case <-f.done:
		case <-ctx.Done():
			return shardmap.Config{}, &Error{Op: "config", Err: ctx.Err()}
		}
		if f.err != nil {
			// Every caller waiting on the flight gets its error, and a
			// call fills in its own op, key and tries: each gets a copy.
			if e, ok := f.err.(*Error); ok {
				cp := *e
				return shardmap.Config{}, &cp
			}
			return shardmap.Config{}, f.err
		}
		forced = false
	}
}

// fetch runs flight f: it fetches the latest config, at least minVersion,
// and caches it.
func (c *Client) fetch(ctx context.Context, f *flight, minVersion uint64) {
	cfg, err := c.fetchConfig(ctx, minVersion)
	if err == nil {
		c.setRoutes(cfg)
	}
	c.cache.mu.Lock()
	c.cache.mu.inFlight = nil
	c.cache.mu.Unlock()
	f.err = err
	close(f.done)
}

// fetchConfig asks the config group for its latest config until it is at
// least minVersion (a member that lags is asked again) or the call's
// deadline passes.
func (c *Client) fetchConfig(ctx context.Context, minVersion uint64) (shardmap.Config, error) {
	ctx, cancel := c.callContext(ctx)
	defer cancel()
	backoff := c.cfg.Backoff
	for {
		c.cache.fetches.Add(1)
		cfg, err := c.queryConfig(ctx, -1, false)
		if err != nil {
			return cfg, err
		}
		if cfg.Version >= minVersion {
			c.lg.Info("fetched config", zap.Uint64("version", cfg.Version), zap.Int("groups", len(cfg.Groups)))
			return cfg, nil
		}
		if !c.pause(ctx, &backoff) {
			return shardmap.Config{}, &Error{Op: "config", Code: CodeTimeout, Err: context.DeadlineExceeded,
				Message: fmt.Sprintf("the config group's latest config is %d, below %d", cfg.Version, minVersion)}
		}
	}
}

// queryConfig is GET /config[?version=v[&level=stale]] on the config group.
func (c *Client) queryConfig(ctx context.Context, version int64, stale bool) (shardmap.Config, error) {
	path := "/config"
	if version >= 0 {
		path = fmt.Sprintf("/config?version=%d", version)
		if stale {
			path += "&level=stale"
		}
	}
	rep, err := c.do(ctx, &call{op: "config", method: http.MethodGet, path: path, admin: true, ok: []int{http.StatusOK}})
	if err != nil {
		return shardmap.Config{}, err
	}
	return decodeConfig(rep)
}

// decodeConfig reads a Config answer and checks it.
func decodeConfig(rep *reply) (shardmap.Config, error) {
	var cfg shardmap.Config
	err := json.Unmarshal(rep.body, &cfg)
	if err == nil {
		err = cfg.Validate()
	}
	if err != nil {
		return shardmap.Config{}, &Error{Op: "config", Endpoint: rep.endpoint, Status: rep.status,
			Code: CodeInternal, Message: "the config group answered an unusable config", Err: err}
	}
	return cfg, nil
}

// setRoutes caches cfg unless the cache holds a newer one. A group whose
// servers did not change keeps its current member.
func (c *Client) setRoutes(cfg shardmap.Config) {
	c.cache.remember(cfg)
	for {
		old := c.cache.routes.Load()
		if old != nil && old.cfg.Version >= cfg.Version {
			return
		}
		r := &routes{cfg: cfg, groups: make(map[uint64]*members, len(cfg.Groups))}
		for gid, servers := range cfg.Groups {
			m := newMembers(servers)
			if len(m.urls) == 0 {
				continue // no usable URL: its buckets route as unowned
			}
			if old != nil {
				if prev, ok := old.groups[gid]; ok && slices.Equal(prev.urls, m.urls) {
					m.cur.Store(prev.cur.Load())
				}
			}
			r.groups[gid] = m
		}
		if c.cache.routes.CompareAndSwap(old, r) {
			return
		}
	}
}

// currentRoutes returns the cached routes, fetching the config if there
// are none yet.
func (c *Client) currentRoutes(ctx context.Context) (*routes, error) {
	if r := c.cache.routes.Load(); r != nil {
		return r, nil
	}
	if _, err := c.Refresh(ctx, 0); err != nil {
		return nil, err
	}
	return c.cache.routes.Load(), nil
}

// Route returns where the Client sends key's calls now, fetching the
// config first if the Client has none yet.
func (c *Client) Route(ctx context.Context, key string) (Route, error) {
	if !c.Sharded() {
		return Route{Bucket: -1, Servers: c.Endpoints()}, nil
	}
	r, err := c.currentRoutes(ctx)
	if err != nil {
		return Route{}, err
	}
	b := shardmap.BucketOf(key, len(r.cfg.Buckets))
	rt := Route{Version: r.cfg.Version, Bucket: b, Group: r.cfg.Buckets[b]}
	if m, ok := r.groups[rt.Group]; ok {
		rt.Servers = slices.Clone(m.urls)
	} else {
		rt.Group = 0
	}
	return rt, nil
}

// target chooses the members of one try of cl: the config group for admin
// calls, Config.Endpoints when not sharded, else the group serving the
// key's bucket (every key's, for a PutAll) in the cached config.
func (c *Client) target(ctx context.Context, cl *call) (m *members, turn uint64, endpoint string, err error) {
	switch {
	case cl.admin && c.configGroup == nil:
		return nil, 0, "", ErrNoConfigGroup
	case cl.admin:
		m = c.configGroup
	case !c.Sharded():
		m = c.endpoints.Load()
	default:
		r, err := c.currentRoutes(ctx)
		if err != nil {
			return nil, 0, "", err
		}
		if cl.group != 0 {
			if m = r.groups[cl.group]; m == nil {
				return nil, 0, "", &Error{Code: CodeWrongGroup, Version: r.cfg.Version,
					Message: fmt.Sprintf("config %d has no group %d", r.cfg.Version, cl.group)}
			}
			break
		}
		if m, err = r.groupOf(cl); err != nil {
			return nil, 0, "", err
		}
	}
	turn, endpoint = m.pick()
	return m, turn, endpoint, nil
}

// groupOf returns the members of the group serving cl's keys.
func (r *routes) groupOf(cl *call) (*members, error) {
	keys := cl.keys
	if len(keys) == 0 {
		keys = []string{cl.key}
	}
	n := len(r.cfg.Buckets)
	var gid uint64
	for i, k := range keys {
		b := shardmap.BucketOf(k, n)
		g := r.cfg.Buckets[b]
		if _, ok := r.groups[g]; !ok {
			return nil, &Error{Key: k, Code: CodeNoOwner, Version: r.cfg.Version, Bucket: b,
				Message: fmt.Sprintf("config %d gives bucket %d to no group", r.cfg.Version, b)}
		}
		if i > 0 && g != gid {
			return nil, &Error{Key: k, Code: CodeCrossGroup, Version: r.cfg.Version, Bucket: b, Owner: g,
				Message: fmt.Sprintf("key %q is served by group %d and key %q by group %d in config %d; one write reaches one group",
					keys[0], gid, k, g, r.cfg.Version)}
		}
		gid = g
	}
	return r.groups[gid], nil
}
