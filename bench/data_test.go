package bench

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/raftkv/raftkv/testcluster"
)

func TestMain(m *testing.M) { testcluster.Main(m) }

// The data-model workloads against a real 3-member cluster: each test
// checks the run's counts against what the cluster holds afterwards,
// read independently of the workload's own check.

func startData(t *testing.T) (*testcluster.Cluster, []string) {
	t.Helper()
	c := testcluster.Start(t, testcluster.Options{})
	c.WaitLeader(t, 20*time.Second)
	var eps []string
	for _, id := range c.IDs() {
		eps = append(eps, c.ClientURL(id))
	}
	return c, eps
}

func runData(t *testing.T, cfg DataConfig) *DataResult {
	t.Helper()
	res, err := RunData(t.Context(), cfg)
	if err != nil {
		t.Fatalf("RunData: %v", err)
	}
	if len(res.Problems) > 0 {
		t.Fatalf("problems: %q", res.Problems)
	}
	if res.Interrupted {
		t.Fatal("interrupted")
	}
	return res
}

// listed reads every key under prefix from endpoint e, page by page.
func listed(t *testing.T, e, prefix string) map[string]listedKV {
	t.Helper()
	out := map[string]listedKV{}
	token := ""
	for {
		resp, err := http.Get(listURL(e, prefix, 1000, token))
		if err != nil {
			t.Fatal(err)
		}
		var p listPage
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("list: %d %s", resp.StatusCode, b)
		}
		if err := json.Unmarshal(b, &p); err != nil {
			t.Fatal(err)
		}
		for _, kv := range p.KVs {
			out[kv.Key] = kv
		}
		if !p.More {
			return out
		}
		token = p.Continue
	}
}

// counters sums the decimal values of kvs whose key has suffix.
func counters(t *testing.T, kvs map[string]listedKV, suffix string) (sum uint64, n int) {
	t.Helper()
	for k, kv := range kvs {
		if !strings.HasSuffix(k, suffix) {
			continue
		}
		v, err := strconv.ParseUint(kv.Value, 10, 64)
		if err != nil {
			t.Fatalf("key %s holds %q", k, kv.Value)
		}
		sum += v
		n++
	}
	return sum, n
}

// TestDataCAS: with 8 clients on 5 keys, both successes and conflicts
// happen, and the keys' counters add up to exactly the successes (no
// request failed, so no outcome is in doubt).
func TestDataCAS(t *testing.T) {
	_, eps := startData(t)
	res := runData(t, DataConfig{Mode: ModeCAS, Endpoints: eps, Clients: 8, Keyspace: 5, Duration: 2 * time.Second, Seed: 3})
	if res.Failed() != 0 {
		t.Fatalf("errors %v %v", res.Errors, res.ErrorSamples)
	}
	if res.Ops == 0 || res.Conflicts == 0 {
		t.Fatalf("%d successes, %d conflicts: want both with 8 clients on 5 keys", res.Ops, res.Conflicts)
	}
	if res.Latency.Count() != res.Ops {
		t.Fatalf("latency of %d CAS, want %d", res.Latency.Count(), res.Ops)
	}
	sum, n := counters(t, listed(t, eps[1], res.Config.Prefix), "")
	if sum != res.Ops || n > 5 {
		t.Fatalf("%d keys add up to %d, want %d successes", n, sum, res.Ops)
	}
}

// TestDataTxn: with its own tags per worker every compare holds; with
// fewer tags than workers some take the failure branch. Either way each
// tag's two keys hold the same counter at the same index, and the
// counters add up to the successes.
func TestDataTxn(t *testing.T) {
	_, eps := startData(t)
	for _, keyspace := range []int{40, 2} {
		t.Run(fmt.Sprintf("keyspace=%d", keyspace), func(t *testing.T) {
			res := runData(t, DataConfig{Mode: ModeTxn, Endpoints: eps, Clients: 4, Keyspace: keyspace, Duration: 1500 * time.Millisecond, Seed: 5})
			if res.Failed() != 0 || res.Ops == 0 {
				t.Fatalf("%d successes, errors %v %v", res.Ops, res.Errors, res.ErrorSamples)
			}
			if own := keyspace >= 4; own != (res.Conflicts == 0) {
				t.Fatalf("keyspace %d: %d conflicts", keyspace, res.Conflicts)
			}
			kvs := listed(t, eps[2], res.Config.Prefix)
			sumA, nA := counters(t, kvs, "/a")
			sumB, nB := counters(t, kvs, "/b")
			if sumA != res.Ops || sumB != res.Ops || nA != nB || nA > keyspace {
				t.Fatalf("a: %d keys sum %d, b: %d keys sum %d; want sums of %d", nA, sumA, nB, sumB, res.Ops)
			}
			for k, a := range kvs {
				if tag, ok := strings.CutSuffix(k, "/a"); ok {
					if b := kvs[tag+"/b"]; b.ModIndex != a.ModIndex || b.Value != a.Value {
						t.Fatalf("%s %+v, its pair %+v", k, a, b)
					}
				}
			}
		})
	}
}

// TestDataList: the pages and keys counted are those of complete walks
// plus the walks cut short at the end: keys = walks * keyspace + the
// part of the last walks, and each complete walk is ceil(keyspace/page)
// pages.
func TestDataList(t *testing.T) {
	_, eps := startData(t)
	res := runData(t, DataConfig{Mode: ModeList, Endpoints: eps, Clients: 3, Keyspace: 250, PageSize: 60, ValueSize: 10, Duration: 1500 * time.Millisecond, Seed: 9})
	if res.Failed() != 0 || res.Walks == 0 {
		t.Fatalf("%d walks, errors %v %v", res.Walks, res.Errors, res.ErrorSamples)
	}
	const pagesPerWalk = 5 // 60+60+60+60+10
	if res.Ops < res.Walks*pagesPerWalk || res.Ops >= (res.Walks+3)*pagesPerWalk {
		t.Fatalf("%d pages for %d complete walks of %d pages by 3 workers", res.Ops, res.Walks, pagesPerWalk)
	}
	if res.Keys < res.Walks*250 || res.Keys >= (res.Walks+3)*250 {
		t.Fatalf("%d keys for %d complete walks of 250", res.Keys, res.Walks)
	}
	if res.Latency.Count() != res.Ops {
		t.Fatalf("latency of %d pages, want %d", res.Latency.Count(), res.Ops)
	}
	if kvs := listed(t, eps[0], res.Config.Prefix); len(kvs) != 250 {
		t.Fatalf("%d keys preloaded, want 250", len(kvs))
	}
}

// TestDataWatch: 30 watchers over 3 members each get every write, so the
// events delivered are exactly watchers x writes, with one latency each.
func TestDataWatch(t *testing.T) {
	_, eps := startData(t)
	res := runData(t, DataConfig{Mode: ModeWatch, Endpoints: eps, Clients: 4, Watchers: 30, Rate: 100, ValueSize: 8, Duration: time.Second, Seed: 11})
	if res.Failed() != 0 || res.Writes < 50 {
		t.Fatalf("%d writes, errors %v %v", res.Writes, res.Errors, res.ErrorSamples)
	}
	if res.Ops != 30*res.Writes || res.Latency.Count() != res.Ops {
		t.Fatalf("%d events delivered, %d latencies; want 30 x %d writes", res.Ops, res.Latency.Count(), res.Writes)
	}
}

// TestDataWatchFindsGap: a watcher whose stream skips an event fails the
// run. The member's stream is real; the gap is made by a proxy that drops
// one event of one watcher's stream.
func TestDataWatchFindsGap(t *testing.T) {
	_, eps := startData(t)
	gapped := newDropProxy(t, eps[0])
	res, err := RunData(t.Context(), DataConfig{Mode: ModeWatch, Endpoints: []string{gapped, eps[1]}, Clients: 2, Watchers: 4, Rate: 50, Duration: time.Second, Seed: 13})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Problems) == 0 || !strings.Contains(strings.Join(res.Problems, "\n"), "gap") {
		t.Fatalf("problems %q: want a gap found", res.Problems)
	}
}

// newDropProxy passes requests on to e, and drops the third event of
// each watch stream.
func newDropProxy(t *testing.T, e string) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		req, _ := http.NewRequestWithContext(r.Context(), r.Method, e+r.URL.RequestURI(), r.Body)
		req.Header = r.Header.Clone()
		resp, err := http.DefaultTransport.RoundTrip(req)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		defer resp.Body.Close()
		for k, v := range resp.Header {
			w.Header()[k] = v
		}
		w.WriteHeader(resp.StatusCode)
		if r.URL.Query().Get("watch") != "true" {
			io.Copy(w, resp.Body)
			return
		}
		events := 0
		buf := make([]byte, 0, 4096)
		chunk := make([]byte, 4096)
		for {
			n, err := resp.Body.Read(chunk)
			buf = append(buf, chunk[:n]...)
			for {
				i := strings.Index(string(buf), "\n\n")
				if i < 0 {
					break
				}
				msg := buf[:i+2]
				if strings.HasPrefix(string(msg), "id:") {
					events++
				}
				if events != 3 || !strings.HasPrefix(string(msg), "id:") {
					w.Write(msg)
				}
				buf = buf[i+2:]
			}
			w.(http.Flusher).Flush()
			if err != nil {
				return
			}
		}
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}
