package httpapi

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"log"
	"maps"
	"net"
	"net/http"
	"net/url"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// fastBufSize is the size of a fast connection's read and write buffers. A
// request head must fit in the read buffer to be served on the fast path.
const fastBufSize = 4 << 10

// fastRequest is what the fast path needs of a request head.
type fastRequest struct {
	method   string // "GET" or "PUT"
	path     string // the target up to '?', which needs no decoding
	rawQuery string
	length   int64 // Content-Length; 0 when absent
	json     bool  // an Accept header lists application/json (see acceptsJSON)
	route    bool  // X-Raftkv-Route: client (see routingClient)
	// clientID and clientSeq are the values of X-Client-ID and
	// X-Client-Seq, when sent (at most once each).
	clientID, clientSeq []string
}

// parseHead parses head, a complete request head ending in "\r\n\r\n". It
// reports false for anything it does not serve itself, leaving the request
// to net/http, which gives every such case its usual answer: only HTTP/1.1
// GET and PUT whose target is a path of printable ASCII without percent
// escapes, with exactly one Host header, at most one Content-Length, and no
// header that changes the framing or the connection (Transfer-Encoding,
// Expect, Connection other than keep-alive, Upgrade, TE, Trailer), no
// If-Match or If-None-Match, and X-Client-ID and X-Client-Seq at most
// once each. Every
// head it accepts, http.ReadRequest reads as the same method, path, query
// and length (FuzzParseHead checks this).
func parseHead(head []byte) (req fastRequest, ok bool) {
	line, rest, _ := bytes.Cut(head, []byte("\r\n"))
	method, line, _ := bytes.Cut(line, []byte(" "))
	target, proto, found := bytes.Cut(line, []byte(" "))
	switch {
	case !found, string(proto) != "HTTP/1.1":
		return req, false
	case string(method) == http.MethodGet:
		req.method = http.MethodGet
	case string(method) == http.MethodPut:
		req.method = http.MethodPut
	default:
		return req, false
	}
	if len(target) == 0 || target[0] != '/' {
		return req, false
	}
	for _, c := range target {
		if c <= ' ' || c >= 0x7f || c == '%' || c == '#' {
			return req, false
		}
	}
	path, query, _ := bytes.Cut(target, []byte("?"))
	hosts, lengths := 0, 0
	for {
		var h []byte
		h, rest, found = bytes.Cut(rest, []byte("\r\n"))
		if !found {
			return req, false
		}
		if len(h) == 0 {
			break
		}
		name, value, found := bytes.Cut(h, []byte(":"))
		if !found || !validHeaderName(name) {
			return req, false
		}
		value = bytes.Trim(value, " \t")
		for _, c := range value {
			if c < ' ' && c != '\t' || c == 0x7f {
				return req, false
			}
		}
		switch {
		case asciiEqualFold(name, "Host"):
			hosts++
			if !validHost(value) {
				return req, false
			}
		case asciiEqualFold(name, "Content-Length"):
			lengths++
			n, ok := parseLength(value)
			if !ok {
				return req, false
			}
			req.length = n
		case asciiEqualFold(name, "Accept"):
			req.json = req.json || acceptsJSON(value)
		case asciiEqualFold(name, HeaderRoute):
			req.route = req.route || equalFoldTrimmed(value, "client")
		case asciiEqualFold(name, HeaderClientID):
			if req.clientID != nil {
				return req, false
			}
			req.clientID = []string{string(value)}
		case asciiEqualFold(name, HeaderClientSeq):
			if req.clientSeq != nil {
				return req, false
			}
			req.clientSeq = []string{string(value)}
		case asciiEqualFold(name, "Connection"):
			if !asciiEqualFold(value, "keep-alive") {
				return req, false
			}
		case asciiEqualFold(name, "Transfer-Encoding"), asciiEqualFold(name, "Expect"),
			asciiEqualFold(name, "Upgrade"), asciiEqualFold(name, "TE"), asciiEqualFold(name, "Trailer"),
			// A conditional write is a transaction: net/http's path.
			asciiEqualFold(name, "If-Match"), asciiEqualFold(name, "If-None-Match"):
			return req, false
		}
	}
	if len(rest) != 0 || hosts != 1 || lengths > 1 {
		return req, false
	}
	req.path, req.rawQuery = string(path), string(query)
	return req, true
}

// validHeaderName reports whether name is an HTTP token.
func validHeaderName(name []byte) bool {
	return len(name) > 0 && allBytes(name, func(c byte) bool {
		return isAlnum(c) || bytes.IndexByte([]byte("!#$%&'*+-.^_`|~"), c) >= 0
	})
}

// validHost accepts the host[:port] spellings clients send: names, IPv4
// and bracketed IPv6 addresses. Anything else goes to net/http.
func validHost(v []byte) bool {
	return len(v) > 0 && allBytes(v, func(c byte) bool {
		return isAlnum(c) || bytes.IndexByte([]byte(".-:[]_"), c) >= 0
	})
}

func isAlnum(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9'
}

func allBytes(b []byte, ok func(byte) bool) bool {
	for _, c := range b {
		if !ok(c) {
			return false
		}
	}
	return true
}

// parseLength accepts 1 to 18 decimal digits.
func parseLength(v []byte) (int64, bool) {
	if len(v) == 0 || len(v) > 18 {
		return 0, false
	}
	var n int64
	for _, c := range v {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	return n, true
}

func asciiEqualFold(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := range b {
		x, y := b[i], s[i]
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}

// Server serves a handler from New. The requests clients send most, GET and
// PUT of one key in raftexample's form (/<key>), it reads and answers on a
// lean HTTP/1.1 loop of its own: one goroutine and two buffers per
// connection, no allocation per request but the value and the call's
// deadline, and none of net/http's per-request goroutine, context and
// header map. Everything
// else, and the rest of any connection once it sends such a request, it
// hands to a net/http server, replaying what it had read, so every other
// request gets net/http's behaviour and limits. Both paths answer through
// the same handler code and error mapping.
type Server struct {
	// ErrorLog is net/http's ErrorLog for the connections it serves; set
	// it before Serve.
	ErrorLog *log.Logger

	addr string
	h    *handler // nil: every connection goes to std
	std  *http.Server
	hand *handoffListener

	startStd sync.Once

	mu struct {
		sync.Mutex
		lns   map[net.Listener]struct{}
		conns map[*fastConn]struct{}
	}
	// closed is set, under mu, once Shutdown or Close began; under mu it
	// also tells track and Serve not to add listeners or connections.
	closed atomic.Bool
	date   atomic.Pointer[dateLine]
	served atomic.Uint64 // requests answered on the fast path
}

// dateLine is a response's Date header line, formatted once a second.
type dateLine struct {
	sec  int64
	line []byte
}

// Serve accepts connections on ln until Shutdown or Close, after which it
// returns http.ErrServerClosed.
func (s *Server) Serve(ln net.Listener) error {
	if s.h == nil {
		return s.std.Serve(ln)
	}
	s.mu.Lock()
	if s.closed.Load() {
		s.mu.Unlock()
		ln.Close()
		return http.ErrServerClosed
	}
	s.mu.lns[ln] = struct{}{}
	s.mu.Unlock()
	s.startStd.Do(func() {
		s.std.ErrorLog = s.ErrorLog
		s.hand.addr = ln.Addr()
		// It ends only once hand is closed.
		go s.std.Serve(s.hand)
	})
	var backoff time.Duration
	for {
		nc, err := ln.Accept()
		if err != nil {
			if s.closed.Load() {
				return http.ErrServerClosed
			}
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				// As net/http: back off on transient errors (EMFILE).
				backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
				time.Sleep(backoff)
				continue
			}
			return err
		}
		backoff = 0
		c := &fastConn{s: s, nc: nc}
		if !s.track(c) {
			nc.Close()
			return http.ErrServerClosed
		}
		go c.serve()
	}
}

// ListenAndServe listens on the server's address and serves it.
func (s *Server) ListenAndServe() error {
	ln, err := net.Listen("tcp", s.addr)
	if err != nil {
		return err
	}
	return s.Serve(ln)
}

// Shutdown stops accepting connections, closes idle ones, and waits until
// every request being served is answered or ctx ends, as
// http.Server.Shutdown.
func (s *Server) Shutdown(ctx context.Context) error {
	s.beginClose(false)
	errc := make(chan error, 1)
	go func() { errc <- s.std.Shutdown(ctx) }()
	wait := time.Millisecond
	t := time.NewTimer(wait)
	defer t.Stop()
	for !s.drained() {
		select {
		case <-ctx.Done():
			<-errc
			return ctx.Err()
		case <-t.C:
			wait = min(2*wait, 100*time.Millisecond)
			t.Reset(wait)
		}
	}
	return <-errc
}

// Close closes every listener and connection at once.
func (s *Server) Close() error {
	s.beginClose(true)
	return s.std.Close()
}

func (s *Server) beginClose(all bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed.Store(true)
	for ln := range s.mu.lns {
		ln.Close()
	}
	for c := range s.mu.conns {
		if all || c.state.CompareAndSwap(connIdle, connClosed) {
			c.nc.Close()
		}
	}
	if s.hand != nil {
		s.hand.Close()
	}
}

func (s *Server) drained() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.mu.conns) == 0
}

// track registers c, idle; false once the server is closing.
func (s *Server) track(c *fastConn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed.Load() {
		return false
	}
	s.mu.conns[c] = struct{}{}
	return true
}

func (s *Server) forget(c *fastConn) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.mu.conns, c)
}

// dateHeader returns the "Date: ...\r\n" line for now.
func (s *Server) dateHeader() []byte {
	now := time.Now()
	if d := s.date.Load(); d != nil && d.sec == now.Unix() {
		return d.line
	}
	line := append([]byte("Date: "), now.UTC().AppendFormat(nil, http.TimeFormat)...)
	d := &dateLine{sec: now.Unix(), line: append(line, "\r\n"...)}
	s.date.Store(d)
	return d.line
}

// fastConn is one client connection served by Server's own loop.
type fastConn struct {
	s *Server
	// state is connIdle while the connection waits for a request; Shutdown
	// closes it only if it swaps that for connClosed, and a connection
	// that finds the server closing once its answer is out closes itself.
	state atomic.Int32
	nc    net.Conn
	br    *bufio.Reader
	bw    *bufio.Writer
	w     fastResponse // for answers written through the handler's code
	// broken: a request body could not be read whole, so the connection
	// is closed after its answer.
	broken bool
	// readBy and writeBy are the deadlines last set on nc (see extend).
	readBy, writeBy time.Time
}

// A connection's read and write deadlines are moved only once they are
// nearer than their timeout less a slack (an eighth of the timeout, at
// most a second), so a busy connection changes them about once a second
// instead of twice per request: each change takes the poller's lock and
// moves a runtime timer.
const maxDeadlineSlack = time.Second

// extend moves *by, the deadline last set by set, to now+timeout unless
// it is already within the slack of that.
func extend(by *time.Time, now time.Time, timeout time.Duration, set func(time.Time) error) {
	want := now.Add(timeout)
	if by.Before(want.Add(-min(timeout/8, maxDeadlineSlack))) {
		*by = want
		set(want)
	}
}

const (
	connIdle int32 = iota
	connActive
	connClosed
)

func (c *fastConn) serve() {
	handedOff := false
	defer func() {
		c.s.forget(c)
		if !handedOff {
			c.nc.Close()
		}
	}()
	c.br = bufio.NewReaderSize(c.nc, fastBufSize)
	c.bw = bufio.NewWriterSize(c.nc, fastBufSize)
	c.w.c = c
	for {
		extend(&c.readBy, time.Now(), serverIdleTimeout, c.nc.SetReadDeadline)
		if _, err := c.br.Peek(1); err != nil {
			answerPlainHTTP(err)
			return
		}
		if !c.state.CompareAndSwap(connIdle, connActive) {
			return
		}
		head := c.readHead()
		req, ok := fastRequest{}, head != nil
		if ok {
			req, ok = parseHead(head)
		}
		if ok {
			ok = c.serveRequest(req, len(head))
		}
		if !ok {
			handedOff = c.handOff()
			return
		}
		if c.bw.Flush() != nil || c.broken {
			return
		}
		if c.br.Buffered() == 0 {
			// The client has just been sent its answer, so its next
			// request is seldom here yet: reading now would mostly find
			// nothing and park this goroutine in the poller, a system
			// call and a wake-up more per request. Letting the other
			// connections' goroutines run first gives the request time
			// to arrive.
			runtime.Gosched()
		}
		c.state.Store(connIdle)
		if c.s.closed.Load() {
			return
		}
	}
}

// answerPlainHTTP answers, as net/http's own server does, a client that
// sent plain HTTP to the TLS client port: its first read's handshake
// failed on a record that starts like a request. Without it the
// connection just closed, and a client saw EOF and retried until its
// deadline.
func answerPlainHTTP(err error) {
	var re tls.RecordHeaderError
	if !errors.As(err, &re) || re.Conn == nil {
		return
	}
	switch string(re.RecordHeader[:]) {
	case "GET /", "HEAD ", "POST ", "PUT /", "DELET", "OPTIO":
		re.Conn.SetWriteDeadline(time.Now().Add(time.Second))
		io.WriteString(re.Conn, "HTTP/1.0 400 Bad Request\r\n\r\nClient sent an HTTP request to an HTTPS server.\n")
	}
}

// readHead returns the request head if all of it is in the read buffer,
// else nil: a head that arrives in pieces (a slow or unusual client, or
// bytes that are no request) goes to net/http, with its header timeout
// and its answers to malformed requests.
func (c *fastConn) readHead() []byte {
	buf, _ := c.br.Peek(c.br.Buffered())
	if i := bytes.Index(buf, []byte("\r\n\r\n")); i >= 0 {
		return buf[:i+4]
	}
	return nil
}

// serveRequest answers a request whose head (headLen bytes, still in the
// read buffer) parsed as req; false leaves it, unread, to net/http.
func (c *fastConn) serveRequest(req fastRequest, headLen int) bool {
	h := c.s.h
	p := req.path
	switch {
	case reserved(p), len(p) < 2, h.mounted(p) != nil:
		return false
	case req.method == http.MethodGet && req.length != 0:
		return false
	case req.method == http.MethodPut && req.rawQuery != "":
		return false // ?ttl=: net/http's path reads the query of a PUT
	case req.method == http.MethodGet && strings.Contains(req.rawQuery, "watch"):
		return false // a watch streams for as long as its client stays
	case req.length > h.cfg.MaxValueBytes:
		return false // net/http's path answers 413
	}
	if h.inFlight.Add(1) > int64(h.cfg.MaxInFlight) {
		h.inFlight.Add(-1)
		return false // net/http's path refuses it
	}
	defer h.inFlight.Add(-1)
	c.s.served.Add(1)
	// The request is ours: consume its head and body, within the time
	// net/http allows a request (ReadTimeout) and its answer (WriteTimeout),
	// less at most their slack (see extend). A body already in the buffer
	// needs no read deadline.
	now := time.Now()
	extend(&c.writeBy, now, c.s.std.WriteTimeout, c.nc.SetWriteDeadline)
	if int64(c.br.Buffered()-headLen) < req.length {
		c.readBy = now.Add(c.s.std.ReadTimeout)
		c.nc.SetReadDeadline(c.readBy)
	}
	c.br.Discard(headLen)
	var err error
	if req.method == http.MethodPut {
		var value []byte
		if value, err = readValue(c.br, req.length); err != nil {
			// What follows on the connection is no request head.
			err, c.broken = badBody(err), true
		} else {
			err = c.put(p[1:], value, req)
		}
	} else {
		err = c.get(p[1:], req.rawQuery)
	}
	if err != nil {
		c.w.start(req)
		h.fail(&c.w, c.w.request(), err)
		c.w.finish()
	}
	return true
}

// readValue reads a body of n bytes. A large one's buffer grows as its
// bytes arrive, as io.ReadAll's does, so a client that announces a large
// body and sends little of it holds little memory.
func readValue(r io.Reader, n int64) ([]byte, error) {
	const whole = 64 << 10 // read into a buffer of the full size at once
	if n <= whole {
		b := make([]byte, n)
		if _, err := io.ReadFull(r, b); err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF // the body ended before it began
			}
			return nil, err
		}
		return b, nil
	}
	b := make([]byte, 0, whole)
	for int64(len(b)) < n {
		if len(b) == cap(b) {
			grown := make([]byte, len(b), min(int(n), 2*len(b)))
			copy(grown, b)
			b = grown
		}
		k, err := r.Read(b[len(b):min(cap(b), int(n))])
		b = b[:len(b)+k]
		if err != nil && int64(len(b)) < n {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return nil, err
		}
	}
	return b, nil
}

func (c *fastConn) put(key string, value []byte, req fastRequest) error {
	if err := c.s.h.checkKey(key); err != nil {
		return err
	}
	wo, err := writeOptions(req.clientID, req.clientSeq)
	if err != nil {
		return err
	}
	wr, err := c.s.h.writeKey(fastParent, keyWrite{key: key, value: value, wo: wo})
	if err != nil {
		return err
	}
	b := c.bw.AvailableBuffer()
	// Headers in net/http's order, as in get.
	b = append(b, "HTTP/1.1 204 No Content\r\n"...)
	if wr.ModIndex != 0 {
		b = append(b, "Etag: \""...)
		b = strconv.AppendUint(b, wr.ModIndex, 10)
		b = append(b, "\"\r\n"...)
	}
	b = append(b, "X-Raft-Index: "...)
	b = strconv.AppendUint(b, wr.Index, 10)
	b = append(b, "\r\n"...)
	b = append(b, c.s.dateHeader()...)
	b = append(b, "\r\n"...)
	c.bw.Write(b)
	return nil
}

func (c *fastConn) get(key, rawQuery string) error {
	kv, index, err := c.s.h.getKey(fastParent, key, rawQuery)
	if err != nil {
		return err
	}
	b := c.bw.AvailableBuffer()
	// Headers in net/http's order: the handler's sorted (see setVersion),
	// then Date.
	b = append(b, "HTTP/1.1 200 OK\r\nContent-Length: "...)
	b = strconv.AppendInt(b, int64(len(kv.Value)), 10)
	b = append(b, "\r\nContent-Type: application/octet-stream\r\nEtag: \""...)
	b = strconv.AppendUint(b, kv.ModIndex, 10)
	b = append(b, "\"\r\nX-Create-Index: "...)
	b = strconv.AppendUint(b, kv.CreateIndex, 10)
	b = append(b, "\r\nX-Raft-Index: "...)
	b = strconv.AppendUint(b, index, 10)
	if kv.TTL > 0 {
		b = append(b, "\r\nX-Ttl: "...)
		b = strconv.AppendFloat(b, kv.TTL.Seconds(), 'f', -1, 64)
	}
	b = append(b, "\r\n"...)
	b = append(b, c.s.dateHeader()...)
	b = append(b, "\r\n"...)
	c.bw.Write(b)
	c.bw.Write(kv.Value)
	return nil
}

// handOff passes the connection, with what was read of it, to net/http.
func (c *fastConn) handOff() bool {
	if c.bw.Flush() != nil {
		return false
	}
	buffered, _ := c.br.Peek(c.br.Buffered())
	return c.s.hand.push(&replayConn{Conn: c.nc, pending: bytes.Clone(buffered)})
}

// fastResponse is the http.ResponseWriter of an answer the fast path writes
// through the handler's code (errors): it collects the status, headers and
// body, then writes them as net/http would, with a Content-Length.
type fastResponse struct {
	c      *fastConn
	req    fastRequest
	header http.Header
	code   int
	body   []byte
}

func (w *fastResponse) start(req fastRequest) {
	w.req, w.code, w.body = req, 0, w.body[:0]
	if w.header == nil {
		w.header = http.Header{}
	}
	clear(w.header)
}

// request is the *http.Request the handler's error path reads (method,
// path and whether it accepts JSON).
func (w *fastResponse) request() *http.Request {
	hdr := http.Header{}
	if w.req.json {
		hdr["Accept"] = []string{"application/json"}
	}
	if w.req.route {
		hdr[HeaderRoute] = []string{"client"}
	}
	return &http.Request{
		Method: w.req.method, URL: &url.URL{Path: w.req.path, RawQuery: w.req.rawQuery},
		Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1, Header: hdr,
		ContentLength: w.req.length, RequestURI: w.req.path,
	}
}

func (w *fastResponse) Header() http.Header { return w.header }

func (w *fastResponse) WriteHeader(code int) {
	if w.code == 0 {
		w.code = code
	}
}

func (w *fastResponse) Write(p []byte) (int, error) {
	w.WriteHeader(http.StatusOK)
	w.body = append(w.body, p...)
	return len(p), nil
}

// finish writes the answer as net/http does: the status line, the
// handler's headers sorted by name, Date, then the Content-Length the
// handler did not set itself.
func (w *fastResponse) finish() {
	w.WriteHeader(http.StatusOK)
	bw := w.c.bw
	b := bw.AvailableBuffer()
	b = append(b, "HTTP/1.1 "...)
	b = strconv.AppendInt(b, int64(w.code), 10)
	b = append(b, ' ')
	b = append(b, http.StatusText(w.code)...)
	b = append(b, "\r\n"...)
	for _, k := range slices.Sorted(maps.Keys(w.header)) {
		for _, v := range w.header[k] {
			b = append(b, k...)
			b = append(b, ": "...)
			b = append(b, v...)
			b = append(b, "\r\n"...)
		}
	}
	b = append(b, w.c.s.dateHeader()...)
	if _, set := w.header["Content-Length"]; !set && w.code != http.StatusNoContent && w.code != http.StatusNotModified {
		b = append(b, "Content-Length: "...)
		b = strconv.AppendInt(b, int64(len(w.body)), 10)
		b = append(b, "\r\n"...)
	}
	b = append(b, "\r\n"...)
	bw.Write(b)
	bw.Write(w.body)
}

// replayConn is a connection handed to net/http: reads return what the fast
// loop had already read before reading on.
type replayConn struct {
	net.Conn
	pending []byte
}

// CloseWrite half-closes the connection, as net/http does (through
// *net.TCPConn) before it closes one whose request it did not read whole,
// so that the client reads the answer before a reset.
func (c *replayConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

func (c *replayConn) Read(p []byte) (int, error) {
	if len(c.pending) > 0 {
		n := copy(p, c.pending)
		c.pending = c.pending[n:]
		return n, nil
	}
	return c.Conn.Read(p)
}

// handoffListener is the listener net/http serves: it yields the
// connections the fast loop hands over.
type handoffListener struct {
	addr  net.Addr
	conns chan net.Conn
	done  chan struct{}
	once  sync.Once
}

func newHandoffListener() *handoffListener {
	return &handoffListener{conns: make(chan net.Conn), done: make(chan struct{})}
}

func (l *handoffListener) push(c net.Conn) bool {
	select {
	case l.conns <- c:
		return true
	case <-l.done:
		return false
	}
}

func (l *handoffListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

func (l *handoffListener) Close() error {
	l.once.Do(func() { close(l.done) })
	return nil
}

func (l *handoffListener) Addr() net.Addr { return l.addr }
