package httpapi

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"testing/iotest"
	"time"

	"golang.org/x/net/http/httpguts"
)

// serveFast serves h through NewServer on a free port and returns the
// server and its address.
func serveFast(t *testing.T, h http.Handler) (*Server, string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := NewServer("", h, 0)
	done := make(chan error, 1)
	go func() { done <- s.Serve(ln) }()
	t.Cleanup(func() {
		s.Close()
		if err := <-done; !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("Serve: %v, want http.ErrServerClosed", err)
		}
	})
	return s, ln.Addr().String()
}

// serveStd serves h through a plain net/http server with NewServer's
// limits.
func serveStd(t *testing.T, h http.Handler) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := NewServer("", http.HandlerFunc(h.ServeHTTP), 0).std // not *handler: no fast path
	go s.Serve(ln)
	t.Cleanup(func() { s.Close() })
	return ln.Addr().String()
}

var dateLineRE = regexp.MustCompile(`(?m)^Date: [^\r]*\r$`)

// exchange writes raw to a new connection to addr at once (pipelined) and
// returns everything the server answers until it closes the connection,
// with each Date header's value replaced by X.
func exchange(t *testing.T, addr string, raw string) string {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(waitLimit))
	if _, err := io.WriteString(c, raw); err != nil {
		t.Fatal(err)
	}
	out, err := io.ReadAll(c)
	if err != nil {
		t.Fatalf("reading answers: %v (after %q)", err, out)
	}
	return dateLineRE.ReplaceAllString(string(out), "Date: X\r")
}

func put(target, value string) string {
	return "PUT " + target + " HTTP/1.1\r\nHost: h\r\nContent-Length: " + strconv.Itoa(len(value)) + "\r\n\r\n" + value
}

func get(target string) string { return "GET " + target + " HTTP/1.1\r\nHost: h\r\n\r\n" }

// getAccept is get with the given Accept headers.
func getAccept(target string, accept ...string) string {
	r := "GET " + target + " HTTP/1.1\r\nHost: h\r\n"
	for _, a := range accept {
		r += "Accept: " + a + "\r\n"
	}
	return r + "\r\n"
}

// putJSON is put asking for errors in JSON.
func putJSON(target, value string) string {
	return "PUT " + target + " HTTP/1.1\r\nHost: h\r\nAccept: application/json\r\nContent-Length: " + strconv.Itoa(len(value)) + "\r\n\r\n" + value
}

// closing is the last request of every exchange: net/http serves it and
// then closes the connection.
const closing = "GET /health HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n"

// TestServerMatchesNetHTTP sends the same requests, pipelined on one
// connection, to NewServer and to a plain net/http server over identical
// stores, and requires byte-identical answers (but for Date) and identical
// stores, and that the fast path answered exactly the requests it should.
func TestServerMatchesNetHTTP(t *testing.T) {
	big := strings.Repeat("v", 100<<10)
	tests := []struct {
		name string
		raw  string
		fast uint64 // requests the fast path answers
	}{
		// A PUT with a query (?ttl=) goes to net/http, with the rest of
		// its connection.
		{"put and get", put("/a", "1") + get("/a") + get("/a?level=stale") + get("/a?level=consistent&min_index=3") +
			put("/k/with//slashes", "2") + get("/k/with//slashes") + put("/a?ignored=1", "3") + get("/a"), 6},
		{"versions", put("/v", "1") + get("/v") + get("/missing") + get("/v?level=stale") + put("/v", "2") + get("/v") +
			put("/v?ttl=30s", "3") + get("/v"), 6},
		{"conditional writes", put("/v", "1") + "PUT /v HTTP/1.1\r\nHost: h\r\nIf-Match: \"11\"\r\nContent-Length: 1\r\n\r\n2" +
			"PUT /v HTTP/1.1\r\nHost: h\r\nIf-Match: \"11\"\r\nContent-Length: 1\r\n\r\n3" + get("/v"), 1},
		{"conditional write in JSON", "PUT /a HTTP/1.1\r\nHost: h\r\nAccept: application/json\r\nIf-None-Match: *\r\nContent-Length: 1\r\n\r\n2" + get("/a"), 0},
		{"watch", get("/a") + get("/a?watch=false") + get("/a"), 1},
		{"errors", get("/missing") + get("/a?level=bogus") + get("/a?min_index=x") + get("/a?level=stale&level=stale") +
			put("/"+strings.Repeat("k", 40), "x"), 5},
		{"errors in JSON", getAccept("/missing", "application/json") + getAccept("/a?level=bogus", "text/html, application/json;q=0.9") +
			getAccept("/a?min_index=x", "text/plain", "APPLICATION/JSON") + putJSON("/"+strings.Repeat("k", 40), "x") +
			getAccept("/missing?level=stale", "application/json;q=0") + getAccept("/missing", "*/*") +
			"GET /missing HTTP/1.1\r\naccept:application/json\r\nHost: h\r\n\r\n", 7},
		{"level none", get("/a?level=none") + get("/a?level=NONE&min_index=3") + getAccept("/missing?level=none", "application/json"), 3},
		{"empty and absent bodies", put("/e", "") + "PUT /n HTTP/1.1\r\nHost: h\r\n\r\n" + get("/e") + get("/n"), 4},
		// The large body last among the fast requests: a head that
		// follows it may be cut by the buffer's edge and so go to net/http.
		{"large value", get("/big") + put("/big", big+"2"), 2},
		{"header spellings", "PUT /l HTTP/1.1\r\nhost: h\r\ncontent-length:  2 \r\nconnection: Keep-Alive\r\nUser-Agent: t\r\n\r\nab" +
			"GET /l HTTP/1.1\r\nHOST: h:80\r\nContent-Length: 0\r\n\r\n" + "PUT /z HTTP/1.1\r\nHost: h\r\nContent-Length: 01\r\n\r\nz", 3},
		{"handed off mid-connection", put("/a", "1") + get("/status") + put("/b", "2") + get("/b"), 1},
		{"percent-encoded key", put("/a%2Fb", "1") + get("/key/a/b") + get("/a%2Fb"), 0},
		{"reserved paths", put("/key/x", "1") + get("/key/x") + get("/debug/state") + get("/"), 0},
		{"chunked body", "PUT /c HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n" + get("/c"), 0},
		{"expect continue", "PUT /x HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\nxy" + get("/x"), 0},
		{"GET with a body", "GET /a HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\nabc" + get("/a"), 0},
		{"HEAD", put("/a", "1") + "HEAD /a HTTP/1.1\r\nHost: h\r\n\r\n", 1},
		{"too large", put("/a", strings.Repeat("x", 65)) + get("/a"), 0},
		{"too large in JSON", putJSON("/a", strings.Repeat("x", 65)), 0},
		// A head over MaxHeaderBytes: net/http's 431, and the connection closed.
		{"key beyond the header limit", get("/" + strings.Repeat("k", 70<<10)), 0},
		{"key beyond the header limit in JSON", getAccept("/"+strings.Repeat("k", 70<<10), "application/json"), 0},
		{"key too long", put("/"+strings.Repeat("k", 65), "x"), 1},
		{"HTTP/1.0", "GET /a HTTP/1.0\r\n\r\n", 0},
		{"no Host", "GET /a HTTP/1.1\r\n\r\n", 0},
		{"two Hosts", "GET /a HTTP/1.1\r\nHost: h\r\nHost: g\r\n\r\n", 0},
		{"two lengths", "PUT /a HTTP/1.1\r\nHost: h\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab", 0},
		{"signed length", "PUT /a HTTP/1.1\r\nHost: h\r\nContent-Length: +1\r\n\r\na", 0},
		{"control byte in a header", "GET /a HTTP/1.1\r\nHost: h\r\nX-A: b\x01c\r\n\r\n", 0},
		{"folded header", "GET /a HTTP/1.1\r\nHost: h\r\nX-A: b\r\n c\r\n\r\n", 0},
		{"bare LF", "GET /a HTTP/1.1\nHost: h\n\n", 0},
		{"lower-case method", "put /a HTTP/1.1\r\nHost: h\r\nContent-Length: 1\r\n\r\na", 0},
		{"DELETE", put("/key/d", "1") + "DELETE /key/d HTTP/1.1\r\nHost: h\r\n\r\n" + get("/key/d"), 0},
		{"wrong group", get("/wg-a") + get("/wg-a?level=stale") + "GET /wg-a HTTP/1.1\r\nHost: h\r\nX-Raftkv-Route: client\r\n\r\n" +
			put("/wg-b", "x") + "PUT /wg-b HTTP/1.1\r\nHost: h\r\nx-raftkv-route: CLIENT\r\nContent-Length: 1\r\n\r\nx" +
			get("/nobody-c") + getAccept("/nobody-c", "application/json") + "HEAD /wg-a HTTP/1.1\r\nHost: h\r\n\r\n", 7},
		{"client ids", "PUT /a HTTP/1.1\r\nHost: h\r\nX-Client-ID: c1\r\nX-Client-Seq: 3\r\nContent-Length: 1\r\n\r\nx" +
			"PUT /a HTTP/1.1\r\nHost: h\r\nX-Client-ID: c 1\r\nX-Client-Seq: 3\r\nContent-Length: 1\r\n\r\ny" +
			"PUT /a HTTP/1.1\r\nHost: h\r\nX-Client-Seq: 3\r\nContent-Length: 1\r\n\r\nz" +
			"GET /a HTTP/1.1\r\nHost: h\r\nX-Client-ID: ?\r\n\r\n" +
			"PUT /a HTTP/1.1\r\nHost: h\r\nX-Client-ID: c1\r\nX-Client-ID: c1\r\nX-Client-Seq: 4\r\nContent-Length: 1\r\n\r\nw" + get("/a"), 4},
		{"head larger than the buffer", "GET /a HTTP/1.1\r\nHost: h\r\nX-Pad: " + strings.Repeat("p", fastBufSize) + "\r\n\r\n", 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			seed := map[string]string{"a": "0", "big": big}
			limits := func(c *Config) { c.MaxValueBytes, c.MaxKeyBytes = 200<<10, 64 }
			if strings.HasPrefix(tc.name, "too large") {
				limits = func(c *Config) { c.MaxValueBytes, c.MaxKeyBytes = 64, 64 }
			}
			fast, std := newEnv(t, seed, limits), newEnv(t, seed, limits)
			srv, fastAddr := serveFast(t, fast.h)
			stdAddr := serveStd(t, std.h)
			raw := tc.raw + closing
			got, want := exchange(t, fastAddr, raw), exchange(t, stdAddr, raw)
			if got != want {
				t.Errorf("answers differ\nfast path:\n%q\nnet/http:\n%q", got, want)
			}
			if g, w := fast.store.snapshot(), std.store.snapshot(); !equalMaps(g, w) {
				t.Errorf("stores differ: fast path %q, net/http %q", g, w)
			}
			if n := srv.served.Load(); n != tc.fast {
				t.Errorf("fast path answered %d requests, want %d", n, tc.fast)
			}
		})
	}
}

func equalMaps(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// TestServerFastPathKeepsConnection serves many requests on one connection
// without handing it off, reading each answer before the next request, with
// a body that arrives in two writes after its head.
func TestServerFastPathKeepsConnection(t *testing.T) {
	e := newEnv(t, nil, nil)
	srv, addr := serveFast(t, e.h)
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(waitLimit))
	br := bufio.NewReader(c)
	for i := range 100 {
		key, value := "/k"+strconv.Itoa(i), strings.Repeat("v", i*100)
		// The head and half the body in one write, the rest in another: a
		// head must arrive whole to stay on the fast path, a body need not.
		req := put(key, value)
		split := len(req) - len(value)/2
		io.WriteString(c, req[:split])
		io.WriteString(c, req[split:])
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 204 || resp.Header.Get("X-Raft-Index") == "" {
			t.Fatalf("PUT %s: %s %v", key, resp.Status, resp.Header)
		}
		io.WriteString(c, get(key))
		resp, err = http.ReadResponse(br, nil)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || string(body) != value || resp.Header.Get("Date") == "" {
			t.Fatalf("GET %s: %s %v %d bytes, want 200 and %d", key, resp.Status, resp.Header, len(body), len(value))
		}
	}
	if n := srv.served.Load(); n != 200 {
		t.Errorf("fast path answered %d requests, want all 200", n)
	}
}

// TestServerFastPathInFlightLimit: requests held on the fast path count
// toward MaxInFlight, and one more is refused with net/http's answer.
func TestServerFastPathInFlightLimit(t *testing.T) {
	g := newGate()
	e := newEnv(t, nil, func(c *Config) { c.MaxInFlight = 2 })
	e.store.hook = g.hook
	_, addr := serveFast(t, e.h)
	results := make(chan string, 2)
	for i := range 2 {
		go func() { results <- exchange(t, addr, put("/held"+strconv.Itoa(i), "v")+closing) }()
	}
	g.awaitEntered(t, 2)
	if n := inFlight(e.h); n != 2 {
		t.Errorf("%d requests in flight, want 2", n)
	}
	if got := exchange(t, addr, put("/refused", "v")+closing); !strings.HasPrefix(got, "HTTP/1.1 503 ") ||
		!strings.Contains(got, "too many requests in flight") {
		t.Errorf("third request: %q, want 503 too many requests in flight", got)
	}
	close(g.release)
	for range 2 {
		if got := <-results; !strings.HasPrefix(got, "HTTP/1.1 204 ") {
			t.Errorf("held request: %q, want 204", got)
		}
	}
	if n := inFlight(e.h); n != 0 {
		t.Errorf("%d requests in flight after all answered, want 0", n)
	}
}

// TestServerShutdown: Shutdown closes idle connections at once, lets a
// request being served on the fast path finish, and makes Serve return.
func TestServerShutdown(t *testing.T) {
	g := newGate()
	e := newEnv(t, nil, nil)
	var hold atomic.Bool // the gate holds calls once set
	e.store.hook = func(ctx context.Context) error {
		if hold.Load() {
			return g.hook(ctx)
		}
		return nil
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := NewServer("", e.h, 0)
	served := make(chan error, 1)
	go func() { served <- s.Serve(ln) }()
	addr := ln.Addr().String()

	idle, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer idle.Close()
	idle.SetDeadline(time.Now().Add(waitLimit))
	io.WriteString(idle, get("/x?level=stale")) // 404 from the fast path; then idle
	if resp, err := http.ReadResponse(bufio.NewReader(idle), nil); err != nil || resp.StatusCode != 404 {
		t.Fatalf("idle connection's request: %v %v", resp, err)
	}
	hold.Store(true)
	busy := make(chan string, 1)
	go func() { busy <- exchange(t, addr, put("/held", "v")) }()
	g.awaitEntered(t, 1)

	shut := make(chan error, 1)
	go func() { shut <- s.Shutdown(context.Background()) }()
	if _, err := idle.Read(make([]byte, 1)); err == nil {
		t.Error("idle connection still open during Shutdown")
	}
	select {
	case err := <-shut:
		t.Fatalf("Shutdown returned %v while a request was being served", err)
	default:
	}
	close(g.release)
	if got := <-busy; !strings.HasPrefix(got, "HTTP/1.1 204 ") {
		t.Errorf("request served during Shutdown: %q, want 204 and the connection closed", got)
	}
	if err := <-shut; err != nil {
		t.Errorf("Shutdown: %v", err)
	}
	if err := <-served; !errors.Is(err, http.ErrServerClosed) {
		t.Errorf("Serve: %v, want http.ErrServerClosed", err)
	}
	if _, err := net.Dial("tcp", addr); err == nil {
		t.Error("listener still accepting after Shutdown")
	}
}

func TestParseHead(t *testing.T) {
	tests := []struct {
		head string
		want fastRequest
		ok   bool
	}{
		{"GET /a HTTP/1.1\r\nHost: h\r\n\r\n", fastRequest{method: "GET", path: "/a"}, true},
		{"GET /a?level=stale HTTP/1.1\r\nHost: h\r\n\r\n", fastRequest{method: "GET", path: "/a", rawQuery: "level=stale"}, true},
		{"PUT /a/b HTTP/1.1\r\nHost: [::1]:80\r\nContent-Length: 12\r\nX-Other: y\r\n\r\n", fastRequest{method: "PUT", path: "/a/b", length: 12}, true},
		{"PUT /a HTTP/1.1\r\nHost: h\r\nConnection: keep-alive\r\n\r\n", fastRequest{method: "PUT", path: "/a"}, true},
		{"GET /a HTTP/1.1\r\nHost: h\r\nAccept: application/json\r\n\r\n", fastRequest{method: "GET", path: "/a", json: true}, true},
		{"GET /a HTTP/1.1\r\nAccept: text/plain\r\nHost: h\r\naccept:  Application/JSON;q=0.1 \r\n\r\n", fastRequest{method: "GET", path: "/a", json: true}, true},
		{"GET /a HTTP/1.1\r\nHost: h\r\nAccept: */*\r\n\r\n", fastRequest{method: "GET", path: "/a"}, true},
		{"GET /a HTTP/1.1\r\nHost: h\r\nAccept: application/json;q=0\r\n\r\n", fastRequest{method: "GET", path: "/a"}, true},
		{"POST /a HTTP/1.1\r\nHost: h\r\n\r\n", fastRequest{}, false},
		{"GET /a HTTP/1.0\r\nHost: h\r\n\r\n", fastRequest{}, false},
		{"GET a HTTP/1.1\r\nHost: h\r\n\r\n", fastRequest{}, false},
		{"GET /a%20 HTTP/1.1\r\nHost: h\r\n\r\n", fastRequest{}, false},
		{"GET /a#f HTTP/1.1\r\nHost: h\r\n\r\n", fastRequest{}, false},
		{"GET /a b HTTP/1.1\r\nHost: h\r\n\r\n", fastRequest{}, false},
		{"GET /\xff HTTP/1.1\r\nHost: h\r\n\r\n", fastRequest{}, false},
		{"GET /a HTTP/1.1\r\n\r\n", fastRequest{}, false},
		{"GET /a HTTP/1.1\r\nHost: a b\r\n\r\n", fastRequest{}, false},
		{"GET /a HTTP/1.1\r\nHost : h\r\n\r\n", fastRequest{}, false},
		{"GET /a HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n", fastRequest{}, false},
		{"PUT /a HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: identity\r\n\r\n", fastRequest{}, false},
		{"PUT /a HTTP/1.1\r\nHost: h\r\nContent-Length: 1 2\r\n\r\n", fastRequest{}, false},
		{"PUT /a HTTP/1.1\r\nHost: h\r\nContent-Length: 9999999999999999999\r\n\r\n", fastRequest{}, false},
		{"PUT /a HTTP/1.1\r\nHost: h\r\nContent-Length:\r\n\r\n", fastRequest{}, false},
		{"GET /a HTTP/1.1\r\nHost: h\r\n\r\nx", fastRequest{}, false},
		{"PUT /a HTTP/1.1\r\nHost: h\r\nX-Raftkv-Route: Client \r\nx-client-id: c1\r\nX-Client-Seq: 7\r\n\r\n",
			fastRequest{method: "PUT", path: "/a", route: true, clientID: []string{"c1"}, clientSeq: []string{"7"}}, true},
		{"GET /a HTTP/1.1\r\nHost: h\r\nX-Raftkv-Route: router\r\n\r\n", fastRequest{method: "GET", path: "/a"}, true},
		{"PUT /a HTTP/1.1\r\nHost: h\r\nX-Client-ID: c1\r\nX-Client-ID: c2\r\n\r\n", fastRequest{}, false},
		{"PUT /a HTTP/1.1\r\nHost: h\r\nX-Client-Seq: 1\r\nX-Client-Seq: 1\r\n\r\n", fastRequest{}, false},
	}
	for _, tc := range tests {
		got, ok := parseHead([]byte(tc.head))
		if ok != tc.ok || ok && !reflect.DeepEqual(got, tc.want) {
			t.Errorf("parseHead(%q) = %+v, %v; want %+v, %v", tc.head, got, ok, tc.want, tc.ok)
		}
	}
}

// FuzzParseHead: every head parseHead accepts, net/http's server reads as
// the same request, and none that it would refuse.
func FuzzParseHead(f *testing.F) {
	for _, s := range []string{
		"GET /a HTTP/1.1\r\nHost: h\r\n\r\n",
		"GET /a?level=stale&min_index=3 HTTP/1.1\r\nHost: h:1\r\nUser-Agent: x\r\n\r\n",
		"PUT /k/v HTTP/1.1\r\nhost: [::1]:9\r\ncontent-length: 7\r\nConnection: keep-alive\r\n\r\n",
		"PUT //a;b HTTP/1.1\r\nHost: h\r\nX-A: \t b \r\n\r\n",
		"GET /a HTTP/1.1\r\nHost: h\r\nAccept: text/plain\r\nACCEPT: application/json; q=0.5\r\n\r\n",
		"PUT /a HTTP/1.1\r\nHost: h\r\nX-Raftkv-Route: client\r\nX-Client-ID: a.b\r\nx-client-seq:  9 \r\n\r\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, head []byte) {
		req, ok := parseHead(head)
		if !ok {
			return
		}
		r, err := http.ReadRequest(bufio.NewReader(bytes.NewReader(head)))
		if err != nil {
			t.Fatalf("parseHead accepted %q; http.ReadRequest: %v", head, err)
		}
		if r.Method != req.method || r.URL.Path != req.path || r.URL.RawQuery != req.rawQuery ||
			r.ContentLength != req.length || len(r.TransferEncoding) != 0 || r.Close || !r.ProtoAtLeast(1, 1) {
			t.Fatalf("parseHead(%q) = %+v; net/http: %s %q %q length %d te %v close %v %s",
				head, req, r.Method, r.URL.Path, r.URL.RawQuery, r.ContentLength, r.TransferEncoding, r.Close, r.Proto)
		}
		if want := slices.ContainsFunc(r.Header.Values("Accept"), acceptsJSON[string]); req.json != want {
			t.Fatalf("parseHead(%q) = %+v; net/http's Accept %q asks for JSON: %v", head, req, r.Header.Values("Accept"), want)
		}
		if want := routingClient(r); req.route != want {
			t.Fatalf("parseHead(%q) = %+v; net/http's %s %q routes: %v", head, req, HeaderRoute, r.Header.Values(HeaderRoute), want)
		}
		if !slices.Equal(req.clientID, r.Header.Values(HeaderClientID)) || !slices.Equal(req.clientSeq, r.Header.Values(HeaderClientSeq)) {
			t.Fatalf("parseHead(%q) = %+v; net/http reads client id %q, seq %q", head, req, r.Header.Values(HeaderClientID), r.Header.Values(HeaderClientSeq))
		}
		// The checks net/http's server adds to ReadRequest's.
		if hosts := r.Header["Host"]; len(hosts) > 1 || !httpguts.ValidHostHeader(r.Host) || r.Host == "" {
			t.Fatalf("parseHead accepted %q, whose Host net/http refuses", head)
		}
		for k, vv := range r.Header {
			if !httpguts.ValidHeaderFieldName(k) {
				t.Fatalf("parseHead accepted %q with header name %q", head, k)
			}
			for _, v := range vv {
				if !httpguts.ValidHeaderFieldValue(v) {
					t.Fatalf("parseHead accepted %q with header value %q", head, v)
				}
			}
		}
		if _, ok := r.Header["Expect"]; ok {
			t.Fatalf("parseHead accepted %q with Expect", head)
		}
	})
}

// TestServerFastPathBodyTimeout: a PUT whose body stops short gets 400
// once ReadTimeout passes, as through net/http, and its connection is
// closed rather than read on from the middle of the body.
func TestServerFastPathBodyTimeout(t *testing.T) {
	for _, fast := range []bool{true, false} {
		e := newEnv(t, nil, nil)
		h := e.h
		if !fast {
			h = http.HandlerFunc(e.h.ServeHTTP) // not *handler: net/http only
		}
		s := NewServer("", h, 0)
		s.std.ReadTimeout = 200 * time.Millisecond
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		go s.Serve(ln)
		got := exchange(t, ln.Addr().String(), "PUT /a HTTP/1.1\r\nHost: h\r\nContent-Length: 40\r\n\r\nGET /b HTTP/1.1\r\nHost: h\r\n\r\n")
		s.Close()
		if !strings.HasPrefix(got, "HTTP/1.1 400 ") || !strings.Contains(got, "the request body could not be read in full") ||
			strings.Count(got, "HTTP/1.1 ") != 1 {
			t.Errorf("fast path %v: %q, want one 400 for the body, then the connection closed", fast, got)
		}
		if kv := e.store.snapshot(); len(kv) != 0 {
			t.Errorf("fast path %v: store holds %q after a body that never arrived", fast, kv)
		}
	}
}

// TestServerIncompleteHeadGoesToNetHTTP: bytes that never complete a
// request head are net/http's to answer (here at once, with 400), not
// left waiting for the rest.
func TestServerIncompleteHeadGoesToNetHTTP(t *testing.T) {
	e := newEnv(t, nil, nil)
	srv, addr := serveFast(t, e.h)
	if got := exchange(t, addr, "GARBAGE\r\n"); !strings.HasPrefix(got, "HTTP/1.1 400 ") {
		t.Errorf("answer to a malformed request line: %q, want net/http's 400", got)
	}
	if n := srv.served.Load(); n != 0 {
		t.Errorf("fast path answered %d requests, want 0", n)
	}
}

// askReader serves data and records whether any read asked for more
// than max(64 KiB, the bytes served so far): a buffer that grows by
// doubling from 64 KiB never does.
type askReader struct {
	r      io.Reader
	served int
	greedy int // the largest read that asked for too much; 0: none did
}

func (a *askReader) Read(p []byte) (int, error) {
	if len(p) > max(64<<10, a.served) {
		a.greedy = max(a.greedy, len(p))
	}
	n, err := a.r.Read(p)
	a.served += n
	return n, err
}

func TestReadValue(t *testing.T) {
	for _, n := range []int{0, 1, 64 << 10, 64<<10 + 1, 300 << 10, 1572864} {
		data := bytes.Repeat([]byte("0123456789abcdef"), n/16+1)[:n]
		// One byte at a time: every read is short.
		src := &askReader{r: iotest.OneByteReader(bytes.NewReader(data))}
		got, err := readValue(src, int64(n))
		if err != nil || !bytes.Equal(got, data) {
			t.Fatalf("readValue(%d): %d bytes, %v", n, len(got), err)
		}
		if src.greedy > 0 {
			t.Errorf("readValue(%d) asked for %d bytes at once, more than it had received", n, src.greedy)
		}
		if n > 0 {
			if _, err := readValue(bytes.NewReader(data[:n-1]), int64(n)); !errors.Is(err, io.ErrUnexpectedEOF) {
				t.Errorf("readValue(%d) of %d bytes: %v, want io.ErrUnexpectedEOF", n, n-1, err)
			}
		}
	}
}

// TestExtendDeadline: a deadline is moved only once it is nearer than
// its timeout less the slack, so it is never nearer than that (and never
// passed) however calls fall, for long timeouts and for short ones.
func TestExtendDeadline(t *testing.T) {
	t0 := time.Unix(1000, 0)
	for _, timeout := range []time.Duration{2 * time.Minute, 30 * time.Second, 200 * time.Millisecond, time.Millisecond} {
		slack := min(timeout/8, maxDeadlineSlack)
		var by time.Time
		sets := 0
		set := func(d time.Time) error { sets++; return nil }
		step := timeout / 50
		calls := 0
		for now := t0; now.Before(t0.Add(3 * timeout)); now = now.Add(step) {
			calls++
			extend(&by, now, timeout, set)
			if left := by.Sub(now); left < timeout-slack || left > timeout {
				t.Fatalf("timeout %v: at +%v the deadline is %v away, want %v to %v", timeout, now.Sub(t0), left, timeout-slack, timeout)
			}
		}
		// A call every timeout/50 moves the deadline once per slack.
		if want := int(3*timeout/slack) + 1; sets > want {
			t.Errorf("timeout %v: %d of %d calls set the deadline, want at most %d", timeout, sets, calls, want)
		}
	}
}

// TestServerRefusesAnnouncedLargeBody: a request whose Content-Length is
// over the limit gets its 413 before its body arrives, through the fast
// path's server and through plain net/http alike, and nothing is stored.
func TestServerRefusesAnnouncedLargeBody(t *testing.T) {
	for _, fast := range []bool{true, false} {
		e := newEnv(t, nil, func(c *Config) { c.MaxValueBytes = 10 })
		var addr string
		if fast {
			_, addr = serveFast(t, e.h)
		} else {
			addr = serveStd(t, e.h)
		}
		for _, target := range []string{"/a", "/key/a"} {
			c, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			c.SetDeadline(time.Now().Add(waitLimit))
			// Eleven bytes announced, one sent: the rest never comes.
			if _, err := io.WriteString(c, "PUT "+target+" HTTP/1.1\r\nHost: h\r\nContent-Length: 11\r\n\r\nx"); err != nil {
				t.Fatal(err)
			}
			resp, err := http.ReadResponse(bufio.NewReader(c), nil)
			c.Close()
			if err != nil {
				t.Fatalf("fast path %v, PUT %s: no answer before the body: %v", fast, target, err)
			}
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != http.StatusRequestEntityTooLarge || !strings.Contains(string(body), "larger than the limit of 10 bytes") {
				t.Errorf("fast path %v, PUT %s: %s %q, want 413 naming the limit", fast, target, resp.Status, body)
			}
		}
		if kv := e.store.snapshot(); len(kv) != 0 {
			t.Errorf("fast path %v: store holds %q", fast, kv)
		}
	}
}
