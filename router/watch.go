package router

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/raftkv/raftkv/client"
	"github.com/raftkv/raftkv/shardmap"
	"go.uber.org/zap"
)

// This file serves watches. A watch of one key goes to the key's group
// and its stream is relayed with the member's ids. A watch of a prefix
// (or of every key) in a sharded deployment spans the groups: the router
// watches each group and merges their streams. Each group's events keep
// their order, so every key's events do (a key is in one group at a
// time; see below for moves); there is no order across groups: two
// events of two groups come in the order the router received them, which
// says nothing about the order they were applied in.
//
// A merged stream's SSE id is a cursor of every group's position,
// "<gid>=<index>.<pos>" (after that event) or "<gid>=<index>" (after
// every event up to that index), each followed by "@<config>", the
// config version whose group of that id the stream follows,
// comma-separated: Last-Event-ID resumes each group where the cursor
// says, and a group it does not name from that group's first index (a
// group that joined since, or one whose events the stream had not
// delivered yet). A group that left and joined again since the cursor's
// config is answered 410 (it may be a new group under the same id, with
// another log); a cursor without config versions (a listing's indexes
// written by hand) is not checked for that. Heartbeats are messages with only an id, the
// cursor, and the comment ": progress". A listing's "cursor"
// ("1=I1@V,2=I2@V", its indexes at its config) starts a watch right
// after it; so do its "indexes" written as "1=I1,2=I2", unchecked.
//
// Bucket moves: a group that installs a bucket sends a bucket_in marker,
// and the group that gave it away a bucket_out when it applied the config
// that took it; both name that config's version v. The old owner is the
// bucket's owner in config v-1 (groups apply configs one after another,
// and the new owner pulls the bucket from the owner before it), which the
// router reads from the config group, each version once per watch. After
// a bucket_in it holds the new owner's stream until the old owner's
// stream has delivered (not only sent the router: it may be held itself)
// its bucket_out of that bucket at v or later, so a moved key's events
// from its new group never pass those from its old one, however late the
// old owner's stream is and however many moves came in between. Or until
// the old owner's stream delivered a marker that comes after that
// bucket_out in its log: a bucket_in it pulled at v or later (it applied
// config v first), or any marker of a later config; or its group_left.
// Or, when the old owner's stream began after its bucket_out, until two
// of its heartbeats were delivered after the bucket_in (the old owner
// applied the config before the new one could install the bucket, so a
// heartbeat it sent after that has passed the bucket_out). With these,
// two groups can never each hold the other: a group's held bucket_in of
// v shows it applied v, which ends any hold on it of a version up to v.
// A group's stream that fails while the group is held ends the watch only
// once the events before the failure are delivered: a group_left among
// them makes the failure of no matter (the group was stopped after it
// left). Markers with no version (from members older than the version
// field) fall back to following each bucket's owner from the config the
// watch began with and the bucket_in markers in the order they came, and
// count the old owner's markers and heartbeats as they arrive. A group
// that joins while a watch is open is watched from its first index once
// the router sees it in the config.
//
// Leaving groups: a group that applies the first config without it sends
// a group_left marker after its last bucket_out; no event of it can
// follow. The router then ends that group's stream and drops the group
// from the cursor, so a group that left and stopped ends nothing. A
// cursor that still names a group no config lists any more (its stream
// had not reached the marker, so events may be missing) resumes that
// group at the members the last config listing it names, until its
// group_left; it is answered 410 when they no longer serve the events.

// watchProgressInterval is how often a merged watch sends a heartbeat.
const watchProgressInterval = 5 * time.Second

// firstBeatWait bounds the wait for every group's first heartbeat.
const firstBeatWait = 10 * time.Second

// configReadWait bounds a merged watch's read of an older config (a
// bucket's owner before a move).
const configReadWait = 2 * time.Second

func isWatch(r *http.Request) bool {
	if r.Method != http.MethodGet || !strings.Contains(r.URL.RawQuery, "watch") {
		return false
	}
	q, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil || len(q["watch"]) != 1 {
		return false
	}
	b, err := strconv.ParseBool(strings.TrimSpace(q["watch"][0]))
	return err == nil && b
}

// watch serves a watch of key (keyPath: a key's path) or of a prefix.
func (h *handler) watch(w http.ResponseWriter, r *http.Request, key string, keyPath bool) error {
	q, err := singleQuery(r)
	if err != nil {
		return err
	}
	for _, name := range []string{"start", "end", "continue", "limit"} {
		if _, ok := q[name]; ok {
			return bad("a watch takes a key or a prefix, not %s", name)
		}
	}
	opts := client.WatchOptions{Progress: true}
	if keyPath {
		if err := h.checkKey(key); err != nil {
			return err
		}
		if _, ok := q["prefix"]; ok {
			return bad("prefix goes with GET /key?watch=true&prefix=..., not with a key's path")
		}
		opts.Key = key
	} else {
		opts.Prefix = q.Get("prefix")
	}
	if v, ok := q["from_index"]; ok {
		n, err := strconv.ParseUint(strings.TrimSpace(v[0]), 10, 64)
		if err != nil {
			return bad("from_index must be a raft index (a decimal unsigned integer); got %q", v[0])
		}
		opts.FromIndex = n
	}
	last := r.Header.Values("Last-Event-ID")
	if len(last) > 1 {
		return bad("header Last-Event-ID given more than once")
	}
	if opts.Key != "" || !h.c.Sharded() {
		if len(last) == 1 {
			opts.LastEventID = last[0]
		}
		return h.relayWatch(w, r, opts)
	}
	if opts.FromIndex > 0 {
		return bad("from_index names an index of one group's log; a watch across groups starts from a Last-Event-ID cursor such as 1=120@4,2=98@4 (a listing's cursor)")
	}
	cur := cursor{}
	if len(last) == 1 {
		if cur, err = parseCursor(last[0]); err != nil {
			return err
		}
	}
	return h.mergeWatch(w, r, opts, cur, len(last) == 1)
}

// sse writes a watch's stream.
type sse struct {
	w   http.ResponseWriter
	rc  *http.ResponseController
	buf bytes.Buffer
}

// startSSE starts a watch's stream. It clears the server's read and
// write deadlines, which are for requests, and bounds each write by
// watchWriteTimeout instead: a client that stops reading while keeping
// its connection ends its watch then, rather than hold it, and the
// groups' streams behind it, for good.
func startSSE(w http.ResponseWriter) *sse {
	rc := http.NewResponseController(w)
	_ = rc.SetReadDeadline(time.Time{})
	_ = rc.SetWriteDeadline(time.Now().Add(watchWriteTimeout))
	hdr := w.Header()
	hdr.Set("Content-Type", "text/event-stream")
	hdr.Set("Cache-Control", "no-cache")
	hdr.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	_ = rc.Flush() // the caller learns at once that its watch is open
	return &sse{w: w, rc: rc}
}

// watchWriteTimeout bounds each write of a watch's stream, as a member's
// does. A var for tests.
var watchWriteTimeout = 30 * time.Second

// eventJSON is an event's data, as a member writes it.
type eventJSON struct {
	Type string `json:"type"`
	kvJSON
}

func (s *sse) event(id string, ev client.WatchEvent) {
	b, _ := json.Marshal(eventJSON{Type: ev.Type, kvJSON: kvOf(ev.KV, ev.Type == client.EventPut)})
	s.buf.WriteString("id: " + id + "\nevent: " + ev.Type + "\ndata: ")
	s.buf.Write(b)
	s.buf.WriteString("\n\n")
}

func (s *sse) fail(err error) {
	code, msg, oldest := client.CodeUnavailable, err.Error(), uint64(0)
	var ce *client.Error
	var a *answer
	switch {
	case errors.As(err, &ce):
		if ce.Code != "" {
			code = ce.Code
		}
		if ce.Message != "" {
			msg = ce.Message
		}
		oldest = ce.OldestIndex
	case errors.As(err, &a):
		// The router's own verdict (a compacted watch): its code, so
		// that clients end rather than resume into it again.
		code, msg = a.code, strings.TrimPrefix(a.msg, "router: ")
	}
	b, _ := json.Marshal(struct {
		Error       string `json:"error"`
		Code        string `json:"code"`
		OldestIndex uint64 `json:"oldest_index,omitempty"`
	}{"router: " + msg, code, oldest})
	s.buf.WriteString("event: error\ndata: ")
	s.buf.Write(b)
	s.buf.WriteString("\n\n")
}

func (s *sse) flush() error {
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

// relayWatch relays one group's watch (a key's, or every key's when the
// router fronts one group) with the member's ids and heartbeats.
func (h *handler) relayWatch(w http.ResponseWriter, r *http.Request, opts client.WatchOptions) error {
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	ch, err := h.c.Watch(ctx, opts)
	if err != nil {
		return err
	}
	s := startSSE(w)
	for ev := range ch {
		switch {
		case ev.Err != nil:
			s.fail(ev.Err)
		case ev.Type == client.EventProgress:
			s.buf.WriteString(": progress " + strconv.FormatUint(ev.KV.ModIndex, 10) + "\n\n")
		default:
			s.event(ev.ID, ev)
		}
		if s.flush() != nil {
			return nil
		}
	}
	return nil
}

// position is where a group's stream is: after event (index, pos), or,
// with pos -1, after every event up to index. since is the config version
// whose listing of the group the stream follows (0: not known): the index
// names a place in the log of the group that version listed under the
// id, and a group listed under it after the id was dropped may have
// another log (a new group, from empty data dirs).
type position struct {
	index uint64
	pos   int64
	since uint64
}

func (p position) String() string {
	if p.pos < 0 {
		return strconv.FormatUint(p.index, 10)
	}
	return strconv.FormatUint(p.index, 10) + "." + strconv.FormatInt(p.pos, 10)
}

// positionOf is the position after ev: its member id "<index>.<pos>".
func positionOf(ev client.WatchEvent) position {
	if ev.Index == 0 {
		return position{index: ev.KV.ModIndex, pos: int64(ev.Pos)} // no member id
	}
	return position{index: ev.Index, pos: int64(ev.Pos)}
}

// cursor is every group's position.
type cursor map[uint64]position

// advance moves group gid to p, which keeps the config version gid's
// stream follows.
func (c cursor) advance(gid uint64, p position) {
	p.since = c[gid].since
	c[gid] = p
}

// String is the cursor as an SSE id; a group whose position is not
// known yet (its stream has not sent its first heartbeat) is left out.
func (c cursor) String() string {
	gids := make([]uint64, 0, len(c))
	for g, p := range c {
		if p.index > 0 {
			gids = append(gids, g)
		}
	}
	slices.Sort(gids)
	var b strings.Builder
	for i, g := range gids {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(strconv.FormatUint(g, 10) + "=" + c[g].String())
		if c[g].since > 0 {
			b.WriteString("@" + strconv.FormatUint(c[g].since, 10))
		}
	}
	return b.String()
}

// parseCursor reads a cursor String wrote: each group once, at an index
// >= 1 (String leaves out a group with none: a group given at index 0
// would silently start from now on), after a position, or after every
// event up to an index that is not the last possible one; and, when the
// cursor has one (a listing's indexes written by hand and an older
// router's cursors have none), the config version >= 1 whose group of
// that id the position is in.
func parseCursor(s string) (cursor, error) {
	c := cursor{}
	bad := bad("Last-Event-ID of a watch across groups is a cursor <gid>=<index>[.<pos>][@<config>],... with each group once and indexes from 1; got %q", s)
	for part := range strings.SplitSeq(strings.TrimSpace(s), ",") {
		g, p, ok := strings.Cut(part, "=")
		if !ok {
			return nil, bad
		}
		p, v, at := strings.Cut(p, "@")
		since := uint64(0)
		if at {
			n, err := strconv.ParseUint(v, 10, 64)
			if err != nil || n == 0 {
				return nil, bad
			}
			since = n
		}
		gid, err := strconv.ParseUint(g, 10, 64)
		if _, dup := c[gid]; err != nil || gid == 0 || dup {
			return nil, bad
		}
		i, ps, dotted := strings.Cut(p, ".")
		index, err := strconv.ParseUint(i, 10, 64)
		if err != nil || index == 0 || (!dotted && index == math.MaxUint64) {
			return nil, bad
		}
		pos := int64(-1)
		if dotted {
			n, err := strconv.ParseUint(ps, 10, 32)
			if err != nil {
				return nil, bad
			}
			pos = int64(n)
		}
		c[gid] = position{index: index, pos: pos, since: since}
	}
	return c, nil
}

// groupEvent is an event of one group's stream; gen tells a stream
// started again for a group (one that left and joined anew) from the one
// before.
type groupEvent struct {
	gid uint64
	gen int
	ev  client.WatchEvent
}

// hold is a group's stream held after a bucket_in until the old owner's
// stream has delivered its bucket_out (or two of its heartbeats).
type hold struct {
	bucket  int
	version uint64   // of the bucket_in's config; 0 when it named none
	at      position // the bucket_in's, where the held group's cursor goes on release
	from    uint64   // the old owner
	beats   int      // the old owner's heartbeats since
	out     bool     // the old owner's bucket_out of bucket came
	queue   []client.WatchEvent
}

// mergeWatch watches opts.Prefix on every group and merges the streams,
// from the positions of cur. When resumed (a cursor was given), a group
// the cursor does not name is watched from its first index: it joined
// after the cursor's stream last saw it, or that stream had not yet
// delivered any of its events (it held them behind a bucket move), and
// starting it from now would skip them.
func (h *handler) mergeWatch(w http.ResponseWriter, r *http.Request, opts client.WatchOptions, cur cursor, resumed bool) error {
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	lg := h.cfg.Logger.With(zap.String("watch-remote", r.RemoteAddr))
	merged := make(chan groupEvent)
	// watching: the groups whose streams were started; left: those whose
	// group_left came (every event they will ever have was handled, and
	// their streams were ended), with the config version it named.
	watching, left := map[uint64]bool{}, map[uint64]uint64{}
	finished := func(gid uint64) bool { _, ok := left[gid]; return ok }
	cancels, gens := map[uint64]context.CancelFunc{}, map[uint64]int{}
	// leftServers are the members, from an older config, of the groups
	// the cursor names that no config lists any more.
	var leftServers map[uint64]listing
	// start starts group gid's stream from pos, or with fromFirst from
	// its first index, at servers (nil: those of the client's config, or
	// leftServers').
	start := func(gid uint64, pos position, fromFirst bool, servers ...string) error {
		o := opts
		o.Group, o.Markers, o.Servers = gid, true, leftServers[gid].servers
		if len(servers) > 0 {
			o.Servers = servers
		}
		switch {
		case pos.index > 0:
			o.LastEventID = pos.String()
		case fromFirst:
			o.FromIndex = 1
		}
		gctx, gcancel := context.WithCancel(ctx)
		ch, err := h.c.Watch(gctx, o)
		if err != nil {
			gcancel()
			return err
		}
		watching[gid], cancels[gid] = true, gcancel
		delete(left, gid)
		gens[gid]++
		gen := gens[gid]
		go func() {
			for ev := range ch {
				select {
				case merged <- groupEvent{gid, gen, ev}:
				case <-gctx.Done():
					return
				}
			}
		}()
		return nil
	}
	cfg, err := h.config(ctx)
	if err != nil {
		return err
	}
	gids := groupsOf(cfg)
	if resumed {
		if cfg, gids, leftServers, err = h.resumeGroups(ctx, cfg, cur); err != nil {
			return err
		}
	}
	for _, gid := range gids {
		p, named := cur[gid]
		if err := start(gid, p, resumed && !named); err != nil {
			if _, gone := leftServers[gid]; gone {
				lg.Info("watch: resuming a group that left", zap.Uint64("group", gid), zap.Error(err))
				// The config that no longer lists it: resumeGroups
				// refreshed the client's, which cfg may predate.
				latest, _ := h.c.CachedConfig()
				return leftGroupGone(gid, cur[gid], max(latest.Version, cfg.Version))
			}
			// A group a cached config lists may have left since, and
			// stopped: it has no events for this watch.
			if fresh, ferr := h.c.Refresh(ctx, 0); named || ferr != nil || slices.Contains(groupsOf(fresh), gid) {
				return err
			}
			continue
		}
		if !named {
			p = position{}
		}
		if p.since == 0 {
			// The config whose members the stream was started at.
			p.since = cfg.Version
			if l, gone := leftServers[gid]; gone {
				p.since = l.version
			}
		}
		cur[gid] = p
	}
	s := startSSE(w)
	tick := time.NewTicker(watchProgressInterval)
	defer tick.Stop()
	holds := map[uint64]*hold{} // by the group held
	// out[b] has the groups whose bucket_out of b came, each with the
	// latest version one named (0: a marker that named none).
	out := map[int]map[uint64]uint64{}
	// owner is each bucket's group as the watch follows it from
	// version-less markers.
	owner := slices.Clone(cfg.Buckets)
	// ownerAt is bucket b's owner in config v, unless that config
	// cannot be read (configAt).
	ownerAt := func(v uint64, b int) (uint64, bool) {
		c, err := h.configAt(ctx, v)
		if err != nil {
			h.cfg.Logger.Warn("watch: reading a bucket's owner before a move", zap.Uint64("config", v), zap.Error(err))
			return 0, false
		}
		if b >= len(c.Buckets) {
			return 0, false
		}
		return c.Buckets[b], true
	}
	deliver := func(gid uint64, ev client.WatchEvent) {
		switch ev.Type {
		case client.EventProgress:
			if p := cur[gid]; ev.KV.ModIndex > p.index || p.pos >= 0 && ev.KV.ModIndex == p.index {
				cur.advance(gid, position{index: ev.KV.ModIndex, pos: -1})
			}
			return
		case client.EventBucketIn, client.EventBucketOut:
			cur.advance(gid, positionOf(ev))
			return
		case client.EventGroupLeft:
			// The group's last event: nothing of it is left to wait
			// for, and the cursor need not name it any more; a
			// heartbeat takes it out of the client's resume point at
			// once.
			left[gid] = ev.Version
			lg.Debug("watch: a group left", zap.Uint64("group", gid), zap.Uint64("config", ev.Version))
			cancels[gid]()
			delete(cur, gid)
			if id := cur.String(); id != "" {
				s.buf.WriteString("id: " + id + "\n: progress\n\n")
			}
			return
		}
		cur.advance(gid, positionOf(ev))
		s.event(cur.String(), ev)
	}
	// applied[g] is the latest config group g's delivered events show it
	// applied in full: a bucket_in pulled at version v comes after the
	// group applied config v (and so after its bucket_outs of v), and any
	// marker of v after it applied config v-1.
	applied := map[uint64]uint64{}
	// passed says that group g's delivered events passed its bucket_out
	// of b at version v or later.
	passed := func(g uint64, b int, v uint64) bool {
		at, ok := out[b][g]
		return ok && (at == 0 || at >= v) || v > 0 && applied[g] >= v
	}
	// failed is a group stream's error, once delivered in its order.
	var failed error
	// handle delivers ev of group gid, or queues it while gid is held,
	// and follows the buckets' owners.
	handle := func(gid uint64, ev client.WatchEvent) {
		if finished(gid) || failed != nil {
			// After its group_left: heartbeats, the stream's end. Once
			// the watch failed nothing more is delivered: no id may
			// name a place past what the failure left undelivered.
			return
		}
		if ho, ok := holds[gid]; ok {
			ho.queue = append(ho.queue, ev)
			return
		}
		if ev.Err != nil {
			if failed == nil {
				failed = ev.Err // in its order: after a group_left it is of no matter
			}
			return
		}
		// Where gid's stream was before ev: a bucket_in that holds gid
		// leaves the cursor there (below), so that a watch resumed from
		// an id written while gid is held meets the bucket_in again and
		// holds it again.
		before, hadBefore := cur[gid]
		putBack := func() {
			if hadBefore {
				cur[gid] = before
			} else {
				delete(cur, gid)
			}
		}
		deliver(gid, ev)
		if ev.Type == client.EventProgress && ev.SaysConfig {
			// The member says which config it had applied as of the
			// heartbeat (0: it cannot tell): its bucket_outs of it, and
			// of every config before, were delivered.
			applied[gid] = max(applied[gid], ev.Version)
		}
		for _, ho := range holds {
			if ho.from != gid || ho.version == 0 {
				continue // a version-less hold counts what arrives (below)
			}
			switch {
			case ev.Type == client.EventProgress && !ev.SaysConfig:
				// A member that does not say its config (an older
				// binary; members say it on every heartbeat since they
				// can): two heartbeats after the bucket_in, as before.
				// One that says it is judged by that alone (see
				// applied), so that the heartbeats of a member that
				// lags, or cannot tell, do not release the hold early.
				ho.beats++
			case ev.Type == client.EventBucketOut && ev.Bucket == ho.bucket && (ev.Version == 0 || ev.Version >= ho.version):
				ho.out = true
			}
		}
		if (ev.Type == client.EventBucketIn || ev.Type == client.EventBucketOut) && ev.Version > 0 {
			applied[gid] = max(applied[gid], ev.Version-1)
		}
		b := ev.Bucket
		if b < 0 || b >= len(owner) {
			return
		}
		switch ev.Type {
		case client.EventBucketOut:
			if out[b] == nil {
				out[b] = map[uint64]uint64{}
			}
			out[b][gid] = max(out[b][gid], ev.Version)
		case client.EventBucketIn:
			v := ev.Version
			old, known := uint64(0), v == 1 // config 0 has no owners
			if v > 1 {
				old, known = ownerAt(v-1, b)
			}
			if known && old != 0 {
				applied[gid] = max(applied[gid], v) // pulled: config v applied
			}
			if known && old != 0 && old != gid && !watching[old] && !finished(old) {
				// The old owner joined since the last look at the
				// config (every watchProgressInterval): its events
				// before the move, from its first index, come first.
				// If the latest config no longer lists it, it left: a
				// watch that was not resumed never saw it, and asks the
				// members of the config it had the bucket in; a resumed
				// one may have passed its group_left (a cursor drops a
				// group that left) or never seen its events, cannot
				// tell which, and ends as compacted (list again) rather
				// than skip or repeat them.
				latest, err := h.c.Refresh(ctx, 0)
				switch {
				case err == nil && latest.Groups[old] == nil && !resumed:
					// This watch never saw the group: its events are
					// at the members of the config it had the bucket
					// in, if they still run.
					var c shardmap.Config
					if c, err = h.configAt(ctx, v-1); err == nil {
						err = start(old, position{}, true, c.Groups[old]...)
					}
				case err == nil && latest.Groups[old] == nil:
					lg.Info("watch: a bucket moved from a group that left, whose events this watch cannot place; ending the watch",
						zap.Uint64("group", old), zap.Int("bucket", b), zap.Uint64("config", v))
					err = &answer{http.StatusGone, client.CodeCompacted, fmt.Sprintf(
						"router: bucket %d moved at config %d from group %d, which has left the deployment; its events before the move cannot be placed in this stream: list again and watch from the listing's cursor", b, v, old)}
				case err == nil:
					err = start(old, position{}, true)
				}
				if err != nil {
					// Its events of the bucket before the move cannot be
					// given in their place: the watch ends (a resume
					// meets this bucket_in again).
					lg.Info("watch: cannot watch the group a bucket moved from; ending the watch",
						zap.Uint64("group", old), zap.Int("bucket", b), zap.Error(err))
					if failed == nil {
						failed = err
					}
					putBack() // not past the bucket_in: nothing after it was delivered
					return
				}
				cur[old] = position{since: v - 1}
				lg.Debug("watch: watching a group a bucket moved from", zap.Uint64("group", old), zap.Int("bucket", b), zap.Uint64("config", v))
			}
			if !known {
				old, v = owner[b], 0
			}
			gave := passed(old, b, v)
			if !known {
				delete(out, b) // version-less: a bucket_out since b's last bucket_in
			}
			if old != 0 && old != gid && watching[old] && !finished(old) && !gave {
				holds[gid] = &hold{bucket: b, version: v, from: old, at: positionOf(ev)}
				putBack()
				lg.Debug("watch: holding a group's events behind a bucket move", zap.Uint64("group", gid), zap.Int("bucket", b),
					zap.Uint64("config", v), zap.Uint64("old-owner", old))
			}
			owner[b] = gid
		}
	}
	// settle ends the holds whose old owner's stream delivered its
	// bucket_out, or passed it (a later config's marker), or two
	// heartbeats, or left (it has no event to come), and hands on what
	// they held; handling a queue may end more.
	settle := func() {
		var released []uint64
		for {
			for held, ho := range holds {
				if ho.out || ho.beats >= 2 || finished(ho.from) || passed(ho.from, ho.bucket, ho.version) {
					released = append(released, held)
				}
			}
			if len(released) == 0 {
				return
			}
			slices.Sort(released)
			for _, held := range released {
				ho := holds[held]
				lg.Debug("watch: a held group goes on", zap.Uint64("group", held), zap.Uint64("old-owner", ho.from), zap.Int("queued", len(ho.queue)))
				delete(holds, held)
				cur.advance(held, ho.at) // past the bucket_in, now delivered in full
				for _, q := range ho.queue {
					handle(held, q)
				}
			}
			released = released[:0]
		}
	}
	// Every group's stream begins with a heartbeat that says where it
	// starts; until each has, the cursor could not name it, so the events
	// wait (at most firstBeatWait), heartbeats included: handled ahead of
	// its group's waiting events, a heartbeat would move the cursor past
	// them, and the id of an event sent before them would skip them.
	var early []groupEvent
	beat := map[uint64]bool{}
	known := func() bool {
		for gid := range watching {
			if cur[gid].index == 0 && !beat[gid] && !finished(gid) {
				return false
			}
		}
		return true
	}
	wait := time.NewTimer(firstBeatWait)
	defer wait.Stop()
	for !known() {
		select {
		case ge := <-merged:
			if ge.ev.Err != nil {
				s.fail(ge.ev.Err)
				s.flush()
				return nil
			}
			if ge.ev.Type == client.EventProgress {
				beat[ge.gid] = true
			}
			early = append(early, ge)
			continue
		case <-wait.C:
		case <-ctx.Done():
			return nil
		}
		break
	}
	for _, ge := range early {
		handle(ge.gid, ge.ev)
	}
	settle()
	if failed != nil {
		lg.Info("watch: a group's stream failed; ending the watch", zap.Error(failed))
		s.fail(failed)
		s.flush()
		return nil
	}
	if s.flush() != nil {
		return nil
	}
	for {
		select {
		case ge := <-merged:
			gid, ev := ge.gid, ge.ev
			if ge.gen != gens[gid] || finished(gid) {
				continue // a stream ended already: the group left
			}
			// A version-less hold (from members older than the
			// markers' versions) counts the old owner's markers and
			// heartbeats as they arrive, held or not.
			for _, ho := range holds {
				if ho.from != gid || ho.version != 0 {
					continue
				}
				switch ev.Type {
				case client.EventProgress:
					ho.beats++
				case client.EventBucketOut:
					ho.out = ho.out || ev.Bucket == ho.bucket
				}
			}
			handle(gid, ev)
			settle()
			if failed != nil {
				lg.Info("watch: a group's stream failed; ending the watch", zap.Error(failed))
				s.fail(failed)
				s.flush()
				return nil
			}
		case <-tick.C:
			// New groups are watched from their first index (a group
			// that left and joined again, in a config after the one it
			// left in, starts a new log).
			if cfg, err := h.config(ctx); err == nil {
				for _, gid := range groupsOf(cfg) {
					if v, ok := left[gid]; !watching[gid] || ok && v > 0 && cfg.Version > v {
						switch err := start(gid, position{}, true); {
						case err == nil:
							cur[gid] = position{since: cfg.Version}
						case errors.Is(err, client.ErrCompacted):
							// Its first events are gone (its members
							// restored snapshots since it joined): the
							// watch cannot give them, and says so as a
							// resumed one would.
							lg.Info("watch: a group that joined has no events from its first index; ending the watch", zap.Uint64("group", gid), zap.Error(err))
							s.fail(err)
							s.flush()
							return nil
						}
					}
				}
			}
			s.buf.WriteString("id: " + cur.String() + "\n: progress\n\n")
		case <-ctx.Done():
			return nil
		}
		if s.flush() != nil {
			return nil
		}
	}
}

// listing is a group's members as a config lists them.
type listing struct {
	servers []string
	version uint64 // of the config
}

// resumeGroups lists the groups a watch resumed from cur watches: those
// cfg gives buckets to, and those cur names that cfg still lists (one
// whose buckets all moved away may still owe the cursor's stream its
// last events and markers), and those cur names that have left (no
// config lists them, even after a refresh). The stream of one that left
// had not come to its group_left marker, so some of its events may not
// have been delivered: the watch resumes it at the members the last
// config that listed it names (left), which still serve them until they
// are stopped. When that config cannot be found, the answer is 410; when
// an older config cannot be read, that error. So is a group that the
// cursor names at a config version and that left and joined again since
// (sameGroup). latest is the config it went by: cfg, or a newer one.
func (h *handler) resumeGroups(ctx context.Context, cfg shardmap.Config, cur cursor) (latest shardmap.Config, gids []uint64, left map[uint64]listing, err error) {
	// The cached config may be older than the one the cursor's stream
	// followed (from another router, or before this one restarted).
	fresh, err := h.c.Refresh(ctx, 0)
	if err == nil {
		cfg = fresh
	}
	read := map[uint64]shardmap.Config{cfg.Version: cfg}
	for _, gid := range slices.Sorted(maps.Keys(cur)) {
		if serr := h.sameGroup(ctx, gid, cur[gid], cfg, read); serr != nil {
			return cfg, nil, nil, serr
		}
	}
	gids = groupsOf(cfg)
	for _, gid := range slices.Sorted(maps.Keys(cur)) {
		if slices.Contains(gids, gid) {
			continue
		}
		if _, ok := cfg.Groups[gid]; !ok {
			if err != nil {
				return cfg, nil, nil, err // it may be in the config that could not be read
			}
			l, serr := h.lastServers(ctx, cfg.Version, gid)
			if serr != nil {
				return cfg, nil, nil, serr // an older config could not be read: try again later
			}
			if l.servers == nil {
				return cfg, nil, nil, leftGroupGone(gid, cur[gid], cfg.Version)
			}
			if left == nil {
				left = map[uint64]listing{}
			}
			left[gid] = l
		}
		gids = append(gids, gid)
	}
	slices.Sort(gids)
	return cfg, gids, left, nil
}

// maxResumeScan bounds how many configs sameGroup reads.
const maxResumeScan = 1024

// sameGroup checks that group gid, which a resumed watch's cursor names
// at p, is still the group config p.since listed, as far as latest goes:
// that no config after p.since dropped gid and a later one listed it
// again. A new group under the id of one that left starts from empty
// data dirs, so the cursor's index may name a place in another log, and
// resuming there would skip that log's events before it; the events of
// the group that left which the cursor's stream had not delivered are
// no longer to be had where the config lists gid. Then the answer is
// 410 (also for the same group joined again while it ran, which the
// configs cannot tell apart). read holds the configs read so far (by
// version) and gains the ones it reads.
func (h *handler) sameGroup(ctx context.Context, gid uint64, p position, latest shardmap.Config, read map[uint64]shardmap.Config) error {
	switch {
	case p.since == 0:
		return nil // a listing's indexes written by hand, or an older router's cursor
	case p.since > latest.Version:
		return &answer{http.StatusServiceUnavailable, client.CodeUnavailable, fmt.Sprintf(
			"router: Last-Event-ID names group %d at config %d, and the latest config this router could read is %d: try again",
			gid, p.since, latest.Version)}
	case latest.Version-p.since > maxResumeScan:
		return &answer{http.StatusGone, client.CodeCompacted, fmt.Sprintf(
			"router: Last-Event-ID names group %d at config %d, more than %d configs before the latest (%d): "+
				"list again and watch from the listing's cursor", gid, p.since, maxResumeScan, latest.Version)}
	}
	leftAt := uint64(0)
	for v := p.since + 1; v <= latest.Version; v++ {
		c, ok := read[v]
		if !ok {
			var err error
			if c, err = h.configAt(ctx, v); err != nil {
				return err
			}
			read[v] = c
		}
		_, listed := c.Groups[gid]
		switch {
		case !listed && leftAt == 0:
			leftAt = v
		case listed && leftAt > 0:
			return &answer{http.StatusGone, client.CodeCompacted, fmt.Sprintf(
				"router: group %d, which Last-Event-ID names at %s (config %d), left the deployment (config %d) before that stream had all its events, "+
					"and group %d joined again in config %d (a new group under that id has another log): list again and watch from the listing's cursor",
				gid, p, p.since, leftAt, gid, v)}
		}
	}
	return nil
}

// leftSearch bounds how many configs before the latest lastServers reads
// to find a group that left.
const leftSearch = 64

// lastServers returns the members of group gid in the latest config
// before version v that lists it, or no servers when none of the
// leftSearch before v does; or the error of a config it could not read
// (configAt).
func (h *handler) lastServers(ctx context.Context, v, gid uint64) (listing, error) {
	for back := uint64(1); back <= leftSearch && back < v; back++ {
		c, err := h.configAt(ctx, v-back)
		if err != nil {
			h.cfg.Logger.Warn("watch: reading the config a group left from", zap.Uint64("config", v-back), zap.Error(err))
			return listing{}, err
		}
		if servers, ok := c.Groups[gid]; ok && len(servers) > 0 {
			return listing{servers, c.Version}, nil
		}
	}
	return listing{}, nil
}

// configAt reads config version v, within configReadWait: the router's
// client answers a version it saw lately (its last 64) from memory, and
// any other with a stale read (Client.Query).
func (h *handler) configAt(ctx context.Context, v uint64) (shardmap.Config, error) {
	rctx, cancel := context.WithTimeout(ctx, configReadWait)
	defer cancel()
	c, err := h.c.Query(rctx, int64(v))
	if err == nil && c.Version != v {
		err = fmt.Errorf("config %d asked for, config %d read: %w", v, c.Version, client.ErrUnavailable)
	}
	return c, err
}

// leftGroupGone is the answer to a cursor that names group gid at pos
// after the group left (config v lists it no more) when its members can
// no longer serve the rest of its events.
func leftGroupGone(gid uint64, pos position, v uint64) error {
	return &answer{http.StatusGone, client.CodeCompacted, fmt.Sprintf(
		"router: group %d, which Last-Event-ID names at %s, left the deployment (config %d) before that stream had all its events, "+
			"and its members no longer serve them: list again and watch from the listing's cursor", gid, pos, v)}
}

// config is the Client's config, fetched if it has none.
func (h *handler) config(ctx context.Context) (shardmap.Config, error) {
	if cfg, ok := h.c.CachedConfig(); ok {
		return cfg, nil
	}
	return h.c.Refresh(ctx, 0)
}

// groupsOf lists the groups cfg gives buckets to.
func groupsOf(cfg shardmap.Config) []uint64 {
	var gids []uint64
	for _, g := range cfg.Buckets {
		if g != 0 && !slices.Contains(gids, g) {
			gids = append(gids, g)
		}
	}
	slices.Sort(gids)
	return gids
}
