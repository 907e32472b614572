package client

import (
	"bytes"
	"context"
	crand "crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"mime"
	"net"
	"net/http"
	"net/http/httptrace"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
)

// Request headers the Client sends (see the sharding contract).
const (
	// HeaderRoute marks a routing client: a shard member answers it 421
	// rather than 307 for a key of another group.
	HeaderRoute = "X-Raftkv-Route"
	// HeaderClientID and HeaderClientSeq identify a write for the servers'
	// dedup tables; a retry carries the same pair.
	HeaderClientID  = "X-Client-ID"
	HeaderClientSeq = "X-Client-Seq"
	// HeaderConfigVersion is a 421's config version.
	HeaderConfigVersion = "X-Config-Version"
	// HeaderRaftIndex is the raft index of an applied write.
	HeaderRaftIndex = "X-Raft-Index"
	// HeaderGroup is the group of the shard member serving a watch
	// stream with markers.
	HeaderGroup = "X-Raftkv-Group"
)

// maxBody bounds how much of an answer the Client reads: a value is at
// most a member's request limit (1.5 MiB by default), a config a few KiB
// per group; a longer success is an error (errAnswerTooLarge). Error
// bodies are kept up to maxErrorBody. A var so that tests need not move
// 64 MiB.
var maxBody = 64 << 20

const maxErrorBody = 64 << 10

// Client sends calls to a raftkv deployment and retries them. It is safe
// for concurrent use by many goroutines; build one and share it.
type Client struct {
	cfg  Config
	id   string
	seq  atomic.Uint64
	http *http.Client
	own  *http.Transport // nil when Config.HTTPClient is the caller's
	lg   *zap.Logger

	// endpoints are Config.Endpoints, or those of the last SetEndpoints
	// (nil when sharded); configGroup are Config.ConfigEndpoints (nil
	// when not).
	endpoints   atomic.Pointer[members]
	configGroup *members
	cache       configCache
	// life ends at Close: the auto-sync loop and its Sync calls.
	life context.Context
	end  context.CancelFunc
	// synced is closed when the auto-sync loop has returned (at once
	// without one), so that Close can wait for it.
	synced chan struct{}
}

// New validates cfg and returns a Client. It sends nothing: a sharded
// Client fetches the config on its first key call.
func New(cfg Config) (*Client, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	c := &Client{cfg: cfg, id: cfg.ClientID, lg: cfg.Logger}
	if c.id == "" {
		c.id = randomID()
	} else {
		// A fixed id outlives this process: the servers still hold the
		// results of its earlier writes, by sequence number. Numbering
		// from the clock (µs) puts this Client's writes past them, where
		// numbering from 1 again would have a new write answered with an
		// old one's result, and never applied.
		c.seq.Store(uint64(time.Now().UnixMicro()))
	}
	if cfg.HTTPClient != nil {
		hc := *cfg.HTTPClient
		c.http = &hc
	} else {
		c.own = &http.Transport{
			Proxy:                 http.ProxyFromEnvironment,
			DialContext:           (&net.Dialer{Timeout: 2 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
			MaxIdleConns:          1024,
			MaxIdleConnsPerHost:   DefaultMaxIdleConnsPerHost,
			IdleConnTimeout:       90 * time.Second,
			ExpectContinueTimeout: time.Second,
			DisableCompression:    true,
		}
		if cfg.TLS != nil {
			c.own.TLSClientConfig = cfg.TLS.Clone()
		}
		c.http = &http.Client{Transport: c.own}
	}
	// Follow nothing blindly: a 307 from a shard member is a wrong group,
	// which the Client handles with its config.
	c.http.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	c.life, c.end = context.WithCancel(context.Background())
	if len(cfg.Endpoints) > 0 {
		c.endpoints.Store(newMembers(cfg.Endpoints))
	} else {
		c.configGroup = newMembers(cfg.ConfigEndpoints)
	}
	c.synced = make(chan struct{})
	if cfg.AutoSyncInterval > 0 {
		go c.autoSync(cfg.AutoSyncInterval)
	} else {
		close(c.synced)
	}
	return c, nil
}

// randomID is 16 random hex digits.
func randomID() string {
	var b [8]byte
	if _, err := crand.Read(b[:]); err != nil {
		panic("client: crypto/rand: " + err.Error()) // never fails on supported platforms
	}
	return hex.EncodeToString(b[:])
}

// ClientID returns the id this Client's writes carry.
func (c *Client) ClientID() string { return c.id }

// Sharded reports whether the Client routes by bucket (ConfigEndpoints).
func (c *Client) Sharded() bool { return c.configGroup != nil }

// Close closes the idle connections of the Client's own transport and
// stops its auto-sync, waiting for a Sync it runs to end (its request is
// cancelled), so that the endpoints change no more once Close returns.
// Calls in flight are not interrupted; calls after Close open new
// connections.
func (c *Client) Close() {
	c.end()
	<-c.synced
	if c.own != nil {
		c.own.CloseIdleConnections()
	}
}

// nextSeq returns the sequence number of a new write.
func (c *Client) nextSeq() uint64 { return c.seq.Add(1) }

// members are the client URLs of one group (or of routers, or of the
// config group) and which of them calls go to first. A call starts at the
// current member and, when a try there fails for want of an answer or of
// a leader, moves the current member on, so later calls skip it too.
type members struct {
	urls []string
	cur  atomic.Uint64
}

func newMembers(urls []string) *members {
	m := &members{}
	for _, u := range urls {
		n, err := normalizeURL(u)
		if err != nil {
			continue // checked by Validate; a config's servers are checked in setRoutes
		}
		m.urls = append(m.urls, n)
	}
	return m
}

// pick returns the current member and its turn number.
func (m *members) pick() (turn uint64, url string) {
	turn = m.cur.Load()
	return turn, m.urls[turn%uint64(len(m.urls))]
}

// failed moves the current member on after a failed try at turn; many
// tries that fail at the same member move it on once.
func (m *members) failed(turn uint64) { m.cur.CompareAndSwap(turn, turn+1) }

// call is one Client call, sent once per try.
type call struct {
	op     string
	method string
	key    string   // routing key of a key call
	keys   []string // routing keys of a PutAll
	path   string   // request target: escaped path and query
	body   []byte
	write  bool
	// once marks a write the members do not dedup (a range delete): it
	// is not sent again once a try may have been applied.
	once  bool
	admin bool // to the config group
	// group, when not 0, is the group the call goes to (a listing or a
	// watch of every group); version is the config version it was chosen
	// by. A 421 ends such a call: its caller gathers again.
	group   uint64
	version uint64
	seq     uint64
	id      string
	// header holds headers of this call (If-Match, Last-Event-ID...).
	header http.Header
	// ttl is a Put's WithTTL; conds counts the conditions (WithIfMatch,
	// WithIfAbsent) given.
	ttl   time.Duration
	conds int
	// ok lists the statuses that end the call as answered (the caller
	// reads the reply); any other status is an error.
	ok []int
}

// reply is the answer that ended a call.
type reply struct {
	status   int
	header   http.Header
	body     []byte
	endpoint string
}

// callContext bounds ctx by RequestTimeout.
func (c *Client) callContext(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, c.cfg.RequestTimeout)
}

// do sends cl until an answer ends it or its context ends, following the
// retry policy in doc.go.
func (c *Client) do(ctx context.Context, cl *call) (*reply, error) {
	ctx, cancel := c.callContext(ctx)
	defer cancel()
	if cl.write && cl.seq == 0 {
		cl.id, cl.seq = c.id, c.nextSeq()
	}
	var last *Error
	maybeApplied := false
	unanswered := 0                 // tries in a row that got no answer
	var refusedOnce map[string]bool // endpoints that answered cluster_level or no_space
	fail := func(e *Error) error {
		e.Op = cl.op
		if e.Key == "" {
			e.Key = cl.key
		}
		e.MaybeApplied = e.MaybeApplied || maybeApplied
		return e
	}
	backoff := c.cfg.Backoff
	for try := 1; ; try++ {
		group, turn, endpoint, err := c.target(ctx, cl)
		if err != nil {
			e, ok := err.(*Error)
			if !ok {
				e = &Error{Err: err}
			}
			// A bucket of nobody may get a group: ask the config group
			// again after a pause. Anything else (keys of two groups, a
			// config group that did not answer within its own retries)
			// ends the call.
			if e.Code == CodeNoOwner && c.pause(ctx, &backoff) {
				last = e
				if _, err := c.Refresh(ctx, 0); err == nil || ctx.Err() == nil {
					continue
				}
			}
			if last != nil && e.Code == "" && ctx.Err() != nil {
				e = withErr(last, ctx.Err())
			} else if e.Code == CodeNoOwner {
				e = withErr(e, stopErr(ctx))
			}
			e.Tries = try - 1
			return nil, fail(e)
		}
		rep, sent, err := c.send(ctx, cl, endpoint)
		if err != nil {
			if cl.write && sent {
				maybeApplied = true
			}
			if errors.Is(err, errAnswerTooLarge) {
				// Every member would answer as much: asking again is no
				// use. A write's success was cut off: it was applied,
				// and its result is not known.
				if cl.write {
					return nil, fail(&Error{Endpoint: endpoint, Code: CodeInternal, Err: err, Tries: try, MaybeApplied: true,
						Message: fmt.Sprintf("applied, but its answer is larger than the %d MiB this client reads", maxBody>>20)})
				}
				return nil, fail(&Error{Endpoint: endpoint, Code: CodeTooLarge, Err: err, Tries: try,
					Message: fmt.Sprintf("the answer is larger than the %d MiB this client reads; ask for less (a listing's Limit)", maxBody>>20)})
			}
			if cl.once && maybeApplied {
				return nil, fail(&Error{Endpoint: endpoint, Err: err, Tries: try})
			}
			if tlsRefused(err) {
				// This Client's TLS setup and the member's do not agree
				// (no certificate, an untrusted one): another try would
				// be refused the same, so the call ends with the reason.
				return nil, fail(&Error{Endpoint: endpoint, Err: err, Tries: try})
			}
			if ctx.Err() != nil {
				// The call's own end cut this try: the last answer, if
				// any, says more than the cut.
				if last == nil {
					last = &Error{Endpoint: endpoint}
				}
				e := withErr(last, ctx.Err())
				e.Tries = try
				return nil, fail(e)
			}
			last = &Error{Endpoint: endpoint, Err: err, Tries: try}
			group.failed(turn)
			c.lg.Debug("retrying after a transport error", zap.String("op", cl.op), zap.String("endpoint", endpoint), zap.Error(err))
			if !c.pause(ctx, &backoff) {
				return nil, fail(withErr(last, stopErr(ctx)))
			}
			if unanswered++; c.Sharded() && !cl.admin && unanswered >= len(group.urls) {
				// No member of the group answered: it may have left the
				// config and stopped, and then none is left to say 421.
				// Ask the config group, as 6.824's clerk does after trying
				// every server of a group.
				unanswered = 0
				if _, err := c.Refresh(ctx, 0); err != nil && ctx.Err() != nil {
					return nil, fail(withErr(last, ctx.Err()))
				}
			}
			continue
		}
		unanswered = 0
		for _, s := range cl.ok {
			if rep.status == s {
				return rep, nil
			}
		}
		e := errorOf(rep)
		e.Tries = try
		last = e
		retry := false
		switch {
		case e.Code == CodeSeqTooOld, e.Code == CodeResultNotKept:
			// The server can no longer judge this seq, or it was
			// applied and its result not kept: another try would be
			// answered the same.
			e.MaybeApplied = true
		case e.Code == CodeClusterLevel, e.Code == CodeNoSpace:
			// Certainly not applied. A member that restarted may not
			// have replayed its level yet, and members may have other
			// quotas, so the others are asked, each once: all of them
			// answer the same until an operator upgrades the last older
			// one, or keys are deleted.
			if refusedOnce == nil {
				refusedOnce = map[string]bool{}
			}
			refusedOnce[endpoint] = true
			retry = len(refusedOnce) < len(group.urls)
			group.failed(turn)
		case rep.status == http.StatusMisdirectedRequest || (rep.status >= 300 && rep.status < 400):
			// Nothing was applied. Refresh the config (to at least the
			// member's version) and try where it says.
			retry = cl.group == 0
			if c.Sharded() && !cl.admin && retry {
				if _, err := c.Refresh(ctx, e.Version); err != nil && ctx.Err() != nil {
					return nil, fail(withErr(e, ctx.Err()))
				}
			}
		case rep.status == http.StatusServiceUnavailable, rep.status == http.StatusTooManyRequests:
			// Certainly not applied; another member may have a leader.
			retry = true
			group.failed(turn)
		case rep.status == http.StatusGatewayTimeout:
			// A read may be tried again; a write too, with the same
			// client id and sequence number, which the server dedups,
			// unless it is one the server does not dedup.
			retry = true
			if cl.write {
				maybeApplied = true
				retry = !cl.once
			}
		case rep.status >= 500 && cl.write:
			maybeApplied = true
		}
		if !retry {
			return nil, fail(e)
		}
		c.lg.Debug("retrying", zap.String("op", cl.op), zap.String("endpoint", endpoint), zap.Int("status", rep.status), zap.String("code", e.Code))
		if !c.pause(ctx, &backoff) {
			return nil, fail(withErr(e, stopErr(ctx)))
		}
	}
}

// withErr returns a copy of e whose Err is err.
func withErr(e *Error, err error) *Error {
	cp := *e
	if cp.Err != nil && err != nil && !errors.Is(cp.Err, err) {
		cp.Err = errors.Join(err, cp.Err)
	} else if err != nil {
		cp.Err = err
	}
	return &cp
}

// pause sleeps before the next try: backoff, plus up to half of it at
// random, then doubles backoff up to MaxBackoff. It returns false, at
// once, when ctx ends first or its deadline would pass during the pause.
func (c *Client) pause(ctx context.Context, backoff *time.Duration) bool {
	d := *backoff + rand.N(*backoff/2+1)
	*backoff = min(2**backoff, c.cfg.MaxBackoff)
	if dl, ok := ctx.Deadline(); ok && time.Until(dl) < d {
		return false
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// stopErr is why a call stops trying: its context's error, or the
// deadline that the next pause would pass.
func stopErr(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return context.DeadlineExceeded
}

// send sends one try of cl to the member at endpoint and reads its
// answer. sent reports whether the request may have reached the member:
// false only when no connection was had for it.
func (c *Client) send(ctx context.Context, cl *call, endpoint string) (rep *reply, sent bool, err error) {
	var body io.Reader
	if cl.body != nil {
		body = bytes.NewReader(cl.body)
	}
	var gotConn atomic.Bool
	ctx = httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{GotConn: func(httptrace.GotConnInfo) { gotConn.Store(true) }})
	req, err := http.NewRequestWithContext(ctx, cl.method, endpoint+cl.path, body)
	if err != nil {
		return nil, false, err
	}
	h := req.Header
	h["Accept"] = []string{"application/json"}
	h[HeaderRoute] = []string{"client"}
	if cl.write {
		h[HeaderClientID] = []string{cl.id}
		h[HeaderClientSeq] = []string{strconv.FormatUint(cl.seq, 10)}
	}
	for k, v := range cl.header {
		h[k] = v
	}
	if cl.body != nil && (cl.method == http.MethodPost) {
		h["Content-Type"] = []string{"application/json"}
	}
	resp, err := c.http.Do(req)
	if err != nil {
		// A TLS alert from the member refused the handshake: it read
		// nothing of the request.
		return nil, gotConn.Load() && !remoteTLSAlert(err), err
	}
	defer resp.Body.Close()
	limit := int64(maxBody)
	if resp.StatusCode >= 300 {
		limit = maxErrorBody
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return nil, true, err
	}
	if int64(len(b)) > limit {
		if resp.StatusCode < 300 {
			// Cut short, it would read as a whole answer (a value) or as
			// an unreadable one (a listing, a transaction's result).
			return nil, true, errAnswerTooLarge
		}
		b = b[:limit] // an error's reason: its start is enough
	}
	return &reply{status: resp.StatusCode, header: resp.Header, body: b, endpoint: endpoint}, true, nil
}

// errAnswerTooLarge is a successful answer longer than maxBody.
var errAnswerTooLarge = errors.New("client: answer larger than the client reads")

// tlsRefused reports whether err is a TLS handshake that one side
// refused: this Client could not verify the member's certificate, or the
// member sent an alert (it requires a client certificate, or does not
// trust this one).
func tlsRefused(err error) bool {
	var ve *tls.CertificateVerificationError
	return errors.As(err, &ve) || remoteTLSAlert(err)
}

// remoteTLSAlert reports whether err is a TLS alert the other side sent;
// crypto/tls reports those as a net.OpError of Op "remote error".
func remoteTLSAlert(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "remote error"
}

// errorBody is a server's JSON error answer (see the sharding contract).
type errorBody struct {
	Error   string   `json:"error"`
	Code    string   `json:"code"`
	Version uint64   `json:"version"`
	Bucket  *int     `json:"bucket"`
	Owner   uint64   `json:"owner"`
	Servers []string `json:"servers"`
	// OldestIndex is a 410's.
	OldestIndex uint64 `json:"oldest_index"`
}

// errorOf reads an error answer: its JSON body when it has one with an
// error or a code, else its status and text.
func errorOf(rep *reply) *Error {
	e := &Error{
		Endpoint:    rep.endpoint,
		Status:      rep.status,
		Body:        rep.body,
		ContentType: rep.header.Get("Content-Type"),
		RetryAfter:  rep.header.Get("Retry-After"),
		Bucket:      -1,
	}
	var eb errorBody
	if mt, _, _ := mime.ParseMediaType(e.ContentType); mt == "application/json" &&
		json.Unmarshal(rep.body, &eb) == nil && (eb.Error != "" || eb.Code != "") {
		e.Message, e.Code, e.Version, e.Owner, e.Servers = eb.Error, eb.Code, eb.Version, eb.Owner, eb.Servers
		e.OldestIndex = eb.OldestIndex
		if eb.Bucket != nil {
			e.Bucket = *eb.Bucket
		}
	} else {
		msg, _, _ := strings.Cut(strings.TrimSpace(string(rep.body)), "\n")
		e.Message = msg
	}
	if e.Code == "" {
		e.Code = codeOfStatus(rep.status)
	}
	e.Index, _ = strconv.ParseUint(rep.header.Get(HeaderRaftIndex), 10, 64)
	if rep.status == http.StatusPreconditionFailed {
		e.ModIndex, _ = parseETag(rep.header.Get("ETag"))
	}
	if v, err := strconv.ParseUint(rep.header.Get(HeaderConfigVersion), 10, 64); err == nil && v > e.Version {
		e.Version = v
	}
	return e
}
