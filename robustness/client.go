package robustness

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// DefaultRequestTimeout bounds one client request when Config leaves it zero.
const DefaultRequestTimeout = 3 * time.Second

// maxErrBody bounds how much of an error body an Op keeps.
const maxErrBody = 200

// Client talks to raftkv members over HTTP with a deadline on every
// request. It is safe for concurrent use.
type Client struct {
	http    *http.Client
	timeout time.Duration
}

// NewClient returns a Client whose requests each time out after timeout
// (DefaultRequestTimeout if zero). It keeps connections alive and never
// follows redirects: raftkv serves every request on any member.
func NewClient(timeout time.Duration) *Client {
	if timeout <= 0 {
		timeout = DefaultRequestTimeout
	}
	return &Client{
		timeout: timeout,
		http: &http.Client{
			Transport: &http.Transport{
				DialContext:         (&net.Dialer{Timeout: timeout}).DialContext,
				MaxIdleConns:        256,
				MaxIdleConnsPerHost: 64,
				IdleConnTimeout:     30 * time.Second,
				DisableCompression:  true,
			},
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
	}
}

// SetTLS makes the Client reach https members with cfg (the CAs to
// trust, a client certificate). Call it before the Client's first request.
func (c *Client) SetTLS(cfg *tls.Config) {
	c.http.Transport.(*http.Transport).TLSClientConfig = cfg
}

// Close releases idle connections.
func (c *Client) Close() { c.http.CloseIdleConnections() }

// keyURL is the URL of key on base: GET and PUT use /<key>, DELETE uses
// /key/<key>. A '/' in the key stays a path separator.
func keyURL(base, prefix, key string) (string, error) {
	u, err := url.Parse(base)
	if err != nil {
		return "", err
	}
	u.Path = strings.TrimSuffix(u.Path, "/") + prefix + key
	return u.String(), nil
}

// response is one HTTP exchange: a status and body, or an error.
type response struct {
	status  int
	header  http.Header
	body    []byte
	err     error
	notSent bool // the connection could not be dialed: nothing reached the member
}

// do sends one request with the client's deadline. It does not derive from
// the caller's context on purpose: a workload that stops must let its
// operations finish rather than turn them into unknown outcomes.
func (c *Client) do(method, rawURL string, body []byte) response {
	ctx, cancel := contextWithTimeout(c.timeout)
	defer cancel()
	return c.doCtx(ctx, method, rawURL, body, nil)
}

// contextWithTimeout is a context for one request: not derived from the
// caller's on purpose (see do).
func contextWithTimeout(d time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), d)
}

func (c *Client) doCtx(ctx context.Context, method, rawURL string, body []byte, hdr http.Header) response {
	var r io.Reader
	if body != nil {
		r = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, rawURL, r)
	if err != nil {
		return response{err: err, notSent: true}
	}
	for k, v := range hdr {
		req.Header[k] = v
	}
	resp, err := c.http.Do(req)
	if err != nil {
		var op *net.OpError
		return response{err: err, notSent: errors.As(err, &op) && op.Op == "dial"}
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return response{status: resp.StatusCode, header: resp.Header, err: fmt.Errorf("reading body: %w", err)}
	}
	return response{status: resp.StatusCode, header: resp.Header, body: b}
}

// Do performs op.Input on the member at op.Node, fills in the rest of op,
// records it in h and returns it. Outcomes:
//
//	put, delete: 204 ok; 4xx and 503 failed (refused, not applied: raftkv
//	             answers 503 only for a write it certainly did not apply);
//	             never dialed: failed; anything else (504 and other 5xx,
//	             timeout, broken connection): unknown
//	get:         200 value; 404 not-found; anything else: failed
func (c *Client) Do(h *History, op Op) Op {
	in, base := op.Input, op.Node
	var r response
	op.Call = h.Now()
	switch in.Op {
	case OpGet:
		r = c.request(http.MethodGet, base, "/", in.Key, nil)
	case OpPut:
		r = c.request(http.MethodPut, base, "/", in.Key, []byte(in.Value))
	case OpDelete:
		r = c.request(http.MethodDelete, base, "/key/", in.Key, nil)
	}
	op.Return = h.Now()
	op.Status = r.status
	if r.err != nil {
		op.Err = r.err.Error()
	} else if r.status >= 300 {
		op.Err = string(bytes.TrimSpace(clip(r.body, maxErrBody)))
	}
	op.Output = classify(in.Op, r)
	if op.Output.Result != ResultFailed && op.Output.Result != ResultUnknown {
		op.Output.Index, _ = headerUint(r.header, "X-Raft-Index")
		if op.Output.Result == ResultValue || op.Output.Result == ResultOK && in.Op == OpPut {
			op.Output.Mod, _ = etagOf(r.header) // a read's version, or the one a put wrote
		}
	}
	h.Add(op)
	return op
}

func (c *Client) request(method, base, prefix, key string, body []byte) response {
	u, err := keyURL(base, prefix, key)
	if err != nil {
		return response{err: err, notSent: true}
	}
	return c.do(method, u, body)
}

func classify(kind OpKind, r response) Output {
	if kind == OpGet {
		switch {
		case r.err != nil:
			return Output{Result: ResultFailed}
		case r.status == http.StatusOK:
			return Output{Result: ResultValue, Value: string(r.body)}
		case r.status == http.StatusNotFound:
			return Output{Result: ResultNotFound}
		}
		return Output{Result: ResultFailed}
	}
	switch {
	case r.notSent:
		return Output{Result: ResultFailed}
	case r.err != nil:
		return Output{Result: ResultUnknown}
	case r.status == http.StatusNoContent || r.status == http.StatusOK:
		return Output{Result: ResultOK}
	case r.status >= 400 && r.status < 500, r.status == http.StatusServiceUnavailable:
		return Output{Result: ResultFailed}
	}
	return Output{Result: ResultUnknown}
}

// Read is a linearizable GET of key on base, without recording: it returns
// the value and whether the key exists, or an error for any answer other
// than 200 and 404.
func (c *Client) Read(base, key string) ([]byte, bool, error) {
	r := c.request(http.MethodGet, base, "/", key, nil)
	switch {
	case r.err != nil:
		return nil, false, r.err
	case r.status == http.StatusOK:
		return r.body, true, nil
	case r.status == http.StatusNotFound:
		return nil, false, nil
	}
	return nil, false, fmt.Errorf("GET %s%s: %d %s", base, key, r.status, bytes.TrimSpace(clip(r.body, maxErrBody)))
}

// Digest is a member's GET /debug/state: members that applied the same
// index hold the same keys and hash.
type Digest struct {
	AppliedIndex uint64 `json:"appliedIndex"`
	Keys         int    `json:"keys"`
	Hash         string `json:"hash"`
}

// Digest fetches the state digest of the member at base.
func (c *Client) Digest(base string) (Digest, error) {
	r := c.do(http.MethodGet, strings.TrimSuffix(base, "/")+"/debug/state", nil)
	if r.err != nil {
		return Digest{}, r.err
	}
	if r.status != http.StatusOK {
		return Digest{}, fmt.Errorf("GET %s/debug/state: %d %s", base, r.status, bytes.TrimSpace(clip(r.body, maxErrBody)))
	}
	var d Digest
	if err := json.Unmarshal(r.body, &d); err != nil {
		return Digest{}, fmt.Errorf("GET %s/debug/state: %w", base, err)
	}
	return d, nil
}

func clip(b []byte, n int) []byte {
	if len(b) > n {
		return b[:n]
	}
	return b
}
