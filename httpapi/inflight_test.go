package httpapi

import (
	"bufio"
	"context"
	"io"
	"maps"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
)

// waitLimit bounds every wait on a channel below; reaching it fails the test
// rather than hanging it. Nothing sleeps.
const waitLimit = 10 * time.Second

// gate is a Store and Cluster hook that holds every call until released.
type gate struct {
	calls   atomic.Int64
	entered chan struct{} // one value per call that reached the hook
	release chan struct{} // closed to let every held call return
}

func newGate() *gate {
	return &gate{entered: make(chan struct{}, 64), release: make(chan struct{})}
}

func (g *gate) hook(ctx context.Context) error {
	g.calls.Add(1)
	g.entered <- struct{}{}
	select {
	case <-g.release:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// awaitEntered waits until n more calls reached the hook.
func (g *gate) awaitEntered(t *testing.T, n int) {
	t.Helper()
	timeout := time.After(waitLimit)
	for range n {
		select {
		case <-g.entered:
		case <-timeout:
			t.Fatalf("fewer than %d calls reached the store within %v", n, waitLimit)
		}
	}
}

// served is one request served in the background.
type served struct {
	done chan struct{}
	rec  *httptest.ResponseRecorder
}

// serveAsync serves req on another goroutine; when it is answered, s.done is
// closed and, if notify is not nil, s is sent on it.
func serveAsync(h http.Handler, req *http.Request, notify chan<- *served) *served {
	s := &served{done: make(chan struct{}), rec: httptest.NewRecorder()}
	go func() {
		h.ServeHTTP(s.rec, req)
		close(s.done)
		if notify != nil {
			notify <- s
		}
	}()
	return s
}

func (s *served) wait(t *testing.T) *httptest.ResponseRecorder {
	t.Helper()
	select {
	case <-s.done:
		return s.rec
	case <-time.After(waitLimit):
		t.Fatalf("request still running after %v", waitLimit)
		return nil
	}
}

// tooManyBody is the body of the answer to a request beyond MaxInFlight.
const tooManyBody = "too many requests in flight on this member; retry in a second\n"

func inFlight(h http.Handler) int64 { return h.(*handler).inFlight.Load() }

// checkRefused checks the documented answer to a request beyond MaxInFlight.
func checkRefused(t *testing.T, rec *httptest.ResponseRecorder) {
	t.Helper()
	if rec.Code != http.StatusServiceUnavailable || rec.Header().Get("Retry-After") != "1" ||
		rec.Body.String() != tooManyBody {
		t.Errorf("got %d, Retry-After %q, body %q; want 503, 1, %q", rec.Code,
			rec.Header().Get("Retry-After"), rec.Body, tooManyBody)
	}
}

// TestMaxInFlight fills the limit with two requests held inside a blocking
// Store and Cluster, then sends one more: the table says whether it is
// refused or, being exempt, served. A refused request reaches neither Store
// nor Cluster; once the held requests finish, the same request is served.
func TestMaxInFlight(t *testing.T) {
	const limit = 2
	tests := []struct {
		name, method, target, body string
		wantCode                   int // while the limit is reached
	}{
		{"get", "GET", "/k", "", 503},
		{"get json", "GET", "/key/k?level=stale", "", 503},
		{"head", "HEAD", "/k", "", 503},
		{"put", "PUT", "/k", "v2", 503},
		{"delete", "DELETE", "/key/k", "", 503},
		{"post key", "POST", "/key", `{"a":"b"}`, 503},
		{"add member", "POST", "/4", "http://127.0.0.1:42379", 503},
		{"remove member", "DELETE", "/1", "", 503},
		{"join", "POST", "/join", `{"id":4,"raftAddr":"127.0.0.1:42379"}`, 503},
		{"bad request counted too", "PUT", "/", "v", 503},
		{"wrong method counted too", "PATCH", "/k", "", 503},
		{"debug state counted", "GET", "/debug/state", "", 503},
		{"pprof counted", "GET", "/debug/pprof/", "", 503},
		{"health exempt", "GET", "/health", "", 200},
		{"health head exempt", "HEAD", "/health", "", 200},
		{"status exempt", "GET", "/status", "", 200},
		{"metrics exempt", "GET", "/metrics", "", 200},
		{"exempt path, wrong method", "PUT", "/status", "x", 405},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			g := newGate()
			e := newEnv(t, map[string]string{"k": "v"}, func(c *Config) {
				c.MaxInFlight = limit
				c.Metrics = http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "m 1\n") })
			})
			e.store.hook, e.cluster.hook = g.hook, g.hook
			held := []*served{
				serveAsync(e.h, httptest.NewRequest("GET", "/k", nil), nil),
				serveAsync(e.h, httptest.NewRequest("POST", "/5", strings.NewReader("http://127.0.0.1:52379")), nil),
			}
			g.awaitEntered(t, limit)
			storeBefore, membersBefore := e.store.snapshot(), e.cluster.snapshot()

			rec := e.do(t, tc.method, tc.target, tc.body)
			if rec.Code != tc.wantCode {
				t.Fatalf("%s %s at the limit: code %d, want %d; body %q", tc.method, tc.target, rec.Code, tc.wantCode, rec.Body)
			}
			if tc.wantCode == 503 {
				checkRefused(t, rec)
			}
			if n := g.calls.Load(); n != limit {
				t.Errorf("%d Store or Cluster calls, want only the %d held ones", n, limit)
			}
			if !maps.Equal(e.store.snapshot(), storeBefore) || !maps.Equal(e.cluster.snapshot(), membersBefore) {
				t.Errorf("state changed by a request at the limit")
			}

			close(g.release)
			if rec := held[0].wait(t); rec.Code != 200 {
				t.Errorf("held GET: %d %q", rec.Code, rec.Body)
			}
			if rec := held[1].wait(t); rec.Code != 204 {
				t.Errorf("held POST /5: %d %q", rec.Code, rec.Body)
			}
			if n := inFlight(e.h); n != 0 {
				t.Fatalf("in flight after every request returned: %d", n)
			}
			if rec := e.do(t, tc.method, tc.target, tc.body); rec.Code == 503 {
				t.Errorf("%s %s below the limit: still 503 %q", tc.method, tc.target, rec.Body)
			}
		})
	}
}

// TestMaxInFlightConcurrent: of many requests held at once, exactly the
// limit reach the Store; every other one is refused without waiting for them.
func TestMaxInFlightConcurrent(t *testing.T) {
	const limit, total = 3, 20
	g := newGate()
	e := newEnv(t, map[string]string{"k": "v"}, func(c *Config) { c.MaxInFlight = limit })
	e.store.hook = g.hook
	answered := make(chan *served, total)
	for range total {
		serveAsync(e.h, httptest.NewRequest("GET", "/k", nil), answered)
	}
	g.awaitEntered(t, limit)
	timeout := time.After(waitLimit)
	for range total - limit { // answered while the held ones are still held
		select {
		case s := <-answered:
			checkRefused(t, s.rec)
		case <-timeout:
			t.Fatalf("refused requests not answered within %v", waitLimit)
		}
	}
	select {
	case <-g.entered:
		t.Fatalf("more than %d requests reached the store", limit)
	default:
	}
	close(g.release)
	for range limit {
		select {
		case s := <-answered:
			if s.rec.Code != 200 {
				t.Errorf("held request: %d %q", s.rec.Code, s.rec.Body)
			}
		case <-time.After(waitLimit):
			t.Fatalf("held requests not answered within %v of their release", waitLimit)
		}
	}
	if n := g.calls.Load(); n != limit {
		t.Errorf("%d Store calls, want %d", n, limit)
	}
	if n := inFlight(e.h); n != 0 {
		t.Errorf("in flight after every request returned: %d", n)
	}
}

// blockingBody signals its first Read, then blocks until release is closed.
type blockingBody struct {
	once    sync.Once
	reading chan struct{}
	release chan struct{}
	r       io.Reader
}

func (b *blockingBody) Read(p []byte) (int, error) {
	b.once.Do(func() { close(b.reading) })
	<-b.release
	return b.r.Read(p)
}

// TestMaxInFlightCountsSlowBodies: a request whose body is still arriving
// holds its place; the one after it is refused before its body is read.
func TestMaxInFlightCountsSlowBodies(t *testing.T) {
	e := newEnv(t, nil, func(c *Config) { c.MaxInFlight = 1 })
	body := &blockingBody{reading: make(chan struct{}), release: make(chan struct{}), r: strings.NewReader("slow")}
	upload := serveAsync(e.h, httptest.NewRequest("PUT", "/slow", body), nil)
	select {
	case <-body.reading:
	case <-time.After(waitLimit):
		t.Fatal("the handler never read the body")
	}
	second := &blockingBody{reading: make(chan struct{}), release: make(chan struct{}), r: strings.NewReader("x")}
	rec := httptest.NewRecorder()
	e.h.ServeHTTP(rec, httptest.NewRequest("PUT", "/other", second))
	checkRefused(t, rec)
	select {
	case <-second.reading:
		t.Error("a refused request's body was read")
	default:
	}
	close(body.release)
	if rec := upload.wait(t); rec.Code != 204 {
		t.Fatalf("slow upload: %d %q", rec.Code, rec.Body)
	}
	if got := e.store.snapshot(); !maps.Equal(got, map[string]string{"slow": "slow"}) {
		t.Errorf("store = %q, want only the slow upload", got)
	}
}

// TestMaxInFlightReleasedOnEveryOutcome: with a limit of one, requests that
// end in each error status, one after the other, each give their place back.
func TestMaxInFlightReleasedOnEveryOutcome(t *testing.T) {
	e := newEnv(t, map[string]string{"k": "v"}, func(c *Config) {
		c.MaxInFlight = 1
		c.MaxValueBytes = 4
	})
	var fail atomic.Value // the error the store returns; testErr("") for none
	fail.Store(testErr(""))
	e.store.hook = func(context.Context) error {
		if err := fail.Load().(testErr); err != "" {
			return err
		}
		return nil
	}
	steps := []struct {
		method, target, body string
		storeErr             testErr
		want                 int
	}{
		{"PUT", "/", "v", "", 400},
		{"GET", "/absent", "", "", 404},
		{"PATCH", "/k", "", "", 405},
		{"PUT", "/k", "too long", "", 413},
		{"PUT", "/k", "v", "conflict", 409},
		{"PUT", "/k", "v", "unavailable", 503},
		{"PUT", "/k", "v", "timeout", 504},
		{"PUT", "/k", "v", "other", 500},
		{"GET", "/k", "", "", 200},
		{"PUT", "/k", "w", "", 204},
	}
	for _, st := range steps {
		fail.Store(st.storeErr)
		if rec := e.do(t, st.method, st.target, st.body); rec.Code != st.want {
			t.Fatalf("%s %s (store error %q): %d %q, want %d", st.method, st.target, st.storeErr, rec.Code, rec.Body, st.want)
		}
		if n := inFlight(e.h); n != 0 {
			t.Fatalf("after %s %s: %d in flight, want 0", st.method, st.target, n)
		}
	}
}

// TestMaxInFlightLogsSparingly: refusals are not logged one by one; the
// first of a burst is, with its count, and none as "request failed".
func TestMaxInFlightLogsSparingly(t *testing.T) {
	const refusals = 20
	core, logs := observer.New(zapcore.DebugLevel)
	g := newGate()
	e := newEnv(t, map[string]string{"k": "v"}, func(c *Config) {
		c.MaxInFlight = 1
		c.Logger = zap.New(core)
	})
	e.store.hook = g.hook
	held := serveAsync(e.h, httptest.NewRequest("GET", "/k", nil), nil)
	g.awaitEntered(t, 1)
	for range refusals {
		checkRefused(t, e.do(t, "GET", "/k", ""))
	}
	close(g.release)
	held.wait(t)

	entries := logs.All()
	// One a second: a burst that takes less than 19 seconds logs fewer than 20.
	if len(entries) < 1 || len(entries) >= refusals {
		t.Fatalf("%d log entries for %d refusals: %v", len(entries), refusals, entries)
	}
	first := entries[0]
	if first.Level != zapcore.WarnLevel || first.Message != "refusing requests: too many in flight" {
		t.Errorf("first entry: %v %q", first.Level, first.Message)
	}
	if f := first.ContextMap(); f["max-in-flight"] != int64(1) || f["refused"] != uint64(1) {
		t.Errorf("first entry fields %v, want max-in-flight 1, refused 1", f)
	}
	for _, en := range entries {
		if en.Message != first.Message {
			t.Errorf("unexpected log entry %q", en.Message)
		}
	}
}

// TestMaxInFlightRefusesWithoutWaitingForTheBody goes through a real
// listener: a refused request whose body has not all arrived is answered at
// once, and its connection closed, rather than after net/http waits for the
// rest of the body.
func TestMaxInFlightRefusesWithoutWaitingForTheBody(t *testing.T) {
	g := newGate()
	e := newEnv(t, map[string]string{"k": "v"}, func(c *Config) { c.MaxInFlight = 1 })
	e.store.hook = g.hook
	srv := httptest.NewServer(e.h)
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(g.release) }) // before srv.Close, which waits for the held request
	go func() { _, _ = srv.Client().Get(srv.URL + "/k") }()
	g.awaitEntered(t, 1)

	conn, err := net.Dial("tcp", srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	// Half the declared body; the rest never comes.
	if _, err := io.WriteString(conn, "PUT /slow HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n01234"); err != nil {
		t.Fatal(err)
	}
	conn.SetReadDeadline(time.Now().Add(waitLimit))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("no answer while the body is incomplete: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 503 || resp.Header.Get("Retry-After") != "1" || !resp.Close ||
		string(body) != tooManyBody {
		t.Errorf("got %d, Retry-After %q, close %v, body %q; want 503, 1, close, one line",
			resp.StatusCode, resp.Header.Get("Retry-After"), resp.Close, body)
	}
	if got := e.store.snapshot(); len(got) != 1 {
		t.Errorf("store = %q, want only the seed", got)
	}
}
