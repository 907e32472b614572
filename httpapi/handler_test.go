package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"
)

func TestRouting(t *testing.T) {
	seed := map[string]string{"a/b/c": "abc", "x/../y": "dots", "/a": "slash", "k": "v", "status": "s"}
	tests := []struct {
		name       string
		method     string
		target     string
		body       string
		wantCode   int
		wantBody   string // exact, when set
		wantIn     string // substring, when set
		wantHeader map[string]string
		wantStore  map[string]string // store contents after, when set
	}{
		{name: "get raw", method: "GET", target: "/k", wantCode: 200, wantBody: "v",
			wantHeader: map[string]string{"Content-Type": "application/octet-stream", "Content-Length": "1"}},
		{name: "get absent", method: "GET", target: "/nope", wantCode: 404},
		{name: "get slashes", method: "GET", target: "/a/b/c", wantCode: 200, wantBody: "abc"},
		{name: "get dot-dot not cleaned", method: "GET", target: "/x/../y", wantCode: 200, wantBody: "dots"},
		{name: "get double slash not cleaned", method: "GET", target: "//a", wantCode: 200, wantBody: "slash"},
		{name: "get percent-encoded slash", method: "GET", target: "/a%2Fb%2Fc", wantCode: 200, wantBody: "abc"},
		{name: "put", method: "PUT", target: "/new", body: "val", wantCode: 204,
			wantHeader: map[string]string{"X-Raft-Index": "11"}, wantStore: with(seed, "new", "val")},
		{name: "put slashes", method: "PUT", target: "/p/q/r", body: "1", wantCode: 204, wantStore: with(seed, "p/q/r", "1")},
		{name: "put dot-dot", method: "PUT", target: "/p/../q", body: "1", wantCode: 204, wantStore: with(seed, "p/../q", "1")},
		{name: "put encoded dots", method: "PUT", target: "/%2e%2e/z", body: "1", wantCode: 204, wantStore: with(seed, "../z", "1")},
		{name: "put encoded space and slash", method: "PUT", target: "/a%2Fb%20c+d", body: "1", wantCode: 204, wantStore: with(seed, "a/b c+d", "1")},
		{name: "put empty value", method: "PUT", target: "/e", wantCode: 204, wantStore: with(seed, "e", "")},
		{name: "put numeric key", method: "PUT", target: "/4", body: "x", wantCode: 204, wantStore: with(seed, "4", "x")},
		{name: "put key under reserved-looking name", method: "PUT", target: "/status/x", body: "1", wantCode: 204, wantStore: with(seed, "status/x", "1")},
		{name: "get empty key", method: "GET", target: "/", wantCode: 400, wantIn: "the key is empty"},
		{name: "put empty key", method: "PUT", target: "/", body: "x", wantCode: 400, wantIn: "the key is empty", wantStore: seed},

		{name: "range delete prefix", method: "DELETE", target: "/key?prefix=a/", wantCode: 200, wantBody: `{"index":11,"deleted":1}` + "\n",
			wantHeader: map[string]string{"X-Raft-Index": "11", "Content-Type": "application/json"}, wantStore: without(seed, "a/b/c")},
		{name: "range delete start end", method: "DELETE", target: "/key?start=k&end=t", wantCode: 200, wantIn: `"deleted":2`,
			wantStore: without(without(seed, "k"), "status")},
		{name: "range delete from start", method: "DELETE", target: "/key?start=%00", wantCode: 200, wantIn: `"deleted":5`, wantStore: map[string]string{}},
		{name: "range delete none", method: "DELETE", target: "/key?prefix=zz", wantCode: 200, wantIn: `"deleted":0`, wantStore: seed},
		{name: "range delete unnamed", method: "DELETE", target: "/key", wantCode: 400, wantIn: "must name it", wantStore: seed},
		{name: "range delete empty prefix", method: "DELETE", target: "/key?prefix=", wantCode: 400, wantIn: "must name it", wantStore: seed},
		{name: "range delete prefix and start", method: "DELETE", target: "/key?prefix=a&start=b", wantCode: 400, wantIn: "not both", wantStore: seed},
		{name: "range delete end before start", method: "DELETE", target: "/key?start=b&end=a", wantCode: 400, wantIn: "not after", wantStore: seed},
		{name: "range delete bad config version", method: "DELETE", target: "/key?prefix=a&config_version=x", wantCode: 400, wantIn: "config_version", wantStore: seed},
		{name: "range delete with a limit it would ignore", method: "DELETE", target: "/key?prefix=a/&limit=1", wantCode: 400, wantIn: `not "limit"`, wantStore: seed},
		{name: "key get json", method: "GET", target: "/key/a/b/c", wantCode: 200, wantBody: `{"a/b/c":"abc"}`,
			wantHeader: map[string]string{"Content-Type": "application/json"}},
		{name: "key get reserved name", method: "GET", target: "/key/status", wantCode: 200, wantBody: `{"status":"s"}`},
		{name: "key get absent", method: "GET", target: "/key/nope", wantCode: 404},
		{name: "key put", method: "PUT", target: "/key/kk", body: "vv", wantCode: 204,
			wantHeader: map[string]string{"X-Raft-Index": "11"}, wantStore: with(seed, "kk", "vv")},
		{name: "key delete", method: "DELETE", target: "/key/k", wantCode: 204,
			wantHeader: map[string]string{"X-Raft-Index": "11"}, wantStore: without(seed, "k")},
		{name: "key delete slashes", method: "DELETE", target: "/key/a/b/c", wantCode: 204, wantStore: without(seed, "a/b/c")},
		{name: "key delete absent", method: "DELETE", target: "/key/nope", wantCode: 204, wantStore: seed},
		{name: "key delete empty", method: "DELETE", target: "/key/", wantCode: 400, wantIn: "the key is empty", wantStore: seed},
		{name: "key get empty", method: "GET", target: "/key/", wantCode: 400},
		{name: "key put empty", method: "PUT", target: "/key/", body: "x", wantCode: 400, wantStore: seed},

		{name: "status", method: "GET", target: "/status", wantCode: 200,
			wantBody: `{"id":1,"leader":1,"term":2,"commitIndex":7,"appliedIndex":6,"snapshotIndex":3,` +
				`"members":[{"id":1,"peerURLs":["http://127.0.0.1:12379"],"isLearner":false}],"clusterLevel":1,"dataBytes":0,"quotaBytes":0}` + "\n",
			wantHeader: map[string]string{"Content-Type": "application/json"}},
		{name: "key post", method: "POST", target: "/key", body: `{"a":"b"}`, wantCode: 204,
			wantHeader: map[string]string{"X-Raft-Index": "11"}, wantStore: with(seed, "a", "b")},
		{name: "health", method: "GET", target: "/health", wantCode: 200, wantBody: `{"health":"true","reason":""}` + "\n"},
		{name: "metrics disabled", method: "GET", target: "/metrics", wantCode: 404, wantIn: "metrics are not enabled"},
		{name: "metrics disabled not stored", method: "PUT", target: "/metrics", body: "x", wantCode: 404,
			wantIn: "metrics are not enabled", wantStore: seed},
		{name: "pprof disabled", method: "GET", target: "/debug/pprof/", wantCode: 404, wantIn: "pprof is not enabled"},
		{name: "pprof disabled cmdline", method: "GET", target: "/debug/pprof/cmdline", wantCode: 404, wantIn: "pprof is not enabled"},
		{name: "reserved debug", method: "GET", target: "/debug", wantCode: 404, wantIn: "reserved"},
		{name: "reserved debug other", method: "PUT", target: "/debug/vars", body: "x", wantCode: 404, wantIn: "reserved", wantStore: seed},
		{name: "reserved pprof without slash", method: "GET", target: "/debug/pprof", wantCode: 404, wantIn: "reserved"},
		{name: "path without leading slash", method: "GET", target: "*", wantCode: 400, wantIn: "must start with /"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, seed, nil)
			rec := e.do(t, tc.method, tc.target, tc.body)
			if rec.Code != tc.wantCode {
				t.Fatalf("%s %s: code = %d, want %d; body %q", tc.method, tc.target, rec.Code, tc.wantCode, rec.Body)
			}
			if tc.wantBody != "" && rec.Body.String() != tc.wantBody {
				t.Errorf("body = %q, want %q", rec.Body, tc.wantBody)
			}
			if !strings.Contains(rec.Body.String(), tc.wantIn) {
				t.Errorf("body %q does not contain %q", rec.Body, tc.wantIn)
			}
			for k, v := range tc.wantHeader {
				if got := rec.Header().Get(k); got != v {
					t.Errorf("header %s = %q, want %q", k, got, v)
				}
			}
			if tc.wantStore != nil {
				if got := e.store.snapshot(); !maps.Equal(got, tc.wantStore) {
					t.Errorf("store = %q, want %q", got, tc.wantStore)
				}
			}
		})
	}
}

func with(m map[string]string, k, v string) map[string]string {
	m = maps.Clone(m)
	m[k] = v
	return m
}

func without(m map[string]string, k string) map[string]string {
	m = maps.Clone(m)
	delete(m, k)
	return m
}

func TestHead(t *testing.T) {
	e := newEnv(t, map[string]string{"k": "value"}, nil)
	for _, target := range []string{"/k", "/key/k", "/status", "/health", "/k?level=stale", "/key/k?min_index=3"} {
		rec := e.do(t, "HEAD", target, "")
		if rec.Code != 200 || rec.Body.Len() != 0 || rec.Header().Get("Content-Length") == "" {
			t.Errorf("HEAD %s: code %d, body %q, Content-Length %q; want 200, empty body, a length",
				target, rec.Code, rec.Body, rec.Header().Get("Content-Length"))
		}
	}
	if rec := e.do(t, "HEAD", "/nope", ""); rec.Code != 404 {
		t.Errorf("HEAD absent: code %d, want 404", rec.Code)
	}
}

// TestRealServer goes through a real listener and client, so nothing on the
// way may clean paths or redirect.
func TestRealServer(t *testing.T) {
	e := newEnv(t, nil, nil)
	srv := httptest.NewServer(e.h)
	t.Cleanup(srv.Close)
	client := srv.Client()
	client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }

	var binary []byte
	for i := range 256 {
		binary = append(binary, byte(i))
	}
	binaryKey := "bin\x00\xff/\x7f key"
	tests := []struct {
		name, path, key string
		value           []byte
	}{
		{"slashes", "/a/b/c", "a/b/c", []byte("abc")},
		{"dot-dot", "/x/../y", "x/../y", []byte("dots")},
		{"dot", "/x/./y", "x/./y", []byte("dot")},
		{"double slash", "//a//b", "/a//b", []byte("slashes")},
		{"binary value and key", "/" + url.PathEscape(binaryKey), binaryKey, binary},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			do := func(method string, body []byte) (*http.Response, []byte) {
				req, err := http.NewRequest(method, srv.URL+tc.path, bytes.NewReader(body))
				if err != nil {
					t.Fatal(err)
				}
				resp, err := client.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				defer resp.Body.Close()
				return resp, []byte(readAll(t, resp.Body))
			}
			if resp, body := do("PUT", tc.value); resp.StatusCode != 204 {
				t.Fatalf("PUT %s: %s %q", tc.path, resp.Status, body)
			}
			if got := e.store.snapshot()[tc.key]; got != string(tc.value) {
				t.Errorf("stored under %q: %q, want %q", tc.key, got, tc.value)
			}
			resp, body := do("GET", nil)
			if resp.StatusCode != 200 || !bytes.Equal(body, tc.value) {
				t.Errorf("GET %s: %s %q, want 200 %q", tc.path, resp.Status, body, tc.value)
			}
		})
	}
}

func TestLimits(t *testing.T) {
	tests := []struct {
		name     string
		edit     func(*Config)
		method   string
		target   string
		body     string
		wantCode int
	}{
		{"value at default limit", nil, "PUT", "/k", strings.Repeat("v", 1572864), 204},
		{"value 1 byte over default limit", nil, "PUT", "/k", strings.Repeat("v", 1572865), 413},
		{"value at set limit", func(c *Config) { c.MaxValueBytes = 10 }, "PUT", "/k", "0123456789", 204},
		{"value over set limit", func(c *Config) { c.MaxValueBytes = 10 }, "PUT", "/k", "0123456789A", 413},
		{"value over limit via /key/", func(c *Config) { c.MaxValueBytes = 10 }, "PUT", "/key/k", "0123456789A", 413},
		{"key at default limit", nil, "PUT", "/" + strings.Repeat("k", 4096), "v", 204},
		{"key 1 byte over default limit", nil, "PUT", "/" + strings.Repeat("k", 4097), "v", 400},
		{"long key on GET", nil, "GET", "/" + strings.Repeat("k", 4097), "", 400},
		{"long key on DELETE /key/", nil, "DELETE", "/key/" + strings.Repeat("k", 4097), "", 400},
		{"key limit counts decoded bytes", func(c *Config) { c.MaxKeyBytes = 3 }, "PUT", "/%61%62%63", "v", 204},
		{"key over set limit", func(c *Config) { c.MaxKeyBytes = 3 }, "PUT", "/abcd", "v", 400},
		{"peer URL body too large", nil, "POST", "/4", "http://127.0.0.1:42379" + strings.Repeat(" ", 4096), 413},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, nil, tc.edit)
			rec := e.do(t, tc.method, tc.target, tc.body)
			if rec.Code != tc.wantCode {
				t.Fatalf("code = %d, want %d; body %q", rec.Code, tc.wantCode, rec.Body)
			}
			if stored := len(e.store.snapshot()) > 0; stored != (tc.method == "PUT" && tc.wantCode == 204) {
				t.Errorf("stored = %v after %d", stored, rec.Code)
			}
		})
	}
}

type failingReader struct{}

func (failingReader) Read([]byte) (int, error) { return 0, errors.New("connection reset") }

func TestBodyReadError(t *testing.T) {
	e := newEnv(t, nil, nil)
	rec := e.serve(t, httptest.NewRequest("PUT", "/k", failingReader{}))
	if rec.Code != 400 || !strings.Contains(rec.Body.String(), "the request body could not be read in full") {
		t.Errorf("code %d, body %q; want 400 saying the body could not be read", rec.Code, rec.Body)
	}
	if len(e.store.snapshot()) != 0 {
		t.Errorf("store written despite the read error")
	}
}

func TestMembership(t *testing.T) {
	const badID = "POST /<id> adds a raft member, and <id> must be a positive integer"
	tests := []struct {
		name        string
		method      string
		target      string
		body        string
		wantCode    int
		wantIn      string
		wantMembers map[uint64]string // after the request, when set
	}{
		{"add", "POST", "/4", "http://127.0.0.1:42379", 204, "",
			map[uint64]string{1: "http://127.0.0.1:12379", 4: "http://127.0.0.1:42379"}},
		{"add trims and drops trailing slash", "POST", "/4", " http://Node4.example:42379/\n", 204, "",
			map[uint64]string{1: "http://127.0.0.1:12379", 4: "http://node4.example:42379"}},
		{"add ipv6", "POST", "/4", "http://[::1]:42379", 204, "",
			map[uint64]string{1: "http://127.0.0.1:12379", 4: "http://[::1]:42379"}},
		{"add https", "POST", "/4", "HTTPS://127.0.0.1:42379", 204, "",
			map[uint64]string{1: "http://127.0.0.1:12379", 4: "https://127.0.0.1:42379"}},
		{"add max id", "POST", "/18446744073709551615", "http://h:1", 204, "", nil},
		{"add existing id", "POST", "/1", "http://127.0.0.1:42379", 409, "conflict", nil},
		{"id zero", "POST", "/0", "http://h:1", 400, badID, nil},
		{"id negative", "POST", "/-1", "http://h:1", 400, badID, nil},
		{"id plus sign", "POST", "/+1", "http://h:1", 400, badID, nil},
		{"id not a number", "POST", "/abc", "http://h:1", 400, badID, nil},
		{"id fraction", "POST", "/1.5", "http://h:1", 400, badID, nil},
		{"id huge", "POST", "/18446744073709551616", "http://h:1", 400, badID, nil},
		{"id missing", "POST", "/", "http://h:1", 400, badID, nil},
		{"url empty", "POST", "/4", "  \n", 400, "peer URL", nil},
		{"url no scheme", "POST", "/4", "127.0.0.1:42379", 400, "http://", nil},
		{"url no scheme hostname", "POST", "/4", "localhost:42379", 400, "http://", nil},
		{"url ftp", "POST", "/4", "ftp://127.0.0.1:42379", 400, "http://", nil},
		{"url no port", "POST", "/4", "http://127.0.0.1", 400, "no port", nil},
		{"url empty port", "POST", "/4", "http://127.0.0.1:", 400, "no port", nil},
		{"url port zero", "POST", "/4", "http://127.0.0.1:0", 400, "port", nil},
		{"url port too big", "POST", "/4", "http://127.0.0.1:65536", 400, "port", nil},
		{"url no host", "POST", "/4", "http://:42379", 400, "no host", nil},
		{"url path", "POST", "/4", "http://127.0.0.1:42379/raft", 400, "path", nil},
		{"url query", "POST", "/4", "http://127.0.0.1:42379?x=1", 400, "query", nil},
		{"url user", "POST", "/4", "http://u:p@127.0.0.1:42379", 400, "user", nil},
		{"url garbage", "POST", "/4", "%%% not a url", 400, "peer URL", nil},
		{"url two lines", "POST", "/4", "http://a:1\nhttp://b:2", 400, "peer URL", nil},
		// rafthttp panics on a host:port it cannot split; url.Parse accepts these.
		{"url host with bracket", "POST", "/4", "http://a]b:1", 400, "host and port do not split", nil},
		{"url host only bracket", "POST", "/4", "http://a]:1", 400, "host and port do not split", nil},
		{"url host not a name", "POST", "/4", "http://a<b:1", 400, "IP address or a DNS name", nil},
		{"url host with quote", "POST", "/4", `http://a"b:1`, 400, "IP address or a DNS name", nil},
		{"url host empty label", "POST", "/4", "http://a..b:1", 400, "IP address or a DNS name", nil},
		{"url ipv6 zone", "POST", "/4", "http://[fe80::1%25eth0]:1", 400, "zone", nil},
		{"url canonical port", "POST", "/4", "http://127.0.0.1:042379", 204, "",
			map[uint64]string{1: "http://127.0.0.1:12379", 4: "http://127.0.0.1:42379"}},
		{"url canonical case", "POST", "/4", "HTTP://Node4.Example:1", 204, "",
			map[uint64]string{1: "http://127.0.0.1:12379", 4: "http://node4.example:1"}},
		{"url canonical ipv6", "POST", "/4", "http://[0:0::1]:1", 204, "",
			map[uint64]string{1: "http://127.0.0.1:12379", 4: "http://[::1]:1"}},
		{"remove", "DELETE", "/1", "", 204, "", map[uint64]string{}},
		{"remove absent", "DELETE", "/9", "", 404, "no such member", nil},
		{"remove zero", "DELETE", "/0", "", 400, "DELETE /key/<key>", nil},
		{"remove non-numeric", "DELETE", "/my-key", "", 400, "DELETE /key/<key>", nil},
		{"remove with slashes", "DELETE", "/a/b", "", 400, "DELETE /key/<key>", nil},
		{"remove empty", "DELETE", "/", "", 400, "DELETE /key/<key>", nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, nil, nil)
			before := e.cluster.snapshot()
			rec := e.do(t, tc.method, tc.target, tc.body)
			if rec.Code != tc.wantCode {
				t.Fatalf("code = %d, want %d; body %q", rec.Code, tc.wantCode, rec.Body)
			}
			if !strings.Contains(rec.Body.String(), tc.wantIn) {
				t.Errorf("body %q does not contain %q", rec.Body, tc.wantIn)
			}
			got := e.cluster.snapshot()
			switch {
			case tc.wantMembers != nil && !maps.Equal(got, tc.wantMembers):
				t.Errorf("members = %v, want %v", got, tc.wantMembers)
			case tc.wantCode >= 400 && !maps.Equal(got, before):
				t.Errorf("members changed by a failed request: %v", got)
			}
			if len(e.store.snapshot()) != 0 {
				t.Errorf("membership request touched the store")
			}
		})
	}
}

func TestMethodNotAllowed(t *testing.T) {
	tests := []struct{ method, target, wantAllow string }{
		{"PATCH", "/k", "GET, HEAD, PUT, POST, DELETE"},
		{"OPTIONS", "/k", "GET, HEAD, PUT, POST, DELETE"},
		{"TRACE", "/a/b", "GET, HEAD, PUT, POST, DELETE"},
		{"PATCH", "/", "GET, HEAD, PUT, POST, DELETE"},
		{"POST", "/key/k", "GET, HEAD, PUT, DELETE"},
		{"PATCH", "/key/k", "GET, HEAD, PUT, DELETE"},
		{"PUT", "/status", "GET, HEAD"},
		{"DELETE", "/status", "GET, HEAD"},
		{"POST", "/health", "GET, HEAD"},
		{"PUT", "/health", "GET, HEAD"},
		{"POST", "/metrics", "GET, HEAD"},
		{"PUT", "/key", "GET, HEAD, POST, DELETE"},
		{"PATCH", "/key", "GET, HEAD, POST, DELETE"},
		{"GET", "/join", "POST"},
		{"PUT", "/join", "POST"},
		{"POST", "/debug/pprof/", "GET, HEAD"},
		{"DELETE", "/debug/pprof/heap", "GET, HEAD"},
		{"PUT", "/debug/pprof/symbol", "GET, HEAD, POST"},
	}
	for _, tc := range tests {
		t.Run(tc.method+" "+tc.target, func(t *testing.T) {
			e := newEnv(t, map[string]string{"k": "v"}, func(c *Config) {
				c.Metrics = http.NotFoundHandler() // must not be reached
				c.Pprof = true
			})
			before := e.cluster.snapshot()
			rec := e.do(t, tc.method, tc.target, "x")
			if rec.Code != 405 {
				t.Fatalf("code = %d, want 405", rec.Code)
			}
			if got := rec.Header().Get("Allow"); got != tc.wantAllow {
				t.Errorf("Allow = %q, want %q", got, tc.wantAllow)
			}
			if got := e.store.snapshot(); !maps.Equal(got, map[string]string{"k": "v"}) {
				t.Errorf("store changed: %v", got)
			}
			if got := e.cluster.snapshot(); !maps.Equal(got, before) {
				t.Errorf("members changed: %v", got)
			}
		})
	}
}

func TestRequestDeadline(t *testing.T) {
	const timeout = 20 * time.Millisecond
	tests := []struct {
		method, target, body string
		write                bool
	}{
		{"GET", "/k", "", false},
		{"GET", "/key/k", "", false},
		{"PUT", "/k", "v", true},
		{"DELETE", "/key/k", "", true},
		{"POST", "/4", "http://127.0.0.1:42379", true},
		{"DELETE", "/1", "", true},
		{"GET", "/k?min_index=9", "", false},
		{"POST", "/key", `{"k":"v"}`, true},
		{"POST", "/join", `{"id":4,"raftAddr":"127.0.0.1:42379"}`, true},
	}
	for _, tc := range tests {
		t.Run(tc.method+" "+tc.target, func(t *testing.T) {
			var deadline, called time.Time
			var hasDeadline bool
			record := func(ctx context.Context) error {
				called = time.Now()
				deadline, hasDeadline = ctx.Deadline()
				return blockUntilDone(ctx)
			}
			e := newEnv(t, nil, func(c *Config) { c.RequestTimeout = timeout })
			e.store.hook, e.cluster.hook = record, record

			start := time.Now()
			rec := e.do(t, tc.method, tc.target, tc.body)
			if rec.Code != 504 {
				t.Fatalf("code = %d, want 504; body %q", rec.Code, rec.Body)
			}
			// The deadline was set, timeout ahead, between start and the call.
			if !hasDeadline || deadline.Sub(start) < timeout || deadline.Sub(called) > timeout {
				t.Errorf("call deadline %v after start, %v after the call (set %v), want %v after a moment in between",
					deadline.Sub(start), deadline.Sub(called), hasDeadline, timeout)
			}
			want := "request timed out"
			if tc.write {
				want = "the write may or may not have been applied: its outcome was not known in time"
			}
			if !strings.Contains(rec.Body.String(), want) {
				t.Errorf("body %q does not contain %q", rec.Body, want)
			}
		})
	}
}

func TestClientCanceled(t *testing.T) {
	e := newEnv(t, map[string]string{"k": "v"}, nil)
	e.store.hook = func(ctx context.Context) error { return ctx.Err() }
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	rec := e.serve(t, httptest.NewRequest("GET", "/k", nil).WithContext(ctx))
	if rec.Code != 503 || rec.Header().Get("Retry-After") != "1" {
		t.Errorf("code %d, Retry-After %q; want 503, 1", rec.Code, rec.Header().Get("Retry-After"))
	}
}

func TestStatusEmptyMembers(t *testing.T) {
	e := newEnv(t, nil, nil)
	e.cluster.mu.members = map[uint64]string{}
	rec := e.do(t, "GET", "/status", "")
	var got map[string]any
	if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
		t.Fatalf("decode %q: %v", rec.Body, err)
	}
	if m, ok := got["members"].([]any); !ok || len(m) != 0 {
		t.Errorf("members = %#v, want []", got["members"])
	}
}

func TestConfig(t *testing.T) {
	store, cluster := newFakeStore(nil), newFakeCluster()
	tests := []struct {
		name    string
		cfg     Config
		wantErr bool
	}{
		{"minimal", Config{Store: store, Cluster: cluster}, false},
		{"no store", Config{Cluster: cluster}, true},
		{"no cluster", Config{Store: store}, true},
		{"negative timeout", Config{Store: store, Cluster: cluster, RequestTimeout: -1}, true},
		{"negative value limit", Config{Store: store, Cluster: cluster, MaxValueBytes: -1}, true},
		{"negative key limit", Config{Store: store, Cluster: cluster, MaxKeyBytes: -1}, true},
		{"negative in-flight limit", Config{Store: store, Cluster: cluster, MaxInFlight: -1}, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.cfg.Validate()
			if (err != nil) != tc.wantErr {
				t.Fatalf("Validate() = %v, want error %v", err, tc.wantErr)
			}
			h, newErr := New(tc.cfg)
			if tc.wantErr {
				if !errors.Is(newErr, ErrInvalidConfig) || h != nil {
					t.Errorf("New() = %v, %v; want nil, ErrInvalidConfig", h, newErr)
				}
				return
			}
			cfg := h.(*handler).cfg
			if cfg.Logger == nil || cfg.RequestTimeout != DefaultRequestTimeout ||
				cfg.MaxValueBytes != DefaultMaxValueBytes || cfg.MaxKeyBytes != DefaultMaxKeyBytes ||
				cfg.MaxInFlight != DefaultMaxInFlight {
				t.Errorf("defaults not applied: %+v", cfg)
			}
		})
	}
}

func TestDebugState(t *testing.T) {
	h, err := New(Config{Store: newFakeStore(map[string]string{"a": "1", "b": "2"}), Cluster: newFakeCluster()})
	if err != nil {
		t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/debug/state", nil))
	if rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), `"keys":2`) || !strings.Contains(rec.Body.String(), `"appliedIndex":10`) {
		t.Fatalf("GET /debug/state = %d %s", rec.Code, rec.Body)
	}
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodPut, "/debug/state", nil))
	if rec.Code != http.StatusMethodNotAllowed {
		t.Fatalf("PUT /debug/state = %d", rec.Code)
	}
}

// TestWritesRefuseOptionsTheyWouldIgnore: a conditional header on POST
// /key or on a range delete, and a ttl on POST /key, are refused with a
// 400 that says where they belong, and nothing is written: the writes
// would otherwise go through unconditionally, or without the TTL.
func TestWritesRefuseOptionsTheyWouldIgnore(t *testing.T) {
	seed := map[string]string{"a/1": "x", "c1": "old"}
	for _, tc := range []struct {
		method, target, body, header, value, wantIn string
	}{
		{"POST", "/key", `{"c1":"new"}`, "If-Match", `"1"`, "POST /key writes several keys unconditionally"},
		{"POST", "/key", `{"c1":"new"}`, "If-None-Match", "*", "POST /key writes several keys unconditionally"},
		{"POST", "/key?ttl=1", `{"c1":"new"}`, "", "", "POST /key takes no ttl"},
		{"DELETE", "/key?prefix=a/", "", "If-Match", `"1"`, "a range delete is unconditional: delete one key at a version with DELETE /key/<key>"},
		{"POST", "/txn", `{"success":[{"put":{"key":"c1","value":"new"}}]}`, "If-Match", `"1"`, `a transaction's conditions are its "compare" list`},
		{"POST", "/txn", `{"success":[{"put":{"key":"c1","value":"new"}}]}`, "If-None-Match", "*", "POST /txn takes no If-Match or If-None-Match"},
	} {
		e := newEnv(t, seed, nil)
		req := httptest.NewRequest(tc.method, tc.target, strings.NewReader(tc.body))
		if tc.header != "" {
			req.Header.Set(tc.header, tc.value)
		}
		rec := e.serve(t, req)
		if rec.Code != http.StatusBadRequest || !strings.Contains(rec.Body.String(), tc.wantIn) {
			t.Errorf("%s %s (%s: %s): %d %q, want 400 saying %q", tc.method, tc.target, tc.header, tc.value, rec.Code, rec.Body, tc.wantIn)
		}
		if got := e.store.snapshot(); !maps.Equal(got, seed) {
			t.Errorf("%s %s changed the store: %q", tc.method, tc.target, got)
		}
	}
}
