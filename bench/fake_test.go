package bench

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

// fakeKV is an in-memory stand-in for a raftkv member's client API, with
// hooks to lose writes and fail requests.
type fakeKV struct {
	srv *httptest.Server

	mu struct {
		sync.Mutex
		data    map[string][]byte
		queries map[string]int // raw query of GETs of keys
	}
	requests  atomic.Int64
	newConns  atomic.Int64
	active    atomic.Int64
	maxActive atomic.Int64

	// lose, if set, acknowledges a PUT of key without storing it.
	lose func(key string) bool
	// fail, if set, returns a status to answer request n (1-based) with
	// instead of serving it, or 0.
	fail func(n int64) int
	// applied, if set, returns a status to answer PUT request n with after
	// applying it, or 0 for the usual 204.
	applied func(n int64) int
}

func newFakeKV(t *testing.T) *fakeKV {
	f := &fakeKV{}
	f.mu.data = make(map[string][]byte)
	f.mu.queries = make(map[string]int)
	f.srv = httptest.NewUnstartedServer(http.HandlerFunc(f.serve))
	f.srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		switch s {
		case http.StateNew:
			f.newConns.Add(1)
		case http.StateActive:
			n := f.active.Add(1)
			for m := f.maxActive.Load(); n > m && !f.maxActive.CompareAndSwap(m, n); m = f.maxActive.Load() {
			}
		case http.StateIdle, http.StateHijacked:
			f.active.Add(-1)
		}
	}
	f.srv.Start()
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeKV) url() string { return f.srv.URL }

func (f *fakeKV) get(key string) ([]byte, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	v, ok := f.mu.data[key]
	return v, ok
}

func (f *fakeKV) serve(w http.ResponseWriter, r *http.Request) {
	n := f.requests.Add(1)
	if r.URL.Path == "/status" {
		// Members out of order, two sharing a URL: Discover sorts and dedupes.
		fmt.Fprintf(w, `{"id":1,"leader":1,"members":[{"id":3,"peerURLs":["http://p3"],"clientURLs":["%[1]s/"]},`+
			`{"id":1,"peerURLs":["http://p1"],"clientURLs":["http://127.0.0.1:1"]},{"id":2,"peerURLs":["http://p2"],"clientURLs":["%[1]s"]}]}`, f.url())
		return
	}
	if f.fail != nil {
		if code := f.fail(n); code != 0 {
			http.Error(w, "fake failure", code)
			return
		}
	}
	key, isKey := strings.CutPrefix(r.URL.Path, "/key/")
	if !isKey {
		key = strings.TrimPrefix(r.URL.Path, "/")
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	switch r.Method {
	case http.MethodPut:
		v, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		if f.lose == nil || !f.lose(key) {
			f.mu.data[key] = v
		}
		if f.applied != nil {
			if code := f.applied(n); code != 0 {
				http.Error(w, "fake failure", code)
				return
			}
		}
		w.WriteHeader(http.StatusNoContent)
	case http.MethodGet:
		f.mu.queries[r.URL.RawQuery]++
		v, ok := f.mu.data[key]
		if !ok {
			http.Error(w, "key not found", http.StatusNotFound)
			return
		}
		w.Write(v)
	case http.MethodDelete:
		if !isKey {
			http.Error(w, "use DELETE /key/<key>", http.StatusBadRequest)
			return
		}
		delete(f.mu.data, key)
		w.WriteHeader(http.StatusNoContent)
	default:
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
	}
}

// decodeJSON decodes the one JSON line of b.
func decodeJSON(t *testing.T, b []byte) map[string]any {
	t.Helper()
	if n := strings.Count(string(b), "\n"); n != 1 || b[len(b)-1] != '\n' {
		t.Fatalf("want exactly one line, got %d newlines: %q", n, b)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("not JSON: %v: %q", err, b)
	}
	return m
}
