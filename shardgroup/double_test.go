package shardgroup

// Test doubles for the driver's unit tests: memShard implements the
// Store interface with the contract's fencing rules in memory (kvstore's
// own tests and this package's end-to-end tests cover the real one), and
// memConfig the config group's store under the real configgroup handler.
// The HTTP between them is real: httptest servers running httpapi with
// the real routes of this package and of configgroup.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/raftkv/raftkv/configgroup"
	"github.com/raftkv/raftkv/httpapi"
	"github.com/raftkv/raftkv/internal/testutil"
	"github.com/raftkv/raftkv/shardmap"
	"go.uber.org/zap/zaptest"
)

// codedErr is an error with a Code and the behaviour httpapi maps it by.
type codedErr struct{ code string }

func (e codedErr) Error() string    { return "double: " + e.code }
func (e codedErr) Code() string     { return e.code }
func (e codedErr) Conflict() bool   { return true }
func (e codedErr) BadRequest() bool { return false }

// memShard is one shard group's replicated state, shared by its members
// (one state for the whole group: the doubles model a group whose log
// every member applied).
type memShard struct {
	mu      sync.Mutex
	st      ShardState
	data    map[int][]byte // bucket -> its keys, opaque here
	changed chan struct{}
	calls   []string // every state-changing call that applied, in order
}

func newMemShard(group uint64, buckets int) *memShard {
	return &memShard{
		st:      ShardState{Group: group, Status: make([]BucketStatus, buckets)},
		data:    map[int][]byte{},
		changed: make(chan struct{}),
	}
}

// changeLocked records an applied change and wakes ShardChanged.
func (s *memShard) changeLocked(call string) {
	s.st.AppliedIndex++
	s.calls = append(s.calls, call)
	close(s.changed)
	s.changed = make(chan struct{})
}

func (s *memShard) ShardState() ShardState {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.st
	st.Config, st.Prev, st.Status = st.Config.Clone(), st.Prev.Clone(), slices.Clone(st.Status)
	return st
}

func (s *memShard) LinearizableShardState(ctx context.Context) (ShardState, error) {
	return s.ShardState(), ctx.Err()
}

func (s *memShard) ShardChanged() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.changed
}

func (s *memShard) ProposeConfig(ctx context.Context, c shardmap.Config) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if c.Version == s.st.Config.Version+1 && s.st.Settled() {
		old, g := s.st.Config, s.st.Group
		for b := range s.st.Status {
			was, is := old.Owner(b) == g, c.Owner(b) == g
			switch {
			case was && is:
				s.st.Status[b] = Serving
			case !was && is && (old.Version == 0 || old.Owner(b) == 0):
				s.st.Status[b] = Serving
			case !was && is:
				s.st.Status[b] = Pulling
			case was && !is:
				s.st.Status[b] = BePulling
			default:
				s.st.Status[b] = NotOwned
			}
		}
		s.st.Prev, s.st.Config = old, c.Clone()
		s.changeLocked(fmt.Sprintf("config %d", c.Version))
	}
	if s.st.Config.Version >= c.Version {
		return nil
	}
	return codedErr{codeNotSettled}
}

// encode and decode stand for kvstore.BucketData's binary form.
func encode(b int, version uint64, data []byte) []byte {
	return append([]byte(fmt.Sprintf("%d@%d:", b, version)), data...)
}

func (s *memShard) ExportBucket(ctx context.Context, b int, version uint64) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.st.Config.Version < version:
		return nil, codedErr{codeNotReady}
	case s.st.Config.Version == version && s.st.Status[b] == BePulling:
		return encode(b, version, s.data[b]), nil
	}
	return nil, codedErr{codeBucketGone}
}

func (s *memShard) InstallBucket(ctx context.Context, b int, version uint64, data []byte) error {
	head := fmt.Sprintf("%d@%d:", b, version)
	if !bytes.HasPrefix(data, []byte(head)) {
		return fmt.Errorf("double: data is not bucket %d at version %d", b, version)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.st.Config.Version == version && s.st.Status[b] == Pulling {
		s.data[b] = bytes.Clone(data[len(head):])
		s.st.Status[b] = GCing
		s.changeLocked(fmt.Sprintf("install %d@%d", b, version))
	}
	return nil
}

func (s *memShard) DeleteBucket(ctx context.Context, b int, version uint64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.st.Config.Version < version {
		return codedErr{codeNotReady}
	}
	if s.st.Config.Version == version && s.st.Status[b] == BePulling {
		delete(s.data, b)
		s.st.Status[b] = NotOwned
		s.changeLocked(fmt.Sprintf("delete %d@%d", b, version))
	}
	return nil
}

func (s *memShard) FinishGC(ctx context.Context, b int, version uint64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.st.Config.Version == version && s.st.Status[b] == GCing {
		s.st.Status[b] = Serving
		s.changeLocked(fmt.Sprintf("finish %d@%d", b, version))
	}
	return nil
}

func (s *memShard) MarkJoined(ctx context.Context, from shardmap.Config) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.st.Joined {
		owns := slices.ContainsFunc(s.st.Status, func(b BucketStatus) bool { return b != NotOwned })
		if _, listed := from.Groups[s.st.Group]; !listed && from.Version > 0 && from.Version >= s.st.Config.Version && !owns {
			s.st.Prev, s.st.Config = from.Clone(), from.Clone()
		}
		s.st.Joined = true
		s.changeLocked(fmt.Sprintf("joined from %d", from.Version))
	}
	return nil
}

// put stores a bucket's data, as writes to a Serving bucket would.
func (s *memShard) put(b int, data string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.st.Status[b] != Serving {
		panic(fmt.Sprintf("double: put to bucket %d, %v", b, s.st.Status[b]))
	}
	s.data[b] = []byte(data)
}

func (s *memShard) get(b int) (string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	d, ok := s.data[b]
	return string(d), ok
}

func (s *memShard) callLog() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.calls)
}

// memConfig is the config group's store: each operation applied at once.
type memConfig struct {
	mu      sync.Mutex
	hist    shardmap.History
	changed chan struct{}
	queries int
}

func newMemConfig(t *testing.T, buckets int) *memConfig {
	h, err := shardmap.NewHistory(buckets)
	if err != nil {
		t.Fatal(err)
	}
	return &memConfig{hist: h, changed: make(chan struct{})}
}

func (c *memConfig) ConfigOp(ctx context.Context, op configgroup.Op, wo httpapi.WriteOptions) (shardmap.Config, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	latest := c.hist.Latest()
	var next shardmap.Config
	var err error
	switch {
	case op.Join != nil:
		next, err = latest.Join(op.Join)
	case op.Leave != nil:
		next, err = latest.Leave(op.Leave)
	default:
		next, err = latest.Move(op.Move.Bucket, op.Move.GID)
	}
	if err != nil {
		return shardmap.Config{}, err
	}
	c.hist.Append(next)
	close(c.changed)
	c.changed = make(chan struct{})
	return next, nil
}

func (c *memConfig) QueryConfig(ctx context.Context, version int64, opts httpapi.ReadOptions) (shardmap.Config, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.queries++
	return c.hist.Query(version).Clone(), nil
}

func (c *memConfig) WaitConfigVersion(ctx context.Context, version uint64) error {
	for {
		c.mu.Lock()
		latest, ch := c.hist.Latest().Version, c.changed
		c.mu.Unlock()
		if latest >= version {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

func (c *memConfig) ConfigHistory() shardmap.History {
	c.mu.Lock()
	defer c.mu.Unlock()
	return shardmap.History{Configs: slices.Clone(c.hist.Configs)}
}

func (c *memConfig) op(t *testing.T, op configgroup.Op) shardmap.Config {
	t.Helper()
	cfg, err := c.ConfigOp(context.Background(), op, httpapi.WriteOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// restoreTo makes c's history end at version, as a config group
// restored alone from an older backup.
func (c *memConfig) restoreTo(version uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.hist.Configs = c.hist.Configs[:version+1]
}

func (c *memConfig) queryCount() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.queries
}

// noKeys and stubCluster complete the httpapi handlers the routes are
// mounted on.
type noKeys struct{}

var errNoKeys = httpapi.BadRequest("no keys here")

func (noKeys) GetKV(context.Context, string, httpapi.ReadOptions) (httpapi.KeyValue, uint64, error) {
	return httpapi.KeyValue{}, 0, errNoKeys
}
func (noKeys) Put(context.Context, string, []byte) (httpapi.Written, error) {
	return httpapi.Written{}, errNoKeys
}
func (noKeys) PutAll(context.Context, map[string][]byte) (uint64, error) { return 0, errNoKeys }
func (noKeys) Delete(context.Context, string) (uint64, error)            { return 0, errNoKeys }
func (noKeys) Write(context.Context, []httpapi.Op, httpapi.WriteOptions) (httpapi.Written, error) {
	return httpapi.Written{}, errNoKeys
}
func (noKeys) Txn(context.Context, httpapi.Txn, httpapi.WriteOptions) (httpapi.TxnResult, error) {
	return httpapi.TxnResult{}, errNoKeys
}
func (noKeys) List(context.Context, httpapi.ListOptions) (httpapi.ListResult, error) {
	return httpapi.ListResult{}, errNoKeys
}
func (noKeys) DeleteRange(context.Context, httpapi.DeleteRangeOptions) (httpapi.DeleteRangeResult, error) {
	return httpapi.DeleteRangeResult{}, errNoKeys
}
func (noKeys) Watch(context.Context, httpapi.WatchOptions) (httpapi.Watcher, error) {
	return nil, errNoKeys
}
func (noKeys) Digest() httpapi.Digest { return httpapi.Digest{} }

// HashKV and HashAt: the double keeps no state to hash.
func (noKeys) HashKV(context.Context) (httpapi.HashResult, error) {
	return httpapi.HashResult{}, errNoKeys
}
func (noKeys) HashAt(context.Context, uint64) (httpapi.HashResult, error) {
	return httpapi.HashResult{}, errNoKeys
}

// stubCluster is a cluster of one member that changes nothing; the
// routes under test never reach its membership calls (the embedded nil
// interface).
type stubCluster struct{ httpapi.Cluster }

func (stubCluster) Status() httpapi.Status { return httpapi.Status{} }
func (stubCluster) Health() error          { return nil }

// serveRoutes serves routes on an httptest server through httpapi.
func serveRoutes(t *testing.T, routes map[string]httpapi.RouteFunc) *httptest.Server {
	t.Helper()
	h, err := httpapi.New(httpapi.Config{Store: noKeys{}, Cluster: stubCluster{}, Routes: routes, Logger: zaptest.NewLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv
}

// serveConfigGroup serves c through the real configgroup handler.
func serveConfigGroup(t *testing.T, c *memConfig) *httptest.Server {
	t.Helper()
	h, err := configgroup.New(configgroup.Config{Store: c, Logger: zaptest.NewLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	return serveRoutes(t, h.Routes())
}

// testGroup is one shard group of the doubles: its state, one server for
// its migration endpoints (its "member"), and its driver.
type testGroup struct {
	gid    uint64
	store  *memShard
	srv    *httptest.Server
	leader *flag
	driver *Driver
}

// flag is a bool that tests flip while a driver reads it.
type flag struct {
	mu sync.Mutex
	v  bool
}

func (f *flag) get() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.v
}

func (f *flag) set(v bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.v = v
}

func newTestGroup(t *testing.T, gid uint64, buckets int) *testGroup {
	g := &testGroup{gid: gid, store: newMemShard(gid, buckets), leader: &flag{v: true}}
	g.srv = serveRoutes(t, NewHandler(g.store, time.Second, zaptest.NewLogger(t)).Routes())
	return g
}

// start starts g's driver against the config group at configURL.
func (g *testGroup) start(t *testing.T, configURL string, edit func(*Config)) {
	t.Helper()
	cfg := Config{
		Group:           g.gid,
		Store:           g.store,
		IsLeader:        g.leader.get,
		MemberURLs:      func() ([]string, bool) { return []string{g.srv.URL}, true },
		ConfigEndpoints: []string{configURL},
		PollInterval:    10 * time.Millisecond,
		LongPoll:        200 * time.Millisecond,
		RequestTimeout:  2 * time.Second,
		Logger:          zaptest.NewLogger(t).Named(fmt.Sprintf("group%d", g.gid)),
	}
	if edit != nil {
		edit(&cfg)
	}
	d, err := Start(cfg)
	if err != nil {
		t.Fatal(err)
	}
	g.driver = d
	t.Cleanup(d.Stop)
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	testutil.WaitFor(t, 20*time.Second, what, func() error {
		if !cond() {
			return errors.New("not yet")
		}
		return nil
	})
}

// settledAt reports whether g applied config version and is settled.
func (g *testGroup) settledAt(version uint64) bool {
	st := g.store.ShardState()
	return st.Config.Version == version && st.Settled()
}

// statuses is a compact form of st.Status for messages.
func statuses(st ShardState) string {
	var b strings.Builder
	for _, s := range st.Status {
		b.WriteString(s.String()[:1])
	}
	return b.String()
}
