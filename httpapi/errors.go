package httpapi

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"

	"go.uber.org/zap"
)

var (
	// ErrInvalidConfig is wrapped by Config.Validate.
	ErrInvalidConfig = errors.New("httpapi: invalid config")
	// ErrBadPath: the request path does not start with "/".
	ErrBadPath error = badRequest("httpapi: request path must start with /")
	// ErrEmptyKey: the request names no key.
	ErrEmptyKey error = badRequest("httpapi: empty key")
	// ErrKeyTooLong: the key exceeds Config.MaxKeyBytes.
	ErrKeyTooLong error = badRequest("httpapi: key too long")
	// ErrBadBody: the request body could not be read.
	ErrBadBody error = badRequest("httpapi: reading request body")
	// ErrBadMemberID: POST /<id> with an <id> that is not a positive integer.
	ErrBadMemberID error = badRequest("httpapi: POST /<id> adds a raft member; <id> must be a positive integer")
	// ErrNotMemberID: DELETE /<id> with an <id> that is not a positive integer,
	// usually a client that meant to delete a key.
	ErrNotMemberID error = badRequest("httpapi: DELETE /<id> removes a raft member; <id> must be a positive integer; to delete a key use DELETE /key/<key>")
	// ErrBadPeerURL: the body of POST /<id> is not a usable peer URL.
	ErrBadPeerURL error = badRequest("httpapi: bad peer URL")
	// ErrReservedPath: the path is reserved for an endpoint this version does not serve.
	ErrReservedPath error = notFound("httpapi: path reserved for a later version")
	// ErrBadQuery: a read's query string is not valid URL encoding.
	ErrBadQuery error = badRequest("httpapi: malformed query string")
	// ErrBadReadLevel: a read's level parameter is not one raftkv serves.
	ErrBadReadLevel error = badRequest("httpapi: level must be one of default, consistent, none, stale")
	// ErrBadMinIndex: a read's min_index parameter is not a decimal uint64.
	ErrBadMinIndex error = badRequest("httpapi: min_index must be a raft index (a decimal unsigned integer)")
	// ErrBadKeyObject: the body of POST /key is not a non-empty JSON object of
	// string values.
	ErrBadKeyObject error = badRequest(`httpapi: POST /key body must be a non-empty JSON object of string values, e.g. {"foo":"bar"}`)
	// ErrBadJoin: the body of POST /join is not a usable join request.
	ErrBadJoin error = badRequest(`httpapi: POST /join body must be a JSON object like {"id":4,"raftAddr":"127.0.0.1:42379"}`)
	// ErrBadJoinID: POST /join names a member id that is not a positive
	// integer, such as raftdb's "node02".
	ErrBadJoinID error = badRequest(`httpapi: POST /join: raftkv member ids are positive integers (4 or "4"), not names`)
	// ErrMetricsDisabled: /metrics without Config.Metrics.
	ErrMetricsDisabled error = notFound("httpapi: metrics are not enabled")
	// ErrPprofDisabled: /debug/pprof/ without Config.Pprof.
	ErrPprofDisabled error = notFound("httpapi: pprof is not enabled")
	// ErrTooManyRequests: Config.MaxInFlight requests are already being
	// served; the client should retry after a second.
	ErrTooManyRequests error = unavailable("httpapi: too many requests in flight")
)

// badRequest, notFound and unavailable give this package's sentinels the
// same behaviours statusOf looks for in errors from Store and Cluster.
type (
	badRequest  string
	notFound    string
	unavailable string
)

func (e badRequest) Error() string    { return string(e) }
func (badRequest) BadRequest() bool   { return true }
func (e notFound) Error() string      { return string(e) }
func (notFound) NotFound() bool       { return true }
func (e unavailable) Error() string   { return string(e) }
func (unavailable) Unavailable() bool { return true }

// methodError: the path does not serve the method; allow lists those it does.
type methodError struct{ method, allow string }

func (e *methodError) Error() string {
	return fmt.Sprintf("httpapi: method %s not allowed; allowed: %s", e.method, e.allow)
}

// Behaviours an error may have; see statusOf.
type (
	notFounder   interface{ NotFound() bool }
	badRequester interface{ BadRequest() bool }
	conflicter   interface{ Conflict() bool }
	unavailabler interface{ Unavailable() bool }
	timeouter    interface{ Timeout() bool }
)

// statusOf is the one mapping from errors to HTTP status codes; first match wins.
// Errors are classified by behaviour so producers need not be imported.
func statusOf(err error) int {
	var tooBig *http.MaxBytesError
	var method *methodError
	switch {
	case errors.As(err, &tooBig):
		return http.StatusRequestEntityTooLarge
	case errors.As(err, &method):
		return http.StatusMethodNotAllowed
	case has(err, notFounder.NotFound):
		return http.StatusNotFound
	case has(err, badRequester.BadRequest):
		return http.StatusBadRequest
	case has(err, conflicter.Conflict):
		return http.StatusConflict
	case has(err, unavailabler.Unavailable):
		return http.StatusServiceUnavailable
	case has(err, timeouter.Timeout): // includes context.DeadlineExceeded
		return http.StatusGatewayTimeout
	case errors.Is(err, context.Canceled): // client went away or server stopping
		return http.StatusServiceUnavailable
	}
	return http.StatusInternalServerError
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

// errorLine is the one-line text/plain body for err answered with code.
// write says whether the request could have changed state.
func errorLine(err error, code int, write bool) string {
	msg := err.Error()
	switch {
	case code == http.StatusGatewayTimeout && write:
		msg = "httpapi: request timed out; the outcome of the write is unknown: " + msg
	case code == http.StatusGatewayTimeout:
		msg = "httpapi: request timed out: " + msg
	case code == http.StatusServiceUnavailable && errors.Is(err, context.Canceled):
		msg = "httpapi: request canceled (client gone or server stopping): " + msg
	}
	return strings.Map(func(r rune) rune {
		if r == '\n' || r == '\r' {
			return ' '
		}
		return r
	}, msg) + "\n"
}

// fail answers r with the status statusOf(err) and a one-line body, and logs 5xx.
func (h *handler) fail(w http.ResponseWriter, r *http.Request, err error) {
	code := statusOf(err)
	if code >= 500 {
		h.cfg.Logger.Warn("request failed",
			zap.String("method", r.Method), zap.String("path", r.URL.Path),
			zap.Int("status", code), zap.Error(err))
	}
	writeError(w, r, code, err)
}

// writeError writes the one-line text/plain answer to r for err, with the
// headers code calls for.
func writeError(w http.ResponseWriter, r *http.Request, code int, err error) {
	switch code {
	case http.StatusServiceUnavailable:
		w.Header().Set("Retry-After", "1")
	case http.StatusMethodNotAllowed:
		var m *methodError
		if errors.As(err, &m) {
			w.Header().Set("Allow", m.allow)
		}
	}
	write := r.Method != http.MethodGet && r.Method != http.MethodHead
	hdr := w.Header()
	hdr.Set("Content-Type", "text/plain; charset=utf-8")
	hdr.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	_, _ = io.WriteString(w, errorLine(err, code, write))
}
