package httpapi

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/raftkv/raftkv/internal/httpbody"
	"github.com/raftkv/raftkv/peerurl"
	"go.uber.org/zap"
)

const (
	// maxPeerURLBytes bounds the body of POST /<id>.
	maxPeerURLBytes = 4 << 10
	// maxJoinBytes bounds the body of POST /join.
	maxJoinBytes = 4 << 10

	allowRoot    = "GET, HEAD, PUT, POST, DELETE"
	allowKey     = "GET, HEAD, PUT, DELETE"
	allowKeyRoot = "GET, HEAD, POST, DELETE"
	allowRead    = "GET, HEAD"
	allowPost    = "POST"

	// txnPath is POST /txn's name under the root: POST to the root never
	// writes a key, so GET /txn still reads the key "txn".
	txnPath = "txn"
)

type handler struct {
	cfg Config

	// inFlight counts the requests being served, except exempt ones and
	// watches; watchers counts the watches.
	inFlight atomic.Int64
	watchers atomic.Int64
	// stopping is closed when the server shuts down, which ends every
	// watch (see closeWatches).
	stopping  chan struct{}
	closeOnce sync.Once
	// shed counts the requests refused for MaxInFlight since the last log
	// of it; lastShedLog is when that was, in Unix nanoseconds.
	shed        atomic.Uint64
	lastShedLog atomic.Int64
	// deadlines are the fast path's calls' deadline contexts.
	deadlines sharedDeadlines
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if h.isWatch(r) {
		// A watch lives as long as its client: it is counted apart, so
		// that watches cannot starve requests nor requests watches.
		if h.watchers.Add(1) > int64(h.cfg.MaxWatchers) {
			h.watchers.Add(-1)
			writeError(w, r, ErrTooManyWatchers)
			return
		}
		defer h.watchers.Add(-1)
		if err := h.watch(w, r); err != nil {
			h.fail(w, r, err)
		}
		return
	}
	if !exemptFromLimit(r.URL.Path) {
		if h.inFlight.Add(1) > int64(h.cfg.MaxInFlight) {
			h.inFlight.Add(-1) // a refusal takes no place from requests served
			h.refuse(w, r)
			return
		}
		defer h.inFlight.Add(-1)
	}
	if err := h.route(w, r); err != nil {
		h.fail(w, r, err)
	}
}

// exemptFromLimit reports whether path is served however many requests are
// in flight: the operator endpoints that read local state and answer at once,
// so that an overloaded member can still be observed.
func exemptFromLimit(path string) bool {
	switch path {
	case "/health", "/status", "/metrics":
		return true
	}
	return false
}

// refuse answers a request beyond MaxInFlight with 503 without reading it.
// A request with a body gets Connection: close: otherwise net/http would
// first wait for up to 256 KiB of the unread body, from a client that may be
// slow, before sending the answer. Refusals are logged at most once a
// second, with their count, so that overload does not also flood the log.
func (h *handler) refuse(w http.ResponseWriter, r *http.Request) {
	h.shed.Add(1)
	now := time.Now().UnixNano()
	if last := h.lastShedLog.Load(); now-last >= int64(time.Second) && h.lastShedLog.CompareAndSwap(last, now) {
		h.cfg.Logger.Warn("refusing requests: too many in flight",
			zap.Int("max-in-flight", h.cfg.MaxInFlight), zap.Uint64("refused", h.shed.Swap(0)))
	}
	if r.ContentLength != 0 {
		w.Header().Set("Connection", "close")
	}
	writeError(w, r, ErrTooManyRequests)
}

// route dispatches reserved paths first; every other path is a raftexample key.
// It reads r.URL.Path (percent-decoded, never cleaned) and never redirects.
// A non-nil error means nothing has been written yet.
func (h *handler) route(w http.ResponseWriter, r *http.Request) error {
	p := r.URL.Path
	if err := h.admit(r); err != nil {
		return err
	}
	if f := h.mounted(p); f != nil {
		return f(w, r)
	}
	switch {
	case p == "/status":
		return only(w, r, allowRead, h.status)
	case p == "/health":
		return only(w, r, allowRead, h.health)
	case p == "/metrics":
		if h.cfg.Metrics == nil {
			return ErrMetricsDisabled // absent for every method
		}
		return only(w, r, allowRead, h.metrics)
	case p == stateRoute:
		return only(w, r, allowRead, func(w http.ResponseWriter, r *http.Request) error {
			return writeJSON(w, r, http.StatusOK, h.cfg.Store.Digest())
		})
	case p == hashRoute:
		return only(w, r, allowHash, h.hash)
	case p == SnapshotRoute.Path:
		if h.cfg.Snapshot == nil {
			return ErrSnapshotDisabled // absent for every method
		}
		return h.serveRoute(SnapshotRoute, w, r, h.snapshot)
	case p == "/key":
		return only(w, r, allowKeyRoot, h.keyRoot)
	case p == "/join":
		return only(w, r, allowPost, h.join)
	case strings.HasPrefix(p, "/key/"):
		return h.routeKey(w, r, p[len("/key/"):])
	case p == "/ui" || strings.HasPrefix(p, "/ui/"):
		if h.cfg.Dashboard == nil {
			return ErrDashboardDisabled
		}
		h.cfg.Dashboard.ServeHTTP(w, r)
		return nil
	case strings.HasPrefix(p, pprofPrefix):
		return h.debugPprof(w, r, p[len(pprofPrefix):])
	case reserved(p):
		return withDetail(ErrReservedPath, "path %q is reserved for a later version", p)
	case strings.HasPrefix(p, "/"):
		return h.routeRoot(w, r, p[1:])
	}
	return ErrBadPath
}

// only calls serve if allow, a comma-separated method list, holds r.Method.
func only(w http.ResponseWriter, r *http.Request, allow string,
	serve func(http.ResponseWriter, *http.Request) error) error {
	if !slices.Contains(strings.Split(allow, ", "), r.Method) {
		return &methodError{r.Method, allow}
	}
	return serve(w, r)
}

// ReservedNames are the paths, without their leading slash, that every
// member serves as endpoints rather than as raftexample keys, and
// ReservedPrefixes the prefixes of such paths; a key of such a name is
// reached as /key/<key>. A sharded member also serves the paths its
// mounted Routes name (/config..., /shard/...). Package client's list of
// the names it must send as /key/<key> is checked against these.
var (
	ReservedNames    = []string{"key", "join", "status", "health", "metrics", "debug", "ui", strings.TrimPrefix(SnapshotRoute.Path, "/")}
	ReservedPrefixes = []string{"key/", "debug/", "ui/"}
)

// reserved reports whether p belongs to an endpoint that is not a raftexample
// key, whether or not this version serves it.
func reserved(p string) bool {
	name, ok := strings.CutPrefix(p, "/")
	if !ok {
		return false
	}
	return slices.Contains(ReservedNames, name) ||
		slices.ContainsFunc(ReservedPrefixes, func(prefix string) bool { return strings.HasPrefix(name, prefix) })
}

// routeRoot serves raftexample's API: /<key> for keys, /<id> for members.
func (h *handler) routeRoot(w http.ResponseWriter, r *http.Request, name string) error {
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		return h.get(w, r, name, false)
	case http.MethodPut:
		return h.put(w, r, name)
	case http.MethodPost:
		if name == txnPath {
			return h.txn(w, r)
		}
		return h.postRoot(w, r, name)
	case http.MethodDelete:
		return h.removeMember(w, r, name)
	}
	return &methodError{r.Method, allowRoot}
}

// routeKey serves /key/<key>, which reaches every key, reserved names included.
func (h *handler) routeKey(w http.ResponseWriter, r *http.Request, key string) error {
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		return h.get(w, r, key, true)
	case http.MethodPut:
		return h.put(w, r, key)
	case http.MethodDelete:
		return h.delete(w, r, key)
	}
	return &methodError{r.Method, allowKey}
}

// keyRoot serves /key: raftdb's write (POST), a listing (GET, HEAD).
func (h *handler) keyRoot(w http.ResponseWriter, r *http.Request) error {
	switch r.Method {
	case http.MethodPost:
		return h.putAll(w, r)
	case http.MethodDelete:
		return h.deleteRange(w, r)
	}
	return h.list(w, r)
}

func (h *handler) get(w http.ResponseWriter, r *http.Request, key string, asJSON bool) error {
	if !asJSON {
		kv, index, err := h.getKey(r.Context(), key, r.URL.RawQuery)
		if err != nil {
			return err
		}
		setVersion(w.Header(), kv, index)
		writeBody(w, r, http.StatusOK, "application/octet-stream", kv.Value)
		return nil
	}
	if err := h.checkKey(key); err != nil {
		return err
	}
	q, err := parseQuery(r.URL.RawQuery)
	if err != nil {
		return err
	}
	opts, err := readOptions(q)
	if err != nil {
		return err
	}
	if err := notWatch(q); err != nil {
		return err
	}
	b64, err := valueEncoding(q)
	if err != nil {
		return err
	}
	if !utf8.ValidString(key) {
		return ErrKeyNotUTF8
	}
	kv, index, err := h.read(r.Context(), key, opts)
	if err != nil {
		return err
	}
	var s string
	switch {
	case b64:
		s = base64.StdEncoding.EncodeToString(kv.Value)
	case !utf8.Valid(kv.Value):
		// encoding/json would replace the invalid bytes with U+FFFD.
		return ErrValueNotUTF8
	default:
		s = string(kv.Value)
	}
	// Byte for byte what raftdb answers: the object, no newline.
	b, err := json.Marshal(map[string]string{key: s})
	if err != nil {
		return fmt.Errorf("httpapi: encoding response: %w", err)
	}
	setVersion(w.Header(), kv, index)
	writeBody(w, r, http.StatusOK, "application/json", b)
	return nil
}

// getKey reads key at the level rawQuery asks for, within parent: GET
// /<key>, whose other query parameters are ignored.
func (h *handler) getKey(parent context.Context, key, rawQuery string) (KeyValue, uint64, error) {
	if err := h.checkKey(key); err != nil {
		return KeyValue{}, 0, err
	}
	if opts, ok := levelOnly(rawQuery); ok {
		return h.read(parent, key, opts)
	}
	q, err := parseQuery(rawQuery)
	if err != nil {
		return KeyValue{}, 0, err
	}
	opts, err := readOptions(q)
	if err != nil {
		return KeyValue{}, 0, err
	}
	if err := notWatch(q); err != nil {
		return KeyValue{}, 0, err
	}
	return h.read(parent, key, opts)
}

// read reads key, already checked, with opts, within parent. Its error
// carries the index the read was served at, if the store said.
func (h *handler) read(parent context.Context, key string, opts ReadOptions) (KeyValue, uint64, error) {
	// A stale read without min_index never waits, so it needs no deadline
	// (a timer per request is a tenth of such a read's cost).
	ctx := parent
	if !opts.Stale || opts.MinIndex > 0 {
		var cancel context.CancelFunc
		ctx, cancel = h.callContext(parent)
		defer cancel()
	}
	kv, index, err := h.cfg.Store.GetKV(ctx, key, opts)
	if err != nil && index > 0 {
		err = &readAt{err: err, index: index}
	}
	return kv, index, err
}

func (h *handler) put(w http.ResponseWriter, r *http.Request, key string) error {
	if err := h.checkKey(key); err != nil {
		return err
	}
	wo, err := WriteOptionsOf(r.Header)
	if err != nil {
		return err
	}
	cond, err := conditionOf(r.Header, r.Method)
	if err != nil {
		return err
	}
	q, err := parseQuery(r.URL.RawQuery)
	if err != nil {
		return err
	}
	if err := writeParams(q, "PUT of a key", "ttl"); err != nil {
		return err
	}
	ttl, err := ttlOf(q)
	if err != nil {
		return err
	}
	value, err := readBody(w, r, h.cfg.MaxValueBytes)
	if err != nil {
		return err
	}
	wr, err := h.writeKey(r.Context(), keyWrite{key: key, value: value, ttl: ttl, cond: cond, wo: wo})
	if err != nil {
		return err
	}
	if wr.ModIndex != 0 {
		w.Header()["Etag"] = []string{etag(wr.ModIndex)}
	}
	writeApplied(w, wr.Index)
	return nil
}

func (h *handler) delete(w http.ResponseWriter, r *http.Request, key string) error {
	if err := h.checkKey(key); err != nil {
		return err
	}
	wo, err := WriteOptionsOf(r.Header)
	if err != nil {
		return err
	}
	cond, err := conditionOf(r.Header, r.Method)
	if err != nil {
		return err
	}
	if err := noParams(r, "DELETE of a key"); err != nil {
		return err
	}
	wr, err := h.writeKey(r.Context(), keyWrite{key: key, delete: true, cond: cond, wo: wo})
	if err != nil {
		return err
	}
	writeApplied(w, wr.Index)
	return nil
}

func (h *handler) addMember(w http.ResponseWriter, r *http.Request, idText string) error {
	id, ok := parseMemberID(idText)
	if !ok {
		return ErrBadMemberID
	}
	learner, err := learnerFlag(r.URL.RawQuery)
	if err != nil {
		return err
	}
	peerURL, err := readPeerURL(w, r)
	if err != nil {
		return err
	}
	if err := h.addMemberAs(r.Context(), id, peerURL, learner); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (h *handler) removeMember(w http.ResponseWriter, r *http.Request, idText string) error {
	id, ok := parseMemberID(idText)
	if !ok {
		return ErrNotMemberID
	}
	if err := noParams(r, "DELETE /<id>"); err != nil {
		return err
	}
	ctx, cancel := h.callContext(r.Context())
	defer cancel()
	if err := h.cfg.Cluster.RemoveMember(ctx, id); err != nil {
		return onMember{err}
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (h *handler) status(w http.ResponseWriter, r *http.Request) error {
	st := h.cfg.Cluster.Status()
	if st.Members == nil {
		st.Members = []Member{} // "members": [] rather than null
	}
	return writeJSON(w, r, http.StatusOK, st)
}

func (h *handler) checkKey(key string) error {
	switch {
	case key == "":
		return ErrEmptyKey
	case len(key) > h.cfg.MaxKeyBytes:
		return withDetail(ErrKeyTooLong, "the key is %d bytes, over the limit of %d", len(key), h.cfg.MaxKeyBytes)
	}
	return nil
}

// callContext bounds one Store or Cluster call by RequestTimeout within
// parent: a net/http request's context, which also ends when the client
// goes away, or the fast path's, fastParent, whose calls share deadline
// contexts (sharedDeadlines).
func (h *handler) callContext(parent context.Context) (context.Context, context.CancelFunc) {
	if _, ok := parent.(fastParentCtx); ok {
		return h.deadlines.context(time.Now(), h.cfg.RequestTimeout), func() {}
	}
	return context.WithTimeout(parent, h.cfg.RequestTimeout)
}

// readBody reads at most limit bytes; a longer body, or one announced
// longer, yields *http.MaxBytesError (413) (see httpbody.Read).
func readBody(w http.ResponseWriter, r *http.Request, limit int64) ([]byte, error) {
	b, err := httpbody.Read(w, r, limit)
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &tooBig):
		return nil, withDetail(err, "the request body is larger than the limit of %d bytes", limit)
	case err != nil:
		return nil, badBody(err)
	}
	return b, nil
}

// badBody is the error for a request body that could not be read; err,
// the reason, is for the log.
func badBody(err error) error { return fmt.Errorf("%w: %w", ErrBadBody, err) }

// parseMemberID accepts a positive decimal uint64; 0 is raft's "no node".
func parseMemberID(s string) (uint64, bool) {
	id, err := strconv.ParseUint(s, 10, 64)
	return id, err == nil && id != 0
}

// parsePeerURL checks a peer URL and returns it in its canonical
// spelling (see peerurl.Parse); a bad one is a 400.
func parsePeerURL(s string) (string, error) {
	u, err := peerurl.Parse(s)
	if err != nil {
		var pe *peerurl.Error
		if errors.As(err, &pe) {
			return "", withDetail(fmt.Errorf("%w: %w", ErrBadPeerURL, err), "bad peer URL %q: %s", pe.URL, pe.Reason)
		}
		return "", fmt.Errorf("%w: %w", ErrBadPeerURL, err)
	}
	return u, nil
}

// writeApplied answers a write that raft committed and applied at index.
func writeApplied(w http.ResponseWriter, index uint64) {
	w.Header()["X-Raft-Index"] = []string{strconv.FormatUint(index, 10)}
	w.WriteHeader(http.StatusNoContent)
}

// contentTypes holds the header values of the usual content types, shared
// by every response (net/http never modifies them).
var contentTypes = map[string][]string{
	"application/json":         {"application/json"},
	"application/octet-stream": {"application/octet-stream"},
}

func writeJSON(w http.ResponseWriter, r *http.Request, code int, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("httpapi: encoding response: %w", err)
	}
	writeBody(w, r, code, "application/json", append(b, '\n'))
	return nil
}

func writeBody(w http.ResponseWriter, r *http.Request, code int, contentType string, body []byte) {
	// Canonical keys assigned directly: Header.Set would canonicalize them
	// again on every response.
	h := w.Header()
	h["Content-Type"] = contentTypes[contentType]
	if h["Content-Type"] == nil {
		h["Content-Type"] = []string{contentType}
	}
	h["Content-Length"] = []string{strconv.Itoa(len(body))}
	w.WriteHeader(code)
	if r.Method != http.MethodHead {
		_, _ = w.Write(body)
	}
}
