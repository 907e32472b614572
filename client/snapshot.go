package client

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/raftkv/raftkv/backup"
	"go.uber.org/zap"
)

// SnapshotInfo describes a backup that SnapshotSave wrote.
type SnapshotInfo struct {
	// Header is the backup's header: the raft index and term its state
	// is at, the member that took it, the kind of member.
	Header backup.Header
	// Endpoint is the member that sent it.
	Endpoint string
	// Size is the number of bytes written.
	Size int64
}

// SnapshotSave writes a backup of one member's state to w (GET /snapshot,
// served by members started with --enable-snapshot-download): a file that
// `raftkv restore` makes the data dirs of a new cluster from. Without
// options the backup holds every write acknowledged before the call
// (linearizable); WithStale takes the member's state as it is and
// WithMinIndex at least that index, as for Get.
//
// It tries the members as other calls do until one starts sending, within
// RequestTimeout (or the context's deadline, if earlier); the transfer
// itself is bounded by the context only. It checks the backup as it
// writes it and returns nil only once w holds a whole backup whose
// SHA-256 matched. On an error w may hold part of one: write to a
// temporary file and keep it only on success. A Client of a sharded
// deployment (ConfigEndpoints) has no one group to save: it returns
// ErrBadRequest; save each group through a Client of its members.
func (c *Client) SnapshotSave(ctx context.Context, w io.Writer, opts ...ReadOption) (SnapshotInfo, error) {
	if c.Sharded() {
		return SnapshotInfo{}, badInput("snapshot", "", "a sharded deployment is saved group by group: use a Client whose Endpoints are the members of one group")
	}
	var o readOptions
	for _, opt := range opts {
		opt(&o)
	}
	q := url.Values{}
	switch {
	case o.stale:
		q.Set("level", "stale")
	case o.linearizable && o.minIndex > 0:
		q.Set("level", "consistent")
	}
	if o.minIndex > 0 {
		q.Set("min_index", strconv.FormatUint(o.minIndex, 10))
	}
	path := "/snapshot"
	if len(q) > 0 {
		path += "?" + q.Encode()
	}
	startBy := time.Now().Add(c.cfg.RequestTimeout)
	if dl, ok := ctx.Deadline(); ok && dl.Before(startBy) {
		startBy = dl
	}
	startCtx, cancel := context.WithDeadline(ctx, startBy)
	defer cancel()
	backoff := c.cfg.Backoff
	var last *Error
	for try := 1; ; try++ {
		eps := c.endpoints.Load()
		turn, endpoint := eps.pick()
		info, e, retry := c.saveFrom(ctx, startBy, endpoint, path, w)
		if e == nil {
			return info, nil
		}
		e.Op, e.Tries = "snapshot", try
		last = e
		if !retry {
			return SnapshotInfo{}, e
		}
		if e.Status == 0 || e.Status == http.StatusServiceUnavailable || e.Status == http.StatusTooManyRequests {
			eps.failed(turn)
		}
		c.lg.Debug("retrying a snapshot", zap.String("endpoint", endpoint), zap.Int("status", e.Status), zap.String("code", e.Code))
		if !c.pause(startCtx, &backoff) {
			return SnapshotInfo{}, withErr(last, stopErr(startCtx))
		}
	}
}

// saveFrom asks endpoint for a backup and writes it to w. retry says
// whether another try may follow: the member did not start sending (it
// refused, timed out or could not be reached), or broke off before
// anything reached w.
func (c *Client) saveFrom(ctx context.Context, startBy time.Time, endpoint, path string, w io.Writer) (SnapshotInfo, *Error, bool) {
	reqCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	// The answer must start by startBy; the body may take longer.
	timer := time.AfterFunc(time.Until(startBy), cancel)
	req, err := http.NewRequestWithContext(reqCtx, http.MethodGet, endpoint+path, nil)
	if err != nil {
		timer.Stop()
		return SnapshotInfo{}, &Error{Endpoint: endpoint, Code: CodeBadRequest, Err: err}, false
	}
	req.Header["Accept"] = []string{"application/json"}
	req.Header[HeaderRoute] = []string{"client"}
	resp, err := c.http.Do(req)
	if !timer.Stop() && err == nil {
		resp.Body.Close()
		err = context.DeadlineExceeded
	}
	if err != nil {
		if ctx.Err() != nil {
			err = ctx.Err()
		} else if time.Now().After(startBy) {
			err = errors.Join(context.DeadlineExceeded, err)
		}
		return SnapshotInfo{}, &Error{Endpoint: endpoint, Err: err}, ctx.Err() == nil
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
		e := errorOf(&reply{status: resp.StatusCode, header: resp.Header, body: b, endpoint: endpoint})
		switch resp.StatusCode {
		case http.StatusServiceUnavailable, http.StatusTooManyRequests, http.StatusGatewayTimeout:
			return SnapshotInfo{}, e, true
		}
		return SnapshotInfo{}, e, false
	}
	cw := &countingWriter{w: w}
	h, err := backup.Verify(io.TeeReader(resp.Body, cw))
	switch {
	case err == nil:
		return SnapshotInfo{Header: h, Endpoint: endpoint, Size: cw.n}, nil, false
	case cw.err != nil:
		return SnapshotInfo{}, &Error{Endpoint: endpoint, Status: resp.StatusCode, Message: "writing the backup", Err: cw.err}, false
	case isFormatError(err):
		return SnapshotInfo{}, &Error{Endpoint: endpoint, Status: resp.StatusCode, Code: CodeInternal,
			Message: "the member's answer is not a whole backup", Err: err}, false
	}
	// The connection broke, or the member cut the stream.
	e := &Error{Endpoint: endpoint, Status: resp.StatusCode, Message: "the backup stream broke off", Err: err}
	if ctx.Err() != nil {
		e.Err = errors.Join(ctx.Err(), err)
	}
	return SnapshotInfo{}, e, cw.n == 0 && ctx.Err() == nil && time.Now().Before(startBy)
}

// isFormatError reports whether err says the bytes are not a whole,
// intact backup, rather than that they stopped coming.
func isFormatError(err error) bool {
	for _, sentinel := range []error{backup.ErrNotBackup, backup.ErrVersion, backup.ErrCorrupt, backup.ErrChecksum} {
		if errors.Is(err, sentinel) {
			return true
		}
	}
	return false
}

// countingWriter counts what it passes on and keeps its writer's error.
type countingWriter struct {
	w   io.Writer
	n   int64
	err error
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	if err != nil {
		c.err = err
	}
	return n, err
}
