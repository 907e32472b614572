package httpapi

import (
	"bytes"
	"context"
	"errors"
	"io"
	"maps"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"go.uber.org/zap"
)

// Run these as fuzzers with, for example:
//
//	go test -run='^$' -fuzz=FuzzHandler -fuzztime=60s ./httpapi/
//
// Without -fuzz, go test runs their seeds (f.Add and testdata/fuzz) as tests.

// fuzzMethods are the methods FuzzHandler picks from; one more index means
// the fuzzed method string itself, garbage included.
var fuzzMethods = []string{"GET", "HEAD", "PUT", "POST", "DELETE", "PATCH", "OPTIONS"}

// fuzzFault is what the fakes do in one FuzzHandler run.
type fuzzFault uint8

const (
	faultNone fuzzFault = iota
	faultNotFound
	faultBadRequest
	faultConflict
	faultUnavailable
	faultTimeout
	faultOther     // an error with no behaviour: 500
	faultUnhealthy // Cluster.Health fails: GET /health answers 503
	numFaults
)

// injected is the error the fakes' hook returns for f, if any.
func (f fuzzFault) injected() error {
	switch f {
	case faultNotFound:
		return testErr("not-found")
	case faultBadRequest:
		return testErr("bad-request")
	case faultConflict:
		return testErr("conflict")
	case faultUnavailable:
		return testErr("unavailable")
	case faultTimeout:
		return testErr("timeout")
	case faultOther:
		return testErr("other")
	}
	return nil
}

// FuzzHandler sends arbitrary requests (method, decoded path, raw query,
// body, with or without Accept: application/json) to the real handler over
// the in-memory fakes, which may inject one error. Whatever the request:
//   - the handler does not panic;
//   - the status is one doc.go documents;
//   - a 5xx comes only from the injected error that maps to it (or /health
//     when the cluster is unhealthy);
//   - every error answer is exactly one non-empty line ending in "\n",
//     text/plain or, if asked for, the JSON object (GET /health's 503 is
//     JSON of its own), 405 has Allow, 503 Retry-After: 1;
//   - a request that is not answered 204 changes neither store nor members,
//     and reads never do;
//   - a 204 to PUT stored exactly the body under the key the path names, and
//     a 200 to GET /<key> returns what the store holds.
func FuzzHandler(f *testing.F) {
	const other = 7 // index of "the fuzzed method string" in FuzzHandler
	seeds := []struct {
		method         uint8
		raw            string
		path, rawQuery string
		body           string
		fault          fuzzFault
	}{
		{0, "", "/k", "", "", faultNone},
		{0, "", "/k", "level=stale", "", faultNone},
		{0, "", "/k", "min_index=3&level=consistent", "", faultNone},
		{0, "", "/k", "level=bogus", "", faultNone},
		{0, "", "/k", "%zz", "", faultNone},
		{0, "", "/k", "", "", faultTimeout},
		{0, "", "/key/bin", "", "", faultNone},
		{0, "", "/key/bin", "encoding=base64", "", faultNone},
		{0, "", "/key/\xff", "encoding=base64", "", faultNone},
		{0, "", "/key/k", "encoding=hex", "", faultNone},
		{3, "", "/key", "encoding=base64", `{"a":"AP8="}`, faultNone},
		{3, "", "/key", "encoding=base64", `{"a":"AP8"}`, faultNone},
		{3, "", "/key", "", "{\"a\":\"\xff\"}", faultNone},
		{1, "", "/key/k", "", "", faultUnavailable},
		{2, "", "/a/../b//c", "", "v", faultNone},
		{2, "", "/key/status", "", "\x00\xff", faultNone},
		{2, "", "/" + strings.Repeat("k", 33), "", "v", faultNone},
		{2, "", "/k", "", strings.Repeat("v", 65), faultNone},
		{2, "", "/k", "", "v", faultOther},
		{3, "", "/key", "", `{"a":"b","c":"d"}`, faultNone},
		{3, "", "/key", "", `{"a":1}`, faultNone},
		{3, "", "/key", "", `{"a":"b","a":"c"}`, faultNone},
		{3, "", "/4", "", "http://127.0.0.1:42379", faultNone},
		{3, "", "/4", "", "http://a]b:1", faultNone},
		{3, "", "/1", "", "http://h:1", faultNone},
		{3, "", "/join", "", `{"id":"4","raftAddr":"h:1"}`, faultConflict},
		{3, "", "/join", "", `{"id":"node02","raftAddr":"h:1"}`, faultNone},
		{3, "", "/4", "learner=true", "http://127.0.0.1:42379", faultNone},
		{3, "", "/4", "learner=maybe", "http://127.0.0.1:42379", faultNone},
		{3, "", "/join", "", `{"id":4,"raftAddr":"h:1","learner":true}`, faultNone},
		{3, "", "/1/promote", "", "", faultNone},
		{3, "", "/x/promote", "", "", faultNone},
		{3, "", "/leader/transfer", "", "", faultNone},
		{3, "", "/leader/transfer", "to=1", "", faultTimeout},
		{3, "", "/leader/transfer", "to=x", "", faultNone},
		{4, "", "/1", "", "", faultNone},
		{4, "", "/9", "", "", faultNone},
		{4, "", "/key/k", "", "", faultBadRequest},
		{4, "", "/my-key", "", "", faultNone},
		{5, "", "/k", "", "", faultNone},
		{6, "", "/status", "", "", faultNone},
		{0, "", "/health", "", "", faultUnhealthy},
		{0, "", "/metrics", "", "", faultNone},
		{0, "", "/debug/state", "", "", faultNone},
		{0, "", "/debug/pprof/heap", "", "", faultNone},
		{0, "", "/debug", "", "", faultNone},
		{0, "", "", "", "", faultNone},
		{0, "", "*", "", "", faultNone},
		{other, "", "/k", "", "", faultNone},
		{other, "GeT", "/k", "", "", faultNone},
		{other, "PUT\r\nX: y", "/k", "", "v", faultNone},
		{0, "", "/wg-k", "level=stale", "", faultNone},
		{2, "", "/key/wg-k", "", "v", faultNone},
		{3, "", "/key", "", `{"a":"b","wg-c":"d"}`, faultNone},
		{4, "", "/key/nobody-k", "", "", faultNone},
		{0, "", "/key", "prefix=a&limit=1", "", faultNone},
		{0, "", "/key", "start=a&end=z&keys_only=true&level=stale", "", faultNone},
		{0, "", "/key", "prefix=&continue=AQAAAAAAAAAAAWE", "", faultNone},
		{1, "", "/key", "limit=0", "", faultNone},
		{0, "", "/key", "watch=true&prefix=a", "", faultNone},
		{0, "", "/k", "watch=true&from_index=1", "", faultNone},
		{0, "", "/key/k", "watch=1", "", faultTimeout},
		{0, "", "/k", "watch=maybe", "", faultNone},
		{2, "", "/k", "ttl=30s", "v", faultNone},
		{2, "", "/key/k", "ttl=0", "v", faultNone},
		{3, "", "/txn", "", `{"compare":[{"key":"k","target":"value","result":"=","value":"v"}],"success":[{"put":{"key":"k","value":"w"}}],"failure":[{"get":{"key":"k"}}]}`, faultNone},
		{3, "", "/txn", "", `{"success":[{"request_delete_range":{"key":"a/b"}}]}`, faultTimeout},
		{3, "", "/txn", "", `{"success":[{"put":{"key":"wg-x"}}]}`, faultNone},
		{3, "", "/txn", "", `{"sucess":[]}`, faultNone},
	}
	for i, s := range seeds {
		f.Add(s.method, s.raw, s.path, s.rawQuery, []byte(s.body), uint8(s.fault), i%2 == 1)
	}
	f.Fuzz(func(t *testing.T, methodIndex uint8, rawMethod, path, rawQuery string, body []byte, faultByte uint8, jsonErrors bool) {
		method := rawMethod
		if i := int(methodIndex) % (len(fuzzMethods) + 1); i < len(fuzzMethods) {
			method = fuzzMethods[i]
		}
		fault := fuzzFault(faultByte % uint8(numFaults))

		store := newFakeStore(map[string]string{"k": "v", "a/b": "ab", "status": "s", "bin": "\x00\xff"})
		cluster := newFakeCluster()
		if err := fault.injected(); err != nil {
			store.hook = func(context.Context) error { return err }
			cluster.hook = store.hook
		}
		if fault == faultUnhealthy {
			cluster.mu.health = errors.New("fuzz: unhealthy")
		}
		h, err := New(Config{
			Store:         store,
			Cluster:       cluster,
			Logger:        zap.NewNop(),
			MaxValueBytes: 64,
			MaxKeyBytes:   32,
			Metrics: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
				io.WriteString(w, "fuzz_metric 1\n")
			}),
		})
		if err != nil {
			t.Fatal(err)
		}
		storeBefore, membersBefore := store.snapshot(), cluster.snapshot()

		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		req := (&http.Request{
			Method:        method,
			URL:           &url.URL{Path: path, RawQuery: rawQuery},
			Proto:         "HTTP/1.1",
			ProtoMajor:    1,
			ProtoMinor:    1,
			Header:        http.Header{"Accept": {"*/*"}},
			Body:          io.NopCloser(bytes.NewReader(body)),
			ContentLength: int64(len(body)),
			Host:          "fuzz.example",
			RemoteAddr:    "192.0.2.1:1234",
		}).WithContext(ctx)
		if jsonErrors {
			req.Header["Accept"] = []string{"application/json"}
		}
		watch := h.(*handler).isWatch(req)
		if watch {
			cancel() // a watch streams until its client goes: go at once
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		code, hdr, got := rec.Code, rec.Header(), rec.Body.String()
		where := func() string {
			return strings.Join([]string{method, path, rawQuery}, " ") + " fault " + fault.String()
		}

		switch code {
		case 200, 204, 400, 404, 405, 406, 409, 410, 412, 413:
		case 500:
			if fault != faultOther {
				t.Fatalf("%s: 500 without an injected error: %q", where(), got)
			}
		case 503:
			if fault != faultUnavailable && !(fault == faultUnhealthy && path == "/health") {
				t.Fatalf("%s: 503 without an injected error: %q", where(), got)
			}
		case 504:
			if fault != faultTimeout {
				t.Fatalf("%s: 504 without an injected timeout: %q", where(), got)
			}
		case 307, 421:
			// The fake's keys of other groups (fakeWrongGroup).
			if !strings.Contains(path+string(body), "wg-") && !strings.Contains(path, "nobody-") {
				t.Fatalf("%s: %d for a key of this group: %q", where(), code, got)
			}
			if code == 307 && !strings.HasPrefix(hdr.Get("Location"), "http://127.0.0.1:7002/") || hdr.Get(HeaderConfigVersion) != "5" {
				t.Fatalf("%s: %d with headers %v", where(), code, hdr)
			}
		default:
			t.Fatalf("%s: undocumented status %d: %q", where(), code, got)
		}

		switch {
		case code == 503 && path == "/health":
			if !strings.HasPrefix(hdr.Get("Content-Type"), "application/json") || hdr.Get("Retry-After") != "1" {
				t.Fatalf("%s: /health 503 headers %v", where(), hdr)
			}
		case code >= 400:
			if hdr.Get("X-Content-Type-Options") != "nosniff" || hdr.Get("Vary") != "Accept" {
				t.Fatalf("%s: error %d with headers %v", where(), code, hdr)
			}
			if strings.Contains(got, "\r") {
				t.Fatalf("%s: error body %q holds a carriage return", where(), got)
			}
			checkErrorBody(t, req, hdr, got)
			if t.Failed() {
				t.FailNow()
			}
		}
		if code == 405 && hdr.Get("Allow") == "" {
			t.Fatalf("%s: 405 without Allow", where())
		}
		if code == 503 && hdr.Get("Retry-After") != "1" {
			t.Fatalf("%s: 503 without Retry-After: 1", where())
		}

		storeAfter, membersAfter := store.snapshot(), cluster.snapshot()
		changed := !maps.Equal(storeAfter, storeBefore) || !maps.Equal(membersAfter, membersBefore)
		if changed && (code != 204 && !(code == 200 && path == "/txn") || method == "GET" || method == "HEAD") {
			t.Fatalf("%s: answered %d but state changed: store %q, members %v", where(), code, storeAfter, membersAfter)
		}

		key := strings.TrimPrefix(path, "/")
		if strings.HasPrefix(path, "/key/") {
			key = path[len("/key/"):]
		}
		switch {
		case code == 204 && method == "PUT":
			if hdr.Get("X-Raft-Index") == "" {
				t.Fatalf("%s: 204 to PUT without X-Raft-Index", where())
			}
			want := maps.Clone(storeBefore)
			want[key] = string(body)
			if !maps.Equal(storeAfter, want) {
				t.Fatalf("%s: PUT stored %q, want %q", where(), storeAfter, want)
			}
		case code == 200 && watch:
			if hdr.Get("Content-Type") != "text/event-stream" || !strings.HasPrefix(got, ": progress ") {
				t.Fatalf("%s: watch answered %v %q", where(), hdr, got)
			}
		case code == 200 && method == "GET" && !reserved(path) && strings.HasPrefix(path, "/"):
			if v, ok := storeBefore[key]; !ok || got != v {
				t.Fatalf("%s: GET returned %q; the store holds %q (present %v)", where(), got, v, ok)
			}
		}
	})
}

func (f fuzzFault) String() string {
	return [...]string{"none", "not-found", "bad-request", "conflict", "unavailable",
		"timeout", "other", "unhealthy"}[f]
}

// FuzzParsePeerURL: a peer URL parsePeerURL accepts is canonical (accepting
// it again gives it back unchanged) and has exactly the form rafthttp needs:
// http or https, a host:port that net.SplitHostPort splits, a port 1-65535,
// and nothing else. rafthttp panics on a host:port it cannot split, so a URL
// that passes here but not there would crash every member applying it.
func FuzzParsePeerURL(f *testing.F) {
	for _, s := range []string{
		"http://127.0.0.1:42379", " https://Node4.Example:042379/\n", "http://[::1]:1",
		"http://[fe80::1%25eth0]:1", "http://a]b:1", "http://h:1/", "http://h:1?", "http://h:1#",
		"http://u@h:1", "http://h", "h:1", "http://:1", "http://h:65536", "http://a..b:1",
		"http://[::ffff:127.0.0.1]:80", "http://1.2.3:4", "http://h_1.x-y:9",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		out, err := parsePeerURL(s)
		if err != nil {
			if !errors.Is(err, ErrBadPeerURL) || statusOf(err) != http.StatusBadRequest {
				t.Fatalf("parsePeerURL(%q): error %v is not a 400 ErrBadPeerURL", s, err)
			}
			return
		}
		again, err := parsePeerURL(out)
		if err != nil || again != out {
			t.Fatalf("parsePeerURL(%q) = %q, not canonical: again %q, %v", s, out, again, err)
		}
		u, err := url.Parse(out)
		if err != nil {
			t.Fatalf("parsePeerURL(%q) = %q does not parse: %v", s, out, err)
		}
		host, port, err := net.SplitHostPort(u.Host)
		if err != nil || host == "" || port == "" || port[0] == '0' {
			t.Fatalf("parsePeerURL(%q) = %q: host:port %q does not split cleanly: %v", s, out, u.Host, err)
		}
		if (u.Scheme != "http" && u.Scheme != "https") || u.Path != "" || u.RawQuery != "" || u.ForceQuery ||
			u.Fragment != "" || u.User != nil || u.Opaque != "" || out != u.Scheme+"://"+u.Host {
			t.Fatalf("parsePeerURL(%q) = %q is not scheme://host:port", s, out)
		}
	})
}
