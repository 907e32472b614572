package client

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/raftkv/raftkv/internal/testutil"
	"github.com/raftkv/raftkv/shardmap"
	"go.uber.org/zap/zaptest"
)

// newTestClient is New with short backoffs and the test's logger.
func newTestClient(t *testing.T, cfg Config) *Client {
	t.Helper()
	if cfg.Backoff == 0 {
		cfg.Backoff, cfg.MaxBackoff = time.Millisecond, 20*time.Millisecond
	}
	if cfg.RequestTimeout == 0 {
		cfg.RequestTimeout = 5 * time.Second
	}
	cfg.Logger = zaptest.NewLogger(t)
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

// closedURL returns the URL of a port nothing listens on.
func closedURL(t *testing.T) string {
	t.Helper()
	return fmt.Sprintf("http://127.0.0.1:%d", testutil.FreePorts(t, 1)[0])
}

func TestConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  Config
		ok   bool
	}{
		{"endpoints", Config{Endpoints: []string{"http://127.0.0.1:1"}}, true},
		{"config endpoints without scheme", Config{ConfigEndpoints: []string{"127.0.0.1:1"}}, true},
		{"none", Config{}, false},
		{"both", Config{Endpoints: []string{"http://a:1"}, ConfigEndpoints: []string{"http://b:1"}}, false},
		{"path", Config{Endpoints: []string{"http://a:1/x"}}, false},
		{"scheme", Config{Endpoints: []string{"ftp://a:1"}}, false},
		{"client id", Config{Endpoints: []string{"http://a:1"}, ClientID: "a b"}, false},
		{"client id too long", Config{Endpoints: []string{"http://a:1"}, ClientID: strings.Repeat("x", 65)}, false},
		{"client id ok", Config{Endpoints: []string{"http://a:1"}, ClientID: "router-1.A_b"}, true},
		{"negative timeout", Config{Endpoints: []string{"http://a:1"}, RequestTimeout: -1}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.cfg.Validate()
			if (err == nil) != tc.ok || (err != nil && !errors.Is(err, ErrInvalidConfig)) {
				t.Fatalf("Validate() = %v, want ok=%v", err, tc.ok)
			}
		})
	}
}

func TestDefaultClientID(t *testing.T) {
	a := newTestClient(t, Config{Endpoints: []string{"http://127.0.0.1:1"}})
	b := newTestClient(t, Config{Endpoints: []string{"http://127.0.0.1:1"}})
	if len(a.ClientID()) != 16 || !ValidClientID(a.ClientID()) || a.ClientID() == b.ClientID() {
		t.Fatalf("client ids %q and %q: want two distinct 16 hex digits", a.ClientID(), b.ClientID())
	}
}

// TestErrorMapping: an answer's status and body decide which sentinels the
// error is (errors.Is), and the server's message is kept.
func TestErrorMapping(t *testing.T) {
	type want struct{ notFound, bad, conflict, unavail, noLeader, tooMany, timeout, unknown, wrong bool }
	for _, tc := range []struct {
		name        string
		method      string
		status      int
		contentType string
		body        string
		want        want
		message     string
	}{
		{"404 text", "GET", 404, "text/plain", "kvstore: key not found\n", want{notFound: true}, "kvstore: key not found"},
		{"404 json", "GET", 404, "application/json", `{"error":"no such key","code":"key_not_found"}`, want{notFound: true}, "no such key"},
		{"400 text", "PUT", 400, "text/plain; charset=utf-8", "httpapi: empty key\n", want{bad: true}, "httpapi: empty key"},
		{"400 json", "PUT", 400, "application/json", `{"error":"bad level","code":"bad_request"}`, want{bad: true}, "bad level"},
		{"413", "PUT", 413, "text/plain", "too large\n", want{bad: true}, "too large"},
		{"409", "PUT", 409, "application/json", `{"error":"busy","code":"conflict"}`, want{conflict: true}, "busy"},
		{"seq too old", "PUT", 504, "application/json", `{"error":"seq 3 is older than the window","code":"seq_too_old"}`, want{unknown: true}, "seq 3 is older than the window"},
		{"cluster level", "PUT", 503, "application/json", `{"error":"TTLs need cluster level 1","code":"cluster_level"}`, want{unavail: true}, "TTLs need cluster level 1"},
		{"500 read", "GET", 500, "text/plain", "boom\n", want{}, "boom"},
		{"500 write", "PUT", 500, "text/plain", "boom\n", want{unknown: true}, "boom"},
		{"json without error field", "GET", 400, "application/json", `{"health":"false"}`, want{bad: true}, `{"health":"false"}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", tc.contentType)
				w.WriteHeader(tc.status)
				io.WriteString(w, tc.body)
			}))
			defer srv.Close()
			c := newTestClient(t, Config{Endpoints: []string{srv.URL}})
			var err error
			if tc.method == "GET" {
				_, err = c.Get(context.Background(), "k")
			} else {
				_, err = c.Put(context.Background(), "k", []byte("v"))
			}
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("err = %v, want *Error", err)
			}
			if e.Tries != 1 {
				t.Errorf("Tries %d; want 1, no retry", e.Tries)
			}
			if e.Message != tc.message || e.Status != tc.status || string(e.Body) != tc.body {
				t.Errorf("Message %q Status %d Body %q; want %q %d %q", e.Message, e.Status, e.Body, tc.message, tc.status, tc.body)
			}
			got := want{errors.Is(err, ErrNotFound), errors.Is(err, ErrBadRequest), errors.Is(err, ErrConflict),
				errors.Is(err, ErrUnavailable), errors.Is(err, ErrNoLeader), errors.Is(err, ErrTooManyRequests),
				errors.Is(err, ErrTimeout), errors.Is(err, ErrOutcomeUnknown), errors.Is(err, ErrWrongGroup)}
			if got != tc.want {
				t.Errorf("errors.Is: got %+v, want %+v (err %v)", got, tc.want, err)
			}
		})
	}
}

// scripted answers each request with the next of its statuses (the last
// one over and over), recording the writes' client ids and seqs.
type scripted struct {
	srv *httptest.Server
	mu  sync.Mutex
	n   int
	ids []string
}

func newScripted(t *testing.T, statuses []int, body func(status int) (string, string)) *scripted {
	s := &scripted{}
	s.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		i := min(s.n, len(statuses)-1)
		s.n++
		s.ids = append(s.ids, r.Header.Get(HeaderClientID)+"/"+r.Header.Get(HeaderClientSeq))
		s.mu.Unlock()
		st := statuses[i]
		if st == http.StatusNoContent {
			w.Header().Set(HeaderRaftIndex, "7")
		}
		if body != nil {
			ct, b := body(st)
			w.Header().Set("Content-Type", ct)
			w.WriteHeader(st)
			io.WriteString(w, b)
			return
		}
		w.WriteHeader(st)
	}))
	t.Cleanup(s.srv.Close)
	return s
}

func (s *scripted) requests() (int, []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.n, append([]string(nil), s.ids...)
}

// TestRotateOn503: a 503 moves the call, and the calls after it, to the
// next member; the write's retry carries the same id and seq.
func TestRotateOn503(t *testing.T) {
	down := newScripted(t, []int{503}, func(int) (string, string) {
		return "application/json", `{"error":"no leader","code":"no_leader"}`
	})
	up := newScripted(t, []int{204}, nil)
	c := newTestClient(t, Config{Endpoints: []string{down.srv.URL, up.srv.URL}, ClientID: "c1"})
	ctx := context.Background()
	for i := range 3 {
		index, err := c.Put(ctx, fmt.Sprintf("k%d", i), []byte("v"))
		if err != nil || index != 7 {
			t.Fatalf("Put %d = %d, %v; want 7, nil", i, index, err)
		}
	}
	nDown, idsDown := down.requests()
	nUp, idsUp := up.requests()
	if nDown != 1 || nUp != 3 {
		t.Fatalf("requests: %d to the 503 member, %d to the other; want 1 and 3 (a failed member is skipped by later calls)", nDown, nUp)
	}
	first := idSeq(t, idsDown[0], "c1")
	if idSeq(t, idsUp[0], "c1") != first || idSeq(t, idsUp[1], "c1") != first+1 || idSeq(t, idsUp[2], "c1") != first+2 {
		t.Fatalf("client id/seq: %v then %v; want c1/n retried as c1/n, then c1/n+1, c1/n+2", idsDown, idsUp)
	}
}

// TestClusterLevelAsksEachOnce: a 503 cluster_level moves the call to
// the next member (one that restarted may not have its level yet), and
// ends it once every member answered so.
func TestClusterLevelAsksEachOnce(t *testing.T) {
	level := func(int) (string, string) {
		return "application/json", `{"error":"TTLs need cluster level 1","code":"cluster_level"}`
	}
	behind := newScripted(t, []int{503}, level)
	up := newScripted(t, []int{204}, nil)
	c := newTestClient(t, Config{Endpoints: []string{behind.srv.URL, up.srv.URL}})
	if _, err := c.Put(context.Background(), "k", []byte("v"), WithTTL(time.Minute)); err != nil {
		t.Fatalf("Put with a member behind: %v", err)
	}
	err := askedEachOnce(t, level, WithTTL(time.Minute))
	var e *Error
	if !errors.As(err, &e) || e.Code != CodeClusterLevel || !errors.Is(err, ErrUnavailable) || errors.Is(err, ErrOutcomeUnknown) {
		t.Fatalf("Put with every member below the level: %v (%+v); want cluster_level", err, e)
	}
}

// TestNoSpaceAsksEachOnce: a write refused for the space quota (503,
// no_space) is asked of each endpoint once, and then fails as ErrNoSpace,
// certainly not applied.
func TestNoSpaceAsksEachOnce(t *testing.T) {
	err := askedEachOnce(t, func(int) (string, string) {
		return "application/json", `{"error":"the keys on this member take 2.0 GiB of its 2.0 GiB space quota","code":"no_space"}`
	})
	var e *Error
	if !errors.As(err, &e) || e.Code != CodeNoSpace || !errors.Is(err, ErrNoSpace) || errors.Is(err, ErrUnavailable) || errors.Is(err, ErrOutcomeUnknown) {
		t.Fatalf("Put with every member over its quota: %v (%+v); want no_space", err, e)
	}
}

// askedEachOnce puts a key with opts to three members that all answer 503
// with body, checks that each was asked once and the call did not wait
// for its deadline, and returns the call's error.
func askedEachOnce(t *testing.T, body func(int) (string, string), opts ...WriteOption) error {
	t.Helper()
	all := []*scripted{newScripted(t, []int{503}, body), newScripted(t, []int{503}, body), newScripted(t, []int{503}, body)}
	c := newTestClient(t, Config{Endpoints: []string{all[0].srv.URL, all[1].srv.URL, all[2].srv.URL}, RequestTimeout: time.Minute})
	start := time.Now()
	_, err := c.Put(context.Background(), "k", []byte("v"), opts...)
	var e *Error
	if !errors.As(err, &e) || e.Tries != 3 {
		t.Fatalf("Put refused by every member: %v (%+v); want an *Error after 3 tries", err, e)
	}
	for i, s := range all {
		if n, _ := s.requests(); n != 1 {
			t.Errorf("member %d asked %d times, want once", i, n)
		}
	}
	if d := time.Since(start); d > 20*time.Second {
		t.Errorf("the call took %v: it waited for its deadline", d)
	}
	return err
}

// TestRotateOnDialError: a member that refuses connections is skipped.
func TestRotateOnDialError(t *testing.T) {
	up := newScripted(t, []int{200}, func(int) (string, string) { return "application/octet-stream", "v" })
	c := newTestClient(t, Config{Endpoints: []string{closedURL(t), up.srv.URL}})
	v, err := c.Get(context.Background(), "k")
	if err != nil || string(v) != "v" {
		t.Fatalf("Get = %q, %v", v, err)
	}
}

// TestWriteUnavailable: a write refused by every try (503, refused
// connections) is ErrUnavailable and not of unknown outcome.
func TestWriteUnavailable(t *testing.T) {
	down := newScripted(t, []int{503}, func(int) (string, string) {
		return "application/json", `{"error":"no leader","code":"no_leader"}`
	})
	// Every try must be refused: one that the call's deadline cut after
	// it reached the member would rightly make the outcome unknown.
	hc := &http.Client{Transport: uncut{http.DefaultTransport}}
	c := newTestClient(t, Config{Endpoints: []string{down.srv.URL, closedURL(t)}, RequestTimeout: 300 * time.Millisecond, HTTPClient: hc})
	_, err := c.Put(context.Background(), "k", []byte("v"))
	if !errors.Is(err, ErrUnavailable) || errors.Is(err, ErrOutcomeUnknown) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v; want ErrUnavailable, not ErrOutcomeUnknown, with the deadline", err)
	}
	if n, _ := down.requests(); n < 2 {
		t.Fatalf("%d tries on the 503 member; want retries", n)
	}
}

// uncut sends each request to the end, whatever its context: a try is
// answered even when the call's deadline passes meanwhile.
type uncut struct{ http.RoundTripper }

func (u uncut) RoundTrip(r *http.Request) (*http.Response, error) {
	return u.RoundTripper.RoundTrip(r.WithContext(context.WithoutCancel(r.Context())))
}

// TestWriteRetriedAfter504: a 504 is tried again with the same id and seq;
// a write whose retries run out after a 504 is ErrOutcomeUnknown even if
// its last try was a 503.
func TestWriteRetriedAfter504(t *testing.T) {
	s := newScripted(t, []int{504, 204}, nil)
	c := newTestClient(t, Config{Endpoints: []string{s.srv.URL}, ClientID: "w"})
	if _, err := c.Put(context.Background(), "k", []byte("v")); err != nil {
		t.Fatal(err)
	}
	if _, ids := s.requests(); len(ids) != 2 || ids[0] != ids[1] || idSeq(t, ids[0], "w") == 0 {
		t.Fatalf("tries %v; want w/n twice", ids)
	}

	s2 := newScripted(t, []int{504, 503}, nil)
	c2 := newTestClient(t, Config{Endpoints: []string{s2.srv.URL}, RequestTimeout: 200 * time.Millisecond})
	_, err := c2.Put(context.Background(), "k", []byte("v"))
	var e *Error
	if !errors.Is(err, ErrOutcomeUnknown) || errors.Is(err, ErrUnavailable) || !errors.As(err, &e) || e.Status != 503 {
		t.Fatalf("err = %v; want ErrOutcomeUnknown, not ErrUnavailable, last status 503", err)
	}
	// A read after a 504 is only a timeout.
	s3 := newScripted(t, []int{504}, nil)
	c3 := newTestClient(t, Config{Endpoints: []string{s3.srv.URL}, RequestTimeout: 100 * time.Millisecond})
	_, err = c3.Get(context.Background(), "k")
	if !errors.Is(err, ErrTimeout) || errors.Is(err, ErrOutcomeUnknown) {
		t.Fatalf("read err = %v; want ErrTimeout only", err)
	}
}

// TestWriteLostConnection: a write whose connection breaks after the
// request went out is of unknown outcome; a refused dial is not.
func TestWriteLostConnection(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.ReadAll(r.Body)
		conn, _, err := w.(http.Hijacker).Hijack()
		if err == nil {
			conn.Close()
		}
	}))
	defer srv.Close()
	c := newTestClient(t, Config{Endpoints: []string{srv.URL}, RequestTimeout: 200 * time.Millisecond})
	_, err := c.Put(context.Background(), "k", []byte("v"))
	if !errors.Is(err, ErrOutcomeUnknown) || errors.Is(err, ErrUnavailable) {
		t.Fatalf("err = %v; want ErrOutcomeUnknown", err)
	}
	c2 := newTestClient(t, Config{Endpoints: []string{closedURL(t)}, RequestTimeout: 200 * time.Millisecond})
	_, err = c2.Put(context.Background(), "k", []byte("v"))
	if errors.Is(err, ErrOutcomeUnknown) || !errors.Is(err, ErrUnavailable) {
		t.Fatalf("refused: err = %v; want ErrUnavailable", err)
	}
}

// TestNoRedirect: a 3xx is never followed.
func TestNoRedirect(t *testing.T) {
	var elsewhere atomic.Int64
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { elsewhere.Add(1) }))
	defer other.Close()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, other.URL+r.URL.RequestURI(), http.StatusTemporaryRedirect)
	}))
	defer srv.Close()
	c := newTestClient(t, Config{Endpoints: []string{srv.URL}, RequestTimeout: 100 * time.Millisecond})
	_, err := c.Get(context.Background(), "k")
	if !errors.Is(err, ErrWrongGroup) || elsewhere.Load() != 0 {
		t.Fatalf("err = %v, %d requests followed; want ErrWrongGroup, none", err, elsewhere.Load())
	}
}

// TestPaths: the paths and headers of each call.
func TestPaths(t *testing.T) {
	var mu sync.Mutex
	var seen []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		seen = append(seen, fmt.Sprintf("%s %s route=%s accept=%s seq=%s body=%s", r.Method, r.URL.RequestURI(),
			r.Header.Get(HeaderRoute), r.Header.Get("Accept"), r.Header.Get(HeaderClientSeq), b))
		mu.Unlock()
		switch {
		case r.Method == http.MethodGet && strings.HasPrefix(r.URL.Path, "/key/"):
			io.WriteString(w, `{"status":"s"}`)
		case r.Method == http.MethodGet:
			io.WriteString(w, "v")
		default:
			w.Header().Set(HeaderRaftIndex, "3")
			w.WriteHeader(http.StatusNoContent)
		}
	}))
	defer srv.Close()
	c := newTestClient(t, Config{Endpoints: []string{srv.URL}, ClientID: "p"})
	c.seq.Store(0) // a fixed id numbers from the clock; from 1 here, to read
	ctx := context.Background()
	c.Put(ctx, "a/b c", []byte("v"))
	c.Put(ctx, "status", []byte("s"))
	c.Get(ctx, "a/b c")
	if v, err := c.Get(ctx, "status"); err != nil || string(v) != "s" {
		t.Errorf("Get(status) = %q, %v", v, err)
	}
	c.Get(ctx, "k", WithStale())
	c.Get(ctx, "k", WithMinIndex(9))
	c.Get(ctx, "k", WithLinearizable(), WithMinIndex(9))
	c.Delete(ctx, "k")
	c.PutAll(ctx, map[string]string{"x": "1"})
	c.Put(ctx, "k", nil, WithSeq("router.x", 41))
	want := []string{
		"PUT /a%2Fb%20c route=client accept=application/json seq=1 body=v",
		"PUT /key/status route=client accept=application/json seq=2 body=s",
		"GET /a%2Fb%20c route=client accept=application/json seq= body=",
		"GET /key/status route=client accept=application/json seq= body=",
		"GET /k?level=stale route=client accept=application/json seq= body=",
		"GET /k?min_index=9 route=client accept=application/json seq= body=",
		"GET /k?level=consistent&min_index=9 route=client accept=application/json seq= body=",
		"DELETE /key/k route=client accept=application/json seq=3 body=",
		`POST /key route=client accept=application/json seq=4 body={"x":"1"}`,
		"PUT /k route=client accept=application/json seq=41 body=",
	}
	mu.Lock()
	defer mu.Unlock()
	if strings.Join(seen, "\n") != strings.Join(want, "\n") {
		t.Fatalf("requests:\n%s\nwant:\n%s", strings.Join(seen, "\n"), strings.Join(want, "\n"))
	}
}

func TestBadInput(t *testing.T) {
	c := newTestClient(t, Config{Endpoints: []string{closedURL(t)}})
	ctx := context.Background()
	for name, err := range map[string]error{
		"empty key":    func() error { _, err := c.Put(ctx, "", nil); return err }(),
		"empty get":    func() error { _, err := c.Get(ctx, ""); return err }(),
		"no pairs":     func() error { _, err := c.PutAll(ctx, nil); return err }(),
		"key not utf8": func() error { _, err := c.PutAll(ctx, map[string]string{"k\xff": "v"}); return err }(),
		"bad seq":      func() error { _, err := c.Put(ctx, "k", nil, WithSeq("a b", 1)); return err }(),
		"zero seq":     func() error { _, err := c.Put(ctx, "k", nil, WithSeq("ab", 0)); return err }(),
		"admin":        func() error { _, err := c.Join(ctx, map[uint64][]string{1: {"http://x:1"}}); return err }(),
	} {
		want := ErrBadRequest
		if name == "admin" {
			want = ErrNoConfigGroup
		}
		if !errors.Is(err, want) {
			t.Errorf("%s: err = %v, want %v", name, err, want)
		}
	}
}

// shardedSetup starts a config group of n buckets and shard groups 1 and
// 2, joined, with each group's config set to the latest.
func shardedSetup(t *testing.T, buckets int) (*configGroup, *shardGroup, *shardGroup) {
	cg := newConfigGroup(t, buckets)
	g1, g2 := newShardGroup(t, 1), newShardGroup(t, 2)
	cfg := cg.mustApply(t, func(c shardmap.Config) (shardmap.Config, error) {
		return c.Join(map[uint64][]string{1: {g1.srv.URL}, 2: {g2.srv.URL}})
	})
	g1.setConfig(cfg)
	g2.setConfig(cfg)
	return cg, g1, g2
}

// keyOf returns a key whose bucket group gid serves in cfg.
func keyOf(t *testing.T, cfg shardmap.Config, gid uint64, prefix string) string {
	t.Helper()
	for i := range 10000 {
		k := prefix + strconv.Itoa(i)
		if cfg.OwnerOfKey(k) == gid {
			return k
		}
	}
	t.Fatalf("no key of group %d", gid)
	return ""
}

// TestShardedRouting follows "Shard member HTTP API": each key goes to the
// group its bucket belongs to, and no member answers 421.
func TestShardedRouting(t *testing.T) {
	cg, g1, g2 := shardedSetup(t, 16)
	c := newTestClient(t, Config{ConfigEndpoints: []string{cg.srv.URL}})
	ctx := context.Background()
	cfg := cg.latest()
	for i := range 40 {
		k := fmt.Sprintf("key-%d", i)
		if _, err := c.Put(ctx, k, []byte(k)); err != nil {
			t.Fatal(err)
		}
		owner, other := g1, g2
		if cfg.OwnerOfKey(k) == 2 {
			owner, other = g2, g1
		}
		if v, ok := owner.value(k); !ok || v != k {
			t.Fatalf("%s not in its group %d", k, owner.gid)
		}
		if _, ok := other.value(k); ok {
			t.Fatalf("%s in group %d too", k, other.gid)
		}
		if v, err := c.Get(ctx, k); err != nil || string(v) != k {
			t.Fatalf("Get(%s) = %q, %v", k, v, err)
		}
	}
	if n := g1.misdirected.Load() + g2.misdirected.Load(); n != 0 {
		t.Fatalf("%d misdirected requests", n)
	}
	if n := cg.gets.Load(); n != 1 {
		t.Fatalf("%d config fetches; want 1", n)
	}
	rt, err := c.Route(ctx, "key-0")
	if err != nil || rt.Group != cfg.OwnerOfKey("key-0") || rt.Version != cfg.Version || rt.Bucket != shardmap.BucketOf("key-0", 16) {
		t.Fatalf("Route = %+v, %v", rt, err)
	}
}

// TestRefreshOn421 follows "Bucket check": after a Move the old owner
// answers 421 with its newer config version; the Client refreshes and the
// write lands at the new owner, with the same id and seq.
func TestRefreshOn421(t *testing.T) {
	cg, g1, g2 := shardedSetup(t, 8)
	c := newTestClient(t, Config{ConfigEndpoints: []string{cg.srv.URL}, ClientID: "r"})
	c.seq.Store(0) // a fixed id numbers from the clock; from 1 here, to read
	ctx := context.Background()
	k := keyOf(t, cg.latest(), 1, "k")
	if _, err := c.Put(ctx, k, []byte("1")); err != nil {
		t.Fatal(err)
	}
	cfg := cg.mustApply(t, func(c shardmap.Config) (shardmap.Config, error) { return c.Move(shardmap.BucketOf(k, 8), 2) })
	g1.setConfig(cfg)
	g2.setConfig(cfg)
	if _, err := c.Put(ctx, k, []byte("2")); err != nil {
		t.Fatal(err)
	}
	if v, _ := g2.value(k); v != "2" {
		t.Fatalf("group 2 holds %q, want 2", v)
	}
	a1 := g1.attempts()
	last := a1[len(a1)-1]
	a2 := g2.attempts()
	if last.seq != "2" || a2[len(a2)-1].seq != "2" || last.route != "client" {
		t.Fatalf("421 try %+v, retry %+v: want seq 2 in both, routed", last, a2[len(a2)-1])
	}
	if got, _ := c.CachedConfig(); got.Version != cfg.Version {
		t.Fatalf("cached version %d, want %d", got.Version, cfg.Version)
	}
}

// TestSingleFlightRefresh: many calls hit 421 at once and one config fetch
// serves them all.
func TestSingleFlightRefresh(t *testing.T) {
	const callers = 32
	cg, g1, g2 := shardedSetup(t, 8)
	c := newTestClient(t, Config{ConfigEndpoints: []string{cg.srv.URL}})
	ctx := context.Background()
	k := keyOf(t, cg.latest(), 1, "k")
	if _, err := c.Get(ctx, k); !errors.Is(err, ErrNotFound) {
		t.Fatalf("first Get: %v", err)
	}
	cfg := cg.mustApply(t, func(c shardmap.Config) (shardmap.Config, error) { return c.Move(shardmap.BucketOf(k, 8), 2) })
	g1.setConfig(cfg)
	g2.setConfig(cfg)
	// The refresh is answered once every caller has been told 421, so all
	// of them want a refresh while one is in flight.
	base := g1.misdirected.Load()
	cg.beforeGet = func() {
		deadline := time.Now().Add(5 * time.Second)
		for g1.misdirected.Load()-base < callers && time.Now().Before(deadline) {
			time.Sleep(time.Millisecond)
		}
	}
	var wg sync.WaitGroup
	errs := make(chan error, callers)
	for range callers {
		wg.Go(func() {
			if _, err := c.Get(ctx, k); !errors.Is(err, ErrNotFound) {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if got := g1.misdirected.Load() - base; got != callers {
		t.Fatalf("%d calls told 421; want %d", got, callers)
	}
	if n := cg.gets.Load(); n != 2 {
		t.Fatalf("%d config fetches; want 2 (the first, and one refresh for %d callers)", n, callers)
	}
}

// TestLaggingOwner: the Client's config is newer than the new owner's,
// which answers 421 with its older version until it catches up; the
// Client keeps trying (without fetching configs it already has).
func TestLaggingOwner(t *testing.T) {
	cg, g1, g2 := shardedSetup(t, 8)
	old := cg.latest()
	k := keyOf(t, old, 1, "k")
	cfg := cg.mustApply(t, func(c shardmap.Config) (shardmap.Config, error) { return c.Move(shardmap.BucketOf(k, 8), 2) })
	g1.setConfig(cfg) // g2 still at old: refuses k
	c := newTestClient(t, Config{ConfigEndpoints: []string{cg.srv.URL}})
	go func() {
		deadline := time.Now().Add(5 * time.Second)
		for g2.misdirected.Load() < 3 && time.Now().Before(deadline) {
			time.Sleep(time.Millisecond)
		}
		g2.setConfig(cfg)
	}()
	if _, err := c.Put(context.Background(), k, []byte("v")); err != nil {
		t.Fatal(err)
	}
	if v, _ := g2.value(k); v != "v" {
		t.Fatalf("group 2 holds %q", v)
	}
	if n := cg.gets.Load(); n != 1 {
		t.Fatalf("%d config fetches; want 1: a 421 naming an older version needs none", n)
	}
}

// TestNoOwnerUntilJoin: while no group has joined, a call waits (asking
// the config group again) until one does.
func TestNoOwnerUntilJoin(t *testing.T) {
	cg := newConfigGroup(t, 4)
	g1 := newShardGroup(t, 1)
	c := newTestClient(t, Config{ConfigEndpoints: []string{cg.srv.URL}})
	go func() {
		deadline := time.Now().Add(5 * time.Second)
		for cg.gets.Load() < 3 && time.Now().Before(deadline) {
			time.Sleep(time.Millisecond)
		}
		g1.setConfig(cg.mustApply(t, func(c shardmap.Config) (shardmap.Config, error) {
			return c.Join(map[uint64][]string{1: {g1.srv.URL}})
		}))
	}()
	if _, err := c.Put(context.Background(), "k", []byte("v")); err != nil {
		t.Fatal(err)
	}
	// With nobody ever joining, the call ends at its deadline, unavailable.
	cg2 := newConfigGroup(t, 4)
	c2 := newTestClient(t, Config{ConfigEndpoints: []string{cg2.srv.URL}, RequestTimeout: 100 * time.Millisecond})
	_, err := c2.Put(context.Background(), "k", []byte("v"))
	var e *Error
	if !errors.Is(err, ErrUnavailable) || !errors.As(err, &e) || e.Code != CodeNoOwner || errors.Is(err, ErrOutcomeUnknown) {
		t.Fatalf("err = %v; want ErrUnavailable with code no_owner", err)
	}
}

// TestPutAllGroups: a PutAll within one group is one POST /key there; one
// across groups is refused before anything is sent.
func TestPutAllGroups(t *testing.T) {
	cg, g1, g2 := shardedSetup(t, 16)
	c := newTestClient(t, Config{ConfigEndpoints: []string{cg.srv.URL}})
	ctx := context.Background()
	if _, err := c.PutAll(ctx, map[string]string{"{user7}:a": "1", "{user7}:b": "2"}); err != nil {
		t.Fatal(err)
	}
	owner := g1
	if cg.latest().OwnerOfKey("user7") == 2 {
		owner = g2
	}
	if v, _ := owner.value("{user7}:b"); v != "2" {
		t.Fatalf("tagged keys not at group %d", owner.gid)
	}
	cfg := cg.latest()
	a, b := keyOf(t, cfg, 1, "a"), keyOf(t, cfg, 2, "b")
	before := len(g1.attempts()) + len(g2.attempts())
	_, err := c.PutAll(ctx, map[string]string{a: "1", b: "2"})
	if !errors.Is(err, ErrCrossGroup) || !errors.Is(err, ErrBadRequest) {
		t.Fatalf("err = %v, want ErrCrossGroup", err)
	}
	if after := len(g1.attempts()) + len(g2.attempts()); after != before {
		t.Fatalf("%d requests sent for a cross-group PutAll", after-before)
	}
}

// TestAdmin follows "Config group HTTP API": Join, Leave, Move and Query,
// a refused operation's message, and the cache following their answers.
func TestAdmin(t *testing.T) {
	cg := newConfigGroup(t, 6)
	c := newTestClient(t, Config{ConfigEndpoints: []string{cg.srv.URL}})
	ctx := context.Background()
	cfg, err := c.Join(ctx, map[uint64][]string{1: {"http://127.0.0.1:1"}, 2: {"127.0.0.1:2"}})
	if err != nil || cfg.Version != 1 || len(cfg.BucketsOf(1)) != 3 || len(cfg.BucketsOf(2)) != 3 {
		t.Fatalf("Join = %+v, %v", cfg, err)
	}
	if cfg, err = c.Move(ctx, 0, 2); err != nil || cfg.Owner(0) != 2 || cfg.Version != 2 {
		t.Fatalf("Move = %+v, %v", cfg, err)
	}
	if cfg, err = c.Leave(ctx, 1); err != nil || cfg.Version != 3 || len(cfg.BucketsOf(2)) != 6 {
		t.Fatalf("Leave = %+v, %v", cfg, err)
	}
	_, err = c.Leave(ctx, 9)
	var e *Error
	if !errors.Is(err, ErrBadRequest) || !errors.As(err, &e) || !strings.Contains(e.Message, "group 9 is not in config 3") {
		t.Fatalf("Leave(9) = %v; want ErrBadRequest with the reason", err)
	}
	if q, err := c.Query(ctx, -1); err != nil || q.Version != 3 {
		t.Fatalf("Query(-1) = %+v, %v", q, err)
	}
	if got, ok := c.CachedConfig(); !ok || got.Version != 3 {
		t.Fatalf("cached %+v", got)
	}
	if cg.gets.Load() != 1 {
		t.Fatalf("%d GET /config; want 1 (the query of the latest)", cg.gets.Load())
	}
	// The versions the Client saw (the answers of Join, Move and Leave)
	// are answered from memory, even with the config group gone; others
	// are not.
	cg.srv.Close()
	for v, owner0 := range map[int64]uint64{1: 1, 2: 2, 3: 2} {
		if q, err := c.Query(ctx, v); err != nil || q.Version != uint64(v) || q.Owner(0) != owner0 {
			t.Errorf("Query(%d) with the config group gone = version %d, bucket 0 owned by %d, %v; want version %d, owner %d",
				v, q.Version, q.Owner(0), err, v, owner0)
		}
	}
	short, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	defer cancel()
	if q, err := c.Query(short, 0); err == nil {
		t.Errorf("Query(0), never seen, with the config group gone = %+v; want an error", q)
	}
	if q, err := c.Query(short, -1); err == nil {
		t.Errorf("Query(-1) with the config group gone = %+v; want an error", q)
	}
}

// TestRefreshErrorPerCaller: calls that wait on one config fetch that
// fails each get an error of their own, naming their own key. Each call
// fills in its error (its key, op and tries); the flight's error used to
// be handed to every waiter as it was, so the calls wrote it at once (a
// data race, found in the sharded robustness history's router under
// -race) and all but one of them named another call's key.
func TestRefreshErrorPerCaller(t *testing.T) {
	const callers = 8
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(300 * time.Millisecond) // the scenario: every call waits on this one fetch
		w.Write([]byte("not a config"))
	}))
	t.Cleanup(srv.Close)
	c := newTestClient(t, Config{ConfigEndpoints: []string{srv.URL}})
	errs := make([]error, callers)
	var wg sync.WaitGroup
	for i := range callers {
		wg.Go(func() { _, errs[i] = c.Get(context.Background(), fmt.Sprintf("k%d", i)) })
	}
	wg.Wait()
	for i, err := range errs {
		var e *Error
		if !errors.As(err, &e) || e.Code != CodeInternal {
			t.Fatalf("call %d: %v; want the config group's unusable answer", i, err)
		}
		if want := fmt.Sprintf("k%d", i); e.Key != want {
			t.Errorf("call %d: the error names key %q, want %q: %v", i, e.Key, want, err)
		}
	}
}

// idSeq reads the sequence number of "<id>/<seq>", whose id must be id.
func idSeq(t *testing.T, idseq, id string) uint64 {
	t.Helper()
	got, seq, ok := strings.Cut(idseq, "/")
	n, err := strconv.ParseUint(seq, 10, 64)
	if !ok || got != id || err != nil {
		t.Fatalf("client id/seq %q, want %s/<seq>", idseq, id)
	}
	return n
}

// TestFixedClientIDAfterRestart: a Client with a fixed id numbers its
// writes past those of an earlier Client with that id, as a process
// started again would be: the servers keep the earlier writes' results
// by number, and a new write under an old number would get an old answer
// and never apply.
func TestFixedClientIDAfterRestart(t *testing.T) {
	s := newScripted(t, []int{204}, nil)
	before := newTestClient(t, Config{Endpoints: []string{s.srv.URL}, ClientID: "app"})
	for i := range 3 {
		if _, err := before.Put(context.Background(), fmt.Sprint("k", i), []byte("v")); err != nil {
			t.Fatal(err)
		}
	}
	before.Close()
	after := newTestClient(t, Config{Endpoints: []string{s.srv.URL}, ClientID: "app"})
	if _, err := after.Put(context.Background(), "k", []byte("v")); err != nil {
		t.Fatal(err)
	}
	_, ids := s.requests()
	last, next := idSeq(t, ids[2], "app"), idSeq(t, ids[3], "app")
	if next <= last {
		t.Fatalf("the second Client's first write is app/%d, after the first's app/%d: its number was used", next, last)
	}
}

// TestTTLSecondsRoundTrip: a TTL a member writes in seconds (X-TTL, a
// JSON ttl) reads back as the duration it was, 4.1 s as 4.1 s, not
// 4.099999999 s (which a router would pass on as such).
func TestTTLSecondsRoundTrip(t *testing.T) {
	for _, d := range []time.Duration{4100 * time.Millisecond, time.Second, 8760 * time.Hour, 1500 * time.Microsecond, 3*time.Second + 1} {
		s := strconv.FormatFloat(d.Seconds(), 'f', -1, 64)
		h := http.Header{}
		h.Set(HeaderTTL, s)
		if kv, _ := versionsOf("k", h); kv.TTL != d {
			t.Errorf("X-TTL %s read as %v, want %v", s, kv.TTL, d)
		}
		secs := d.Seconds()
		j := kvJSON{}
		j.TTL = &secs
		if kv, err := j.keyValue(); err != nil || kv.TTL != d {
			t.Errorf("JSON ttl %v read as %v (%v), want %v", secs, kv.TTL, err, d)
		}
	}
}

// TestErrorIsOneLine: a call that ran out of time names its deadline and
// its last try's error on one line, apart.
func TestErrorIsOneLine(t *testing.T) {
	e := withErr(&Error{Op: "status", Endpoint: "http://127.0.0.1:1", Tries: 3, Err: errors.New("dial tcp: connection refused")},
		context.DeadlineExceeded)
	want := "client: status from http://127.0.0.1:1: context deadline exceeded; dial tcp: connection refused (after 3 tries)"
	if got := e.Error(); got != want {
		t.Fatalf("%q\nwant %q", got, want)
	}
	if !errors.Is(e, context.DeadlineExceeded) {
		t.Fatal("the deadline is not in the chain")
	}
}
