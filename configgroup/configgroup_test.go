package configgroup

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/raftkv/raftkv/httpapi"
	"github.com/raftkv/raftkv/shardmap"
	"go.uber.org/zap/zaptest"
)

// memStore is a test double of the Store interface: the history in
// memory, each operation applied at once with shardmap's functions, and
// a dedup table of (client id, seq). kvstore's own tests cover the real
// one; the end-to-end tests of shardgroup run this package over it.
type memStore struct {
	mu      sync.Mutex
	hist    shardmap.History
	changed chan struct{} // closed and replaced at each append
	seen    map[httpapi.WriteOptions]shardmap.Config
	ops     []Op
	queries []httpapi.ReadOptions
	fail    error // returned by every call when set
}

func newMemStore(t *testing.T, buckets int) *memStore {
	h, err := shardmap.NewHistory(buckets)
	if err != nil {
		t.Fatal(err)
	}
	return &memStore{hist: h, changed: make(chan struct{}), seen: map[httpapi.WriteOptions]shardmap.Config{}}
}

func (s *memStore) ConfigOp(ctx context.Context, op Op, wo httpapi.WriteOptions) (shardmap.Config, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fail != nil {
		return shardmap.Config{}, s.fail
	}
	s.ops = append(s.ops, op)
	if c, ok := s.seen[wo]; ok && wo.ClientID != "" {
		return c, nil
	}
	latest := s.hist.Latest()
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
		return shardmap.Config{}, fmt.Errorf("kvstore: config op: %w", err)
	}
	if err := s.hist.Append(next); err != nil {
		return shardmap.Config{}, err
	}
	close(s.changed)
	s.changed = make(chan struct{})
	if wo.ClientID != "" {
		s.seen[wo] = next
	}
	return next, nil
}

func (s *memStore) QueryConfig(ctx context.Context, version int64, opts httpapi.ReadOptions) (shardmap.Config, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fail != nil {
		return shardmap.Config{}, s.fail
	}
	s.queries = append(s.queries, opts)
	return s.hist.Query(version).Clone(), nil
}

func (s *memStore) WaitConfigVersion(ctx context.Context, version uint64) error {
	for {
		s.mu.Lock()
		latest, changed := s.hist.Latest().Version, s.changed
		s.mu.Unlock()
		if latest >= version {
			return nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

func (s *memStore) ConfigHistory() shardmap.History {
	s.mu.Lock()
	defer s.mu.Unlock()
	return shardmap.History{Configs: append([]shardmap.Config(nil), s.hist.Configs...)}
}

// noKeys and stubCluster complete the httpapi handler the routes are
// mounted on.
type noKeys struct{}

var errNoKeys = httpapi.BadRequest("config group members serve no keys")

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

// serve builds the client API with the config routes over store.
func serve(t *testing.T, store Store, edit func(*Config)) http.Handler {
	t.Helper()
	cfg := Config{Store: store, Logger: zaptest.NewLogger(t), MaxWait: 2 * time.Second}
	if edit != nil {
		edit(&cfg)
	}
	h, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	api, err := httpapi.New(httpapi.Config{Store: noKeys{}, Cluster: stubCluster{}, Routes: h.Routes(), Logger: zaptest.NewLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	return api
}

func do(h http.Handler, method, target, body string, hdr map[string]string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(method, target, strings.NewReader(body))
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

// TestOperations: join, leave and move in their JSON forms (the
// contract's and eraft's capitalised one) reach the store as one op each
// and answer the config it produced; every malformed or refused one is a
// one-line 400 that reaches no store or applies nothing.
func TestOperations(t *testing.T) {
	type step struct {
		path, body string
		status     int
		want       string // the answer's config JSON, or part of the 400's line
	}
	tests := []struct {
		name  string
		steps []step
	}{
		{"join, move, leave", []step{
			{"/config/join", `{"groups":{"1":["http://127.0.0.1:6088"]}}`, 200,
				`{"Version":1,"Buckets":[1,1,1,1],"Groups":{"1":["http://127.0.0.1:6088"]}}`},
			{"/config/join", `{"Groups":{"2":["http://127.0.0.1:7088","http://127.0.0.1:7089"]}}`, 200,
				`{"Version":2,"Buckets":[1,1,2,2],"Groups":{"1":["http://127.0.0.1:6088"],"2":["http://127.0.0.1:7088","http://127.0.0.1:7089"]}}`},
			{"/config/move", `{"Bucket":0,"GID":2}`, 200,
				`{"Version":3,"Buckets":[2,1,2,2],"Groups":{"1":["http://127.0.0.1:6088"],"2":["http://127.0.0.1:7088","http://127.0.0.1:7089"]},"Pinned":[0]}`},
			{"/config/leave", `{"GIDs":[1]}`, 200,
				`{"Version":4,"Buckets":[2,2,2,2],"Groups":{"2":["http://127.0.0.1:7088","http://127.0.0.1:7089"]},"Pinned":[0]}`},
			{"/config/leave", `{"gids":[2]}`, 400, "the config operation is refused: the last group cannot leave"},
			{"/config/leave", `{"gids":[7]}`, 400, "the config operation is refused: group 7 is not in config 4"},
			{"/config/move", `{"bucket":4,"gid":2}`, 400, "the config operation is refused: bucket 4 is not in 0-3"},
		}},
		{"malformed", []step{
			{"/config/join", ``, 400, "the body is empty"},
			{"/config/join", `{}`, 400, "join names no group"},
			{"/config/join", `{"groups":{"0":["http://h:1"]}}`, 400, `group id "0" is not a positive integer`},
			{"/config/join", `{"groups":{"x":["http://h:1"]}}`, 400, `group id "x" is not a positive integer`},
			{"/config/join", `{"groups":{"1":[]}}`, 400, "group 1 lists no servers"},
			{"/config/join", `{"groups":{"1":["h:1"]}}`, 400, `server "h:1" is not an http(s)://host:port URL`},
			{"/config/join", `{"groups":{"1":["http://h:1/kv"]}}`, 400, `server "http://h:1/kv" is not an http(s)://host:port URL`},
			{"/config/join", `{"groups":{"1":["http://u:p@h:1"]}}`, 400, `server "http://u:p@h:1" is not an http(s)://host:port URL`},
			{"/config/join", `{"groups":{"1":["http://h:1"]},"extra":1}`, 400, `unknown field "extra"`},
			{"/config/join", `{"groups":{"1":["http://h:1"]}} {}`, 400, "data after the JSON object"},
			{"/config/join", `[1]`, 400, "not an object"},
			{"/config/leave", `{"gids":[]}`, 400, "leave names no group"},
			{"/config/leave", `{"gids":["1"]}`, 400, "field gids"},
			{"/config/leave", `{"gids":[-1]}`, 400, "field gids"},
			{"/config/move", `{"bucket":1}`, 400, "move needs both bucket and gid"},
			{"/config/move", `{"gid":1}`, 400, "move needs both bucket and gid"},
			{"/config/move", `{"bucket":1,"gid":1}`, 400, "the config operation is refused: group 1 is not in config 0"},
			{"/config/move", `{"bucket":"1","gid":1}`, 400, "field bucket"},
			{"/config/swap", `{}`, 404, `no such config operation "swap"`},
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			store := newMemStore(t, 4)
			h := serve(t, store, nil)
			for _, s := range tc.steps {
				rec := do(h, "POST", s.path, s.body, nil)
				got := rec.Body.String()
				if rec.Code != s.status {
					t.Fatalf("POST %s %s: %d %q, want %d", s.path, s.body, rec.Code, got, s.status)
				}
				if strings.Count(got, "\n") != 1 || !strings.HasSuffix(got, "\n") {
					t.Errorf("POST %s %s: answer %q is not one line", s.path, s.body, got)
				}
				if s.status == 200 {
					if strings.TrimSpace(got) != s.want {
						t.Errorf("POST %s %s:\n got %s\nwant %s", s.path, s.body, got, s.want)
					}
					if v := rec.Header().Get(httpapi.HeaderConfigVersion); !strings.Contains(s.want, `"Version":`+v+",") {
						t.Errorf("X-Config-Version %q does not match %s", v, s.want)
					}
				} else if !strings.Contains(got, s.want) {
					t.Errorf("POST %s %s: %q does not say %q", s.path, s.body, got, s.want)
				}
			}
			// The malformed steps never reached the store.
			if tc.name == "malformed" && len(store.ops) != 1 {
				t.Errorf("%d ops reached the store, want the 1 shardmap refused", len(store.ops))
			}
		})
	}
}

// TestOperationExactlyOnce: a repeated (X-Client-ID, X-Client-Seq) gets
// the first answer and applies nothing more; a malformed pair is a 400
// that reaches no store.
func TestOperationExactlyOnce(t *testing.T) {
	store := newMemStore(t, 4)
	h := serve(t, store, nil)
	ids := map[string]string{httpapi.HeaderClientID: "admin-1", httpapi.HeaderClientSeq: "7"}
	first := do(h, "POST", "/config/join", `{"groups":{"1":["http://h:1"]}}`, ids)
	again := do(h, "POST", "/config/join", `{"groups":{"1":["http://h:1"]}}`, ids)
	if first.Code != 200 || again.Code != 200 || first.Body.String() != again.Body.String() {
		t.Fatalf("first %d %q, repeat %d %q", first.Code, first.Body, again.Code, again.Body)
	}
	if v := store.ConfigHistory().Latest().Version; v != 1 {
		t.Errorf("latest version %d after a repeated join, want 1", v)
	}
	if wo := store.seen; len(wo) != 1 {
		t.Errorf("dedup table %v", wo)
	}
	bad := do(h, "POST", "/config/join", `{"groups":{"1":["http://h:1"]}}`, map[string]string{httpapi.HeaderClientID: "a b", httpapi.HeaderClientSeq: "1"})
	if bad.Code != 400 || len(store.ops) != 2 {
		t.Errorf("malformed id: %d %q, %d ops reached the store", bad.Code, bad.Body, len(store.ops))
	}
}

// TestQuery: GET /config by version, the latest for -1 and past it,
// stale and linearizable levels, and refusals of malformed parameters.
func TestQuery(t *testing.T) {
	store := newMemStore(t, 2)
	for gid := uint64(1); gid <= 3; gid++ {
		if _, err := store.ConfigOp(context.Background(), Op{Join: map[uint64][]string{gid: {fmt.Sprintf("http://h:%d", gid)}}}, httpapi.WriteOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	h := serve(t, store, nil)
	tests := []struct {
		target  string
		status  int
		version uint64
		stale   bool
		msg     string
	}{
		{"/config", 200, 3, false, ""},
		{"/config?version=-1", 200, 3, false, ""},
		{"/config?version=0", 200, 0, false, ""},
		{"/config?version=2&level=stale", 200, 2, true, ""},
		{"/config?version=9", 200, 3, false, ""},
		{"/config?version=1&wait=5s", 200, 1, false, ""},
		{"/config?wait=1", 200, 3, false, ""},
		{"/config?version=-2", 400, 0, false, "version must be -1 (the latest) or a config version"},
		{"/config?version=x", 400, 0, false, `got "x"`},
		{"/config?version=1&version=2", 400, 0, false, "version given more than once"},
		{"/config?version=1&wait=soon", 400, 0, false, "wait must be a duration"},
		{"/config?version=1&wait=-1s", 400, 0, false, "wait must not be negative"},
		{"/config?version=1&wait=-3", 400, 0, false, "wait must not be negative"},
		{"/config?level=bogus", 400, 0, false, "level must be one of"},
		{"/config?%zz", 400, 0, false, "not valid URL encoding"},
	}
	for _, tc := range tests {
		n := len(store.queries)
		rec := do(h, "GET", tc.target, "", nil)
		if rec.Code != tc.status {
			t.Errorf("GET %s: %d %q, want %d", tc.target, rec.Code, rec.Body, tc.status)
			continue
		}
		if tc.status != 200 {
			if !strings.Contains(rec.Body.String(), tc.msg) {
				t.Errorf("GET %s: %q does not say %q", tc.target, rec.Body, tc.msg)
			}
			if len(store.queries) != n {
				t.Errorf("GET %s: a refused query reached the store", tc.target)
			}
			continue
		}
		var c shardmap.Config
		if err := json.Unmarshal(rec.Body.Bytes(), &c); err != nil || c.Version != tc.version || c.Validate() != nil {
			t.Errorf("GET %s: config %+v (%v), want version %d", tc.target, c, err, tc.version)
		}
		if got := store.queries[len(store.queries)-1]; got.Stale != tc.stale {
			t.Errorf("GET %s: read options %+v, want stale %v", tc.target, got, tc.stale)
		}
	}
	if rec := do(h, "HEAD", "/config", "", nil); rec.Code != 200 || rec.Body.Len() != 0 {
		t.Errorf("HEAD /config: %d %q", rec.Code, rec.Body)
	}
	if rec := do(h, "PUT", "/config", "", nil); rec.Code != 405 || rec.Header().Get("Allow") != "GET, HEAD" {
		t.Errorf("PUT /config: %d, Allow %q", rec.Code, rec.Header().Get("Allow"))
	}
	if rec := do(h, "GET", "/config/join", "", nil); rec.Code != 405 || rec.Header().Get("Allow") != "POST" {
		t.Errorf("GET /config/join: %d, Allow %q", rec.Code, rec.Header().Get("Allow"))
	}
	if rec := do(h, "GET", "/some-key", "", nil); rec.Code != 400 || !strings.Contains(rec.Body.String(), "serve no keys") {
		t.Errorf("GET /some-key: %d %q", rec.Code, rec.Body)
	}
}

// TestQueryWait: a long poll for a version that does not exist yet
// returns once it is applied; one that times out returns the latest; one
// whose client goes away returns at once.
func TestQueryWait(t *testing.T) {
	store := newMemStore(t, 2)
	h := serve(t, store, nil)
	done := make(chan *httptest.ResponseRecorder, 1)
	go func() { done <- do(h, "GET", "/config?version=1&wait=10s", "", nil) }()
	// The poll is waiting: nothing answers before the join.
	select {
	case rec := <-done:
		t.Fatalf("long poll answered before version 1 existed: %d %q", rec.Code, rec.Body)
	case <-time.After(50 * time.Millisecond):
	}
	if _, err := store.ConfigOp(context.Background(), Op{Join: map[uint64][]string{1: {"http://h:1"}}}, httpapi.WriteOptions{}); err != nil {
		t.Fatal(err)
	}
	select {
	case rec := <-done:
		if rec.Code != 200 || rec.Header().Get(httpapi.HeaderConfigVersion) != "1" {
			t.Fatalf("long poll: %d %q", rec.Code, rec.Body)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("long poll did not return once version 1 was applied")
	}

	// Cut to MaxWait (100ms here): the latest, version 1, once it passes.
	h = serve(t, store, func(c *Config) { c.MaxWait = 100 * time.Millisecond })
	rec := do(h, "GET", "/config?version=5&wait=1h", "", nil)
	if rec.Code != 200 || rec.Header().Get(httpapi.HeaderConfigVersion) != "1" {
		t.Fatalf("timed-out long poll: %d %q", rec.Code, rec.Body)
	}

	// A client that goes away ends its poll.
	ctx, cancel := context.WithCancel(context.Background())
	req := httptest.NewRequest("GET", "/config?version=5&wait=1h", nil).WithContext(ctx)
	cancel()
	rec = httptest.NewRecorder()
	serve(t, store, func(c *Config) { c.MaxWait = time.Hour }).ServeHTTP(rec, req)
	if rec.Code != 503 || !strings.Contains(rec.Body.String(), "canceled") {
		t.Errorf("canceled long poll: %d %q", rec.Code, rec.Body)
	}
}

// TestStoreErrors: the store's errors are answered through httpapi's
// table: a timeout of an operation is 504 outcome unknown.
func TestStoreErrors(t *testing.T) {
	store := newMemStore(t, 2)
	store.fail = context.DeadlineExceeded
	h := serve(t, store, nil)
	rec := do(h, "POST", "/config/join", `{"groups":{"1":["http://h:1"]}}`, map[string]string{"Accept": "application/json"})
	if rec.Code != 504 || !strings.Contains(rec.Body.String(), `"code":"outcome_unknown"`) {
		t.Errorf("join on a timing-out store: %d %q", rec.Code, rec.Body)
	}
	store.fail = errors.New("kvstore: disk on fire")
	if rec := do(h, "GET", "/config", "", nil); rec.Code != 500 || strings.Contains(rec.Body.String(), "disk") {
		t.Errorf("query on a failing store: %d %q", rec.Code, rec.Body)
	}
}

// TestStatusOf: the config section counts each group's buckets.
func TestStatusOf(t *testing.T) {
	c, _ := shardmap.Initial(5)
	c, _ = c.Join(map[uint64][]string{1: {"http://a:1"}, 2: {"http://b:1"}})
	c, _ = c.Join(map[uint64][]string{3: {"http://c:1"}})
	st := StatusOf(c)
	b, _ := json.Marshal(st)
	if want := `{"version":2,"buckets":5,"groups":{"1":2,"2":2,"3":1}}`; string(b) != want {
		t.Errorf("status %s, want %s", b, want)
	}
}
