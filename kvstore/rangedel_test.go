package kvstore

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/raftkv/raftkv/raftnode"
	"github.com/raftkv/raftkv/shardmap"
	"go.uber.org/zap"
)

func TestDeleteRangeBounds(t *testing.T) {
	for _, tt := range []struct {
		o      DeleteRangeOptions
		lo, hi string
		bad    bool
	}{
		{o: DeleteRangeOptions{Prefix: "ab"}, lo: "ab", hi: "ac"},
		{o: DeleteRangeOptions{Prefix: "a\xff"}, lo: "a\xff", hi: "b"},
		{o: DeleteRangeOptions{Prefix: "\xff\xff"}, lo: "\xff\xff", hi: ""},
		{o: DeleteRangeOptions{Start: "a", End: "c"}, lo: "a", hi: "c"},
		{o: DeleteRangeOptions{Start: "a"}, lo: "a", hi: ""},
		{o: DeleteRangeOptions{End: "c"}, lo: "", hi: "c"},
		{o: DeleteRangeOptions{}, bad: true},
		{o: DeleteRangeOptions{Prefix: "a", End: "c"}, bad: true},
		{o: DeleteRangeOptions{Start: "c", End: "c"}, bad: true},
		{o: DeleteRangeOptions{Start: "d", End: "c"}, bad: true},
	} {
		lo, hi, err := tt.o.bounds()
		if tt.bad {
			if !errors.Is(err, ErrBadRange) || status(err) != 400 {
				t.Errorf("%+v: %v, want ErrBadRange", tt.o, err)
			}
			continue
		}
		if err != nil || lo != tt.lo || hi != tt.hi {
			t.Errorf("%+v: [%q, %q), %v; want [%q, %q)", tt.o, lo, hi, err, tt.lo, tt.hi)
		}
	}
}

// TestDeleteRangeApply: a range delete removes exactly the keys of its
// range, counts them, and leaves an event for each.
func TestDeleteRangeApply(t *testing.T) {
	s := newBareStore(t)
	for i, k := range []string{"a", "ab", "ab\x00", "abc", "ac", "b", "c", "d"} {
		if r := applyOwn(t, s, uint64(i+1), request{Ops: []Op{putOp(k, "v")}}); r.err != nil {
			t.Fatal(r.err)
		}
	}
	before := s.DataBytes()
	for _, tt := range []struct {
		rd      rangeDelete
		deleted []string
	}{
		{rangeDelete{Start: "ab", End: prefixEnd("ab")}, []string{"ab", "ab\x00", "abc"}},
		{rangeDelete{Start: "ab", End: "b"}, []string{"ac"}},
		{rangeDelete{Start: "b", End: "c"}, []string{"b"}},
		{rangeDelete{Start: "c"}, []string{"c", "d"}},
		{rangeDelete{Start: "x"}, nil},
	} {
		index := s.AppliedIndex() + 1
		rd := tt.rd
		r := applyOwn(t, s, index, request{Range: &rd})
		if r.err != nil || r.deleted != len(tt.deleted) || r.index != index {
			t.Fatalf("range %+v: %+v; want %d deleted at %d", tt.rd, r, len(tt.deleted), index)
		}
		var evs []string
		s.win.mu.Lock()
		ring := make([]Event, 0, s.win.n)
		for i := range s.win.n {
			ring = append(ring, s.win.ring[(s.win.start+i)%len(s.win.ring)])
		}
		s.win.mu.Unlock()
		for _, e := range ring {
			if e.ModIndex == index {
				if e.Type != EventDelete {
					t.Fatalf("range %+v: event %+v", tt.rd, e)
				}
				evs = append(evs, e.Key)
			}
		}
		if !slices.Equal(evs, tt.deleted) {
			t.Fatalf("range %+v: events for %q, want %q", tt.rd, evs, tt.deleted)
		}
	}
	if kv, ok := getKV(t, s, "a"); !ok || s.Len() != 1 {
		t.Fatalf("left %d keys, a: %+v %v; want a alone", s.Len(), kv, ok)
	}
	if want := putSize("a", []byte("v"), 0); s.DataBytes() != want || before <= want {
		t.Fatalf("DataBytes %d after the deletes (%d before), want %d", s.DataBytes(), before, want)
	}
}

// TestDeleteRangeFencedOnShardMembers: on a shard group member a range
// delete applies only at the config version it names and while no
// bucket is on its way here, and deletes only the buckets the group
// serves; a refused one deletes nothing.
func TestDeleteRangeFencedOnShardMembers(t *testing.T) {
	const n = 4
	s := groupOneMember(t, []uint64{1, 1, 1, 2})
	index := uint64(2)
	for b := range 3 {
		for _, k := range keysIn(b, n, 2, "k") {
			if r := applyOwn(t, s, index, request{Ops: []Op{putOp(k, "v")}}); r.err != nil {
				t.Fatal(r.err)
			}
			index++
		}
	}
	all := &rangeDelete{Start: "k", End: "l", ConfigVersion: 1}
	stale := *all
	stale.ConfigVersion = 2
	r := applyOwn(t, s, index, request{Range: &stale})
	var wg *WrongGroupError
	if !errors.As(r.err, &wg) || wg.AskedVersion != 2 || wg.Version != 1 || s.Len() != 6 {
		t.Fatalf("a range delete at another config version: %+v, %d keys left", r, s.Len())
	}
	s.mu.shard.status[1] = Pulling
	if r := applyOwn(t, s, index+1, request{Range: all}); r.err != ErrBucketMoving || s.Len() != 6 {
		t.Fatalf("a range delete while a bucket is pulled: %+v, %d keys left", r, s.Len())
	}
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	if _, err := s.deleteRange(ctx, DeleteRangeOptions{Prefix: "k"}); err != ErrBucketMoving {
		t.Fatalf("proposing while a bucket is pulled: %v", err)
	}
	s.mu.shard.status[1] = BePulling // on its way out: its keys stay for the pull
	r = applyOwn(t, s, index+2, request{Range: all})
	if r.err != nil || r.deleted != 4 || s.Len() != 2 {
		t.Fatalf("a range delete with bucket 1 on its way out: %+v, %d keys left", r, s.Len())
	}
	for _, k := range keysIn(1, n, 2, "k") {
		if _, ok := s.mu.buckets[1].data.Get(newItem(k, nil)); !ok {
			t.Fatalf("key %q of the bucket on its way out was deleted", k)
		}
	}
}

// TestClusterDeleteRange: a range delete through a follower of a real
// 3-member cluster deletes the same keys on every member, and a watcher
// of the prefix sees each delete.
func TestClusterDeleteRange(t *testing.T) {
	c := newInprocCluster(t, 3, raftnode.Config{TickInterval: 50 * time.Millisecond})
	lead := c.waitLeader()
	f := (lead + 1) % 3
	var last uint64
	for i := range 10 {
		last = c.put(f, fmt.Sprintf("user/%d", i), []byte("v"))
	}
	c.put(f, "users", []byte("kept"))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	w, err := c.stors[lead].Watch(ctx, WatchOptions{Prefix: "user/", FromIndex: last + 1})
	if err != nil {
		t.Fatal(err)
	}
	var r DeleteRangeResult
	if err := settle(ctx, func() (err error) {
		r, err = c.stors[f].DeleteRange(ctx, DeleteRangeOptions{Prefix: "user/"})
		return err
	}); err != nil || r.Deleted != 10 {
		t.Fatalf("DeleteRange: %+v, %v; want 10 deleted", r, err)
	}
	for i, s := range c.stors {
		if err := s.WaitApplied(ctx, r.Index); err != nil {
			t.Fatal(err)
		}
		if s.Len() != 1 {
			t.Fatalf("member %d holds %d keys after the range delete, want 1", i+1, s.Len())
		}
	}
	c.waitValue(lead, "users", []byte("kept"))
	seen := map[string]bool{}
	for len(seen) < 10 {
		select {
		case e := <-w.Events():
			if e.Type != EventDelete || e.ModIndex != r.Index {
				t.Fatalf("event %+v, want deletes at %d", e, r.Index)
			}
			seen[e.Key] = true
		case <-ctx.Done():
			t.Fatalf("saw %d deletes of 10", len(seen))
		}
	}
}

// groupOneMember is a bare store of group 1 that applied config 1 at
// index 1: bucket b served by group owners[b] (1 or 2).
func groupOneMember(t *testing.T, owners []uint64) *Store {
	t.Helper()
	s := bareStore(zap.NewNop(), Config{Buckets: len(owners), Group: 1})
	c1 := shardmap.Config{Version: 1, Buckets: owners, Groups: map[uint64][]string{1: {"http://a"}, 2: {"http://b"}}}
	if r := applyOwn(t, s, 1, request{Ctl: &control{Kind: ctlConfig, Config: marshalConfig(&c1)}}); r.err != nil {
		t.Fatal(r.err)
	}
	return s
}
