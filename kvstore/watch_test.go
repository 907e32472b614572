package kvstore

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/raftkv/raftkv/internal/testutil"
	"github.com/raftkv/raftkv/raftnode"
	"github.com/raftkv/raftkv/shardmap"
	"go.uber.org/zap"
)

// collect reads n events from w, failing after a deadline.
func collect(t *testing.T, w *Watcher, n int) []Event {
	t.Helper()
	var out []Event
	timeout := time.After(20 * time.Second)
	for len(out) < n {
		select {
		case e, ok := <-w.Events():
			if !ok {
				t.Fatalf("watcher ended after %d of %d events: %v", len(out), n, w.Err())
			}
			out = append(out, e)
		case <-timeout:
			t.Fatalf("got %d of %d events: %+v", len(out), n, out)
		}
	}
	return out
}

// ended waits for w to end and returns its error.
func ended(t *testing.T, w *Watcher) error {
	t.Helper()
	select {
	case <-w.Done():
		return w.Err()
	case <-time.After(20 * time.Second):
		t.Fatal("watcher did not end")
		return nil
	}
}

// drain returns the events w delivers up to index: those it has once
// its progress reached index.
func drain(t *testing.T, w *Watcher, index uint64) []Event {
	t.Helper()
	testutil.WaitFor(t, 10*time.Second, fmt.Sprint("progress to ", index), func() error {
		if p := w.Progress(); p < index {
			return fmt.Errorf("progress %d", p)
		}
		return nil
	})
	var out []Event
	for {
		select {
		case e := <-w.Events():
			out = append(out, e)
		default:
			return out
		}
	}
}

// brief strips an event to what identifies it, for comparisons.
func brief(evs []Event) []string {
	var out []string
	for _, e := range evs {
		out = append(out, fmt.Sprintf("%d.%d %s %q=%q c%d b%d", e.ModIndex, e.Pos, e.Type, e.Key, e.Value, e.CreateIndex, e.Bucket))
	}
	return out
}

// TestWatchEvents: puts, deletes (of present keys only) and transactions
// give events in (ModIndex, Pos) order with the versions they applied at;
// a watch of a key or a prefix sees only its keys, a watch from an index
// sees the past events still in the window, and AfterPos resumes in the
// middle of an index.
func TestWatchEvents(t *testing.T) {
	s := newBareStore(t)
	ctx := t.Context()
	all, err := s.Watch(ctx, WatchOptions{AfterPos: -1})
	if err != nil {
		t.Fatal(err)
	}
	onlyA, err := s.Watch(ctx, WatchOptions{Key: "a", AfterPos: -1})
	if err != nil {
		t.Fatal(err)
	}
	applyOwn(t, s, 1, put("", 0, "a", "1", "b/1", "x"))
	applyOwn(t, s, 2, request{Ops: []Op{delOp("nope"), delOp("b/1"), putOp("a", "2")}})
	applyOwn(t, s, 3, request{Txn: &Txn{Compares: []Compare{cmpMod("a", Equal, 2)}, Success: []TxnOp{tput("b/2", "y"), tget("a"), tdel("a")}}})
	applyOwn(t, s, 4, request{Txn: &Txn{Compares: []Compare{cmpMod("a", Equal, 2)}, Success: []TxnOp{tput("never", "")}}}) // fails: no event
	s.setApplied(6)                                                                                                        // entries without events
	want := []string{
		`1.0 put "a"="1" c1 b0`,
		`1.1 put "b/1"="x" c1 b0`,
		`2.0 delete "b/1"="" c0 b0`,
		`2.1 put "a"="2" c1 b0`,
		`3.0 put "b/2"="y" c3 b0`,
		`3.1 delete "a"="" c0 b0`,
	}
	if got := brief(collect(t, all, 6)); !reflect.DeepEqual(got, want) {
		t.Fatalf("events:\n%q\nwant\n%q", got, want)
	}
	if got := brief(collect(t, onlyA, 3)); !reflect.DeepEqual(got, []string{want[0], want[3], want[5]}) {
		t.Fatalf("events of a: %q", got)
	}
	testutil.WaitFor(t, 10*time.Second, "progress to 6", func() error {
		if p := all.Progress(); p != 6 {
			return fmt.Errorf("progress %d", p)
		}
		return nil
	})
	for _, tt := range []struct {
		opts WatchOptions
		want []string
	}{
		{WatchOptions{FromIndex: 1, AfterPos: -1}, want},
		{WatchOptions{FromIndex: 2, AfterPos: 0}, want[3:]},
		{WatchOptions{FromIndex: 3, AfterPos: 1}, nil},
		{WatchOptions{Prefix: "b/", FromIndex: 1, AfterPos: -1}, []string{want[1], want[2], want[4]}},
	} {
		w, err := s.Watch(ctx, tt.opts)
		if err != nil {
			t.Fatal(err)
		}
		if got := drain(t, w, s.AppliedIndex()); !reflect.DeepEqual(brief(got), tt.want) {
			t.Fatalf("%+v:\n%q\nwant\n%q", tt.opts, brief(got), tt.want)
		}
	}
	for _, bad := range []WatchOptions{{Key: "a", Prefix: "a"}, {AfterPos: -2}} {
		if _, err := s.Watch(ctx, bad); !errors.Is(err, ErrBadWatch) || status(err) != 400 {
			t.Fatalf("%+v: %v", bad, err)
		}
	}
	cctx, cancel := context.WithCancel(ctx)
	w, err := s.Watch(cctx, WatchOptions{AfterPos: -1})
	if err != nil {
		t.Fatal(err)
	}
	cancel()
	if err := ended(t, w); err != context.Canceled {
		t.Fatalf("a canceled watcher ended with %v", err)
	}
}

// TestWatchWindow: the window keeps the last WatchWindow events; a watch
// from an index before it is refused with the oldest index it serves
// (410), one from there on is served; a watcher that does not keep up
// with the window ends with ErrWatcherTooSlow, having delivered events
// in order with no gap up to then.
func TestWatchWindow(t *testing.T) {
	s := bareStore(zap.NewNop(), Config{WatchWindow: 4})
	ctx := t.Context()
	slow, err := s.Watch(ctx, WatchOptions{AfterPos: -1})
	if err != nil {
		t.Fatal(err)
	}
	for i := uint64(1); i <= 10; i++ {
		applyOwn(t, s, i, put("", 0, fmt.Sprint("k", i), "v"))
	}
	_, err = s.Watch(ctx, WatchOptions{FromIndex: 6, AfterPos: -1})
	var ce *CompactedError
	if !errors.As(err, &ce) || ce.Oldest != 7 || !errors.Is(err, ErrCompacted) || status(err) != 410 {
		t.Fatalf("a watch from 6 of a window of 7-10: %v", err)
	}
	w, err := s.Watch(ctx, WatchOptions{FromIndex: 7, AfterPos: -1})
	if err != nil {
		t.Fatal(err)
	}
	if evs := collect(t, w, 4); evs[0].ModIndex != 7 || evs[3].ModIndex != 10 {
		t.Fatalf("from 7: %q", brief(evs))
	}
	// slow has read nothing: its channel holds watchBuffer events, and the
	// window moved on past the next.
	for i := uint64(11); i <= 2*watchBuffer+20; i++ {
		applyOwn(t, s, i, put("", 0, fmt.Sprint("k", i), "v"))
	}
	var got []uint64
	for e := range slow.Events() {
		got = append(got, e.ModIndex)
	}
	if err := ended(t, slow); err != ErrWatcherTooSlow {
		t.Fatalf("slow watcher ended with %v", err)
	}
	for i, idx := range got {
		if idx != uint64(i+1) {
			t.Fatalf("slow watcher's events %v: a gap at %d", got, i)
		}
	}
	// By bytes: 3 events of 101 bytes in a window of 300 bytes keep 2.
	s = bareStore(zap.NewNop(), Config{WatchWindowBytes: 300})
	for i := uint64(1); i <= 3; i++ {
		applyOwn(t, s, i, put("", 0, "k", string(make([]byte, 101-64-1))))
	}
	if _, err := s.Watch(ctx, WatchOptions{FromIndex: 1, AfterPos: -1}); !errors.As(err, &ce) || ce.Oldest != 2 {
		t.Fatalf("a window of 300 bytes: %v", err)
	}
}

// TestWatchRestartsAtSnapshot: a snapshot restored from the leader
// restarts the window at its index: a watcher that still had events up
// to that index to deliver ends with ErrCompacted, a watcher waiting for
// later indexes goes on, and a watch from before the snapshot is refused.
func TestWatchRestartsAtSnapshot(t *testing.T) {
	src := newBareStore(t)
	for i := uint64(1); i <= 50; i++ {
		applyOwn(t, src, i, put("", 0, fmt.Sprint("k", i%5), fmt.Sprint(i)))
	}
	s := newBareStore(t)
	ctx := t.Context()
	applyOwn(t, s, 1, put("", 0, "k1", "1"))
	behind, err := s.Watch(ctx, WatchOptions{AfterPos: -1})
	if err != nil {
		t.Fatal(err)
	}
	ahead, err := s.Watch(ctx, WatchOptions{FromIndex: 52, AfterPos: -1})
	if err != nil {
		t.Fatal(err)
	}
	restoreFrom(t, s, snapshotOf(t, src), 50)
	var ce *CompactedError
	if err := ended(t, behind); !errors.As(err, &ce) || ce.Oldest != 51 {
		t.Fatalf("a watcher behind the snapshot ended with %v", err)
	}
	if _, err := s.Watch(ctx, WatchOptions{FromIndex: 50, AfterPos: -1}); !errors.As(err, &ce) || ce.Oldest != 51 {
		t.Fatalf("a watch from before the snapshot: %v", err)
	}
	// Its progress is the index applied, not the one it waits for.
	for _, index := range []uint64{50, 51} {
		if index == 51 {
			applyOwn(t, s, 51, put("", 0, "k51", "x"))
		}
		testutil.WaitFor(t, 10*time.Second, fmt.Sprint("the watcher ahead to catch up to ", index), func() error {
			if p := ahead.Progress(); p != index {
				return fmt.Errorf("progress %d", p)
			}
			return nil
		})
	}
	applyOwn(t, s, 52, put("", 0, "k52", "y"))
	if got := brief(collect(t, ahead, 1)); !reflect.DeepEqual(got, []string{`52.0 put "k52"="y" c52 b0`}) {
		t.Fatalf("the watcher ahead got %q", got)
	}
	from, err := s.Watch(ctx, WatchOptions{FromIndex: 51, AfterPos: -1})
	if err != nil {
		t.Fatal(err)
	}
	if got := collect(t, from, 2); got[0].ModIndex != 51 || got[1].ModIndex != 52 {
		t.Fatalf("from 51: %q", brief(got))
	}
}

// TestWatchBucketMarkers: a shard group member's events carry their
// bucket; applying a config that takes a bucket away is marked
// (EventBucketOut), and so is installing one (EventBucketIn), which
// brings its keys without key events.
func TestWatchBucketMarkers(t *testing.T) {
	const n = 4
	s := bareStore(zap.NewNop(), Config{Buckets: n, Group: 1})
	g := map[uint64][]string{1: {"http://a"}, 2: {"http://b"}}
	c1 := shardmap.Config{Version: 1, Buckets: []uint64{1, 1, 2, 2}, Groups: g}
	c2 := shardmap.Config{Version: 2, Buckets: []uint64{1, 2, 1, 2}, Groups: g}
	ctx := t.Context()
	w, err := s.Watch(ctx, WatchOptions{AfterPos: -1})
	if err != nil {
		t.Fatal(err)
	}
	k1 := keysIn(1, n, 1, "k")[0]
	one, err := s.Watch(ctx, WatchOptions{Key: k1, AfterPos: -1})
	if err != nil {
		t.Fatal(err)
	}
	applyOwn(t, s, 1, request{Ctl: &control{Kind: ctlConfig, Config: marshalConfig(&c1)}})
	applyOwn(t, s, 2, put("", 0, k1, "v"))
	applyOwn(t, s, 3, request{Ctl: &control{Kind: ctlConfig, Config: marshalConfig(&c2)}})
	moved := keysIn(2, n, 2, "m")
	if r := applyOwn(t, s, 4, request{Ctl: &control{Kind: ctlInstall, Bucket: 2, Version: 2, Data: mustMarshal(t, bucketData(t, 2, 2, moved))}}); r.err != nil {
		t.Fatal(r.err)
	}
	applyOwn(t, s, 5, put("", 0, moved[0], "w"))
	want := []string{
		`1.0 bucket_in ""="" c0 b0`,
		`1.1 bucket_in ""="" c0 b1`,
		fmt.Sprintf(`2.0 put %q="v" c2 b1`, k1),
		`3.0 bucket_out ""="" c0 b1`,
		`4.0 bucket_in ""="" c0 b2`,
		fmt.Sprintf(`5.0 put %q="w" c0 b2`, moved[0]), // installed keys carry the old owner's versions (none here)
	}
	if got := brief(collect(t, w, len(want))); !reflect.DeepEqual(got, want) {
		t.Fatalf("events:\n%q\nwant\n%q", got, want)
	}
	if got := brief(collect(t, one, 3)); !reflect.DeepEqual(got, []string{want[1], want[2], want[3]}) {
		t.Fatalf("events of %q: %q", k1, got)
	}
}

// TestWatchGroupLeft: applying the first config without the member's
// group marks each bucket it gives away, then the leave itself
// (EventGroupLeft, after every other event of the index); each marker
// carries its config's version. A watch of one key gets no group_left.
func TestWatchGroupLeft(t *testing.T) {
	const n = 4
	s := bareStore(zap.NewNop(), Config{Buckets: n, Group: 1})
	g := map[uint64][]string{1: {"http://a"}, 2: {"http://b"}}
	c1 := shardmap.Config{Version: 1, Buckets: []uint64{1, 1, 2, 2}, Groups: g}
	c2 := shardmap.Config{Version: 2, Buckets: []uint64{2, 2, 2, 2}, Groups: map[uint64][]string{2: {"http://b"}}}
	ctx := t.Context()
	w, err := s.Watch(ctx, WatchOptions{AfterPos: -1})
	if err != nil {
		t.Fatal(err)
	}
	k := keysIn(0, n, 1, "k")[0]
	one, err := s.Watch(ctx, WatchOptions{Key: k, AfterPos: -1})
	if err != nil {
		t.Fatal(err)
	}
	applyOwn(t, s, 1, request{Ctl: &control{Kind: ctlConfig, Config: marshalConfig(&c1)}})
	applyOwn(t, s, 2, put("", 0, k, "v"))
	applyOwn(t, s, 3, request{Ctl: &control{Kind: ctlConfig, Config: marshalConfig(&c2)}})
	want := []string{
		`1.0 bucket_in ""="" c0 b0 v1`,
		`1.1 bucket_in ""="" c0 b1 v1`,
		fmt.Sprintf(`2.0 put %q="v" c2 b0 v0`, k),
		`3.0 bucket_out ""="" c0 b0 v2`,
		`3.1 bucket_out ""="" c0 b1 v2`,
		`3.2 group_left ""="" c0 b-1 v2`,
	}
	withVersion := func(evs []Event) []string {
		out := brief(evs)
		for i, e := range evs {
			out[i] += fmt.Sprintf(" v%d", e.Version)
		}
		return out
	}
	if got := withVersion(collect(t, w, len(want))); !reflect.DeepEqual(got, want) {
		t.Fatalf("events:\n%q\nwant\n%q", got, want)
	}
	if got := withVersion(collect(t, one, 3)); !reflect.DeepEqual(got, []string{want[0], want[2], want[3]}) {
		t.Fatalf("events of %q: %q", k, got)
	}
	// A later config (the group is still out) marks nothing again.
	c3 := c2
	c3.Version = 3
	applyOwn(t, s, 4, request{Ctl: &control{Kind: ctlConfig, Config: marshalConfig(&c3)}})
	applyOwn(t, s, 5, request{Ctl: &control{Kind: ctlConfig, Config: marshalConfig(&c3)}})
	select {
	case e := <-w.Events():
		t.Fatalf("event after the group left: %v", brief([]Event{e}))
	case <-time.After(100 * time.Millisecond):
	}
}

// TestClusterWatch: watchers on a real 3-member cluster while members
// restart, the leader among them: each watcher gets every write in index
// order with no gap or duplicate; a member restarted from its WAL serves
// the same events again; a watcher on a member that is stopped ends with
// ErrStopped, and its client resumes on another member after the last
// event it got, missing nothing.
func TestClusterWatch(t *testing.T) {
	c := newInprocCluster(t, 3, raftnode.Config{TickInterval: 20 * time.Millisecond})
	lead := c.waitLeader()
	f := c.follower()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	w, err := c.stors[f].Watch(ctx, WatchOptions{Prefix: "w/", FromIndex: 1, AfterPos: -1})
	if err != nil {
		t.Fatal(err)
	}
	other := 3 - lead - f
	onOther, err := c.stors[other].Watch(ctx, WatchOptions{Prefix: "w/", FromIndex: 1, AfterPos: -1})
	if err != nil {
		t.Fatal(err)
	}
	const writes = 30
	var indexes []uint64
	for i := range writes {
		switch i {
		case 10:
			c.stop(other) // its watcher ends
		case 12:
			c.start(other, false)
		case 20:
			c.stop(lead)
		case 22:
			c.start(lead, false)
		}
		via := f
		if c.stors[(f+i)%3] != nil {
			via = (f + i) % 3
		}
		indexes = append(indexes, c.put(via, fmt.Sprint("w/", i), []byte(fmt.Sprint(i))))
	}
	evs := collect(t, w, writes)
	for i, e := range evs {
		if e.ModIndex != indexes[i] || e.Key != fmt.Sprint("w/", i) || e.Type != EventPut {
			t.Fatalf("event %d: %+v, want the write at %d", i, e, indexes[i])
		}
	}
	// The watcher on the member stopped ended; its client resumes on the
	// member restarted (which replayed its WAL) after its last event.
	var before []Event
	for e := range onOther.Events() {
		before = append(before, e)
	}
	if err := onOther.Err(); err != ErrStopped {
		t.Fatalf("the watcher of a stopped member ended with %v", err)
	}
	from, after := uint64(1), int64(-1)
	if n := len(before); n > 0 {
		from, after = before[n-1].ModIndex, int64(before[n-1].Pos)
	}
	resumed, err := c.stors[other].Watch(ctx, WatchOptions{Prefix: "w/", FromIndex: from, AfterPos: after})
	if err != nil {
		t.Fatal(err)
	}
	rest := collect(t, resumed, writes-len(before))
	if got, want := brief(append(before, rest...)), brief(evs); !reflect.DeepEqual(got, want) {
		t.Fatalf("the resumed watcher's events:\n%q\nwant\n%q", got, want)
	}
	// Every member, the restarted leader included, serves the same events.
	for i := range c.stors {
		again, err := c.stors[i].Watch(ctx, WatchOptions{Prefix: "w/", FromIndex: 1, AfterPos: -1})
		if err != nil {
			t.Fatalf("member %d: %v", i+1, err)
		}
		if got := brief(collect(t, again, writes)); !reflect.DeepEqual(got, brief(evs)) {
			t.Fatalf("member %d:\n%q\nwant\n%q", i+1, got, brief(evs))
		}
	}
}

// TestClusterWatchAfterLeaderSnapshot: a member that was down while the
// others compacted their logs catches up by a snapshot from the leader,
// and its window restarts there: a watch from before it is refused with
// the oldest index it serves, a watch from that index on gets the same
// events as on the leader, and a watcher started on the member before
// the snapshot came, owed the events it skipped, ends with ErrCompacted.
func TestClusterWatchAfterLeaderSnapshot(t *testing.T) {
	c := newInprocCluster(t, 3, raftnode.Config{TickInterval: 20 * time.Millisecond, SnapshotCount: 10, SnapshotCatchUpEntries: 2})
	lead := c.waitLeader()
	m := (lead + 1) % 3
	c.stop(m)
	for i := range 40 {
		c.put(lead, fmt.Sprint("s/", i), []byte(fmt.Sprint(i)))
	}
	c.start(m, false)
	early, err := c.stors[m].Watch(t.Context(), WatchOptions{Prefix: "s/", AfterPos: -1})
	if err != nil {
		t.Fatal(err)
	}
	c.waitValue(m, "s/39", []byte("39"))
	snap := c.nodes[m].Status().SnapshotIndex
	if snap == 0 {
		t.Fatalf("member %d took no snapshot", m+1)
	}
	_, err = c.stors[m].Watch(t.Context(), WatchOptions{Prefix: "s/", FromIndex: 1, AfterPos: -1})
	var ce *CompactedError
	if !errors.As(err, &ce) || ce.Oldest <= 1 {
		t.Fatalf("a watch from 1 on member %d after a snapshot at %d: %v", m+1, snap, err)
	}
	idx := c.put(lead, "s/last", []byte("x"))
	if err := c.stors[m].WaitApplied(t.Context(), idx); err != nil {
		t.Fatal(err)
	}
	onM, err := c.stors[m].Watch(t.Context(), WatchOptions{Prefix: "s/", FromIndex: ce.Oldest, AfterPos: -1})
	if err != nil {
		t.Fatal(err)
	}
	onLead, err := c.stors[lead].Watch(t.Context(), WatchOptions{Prefix: "s/", FromIndex: ce.Oldest, AfterPos: -1})
	if err != nil {
		t.Fatal(err)
	}
	got, want := brief(drain(t, onM, idx)), brief(drain(t, onLead, idx))
	if !reflect.DeepEqual(got, want) || len(got) == 0 || got[len(got)-1] != fmt.Sprintf(`%d.0 put "s/last"="x" c%d b0`, idx, idx) {
		t.Fatalf("from %d, member %d:\n%q\nleader:\n%q", ce.Oldest, m+1, got, want)
	}
	// The early watcher either started after the snapshot (then it sees
	// the last put) or was owed events the snapshot skipped (it ends).
	testutil.WaitFor(t, 10*time.Second, "the early watcher to end or catch up", func() error {
		select {
		case <-early.Done():
			return nil
		default:
		}
		if p := early.Progress(); p < idx {
			return fmt.Errorf("progress %d", p)
		}
		return nil
	})
	select {
	case <-early.Done():
		if err := early.Err(); !errors.As(err, &ce) {
			t.Fatalf("the watcher from before the snapshot ended with %v", err)
		}
		t.Logf("the watcher from before the snapshot ended: %v", early.Err())
	default:
		if evs := brief(drain(t, early, idx)); len(evs) == 0 || evs[len(evs)-1] != got[len(got)-1] {
			t.Fatalf("the watcher from before the snapshot got %q", evs)
		}
		t.Logf("the watcher started after the snapshot")
	}
}
