package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"go.uber.org/zap"
)

var (
	// ErrInvalidConfig is wrapped by Config.Validate.
	ErrInvalidConfig = errors.New("httpapi: invalid config")
	// ErrBadPath: the request path does not start with "/".
	ErrBadPath error = badRequest("the request path must start with /")
	// ErrEmptyKey: the request names no key.
	ErrEmptyKey error = badRequest("the key is empty; a key is at least one byte")
	// ErrKeyTooLong: the key exceeds Config.MaxKeyBytes.
	ErrKeyTooLong error = badRequest("the key is too long")
	// ErrBadBody: the request body could not be read.
	ErrBadBody error = badRequest("the request body could not be read in full")
	// ErrBadMemberID: POST /<id> with an <id> that is not a positive integer.
	ErrBadMemberID error = badRequest("POST /<id> adds a raft member, and <id> must be a positive integer")
	// ErrNotMemberID: DELETE /<id> with an <id> that is not a positive integer,
	// usually a client that meant to delete a key.
	ErrNotMemberID error = badRequest("DELETE /<id> removes a raft member, and <id> must be a positive integer; to delete a key, use DELETE /key/<key>")
	// ErrBadPeerURL: the body of POST /<id> is not a usable peer URL.
	ErrBadPeerURL error = badRequest("bad peer URL")
	// ErrReservedPath: the path is reserved for an endpoint this version does not serve.
	ErrReservedPath error = notFound("this path is reserved for a later version")
	// ErrBadQuery: the query string is not valid URL encoding.
	ErrBadQuery error = badRequest("the query string is not valid URL encoding")
	// ErrUnknownParam: a write's query names a parameter the write does
	// not take, such as a misspelt ttl; writing without it would not do
	// what was asked.
	ErrUnknownParam error = badRequest("the write does not take this query parameter")
	// ErrBadReadLevel: a read's level parameter is not one raftkv serves.
	ErrBadReadLevel error = badRequest("level must be one of default, consistent, none, stale")
	// ErrBadMinIndex: a read's min_index parameter is not a decimal uint64.
	ErrBadMinIndex error = badRequest("min_index must be a raft index (a decimal unsigned integer)")
	// ErrBadEncoding: an encoding parameter other than base64.
	ErrBadEncoding error = badRequest("encoding must be base64")
	// ErrBadKeyObject: the body of POST /key is not a non-empty JSON object of
	// string values.
	ErrBadKeyObject error = badRequest(`POST /key takes a non-empty JSON object of string values, like {"foo":"bar"}`)
	// ErrBodyNotUTF8: the body of POST /key is not UTF-8, which JSON requires;
	// decoding it would replace the invalid bytes of its values.
	ErrBodyNotUTF8 error = badRequest("the body is not valid UTF-8, which JSON requires; send binary values base64-encoded with POST /key?encoding=base64")
	// ErrBadJoin: the body of POST /join is not a usable join request.
	ErrBadJoin error = badRequest(`POST /join takes a JSON object like {"id":4,"raftAddr":"127.0.0.1:42379"}`)
	// ErrBadJoinID: POST /join names a member id that is not a positive
	// integer, such as raftdb's "node02".
	ErrBadJoinID error = badRequest(`raftkv member ids are positive integers (4 or "4"), not names`)
	// ErrKeyNotUTF8: GET /key/<k> of a key that is not UTF-8, which the
	// JSON object cannot carry.
	ErrKeyNotUTF8 error = notAcceptable("the key is not valid UTF-8, which a JSON object cannot carry; read it with GET /<key>")
	// ErrValueNotUTF8: GET /key/<k> without ?encoding=base64 of a value that
	// is not UTF-8, which a JSON string cannot carry.
	ErrValueNotUTF8 error = notAcceptable("the value is not valid UTF-8, which a JSON string cannot carry; add ?encoding=base64, or read the raw bytes with GET /<key>")
	// ErrMetricsDisabled: /metrics without Config.Metrics.
	ErrMetricsDisabled error = notFound("metrics are not enabled")
	// ErrDashboardDisabled: /ui without Config.Dashboard.
	ErrDashboardDisabled error = notFound("the dashboard is not enabled")
	// ErrPprofDisabled: /debug/pprof/ without Config.Pprof.
	ErrPprofDisabled error = notFound("pprof is not enabled")
	// ErrForbidden: Config.Admin refused an admin request.
	ErrForbidden error = forbidden("this request needs an admin client certificate")
	// ErrTooManyRequests: Config.MaxInFlight requests are already being
	// served; the client should retry after a second.
	ErrTooManyRequests error = unavailable("too many requests in flight on this member; retry in a second")
	// ErrTooManyWatchers: Config.MaxWatchers watches are already open on
	// this member.
	ErrTooManyWatchers error = tooManyWatchers("too many watches open on this member; retry in a second or watch through another member")
	// ErrWatcherTooSlow: a watch's client read its events more slowly than
	// they came, and the member's buffer for it overflowed.
	ErrWatcherTooSlow error = tooSlow("the watch fell too far behind the changes; resume it from the id of the last event received")
	// ErrBadTTL: a ttl that is not a duration from 1s to a year.
	ErrBadTTL error = badRequest("ttl must be a duration from 1s to 8760h, like 30s, 5m or 2h, or a whole number of seconds")
	// ErrBadPrecondition: an If-Match or If-None-Match header raftkv cannot
	// judge.
	ErrBadPrecondition error = badRequest(`If-Match takes one entity tag, "<mod index>", or *; If-None-Match takes *`)
	// ErrBadTxn: the body of POST /txn is not a transaction raftkv serves.
	ErrBadTxn error = badRequest(`POST /txn takes a JSON object {"compare":[...],"success":[...],"failure":[...]}`)
	// ErrBadList: a listing's query parameters are not usable.
	ErrBadList error = badRequest("bad listing parameters")
	// ErrBadRange: a range delete's query parameters are not usable.
	ErrBadRange error = badRequest("bad range delete parameters")
	// ErrBadContinue: a continue token that this member did not issue for
	// this listing.
	ErrBadContinue error = badRequest("the continue token was not issued for this listing; start the listing again without it")
	// ErrBadWatch: a watch's query parameters or Last-Event-ID are not
	// usable.
	ErrBadWatch error = badRequest("bad watch parameters")
)

// PreconditionError says that a conditional write (If-Match,
// If-None-Match) found the key in another state than it asked for:
// nothing was changed. It answers 412 with the key's current ETag.
type PreconditionError struct {
	Key string
	// Asked is the condition as the request put it, e.g. `If-Match: "5"`.
	Asked string
	// Current is the key's current version when Found.
	Current KeyValue
	Found   bool
	// Index is the raft index the condition was judged at.
	Index uint64
}

func (e *PreconditionError) Error() string { return "httpapi: " + e.HumanMessage() }

// PreconditionFailed reports true: the condition did not hold.
func (e *PreconditionError) PreconditionFailed() bool { return true }

// HumanMessage says what the key's state is.
func (e *PreconditionError) HumanMessage() string {
	if !e.Found {
		return fmt.Sprintf("key %q does not exist (%s); nothing was changed", truncate(e.Key, 200), e.Asked)
	}
	return fmt.Sprintf("key %q is at version %d (%s); nothing was changed", truncate(e.Key, 200), e.Current.ModIndex, e.Asked)
}

// CompactedError says that a watch asked for events older than the
// member keeps: Oldest is the oldest index it can still stream from. It
// answers 410 Gone, code compacted, with oldest_index.
type CompactedError struct {
	Oldest uint64
	// Err is the store's own error, for logs and errors.Is.
	Err error
}

func (e *CompactedError) Error() string {
	if e.Err != nil {
		return e.Err.Error()
	}
	return "httpapi: " + e.HumanMessage()
}

func (e *CompactedError) Unwrap() error { return e.Err }

// Gone reports true: the events asked for are no longer kept.
func (e *CompactedError) Gone() bool { return true }

// HumanMessage says from where a watch can start.
func (e *CompactedError) HumanMessage() string {
	return fmt.Sprintf("the events asked for are no longer kept: the oldest index a watch can start from is %d; read the keys again and watch from the X-Raft-Index of that read", e.Oldest)
}

// badRequest, notFound, notAcceptable and unavailable are this package's
// errors: the client's sentence, which Error prefixes with the package
// name. They have the behaviours classify looks for in errors from Store
// and Cluster.
type (
	badRequest      string
	notFound        string
	notAcceptable   string
	unavailable     string
	tooManyWatchers string
	tooSlow         string
)

func (e tooManyWatchers) Error() string        { return "httpapi: " + string(e) }
func (e tooManyWatchers) HumanMessage() string { return string(e) }
func (tooManyWatchers) Unavailable() bool      { return true }
func (e tooSlow) Error() string                { return "httpapi: " + string(e) }
func (e tooSlow) HumanMessage() string         { return string(e) }
func (tooSlow) TooSlow() bool                  { return true }

func (e badRequest) Error() string           { return "httpapi: " + string(e) }
func (e badRequest) HumanMessage() string    { return string(e) }
func (badRequest) BadRequest() bool          { return true }
func (e notFound) Error() string             { return "httpapi: " + string(e) }
func (e notFound) HumanMessage() string      { return string(e) }
func (notFound) NotFound() bool              { return true }
func (e notAcceptable) Error() string        { return "httpapi: " + string(e) }
func (e notAcceptable) HumanMessage() string { return string(e) }
func (notAcceptable) NotAcceptable() bool    { return true }
func (e unavailable) Error() string          { return "httpapi: " + string(e) }
func (e unavailable) HumanMessage() string   { return string(e) }
func (unavailable) Unavailable() bool        { return true }

// detailed is err with a sentence that says more than err's own: which
// key, which value, what was wrong with it. It is err for errors.Is and
// for classify.
type detailed struct {
	err   error
	human string
}

func (e *detailed) Error() string        { return "httpapi: " + e.human }
func (e *detailed) HumanMessage() string { return e.human }
func (e *detailed) Unwrap() error        { return e.err }

// withDetail returns err with the client's sentence format, args.
func withDetail(err error, format string, args ...any) error {
	return &detailed{err: err, human: fmt.Sprintf(format, args...)}
}

// withMore returns err with its own sentence followed by "; " and the
// detail format, args says.
func withMore(err error, format string, args ...any) error {
	return &detailed{err: err, human: humanMessage(err) + "; " + fmt.Sprintf(format, args...)}
}

// methodError: the path does not serve the method; allow lists those it does.
type methodError struct{ method, allow string }

func (e *methodError) Error() string { return "httpapi: " + e.HumanMessage() }
func (e *methodError) HumanMessage() string {
	return fmt.Sprintf("method %s is not allowed here; allowed: %s", e.method, e.allow)
}

// onMember marks an error returned by a membership call (Cluster.AddMember,
// AddLearner, PromoteMember, RemoveMember or TransferLeadership), so that a
// NotFound in it is a member, not a key.
type onMember struct{ err error }

func (e onMember) Error() string { return e.err.Error() }
func (e onMember) Unwrap() error { return e.err }

// Behaviours an error may have; see classify.
type (
	notFounder     interface{ NotFound() bool }
	badRequester   interface{ BadRequest() bool }
	notAcceptabler interface{ NotAcceptable() bool }
	conflicter     interface{ Conflict() bool }
	unavailabler   interface{ Unavailable() bool }
	noLeaderer     interface{ NoLeader() bool }
	timeouter      interface{ Timeout() bool }
	misdirecteder  interface{ Misdirected() bool }
	preconditioner interface{ PreconditionFailed() bool }
	goner          interface{ Gone() bool }
	tooSlower      interface{ TooSlow() bool }
	humanMessager  interface{ HumanMessage() string }
	coder          interface{ Code() string }
	forbiddener    interface{ Forbidden() bool }

	learnerNotReadier interface{ LearnerNotReady() bool }
	transferTimeouter interface{ LeaderTransferTimeout() bool }
)

// errorClass is one row of the error table: the status, the code and the
// sentence of an error answer.
type errorClass struct {
	status int
	// code is the stable snake_case name of the row, the "code" of the
	// JSON form.
	code string
	// message is the sentence the client gets when no error in the chain
	// has a HumanMessage, or always when fixed is set.
	message string
	fixed   bool
	// match reports whether err belongs to the row; write says whether
	// the request could have changed state (any method but GET and HEAD).
	match func(err error, write bool) bool
}

// errorTable is the one mapping from errors to answers; the first row that
// matches wins. Errors are classified by behaviour (methods such as
// NotFound() bool) so that their producers need not be imported.
var errorTable = []errorClass{
	{http.StatusRequestEntityTooLarge, "payload_too_large", "the request body is too large", false,
		func(err error, _ bool) bool { var e *http.MaxBytesError; return errors.As(err, &e) }},
	{http.StatusMethodNotAllowed, "method_not_allowed", "this method is not allowed here", false,
		func(err error, _ bool) bool { var e *methodError; return errors.As(err, &e) }},
	{http.StatusForbidden, "forbidden", ErrForbidden.(forbidden).HumanMessage(), false,
		func(err error, _ bool) bool { return has(err, forbiddener.Forbidden) }},
	{http.StatusMisdirectedRequest, "wrong_group", "another shard group serves this key", false,
		func(err error, _ bool) bool { return has(err, misdirecteder.Misdirected) }},
	{http.StatusNotAcceptable, "not_utf8", "the answer cannot be given as JSON", false,
		func(err error, _ bool) bool { return has(err, notAcceptabler.NotAcceptable) }},
	{http.StatusNotFound, "member_not_found", "no such member", false,
		func(err error, _ bool) bool { return has(err, notFounder.NotFound) && isOnMember(err) }},
	{http.StatusNotFound, "not_found", "not found", false,
		func(err error, _ bool) bool { return has(err, notFounder.NotFound) && isOwn(err) }},
	{http.StatusNotFound, "key_not_found", "key not found", false,
		func(err error, _ bool) bool { return has(err, notFounder.NotFound) }},
	{http.StatusPreconditionFailed, "precondition_failed", "the key is not in the state the request's condition asked for; nothing was changed", false,
		func(err error, _ bool) bool { return has(err, preconditioner.PreconditionFailed) }},
	{http.StatusGone, "compacted", "the events asked for are no longer kept; read the keys again and watch from the index of that read", false,
		func(err error, _ bool) bool { return has(err, goner.Gone) }},
	{http.StatusBadRequest, "bad_request", "bad request", false,
		func(err error, _ bool) bool { return has(err, badRequester.BadRequest) }},
	{http.StatusConflict, "learner_not_ready", "the learner has not caught up with the leader yet; retry once it has", false,
		func(err error, _ bool) bool { return has(err, learnerNotReadier.LearnerNotReady) }},
	{http.StatusConflict, "conflict", "the request conflicts with the cluster's current membership", false,
		func(err error, _ bool) bool { return has(err, conflicter.Conflict) }},
	{http.StatusServiceUnavailable, "too_many_requests", ErrTooManyRequests.(unavailable).HumanMessage(), false,
		func(err error, _ bool) bool { return errors.Is(err, ErrTooManyRequests) }},
	{http.StatusServiceUnavailable, "too_many_watchers", ErrTooManyWatchers.(tooManyWatchers).HumanMessage(), false,
		func(err error, _ bool) bool { return errors.Is(err, ErrTooManyWatchers) }},
	{http.StatusServiceUnavailable, "too_slow", ErrWatcherTooSlow.(tooSlow).HumanMessage(), false,
		func(err error, _ bool) bool { return has(err, tooSlower.TooSlow) }},
	{http.StatusServiceUnavailable, "no_leader", "this member knows no leader right now (an election may be under way); retry shortly", false,
		func(err error, _ bool) bool { return has(err, noLeaderer.NoLeader) }},
	{http.StatusServiceUnavailable, "unavailable", "this member cannot serve the request right now; retry, or use another member", false,
		func(err error, _ bool) bool { return has(err, unavailabler.Unavailable) }},
	{http.StatusGatewayTimeout, "transfer_timeout", "leadership did not move before the deadline; it may still move", false,
		func(err error, _ bool) bool { return has(err, transferTimeouter.LeaderTransferTimeout) }},
	// A retried transaction applied before whose get results were not
	// kept: a 504, never "not applied", with the store's sentence, which
	// says where it applied.
	{http.StatusGatewayTimeout, "result_not_kept", "the transaction was applied already; its get results were too large to keep for a retry", false,
		func(err error, _ bool) bool { return codeOf(err) == "result_not_kept" }},
	{http.StatusGatewayTimeout, "outcome_unknown", "the write may or may not have been applied: its outcome was not known in time", true,
		func(err error, write bool) bool { return write && has(err, timeouter.Timeout) }}, // includes context.DeadlineExceeded
	{http.StatusGatewayTimeout, "timeout", "the request timed out", false,
		func(err error, _ bool) bool { return has(err, timeouter.Timeout) }},
	{http.StatusServiceUnavailable, "canceled", "the request was canceled: the client went away or the server is stopping", true,
		func(err error, _ bool) bool { return errors.Is(err, context.Canceled) }},
	{http.StatusInternalServerError, "internal", "internal server error; the member's log has the details", true,
		func(error, bool) bool { return true }},
}

// classify returns the row of errorTable for err; write says whether the
// request could have changed state.
func classify(err error, write bool) *errorClass {
	for i := range errorTable {
		if errorTable[i].match(err, write) {
			return &errorTable[i]
		}
	}
	panic("httpapi: errorTable has no catch-all row")
}

// statusOf is the status classify gives err.
func statusOf(err error) int { return classify(err, false).status }

// isOnMember reports whether err came from a membership call.
func isOnMember(err error) bool {
	var m onMember
	return errors.As(err, &m)
}

// isOwn reports whether err's NotFound is one of this package's own (a
// reserved or disabled path), not a Store's.
func isOwn(err error) bool {
	var nf notFound
	return errors.As(err, &nf)
}

// has reports whether err or any error it wraps implements T and yes says so.
// Unlike errors.As it looks past an error that has the method but answers
// false, since one error type may implement every behaviour method.
func has[T any](err error, yes func(T) bool) bool {
	for err != nil {
		if t, ok := err.(T); ok && yes(t) {
			return true
		}
		switch u := err.(type) {
		case interface{ Unwrap() error }:
			err = u.Unwrap()
		case interface{ Unwrap() []error }:
			return slices.ContainsFunc(u.Unwrap(), func(e error) bool { return has(e, yes) })
		default:
			return false
		}
	}
	return false
}

// humanMessage returns the first non-empty HumanMessage found in err's
// chain, outermost first (depth first through errors.Join), or "".
func humanMessage(err error) string {
	for err != nil {
		if h, ok := err.(humanMessager); ok {
			if msg := h.HumanMessage(); msg != "" {
				return msg
			}
		}
		switch u := err.(type) {
		case interface{ Unwrap() error }:
			err = u.Unwrap()
		case interface{ Unwrap() []error }:
			for _, e := range u.Unwrap() {
				if msg := humanMessage(e); msg != "" {
					return msg
				}
			}
			return ""
		default:
			return ""
		}
	}
	return ""
}

// answer is the client's view of an error: status, code and one sentence.
type answer struct {
	status  int
	code    string
	message string // one line, no newline
	// oldest is a 410's oldest_index.
	oldest uint64
}

// codeOf returns the first non-empty Code() found in err's chain,
// outermost first (depth first through errors.Join), or "".
func codeOf(err error) string {
	for err != nil {
		if c, ok := err.(coder); ok {
			if code := c.Code(); code != "" {
				return code
			}
		}
		switch u := err.(type) {
		case interface{ Unwrap() error }:
			err = u.Unwrap()
		case interface{ Unwrap() []error }:
			for _, e := range u.Unwrap() {
				if code := codeOf(e); code != "" {
					return code
				}
			}
			return ""
		default:
			return ""
		}
	}
	return ""
}

// answerOf builds the answer to err; write says whether the request could
// have changed state. An error that names its own code (Code() string,
// such as a store's bucket_moving or seq_too_old) keeps it, in every row
// but internal, which names no internals, and wrong_group.
func answerOf(err error, write bool) answer {
	c := classify(err, write)
	msg := c.message
	if !c.fixed {
		if h := humanMessage(err); h != "" {
			msg = h
		}
	}
	code := c.code
	if c.status != http.StatusInternalServerError && c.status != http.StatusMisdirectedRequest {
		if own := codeOf(err); own != "" {
			code = own
		}
	}
	a := answer{status: c.status, code: code, message: oneLine(msg)}
	var ce *CompactedError
	if c.status == http.StatusGone && errors.As(err, &ce) {
		a.oldest = ce.Oldest
	}
	return a
}

// oneLine replaces line breaks, so that an answer is one line whatever its
// message quotes.
func oneLine(s string) string {
	if !strings.ContainsAny(s, "\r\n") {
		return s
	}
	return strings.Map(func(r rune) rune {
		if r == '\n' || r == '\r' {
			return ' '
		}
		return r
	}, s)
}

// errorJSON is the body of an error answer to a client that accepts JSON.
type errorJSON struct {
	Error string `json:"error"`
	Code  string `json:"code"`
	// OldestIndex is a 410's: the oldest index a watch can start from.
	OldestIndex uint64 `json:"oldest_index,omitempty"`
}

// body returns the answer's body: the sentence on one line, or with
// asJSON the object {"error":...,"code":...} on one line.
func (a answer) body(asJSON bool) []byte {
	if !asJSON {
		return []byte(a.message + "\n")
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false) // "<key>" reads better than "\u003ckey\u003e"
	if err := enc.Encode(errorJSON{Error: a.message, Code: a.code, OldestIndex: a.oldest}); err != nil {
		panic(fmt.Sprintf("httpapi: encoding an error answer: %v", err)) // two strings always encode
	}
	return b.Bytes() // Encode ends it with "\n"
}

// fail answers r with the answer to err, and logs 5xx.
func (h *handler) fail(w http.ResponseWriter, r *http.Request, err error) {
	a := answerOf(err, isWrite(r))
	if a.status >= 500 {
		h.cfg.Logger.Warn("request failed",
			zap.String("method", r.Method), zap.String("path", r.URL.Path),
			zap.Int("status", a.status), zap.String("code", a.code), zap.Error(err))
	}
	writeAnswer(w, r, a, err)
}

// writeError writes the answer to r for err.
func writeError(w http.ResponseWriter, r *http.Request, err error) {
	writeAnswer(w, r, answerOf(err, isWrite(r)), err)
}

// writeAnswer writes a, the answer to err, with the headers its status
// calls for, as text or, if r accepts it, JSON.
func writeAnswer(w http.ResponseWriter, r *http.Request, a answer, err error) {
	hdr := w.Header()
	if a.status == http.StatusMisdirectedRequest {
		writeWrongGroup(w, r, a, err)
		return
	}
	switch a.status {
	case http.StatusServiceUnavailable:
		hdr.Set("Retry-After", "1")
	case http.StatusPreconditionFailed:
		var pe *PreconditionError
		if errors.As(err, &pe) {
			if pe.Found {
				hdr["Etag"] = []string{etag(pe.Current.ModIndex)}
			}
			if pe.Index > 0 {
				hdr["X-Raft-Index"] = []string{strconv.FormatUint(pe.Index, 10)}
			}
		}
	case http.StatusNotFound:
		var ra *readAt
		if errors.As(err, &ra) && ra.index > 0 {
			hdr["X-Raft-Index"] = []string{strconv.FormatUint(ra.index, 10)}
		}
	case http.StatusMethodNotAllowed:
		var m *methodError
		if errors.As(err, &m) {
			hdr.Set("Allow", m.allow)
		}
	}
	asJSON := wantsJSON(r)
	if asJSON {
		hdr.Set("Content-Type", "application/json")
	} else {
		hdr.Set("Content-Type", "text/plain; charset=utf-8")
	}
	hdr.Set("Vary", "Accept")
	hdr.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(a.status)
	_, _ = w.Write(a.body(asJSON))
}

// isWrite reports whether r could change state.
func isWrite(r *http.Request) bool {
	return r.Method != http.MethodGet && r.Method != http.MethodHead
}

// wantsJSON reports whether r's Accept header asks for application/json.
func wantsJSON(r *http.Request) bool {
	return slices.ContainsFunc(r.Header.Values("Accept"), acceptsJSON[string])
}

// acceptsJSON reports whether an Accept header value lists
// application/json (any case, any parameters) with a q-value other than 0.
// Only that exact type counts: */*, curl's default, and application/*
// leave error answers in text.
func acceptsJSON[S ~string | ~[]byte](v S) bool {
	start := 0
	for i := 0; i <= len(v); i++ {
		if i == len(v) || v[i] == ',' {
			if mediaRangeIsJSON(v[start:i]) {
				return true
			}
			start = i + 1
		}
	}
	return false
}

// mediaRangeIsJSON reports whether one element of an Accept list is
// application/json without q=0.
func mediaRangeIsJSON[S ~string | ~[]byte](r S) bool {
	typ, params, _ := cut(r, ';')
	if !equalFoldTrimmed(typ, "application/json") {
		return false
	}
	for len(params) > 0 {
		var p S
		p, params, _ = cut(params, ';')
		name, value, _ := cut(p, '=')
		if equalFoldTrimmed(name, "q") && isZeroQ(trimSpace(value)) {
			return false
		}
	}
	return true
}

// cut slices v around the first sep, as strings.Cut.
func cut[S ~string | ~[]byte](v S, sep byte) (before, after S, found bool) {
	for i := 0; i < len(v); i++ {
		if v[i] == sep {
			return v[:i], v[i+1:], true
		}
	}
	return v, v[len(v):], false
}

// isZeroQ reports whether a q-value is 0: "0", "0.", "0.0" up to "0.000".
func isZeroQ[S ~string | ~[]byte](v S) bool {
	if len(v) == 0 || v[0] != '0' {
		return false
	}
	if len(v) == 1 {
		return true
	}
	if v[1] != '.' || len(v) > 5 {
		return false
	}
	for i := 2; i < len(v); i++ {
		if v[i] != '0' {
			return false
		}
	}
	return true
}

// trimSpace trims the spaces and tabs HTTP allows around list elements.
func trimSpace[S ~string | ~[]byte](v S) S {
	for len(v) > 0 && (v[0] == ' ' || v[0] == '\t') {
		v = v[1:]
	}
	for len(v) > 0 && (v[len(v)-1] == ' ' || v[len(v)-1] == '\t') {
		v = v[:len(v)-1]
	}
	return v
}

// equalFoldTrimmed reports whether v, trimmed, is lower, ignoring ASCII case.
func equalFoldTrimmed[S ~string | ~[]byte](v S, lower string) bool {
	v = trimSpace(v)
	if len(v) != len(lower) {
		return false
	}
	for i := 0; i < len(v); i++ {
		c := v[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != lower[i] {
			return false
		}
	}
	return true
}
