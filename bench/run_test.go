package bench

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/raftkv/raftkv/internal/testutil"
)

// runFake runs cfg against f and fails t on a Run error.
func runFake(t *testing.T, cfg Config) *Result {
	t.Helper()
	r, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	defer r.Close()
	res, err := r.Run(t.Context())
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	if p := r.Progress(); p.Phase != PhaseDone {
		t.Fatalf("phase after Run = %q, want %q", p.Phase, PhaseDone)
	}
	return res
}

func TestRunPutVerify(t *testing.T) {
	for _, seq := range []bool{false, true} {
		t.Run(fmt.Sprintf("seq=%v", seq), func(t *testing.T) {
			f := newFakeKV(t)
			res := runFake(t, Config{Mode: ModePut, Endpoints: []string{f.url()}, Clients: 4, Conns: 2,
				KeySize: 6, ValueSize: 100, Keyspace: 50, Sequential: seq, Total: 300, Verify: true, Seed: 7})
			if res.Ops != 300 || res.Failed != 0 || len(res.Errors) != 0 {
				t.Fatalf("ops %d failed %d errors %v; want 300 0 none", res.Ops, res.Failed, res.Errors)
			}
			if res.Latency.Count() != 300 || res.Elapsed <= 0 || res.Throughput() <= 0 {
				t.Fatalf("latency count %d, elapsed %v, throughput %v", res.Latency.Count(), res.Elapsed, res.Throughput())
			}
			f.mu.Lock()
			written := len(f.mu.data)
			f.mu.Unlock()
			v := res.Verify
			if v == nil || !v.OK() || v.Checked != uint64(written) || len(v.Problems) != 0 {
				t.Fatalf("verify = %+v, want the %d keys written checked and no problem", v, written)
			}
			if val, ok := f.get("000004"); seq && (!ok || len(val) != 100) {
				t.Fatalf("key 000004 = %d bytes (present %v), want 100", len(val), ok)
			}
			if n, m := f.newConns.Load(), f.maxActive.Load(); n > 2 || m > 2 {
				t.Fatalf("2 conns: %d connections opened, %d active at once", n, m)
			}
		})
	}
}

func TestVerifyFindsLostAndStaleWrites(t *testing.T) {
	f := newFakeKV(t)
	f.lose = func(key string) bool {
		_, written := f.mu.data[key] // f.mu is held by serve
		return key == "0007" || (key == "0003" && written)
	}
	res := runFake(t, Config{Mode: ModePut, Endpoints: []string{f.url()}, Clients: 1, KeySize: 4,
		ValueSize: 16, Keyspace: 10, Sequential: true, Total: 40, Verify: true})
	v := res.Verify
	if v.Checked != 10 || v.Missing != 1 || v.Mismatched != 1 || v.ReadErrors != 0 || v.OK() {
		t.Fatalf("verify = %+v; want 10 checked, 1 missing, 1 mismatched", v)
	}
	want := []Problem{{Key: "0003", Kind: ProblemMismatch}, {Key: "0007", Kind: ProblemMissing}}
	if len(v.Problems) != 2 {
		t.Fatalf("problems = %+v, want %+v", v.Problems, want)
	}
	for i, p := range v.Problems {
		if p.Key != want[i].Key || p.Kind != want[i].Kind || p.Detail == "" {
			t.Fatalf("problem %d = %+v, want key %s kind %s and a detail", i, p, want[i].Key, want[i].Kind)
		}
	}
	var out bytes.Buffer
	if err := res.WriteText(&out); err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"1 missing, 1 mismatched", "missing    0007", "mismatch   0003"} {
		if !strings.Contains(out.String(), s) {
			t.Errorf("report lacks %q:\n%s", s, out.String())
		}
	}
}

// TestVerifyAcceptsWriteOfUnknownOutcome: a write answered 504 may still be
// applied; its value is then as good as the last acknowledged one.
func TestVerifyAcceptsWriteOfUnknownOutcome(t *testing.T) {
	f := newFakeKV(t)
	f.applied = func(n int64) int {
		if n == 3 {
			return http.StatusGatewayTimeout
		}
		return 0
	}
	// One worker, one key: requests 1 and 2 are acknowledged, request 3 is
	// applied but answered 504, so the key holds the value of request 3.
	res := runFake(t, Config{Mode: ModePut, Endpoints: []string{f.url()}, Clients: 1, Keyspace: 1,
		ValueSize: 32, Total: 3, Verify: true})
	if res.Ops != 2 || res.Errors["504"] != 1 || !strings.Contains(res.ErrorSamples["504"], "fake failure") {
		t.Fatalf("ops %d, errors %v %v; want 2 ops and one 504", res.Ops, res.Errors, res.ErrorSamples)
	}
	if v := res.Verify; v.Checked != 1 || !v.OK() {
		t.Fatalf("verify = %+v, want the key checked and accepted", v)
	}
}

func TestRunCountsErrors(t *testing.T) {
	f := newFakeKV(t)
	f.fail = func(n int64) int {
		if n%5 == 0 {
			return http.StatusServiceUnavailable
		}
		return 0
	}
	res := runFake(t, Config{Mode: ModeGet, Endpoints: []string{f.url()}, Clients: 2, Total: 100})
	if res.Ops+res.Failed != 100 || res.Errors["503"] != 20 || res.Failed != 20 {
		t.Fatalf("ops %d failed %d errors %v; want 80, 20, 20 x 503", res.Ops, res.Failed, res.Errors)
	}
	if res.Latency.Count() != res.Ops {
		t.Fatalf("latency holds %d values for %d successes", res.Latency.Count(), res.Ops)
	}
	if got := res.ErrorSamples["503"]; got != "HTTP 503: fake failure" {
		t.Fatalf("sample of 503 = %q", got)
	}

	// Nothing listens: every request fails with "refused".
	res = runFake(t, Config{Mode: ModePut, Endpoints: []string{closedURL(t)}, Clients: 2, Total: 10})
	if res.Ops != 0 || res.Errors[ErrClassRefused] != 10 {
		t.Fatalf("closed port: ops %d errors %v; want 10 refused", res.Ops, res.Errors)
	}
}

func TestRunGetLevelsAndPreload(t *testing.T) {
	for _, tc := range []struct {
		level, query string
	}{{"", ""}, {LevelDefault, ""}, {LevelStale, "level=stale"}} {
		f := newFakeKV(t)
		res := runFake(t, Config{Mode: ModeGet, Endpoints: []string{f.url()}, Clients: 3, Keyspace: 30,
			ValueSize: 10, Level: tc.level, Preload: true, Total: 60})
		if res.Ops != 60 || res.Failed != 0 {
			t.Fatalf("level %q: ops %d failed %d", tc.level, res.Ops, res.Failed)
		}
		f.mu.Lock()
		stored, queries := len(f.mu.data), f.mu.queries[tc.query]
		f.mu.Unlock()
		if stored != 30 || queries != 60 {
			t.Fatalf("level %q: %d keys preloaded (want 30), %d GETs with query %q (want 60)", tc.level, stored, queries, tc.query)
		}
		if f.requests.Load() != 90 {
			t.Fatalf("level %q: %d requests, want 30 preload + 60 measured", tc.level, f.requests.Load())
		}
	}
}

func TestRunDelete(t *testing.T) {
	f := newFakeKV(t)
	res := runFake(t, Config{Mode: ModeDelete, Endpoints: []string{f.url()}, Clients: 2, Keyspace: 20,
		Sequential: true, Preload: true, Total: 20})
	f.mu.Lock()
	left := len(f.mu.data)
	f.mu.Unlock()
	if res.Ops != 20 || res.Failed != 0 || left != 0 {
		t.Fatalf("ops %d failed %d (errors %v), %d keys left; want 20, 0, 0", res.Ops, res.Failed, res.ErrorSamples, left)
	}
}

func TestRunMixed(t *testing.T) {
	f := newFakeKV(t)
	res := runFake(t, Config{Mode: ModeMixed, Endpoints: []string{f.url()}, Clients: 2, ReadRatio: 0.5, Total: 200})
	r, w := res.Reads.Count(), res.Writes.Count()
	if r+w != 200 || r < 50 || w < 50 || res.Latency.Count() != 200 {
		t.Fatalf("reads %d writes %d all %d; want about 100 each, 200 in all", r, w, res.Latency.Count())
	}
	for _, ratio := range []float64{0, 1} {
		res := runFake(t, Config{Mode: ModeMixed, Endpoints: []string{f.url()}, Clients: 2, ReadRatio: ratio, Total: 20})
		if got := float64(res.Reads.Count()) / 20; got != ratio {
			t.Fatalf("read ratio %v gave %v reads", ratio, got)
		}
	}
}

func TestRunSpreadsConnsOverEndpoints(t *testing.T) {
	a, b := newFakeKV(t), newFakeKV(t)
	// A request takes some 10µs here, so a scheduling stall of a
	// millisecond or two (a GC, a late accept) can hand a hundred requests to
	// one connection: send enough that each endpoint's share stays visible.
	res := runFake(t, Config{Mode: ModePut, Endpoints: []string{a.url(), b.url()}, Clients: 8, Conns: 2, Total: 1000})
	if res.Ops != 1000 {
		t.Fatalf("ops %d, errors %v", res.Ops, res.Errors)
	}
	for name, f := range map[string]*fakeKV{"a": a, "b": b} {
		if f.requests.Load() < 10 || f.newConns.Load() != 1 {
			t.Fatalf("endpoint %s: %d requests on %d connections; want a share of them on one", name, f.requests.Load(), f.newConns.Load())
		}
	}
}

// TestRunRateChargesStalls checks the schedule with --rate: a server stall
// delays the requests due during it, and their latency counts from their
// due time (no coordinated omission).
func TestRunRateChargesStalls(t *testing.T) {
	f := newFakeKV(t)
	stall := make(chan struct{})
	f.fail = func(n int64) int {
		if n == 5 {
			time.Sleep(100 * time.Millisecond)
			close(stall)
		}
		return 0
	}
	res := runFake(t, Config{Mode: ModePut, Endpoints: []string{f.url()}, Clients: 1, Rate: 200, Total: 40})
	<-stall
	if res.Ops != 40 {
		t.Fatalf("ops %d, errors %v", res.Ops, res.Errors)
	}
	if min := 39 * time.Second / 200; res.Elapsed < min {
		t.Fatalf("40 requests at 200/s took %v, want at least %v", res.Elapsed, min)
	}
	// Requests 6 to 14 were due 5 to 45ms after the stall began: at least six
	// of them waited 50ms or more.
	if q := res.Latency.Quantile(1 - 6.0/40); q < 50*time.Millisecond {
		t.Fatalf("p85 = %v: the requests delayed by a 100ms stall were not charged for it", q)
	}
}

func TestRunDurationAndInterrupt(t *testing.T) {
	f := newFakeKV(t)
	// The run must end by its duration: the minute is a liveness bound, and
	// a run that ignored its duration would end by it, interrupted.
	r, err := New(Config{Mode: ModePut, Endpoints: []string{f.url()}, Clients: 2, Duration: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	live, stop := context.WithTimeout(t.Context(), time.Minute)
	defer stop()
	res, err := r.Run(live)
	if err != nil || res.Ops == 0 || res.Elapsed < 200*time.Millisecond || res.Interrupted {
		t.Fatalf("200ms run: err %v, ops %d, elapsed %v, interrupted %v", err, res.Ops, res.Elapsed, res.Interrupted)
	}

	r, err = New(Config{Mode: ModePut, Endpoints: []string{f.url()}, Clients: 2, Duration: time.Hour, Verify: true})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
	defer cancel()
	res, err = r.Run(ctx)
	if err != nil || !res.Interrupted || res.Ops == 0 || res.Failed != 0 || res.Verify != nil {
		t.Fatalf("interrupted run: err %v, result %+v; want interrupted, some ops, no failure, no verify", err, res)
	}
	if _, err := r.Run(t.Context()); !errors.Is(err, ErrReused) {
		t.Fatalf("second Run: %v, want ErrReused", err)
	}
}

func TestPreloadFails(t *testing.T) {
	f := newFakeKV(t)
	f.fail = func(int64) int { return http.StatusServiceUnavailable }
	r, err := New(Config{Mode: ModeGet, Endpoints: []string{f.url()}, Clients: 2, Keyspace: 2, Preload: true})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	_, err = r.Run(t.Context())
	if !errors.Is(err, ErrPreload) || !strings.Contains(err.Error(), "2 of 2 writes failed") || !strings.Contains(err.Error(), "HTTP 503") {
		t.Fatalf("Run = %v, want ErrPreload for 2 of 2 writes with the 503", err)
	}
	if n := f.requests.Load(); n != 2*attempts {
		t.Fatalf("%d requests, want %d tries of each of 2 keys", n, attempts)
	}
}

func TestDiscover(t *testing.T) {
	f := newFakeKV(t)
	urls, err := Discover(t.Context(), f.url()+"/", time.Second, nil)
	if want := []string{"http://127.0.0.1:1", f.url()}; err != nil || fmt.Sprint(urls) != fmt.Sprint(want) {
		t.Fatalf("Discover = %v, %v; want %v (sorted by id, deduplicated)", urls, err, want)
	}
	for _, tc := range []struct {
		name, body string
		status     int
		wantErr    string
	}{
		{"no client URL", `{"members":[{"id":1,"peerURLs":["http://p"]}]}`, 200, "member 1 publishes no client URL"},
		{"no member", `{"members":[]}`, 200, "lists no member"},
		{"not JSON", `<html>`, 200, "invalid character"},
		{"error status", "no leader\n", 503, "503 Service Unavailable: no leader"},
	} {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			w.WriteHeader(tc.status)
			fmt.Fprint(w, tc.body)
		}))
		// Each answers at once; the timeout only bounds a hang, and a
		// loaded machine can take a while to schedule the server.
		_, err := Discover(t.Context(), srv.URL, 5*time.Second, nil)
		srv.Close()
		if !errors.Is(err, ErrDiscover) || !strings.Contains(err.Error(), tc.wantErr) {
			t.Errorf("%s: Discover = %v, want ErrDiscover containing %q", tc.name, err, tc.wantErr)
		}
	}
	if _, err := Discover(t.Context(), closedURL(t), time.Second, nil); !errors.Is(err, ErrDiscover) {
		t.Errorf("closed port: Discover = %v, want ErrDiscover", err)
	}
}

func TestProgressFraction(t *testing.T) {
	for _, tc := range []struct {
		p    Progress
		want float64
	}{
		{Progress{}, 0},
		{Progress{Done: 25, Target: 100}, 0.25},
		{Progress{Done: 150, Target: 100}, 1},
		{Progress{Elapsed: time.Second, Duration: 4 * time.Second}, 0.25},
		{Progress{Elapsed: 5 * time.Second, Duration: 4 * time.Second}, 1},
		{Progress{Done: 10, Elapsed: time.Second}, 0},
	} {
		if got := tc.p.Fraction(); got != tc.want {
			t.Errorf("%+v.Fraction() = %v, want %v", tc.p, got, tc.want)
		}
	}
}

func TestReport(t *testing.T) {
	f := newFakeKV(t)
	f.fail = func(n int64) int {
		if n == 3 {
			return http.StatusServiceUnavailable
		}
		return 0
	}
	res := runFake(t, Config{Mode: ModeMixed, Endpoints: []string{f.url()}, Clients: 2, ReadRatio: 0.5, Total: 50, Rate: 10000})
	var js bytes.Buffer
	if err := res.WriteJSON(&js); err != nil {
		t.Fatal(err)
	}
	m := decodeJSON(t, js.Bytes())
	for _, k := range []string{"mode", "endpoints", "clients", "conns", "key_size", "value_size", "keyspace", "sequential",
		"level", "read_ratio", "rate", "seed", "duration_s", "ops", "failed", "throughput", "latency_ms",
		"read_latency_ms", "write_latency_ms", "errors"} {
		if _, ok := m[k]; !ok {
			t.Errorf("JSON lacks %q: %s", k, js.String())
		}
	}
	if _, ok := m["verify"]; ok {
		t.Errorf("JSON has verify without --verify: %s", js.String())
	}
	lat := m["latency_ms"].(map[string]any)
	for _, k := range []string{"min", "mean", "p50", "p90", "p99", "p99.9", "max"} {
		if v, ok := lat[k].(float64); !ok || v <= 0 {
			t.Errorf("latency_ms.%s = %v, want a positive number", k, lat[k])
		}
	}
	if errs := m["errors"].(map[string]any); errs["503"] != float64(1) {
		t.Errorf("errors = %v, want one 503", errs)
	}

	var txt bytes.Buffer
	if err := res.WriteText(&txt); err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"mixed: 2 clients on 2 conns to 1 endpoint", "throughput", "p99.9", "\n    get ", "\n    put ", "get, ",
		"level default, 50% of requests", "503", "HTTP 503: fake failure", "49 ok, 1 failed"} {
		if !strings.Contains(txt.String(), s) {
			t.Errorf("text report lacks %q:\n%s", s, txt.String())
		}
	}

	// An empty put run still gives a complete JSON line, with an empty errors map.
	empty := &Result{Config: Config{Mode: ModePut}.withDefaults()}
	js.Reset()
	if err := empty.WriteJSON(&js); err != nil {
		t.Fatal(err)
	}
	if m := decodeJSON(t, js.Bytes()); fmt.Sprint(m["errors"]) != "map[]" || m["level"] != nil {
		t.Errorf("empty result JSON: %s", js.String())
	}
}

// closedURL returns the URL of a local port nothing listens on.
func closedURL(t *testing.T) string {
	t.Helper()
	return fmt.Sprintf("http://127.0.0.1:%d", testutil.FreePorts(t, 1)[0])
}
