package router

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/raftkv/raftkv/client"
	"github.com/raftkv/raftkv/internal/buildinfo"
	"github.com/raftkv/raftkv/internal/httpbody"
	"github.com/raftkv/raftkv/internal/kvjson"
	"github.com/raftkv/raftkv/internal/queryparam"
	"go.uber.org/zap"
)

// Defaults of the Config fields whose zero value means "default"; the
// same limits as a member's, so the router refuses what a member would.
const (
	DefaultMaxValueBytes int64 = 1572864 // 1.5 MiB
	DefaultMaxKeyBytes   int   = 4096
)

// ErrInvalidConfig is wrapped by Config.Validate's errors.
var ErrInvalidConfig = errors.New("router: invalid config")

// Config configures the handler New builds.
type Config struct {
	// Client sends every routed call. Required; one Client serves all
	// requests at once. Its RequestTimeout bounds each routed call.
	Client *client.Client
	// Logger receives a warn entry per 5xx the router answers itself. Nil
	// discards logs.
	Logger *zap.Logger
	// MaxValueBytes is the largest body of a PUT or POST /key, in bytes; a
	// larger one gets 413. Zero means DefaultMaxValueBytes.
	MaxValueBytes int64
	// MaxKeyBytes is the longest key, in bytes; a longer one gets 400.
	// Zero means DefaultMaxKeyBytes.
	MaxKeyBytes int
	// Metrics, when set, receives the router's metrics (requests by
	// operation and status, their durations, open watches, the config
	// version) and the process's (CPU, memory, Go runtime), which the
	// handler then serves at GET /metrics.
	// Nil: no metrics, and /metrics is 404 as other members-only paths.
	Metrics *prometheus.Registry
}

// Validate reports the first problem with c.
func (c Config) Validate() error {
	switch {
	case c.Client == nil:
		return fmt.Errorf("%w: Client is nil", ErrInvalidConfig)
	case c.MaxValueBytes < 0:
		return fmt.Errorf("%w: MaxValueBytes %d is negative", ErrInvalidConfig, c.MaxValueBytes)
	case c.MaxKeyBytes < 0:
		return fmt.Errorf("%w: MaxKeyBytes %d is negative", ErrInvalidConfig, c.MaxKeyBytes)
	}
	return nil
}

func (c Config) withDefaults() Config {
	if c.Logger == nil {
		c.Logger = zap.NewNop()
	}
	if c.MaxValueBytes == 0 {
		c.MaxValueBytes = DefaultMaxValueBytes
	}
	if c.MaxKeyBytes == 0 {
		c.MaxKeyBytes = DefaultMaxKeyBytes
	}
	return c
}

// New validates cfg and returns the router's handler. It holds no state
// of its own: everything is in cfg.Client.
func New(cfg Config) (http.Handler, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	h := &handler{cfg: cfg.withDefaults(), c: cfg.Client}
	if cfg.Metrics != nil {
		m, err := newMetrics(cfg.Metrics, h)
		if err != nil {
			return nil, fmt.Errorf("%w: metrics: %v", ErrInvalidConfig, err)
		}
		h.met = m
	}
	return h, nil
}

type handler struct {
	cfg Config
	c   *client.Client
	met *metrics // nil without Config.Metrics
}

// answer is an error the router answers itself.
type answer struct {
	status int
	code   string
	msg    string
}

func (a *answer) Error() string { return a.msg }

func bad(format string, args ...any) *answer {
	return &answer{http.StatusBadRequest, client.CodeBadRequest, "router: " + fmt.Sprintf(format, args...)}
}

const (
	allowRoot = "GET, HEAD, PUT"
	allowKey  = "GET, HEAD, PUT, DELETE"
	allowRead = "GET, HEAD"
	allowPost = "POST"
	// allowKeyRoot is /key's: a batch write, a listing, a range delete.
	allowKeyRoot = "GET, HEAD, POST, DELETE"
)

// errMembership: membership is per group, and a router fronts many.
var errMembership = bad("membership changes are per raft group: send them to a member of the group (the router's GET /status lists them)")

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if h.met != nil {
		rec := &recorder{ResponseWriter: w, m: h.met, op: opOther}
		defer h.met.observe(rec, time.Now())
		w = rec
	}
	if err := h.route(w, r); err != nil {
		h.fail(w, r, err)
	}
}

// route dispatches as a member does: reserved paths first, then keys.
// A non-nil error means nothing has been written.
func (h *handler) route(w http.ResponseWriter, r *http.Request) error {
	p := r.URL.Path
	switch {
	case p == "/status":
		return only(r, allowRead, func() error { setOp(w, opStatus); return h.status(w, r) })
	case p == "/health":
		return only(r, allowRead, func() error { setOp(w, opHealth); return h.health(w, r) })
	case p == "/metrics" && h.met != nil:
		return only(r, allowRead, func() error { setOp(w, opMetrics); h.met.serve.ServeHTTP(w, r); return nil })
	case p == "/key" && isWatch(r):
		setOp(w, opWatch)
		return h.watch(w, r, "", false)
	case p == "/key":
		return only(r, allowKeyRoot, func() error {
			switch r.Method {
			case http.MethodPost:
				setOp(w, opPutAll)
				return h.putAll(w, r)
			case http.MethodDelete:
				setOp(w, opDeleteRange)
				return h.deleteRange(w, r)
			}
			setOp(w, opList)
			return h.list(w, r)
		})
	case p == "/join":
		return only(r, allowPost, func() error { return errMembership })
	case p == "/txn" && r.Method == http.MethodPost:
		// POST to the root never writes a key: GET /txn reads the key "txn".
		setOp(w, opTxn)
		return h.txn(w, r)
	case strings.HasPrefix(p, "/key/") && isWatch(r):
		setOp(w, opWatch)
		return h.watch(w, r, p[len("/key/"):], true)
	case strings.HasPrefix(p, "/key/"):
		return h.key(w, r, p[len("/key/"):], true)
	case p == "/metrics" || p == "/snapshot" || p == "/ui" || strings.HasPrefix(p, "/ui/") || p == "/debug" || strings.HasPrefix(p, "/debug/") ||
		p == "/config" || strings.HasPrefix(p, "/config/") || p == "/shard" || strings.HasPrefix(p, "/shard/"):
		return &answer{http.StatusNotFound, "not_found", "router: " + p + " is served by members, not by the router"}
	case strings.HasPrefix(p, "/") && len(p) > 1 && isWatch(r):
		setOp(w, opWatch)
		return h.watch(w, r, p[1:], true)
	case strings.HasPrefix(p, "/"):
		return h.key(w, r, p[1:], false)
	}
	return bad("request path must start with /")
}

// singleQuery parses r's query, each parameter given at most once.
func singleQuery(r *http.Request) (url.Values, error) {
	q, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		return nil, bad("malformed query string: %v", err)
	}
	for name, vs := range q {
		if len(vs) > 1 {
			return nil, bad("query parameter %s given more than once", name)
		}
	}
	return q, nil
}

// writeParams parses r's query, each parameter at most once, and
// refuses, in a member's words, a parameter of the write (what) other
// than those it takes: a misspelt ?tll=5 must not write the key without
// its TTL. Without a query it returns nil.
func writeParams(r *http.Request, what string, takes ...string) (url.Values, error) {
	if r.URL.RawQuery == "" {
		return nil, nil
	}
	q, err := singleQuery(r)
	if err != nil {
		return nil, err
	}
	if msg := queryparam.Unknown(q, what, takes...); msg != "" {
		return nil, bad("%s", msg)
	}
	return q, nil
}

// only runs serve if allow, a comma-separated list, holds r.Method.
func only(r *http.Request, allow string, serve func() error) error {
	for _, m := range strings.Split(allow, ", ") {
		if r.Method == m {
			return serve()
		}
	}
	return &methodError{r.Method, allow}
}

type methodError struct{ method, allow string }

func (e *methodError) Error() string {
	return fmt.Sprintf("router: method %s not allowed; allowed: %s", e.method, e.allow)
}

// key serves /<key> (raftexample's paths: POST and DELETE of /<id> are
// membership there) and /key/<key> (raftdb's: GET answers JSON).
func (h *handler) key(w http.ResponseWriter, r *http.Request, key string, keyPath bool) error {
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		setOp(w, opGet)
		return h.get(w, r, key, keyPath)
	case http.MethodPut:
		setOp(w, opPut)
		return h.put(w, r, key)
	case http.MethodDelete:
		if keyPath {
			setOp(w, opDelete)
			return h.delete(w, r, key)
		}
		if _, err := strconv.ParseUint(key, 10, 64); err == nil {
			return errMembership
		}
		return bad("DELETE /<id> removes a raft member, and <id> must be a positive integer; to delete a key, use DELETE /key/<key>")
	case http.MethodPost:
		if !keyPath {
			return errMembership
		}
	}
	if keyPath {
		return &methodError{r.Method, allowKey}
	}
	return &methodError{r.Method, allowRoot}
}

func (h *handler) checkKey(key string) error {
	switch {
	case key == "":
		return bad("empty key")
	case len(key) > h.cfg.MaxKeyBytes:
		return bad("key too long: %d bytes, limit %d", len(key), h.cfg.MaxKeyBytes)
	}
	return nil
}

func (h *handler) get(w http.ResponseWriter, r *http.Request, key string, asJSON bool) error {
	if err := h.checkKey(key); err != nil {
		return err
	}
	var q url.Values // nil without a query: the common read
	if r.URL.RawQuery != "" {
		var err error
		if q, err = url.ParseQuery(r.URL.RawQuery); err != nil {
			return bad("malformed query string: %v", err)
		}
	}
	opts, err := readOptions(q)
	if err != nil {
		return err
	}
	b64 := false
	if asJSON { // raftdb's route; GET /<key> ignores encoding, as a member does
		if b64, err = valueEncoding(q); err != nil {
			return err
		}
		if !utf8.ValidString(key) {
			return &answer{http.StatusNotAcceptable, codeNotUTF8, "router: the key is not valid UTF-8, which a JSON object cannot carry; read it with GET /<key>"}
		}
	}
	kv, index, err := h.c.GetKV(r.Context(), key, opts...)
	if err != nil {
		return err
	}
	v := kv.Value
	hdr := w.Header()
	hdr.Set("ETag", etag(kv.ModIndex))
	hdr.Set(client.HeaderCreateIndex, strconv.FormatUint(kv.CreateIndex, 10))
	hdr.Set(client.HeaderRaftIndex, strconv.FormatUint(index, 10))
	if kv.TTL > 0 {
		hdr.Set(client.HeaderTTL, strconv.FormatFloat(kv.TTL.Seconds(), 'f', -1, 64))
	}
	ct := "application/octet-stream"
	if asJSON {
		s := string(v)
		switch {
		case b64:
			s = base64.StdEncoding.EncodeToString(v)
		case !utf8.Valid(v):
			// encoding/json would replace the invalid bytes with U+FFFD.
			return &answer{http.StatusNotAcceptable, codeNotUTF8, "router: the value is not valid UTF-8, which a JSON string cannot carry; add ?encoding=base64, or read the raw bytes with GET /<key>"}
		}
		// What a member answers: the object, no newline.
		if v, err = json.Marshal(map[string]string{key: s}); err != nil {
			return fmt.Errorf("router: encoding response: %w", err)
		}
		ct = "application/json"
	}
	writeBody(w, r, http.StatusOK, ct, v)
	return nil
}

// codeNotUTF8 is a member's code for a 406: what a JSON answer cannot carry.
const codeNotUTF8 = "not_utf8"

// valueEncoding reads the encoding parameter of GET /key/<k> and POST
// /key as a member does: true for base64 (any case), false when absent.
func valueEncoding(q url.Values) (bool, error) {
	switch enc := q["encoding"]; {
	case len(enc) == 0:
		return false, nil
	case len(enc) > 1:
		return false, bad("query parameter encoding given more than once")
	case !strings.EqualFold(strings.TrimSpace(enc[0]), "base64"):
		return false, bad("unknown encoding %q; encoding must be base64", enc[0])
	}
	return true, nil
}

// readOptions reads a GET's level and min_index as a member does: level
// stale, or default, consistent or none (linearizable; any case,
// surrounding spaces ignored), min_index a decimal uint64 (alone: a local
// read once applied), each at most once; and refuses a watch parameter
// that is not false (notWatch). Other parameters are ignored.
func readOptions(q url.Values) ([]client.ReadOption, error) {
	if len(q) == 0 {
		return nil, nil
	}
	for _, name := range []string{"level", "min_index", "watch"} {
		if len(q[name]) > 1 {
			return nil, bad("query parameter %s given more than once", name)
		}
	}
	if err := notWatch(q); err != nil {
		return nil, err
	}
	var opts []client.ReadOption
	if levels, ok := q["level"]; ok {
		stale, err := staleLevel(levels[0])
		switch {
		case err != nil:
			return nil, err
		case stale:
			opts = append(opts, client.WithStale())
		default:
			opts = append(opts, client.WithLinearizable())
		}
	}
	if mi, ok := q["min_index"]; ok {
		n, err := strconv.ParseUint(mi[0], 10, 64)
		if err != nil {
			return nil, bad("min_index must be a raft index (a decimal unsigned integer); got %q", mi[0])
		}
		opts = append(opts, client.WithMinIndex(n))
	}
	return opts, nil
}

// staleLevel reads a read's level as a member does: true for stale,
// false for default, consistent or none (linearizable), in any case and
// with surrounding spaces ignored.
func staleLevel(level string) (bool, error) {
	switch strings.ToLower(strings.TrimSpace(level)) {
	case "stale":
		return true, nil
	case "default", "consistent", "none":
		return false, nil
	}
	return false, bad("level must be stale, default, consistent or none; got %q", level)
}

// notWatch checks the watch parameter of a read that is not a watch, as
// a member does: absent or false. watch=true reaches it only on a HEAD.
func notWatch(q url.Values) error {
	vs, ok := q["watch"]
	if !ok {
		return nil
	}
	b, err := strconv.ParseBool(strings.TrimSpace(vs[0]))
	if err != nil {
		return bad("watch must be true or false; got %q", vs[0])
	}
	if b {
		return bad("a watch is a GET")
	}
	return nil
}

// writeOptions passes on a write's X-Client-ID and X-Client-Seq. Without
// them the Client gives the write the router's own id and a seq of its own.
func writeOptions(r *http.Request) ([]client.WriteOption, error) {
	id, seq := r.Header.Get(client.HeaderClientID), r.Header.Get(client.HeaderClientSeq)
	if id == "" && seq == "" {
		return nil, nil
	}
	if !client.ValidClientID(id) {
		return nil, bad("%s must be 1 to 64 of [A-Za-z0-9._-] and come with %s", client.HeaderClientID, client.HeaderClientSeq)
	}
	n, err := strconv.ParseUint(seq, 10, 64)
	if err != nil || n == 0 {
		return nil, bad("%s must be a decimal integer of at least 1 and come with %s", client.HeaderClientSeq, client.HeaderClientID)
	}
	return []client.WriteOption{client.WithSeq(id, n)}, nil
}

// readBody reads at most limit bytes; a longer body, or one announced
// longer, is a 413 (see httpbody.Read).
func (h *handler) readBody(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	b, err := httpbody.Read(w, r, h.cfg.MaxValueBytes)
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &tooBig):
		return nil, &answer{http.StatusRequestEntityTooLarge, client.CodeTooLarge,
			fmt.Sprintf("router: request body larger than %d bytes", h.cfg.MaxValueBytes)}
	case err != nil:
		return nil, bad("reading request body: %v", err)
	}
	return b, nil
}

func (h *handler) put(w http.ResponseWriter, r *http.Request, key string) error {
	if err := h.checkKey(key); err != nil {
		return err
	}
	opts, err := writeOptions(r)
	if err != nil {
		return err
	}
	cond, err := conditionOf(r)
	if err != nil {
		return err
	}
	q, err := writeParams(r, "PUT of a key", "ttl")
	if err != nil {
		return err
	}
	ttl, err := ttlOf(q)
	if err != nil {
		return err
	}
	opts = append(opts, cond...)
	if ttl > 0 {
		opts = append(opts, client.WithTTL(ttl))
	}
	value, err := h.readBody(w, r)
	if err != nil {
		return err
	}
	index, version, err := h.c.PutVersion(r.Context(), key, value, opts...)
	if err != nil {
		return err
	}
	if version != 0 {
		w.Header().Set("ETag", etag(version))
	}
	writeApplied(w, index)
	return nil
}

func (h *handler) delete(w http.ResponseWriter, r *http.Request, key string) error {
	if err := h.checkKey(key); err != nil {
		return err
	}
	opts, err := writeOptions(r)
	if err != nil {
		return err
	}
	cond, err := conditionOf(r)
	if err != nil {
		return err
	}
	if r.Header.Get("If-None-Match") != "" {
		return bad("If-None-Match: * goes with PUT; to delete a key only at a version, use If-Match")
	}
	if _, err := writeParams(r, "DELETE of a key"); err != nil {
		return err
	}
	opts = append(opts, cond...)
	index, err := h.c.Delete(r.Context(), key, opts...)
	if err != nil {
		return err
	}
	writeApplied(w, index)
	return nil
}

// putAll serves POST /key: one atomic write, whose keys must share a group.
func (h *handler) putAll(w http.ResponseWriter, r *http.Request) error {
	q, err := singleQuery(r)
	if err != nil {
		return err
	}
	// As a member: what POST /key cannot do is refused, not ignored.
	if _, ok := q["ttl"]; ok {
		return bad("POST /key takes no ttl: give a key a TTL with PUT /<key>?ttl=, or in a transaction's put")
	}
	if msg := queryparam.Unknown(q, "POST /key", "encoding"); msg != "" {
		return bad("%s", msg)
	}
	if hasCondition(r.Header) {
		return bad("POST /key writes several keys unconditionally: make one key's write conditional with PUT /<key>, or several with POST /txn")
	}
	b64, err := valueEncoding(q)
	if err != nil {
		return err
	}
	opts, err := writeOptions(r)
	if err != nil {
		return err
	}
	body, err := h.readBody(w, r)
	if err != nil {
		return err
	}
	kvs, err := h.decodeKeyObject(body)
	if err != nil {
		return err
	}
	if b64 {
		for k, v := range kvs {
			raw, err := base64.StdEncoding.DecodeString(v)
			if err != nil {
				return bad("with encoding=base64 the value of %q must be standard base64: %v", k, err)
			}
			kvs[k] = string(raw)
		}
	}
	index, err := h.c.PutAll(r.Context(), kvs, opts...)
	if err != nil {
		return err
	}
	writeApplied(w, index)
	return nil
}

// decodeKeyObject decodes a non-empty JSON object of string values, token
// by token, refusing what a member refuses: a body that is not UTF-8 or
// holds a lone surrogate escape (decoding would make U+FFFD of either),
// other value types, a key given twice, anything after the object.
func (h *handler) decodeKeyObject(body []byte) (map[string]string, error) {
	badBody := func(reason string, args ...any) (map[string]string, error) {
		return nil, bad(`POST /key body must be a non-empty JSON object of string values, e.g. {"foo":"bar"}: `+reason, args...)
	}
	if !utf8.Valid(body) {
		return badBody("it is not valid UTF-8, which JSON requires; write bytes with PUT /<key>")
	}
	if esc, ok := kvjson.LoneSurrogate(body); ok {
		return badBody("the escape %s is half of a UTF-16 surrogate pair and stands for no character; write bytes with PUT /<key>", esc)
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return badBody("it does not start with {")
	}
	kvs := map[string]string{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return badBody("%v", err)
		}
		key, _ := tok.(string)
		if err := h.checkKey(key); err != nil {
			return nil, err
		}
		if _, dup := kvs[key]; dup {
			return badBody("key %q given twice", key)
		}
		if tok, err = dec.Token(); err != nil {
			return badBody("%v", err)
		}
		v, ok := tok.(string)
		if !ok {
			return badBody("the value of %q is not a string", key)
		}
		kvs[key] = v
	}
	if _, err := dec.Token(); err != nil {
		return badBody("%v", err)
	}
	if len(kvs) == 0 {
		return badBody("empty object")
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return badBody("data after the object")
	}
	return kvs, nil
}

// routerStatus is the body of the router's GET /status.
type routerStatus struct {
	Role          string                 `json:"role"`
	ClientID      string                 `json:"clientID"`
	Sharded       bool                   `json:"sharded"`
	ConfigVersion uint64                 `json:"configVersion"`
	Buckets       int                    `json:"buckets"`
	Groups        map[string]groupStatus `json:"groups"`
	ConfigFetches uint64                 `json:"configFetches"`
	Build         buildinfo.Info         `json:"build"`
}

type groupStatus struct {
	Servers []string `json:"servers"`
	Buckets int      `json:"buckets"`
}

// status reports the router's cached config, as it is: it sends nothing.
func (h *handler) status(w http.ResponseWriter, r *http.Request) error {
	st := routerStatus{Role: "router", ClientID: h.c.ClientID(), Sharded: h.c.Sharded(),
		Groups: map[string]groupStatus{}, ConfigFetches: h.c.ConfigFetches(), Build: buildinfo.Get()}
	if cfg, ok := h.c.CachedConfig(); ok {
		st.ConfigVersion, st.Buckets = cfg.Version, len(cfg.Buckets)
		for gid, servers := range cfg.Groups {
			st.Groups[strconv.FormatUint(gid, 10)] = groupStatus{Servers: servers, Buckets: len(cfg.BucketsOf(gid))}
		}
	}
	return writeJSON(w, r, http.StatusOK, st)
}

// health is 200 when the router can route: it has a config that gives
// buckets to some group (fetching it now if it has none yet, or only one
// from before any group joined).
func (h *handler) health(w http.ResponseWriter, r *http.Request) error {
	reason := ""
	if h.c.Sharded() {
		cfg, ok := h.c.CachedConfig()
		if !ok || len(cfg.Groups) == 0 {
			var err error
			if cfg, err = h.c.Refresh(r.Context(), 0); err != nil {
				reason = "router: no config yet: " + err.Error()
			}
		}
		if reason == "" && len(cfg.Groups) == 0 {
			reason = fmt.Sprintf("router: config %d gives no bucket to any group", cfg.Version)
		}
	}
	if reason != "" {
		return writeJSON(w, r, http.StatusServiceUnavailable, map[string]string{"health": "false", "reason": reason})
	}
	return writeJSON(w, r, http.StatusOK, map[string]string{"health": "true", "reason": ""})
}

// fail answers err. A call's error that carries a member's answer is
// relayed as the member sent it, except when it would say "not applied"
// of a write that may have been, or would send the caller to another
// group (the router serves every group); the rest the router answers
// itself.
func (h *handler) fail(w http.ResponseWriter, r *http.Request, err error) {
	var (
		ce  *client.Error
		a   *answer
		me  *methodError
		ans answer
	)
	switch {
	case errors.As(err, &me):
		w.Header().Set("Allow", me.allow)
		ans = answer{http.StatusMethodNotAllowed, "method_not_allowed", me.Error()}
	case errors.As(err, &a):
		ans = *a
	case errors.As(err, &ce) && ce.Status != 0 && relayable(ce):
		if ce.RetryAfter != "" {
			w.Header().Set("Retry-After", ce.RetryAfter)
		}
		if ce.Index > 0 {
			w.Header().Set(client.HeaderRaftIndex, strconv.FormatUint(ce.Index, 10))
		}
		if ce.Status == http.StatusPreconditionFailed && ce.ModIndex > 0 {
			w.Header().Set("ETag", etag(ce.ModIndex))
		}
		ct, body := ce.ContentType, ce.Body
		if ct == "" {
			ct = "text/plain; charset=utf-8"
		}
		if mt, _, _ := mime.ParseMediaType(ct); mt == "application/json" && ce.Message != "" && !wantsJSON(r) {
			// The Client asks members for JSON; a caller that did not
			// gets the line of text a member would have given it.
			ct, body = "text/plain; charset=utf-8", []byte(oneLine(ce.Message)+"\n")
			w.Header().Set("X-Content-Type-Options", "nosniff")
		}
		if ce.Status >= 500 {
			h.cfg.Logger.Warn("member answered an error", zap.String("method", r.Method), zap.String("path", r.URL.Path),
				zap.Int("status", ce.Status), zap.String("endpoint", ce.Endpoint), zap.Error(err))
		}
		writeBody(w, r, ce.Status, ct, body)
		return
	default:
		ans = answerOf(err)
	}
	if ans.status == http.StatusServiceUnavailable {
		w.Header().Set("Retry-After", "1")
	}
	if ans.status >= 500 {
		h.cfg.Logger.Warn("request failed", zap.String("method", r.Method), zap.String("path", r.URL.Path),
			zap.Int("status", ans.status), zap.Error(err))
	}
	writeError(w, r, ans)
}

// relayable reports whether a member's answer may go to the caller as is.
func relayable(e *client.Error) bool {
	switch {
	case e.MaybeApplied && e.Status != http.StatusGatewayTimeout:
		return false // e.g. a 503 after an earlier 504: the caller must hear "unknown"
	case e.Status == http.StatusMisdirectedRequest || (e.Status >= 300 && e.Status < 400):
		return false
	}
	return true
}

// answerOf is the router's own answer to a call's error.
func answerOf(err error) answer {
	msg := "router: " + err.Error()
	switch {
	case errors.Is(err, client.ErrOutcomeUnknown):
		return answer{http.StatusGatewayTimeout, client.CodeOutcomeUnknown, msg}
	case errors.Is(err, client.ErrCrossGroup):
		return answer{http.StatusBadRequest, client.CodeCrossGroup, msg + "; a batch or transaction reaches one group: put its keys together with a {tag}"}
	case errors.Is(err, client.ErrBadRequest):
		return answer{http.StatusBadRequest, client.CodeBadRequest, msg}
	case errors.Is(err, client.ErrNotFound):
		return answer{http.StatusNotFound, client.CodeKeyNotFound, msg}
	case errors.Is(err, client.ErrTimeout):
		return answer{http.StatusGatewayTimeout, client.CodeTimeout, msg}
	case errors.Is(err, client.ErrWrongGroup):
		return answer{http.StatusServiceUnavailable, client.CodeWrongGroup, msg}
	case errors.Is(err, client.ErrUnavailable), errors.Is(err, context.Canceled):
		return answer{http.StatusServiceUnavailable, client.CodeUnavailable, msg}
	}
	return answer{http.StatusInternalServerError, client.CodeInternal, msg}
}

// writeError writes a: JSON {"error","code"} to a caller that accepts
// JSON, else one line of text, as a member does.
func writeError(w http.ResponseWriter, r *http.Request, a answer) {
	msg := oneLine(a.msg)
	w.Header().Set("X-Content-Type-Options", "nosniff")
	if wantsJSON(r) {
		b, _ := json.Marshal(map[string]string{"error": msg, "code": a.code})
		writeBody(w, r, a.status, "application/json", append(b, '\n'))
		return
	}
	writeBody(w, r, a.status, "text/plain; charset=utf-8", []byte(msg+"\n"))
}

// wantsJSON reports whether r's Accept header names application/json.
func wantsJSON(r *http.Request) bool {
	return strings.Contains(r.Header.Get("Accept"), "application/json")
}

// oneLine is msg with its line breaks made spaces.
func oneLine(msg string) string {
	return strings.Map(func(r rune) rune {
		if r == '\n' || r == '\r' {
			return ' '
		}
		return r
	}, msg)
}

// etag is the entity tag of version mod, as members write it.
func etag(mod uint64) string { return `"` + strconv.FormatUint(mod, 10) + `"` }

func writeApplied(w http.ResponseWriter, index uint64) {
	w.Header().Set(client.HeaderRaftIndex, strconv.FormatUint(index, 10))
	w.WriteHeader(http.StatusNoContent)
}

func writeJSON(w http.ResponseWriter, r *http.Request, status int, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("router: encoding response: %w", err)
	}
	writeBody(w, r, status, "application/json", append(b, '\n'))
	return nil
}

func writeBody(w http.ResponseWriter, r *http.Request, status int, contentType string, body []byte) {
	w.Header().Set("Content-Type", contentType)
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	if r.Method != http.MethodHead {
		w.Write(body)
	}
}
