package bench

import (
	"bufio"
	"bytes"
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// newTestConn returns a conn to endpoint, closed when tb ends.
func newTestConn(tb testing.TB, endpoint string, timeout time.Duration) *conn {
	tb.Helper()
	c, err := newConn(endpoint, timeout, nil)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(c.close)
	return c
}

// newCountingServer starts an HTTP server of h that counts the connections
// it accepts, and quietly drops those its handler aborts.
func newCountingServer(t *testing.T, h http.HandlerFunc) (*httptest.Server, *atomic.Int64) {
	var conns atomic.Int64
	srv := httptest.NewUnstartedServer(h)
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	t.Cleanup(srv.Close)
	return srv, &conns
}

func TestConnRoundTrip(t *testing.T) {
	big := strings.Repeat("0123456789", 2000) // larger than the read buffer
	srv, conns := newCountingServer(t, func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/put":
			b, _ := io.ReadAll(r.Body)
			if r.Method != http.MethodPut || r.URL.RawQuery != "a=1" || r.ContentLength != 5 || string(b) != "value" ||
				r.Host != r.Context().Value(http.LocalAddrContextKey).(net.Addr).String() || r.ProtoMinor != 1 {
				http.Error(w, fmt.Sprintf("got %s %s host %s length %d body %q", r.Method, r.URL, r.Host, r.ContentLength, b), http.StatusBadRequest)
				return
			}
			w.WriteHeader(http.StatusNoContent)
		case "/get":
			io.WriteString(w, "hello")
		case "/chunked":
			for i := 0; i < len(big); i += 5000 {
				io.WriteString(w, big[i:i+5000])
				w.(http.Flusher).Flush()
			}
		case "/to-eof":
			// Without chunking, the server closes the connection after the body.
			w.Header().Set("Transfer-Encoding", "identity")
			io.WriteString(w, big)
		case "/close":
			w.Header().Set("Connection", "close")
			io.WriteString(w, "bye")
		case "/unavailable":
			http.Error(w, "  no leader  ", http.StatusServiceUnavailable)
		case "/long-error":
			w.WriteHeader(http.StatusInternalServerError)
			io.WriteString(w, big)
		case "/redirect":
			http.Redirect(w, r, "/get", http.StatusTemporaryRedirect)
		default:
			http.NotFound(w, r)
		}
	})
	c := newTestConn(t, srv.URL+"/", time.Second)
	for i, tc := range []struct {
		method, path string
		value        []byte
		keep         bool
		status       int
		body         string // with keep
		errBody      string
		conns        int64 // opened so far
	}{
		{"PUT", "/put?a=1", []byte("value"), false, 204, "", "", 1},
		{"GET", "/get", nil, true, 200, "hello", "", 1},
		{"GET", "/get", nil, false, 200, "", "", 1},
		{"GET", "/chunked", nil, true, 200, big, "", 1},
		{"GET", "/unavailable", nil, true, 503, "", "no leader", 1},
		{"GET", "/long-error", nil, false, 500, "", big[:maxErrorBody], 1},
		{"GET", "/redirect", nil, false, 307, "", `<a href="/get">Temporary Redirect</a>.`, 1},
		{"DELETE", "/key/x", nil, false, 404, "", "404 page not found", 1},
		{"GET", "/to-eof", nil, true, 200, big, "", 1},
		{"GET", "/get", nil, false, 200, "", "", 2},
		{"GET", "/close", nil, true, 200, "bye", "", 2},
		{"GET", "/get", nil, true, 200, "hello", "", 3},
	} {
		var body []byte
		dst := &body
		if !tc.keep {
			dst = nil
		}
		status, errBody, err := c.roundTrip(t.Context(), tc.method, []byte(tc.path), tc.value, dst)
		if err != nil || status != tc.status || string(body) != tc.body || errBody != tc.errBody {
			t.Fatalf("%d: %s %s = %d, %q, %v with %d-byte body; want %d, %q and a %d-byte body",
				i, tc.method, tc.path, status, errBody, err, len(body), tc.status, tc.errBody, len(tc.body))
		}
		if n := conns.Load(); n != tc.conns {
			t.Fatalf("%d: %s %s: %d connections opened, want %d", i, tc.method, tc.path, n, tc.conns)
		}
	}
}

// TestConnRetriesIdleClose: a server may close a keep-alive connection while
// it is idle; the next request goes again on a new connection, once.
func TestConnRetriesIdleClose(t *testing.T) {
	var hangups atomic.Int64
	srv, conns := newCountingServer(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/hang-up" {
			hangups.Add(1)
			panic(http.ErrAbortHandler)
		}
		w.WriteHeader(http.StatusNoContent)
	})
	c := newTestConn(t, srv.URL, time.Second)
	for i := range 3 {
		if status, _, err := c.roundTrip(t.Context(), http.MethodPut, []byte("/k"), []byte("v"), nil); err != nil || status != 204 {
			t.Fatalf("PUT %d after the server closed the idle connection: %d, %v", i, status, err)
		}
		srv.CloseClientConnections()
	}
	if n := conns.Load(); n != 3 {
		t.Fatalf("%d connections opened, want 3", n)
	}

	// The connection breaks before any answer on a reused connection, then
	// on the new one: the request is sent twice and fails.
	c.roundTrip(t.Context(), http.MethodGet, []byte("/k"), nil, nil)
	_, _, err := c.roundTrip(t.Context(), http.MethodGet, []byte("/hang-up"), nil, nil)
	if classify(0, err) != ErrClassReset || hangups.Load() != 2 {
		t.Fatalf("hang-up: %v (%s) after %d tries; want reset after 2", err, classify(0, err), hangups.Load())
	}
}

func TestConnContext(t *testing.T) {
	release := make(chan struct{})
	var requests atomic.Int64
	srv, _ := newCountingServer(t, func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		if r.URL.Path == "/block" {
			select {
			case <-release:
			case <-r.Context().Done():
			}
		}
		w.WriteHeader(http.StatusNoContent)
	})
	// The conn's own timeout is far longer than anything here should take,
	// so that only an abort can end /block before it.
	const connTimeout = time.Minute
	c := newTestConn(t, srv.URL, connTimeout)

	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, _, err := c.roundTrip(ctx, http.MethodGet, []byte("/k"), nil, nil); !errors.Is(err, context.Canceled) || requests.Load() != 0 {
		t.Fatalf("done context: %v with %d requests sent; want context.Canceled and none", err, requests.Load())
	}

	// Cancelling aborts the request in flight, and a worker queued behind it:
	// without the abort, /block would end only by the conn's timeout.
	ctx, cancel = context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	start := time.Now()
	queued := make(chan error)
	go func() {
		time.Sleep(10 * time.Millisecond)
		_, _, err := c.roundTrip(ctx, http.MethodGet, []byte("/k"), nil, nil)
		queued <- err
	}()
	_, _, err := c.roundTrip(ctx, http.MethodGet, []byte("/block"), nil, nil)
	if qerr := <-queued; !errors.Is(err, context.DeadlineExceeded) || !errors.Is(qerr, context.DeadlineExceeded) || time.Since(start) >= connTimeout {
		t.Fatalf("cancelled: %v and queued %v after %v; want context.DeadlineExceeded before the conn's %v timeout", err, qerr, time.Since(start), connTimeout)
	}

	// The next request, with another context, is not aborted by the first.
	for range 2 {
		if status, _, err := c.roundTrip(t.Context(), http.MethodGet, []byte("/k"), nil, nil); err != nil || status != 204 {
			t.Fatalf("after a cancelled request: %d, %v", status, err)
		}
	}
	close(release)

	c.close()
	if _, _, err := c.roundTrip(t.Context(), http.MethodGet, []byte("/k"), nil, nil); !errors.Is(err, errClosed) {
		t.Fatalf("after close: %v, want errClosed", err)
	}
}

func TestConnTLS(t *testing.T) {
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "%s %v", r.Proto, r.TLS != nil)
	}))
	defer srv.Close()
	c := newTestConn(t, srv.URL, time.Second)
	c.tls.RootCAs = x509.NewCertPool()
	c.tls.RootCAs.AddCert(srv.Certificate())
	var body []byte
	if status, _, err := c.roundTrip(t.Context(), http.MethodGet, []byte("/"), nil, &body); err != nil || status != 200 || string(body) != "HTTP/1.1 true" {
		t.Fatalf("GET over TLS = %d %q, %v; want 200 \"HTTP/1.1 true\"", status, body, err)
	}
}

func TestWriteRequest(t *testing.T) {
	for _, tc := range []struct {
		method, path string
		value        []byte
		want         string
	}{
		{"PUT", "/0001", []byte("abc"), "PUT /0001 HTTP/1.1\r\nHost: h:1\r\nContent-Length: 3\r\n\r\nabc"},
		{"PUT", "/0001", nil, "PUT /0001 HTTP/1.1\r\nHost: h:1\r\nContent-Length: 0\r\n\r\n"},
		{"GET", "/0001?level=stale", nil, "GET /0001?level=stale HTTP/1.1\r\nHost: h:1\r\n\r\n"},
		{"DELETE", "/key/0001", nil, "DELETE /key/0001 HTTP/1.1\r\nHost: h:1\r\n\r\n"},
	} {
		c := newTestConn(t, "http://h:1", time.Second)
		var out bytes.Buffer
		c.bw.Reset(&out)
		if err := c.writeRequest(tc.method, []byte(tc.path), tc.value); err != nil || out.String() != tc.want {
			t.Errorf("%s %s: wrote %q, %v; want %q", tc.method, tc.path, out.String(), err, tc.want)
		}
	}
}

// TestReadResponse checks the parser on answers net/http's server does not
// give; each is followed by "NEXT", where the parser must stop.
func TestReadResponse(t *testing.T) {
	for _, tc := range []struct {
		name, raw string
		status    int
		body      string
		errBody   string
		rest      string
		err       error
	}{
		{"length", "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhelloNEXT", 200, "hello", "", "NEXT", nil},
		{"odd case and spaces", "HTTP/1.1 200\r\ncontent-LENGTH:  3 \r\nX: y\r\n\r\nabcNEXT", 200, "abc", "", "NEXT", nil},
		{"bare LF", "HTTP/1.1 200 OK\nContent-Length: 2\n\nhiNEXT", 200, "hi", "", "NEXT", nil},
		{"chunked", "HTTP/1.1 200 OK\r\nTransfer-Encoding: Chunked\r\n\r\n5;x=y\r\nhello\r\nA\r\n0123456789\r\n0\r\nT: v\r\n\r\nNEXT",
			200, "hello0123456789", "", "NEXT", nil},
		{"interim", "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\n\r\nNEXT", 204, "", "", "NEXT", nil},
		{"no content", "HTTP/1.1 204 No Content\r\nContent-Length: 4\r\n\r\nNEXT", 204, "", "", "NEXT", nil},
		{"error", "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 12\r\n\r\n no leader \nNEXT", 503, "", "no leader", "NEXT", nil},
		{"close", "HTTP/1.1 200 OK\r\nConnection: keep-alive, Close\r\n\r\nto the end", 200, "to the end", "", "", nil},
		{"1.0", "HTTP/1.0 200 OK\r\n\r\nold", 200, "old", "", "", nil},
		{"no length", "HTTP/1.1 200 OK\r\n\r\nabc", 0, "", "", "", errMalformed},
		{"not HTTP/1", "HTTP/2 200\r\n\r\n", 0, "", "", "", errMalformed},
		{"bad status", "HTTP/1.1 2x0 OK\r\n\r\n", 0, "", "", "", errMalformed},
		{"bad length", "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", 0, "", "", "", errMalformed},
		{"two lengths", "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab", 0, "", "", "", errMalformed},
		{"gzip", "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", 0, "", "", "", errMalformed},
		{"bad chunk size", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", 0, "", "", "", errMalformed},
		{"long chunk", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcd\r\n0\r\n\r\n", 0, "", "", "", errMalformed},
		{"no colon", "HTTP/1.1 200 OK\r\nContent-Length 1\r\n\r\na", 0, "", "", "", errMalformed},
		{"long line", "HTTP/1.1 200 OK\r\nX: " + strings.Repeat("x", bufSize) + "\r\n\r\n", 0, "", "", "", errMalformed},
		{"short body", "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc", 0, "", "", "", io.ErrUnexpectedEOF},
		{"short chunk", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab", 0, "", "", "", io.ErrUnexpectedEOF},
		{"short head", "HTTP/1.1 200 OK\r\nContent-Le", 0, "", "", "", io.ErrUnexpectedEOF},
	} {
		c := newTestConn(t, "http://h:1", time.Second)
		c.br.Reset(strings.NewReader(tc.raw))
		var body []byte
		status, errBody, err := c.readResponse(&body)
		rest, _ := io.ReadAll(c.br)
		if status != tc.status || errBody != tc.errBody || !errors.Is(err, tc.err) ||
			(tc.err == nil && (string(body) != tc.body || string(rest) != tc.rest)) {
			t.Errorf("%s: %d %q %q, %v, rest %q; want %d %q %q, %v, rest %q",
				tc.name, status, body, errBody, err, rest, tc.status, tc.body, tc.errBody, tc.err, tc.rest)
		}
	}
}

// BenchmarkConnDo measures PUTs of 100 bytes on one connection. Against
// net/http's server, allocs/op are mostly the server's; the canned server
// allocates nothing per request, so there they are the client's alone.
func BenchmarkConnDo(b *testing.B) {
	value := bytes.Repeat([]byte("v"), 100)
	path := []byte("/00000001")
	for _, s := range []struct {
		name   string
		server func(b *testing.B) string
	}{
		{"net-http-server", func(b *testing.B) string {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				io.Copy(io.Discard, r.Body)
				w.WriteHeader(http.StatusNoContent)
			}))
			b.Cleanup(srv.Close)
			return srv.URL
		}},
		{"canned-server", cannedServer},
	} {
		b.Run(s.name, func(b *testing.B) {
			c := newTestConn(b, s.server(b), 5*time.Second)
			ctx := b.Context()
			b.ReportAllocs()
			for b.Loop() {
				if status, _, err := c.roundTrip(ctx, http.MethodPut, path, value, nil); err != nil || status != http.StatusNoContent {
					b.Fatalf("PUT = %d, %v", status, err)
				}
			}
		})
	}
}

// cannedServer answers every request with a 204 and allocates nothing per
// request. It returns its URL.
func cannedServer(b *testing.B) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { l.Close() })
	go func() {
		for {
			nc, err := l.Accept()
			if err != nil {
				return
			}
			go serveCanned(nc)
		}
	}()
	return "http://" + l.Addr().String()
}

func serveCanned(nc net.Conn) {
	defer nc.Close()
	br := bufio.NewReader(nc)
	answer := []byte("HTTP/1.1 204 No Content\r\n\r\n")
	for {
		var length int64
		for {
			line, err := br.ReadSlice('\n')
			if err != nil {
				return
			}
			line = trimSpace(bytes.TrimRight(line, "\r\n"))
			if len(line) == 0 {
				break
			}
			if name, v, ok := bytes.Cut(line, []byte(":")); ok && equalFold(name, "content-length") {
				length, _ = parseUint(trimSpace(v), 10)
			}
		}
		if _, err := br.Discard(int(length)); err != nil {
			return
		}
		if _, err := nc.Write(answer); err != nil {
			return
		}
	}
}
