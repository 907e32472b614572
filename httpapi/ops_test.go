package httpapi

import (
	"errors"
	"fmt"
	"net/http"
	"os"
	"reflect"
	"strings"
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
)

func TestHealth(t *testing.T) {
	tests := []struct {
		name       string
		health     error
		method     string
		wantCode   int
		wantBody   string
		wantHeader map[string]string
	}{
		{"healthy", nil, "GET", 200, `{"health":"true","reason":""}` + "\n",
			map[string]string{"Content-Type": "application/json", "Retry-After": ""}},
		{"no leader", errors.New("raftnode: no leader"), "GET", 503, `{"health":"false","reason":"raftnode: no leader"}` + "\n",
			map[string]string{"Content-Type": "application/json", "Retry-After": "1"}},
		{"multi-line reason stays one line", errors.New("behind\nby 9000 entries"), "GET", 503,
			`{"health":"false","reason":"behind\nby 9000 entries"}` + "\n", nil},
		{"head healthy", nil, "HEAD", 200, "", nil},
		{"head unhealthy", errors.New("x"), "HEAD", 503, "", nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			core, logs := observer.New(zapcore.DebugLevel)
			e := newEnv(t, nil, func(c *Config) { c.Logger = zap.New(core) })
			e.cluster.mu.health = tc.health
			rec := e.do(t, tc.method, "/health", "")
			if rec.Code != tc.wantCode || rec.Body.String() != tc.wantBody {
				t.Errorf("code %d body %q, want %d %q", rec.Code, rec.Body, tc.wantCode, tc.wantBody)
			}
			if strings.Count(rec.Body.String(), "\n") > 1 {
				t.Errorf("body %q is more than one line", rec.Body)
			}
			for k, v := range tc.wantHeader {
				if got := rec.Header().Get(k); got != v {
					t.Errorf("header %s = %q, want %q", k, got, v)
				}
			}
			if n := logs.Len(); n != 0 {
				t.Errorf("health answer logged %d entries: %v", n, logs.All())
			}
		})
	}
}

func TestStatusProgress(t *testing.T) {
	e := newEnv(t, nil, nil)
	e.cluster.mu.progress = map[string]Progress{
		"3": {Match: 0, Next: 1, State: "probe"},
		"2": {Match: 10, Next: 11, State: "replicate"},
		"4": {Match: 5, Next: 6, State: "snapshot"},
	}
	rec := e.do(t, "GET", "/status", "")
	want := `{"id":1,"leader":1,"term":2,"commitIndex":7,"appliedIndex":6,"snapshotIndex":3,` +
		`"members":[{"id":1,"peerURLs":["http://127.0.0.1:12379"],"isLearner":false}],"clusterLevel":1,"dataBytes":0,"quotaBytes":0,` +
		`"progress":{"2":{"match":10,"next":11,"state":"replicate"},"3":{"match":0,"next":1,"state":"probe"},` +
		`"4":{"match":5,"next":6,"state":"snapshot"}}}` + "\n"
	if rec.Code != 200 || rec.Body.String() != want {
		t.Errorf("code %d body\n%s\nwant\n%s", rec.Code, rec.Body, want)
	}
}

func TestMetrics(t *testing.T) {
	metrics := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4")
		fmt.Fprintf(w, "raftkv_up 1\n")
	})
	tests := []struct {
		name     string
		metrics  http.Handler
		method   string
		wantCode int
		wantBody string
	}{
		{"served", metrics, "GET", 200, "raftkv_up 1\n"},
		{"head served", metrics, "HEAD", 200, ""},
		{"nil", nil, "GET", 404, "metrics are not enabled\n"},
		{"nil any method", nil, "POST", 404, "metrics are not enabled\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, nil, func(c *Config) { c.Metrics = tc.metrics })
			rec := e.do(t, tc.method, "/metrics", "")
			if rec.Code != tc.wantCode {
				t.Fatalf("code = %d, want %d; body %q", rec.Code, tc.wantCode, rec.Body)
			}
			// HEAD bodies are dropped by net/http, not by the recorder.
			if tc.method != "HEAD" && rec.Body.String() != tc.wantBody {
				t.Errorf("body %q, want %q", rec.Body, tc.wantBody)
			}
		})
	}
}

func TestPprof(t *testing.T) {
	pc := fmt.Sprintf("%#x", reflect.ValueOf(TestPprof).Pointer())
	tests := []struct {
		name     string
		method   string
		target   string
		body     string
		wantCode int
		wantIn   string
	}{
		{"index", "GET", "/debug/pprof/", "", 200, "goroutine"},
		{"cmdline", "GET", "/debug/pprof/cmdline", "", 200, os.Args[0]},
		{"named profile", "GET", "/debug/pprof/goroutine?debug=1", "", 200, "TestPprof"},
		{"heap", "GET", "/debug/pprof/heap?debug=1", "", 200, "heap profile"},
		{"symbol", "GET", "/debug/pprof/symbol", "", 200, "num_symbols"},
		{"symbol lookup", "POST", "/debug/pprof/symbol", pc, 200, "httpapi.TestPprof"},
		{"symbol body too large", "POST", "/debug/pprof/symbol", strings.Repeat("0x1+", 20000), 200, "request body too large"},
		{"trace", "GET", "/debug/pprof/trace?seconds=0.01", "", 200, ""},
		{"cpu profile", "GET", "/debug/pprof/profile?seconds=1", "", 200, ""},
		{"unknown profile", "GET", "/debug/pprof/nope", "", 404, "Unknown profile"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.target == "/debug/pprof/profile?seconds=1" && testing.Short() {
				t.Skip("takes a second")
			}
			on := newEnv(t, nil, func(c *Config) { c.Pprof = true })
			rec := on.serveOther(t, tc.method, tc.target, tc.body)
			if rec.Code != tc.wantCode {
				t.Fatalf("Pprof on: code = %d, want %d; body %.200q", rec.Code, tc.wantCode, rec.Body)
			}
			if !strings.Contains(rec.Body.String(), tc.wantIn) {
				t.Errorf("Pprof on: body %.300q does not contain %q", rec.Body, tc.wantIn)
			}

			off := newEnv(t, nil, nil)
			rec = off.do(t, tc.method, tc.target, tc.body)
			if rec.Code != 404 || !strings.Contains(rec.Body.String(), "pprof is not enabled") {
				t.Errorf("Pprof off: code %d body %q, want 404 pprof is not enabled", rec.Code, rec.Body)
			}
		})
	}
}
