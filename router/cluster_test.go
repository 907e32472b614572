package router

// The router against real raftkv processes.

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/raftkv/raftkv/client"
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
	c, err := client.New(client.Config{Endpoints: urls, RequestTimeout: 20 * time.Second, Logger: zaptest.NewLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	h, err := New(Config{Client: c, Logger: zaptest.NewLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	defer srv.Close()

	if st, _, idx := do(t, "PUT", srv.URL+"/k1", "v1"); st != 204 || idx == "" {
		t.Fatalf("PUT = %d, index %q", st, idx)
	}
	if st, body, _ := do(t, "GET", srv.URL+"/k1", ""); st != 200 || body != "v1" {
		t.Fatalf("GET = %d %q", st, body)
	}
	if st, body, _ := do(t, "GET", srv.URL+"/key/k1?level=stale", ""); st != 200 || body != `{"k1":"v1"}` {
		t.Fatalf("GET /key = %d %q", st, body)
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
		if code := Main(args, &stderr); code != 2 || !strings.HasPrefix(stderr.String(), "raftkv route: ") {
			t.Errorf("Main(%q) = %d, %q; want 2 and a reason", args, code, stderr.String())
		}
	}
	var stderr strings.Builder
	if code := Main([]string{"--help"}, &stderr); code != 0 || !strings.Contains(stderr.String(), "Usage: raftkv route") {
		t.Errorf("--help: %d %q", code, stderr.String())
	}
}
