package kvstore

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
)

// EventType says what an Event is.
type EventType uint8

// The types of events.
const (
	// EventPut: a key was written.
	EventPut EventType = iota + 1
	// EventDelete: a key was deleted by a client.
	EventDelete
	// EventExpire: a key was deleted because its TTL ran out.
	EventExpire
	// EventBucketOut (shard group members): this member applied a config
	// that took Bucket away from its group; later events of the bucket's
	// keys come from its new owner.
	EventBucketOut
	// EventBucketIn (shard group members): this member began serving
	// Bucket (it installed it, or a config gave it a bucket nobody had);
	// events of its keys come from here from now on.
	EventBucketIn
	// EventGroupLeft (shard group members): this member applied a config
	// that no longer lists its group (Version is that config's). The
	// group serves no key from here on: a watch of it has every event
	// the group will ever have once it has this one.
	EventGroupLeft
)

func (t EventType) String() string {
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
	return fmt.Sprintf("event(%d)", uint8(t))
}

// Event is one change of the state, as the apply loop made it.
type Event struct {
	Type EventType
	// Key is the key changed; "" for a bucket marker.
	Key string
	// Value is a put's value, shared with the state: do not modify it.
	Value []byte
	// CreateIndex is a put's key's CreateIndex (0 for a delete or an
	// expiry, as in etcd); ModIndex is the raft index of the event.
	CreateIndex, ModIndex uint64
	// Pos is the event's position among the events of its raft index
	// (0, 1, ...): (ModIndex, Pos) is unique and ordered on every member.
	Pos uint32
	// KeyMod is a put's key's version after it, what a read answers as
	// its ModIndex (ETag): ModIndex, unless the key's bucket came from a
	// group whose versions had gone past this group's raft index; 0 for
	// other events and for a write that keeps no version.
	KeyMod uint64
	// Bucket is the key's bucket (the bucket moved, for a bucket
	// marker; -1 for EventGroupLeft).
	Bucket int
	// Version is a marker's config version: the config that took the
	// bucket away (EventBucketOut) or gave it (EventBucketIn), or the
	// first one without the group (EventGroupLeft).
	Version uint64
}

func (e *Event) size() int { return len(e.Key) + len(e.Value) + 64 }

// WatchOptions chooses the events a Watch delivers.
type WatchOptions struct {
	// Key watches one key; or, when Key is "", Prefix watches every key
	// with that prefix (every key when it is "" too).
	Key    string
	Prefix string
	// FromIndex is the first raft index whose events are delivered
	// (inclusive); 0 means from now on (the events after the index this
	// member has applied).
	FromIndex uint64
	// AfterPos, with FromIndex, skips the events of FromIndex whose Pos is
	// at most AfterPos (a resume after event (FromIndex, AfterPos)); -1
	// skips none.
	AfterPos int64
}

// watchBuffer is the capacity of a Watcher's Events channel. The window
// (Config.WatchWindow) is the rest of its buffer: a watcher that falls
// out of it ends with ErrWatcherTooSlow.
const watchBuffer = 128

// Watcher delivers the events a Watch chose, in (ModIndex, Pos) order,
// with no gap and no duplicate, until its context ends, the store stops,
// or it can no longer keep that promise (Err says which).
type Watcher struct {
	s        *Store
	ctx      context.Context
	opts     WatchOptions
	bucket   int // of opts.Key, when set
	events   chan Event
	done     chan struct{}
	err      error
	progress atomic.Uint64

	// next is the sequence number of the next window event to look at;
	// need is the first raft index not all of whose events were looked
	// at; epoch is the window's epoch next belongs to.
	next, need, epoch uint64
}

// Events delivers the events; it is closed after Done.
func (w *Watcher) Events() <-chan Event { return w.events }

// Done is closed when the watcher ends.
func (w *Watcher) Done() <-chan struct{} { return w.done }

// Err says why the watcher ended, once Done is closed: ErrWatcherTooSlow,
// a *CompactedError (a snapshot from the leader jumped past events it had
// still to deliver), ErrStopped, or its context's error.
func (w *Watcher) Err() error {
	select {
	case <-w.done:
		return w.err
	default:
		return nil
	}
}

// Progress is the raft index the watcher has caught up to: every event
// it chose up to that index has been delivered to Events.
func (w *Watcher) Progress() uint64 { return w.progress.Load() }

// window is the member's recent events, oldest first, bounded by count
// and bytes. It lives beside the state (not in snapshots): it starts
// empty at a restored index and fills as entries apply.
type window struct {
	mu sync.Mutex
	// ring holds the n events of the window from ring[start] on,
	// wrapping around; it grows up to Config.WatchWindow events.
	ring     []Event
	start, n int
	// firstSeq is the sequence number of the oldest event; sequence
	// numbers go on across epochs.
	firstSeq uint64
	bytes    int
	// from is the oldest FromIndex served: every event of an index at or
	// past it is in the window.
	from uint64
	// last is the applied index the window covers: every event up to it
	// is in the window, or was.
	last uint64
	// epoch counts restarts at a snapshot; resetIndex is the index of the
	// latest.
	epoch, resetIndex uint64
	// changed is closed and replaced when events are added, last grows or
	// the window restarts, if someone waits (waiters).
	changed chan struct{}
	waiters int
}

// emitLocked records e as the next event of the raft index being applied.
// s.mu must be held by the apply loop.
func (s *Store) emitLocked(e Event) {
	e.ModIndex = s.ap.index
	e.Pos = uint32(len(s.ap.events))
	s.ap.events = append(s.ap.events, e)
}

// publishEvents adds the events of index (s.ap.events) to the window and
// raises its covered index to index.
func (s *Store) publishEvents(index uint64) {
	w := &s.win
	w.mu.Lock()
	for _, e := range s.ap.events {
		w.push(e, s.cfg.WatchWindow)
	}
	for w.n > 0 && w.bytes > s.cfg.WatchWindowBytes {
		w.evictOldest()
	}
	w.last = max(w.last, index)
	w.notifyLocked()
	w.mu.Unlock()
	clear(s.ap.events)
	s.ap.events = s.ap.events[:0]
}

// at is the window's i-th oldest event.
func (w *window) at(i int) *Event { return &w.ring[(w.start+i)%len(w.ring)] }

// push adds e as the newest event, evicting the oldest when the window
// holds limit events.
func (w *window) push(e Event, limit int) {
	if w.n == len(w.ring) {
		if len(w.ring) < limit {
			ring := make([]Event, min(max(64, 2*len(w.ring)), limit))
			for i := range w.n {
				ring[i] = *w.at(i)
			}
			w.ring, w.start = ring, 0
		} else {
			w.evictOldest()
		}
	}
	*w.at(w.n) = e
	w.n++
	w.bytes += e.size()
}

// evictOldest drops the oldest event: the window no longer serves its
// index.
func (w *window) evictOldest() {
	e := w.at(0)
	w.bytes -= e.size()
	w.from = max(w.from, e.ModIndex+1)
	*e = Event{}
	w.start = (w.start + 1) % len(w.ring)
	w.n--
	w.firstSeq++
}

// resetWindow restarts the window, empty, at index (a restored snapshot):
// watchers that still had events up to it to deliver end with
// ErrCompacted.
func (s *Store) resetWindow(index uint64) {
	w := &s.win
	w.mu.Lock()
	w.firstSeq += uint64(w.n)
	clear(w.ring)
	w.start, w.n, w.bytes = 0, 0, 0
	w.from, w.last = index+1, index
	w.epoch++
	w.resetIndex = index
	w.notifyLocked()
	w.mu.Unlock()
}

func (w *window) notifyLocked() {
	if w.waiters > 0 {
		close(w.changed)
		w.changed = make(chan struct{})
	}
}

// endSeq is the sequence number after the window's last event.
func (w *window) endSeq() uint64 { return w.firstSeq + uint64(w.n) }

// Watch delivers, from FromIndex on, the events of the keys opts chooses
// that this member applies, in order, from any member (followers
// included). A FromIndex older than this member's window is refused with
// a *CompactedError naming the oldest index it can serve from. The
// watcher lives until ctx ends or the store stops.
func (s *Store) Watch(ctx context.Context, opts WatchOptions) (*Watcher, error) {
	if s.mode == modeConfig {
		return nil, ErrNoKeys
	}
	switch {
	case opts.Key != "" && opts.Prefix != "":
		return nil, detailf(ErrBadWatch, "a watch is of a key or of a prefix, not both")
	case opts.AfterPos < -1:
		return nil, detailf(ErrBadWatch, "after position %d is below -1", opts.AfterPos)
	}
	w := &Watcher{s: s, ctx: ctx, opts: opts, events: make(chan Event, watchBuffer), done: make(chan struct{})}
	if opts.Key != "" {
		w.bucket = s.bucketOf(opts.Key)
	}
	win := &s.win
	win.mu.Lock()
	w.epoch = win.epoch
	switch {
	case opts.FromIndex == 0:
		w.next, w.need = win.endSeq(), win.last+1
	case opts.FromIndex < win.from:
		oldest := win.from
		win.mu.Unlock()
		return nil, &CompactedError{Oldest: oldest}
	default:
		i := sort.Search(win.n, func(i int) bool { return win.at(i).ModIndex >= opts.FromIndex })
		w.next, w.need = win.firstSeq+uint64(i), opts.FromIndex
	}
	w.progress.Store(min(w.need-1, win.last))
	win.waiters++
	win.mu.Unlock()
	go w.run()
	return w, nil
}

// matches says whether the watcher delivers e.
func (w *Watcher) matches(e *Event) bool {
	if e.ModIndex == w.opts.FromIndex && int64(e.Pos) <= w.opts.AfterPos {
		return false
	}
	switch e.Type {
	case EventBucketOut, EventBucketIn:
		return w.opts.Key == "" || e.Bucket == w.bucket
	case EventGroupLeft:
		return w.opts.Key == ""
	}
	if w.opts.Key != "" {
		return e.Key == w.opts.Key
	}
	return strings.HasPrefix(e.Key, w.opts.Prefix)
}

func (w *Watcher) run() {
	win := &w.s.win
	defer func() {
		win.mu.Lock()
		win.waiters--
		win.mu.Unlock()
		close(w.done)
		close(w.events)
	}()
	var batch []Event
	for {
		win.mu.Lock()
		if win.epoch != w.epoch {
			if w.need <= win.resetIndex {
				w.err = &CompactedError{Oldest: win.from}
				win.mu.Unlock()
				return
			}
			w.epoch, w.next = win.epoch, max(w.next, win.firstSeq)
		}
		if w.next < win.firstSeq {
			win.mu.Unlock()
			w.err = ErrWatcherTooSlow
			return
		}
		batch = batch[:0]
		end := win.endSeq()
		for w.next < end && len(batch) < watchBuffer {
			e := win.at(int(w.next - win.firstSeq))
			w.next++
			if e.ModIndex < w.opts.FromIndex {
				continue // before FromIndex: the window restarted behind it
			}
			w.need = e.ModIndex // its index may have more events
			if w.matches(e) {
				batch = append(batch, *e)
			}
		}
		caughtUp := w.next == end
		last, ch := win.last, win.changed
		win.mu.Unlock()
		for _, e := range batch {
			select {
			case w.events <- e:
			case <-w.ctx.Done():
				w.err = w.ctx.Err()
				return
			case <-w.s.stopc:
				w.err = ErrStopped
				return
			case <-w.s.applyDone:
				w.err = ErrStopped
				return
			}
		}
		clear(batch)
		if !caughtUp {
			continue
		}
		if last+1 > w.need {
			w.need = last + 1
		}
		if p := min(w.need-1, last); p > w.progress.Load() {
			w.progress.Store(p)
		}
		select {
		case <-ch:
		case <-w.ctx.Done():
			w.err = w.ctx.Err()
			return
		case <-w.s.stopc:
			w.err = ErrStopped
			return
		case <-w.s.applyDone:
			w.err = ErrStopped
			return
		}
	}
}
