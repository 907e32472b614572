package httpapi

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strconv"
	"time"

	"go.uber.org/zap"
)

// Snapshotter takes backups for GET /snapshot. httpapi declares it so it
// never imports the packages that capture and frame the state.
type Snapshotter interface {
	// Snapshot captures the state at the consistency opts asks for: by
	// default every write acknowledged before the call is in it; Stale
	// takes this member's applied state as it is; MinIndex first waits
	// until this member applied that index. It returns what it captured
	// and a function that writes the backup file of it to w; the function
	// is called at most once, may take long (it streams the whole state),
	// and must not keep w after it returns.
	Snapshot(ctx context.Context, opts ReadOptions) (SnapshotInfo, func(w io.Writer) error, error)
}

// SnapshotInfo is what a Snapshotter captured, sent as headers before
// the backup itself.
type SnapshotInfo struct {
	// Index and Term are the raft index the state is at and the term of
	// its entry.
	Index, Term uint64
}

// Route is one of this package's endpoints outside the key space, as far
// as an access policy needs to know it.
type Route struct {
	// Path is the route's path.
	Path string
	// Allow lists the methods it serves, comma-separated.
	Allow string
	// Admin marks an operator operation that hands out, or acts on, the
	// whole state rather than keys: anyone who may call it may read
	// every key. It is served only when the member enables it, and every
	// request to it is logged with its remote address. An access policy
	// (TLS client certificates from an admin CA) restricts the routes
	// marked Admin, in serveRoute.
	Admin bool
}

// SnapshotRoute is GET /snapshot: a backup of the state (see Snapshotter).
var SnapshotRoute = Route{Path: "/snapshot", Allow: "GET", Admin: true}

// ErrSnapshotDisabled: GET /snapshot without Config.Snapshot.
var ErrSnapshotDisabled error = notFound("snapshot download is not enabled on this member")

// snapshotWriteTimeout bounds each write of a backup to its client, so a
// client that stops reading does not hold the member's copy of the state
// (and a connection) forever; the transfer as a whole has no bound.
const snapshotWriteTimeout = serverTransferTimeout

// serveRoute serves rt with serve, once the method and the route's access
// policy allow it.
func (h *handler) serveRoute(rt Route, w http.ResponseWriter, r *http.Request,
	serve func(http.ResponseWriter, *http.Request) error) error {
	return only(w, r, rt.Allow, func(w http.ResponseWriter, r *http.Request) error {
		if rt.Admin {
			h.cfg.Logger.Info("serving an admin request", zap.String("path", rt.Path),
				zap.String("query", r.URL.RawQuery), zap.String("remote-addr", r.RemoteAddr))
		}
		return serve(w, r)
	})
}

// snapshot serves GET /snapshot: the capture within the request deadline,
// then the backup streamed as it is written, without Content-Length. A
// failure once the stream started cuts the connection, so the client sees
// a body that ends before the backup's trailer, never a whole-looking one.
func (h *handler) snapshot(w http.ResponseWriter, r *http.Request) error {
	q, err := parseQuery(r.URL.RawQuery)
	if err != nil {
		return err
	}
	opts, err := readOptions(q)
	if err != nil {
		return err
	}
	ctx, cancel := h.callContext(r.Context())
	info, write, err := h.cfg.Snapshot.Snapshot(ctx, opts)
	cancel()
	if err != nil {
		return err
	}
	hd := w.Header()
	hd["Content-Type"] = contentTypes["application/octet-stream"]
	hd["Content-Disposition"] = []string{`attachment; filename="raftkv-` + strconv.FormatUint(info.Index, 10) + `.backup"`}
	hd["X-Raft-Index"] = []string{strconv.FormatUint(info.Index, 10)}
	hd["X-Raft-Term"] = []string{strconv.FormatUint(info.Term, 10)}
	hd["X-Content-Type-Options"] = []string{"nosniff"}
	hd["Cache-Control"] = []string{"no-store"}
	w.WriteHeader(http.StatusOK)
	sw := &streamWriter{w: w, rc: http.NewResponseController(w)}
	start := time.Now()
	if err := write(sw); err != nil {
		if r.Context().Err() == nil && !errors.Is(err, errClientWrite) {
			h.cfg.Logger.Warn("backup stream failed", zap.Uint64("index", info.Index), zap.Int64("bytes", sw.n), zap.Error(err))
		}
		panic(http.ErrAbortHandler)
	}
	h.cfg.Logger.Info("sent a backup", zap.Uint64("index", info.Index), zap.Uint64("term", info.Term),
		zap.Int64("bytes", sw.n), zap.Duration("took", time.Since(start)), zap.String("remote-addr", r.RemoteAddr))
	return nil
}

// errClientWrite marks a failure to write to the client: the client went
// away or stopped reading, which is not the member's to log.
var errClientWrite = errors.New("httpapi: writing to the client")

// streamWriter writes a response body, each write within
// snapshotWriteTimeout of its start.
type streamWriter struct {
	w  http.ResponseWriter
	rc *http.ResponseController
	n  int64
}

func (s *streamWriter) Write(p []byte) (int, error) {
	if err := s.rc.SetWriteDeadline(time.Now().Add(snapshotWriteTimeout)); err != nil && !errors.Is(err, http.ErrNotSupported) {
		return 0, errors.Join(errClientWrite, err)
	}
	n, err := s.w.Write(p)
	s.n += int64(n)
	if err != nil {
		return n, errors.Join(errClientWrite, err)
	}
	return n, nil
}
