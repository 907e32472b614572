package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// This file holds watches: GET /key?watch=true[&prefix=p] and GET
// /key/<k>?watch=true (or /<k>?watch=true), streamed as Server-Sent
// Events until the client goes or the server shuts down.

const (
	// watchWriteTimeout bounds each write of a watch's stream: a client
	// that reads nothing for that long is dropped, rather than holding a
	// goroutine blocked in Write.
	watchWriteTimeout = 30 * time.Second
	// watchBatch is the most events written between two flushes.
	watchBatch = 256
)

// HeaderLastEventID is the SSE header with which a client resumes a
// watch after the last event it received.
const HeaderLastEventID = "Last-Event-ID"

// isWatch reports whether r is a watch: a GET of a key path (/key,
// /key/<k>, or /<k> not reserved nor mounted) whose query parses and says
// watch=true, once.
func (h *handler) isWatch(r *http.Request) bool {
	if r.Method != http.MethodGet || !strings.Contains(r.URL.RawQuery, "watch") {
		return false
	}
	p := r.URL.Path
	if h.mounted(p) != nil {
		return false
	}
	if p != "/key" && !strings.HasPrefix(p, "/key/") && (len(p) < 2 || p[0] != '/' || reserved(p)) {
		return false
	}
	q, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil || len(q["watch"]) != 1 {
		return false
	}
	b, err := strconv.ParseBool(strings.TrimSpace(q["watch"][0]))
	return err == nil && b
}

// notWatch checks the watch parameter of a request that is not a watch:
// absent, or false. watch=true reaches it only on a HEAD.
func notWatch(q url.Values) error {
	v, ok, err := queryParam(q, "watch")
	if err != nil || !ok {
		return err
	}
	b, err := strconv.ParseBool(strings.TrimSpace(v))
	if err != nil {
		return withDetail(ErrBadWatch, "watch must be true or false; got %q", truncate(v, 40))
	}
	if b {
		return withDetail(ErrBadWatch, "a watch is a GET")
	}
	return nil
}

// watchRequest is a watch's parameters.
type watchRequest struct {
	opts WatchOptions
	// markers: also stream a shard member's bucket markers, for a
	// routing client (X-Raftkv-Route: client) or with ?markers=true.
	markers bool
}

// parseWatch reads a watch: the key of the path, or ?prefix= on /key (no
// prefix: every key); ?from_index=N, the first index to stream (absent
// or 0: from now on); Last-Event-ID, which wins over from_index, to
// resume after an event; ?markers=true. start and end are refused: a
// watch takes a key or a prefix.
func (h *handler) parseWatch(r *http.Request) (watchRequest, error) {
	var req watchRequest
	q, err := parseQuery(r.URL.RawQuery)
	if err != nil {
		return req, err
	}
	get := func(name string) (string, bool, error) {
		v, ok, err := queryParam(q, name)
		if err != nil {
			return "", false, withDetail(ErrBadWatch, "%s", humanMessage(err))
		}
		return v, ok, nil
	}
	for _, name := range []string{"start", "end", "continue", "limit"} {
		if _, ok := q[name]; ok {
			return req, withDetail(ErrBadWatch, "a watch takes a key or a prefix, not %s", name)
		}
	}
	prefix, hasPrefix, err := get("prefix")
	if err != nil {
		return req, err
	}
	p := r.URL.Path
	switch {
	case p == "/key":
		req.opts.Prefix = prefix
	case hasPrefix:
		return req, withDetail(ErrBadWatch, "prefix goes with GET /key?watch=true&prefix=..., not with a key's path")
	default:
		key := strings.TrimPrefix(p, "/key/")
		if key == p {
			key = p[1:]
		}
		if err := h.checkKey(key); err != nil {
			return req, err
		}
		req.opts.Key = key
	}
	req.opts.AfterPos = -1
	if v, ok, err := get("from_index"); err != nil {
		return req, err
	} else if ok {
		n, err := strconv.ParseUint(strings.TrimSpace(v), 10, 64)
		if err != nil {
			return req, withDetail(ErrBadWatch, "from_index must be a raft index (a decimal unsigned integer); got %q", truncate(v, 40))
		}
		req.opts.FromIndex = n
	}
	if v, ok, err := get("markers"); err != nil {
		return req, err
	} else if ok {
		if req.markers, err = strconv.ParseBool(strings.TrimSpace(v)); err != nil {
			return req, withDetail(ErrBadWatch, "markers must be true or false; got %q", truncate(v, 40))
		}
	}
	req.markers = req.markers || routingClient(r)
	switch ids := r.Header.Values(HeaderLastEventID); len(ids) {
	case 0:
	case 1:
		from, after, err := ParseEventID(ids[0])
		if err != nil {
			return req, err
		}
		req.opts.FromIndex, req.opts.AfterPos = from, after
	default:
		return req, withDetail(ErrBadWatch, "header %s given more than once", HeaderLastEventID)
	}
	return req, nil
}

// ParseEventID reads a watch's event id, as a Last-Event-ID: "I.P", the
// event at position P of raft index I, resumes at FromIndex I after
// position P; "I" alone, every event up to index I, resumes at I+1.
func ParseEventID(id string) (fromIndex uint64, afterPos int64, err error) {
	bad := func() (uint64, int64, error) {
		return 0, 0, withDetail(ErrBadWatch, "%s must be <index>.<pos>, the id of an event of this stream, or <index>; got %q",
			HeaderLastEventID, truncate(id, 80))
	}
	s := strings.TrimSpace(id)
	idx, pos, dotted := strings.Cut(s, ".")
	if idx == "" || idx[0] == '+' || (dotted && (pos == "" || pos[0] == '+')) {
		return bad()
	}
	i, err := strconv.ParseUint(idx, 10, 64)
	if err != nil {
		return bad()
	}
	if !dotted {
		if i == math.MaxUint64 {
			return bad()
		}
		return i + 1, -1, nil
	}
	p, err := strconv.ParseUint(pos, 10, 32)
	if err != nil || i == 0 {
		return bad()
	}
	return i, int64(p), nil
}

// EventID is the SSE id of the event at position pos of raft index index.
func EventID(index uint64, pos uint32) string {
	return strconv.FormatUint(index, 10) + "." + strconv.FormatUint(uint64(pos), 10)
}

// watch serves a watch.
func (h *handler) watch(w http.ResponseWriter, r *http.Request) error {
	req, err := h.parseWatch(r)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	wt, err := h.cfg.Store.Watch(ctx, req.opts)
	if err != nil {
		return err
	}
	if req.markers && h.cfg.Group != 0 {
		w.Header()[HeaderGroup] = []string{strconv.FormatUint(h.cfg.Group, 10)}
	}
	h.stream(ctx, w, wt, req.markers)
	return nil
}

// stream writes wt's events to w as Server-Sent Events, with a heartbeat
// every WatchProgressInterval, until the watcher ends (then an error
// event says why), the client goes, a write to it fails, or the server
// shuts down. It clears the server's read and write deadlines, which are
// for requests, and bounds each write by watchWriteTimeout instead.
func (h *handler) stream(ctx context.Context, w http.ResponseWriter, wt Watcher, markers bool) {
	rc := http.NewResponseController(w)
	_ = rc.SetReadDeadline(time.Time{}) // not supported by every ResponseWriter
	start := wt.Progress()
	hdr := w.Header()
	hdr["Content-Type"] = []string{"text/event-stream"}
	hdr["Cache-Control"] = []string{"no-cache"}
	hdr["X-Accel-Buffering"] = []string{"no"} // proxies that buffer would hold events back
	hdr["X-Raft-Index"] = []string{strconv.FormatUint(start, 10)}
	w.WriteHeader(http.StatusOK)
	s := &sseWriter{w: w, rc: rc, markers: markers}
	// A router's stream (markers) hears, with each heartbeat, the config
	// the member had applied as of it: a router holding another group's
	// events behind a bucket's move out of this group lets them go once
	// this group is past the move, rather than trusting a heartbeat of a
	// member that lags behind it.
	cw, _ := wt.(ConfigWatcher)
	if !markers {
		cw = nil
	}
	progress := func(p uint64) {
		if cw != nil {
			s.config(cw.ConfigVersionAt(p)) // 0: not known as of p
		}
		s.progress(p)
	}
	progress(start)
	if s.flush() != nil {
		return
	}
	tick := time.NewTicker(progressInterval(h.cfg.WatchProgressInterval, markers))
	defer tick.Stop()
	for {
		select {
		case ev, ok := <-wt.Events():
			if !ok {
				s.end(ctx, wt)
				return
			}
			s.event(ev)
			s.drain(wt, watchBatch)
		case <-tick.C:
			// Every event up to p is in the channel already: send them
			// first, so the heartbeat never passes an event.
			p := wt.Progress()
			s.drain(wt, -1)
			progress(p)
		case <-wt.Done():
			s.end(ctx, wt)
			return
		case <-h.stopping:
			s.flush()
			return
		case <-ctx.Done():
			return
		}
		if s.flush() != nil {
			return
		}
	}
}

// markerProgressInterval bounds the heartbeat interval of a stream with
// markers (a router's): after a bucket move on a resumed watch, the router
// may hold the new owner's events until two of the old owner's heartbeats.
const markerProgressInterval = time.Second

// progressInterval is a stream's heartbeat interval.
func progressInterval(every time.Duration, markers bool) time.Duration {
	if markers {
		return min(every, markerProgressInterval)
	}
	return every
}

// closeWatches ends every watch: the server is shutting down, and would
// otherwise wait for them.
func (h *handler) closeWatches() { h.closeOnce.Do(func() { close(h.stopping) }) }

// sseWriter writes a watch's stream.
type sseWriter struct {
	w       http.ResponseWriter
	rc      *http.ResponseController
	markers bool
	buf     bytes.Buffer
	enc     *json.Encoder
}

// eventJSON is an event's data.
type eventJSON struct {
	Type string `json:"type"`
	kvJSON
	Bucket  *int   `json:"bucket,omitempty"`
	Version uint64 `json:"version,omitempty"`
}

// eventName is the SSE event name of t.
func eventName(t EventType) string {
	switch t {
	case EventPut:
		return "put"
	case EventDelete:
		return "delete"
	case EventExpire:
		return "expire"
	case EventBucketOut:
		return "bucket_out"
	case EventBucketIn:
		return "bucket_in"
	case EventGroupLeft:
		return "group_left"
	}
	return "unknown"
}

// event writes ev: id, event name and one line of JSON data.
func (s *sseWriter) event(ev Event) {
	marker := ev.Type == EventBucketOut || ev.Type == EventBucketIn || ev.Type == EventGroupLeft
	if marker && !s.markers {
		return
	}
	d := eventJSON{Type: eventName(ev.Type)}
	if marker {
		d.Version, d.ModIndex = ev.Version, ev.ModIndex
		if ev.Type != EventGroupLeft {
			b := ev.Bucket
			d.Bucket = &b
		}
	} else {
		mod := ev.ModIndex
		if ev.Type == EventPut && ev.KeyMod != 0 {
			mod = ev.KeyMod // the version a read of the key answers
		}
		d.kvJSON = kvOf(KeyValue{Key: ev.Key, Value: ev.Value, CreateIndex: ev.CreateIndex, ModIndex: mod}, ev.Type == EventPut)
	}
	s.buf.WriteString("id: ")
	s.buf.WriteString(EventID(ev.ModIndex, ev.Pos))
	s.buf.WriteString("\nevent: ")
	s.buf.WriteString(d.Type)
	s.buf.WriteString("\ndata: ")
	s.json(d)
	s.buf.WriteString("\n\n")
}

// json writes v on one line (encoding/json escapes line breaks).
func (s *sseWriter) json(v any) {
	if s.enc == nil {
		s.enc = json.NewEncoder(&s.buf)
		s.enc.SetEscapeHTML(false)
	}
	if err := s.enc.Encode(v); err != nil {
		panic("httpapi: encoding an event: " + err.Error()) // strings and numbers always encode
	}
	s.buf.Truncate(s.buf.Len() - 1) // Encode's newline
}

// config writes the comment that goes before a heartbeat of a router's
// stream, ": config <version>": as of the heartbeat's index the member
// had applied the config of that version, or, with 0, it cannot tell.
// Clients that do not know it skip it, as any comment.
func (s *sseWriter) config(version uint64) {
	s.buf.WriteString(": config ")
	s.buf.WriteString(strconv.FormatUint(version, 10))
	s.buf.WriteString("\n")
}

// progress writes a heartbeat: every event up to index has been sent.
func (s *sseWriter) progress(index uint64) {
	s.buf.WriteString(": progress ")
	s.buf.WriteString(strconv.FormatUint(index, 10))
	s.buf.WriteString("\n\n")
}

// drain writes the events waiting in wt's channel, at most n (-1: all).
func (s *sseWriter) drain(wt Watcher, n int) {
	for ; n != 0; n-- {
		select {
		case ev, ok := <-wt.Events():
			if !ok {
				return
			}
			s.event(ev)
		default:
			return
		}
	}
}

// end writes what wt delivered before it ended, then, unless the client
// went away, an error event that says why it ended.
func (s *sseWriter) end(ctx context.Context, wt Watcher) {
	s.drain(wt, -1)
	err := wt.Err()
	if ctx.Err() != nil {
		return
	}
	if err == nil {
		err = errors.New("httpapi: the watcher ended without saying why")
	}
	a := answerOf(err, false)
	s.buf.WriteString("event: error\ndata: ")
	s.json(errorJSON{Error: a.message, Code: a.code, OldestIndex: a.oldest})
	s.buf.WriteString("\n\n")
	s.flush()
}

// flush writes the buffered stream to the client, within
// watchWriteTimeout.
func (s *sseWriter) flush() error {
	if s.buf.Len() == 0 {
		return nil
	}
	_ = s.rc.SetWriteDeadline(time.Now().Add(watchWriteTimeout))
	_, err := s.w.Write(s.buf.Bytes())
	s.buf.Reset()
	if err == nil {
		err = s.rc.Flush()
	}
	return err
}
