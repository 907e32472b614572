package bench

// Sharded runs against fakeKV members and a config server that follows the
// sharding contract's "Config group HTTP API" (GET /config, eraft's JSON).

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/raftkv/raftkv/shardmap"
)

// configServer serves the config set last with set.
type configServer struct {
	srv  *httptest.Server
	mu   sync.Mutex
	cfg  shardmap.Config
	gets atomic.Int64
}

func newConfigServer(t *testing.T, cfg shardmap.Config) *configServer {
	s := &configServer{cfg: cfg}
	s.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/config" {
			http.NotFound(w, r)
			return
		}
		s.gets.Add(1)
		s.mu.Lock()
		defer s.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(s.cfg)
	}))
	t.Cleanup(s.srv.Close)
	return s
}

func (s *configServer) set(cfg shardmap.Config) {
	s.mu.Lock()
	s.cfg = cfg
	s.mu.Unlock()
}

// TestShardedRun: each key goes to its bucket's group only, and verify
// reads it back from there.
func TestShardedRun(t *testing.T) {
	g1, g2 := newFakeKV(t), newFakeKV(t)
	cfg, _ := shardmap.Initial(32)
	cfg, err := cfg.Join(map[uint64][]string{1: {g1.url()}, 2: {g2.url()}})
	if err != nil {
		t.Fatal(err)
	}
	cs := newConfigServer(t, cfg)
	res := runFake(t, Config{Mode: ModePut, ConfigEndpoints: []string{cs.srv.URL}, Clients: 4, Keyspace: 200,
		Sequential: true, Total: 400, Verify: true})
	if res.Failed != 0 || !res.Verify.OK() {
		t.Fatalf("failed %d, verify %+v", res.Failed, res.Verify)
	}
	if res.ConfigVersion != 1 || res.Groups != 2 {
		t.Fatalf("routed by version %d over %d groups", res.ConfigVersion, res.Groups)
	}
	// The workers share the 400 requests as they come, so one that starts
	// late writes fewer than all of its 50 keys: verify checks those written.
	written := 0
	for k := range 200 {
		key := Key(uint64(k), DefaultKeySize)
		in, out := g1, g2
		if cfg.OwnerOfKey(key) == 2 {
			in, out = g2, g1
		}
		if _, ok := in.get(key); ok {
			written++
		}
		if _, ok := out.get(key); ok {
			t.Fatalf("%s at the other group", key)
		}
	}
	if written == 0 || res.Verify.Checked != uint64(written) {
		t.Fatalf("verify checked %d keys; the groups hold %d", res.Verify.Checked, written)
	}
	if n := cs.gets.Load(); n != 1 {
		t.Fatalf("%d config fetches, want 1", n)
	}
}

// TestShardedReroute: after group 1 leaves, its member answers 421; the
// run fetches the new config and sends the rest to group 2.
func TestShardedReroute(t *testing.T) {
	g1, g2 := newFakeKV(t), newFakeKV(t)
	v1, _ := shardmap.Initial(8)
	v1, _ = v1.Join(map[uint64][]string{1: {g1.url()}, 2: {g2.url()}})
	v2, err := v1.Leave([]uint64{1})
	if err != nil {
		t.Fatal(err)
	}
	cs := newConfigServer(t, v1)
	var moved atomic.Bool
	g1.fail = func(int64) int {
		if moved.Load() {
			return http.StatusMisdirectedRequest
		}
		return 0
	}
	r, err := New(Config{Mode: ModePut, ConfigEndpoints: []string{cs.srv.URL}, Clients: 2, Keyspace: 100, Total: 2000})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	// Build the v1 table before the config changes.
	if err := r.shard.route(t.Context(), 100, DefaultKeySize, false); err != nil {
		t.Fatal(err)
	}
	cs.set(v2)
	moved.Store(true)
	before := g2.requests.Load()
	res, err := r.Run(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if res.ConfigVersion != 2 || res.Errors["421"] == 0 || len(res.Errors) != 1 || res.Ops+res.Failed != 2000 || res.Ops == 0 {
		t.Fatalf("version %d, %d ok, errors %v; want version 2, 421s and no other error, writes at group 2", res.ConfigVersion, res.Ops, res.Errors)
	}
	if got := g2.requests.Load() - before; got != int64(res.Ops) {
		t.Fatalf("group 2 served %d requests, want the %d successes", got, res.Ops)
	}
}

// TestShardedNoGroup: a config that gives buckets to nobody fails the run
// before any request.
func TestShardedNoGroup(t *testing.T) {
	cfg, _ := shardmap.Initial(8)
	cs := newConfigServer(t, cfg)
	r, err := New(Config{Mode: ModePut, ConfigEndpoints: []string{cs.srv.URL}, Clients: 1, Keyspace: 10, Total: 10})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if _, err := r.Run(t.Context()); !errors.Is(err, ErrRoute) {
		t.Fatalf("Run: %v, want ErrRoute", err)
	}
}

// TestShardedRunViaClient: with ViaClient every request is a call of a
// client.Client, which routes each key to its bucket's group; verify reads
// back through it too, and a read of a key never written is a 404, no error.
func TestShardedRunViaClient(t *testing.T) {
	g1, g2 := newFakeKV(t), newFakeKV(t)
	cfg, _ := shardmap.Initial(32)
	cfg, err := cfg.Join(map[uint64][]string{1: {g1.url()}, 2: {g2.url()}})
	if err != nil {
		t.Fatal(err)
	}
	cs := newConfigServer(t, cfg)
	res := runFake(t, Config{Mode: ModePut, ConfigEndpoints: []string{cs.srv.URL}, ViaClient: true, Clients: 4,
		Keyspace: 200, Sequential: true, Total: 400, Verify: true})
	if res.Failed != 0 || !res.Verify.OK() || res.Verify.Checked == 0 {
		t.Fatalf("failed %d %v, verify %+v", res.Failed, res.ErrorSamples, res.Verify)
	}
	if res.ConfigVersion != 1 || res.Groups != 2 {
		t.Fatalf("routed by version %d over %d groups", res.ConfigVersion, res.Groups)
	}
	for k := range 200 {
		key := Key(uint64(k), DefaultKeySize)
		out := g2
		if cfg.OwnerOfKey(key) == 2 {
			out = g1
		}
		if _, ok := out.get(key); ok {
			t.Fatalf("%s at the other group", key)
		}
	}
	if g1.requests.Load() == 0 || g2.requests.Load() == 0 {
		t.Fatalf("requests: group 1 %d, group 2 %d; want both", g1.requests.Load(), g2.requests.Load())
	}
	res = runFake(t, Config{Mode: ModeGet, ConfigEndpoints: []string{cs.srv.URL}, ViaClient: true, Clients: 2,
		Keyspace: 1000, Total: 200})
	if res.Failed != 0 || res.Ops != 200 {
		t.Fatalf("gets: %d ok, errors %v", res.Ops, res.ErrorSamples)
	}
}
