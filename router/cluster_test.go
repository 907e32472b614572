package router

// The router against real raftkv processes: over a real 3-member group,
// and as the `raftkv route` command over two real one-member groups.

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/raftkv/raftkv/client"
	"github.com/raftkv/raftkv/shardmap"
	"github.com/raftkv/raftkv/testcluster"
	"go.uber.org/zap/zaptest"
)

func TestMain(m *testing.M) { testcluster.Main(m) }

func startCluster(t *testing.T, n int) (*testcluster.Cluster, int) {
	t.Helper()
	if testing.Short() {
		t.Skip("starts real raftkv processes")
	}
	c := testcluster.Start(t, testcluster.Options{N: n})
	return c, c.WaitLeader(t, 20*time.Second)
}

// serveRouter serves a router over a Client of cfg (with the test's
// logger) until the test ends.
func serveRouter(t *testing.T, cfg client.Config) *httptest.Server {
	t.Helper()
	cfg.Logger = zaptest.NewLogger(t)
	c, err := client.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	// With metrics, so that every answer, a watch's stream too, goes
	// through the recorder that counts it.
	h, err := New(Config{Client: c, Logger: zaptest.NewLogger(t), Metrics: prometheus.NewRegistry()})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv
}

// do sends one request and returns its status, body and X-Raft-Index.
func do(t *testing.T, method, url, body string) (int, string, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), resp.Header.Get(client.HeaderRaftIndex)
}

// TestRouterSingleGroup: the router over a real 3-member group serves
// every path, and keeps serving writers while the member its calls start
// at is killed.
func TestRouterSingleGroup(t *testing.T) {
	t.Parallel()
	tc, leader := startCluster(t, 3)
	victim := 1
	if victim == leader {
		victim = 2
	}
	urls := []string{tc.ClientURL(victim)}
	for _, id := range []int{1, 2, 3} {
		if id != victim {
			urls = append(urls, tc.ClientURL(id))
		}
	}
	srv := serveRouter(t, client.Config{Endpoints: urls, RequestTimeout: 20 * time.Second})

	if st, _, idx := do(t, "PUT", srv.URL+"/k1", "v1"); st != 204 || idx == "" {
		t.Fatalf("PUT = %d, index %q", st, idx)
	}
	if st, body, _ := do(t, "GET", srv.URL+"/k1", ""); st != 200 || body != "v1" {
		t.Fatalf("GET = %d %q", st, body)
	}
	if st, body, _ := do(t, "GET", srv.URL+"/key/k1?level=stale", ""); st != 200 || body != `{"k1":"v1"}` {
		t.Fatalf("GET /key = %d %q", st, body)
	}
	// A value that is not UTF-8: raftdb's JSON route answers it only in
	// base64, and a key that is not UTF-8 not at all (406, as a member);
	// GET /<key> carries the bytes and ignores encoding.
	if st, _, _ := do(t, "PUT", srv.URL+"/bin", "\x00\xff\n"); st != 204 {
		t.Fatalf("PUT /bin = %d", st)
	}
	if st, body, _ := do(t, "POST", srv.URL+"/key?encoding=base64", `{"bin2":"AP8K","text2":"aMOpIQ=="}`); st != 204 {
		t.Fatalf("POST /key?encoding=base64 of bytes = %d %q", st, body)
	}
	for k, want := range map[string]string{"bin2": "\x00\xff\n", "text2": "hé!"} {
		if st, body, _ := do(t, "GET", srv.URL+"/"+k, ""); st != 200 || body != want {
			t.Errorf("GET /%s after POST /key?encoding=base64 = %d %q; want %q", k, st, body, want)
		}
	}
	for _, tc := range []struct {
		path       string
		wantStatus int
		wantBody   string
	}{
		{"/key/bin", 406, "router: the value is not valid UTF-8, which a JSON string cannot carry; add ?encoding=base64, or read the raw bytes with GET /<key>\n"},
		{"/key/bin?encoding=base64", 200, `{"bin":"AP8K"}`},
		{"/key/bin?encoding=%20Base64", 200, `{"bin":"AP8K"}`},
		{"/key/bin?encoding=hex", 400, "router: unknown encoding \"hex\"; encoding must be base64\n"},
		{"/bin?encoding=hex", 200, "\x00\xff\n"},
		{"/key/%FF", 406, "router: the key is not valid UTF-8, which a JSON object cannot carry; read it with GET /<key>\n"},
	} {
		if st, body, _ := do(t, "GET", srv.URL+tc.path, ""); st != tc.wantStatus || body != tc.wantBody {
			t.Errorf("GET %s = %d %q; want %d %q", tc.path, st, body, tc.wantStatus, tc.wantBody)
		}
	}
	if st, _, _ := do(t, "POST", srv.URL+"/key", `{"k2":"v2","status":"s"}`); st != 204 {
		t.Fatalf("POST /key = %d", st)
	}
	if st, body, _ := do(t, "GET", srv.URL+"/key/status", ""); st != 200 || body != `{"status":"s"}` {
		t.Fatalf("GET /key/status = %d %q", st, body)
	}
	if st, _, _ := do(t, "DELETE", srv.URL+"/key/k1", ""); st != 204 {
		t.Fatalf("DELETE = %d", st)
	}
	if st, body, _ := do(t, "GET", srv.URL+"/k1", ""); st != 404 {
		t.Fatalf("GET after DELETE = %d %q", st, body)
	}
	if st, body, _ := do(t, "GET", srv.URL+"/k2?level=bogus", ""); st != 400 {
		t.Fatalf("bad level = %d %q", st, body)
	}
	// A write with a parameter it does not take is refused, by the router
	// and by a member in the same words, and writes nothing.
	for _, w := range []struct{ method, path, body, want string }{
		{"PUT", "/k2?tll=5", "x", `PUT of a key takes only the query parameter ttl; not "tll"`},
		{"PUT", "/key/k2?ttl=5s&level=stale", "x", `PUT of a key takes only the query parameter ttl; not "level"`},
		{"DELETE", "/key/k2?recursive=true", "", `DELETE of a key takes no query parameters; not "recursive"`},
		{"POST", "/key?encodng=base64", `{"k2":"eA=="}`, `POST /key takes only the query parameter encoding; not "encodng"`},
		{"POST", "/txn?dry_run=1", `{"success":[{"request_put":{"key":"azI=","value":"eA=="}}]}`, `POST /txn takes no query parameters; not "dry_run"`},
	} {
		for _, base := range []string{srv.URL, tc.ClientURL(leader)} {
			if st, body, _ := do(t, w.method, base+w.path, w.body); st != 400 || strings.TrimPrefix(body, "router: ") != w.want+"\n" {
				t.Errorf("%s %s at %s = %d %q; want 400 %q", w.method, w.path, base, st, body, w.want)
			}
		}
	}
	if st, body, _ := do(t, "GET", srv.URL+"/k2", ""); st != 200 || body != "v2" {
		t.Fatalf("GET /k2 after refused writes = %d %q", st, body)
	}

	const writers, each = 4, 50
	var wg sync.WaitGroup
	var mu sync.Mutex
	var failed []string
	progress := make(chan struct{}, writers*each)
	for w := range writers {
		wg.Go(func() {
			for i := range each {
				k := fmt.Sprintf("w%d-%d", w, i)
				req, _ := http.NewRequest("PUT", srv.URL+"/"+k, strings.NewReader(k))
				resp, err := http.DefaultClient.Do(req)
				if err == nil {
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
				if err != nil || resp.StatusCode != 204 {
					mu.Lock()
					failed = append(failed, fmt.Sprintf("%s: %v %v", k, err, resp))
					mu.Unlock()
				}
				progress <- struct{}{}
			}
		})
	}
	for range writers * each / 4 {
		<-progress
	}
	tc.Kill(victim)
	wg.Wait()
	if len(failed) > 0 {
		t.Fatalf("%d writes failed; first: %s", len(failed), failed[0])
	}
	for w := range writers {
		for i := range each {
			k := fmt.Sprintf("w%d-%d", w, i)
			if st, body, _ := do(t, "GET", srv.URL+"/"+k, ""); st != 200 || body != k {
				t.Fatalf("GET %s = %d %q", k, st, body)
			}
		}
	}
}

// TestRouteCommand runs `raftkv route` over two real one-member groups,
// with the config served by an in-test config group that follows the
// sharding contract's "Config group HTTP API" (GET /config).
func TestRouteCommand(t *testing.T) {
	t.Parallel()
	a, _ := startCluster(t, 1)
	b, _ := startCluster(t, 1)
	cfg, _ := shardmap.Initial(64)
	cfg, err := cfg.Join(map[uint64][]string{1: {a.ClientURL(1)}, 2: {b.ClientURL(1)}})
	if err != nil {
		t.Fatal(err)
	}
	cs := configServer(t, cfg)

	port := testcluster.FreePorts(t, 1)[0]
	cmd := exec.Command(testcluster.BuildBinary(t), "route", "--config-endpoints", cs.URL, "--port", fmt.Sprint(port), "--listen-host", "127.0.0.1")
	stderr, _ := cmd.StderrPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var logs strings.Builder
	logsDone := make(chan struct{})
	go func() {
		defer close(logsDone)
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			logs.WriteString(sc.Text() + "\n")
		}
	}()
	exited := false
	defer func() {
		if !exited {
			cmd.Process.Kill()
			cmd.Wait()
		}
	}()
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	testcluster.WaitFor(t, 20*time.Second, "the router to be healthy", func() error {
		resp, err := (&http.Client{Timeout: 2 * time.Second}).Get(base + "/health")
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			return fmt.Errorf("GET /health: %d", resp.StatusCode)
		}
		return nil
	})
	for i := range 20 {
		k := fmt.Sprintf("key%d", i)
		if st, _, _ := do(t, "PUT", base+"/"+k, k); st != 204 {
			t.Fatalf("PUT %s = %d", k, st)
		}
		in, out := a, b
		if cfg.OwnerOfKey(k) == 2 {
			in, out = b, a
		}
		if v, st, err := in.Get(1, k); err != nil || st != 200 || string(v) != k {
			t.Fatalf("%s at its group: %q %d %v", k, v, st, err)
		}
		if _, st, _ := out.Get(1, k); st != 404 {
			t.Fatalf("%s at the other group: %d", k, st)
		}
		if st, body, _ := do(t, "GET", base+"/key/"+k, ""); st != 200 || body != fmt.Sprintf(`{"%s":"%s"}`, k, k) {
			t.Fatalf("GET /key/%s = %d %q", k, st, body)
		}
	}
	if st, body, _ := do(t, "GET", base+"/status", ""); st != 200 || !strings.Contains(body, `"configVersion":1,"buckets":64`) ||
		!strings.Contains(body, `"build":{"version":`) {
		t.Fatalf("status = %d %q", st, body)
	}
	if st, _, _ := do(t, "PUT", base+"/metrics", "x"); st != 405 {
		t.Fatalf("PUT /metrics = %d, want 405", st)
	}
	// A watch ends with its context: the test's client gives up on it.
	wctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	req, _ := http.NewRequestWithContext(wctx, "GET", base+"/key?watch=true&prefix=key", nil)
	if resp, err := http.DefaultClient.Do(req); err == nil {
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	cancel()
	// The router's own metrics, and the process's.
	testcluster.WaitFor(t, 10*time.Second, "the router's metrics", func() error {
		st, body, _ := do(t, "GET", base+"/metrics", "")
		if st != 200 {
			return fmt.Errorf("GET /metrics = %d", st)
		}
		if strings.Contains(body, "etcd_") {
			return fmt.Errorf("GET /metrics holds the members' etcd metrics:\n%s", body)
		}
		for _, want := range []string{
			`raftkv_router_requests_total{code="204",op="put"} 20`,
			`raftkv_router_requests_total{code="200",op="get"} 20`,
			`raftkv_router_requests_total{code="200",op="status"} 1`,
			`raftkv_router_requests_total{code="405",op="other"} 1`,
			`raftkv_router_requests_total{code="200",op="watch"} 1`,
			`raftkv_router_request_duration_seconds_count{op="put"} 20`,
			"raftkv_router_watches 0",
			"raftkv_router_config_version 1",
			"raftkv_router_config_fetches_total ",
			"process_cpu_seconds_total ",
			"go_goroutines ",
		} {
			if !strings.Contains(body, want) {
				return fmt.Errorf("GET /metrics lacks %q:\n%s", want, body)
			}
		}
		return nil
	})
	cmd.Process.Signal(syscall.SIGTERM)
	err = cmd.Wait()
	exited = true
	<-logsDone
	if err != nil {
		t.Fatalf("raftkv route exited with %v; log:\n%s", err, logs.String())
	}
	if strings.Contains(logs.String(), "WARNING: DATA RACE") {
		t.Fatalf("data race:\n%s", logs.String())
	}
}

// TestRouteFlags: invalid command lines exit 2 with a one-line reason.
func TestRouteFlags(t *testing.T) {
	for _, args := range [][]string{
		{},
		{"--config-endpoints", "http://127.0.0.1:1"},
		{"--config-endpoints", "http://127.0.0.1:1/x", "--port", "7080"},
		{"--config-endpoints", "http://127.0.0.1:1", "--port", "70800"},
		{"--config-endpoints", "http://127.0.0.1:1", "--port", "7080", "--request-timeout", "0s"},
		{"--config-endpoints", "http://127.0.0.1:1", "--port", "7080", "extra"},
	} {
		var stderr strings.Builder
		if code := Main(context.Background(), args, &stderr); code != 2 || !strings.HasPrefix(stderr.String(), "raftkv route: ") {
			t.Errorf("Main(%q) = %d, %q; want 2 and a reason", args, code, stderr.String())
		}
	}
	var stderr strings.Builder
	if code := Main(context.Background(), []string{"--help"}, &stderr); code != 0 || !strings.Contains(stderr.String(), "Usage: raftkv route") {
		t.Errorf("--help: %d %q", code, stderr.String())
	}
}

// twoGroups starts a sharded deployment of real processes with 4
// buckets and shard groups 1 and 2 of one member each, settled.
func twoGroups(t *testing.T) *testcluster.Sharded {
	t.Helper()
	if testing.Short() {
		t.Skip("starts real raftkv processes")
	}
	s := testcluster.StartSharded(t, testcluster.ShardedOptions{Buckets: 4})
	s.StartGroup(1, 1)
	s.StartGroup(2, 1)
	s.WaitSettled(t, 60*time.Second, 1, 2)
	return s
}

// TestLeftGroupStaysOut: over real processes, a new group takes the id
// of a group that left while the old group's members still run. The new
// group joins and serves every key of its buckets through the router;
// the old one stays at the config it left in, holds no key, and logs why.
func TestLeftGroupStaysOut(t *testing.T) {
	t.Parallel()
	s := twoGroups(t)
	srv := serveRouter(t, client.Config{ConfigEndpoints: s.ConfigURLs(), RequestTimeout: 3 * time.Second})
	keys := []string{"a", "b", "c", "d", "e", "f", "g", "h"}
	for _, k := range keys {
		if st, body, _ := do(t, "PUT", srv.URL+"/"+k, "before"); st != 204 {
			t.Fatalf("PUT %s: %d %s", k, st, body)
		}
	}
	left, err := s.Leave(1)
	if err != nil {
		t.Fatal(err)
	}
	s.WaitSettled(t, 60*time.Second, 2)
	old := s.Forget(1)
	s.StartGroup(1, 1)
	joined := s.WaitSettled(t, 60*time.Second, 1, 2)
	if len(joined.BucketsOf(1)) == 0 {
		t.Fatalf("config %d gives the new group 1 no bucket", joined.Version)
	}
	for _, k := range keys {
		if st, body, _ := do(t, "GET", srv.URL+"/"+k, ""); st != 200 || body != "before" {
			t.Fatalf("GET %s after the new group 1 joined: %d %q", k, st, body)
		}
		if st, body, _ := do(t, "PUT", srv.URL+"/"+k, "after"); st != 204 {
			t.Fatalf("PUT %s after the new group 1 joined: %d %s", k, st, body)
		}
	}
	st, err := old.Status(1)
	if err != nil || st.Shard == nil || st.Shard.ConfigVersion != left.Version {
		t.Errorf("the old group 1: %+v %v; want it at config %d", st.Shard, err, left.Version)
	}
	if dg, err := old.Digest(1); err != nil || dg.Keys != 0 {
		t.Errorf("the old group 1 holds %+v %v, want no key", dg, err)
	}
	testcluster.WaitFor(t, 10*time.Second, "the old group 1 to log its refusal", func() error {
		if b, err := os.ReadFile(old.LogPath(1)); err != nil || !strings.Contains(string(b), "another group took the id of this one") {
			return fmt.Errorf("not in its log yet (%v)", err)
		}
		return nil
	})
}

// TestRouterWatchResumeLeftGroup: over real processes, a cursor that
// names a group which has left since (no config lists it) resumes that
// group at its members, which still run, instead of a 410; once they are
// stopped the answer is 410. A watch of one group at another group's
// member (an older config's URL, reused) is refused. A new group that
// takes the id of the one that left joins and serves, and the cursor is
// still answered 410.
func TestRouterWatchResumeLeftGroup(t *testing.T) {
	t.Parallel()
	s := twoGroups(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	srv := serveRouter(t, client.Config{ConfigEndpoints: s.ConfigURLs(), RequestTimeout: 3 * time.Second})
	admin, err := client.New(client.Config{ConfigEndpoints: s.ConfigURLs(), RequestTimeout: 3 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	cfg, err := admin.Query(ctx, -1)
	if err != nil {
		t.Fatal(err)
	}
	a := keyIn(cfg, 1, "a")
	watchURL := srv.URL + "/key?watch=true&prefix=a"

	wctx, wcancel := context.WithCancel(ctx)
	ch := openWatch(t, wctx, watchURL, "")
	if st, body, _ := do(t, "PUT", srv.URL+"/"+a, "1"); st != 204 {
		t.Fatalf("PUT %s: %d %s", a, st, body)
	}
	ev := next(t, ch)
	early := ev[0]
	if ev[2] != a || ev[3] != "1" || !strings.Contains(early, "1=") {
		t.Fatalf("first event %v, want %s=1 with a cursor naming group 1", ev, a)
	}
	if st, body, _ := do(t, "PUT", srv.URL+"/"+a, "2"); st != 204 {
		t.Fatalf("PUT %s: %d %s", a, st, body)
	}
	if ev := next(t, ch); ev[2] != a || ev[3] != "2" {
		t.Fatalf("second event %v, want %s=2", ev, a)
	}
	wcancel()

	if _, err := s.Leave(1); err != nil {
		t.Fatal(err)
	}
	s.WaitSettled(t, 60*time.Second, 2)
	ch2 := openWatch(t, ctx, watchURL, early)
	if ev := next(t, ch2); ev[2] != a || ev[3] != "2" {
		t.Fatalf("resumed from %q after group 1 left: %v, want group 1's %s=2", early, ev, a)
	}
	if st, body, _ := do(t, "PUT", srv.URL+"/"+a, "3"); st != 204 {
		t.Fatalf("PUT %s after the move: %d %s", a, st, body)
	}
	if ev := next(t, ch2); ev[2] != a || ev[3] != "3" || strings.Contains(ev[0], "1=") {
		t.Fatalf("after the move: %v, want group 2's %s=3 with a cursor without group 1", ev, a)
	}

	other := s.Group(2).ClientURL(1)
	s.StopGroup(1)
	latest, err := admin.Query(ctx, -1)
	if err != nil {
		t.Fatal(err)
	}
	if st, body := refusedWatch(t, ctx, watchURL, early); st != http.StatusGone ||
		!strings.Contains(body, `"code":"compacted"`) || !strings.Contains(body, "group 1") ||
		!strings.Contains(body, fmt.Sprintf("(config %d)", latest.Version)) {
		t.Fatalf("resumed from %q after group 1 stopped: %d %s; want 410 compacted naming group 1 and config %d", early, st, body, latest.Version)
	}

	wc, err := client.New(client.Config{Endpoints: []string{other}, RequestTimeout: 2 * time.Second, Logger: zaptest.NewLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer wc.Close()
	if _, err := wc.Watch(ctx, client.WatchOptions{Prefix: "a", Group: 1, Servers: []string{other}, Markers: true}); !errors.Is(err, client.ErrWrongGroup) {
		t.Fatalf("a watch of group 1 at group 2's member: %v, want ErrWrongGroup", err)
	}

	// A new group 1 (empty data dirs, another log) joins: the cursor is
	// still answered 410, not resumed in the new log at the old index.
	s.StartGroup(1, 1)
	rejoined := s.WaitSettled(t, 60*time.Second, 1, 2)
	if st, body := refusedWatch(t, ctx, watchURL, early); st != http.StatusGone ||
		!strings.Contains(body, `"code":"compacted"`) || !strings.Contains(body, "group 1 joined again") {
		t.Fatalf("resumed from %q after a new group 1 joined (config %d): %d %s; want 410 compacted naming the new group 1",
			early, rejoined.Version, st, body)
	}
	if st, body, _ := do(t, "PUT", srv.URL+"/"+a, "4"); st != 204 {
		t.Fatalf("PUT %s after the new group 1 joined: %d %s", a, st, body)
	}
}
