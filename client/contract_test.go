package client

// In-test servers that follow the sharding contract's sections "Config group
// HTTP API" and "Shard member HTTP API", for the paths of the Client that
// no real raftkv process serves yet (config-group and shard-group members
// are being built against the same contract). Single-group paths are tested
// against real processes in cluster_test.go.

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/raftkv/raftkv/shardmap"
)

// configGroup follows "Config group HTTP API": GET /config[?version=N],
// POST /config/join|leave|move, each op applied with shardmap's functions.
type configGroup struct {
	srv  *httptest.Server
	gets atomic.Int64
	// beforeGet, if set, runs before each GET /config is answered.
	beforeGet func()

	mu   sync.Mutex
	hist shardmap.History
}

func newConfigGroup(t *testing.T, buckets int) *configGroup {
	t.Helper()
	h, err := shardmap.NewHistory(buckets)
	if err != nil {
		t.Fatal(err)
	}
	g := &configGroup{hist: h}
	g.srv = httptest.NewServer(http.HandlerFunc(g.serve))
	t.Cleanup(g.srv.Close)
	return g
}

func (g *configGroup) latest() shardmap.Config {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.hist.Latest().Clone()
}

// apply appends op(latest) to the history, as the config group's state
// machine does for one entry.
func (g *configGroup) apply(op func(shardmap.Config) (shardmap.Config, error)) (shardmap.Config, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	next, err := op(g.hist.Latest())
	if err != nil {
		return shardmap.Config{}, err
	}
	if err := g.hist.Append(next); err != nil {
		return shardmap.Config{}, err
	}
	return next.Clone(), nil
}

func (g *configGroup) mustApply(t *testing.T, op func(shardmap.Config) (shardmap.Config, error)) shardmap.Config {
	t.Helper()
	cfg, err := g.apply(op)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func (g *configGroup) serve(w http.ResponseWriter, r *http.Request) {
	var (
		cfg shardmap.Config
		err error
	)
	switch {
	case r.Method == http.MethodGet && r.URL.Path == "/config":
		g.gets.Add(1)
		if g.beforeGet != nil {
			g.beforeGet()
		}
		v := int64(-1)
		if s := r.URL.Query().Get("version"); s != "" {
			if v, err = strconv.ParseInt(s, 10, 64); err != nil {
				jsonError(w, http.StatusBadRequest, map[string]any{"error": "bad version", "code": "bad_request"})
				return
			}
		}
		g.mu.Lock()
		cfg = g.hist.Query(v).Clone()
		g.mu.Unlock()
	case r.Method == http.MethodPost && r.URL.Path == "/config/join":
		var body struct {
			Groups map[uint64][]string `json:"groups"`
		}
		if err = json.NewDecoder(r.Body).Decode(&body); err == nil {
			cfg, err = g.apply(func(c shardmap.Config) (shardmap.Config, error) { return c.Join(body.Groups) })
		}
	case r.Method == http.MethodPost && r.URL.Path == "/config/leave":
		var body struct {
			GIDs []uint64 `json:"gids"`
		}
		if err = json.NewDecoder(r.Body).Decode(&body); err == nil {
			cfg, err = g.apply(func(c shardmap.Config) (shardmap.Config, error) { return c.Leave(body.GIDs) })
		}
	case r.Method == http.MethodPost && r.URL.Path == "/config/move":
		var body struct {
			Bucket int    `json:"bucket"`
			GID    uint64 `json:"gid"`
		}
		if err = json.NewDecoder(r.Body).Decode(&body); err == nil {
			cfg, err = g.apply(func(c shardmap.Config) (shardmap.Config, error) { return c.Move(body.Bucket, body.GID) })
		}
	default:
		http.NotFound(w, r)
		return
	}
	if err != nil {
		jsonError(w, http.StatusBadRequest, map[string]any{"error": err.Error(), "code": "bad_request"})
		return
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(cfg)
}

func jsonError(w http.ResponseWriter, status int, body map[string]any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(body)
}

// attempt is one request a shardGroup saw.
type attempt struct {
	method, path, route, id, seq string
}

// shardGroup follows "Shard member HTTP API" for one group of one member:
// the key paths, the bucket check (421 with X-Config-Version and the JSON
// body to routing clients, 307 to others) and exactly-once by (X-Client-ID,
// X-Client-Seq), with its config set by the test (the real members apply
// configs through their log; when is not what these tests are about).
type shardGroup struct {
	gid uint64
	srv *httptest.Server
	// override, if set, may answer a request itself (return true).
	override func(w http.ResponseWriter, r *http.Request) bool

	mu struct {
		sync.Mutex
		cfg      shardmap.Config
		data     map[string]string
		index    uint64
		applied  map[string]uint64 // "id/seq" -> index of its first application
		attempts []attempt
	}
	misdirected atomic.Int64
}

func newShardGroup(t *testing.T, gid uint64) *shardGroup {
	t.Helper()
	s := &shardGroup{gid: gid}
	s.mu.data, s.mu.applied = map[string]string{}, map[string]uint64{}
	s.srv = httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(s.srv.Close)
	return s
}

func (s *shardGroup) setConfig(cfg shardmap.Config) {
	s.mu.Lock()
	s.mu.cfg = cfg.Clone()
	s.mu.Unlock()
}

func (s *shardGroup) attempts() []attempt {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]attempt(nil), s.mu.attempts...)
}

func (s *shardGroup) value(key string) (string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.mu.data[key]
	return v, ok
}

func (s *shardGroup) serve(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.mu.attempts = append(s.mu.attempts, attempt{r.Method, r.URL.RequestURI(), r.Header.Get(HeaderRoute),
		r.Header.Get(HeaderClientID), r.Header.Get(HeaderClientSeq)})
	s.mu.Unlock()
	if s.override != nil && s.override(w, r) {
		return
	}
	var keys []string
	var kvs map[string]string
	switch p := r.URL.Path; {
	case p == "/key" && r.Method == http.MethodPost:
		b, _ := io.ReadAll(r.Body)
		if err := json.Unmarshal(b, &kvs); err != nil || len(kvs) == 0 {
			jsonError(w, http.StatusBadRequest, map[string]any{"error": "bad body", "code": "bad_request"})
			return
		}
		for k := range kvs {
			keys = append(keys, k)
		}
	case strings.HasPrefix(p, "/key/"):
		keys = []string{p[len("/key/"):]}
	default:
		keys = []string{p[1:]}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	cfg := s.mu.cfg
	for _, k := range keys {
		b := shardmap.BucketOf(k, len(cfg.Buckets))
		if owner := cfg.Owner(b); owner != s.gid {
			s.misdirected.Add(1)
			if r.Header.Get(HeaderRoute) != "client" {
				w.Header().Set("Location", cfg.Groups[owner][0]+r.URL.RequestURI())
				w.WriteHeader(http.StatusTemporaryRedirect)
				return
			}
			w.Header().Set(HeaderConfigVersion, strconv.FormatUint(cfg.Version, 10))
			body := map[string]any{"error": fmt.Sprintf("bucket %d is not served by group %d", b, s.gid),
				"code": "wrong_group", "version": cfg.Version, "bucket": b}
			if owner != 0 {
				body["owner"], body["servers"] = owner, cfg.Groups[owner]
			}
			jsonError(w, http.StatusMisdirectedRequest, body)
			return
		}
	}
	if r.Method == http.MethodGet {
		v, ok := s.mu.data[keys[0]]
		if !ok {
			jsonError(w, http.StatusNotFound, map[string]any{"error": "key not found", "code": "key_not_found"})
			return
		}
		if strings.HasPrefix(r.URL.Path, "/key/") {
			json.NewEncoder(w).Encode(map[string]string{keys[0]: v})
			return
		}
		io.WriteString(w, v)
		return
	}
	dedup := r.Header.Get(HeaderClientID) + "/" + r.Header.Get(HeaderClientSeq)
	if index, ok := s.mu.applied[dedup]; ok {
		w.Header().Set(HeaderRaftIndex, strconv.FormatUint(index, 10))
		w.WriteHeader(http.StatusNoContent)
		return
	}
	s.mu.index++
	switch r.Method {
	case http.MethodPut:
		b, _ := io.ReadAll(r.Body)
		s.mu.data[keys[0]] = string(b)
	case http.MethodDelete:
		delete(s.mu.data, keys[0])
	case http.MethodPost:
		for k, v := range kvs {
			s.mu.data[k] = v
		}
	}
	s.mu.applied[dedup] = s.mu.index
	w.Header().Set(HeaderRaftIndex, strconv.FormatUint(s.mu.index, 10))
	w.WriteHeader(http.StatusNoContent)
}
