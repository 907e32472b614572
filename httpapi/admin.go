package httpapi

import (
	"context"
	"crypto/tls"
	"net"
	"net/http"
	"strings"
)

// AdminFunc decides whether the client of an admin request may make it,
// from its connection's TLS state (nil on a plain connection) and whether
// the request is one that the groups of a sharded deployment make of
// each other (BetweenGroups): nil admits it; an error refuses it with
// 403, code forbidden, and the error's text as the reason.
type AdminFunc func(state *tls.ConnectionState, betweenGroups bool) error

// forbidden is this package's refusal of an admin request: the client's
// sentence, as badRequest's.
type forbidden string

func (e forbidden) Error() string        { return "httpapi: " + string(e) }
func (e forbidden) HumanMessage() string { return string(e) }
func (forbidden) Forbidden() bool        { return true }

// adminRequest reports whether r is an admin request, one that
// Config.Admin must admit: a membership change (POST and DELETE /<id>,
// POST /<id>/promote, POST /join), POST /leader/transfer, GET or HEAD
// /snapshot (a copy of the whole state), POST /debug/hash (a pass over
// the whole state on every member), GET or HEAD /debug/state (a pass
// over this member's, at each request), and the sharding routes that
// change the config or move a bucket (POST /config/join, /config/leave,
// /config/move, GET or HEAD /shard/pull, POST /shard/delete). Paths are
// matched before any route, mounted ones included, so an endpoint
// mounted on one of them is covered too.
func adminRequest(method, p string) bool {
	switch {
	case p == "/config/join", p == "/config/leave", p == "/config/move", p == "/shard/delete":
		return method == http.MethodPost
	case p == "/shard/pull":
		return method == http.MethodGet || method == http.MethodHead
	case p == "/join", p == "/leader/transfer":
		return method == http.MethodPost
	case p == SnapshotRoute.Path:
		return method == http.MethodGet || method == http.MethodHead
	case p == hashRoute:
		return method == http.MethodPost
	case p == stateRoute:
		return method == http.MethodGet || method == http.MethodHead
	case method != http.MethodPost && method != http.MethodDelete:
		return false
	}
	id, rest, _ := strings.Cut(strings.TrimPrefix(p, "/"), "/")
	if id == "" || strings.Trim(id, "0123456789") != "" {
		return false // not a member id: never a membership change
	}
	return rest == "" || ((rest == "promote" || rest == "update") && method == http.MethodPost)
}

// BetweenGroups reports whether a request of method to path p is one that
// the groups of a sharded deployment make of each other: a group asking
// the config group to join it, and a bucket's new owner pulling it from
// the old one and telling it to delete its copy.
func BetweenGroups(method, p string) bool {
	switch p {
	case "/config/join", "/shard/delete":
		return method == http.MethodPost
	case "/shard/pull":
		return method == http.MethodGet || method == http.MethodHead
	}
	return false
}

// admit asks Config.Admin about an admin request.
func (h *handler) admit(r *http.Request) error {
	if h.cfg.Admin == nil || !adminRequest(r.Method, r.URL.Path) {
		return nil
	}
	if err := h.cfg.Admin(tlsState(r), BetweenGroups(r.Method, r.URL.Path)); err != nil {
		return withDetail(ErrForbidden, "%s needs an admin client certificate: %s", adminWhat(r.URL.Path), humanMessageOr(err))
	}
	return nil
}

// adminWhat names the kind of admin request at path p.
func adminWhat(p string) string {
	switch {
	case p == "/leader/transfer":
		return "a leader transfer"
	case p == SnapshotRoute.Path:
		return "a snapshot download"
	case p == hashRoute:
		return "a hash check"
	case p == stateRoute:
		return "a digest of the state"
	case strings.HasPrefix(p, "/config/"):
		return "a change of the shard config"
	case strings.HasPrefix(p, "/shard/"):
		return "a bucket's move between groups"
	}
	return "a membership change"
}

// humanMessageOr is err's HumanMessage, or its text.
func humanMessageOr(err error) string {
	if h := humanMessage(err); h != "" {
		return h
	}
	return err.Error()
}

// tlsStateKey is the context key of the TLS state of a connection that
// Server's own loop handed to net/http, which sets Request.TLS only for
// a *tls.Conn it accepted itself.
type tlsStateKey struct{}

// withTLSState is the net/http server's ConnContext: it records the TLS
// state of a connection handed over by the fast loop, whose handshake is
// done already.
func withTLSState(ctx context.Context, c net.Conn) context.Context {
	if rc, ok := c.(*replayConn); ok {
		if tc, ok := rc.Conn.(*tls.Conn); ok {
			st := tc.ConnectionState()
			return context.WithValue(ctx, tlsStateKey{}, &st)
		}
	}
	return ctx
}

// tlsState is the TLS state of r's connection; nil on a plain one.
func tlsState(r *http.Request) *tls.ConnectionState {
	if r.TLS != nil {
		return r.TLS
	}
	st, _ := r.Context().Value(tlsStateKey{}).(*tls.ConnectionState)
	return st
}

// stateRoute is GET /debug/state, a digest of the whole state.
const stateRoute = "/debug/state"
