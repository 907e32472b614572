package client

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/raftkv/raftkv/shardmap"
	"go.uber.org/zap"
)

// WatchOptions names what a Watch streams.
type WatchOptions struct {
	// Key is the one key watched; when empty, every key with Prefix (""
	// and Key "": every key).
	Key    string
	Prefix string
	// FromIndex is the first raft index streamed; 0: from now on.
	// Watch from the index of a read plus one to see every change after
	// it.
	FromIndex uint64
	// LastEventID resumes after the event of that id (an Event's ID), as
	// a reconnecting Watch does; it wins over FromIndex.
	LastEventID string
	// Markers also streams a shard member's markers (events
	// "bucket_out", "bucket_in" and "group_left"), for a router merging
	// groups.
	Markers bool
	// Group, in a sharded deployment, watches Prefix on that group's
	// members only (a router merges the groups' streams); its events then
	// name only the keys of the buckets that group serves.
	Group uint64
	// Servers, with Group, are the group's members to watch at instead of
	// those the current config lists: for a group no config lists any
	// more (a router resuming a cursor that names a group which left,
	// with the members an older config listed).
	Servers []string
	// Progress also delivers the members' heartbeats, as events of type
	// EventProgress whose KV.ModIndex is the index up to which every event
	// was delivered.
	Progress bool
	// IdleTimeout is how long a stream may stay silent (no event, no
	// heartbeat) before the Watch takes its member for lost and
	// reconnects; members send a heartbeat every 5s by default. Zero
	// means 30s.
	IdleTimeout time.Duration
}

// Event types of a watch.
const (
	EventPut       = "put"
	EventDelete    = "delete"
	EventExpire    = "expire"
	EventBucketOut = "bucket_out"
	EventBucketIn  = "bucket_in"
	// EventGroupLeft (a marker) ends a group's events: the member applied
	// the first config without its group.
	EventGroupLeft = "group_left"
	// EventProgress is a heartbeat (WatchOptions.Progress).
	EventProgress = "progress"
)

// WatchEvent is one change a Watch saw, or, with Err set, why it ended.
type WatchEvent struct {
	// Type is EventPut, EventDelete, EventExpire (a TTL ran out) or, with
	// WatchOptions.Markers, a marker (EventBucketOut, EventBucketIn,
	// EventGroupLeft).
	Type string
	// KV is the key after the change: its value for a put; CreateIndex
	// and ModIndex for every type: for a put the key's version (its ETag,
	// past the raft index of the change when the key's bucket came from a
	// group whose versions had gone further), else the raft index.
	KV KeyValue
	// Index is the raft index of the change in its group and Pos the
	// event's position among the events of that index, both from a
	// member's id; Index is 0 for an event through a router (its id is a
	// cursor).
	Index uint64
	Pos   uint32
	// ID is the stream's id of the event: "<index>.<pos>" from a member
	// ("<group>=<index>.<pos>" for a Watch of a Key in a sharded
	// deployment, naming the group whose log it is in), a cursor of every
	// group from a router. WatchOptions' LastEventID takes it.
	ID string
	// Bucket and Version are a marker's. An EventProgress of a stream
	// with markers has a Version too when its member said which config
	// it had applied as of the heartbeat (SaysConfig; 0 when it could
	// not tell): every bucket_out marker of that config, and of those
	// before it, came before.
	Bucket  int
	Version uint64
	// SaysConfig, on an EventProgress, says that its member wrote which
	// config it had applied as of it (Version), as members do on streams
	// with markers since they can; members of older binaries do not.
	SaysConfig bool
	// Err, on the last value sent before the channel closes, is why the
	// watch ended (not set when its context ended): ErrCompacted when
	// no member keeps the events it needed any more (its *Error's
	// OldestIndex says from where to start again; through a router, also
	// when a group that left took events the stream had not delivered),
	// ErrBadRequest, or ErrUnavailable
	// after no member could be reached for RequestTimeout.
	Err error
}

// Watch streams the changes of a key or of a prefix, in the order their
// group applied them, from any member (followers too). It connects
// before it returns, and returns the error if that fails for good
// (ErrCompacted, ErrBadRequest, or the last error once RequestTimeout
// passed). Then a goroutine delivers the events on the channel until ctx
// ends or the watch fails for good (the last value then carries Err);
// the channel is closed after. When a stream breaks (its member stops,
// is killed, falls silent for IdleTimeout, ends it because the channel
// was not read fast enough, or restored a snapshot past the events still
// to come), it connects again, to the next member, resuming after the
// last event delivered, or after the last heartbeat's index: no event is
// lost or repeated. A 410 (compacted) of one member sends it to the
// next; it fails with ErrCompacted only once every member gave one. In a sharded
// deployment a Watch of a Key goes to the key's group, and ends with
// ErrCompacted when that group hands the key's bucket on (its changes go
// on in the new group's log, where no position of this Watch is): read
// the key again and watch from the read's index plus one. Watching a
// prefix across groups is a router's (send the watch to a router).
func (c *Client) Watch(ctx context.Context, opts WatchOptions) (<-chan WatchEvent, error) {
	if opts.Key == "" && opts.Group == 0 && c.Sharded() {
		return nil, badInput("watch", "", "a prefix spans the groups of a sharded deployment: watch it through a router, or one group (WatchOptions.Group)")
	}
	if opts.Key != "" && opts.Group != 0 {
		return nil, badInput("watch", opts.Key, "a Watch of a key goes to the key's group; Group goes with Prefix")
	}
	if len(opts.Servers) > 0 && opts.Group == 0 {
		return nil, badInput("watch", opts.Key, "Servers go with Group: they are the members of one group")
	}
	w := &watchStream{c: c, opts: opts, lastID: opts.LastEventID, afterPos: -1, fromIndex: opts.FromIndex}
	if len(opts.Servers) > 0 {
		if w.servers = newMembers(opts.Servers); len(w.servers.urls) == 0 {
			return nil, badInput("watch", opts.Key, "no Server is a valid URL")
		}
	}
	if opts.LastEventID != "" {
		w.fromIndex = 0
		w.noteID(opts.LastEventID)
	}
	if w.opts.IdleTimeout <= 0 {
		w.opts.IdleTimeout = 30 * time.Second
	}
	resp, err := w.connect(ctx)
	if err != nil {
		return nil, err
	}
	ch := make(chan WatchEvent)
	go w.run(ctx, resp, ch)
	return ch, nil
}

// watchStream is one Watch's state: where to resume.
type watchStream struct {
	c    *Client
	opts WatchOptions
	// lastID is the id of the last event delivered (or given); fromIndex
	// and afterPos are where to resume as a member reads it: the last
	// event's index and position, or the index after the last heartbeat.
	lastID    string
	fromIndex uint64
	afterPos  int64
	// turn and group are the member of the current stream; cancel ends
	// it.
	group  *members
	turn   uint64
	cancel context.CancelFunc
	// servers are WatchOptions.Servers (nil: the config's members).
	servers *members
	// posGroup is the group (HeaderGroup) whose log the position above is
	// in, for a Watch of a Key in a sharded deployment: its first
	// stream's. moved, once set, ends the Watch: the key's bucket left
	// that group, and no position in its log says where to go on in
	// another's.
	posGroup string
	moved    *Error
}

// movedError ends a Watch of a Key whose bucket moved to another group.
// Like a compacted one, it is resumed by reading again: the key's read
// names an index of its new group to watch from.
func (w *watchStream) movedError(why string) *Error {
	return &Error{Op: "watch", Key: w.opts.Key, Code: CodeCompacted, Status: http.StatusGone,
		Message: "the key's bucket moved to another shard group (" + why + "): its changes from here are in that group's log; read the key again, and watch from the read's index plus one"}
}

// request is the watch request of the next connection.
func (w *watchStream) request() *call {
	q := url.Values{"watch": {"true"}}
	path := "/key"
	if w.opts.Key != "" {
		path += "/" + url.PathEscape(w.opts.Key)
	} else if w.opts.Prefix != "" {
		q.Set("prefix", w.opts.Prefix)
	}
	if w.opts.Markers {
		q.Set("markers", "true")
	}
	cl := &call{op: "watch", method: http.MethodGet, key: w.opts.Key, group: w.opts.Group, ok: []int{http.StatusOK}}
	// A Watch of a Key whose position names its group, sent to a router
	// (a Client of a sharded deployment talks to the members, which take
	// plain ids): the position goes with its group, so that the router
	// resumes in that group's log or ends the watch as compacted.
	routed := w.opts.Key != "" && w.posGroup != "" && !w.c.Sharded()
	switch {
	case w.afterPos >= 0 && routed:
		cl.setHeader("Last-Event-ID", w.posGroup+"="+strconv.FormatUint(w.fromIndex, 10)+"."+strconv.FormatInt(w.afterPos, 10))
	case w.afterPos >= 0:
		cl.setHeader("Last-Event-ID", strconv.FormatUint(w.fromIndex, 10)+"."+strconv.FormatInt(w.afterPos, 10))
	case w.fromIndex > 0 && routed:
		cl.setHeader("Last-Event-ID", w.posGroup+"="+strconv.FormatUint(w.fromIndex-1, 10)) // every event up to fromIndex-1
	case w.fromIndex > 0:
		q.Set("from_index", strconv.FormatUint(w.fromIndex, 10))
	case w.lastID != "":
		cl.setHeader("Last-Event-ID", w.lastID) // a router's cursor
	}
	cl.path = path + "?" + q.Encode()
	return cl
}

// connect opens a stream, trying members until one answers it or
// RequestTimeout passes; an answer that ends the watch (4xx) is returned.
// A 410 ends it only once every member of the group gave one: each
// member keeps its own window of events, and one that restored a
// snapshot (a restarted follower that fell behind) starts its window
// afresh while the others still hold the events.
func (w *watchStream) connect(ctx context.Context) (*http.Response, error) {
	cctx, cancel := w.c.callContext(ctx)
	defer cancel()
	backoff := w.c.cfg.Backoff
	var last *Error
	gone := map[string]*Error{} // the members that answered 410, and how
	for try := 1; ; try++ {
		cl := w.request()
		if owner := w.keyOwner(); owner != "" && w.posGroup != "" && owner != w.posGroup {
			// The config gives the key to another group now: this
			// watch's position is in the old group's log.
			return nil, w.movedError(fmt.Sprintf("from group %s to group %s", w.posGroup, owner))
		}
		group, turn, endpoint, err := w.target(cctx, cl)
		if err != nil {
			e, ok := err.(*Error)
			if !ok {
				e = &Error{Err: err}
			}
			if e.Code != CodeNoOwner || !w.c.pause(cctx, &backoff) {
				e.Op, e.Key = "watch", w.opts.Key
				return nil, e
			}
			continue
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, endpoint+cl.path, nil)
		if err != nil {
			return nil, &Error{Op: "watch", Key: w.opts.Key, Code: CodeBadRequest, Err: err}
		}
		req.Header = cl.header
		if req.Header == nil {
			req.Header = http.Header{}
		}
		req.Header.Set("Accept", "text/event-stream, application/json")
		req.Header.Set(HeaderRoute, "client")
		// The dial and the answer's head are bounded by the try's
		// deadline; the stream itself only by ctx and IdleTimeout.
		sctx, scancel := context.WithCancel(ctx)
		stop := context.AfterFunc(cctx, scancel)
		resp, err := w.c.http.Do(req.WithContext(sctx))
		if !stop() && err == nil {
			resp.Body.Close()
			err = cctx.Err()
		}
		if err != nil {
			scancel()
			if ctx.Err() != nil {
				return nil, &Error{Op: "watch", Key: w.opts.Key, Endpoint: endpoint, Err: ctx.Err(), Tries: try}
			}
			last = &Error{Op: "watch", Key: w.opts.Key, Endpoint: endpoint, Err: err, Tries: try}
			group.failed(turn)
		} else if g := resp.Header.Get(HeaderGroup); resp.StatusCode == http.StatusOK && w.opts.Group != 0 && g != "" &&
			g != strconv.FormatUint(w.opts.Group, 10) {
			// Another group's member, at a URL an older config gave this
			// group (Servers): its events are not this group's.
			resp.Body.Close()
			scancel()
			last = &Error{Op: "watch", Key: w.opts.Key, Endpoint: endpoint, Code: CodeWrongGroup, Tries: try,
				Message: fmt.Sprintf("watch of group %d: the member at %s serves group %s", w.opts.Group, endpoint, g)}
			group.failed(turn)
		} else if resp.StatusCode == http.StatusOK && w.opts.Key != "" && w.posGroup != "" && g != "" && g != w.posGroup {
			// The key's group is another now: the position of this
			// watch is in the old group's log, and means nothing here.
			resp.Body.Close()
			scancel()
			return nil, w.movedError(fmt.Sprintf("from group %s to group %s", w.posGroup, g))
		} else if resp.StatusCode == http.StatusOK {
			if w.opts.Key != "" && w.posGroup == "" {
				w.posGroup = g
			}
			w.group, w.turn, w.cancel = group, turn, scancel
			return resp, nil
		} else {
			b, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
			resp.Body.Close()
			scancel()
			e := errorOf(&reply{status: resp.StatusCode, header: resp.Header, body: b, endpoint: endpoint})
			e.Op, e.Key, e.Tries = "watch", w.opts.Key, try
			last = e
			switch {
			case resp.StatusCode == http.StatusGone:
				gone[endpoint] = e
				if len(gone) >= len(group.urls) {
					return nil, oldestGone(gone)
				}
				group.failed(turn)
				continue // the next member, at once
			case resp.StatusCode == http.StatusMisdirectedRequest || (resp.StatusCode >= 300 && resp.StatusCode < 400):
				if w.c.Sharded() {
					_, _ = w.c.Refresh(cctx, e.Version)
				}
			case resp.StatusCode == http.StatusServiceUnavailable, resp.StatusCode == http.StatusTooManyRequests,
				resp.StatusCode >= 500:
				group.failed(turn)
			default:
				return nil, e // 400...: another try is answered the same
			}
		}
		if !w.c.pause(cctx, &backoff) {
			return nil, withErr(last, stopErr(cctx))
		}
	}
}

// target chooses the member of one try: one of WatchOptions.Servers,
// or as the Client chooses.
func (w *watchStream) target(ctx context.Context, cl *call) (*members, uint64, string, error) {
	if w.servers != nil {
		turn, endpoint := w.servers.pick()
		return w.servers, turn, endpoint, nil
	}
	return w.c.target(ctx, cl)
}

// oldestGone is the 410 of the member that keeps the oldest events: a
// watch started again from its OldestIndex is served there.
func oldestGone(gone map[string]*Error) *Error {
	var oldest *Error
	for _, e := range gone {
		if oldest == nil || e.OldestIndex < oldest.OldestIndex {
			oldest = e
		}
	}
	return oldest
}

// run delivers the events of resp's stream, and of the streams after it,
// on ch until ctx ends or the watch fails for good.
func (w *watchStream) run(ctx context.Context, resp *http.Response, ch chan<- WatchEvent) {
	defer close(ch)
	// compacted counts the streams in a row that ended compacted without
	// moving the watch on: once every member (or router) did, none holds
	// the events, as when each answers 410 at once (connect).
	compacted := 0
	for {
		at := [3]any{w.lastID, w.fromIndex, w.afterPos}
		err := w.read(ctx, resp.Body, ch)
		resp.Body.Close()
		w.cancel()
		if ctx.Err() != nil {
			return
		}
		var e *Error
		switch {
		case !errors.As(err, &e) || e.Code != CodeCompacted:
			compacted = 0
		case at != [3]any{w.lastID, w.fromIndex, w.afterPos}:
			compacted = 1
		default:
			compacted++
		}
		if compacted > 0 && compacted >= len(w.group.urls) {
			w.finish(ctx, ch, err)
			return
		}
		// The stream broke, or the member ended it (too slow, stopping,
		// or compacted: it restored a snapshot past the events still to
		// come, which another member may hold): resume at the next
		// member.
		if w.moved != nil {
			w.finish(ctx, ch, w.moved)
			return
		}
		w.c.lg.Debug("watch stream ended; resuming", zap.Error(err))
		w.group.failed(w.turn)
		if resp, err = w.connect(ctx); err != nil {
			if ctx.Err() == nil {
				w.finish(ctx, ch, err)
			}
			return
		}
	}
}

// finish sends the error that ends the watch.
func (w *watchStream) finish(ctx context.Context, ch chan<- WatchEvent, err error) {
	select {
	case ch <- WatchEvent{Err: err}:
	case <-ctx.Done():
	}
}

// eventData is the data of a watch event.
type eventData struct {
	kvJSON
	Type    string `json:"type"`
	Bucket  *int   `json:"bucket"`
	Version uint64 `json:"version"`
}

// read parses one Server-Sent Events stream and delivers its events,
// until it ends: its error is the stream's end (an error event's, as an
// *Error, or the connection's).
func (w *watchStream) read(ctx context.Context, body io.Reader, ch chan<- WatchEvent) error {
	idle := time.AfterFunc(w.opts.IdleTimeout, w.cancel)
	defer idle.Stop()
	sc := bufio.NewScanner(body)
	sc.Buffer(make([]byte, 0, 64<<10), maxBody)
	sc.Split(scanLines)
	var id, name string
	var data bytes.Buffer
	hasID := false
	var config uint64 // a ": config <version>" comment of this message
	saysConfig := false
	for sc.Scan() {
		idle.Reset(w.opts.IdleTimeout)
		line := sc.Bytes()
		switch {
		case len(line) == 0:
			// The end of a message.
			config, saysConfig = 0, false
			if name == "" && data.Len() == 0 {
				if hasID {
					w.lastID, w.fromIndex, w.afterPos = id, 0, -1
					w.noteID(id)
				}
				id, hasID = "", false
				continue
			}
			if err := w.dispatch(ctx, ch, id, hasID, name, data.Bytes()); err != nil {
				return err
			}
			id, name, hasID = "", "", false
			data.Reset()
		case line[0] == ':':
			comment := strings.TrimSpace(string(line[1:]))
			if v, ok := strings.CutPrefix(comment, "config "); ok {
				var err error
				config, err = strconv.ParseUint(v, 10, 64)
				saysConfig = err == nil
				continue
			}
			if index, ok := w.noteProgress(comment); ok && w.opts.Progress {
				select {
				case ch <- WatchEvent{Type: EventProgress, KV: KeyValue{ModIndex: index}, Bucket: -1, Version: config, SaysConfig: saysConfig}:
				case <-ctx.Done():
					return ctx.Err()
				}
			}
		default:
			field, value, _ := bytes.Cut(line, []byte(":"))
			value = bytes.TrimPrefix(value, []byte(" "))
			switch string(field) {
			case "id":
				id, hasID = string(value), true
			case "event":
				name = string(value)
			case "data":
				if data.Len() > 0 {
					data.WriteByte('\n')
				}
				data.Write(value)
			}
		}
	}
	if err := sc.Err(); err != nil {
		return err
	}
	return io.ErrUnexpectedEOF
}

// scanLines is bufio.ScanLines but for the end of the stream: a last
// line with no line break is not returned. A stream cut in the middle of
// a line (its member killed) would otherwise hand over a truncated
// heartbeat, ": progress 12" of ": progress 1234", and the watch would
// resume after index 12 though events of it were still to come.
func scanLines(data []byte, _ bool) (int, []byte, error) {
	if i := bytes.IndexByte(data, '\n'); i >= 0 {
		return i + 1, bytes.TrimSuffix(data[:i], []byte("\r")), nil
	}
	return 0, nil, nil // more data, or the end of a cut stream
}

// cutGroup splits a key watch's id "<group>=<index>.<pos>" (or
// "<group>=<index>") into the group and the member's id; false for any
// other id (a member's own, or a router's cursor of several groups).
func cutGroup(id string) (group, rest string, ok bool) {
	g, rest, ok := strings.Cut(id, "=")
	if !ok {
		return "", "", false
	}
	if _, err := strconv.ParseUint(g, 10, 64); err != nil {
		return "", "", false
	}
	if _, _, dotted := parseEventID(rest); !dotted {
		if _, err := strconv.ParseUint(rest, 10, 64); err != nil {
			return "", "", false
		}
	}
	return g, rest, true
}

// keyEventID is the id a Watch delivers for a member's event id: for a
// Watch of a Key in a sharded deployment, "<group>=<index>.<pos>", which
// names the group whose log the position is in (a Watch given it as
// LastEventID ends as compacted if the key has moved to another group
// since, rather than resume at that index of another log); else id.
func (w *watchStream) keyEventID(id string) string {
	if _, _, tagged := cutGroup(id); tagged || w.opts.Key == "" || w.posGroup == "" || id == "" {
		return id // a router's relay of a key watch tags them itself
	}
	return w.posGroup + "=" + id
}

// dispatch delivers one message of the stream.
func (w *watchStream) dispatch(ctx context.Context, ch chan<- WatchEvent, id string, hasID bool, name string, data []byte) error {
	if name == "error" {
		var eb errorBody
		_ = json.Unmarshal(data, &eb)
		return &Error{Op: "watch", Key: w.opts.Key, Code: eb.Code, Message: eb.Error, OldestIndex: eb.OldestIndex, Status: statusOfCode(eb.Code)}
	}
	var d eventData
	if err := json.Unmarshal(data, &d); err != nil {
		return &Error{Op: "watch", Key: w.opts.Key, Code: CodeInternal, Message: "unreadable watch event", Err: err}
	}
	kv, err := d.keyValue()
	if err != nil {
		return &Error{Op: "watch", Key: w.opts.Key, Code: CodeInternal, Message: "unreadable watch event", Err: err}
	}
	ev := WatchEvent{Type: name, KV: kv, ID: w.keyEventID(id), Bucket: -1, Version: d.Version}
	if d.Bucket != nil {
		ev.Bucket = *d.Bucket
	}
	plain := id
	if _, rest, ok := cutGroup(id); ok {
		plain = rest
	}
	if index, pos, ok := parseEventID(plain); ok {
		ev.Index, ev.Pos = index, pos
	}
	if name == EventBucketOut && w.opts.Key != "" && w.keyBucket() == ev.Bucket {
		// The key's group handed its bucket on: what happens to the key
		// from now on, this stream will never carry.
		w.moved = w.movedError(fmt.Sprintf("bucket %d, config %d", ev.Bucket, ev.Version))
		return w.moved
	}
	// A shard member sends markers to every routing client.
	if marker := name == EventBucketOut || name == EventBucketIn || name == EventGroupLeft; !marker || w.opts.Markers {
		select {
		case ch <- ev:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	if hasID {
		w.lastID, w.fromIndex, w.afterPos = id, 0, -1
		w.noteID(id)
	}
	return nil
}

// noteID reads a member's event id into where to resume: at its index,
// after its position.
func (w *watchStream) noteID(id string) {
	if g, rest, ok := cutGroup(id); ok && w.opts.Key != "" {
		// "<group>=<index>.<pos>": an id of a Watch of a Key in a
		// sharded deployment (keyEventID), a position in that group's
		// log: a connection finding the key at another group ends the
		// Watch as compacted rather than resume there.
		w.posGroup, id = g, rest
	}
	if index, pos, ok := parseEventID(id); ok {
		w.fromIndex, w.afterPos = index, int64(pos)
	} else if index, err := strconv.ParseUint(id, 10, 64); err == nil && index > 0 && index < math.MaxUint64 {
		// "<index>": every event up to index.
		w.fromIndex, w.afterPos = index+1, -1
	}
}

// noteProgress reads a heartbeat, ": progress <index>": every event up to
// index was delivered, so a resumption may start after it. It returns the
// index and whether it moved the watch on.
func (w *watchStream) noteProgress(comment string) (uint64, bool) {
	rest, ok := strings.CutPrefix(comment, "progress ")
	if !ok {
		return 0, false
	}
	index, err := strconv.ParseUint(strings.TrimSpace(rest), 10, 64)
	if err != nil {
		return 0, false
	}
	if index == 0 {
		return 0, true // a member that applied nothing yet: no position to keep
	}
	if w.afterPos >= 0 && index < w.fromIndex {
		return 0, false // older than the last event
	}
	if w.afterPos < 0 && (index+1 < w.fromIndex || w.lastID != "" && w.fromIndex == 0) {
		return 0, false // older than asked for, or a router's stream (it resumes by its ids)
	}
	w.fromIndex, w.afterPos = index+1, -1
	return index, true
}

// parseEventID reads a member's event id "<index>.<pos>".
func parseEventID(id string) (uint64, uint32, bool) {
	i, p, ok := strings.Cut(id, ".")
	if !ok {
		return 0, 0, false
	}
	index, err1 := strconv.ParseUint(i, 10, 64)
	pos, err2 := strconv.ParseUint(p, 10, 32)
	return index, uint32(pos), err1 == nil && err2 == nil && index > 0
}

// statusOfCode is the status an error event's code stands for.
func statusOfCode(code string) int {
	switch code {
	case CodeCompacted:
		return http.StatusGone
	case CodeTooSlow:
		return http.StatusServiceUnavailable
	}
	return 0
}

// keyOwner is the group that the cached config gives a Watch's Key, as
// HeaderGroup names it; "" without a key or a config.
func (w *watchStream) keyOwner() string {
	if w.opts.Key == "" || w.servers != nil {
		return ""
	}
	cfg, ok := w.c.CachedConfig()
	if !ok || len(cfg.Buckets) == 0 {
		return ""
	}
	if gid := cfg.OwnerOfKey(w.opts.Key); gid != 0 {
		return strconv.FormatUint(gid, 10)
	}
	return ""
}

// keyBucket is the bucket of a Watch's Key under the cached config; -1
// without a key or a config.
func (w *watchStream) keyBucket() int {
	if w.opts.Key == "" {
		return -1
	}
	cfg, ok := w.c.CachedConfig()
	if !ok || len(cfg.Buckets) == 0 {
		return -1
	}
	return shardmap.BucketOf(w.opts.Key, len(cfg.Buckets))
}
