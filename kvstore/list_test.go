package kvstore

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/raftkv/raftkv/raftnode"
	"github.com/raftkv/raftkv/shardmap"
	"go.uber.org/zap"
)

// listModel is the specification of List over a state: its keys in key
// order within the range, after After, at most Limit.
func listModel(state map[string]string, versions map[string][2]uint64, o ListOptions) ([]KeyValue, bool) {
	var keys []string
	for k := range state {
		in := true
		switch {
		case o.Prefix != "":
			in = strings.HasPrefix(k, o.Prefix)
		default:
			in = k >= o.Start && (o.End == "" || k < o.End)
		}
		if in && (o.After == "" || k > o.After) {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	more := false
	if o.Limit > 0 && len(keys) > o.Limit {
		keys, more = keys[:o.Limit], true
	}
	var kvs []KeyValue
	for _, k := range keys {
		kv := KeyValue{Key: k, CreateIndex: versions[k][0], ModIndex: versions[k][1]}
		if !o.KeysOnly {
			kv.Value = []byte(state[k])
		}
		kvs = append(kvs, kv)
	}
	return kvs, more
}

// TestListMatchesModel: random listings of a random state of a plain
// member with several buckets (merged in key order) match the model, and
// paging through a range with After gives every key of it once.
func TestListMatchesModel(t *testing.T) {
	s := bareStore(zap.NewNop(), Config{Buckets: 8})
	rng := rand.New(rand.NewPCG(1, 2))
	alphabet := []string{"a", "b", "ab", "\xff", "\x00", "z"}
	randKey := func() string {
		var b strings.Builder
		for range 1 + rng.IntN(3) {
			b.WriteString(alphabet[rng.IntN(len(alphabet))])
		}
		return b.String()
	}
	for i := uint64(1); i <= 300; i++ {
		r := request{Ops: []Op{{Type: OpPut, Key: randKey(), Value: fmt.Append(nil, i)}}}
		if rng.IntN(4) == 0 {
			r.Ops = append(r.Ops, Op{Type: OpDelete, Key: randKey()})
		}
		applyOwn(t, s, i, r)
	}
	state, versions := stateOf(s), versionsOf(s)
	ctx := t.Context()
	for range 2000 {
		var o ListOptions
		switch rng.IntN(3) {
		case 0:
			o.Prefix = randKey()[:1]
		case 1:
			o.Start = randKey()
			if rng.IntN(2) == 0 {
				o.End = o.Start + randKey()
			}
		}
		if rng.IntN(3) == 0 {
			o.After = randKey()
		}
		o.Limit = rng.IntN(5)
		if rng.IntN(10) == 0 {
			o.Limit = listLockedMax + 1
		}
		o.KeysOnly = rng.IntN(2) == 0
		o.Stale = true
		res, err := s.List(ctx, o)
		if err != nil {
			t.Fatalf("%+v: %v", o, err)
		}
		kvs, more := listModel(state, versions, o)
		if !reflect.DeepEqual(res.KVs, kvs) || res.More != more || res.Index != 300 {
			t.Fatalf("%+v:\n got %+v more %v index %d\nwant %+v more %v", o, res.KVs, res.More, res.Index, kvs, more)
		}
	}
	// Paging.
	for _, o := range []ListOptions{{Prefix: "a"}, {Start: "\x00", End: "b"}, {}} {
		all, _ := listModel(state, versions, o)
		var got []KeyValue
		o.Limit, o.Stale = 3, true
		for page := 0; ; page++ {
			res, err := s.List(ctx, o)
			if err != nil || page > len(all) {
				t.Fatalf("page %d: %v", page, err)
			}
			got = append(got, res.KVs...)
			if !res.More {
				break
			}
			o.After = res.KVs[len(res.KVs)-1].Key
		}
		if !reflect.DeepEqual(got, all) {
			t.Fatalf("paged %+v: %d keys, want %d", o, len(got), len(all))
		}
	}
	for _, o := range []ListOptions{{Prefix: "a", Start: "a"}, {Start: "b", End: "a"}, {Limit: -1}} {
		if _, err := s.List(ctx, o); !errors.Is(err, ErrBadList) || status(err) != 400 {
			t.Fatalf("%+v: %v", o, err)
		}
	}
}

// TestListOneState: listings read one state, never one between two
// writes: a writer keeps writing two keys of different buckets together
// (with another key per index in between), and every listing, read under
// the lock or from clones, sees both at the index it was read at.
func TestListOneState(t *testing.T) {
	s := bareStore(zap.NewNop(), Config{Buckets: 2})
	a, z := keysIn(0, 2, 1, "a")[0], keysIn(1, 2, 1, "z")[0]
	if a > z {
		a, z = z, a
	}
	applyOwn(t, s, 1, put("", 0, a, "1", z, "1"))
	var wg sync.WaitGroup
	stop := make(chan struct{})
	wg.Go(func() {
		for i := uint64(2); ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			v := fmt.Sprint(i)
			// Two payloads of one index, as the leader's batcher merges them.
			s.applyIndex([]raftnode.Entry{
				mustEntry(t, i, &batch{Session: 7, Watermark: 2 * i, Reqs: []request{{ID: 2 * i, Ops: []Op{putOp(a, v)}}}}),
				mustEntry(t, i, &batch{Session: 8, Watermark: 2 * i, Reqs: []request{{ID: 2 * i, Ops: []Op{putOp(z, v)}}}}),
			})
			s.setApplied(i)
		}
	})
	for n := range 2000 {
		o := ListOptions{Stale: true, Limit: 2}
		if n%2 == 0 {
			o.Limit = 0
		}
		res, err := s.List(t.Context(), o)
		if err != nil {
			t.Fatal(err)
		}
		if len(res.KVs) != 2 || res.KVs[0].ModIndex != res.Index || res.KVs[1].ModIndex != res.Index ||
			string(res.KVs[0].Value) != string(res.KVs[1].Value) {
			t.Fatalf("listing %d (limit %d) saw two states: %+v at %d", n, o.Limit, res.KVs, res.Index)
		}
	}
	close(stop)
	wg.Wait()
}

// TestListOnShardMembers: a shard group member lists only the buckets it
// serves, refuses a listing that names another config version (the
// caller's map is stale), and waits while a bucket is on its way here.
func TestListOnShardMembers(t *testing.T) {
	const n = 4
	s := bareStore(zap.NewNop(), Config{Buckets: n, Group: 1})
	g := map[uint64][]string{1: {"http://a"}, 2: {"http://b"}}
	c1 := shardmap.Config{Version: 1, Buckets: []uint64{1, 1, 1, 1}, Groups: g}
	c2 := shardmap.Config{Version: 2, Buckets: []uint64{1, 1, 2, 2}, Groups: g}
	applyOwn(t, s, 1, request{Ctl: &control{Kind: ctlConfig, Config: marshalConfig(&c1)}})
	var keys []string
	for b := range n {
		keys = append(keys, keysIn(b, n, 2, "k")...)
	}
	r := request{}
	for _, k := range keys {
		r.Ops = append(r.Ops, putOp(k, k))
	}
	applyOwn(t, s, 2, r)
	if r := applyOwn(t, s, 3, request{Ctl: &control{Kind: ctlConfig, Config: marshalConfig(&c2)}}); r.err != nil {
		t.Fatal(r.err)
	}
	// Buckets 2 and 3 are BePulling: frozen here for group 2, not served.
	res, err := s.List(t.Context(), ListOptions{Stale: true, ConfigVersion: 2})
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	for _, k := range keys {
		if b := shardmap.BucketOf(k, n); b < 2 {
			want = append(want, k)
		}
	}
	slices.Sort(want)
	var got []string
	for _, kv := range res.KVs {
		got = append(got, kv.Key)
	}
	if !slices.Equal(got, want) || res.Index != 3 {
		t.Fatalf("listed %q at %d, want %q at 3", got, res.Index, want)
	}
	_, err = s.List(t.Context(), ListOptions{Stale: true, ConfigVersion: 1})
	var wg *WrongGroupError
	if !errors.As(err, &wg) || wg.Version != 2 || wg.AskedVersion != 1 || !strings.Contains(err.Error(), "names config 1") {
		t.Fatalf("a listing of config 1: %v", err)
	}
	s.mu.shard.status[1] = Pulling
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	if _, err := s.List(ctx, ListOptions{Stale: true}); err != ErrBucketMoving {
		t.Fatalf("a listing while a bucket is pulled: %v", err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := s.List(t.Context(), ListOptions{Stale: true, Prefix: "k"})
		done <- err
	}()
	s.mu.Lock()
	s.mu.shard.status[1] = GCing
	s.notifyLocked()
	s.mu.Unlock()
	if err := <-done; err != nil {
		t.Fatalf("a listing once the bucket arrived: %v", err)
	}
}

// TestClusterList: a linearizable listing on a follower sees a write just
// acknowledged by another member, at an index at or past it.
func TestClusterList(t *testing.T) {
	c := newInprocCluster(t, 3, raftnode.Config{TickInterval: 20 * time.Millisecond})
	f := c.follower()
	other := (f + 1) % 3
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for i := range 5 {
		idx := c.put(other, fmt.Sprint("p/", i), []byte{byte(i)})
		res, err := c.stors[f].List(ctx, ListOptions{Prefix: "p/"})
		if err != nil || len(res.KVs) != i+1 || res.Index < idx || res.KVs[i].ModIndex != idx {
			t.Fatalf("listing %d on member %d: %+v, %v (write at %d)", i, f+1, res, err, idx)
		}
	}
}
