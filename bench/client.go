package bench

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"
)

// errMalformed is wrapped by the error of a response that breaks HTTP/1.1
// or uses a part of it this client does not speak; the connection is closed.
var errMalformed = errors.New("bench: malformed response")

// errClosed is returned by a request on a conn after Close.
var errClosed = errors.New("bench: connection closed")

// abortedDeadline is set on a connection to abort the request in flight when
// its context ends: any time in the past fails every read and write at once.
var abortedDeadline = time.Unix(1, 0)

const (
	// bufSize is the size of a connection's read and write buffers; a line
	// of a response head longer than this is refused.
	bufSize = 8 << 10
	// noLength is the length of a body that ends when the connection does.
	noLength = -1
)

// conn is one HTTP/1.1 keep-alive connection to one endpoint, dialled on
// first use and again after any error. Workers that share it queue for it:
// a request holds it from sending its head to reading the end of its answer,
// so requests never overlap and nothing is pipelined.
//
// The client is as lean as a load generator's needs to be, not a general
// one: it writes the request head into a reused buffer and parses the
// answer's head in place, so a request allocates nothing unless it fails.
type conn struct {
	endpoint string        // scheme://host[:port], for error messages
	addr     string        // host:port to dial
	host     string        // value of the Host header
	tls      *tls.Config   // nil for http endpoints
	timeout  time.Duration // bound of a request, its dial and retry included
	// routing marks the requests as a routing client's (X-Raftkv-Route:
	// client), so that a shard member answers a key of another group 421
	// rather than 307.
	routing bool

	// turn holds a token while no request uses the connection; a request
	// takes it and puts it back when done. Waiters are served in order.
	turn chan struct{}

	// The fields below belong to the request holding the turn.
	nc      net.Conn // nil until dialled and after an error
	br      *bufio.Reader
	bw      *bufio.Writer
	head    []byte          // request head being written
	errBuf  []byte          // start of an error answer's body
	watched <-chan struct{} // Done of the context whose end aborts requests

	// mu guards what Close and the end of a context touch from other
	// goroutines; the request holding the turn locks it only to change them,
	// not once per request.
	mu struct {
		sync.Mutex
		nc      net.Conn
		watched <-chan struct{}
		stop    func() bool // unregisters the abort of watched
		closed  bool
	}
}

// newConn returns a conn to endpoint, http(s)://host[:port] (checked by
// Config.Validate); nothing is dialled.
// For https, tlsCfg (nil: Go's defaults) gives the CAs to trust and the
// client certificate; the server name is the endpoint's host unless it
// names one.
func newConn(endpoint string, timeout time.Duration, tlsCfg *tls.Config) (*conn, error) {
	u, err := url.Parse(endpoint)
	if err != nil {
		return nil, err
	}
	c := &conn{endpoint: endpoint, host: u.Host, timeout: timeout, turn: make(chan struct{}, 1)}
	port := u.Port()
	switch u.Scheme {
	case "http":
		if port == "" {
			port = "80"
		}
	case "https":
		if port == "" {
			port = "443"
		}
		if tlsCfg != nil {
			c.tls = tlsCfg.Clone()
		} else {
			c.tls = &tls.Config{}
		}
		if c.tls.ServerName == "" {
			c.tls.ServerName = u.Hostname()
		}
		c.tls.NextProtos = []string{"http/1.1"}
	default:
		return nil, fmt.Errorf("endpoint %q: scheme %q is not http or https", endpoint, u.Scheme)
	}
	c.addr = net.JoinHostPort(u.Hostname(), port)
	c.br = bufio.NewReaderSize(nil, bufSize)
	c.bw = bufio.NewWriterSize(nil, bufSize)
	c.errBuf = make([]byte, 0, maxErrorBody)
	c.turn <- struct{}{}
	return c, nil
}

// close closes the connection; a request in flight fails, and every later
// one fails with errClosed. It may be called from any goroutine.
func (c *conn) close() {
	c.mu.Lock()
	c.mu.closed = true
	nc, stop := c.mu.nc, c.mu.stop
	c.mu.nc, c.mu.stop, c.mu.watched = nil, nil, nil
	c.mu.Unlock()
	if stop != nil {
		stop()
	}
	if nc != nil {
		nc.Close() // a TLS connection writes its close_notify: not under mu
	}
}

func (c *conn) closed() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.mu.closed
}

// roundTrip sends a request and reads its whole answer. path is the request
// target (path and query); value, if non-nil, is the body. The body of a
// successful answer (status < 300) is appended to *body if body is non-nil,
// else discarded; errBody is the start of an error answer's body (status >=
// 300), trimmed. Redirects are answers, not followed.
//
// Like net/http with an idempotent request, roundTrip sends the request
// again, once, on a new connection if a reused one broke before any byte of
// the answer came: the server closed it while it was idle.
func (c *conn) roundTrip(ctx context.Context, method string, path, value []byte, body *[]byte) (status int, errBody string, err error) {
	select {
	case <-c.turn:
	case <-ctx.Done():
		return 0, "", ctx.Err()
	}
	defer func() { c.turn <- struct{}{} }()
	if err := ctx.Err(); err != nil {
		return 0, "", err
	}
	c.watch(ctx)
	deadline := time.Now().Add(c.timeout)
	for retried := false; ; retried = true {
		reused := c.nc != nil
		var answered bool
		status, errBody, answered, err = c.exchange(ctx, deadline, method, path, value, body)
		if err == nil {
			return status, errBody, nil
		}
		c.drop()
		if ctx.Err() != nil {
			return 0, "", ctx.Err()
		}
		if c.closed() {
			return 0, "", errClosed
		}
		if reused && !answered && !retried && classify(0, err) == ErrClassReset {
			continue
		}
		// The same message as net/http's, so error samples read as before.
		op := method[:1] + strings.ToLower(method[1:])
		return 0, "", &url.Error{Op: op, URL: c.endpoint + string(path), Err: err}
	}
}

// exchange is one try of roundTrip; answered reports whether any byte of
// the answer came.
func (c *conn) exchange(ctx context.Context, deadline time.Time, method string, path, value []byte, body *[]byte) (status int, errBody string, answered bool, err error) {
	if c.nc == nil {
		if err := c.dial(ctx, deadline); err != nil {
			return 0, "", false, err
		}
	} else if err := c.nc.SetDeadline(deadline); err != nil {
		return 0, "", false, err
	}
	// After the deadline is set, so that an abort from now on overrides it.
	if err := ctx.Err(); err != nil {
		return 0, "", false, err
	}
	if err := c.writeRequest(method, path, value); err != nil {
		return 0, "", false, err
	}
	if _, err := c.br.Peek(1); err != nil {
		return 0, "", false, err
	}
	status, errBody, err = c.readResponse(body)
	return status, errBody, true, err
}

// watch makes the end of ctx abort the request in flight on c. A run uses
// one context for all its requests, so this registers once per run.
func (c *conn) watch(ctx context.Context) {
	done := ctx.Done()
	if done == c.watched {
		return
	}
	c.watched = done
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.mu.stop != nil {
		// A stale abort that already runs finds mu.watched changed.
		c.mu.stop()
	}
	c.mu.watched, c.mu.stop = done, nil
	if done != nil && !c.mu.closed {
		c.mu.stop = context.AfterFunc(ctx, func() { c.abort(done) })
	}
}

// abort fails the request in flight, if the context whose Done is done is
// still the one watched.
func (c *conn) abort(done <-chan struct{}) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.mu.watched == done && c.mu.nc != nil {
		c.mu.nc.SetDeadline(abortedDeadline)
	}
}

// dial opens a new connection, with the TLS handshake for https.
func (c *conn) dial(ctx context.Context, deadline time.Time) error {
	d := net.Dialer{Deadline: deadline}
	nc, err := d.DialContext(ctx, "tcp", c.addr)
	if err != nil {
		return err
	}
	if err := nc.SetDeadline(deadline); err != nil {
		nc.Close()
		return err
	}
	if c.tls != nil {
		tc := tls.Client(nc, c.tls)
		if err := tc.HandshakeContext(ctx); err != nil {
			nc.Close()
			return err
		}
		nc = tc
	}
	c.mu.Lock()
	closed := c.mu.closed
	if !closed {
		c.mu.nc = nc
	}
	c.mu.Unlock()
	if closed {
		nc.Close()
		return errClosed
	}
	c.nc = nc
	c.br.Reset(nc)
	c.bw.Reset(nc)
	return nil
}

// drop closes the connection after an error or a Connection: close, so that
// the next request dials a new one.
func (c *conn) drop() {
	if c.nc == nil {
		return
	}
	c.mu.Lock()
	c.mu.nc = nil
	c.mu.Unlock()
	c.nc.Close()
	c.nc = nil
}

func (c *conn) writeRequest(method string, path, value []byte) error {
	h := append(c.head[:0], method...)
	h = append(h, ' ')
	h = append(h, path...)
	h = append(h, " HTTP/1.1\r\nHost: "...)
	h = append(h, c.host...)
	if c.routing {
		h = append(h, "\r\nX-Raftkv-Route: client"...)
	}
	if value != nil || method == "PUT" || method == "POST" {
		h = append(h, "\r\nContent-Length: "...)
		h = strconv.AppendInt(h, int64(len(value)), 10)
	}
	h = append(h, "\r\n\r\n"...)
	c.head = h
	c.bw.Write(h)
	c.bw.Write(value)
	return c.bw.Flush() // a bufio.Writer keeps its first error
}

// response is what the head of an answer says about its body.
type response struct {
	status  int
	length  int64 // Content-Length, or noLength
	chunked bool
	close   bool // the server closes the connection after the answer
}

// readResponse reads one answer, skipping interim (1xx) ones.
func (c *conn) readResponse(body *[]byte) (status int, errBody string, err error) {
	var r response
	for {
		if r, err = c.readHead(); err != nil {
			return 0, "", err
		}
		if r.status >= 200 {
			break
		}
	}
	dst, limit := body, noLength
	if r.status >= 300 {
		c.errBuf = c.errBuf[:0]
		dst, limit = &c.errBuf, maxErrorBody
	}
	switch {
	case r.status == 204 || r.status == 304:
	case r.chunked:
		err = c.readChunked(dst, limit)
	case r.length >= 0:
		err = c.readBody(r.length, dst, limit)
	case r.close:
		err = c.readBody(noLength, dst, limit)
	default:
		err = fmt.Errorf("%w: status %d without Content-Length", errMalformed, r.status)
	}
	if err != nil {
		return 0, "", err
	}
	if r.close {
		c.drop()
	}
	if r.status >= 300 {
		errBody = strings.TrimSpace(string(c.errBuf))
	}
	return r.status, errBody, nil
}

// readHead reads a status line and the header fields after it.
func (c *conn) readHead() (response, error) {
	r := response{length: noLength}
	line, err := c.readLine()
	if err != nil {
		return r, err
	}
	// HTTP/1.x 204[ reason]
	if len(line) < 12 || string(line[:7]) != "HTTP/1." || line[8] != ' ' || (len(line) > 12 && line[12] != ' ') {
		return r, fmt.Errorf("%w: status line %q", errMalformed, line)
	}
	for _, d := range line[9:12] {
		if d < '0' || d > '9' {
			return r, fmt.Errorf("%w: status line %q", errMalformed, line)
		}
		r.status = r.status*10 + int(d-'0')
	}
	if r.status < 100 {
		return r, fmt.Errorf("%w: status line %q", errMalformed, line)
	}
	r.close = line[7] == '0' // HTTP/1.0 closes unless asked not to; we never ask
	for {
		line, err := c.readLine()
		if err != nil {
			return r, err
		}
		if len(line) == 0 {
			return r, nil
		}
		i := indexByte(line, ':')
		if i <= 0 {
			return r, fmt.Errorf("%w: header line %q", errMalformed, line)
		}
		name, value := line[:i], trimSpace(line[i+1:])
		switch {
		case equalFold(name, "content-length"):
			n, ok := parseUint(value, 10)
			if !ok || (r.length != noLength && r.length != n) {
				return r, fmt.Errorf("%w: Content-Length %q", errMalformed, value)
			}
			r.length = n
		case equalFold(name, "transfer-encoding"):
			if !equalFold(value, "chunked") {
				return r, fmt.Errorf("%w: Transfer-Encoding %q", errMalformed, value)
			}
			r.chunked = true
		case equalFold(name, "connection"):
			if hasToken(value, "close") {
				r.close = true
			}
		}
	}
}

// readLine returns the next line of a head without its line end. It is
// valid until the next read.
func (c *conn) readLine() ([]byte, error) {
	line, err := c.br.ReadSlice('\n')
	if err != nil {
		switch {
		case errors.Is(err, bufio.ErrBufferFull):
			return nil, fmt.Errorf("%w: line longer than %d bytes", errMalformed, bufSize)
		case errors.Is(err, io.EOF):
			return nil, io.ErrUnexpectedEOF // a head has begun: the server hung up in it
		}
		return nil, err
	}
	line = line[:len(line)-1]
	if len(line) > 0 && line[len(line)-1] == '\r' {
		line = line[:len(line)-1]
	}
	return line, nil
}

// readChunked reads a chunked body and its trailer section.
func (c *conn) readChunked(dst *[]byte, limit int) error {
	for {
		line, err := c.readLine()
		if err != nil {
			return err
		}
		if i := indexByte(line, ';'); i >= 0 {
			line = line[:i] // a chunk extension
		}
		n, ok := parseUint(trimSpace(line), 16)
		if !ok {
			return fmt.Errorf("%w: chunk size %q", errMalformed, line)
		}
		if n == 0 {
			break
		}
		if err := c.readBody(n, dst, limit); err != nil {
			return err
		}
		if line, err = c.readLine(); err != nil {
			return err
		}
		if len(line) != 0 {
			return fmt.Errorf("%w: %d-byte chunk followed by %q", errMalformed, n, line)
		}
	}
	for {
		line, err := c.readLine()
		if err != nil || len(line) == 0 {
			return err
		}
	}
}

// readBody reads n bytes of body, or up to EOF if n is noLength, straight
// from the read buffer. It appends them to *dst if dst is non-nil, up to
// limit bytes in all unless limit is noLength, and discards the rest.
func (c *conn) readBody(n int64, dst *[]byte, limit int) error {
	for n != 0 {
		if _, err := c.br.Peek(1); err != nil { // fills an empty buffer
			switch {
			case n == noLength && errors.Is(err, io.EOF):
				return nil
			case errors.Is(err, io.EOF):
				return io.ErrUnexpectedEOF
			}
			return err
		}
		k := c.br.Buffered()
		if n != noLength && int64(k) > n {
			k = int(n)
		}
		if dst != nil {
			b, _ := c.br.Peek(k)
			if limit != noLength {
				b = b[:min(len(b), max(limit-len(*dst), 0))]
			}
			*dst = append(*dst, b...)
		}
		c.br.Discard(k)
		if n != noLength {
			n -= int64(k)
		}
	}
	return nil
}

// Allocation-free helpers on the bytes of a head.

func indexByte(b []byte, c byte) int {
	for i, x := range b {
		if x == c {
			return i
		}
	}
	return -1
}

func trimSpace(b []byte) []byte {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\t') {
		b = b[1:]
	}
	for len(b) > 0 && (b[len(b)-1] == ' ' || b[len(b)-1] == '\t') {
		b = b[:len(b)-1]
	}
	return b
}

// equalFold reports whether b equals lower, which is in lower case, ignoring
// ASCII case.
func equalFold(b []byte, lower string) bool {
	if len(b) != len(lower) {
		return false
	}
	for i, x := range b {
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if x != lower[i] {
			return false
		}
	}
	return true
}

// hasToken reports whether the comma-separated list b holds token (in lower
// case), ignoring case.
func hasToken(b []byte, token string) bool {
	for len(b) > 0 {
		i := indexByte(b, ',')
		if i < 0 {
			i = len(b)
		}
		if equalFold(trimSpace(b[:i]), token) {
			return true
		}
		b = b[min(i+1, len(b)):]
	}
	return false
}

// parseUint parses a non-empty number in base 10 or 16 that fits in 60 bits.
func parseUint(b []byte, base int64) (int64, bool) {
	if len(b) == 0 || len(b) > 15 {
		return 0, false
	}
	var n int64
	for _, x := range b {
		var d int64
		switch {
		case '0' <= x && x <= '9':
			d = int64(x - '0')
		case base == 16 && 'a' <= x && x <= 'f':
			d = int64(x-'a') + 10
		case base == 16 && 'A' <= x && x <= 'F':
			d = int64(x-'A') + 10
		default:
			return 0, false
		}
		n = n*base + d
	}
	return n, true
}
