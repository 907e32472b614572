package kvstore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/raftkv/raftkv/shardmap"
	"go.uber.org/zap/zaptest"
)

// shardStore is a bare store of shard group group with n buckets.
func shardStore(t *testing.T, group uint64, n int) *Store {
	return bareStore(zaptest.NewLogger(t), Config{Buckets: n, Group: group, DedupWindow: 4})
}

// keysIn returns count keys of bucket b of n, with prefix.
func keysIn(b, n, count int, prefix string) []string {
	var out []string
	for i := 0; len(out) < count; i++ {
		if k := fmt.Sprint(prefix, i); shardmap.BucketOf(k, n) == b {
			out = append(out, k)
		}
	}
	return out
}

// bucketData builds the BucketData of bucket b at version holding keys
// (each key's value is the key) and a dedup table remembering seq 1 of
// client "mover" at index 7.
func bucketData(t *testing.T, b int, version uint64, keys []string) *BucketData {
	d := &BucketData{Bucket: b, Version: version, data: newTree(), dedup: newDedupTable()}
	for _, k := range keys {
		d.data.ReplaceOrInsert(newItem(k, []byte(k)))
	}
	d.dedup.record("mover", dedupEntry{seq: 1, index: 7}, 7, 4, 10)
	return d
}

func mustMarshal(t *testing.T, d *BucketData) []byte {
	t.Helper()
	data, err := d.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// shardView is what a bucket operation may change, for comparing states.
type shardView struct {
	Version uint64
	Status  []BucketStatus
	Keys    map[string]string
	Dedup   [][]byte
	Joined  bool
}

func viewOf(s *Store) shardView {
	st := s.ShardState()
	v := shardView{Version: st.Config.Version, Status: st.Status, Keys: stateOf(s), Joined: st.Joined}
	s.mu.RLock()
	for _, b := range s.mu.buckets {
		v.Dedup = append(v.Dedup, encodeTable(b.dedup))
	}
	s.mu.RUnlock()
	return v
}

// restored returns a store restored from a snapshot of s.
func restored(t *testing.T, s *Store) *Store {
	t.Helper()
	r := bareStore(zaptest.NewLogger(t), s.cfg)
	r.session = s.session
	restoreFrom(t, r, snapshotOf(t, s), s.AppliedIndex())
	return r
}

// TestBucketOperations applies InstallBucket, DeleteBucket and FinishGC
// entries to a bucket in every status, at the applied config version, one
// before and one after it: each applies only in the one status and
// version its step of a migration has, is answered nil when its step is
// done or past, and changes nothing otherwise. Each is applied twice
// (idempotence), also to a store restored from a snapshot in between.
func TestBucketOperations(t *testing.T) {
	const n, b, cur = 8, 3, 5
	type outcome struct {
		err    error // nil, or the sentinel the answer wraps
		status BucketStatus
		keys   string // "old", "new" (installed), "none"
	}
	statuses := []BucketStatus{NotOwned, Serving, Pulling, BePulling, GCing}
	// At version == cur, by op and by the bucket's status.
	atCur := map[controlKind]map[BucketStatus]outcome{
		ctlInstall: {
			NotOwned:  {ErrBucketState, NotOwned, "old"},
			Serving:   {nil, Serving, "old"},
			Pulling:   {nil, GCing, "new"},
			BePulling: {ErrBucketState, BePulling, "old"},
			GCing:     {nil, GCing, "old"},
		},
		ctlDelete: {
			NotOwned:  {nil, NotOwned, "old"},
			Serving:   {ErrBucketState, Serving, "old"},
			Pulling:   {ErrBucketState, Pulling, "old"},
			BePulling: {nil, NotOwned, "none"},
			GCing:     {ErrBucketState, GCing, "old"},
		},
		ctlFinishGC: {
			NotOwned:  {ErrBucketState, NotOwned, "old"},
			Serving:   {nil, Serving, "old"},
			Pulling:   {ErrNotReady, Pulling, "old"},
			BePulling: {ErrBucketState, BePulling, "old"},
			GCing:     {nil, Serving, "old"},
		},
	}
	oldKeys, newKeys := keysIn(b, n, 3, "old-"), keysIn(b, n, 4, "new-")
	for _, kind := range []controlKind{ctlInstall, ctlDelete, ctlFinishGC} {
		for _, st := range statuses {
			for _, version := range []uint64{cur - 1, cur, cur + 1} {
				want := outcome{nil, st, "old"} // past: done long ago
				switch {
				case version == cur:
					want = atCur[kind][st]
				case version > cur:
					want = outcome{ErrNotReady, st, "old"}
				}
				name := fmt.Sprintf("%s/%s/version=%d", map[controlKind]string{ctlInstall: "install", ctlDelete: "delete", ctlFinishGC: "finish"}[kind], st, version)
				t.Run(name, func(t *testing.T) {
					s := shardStore(t, 1, n)
					s.mu.shard.config.Version, s.mu.shard.status[b] = cur, st
					for _, k := range oldKeys {
						s.mu.buckets[b].data.ReplaceOrInsert(newItem(k, []byte(k)))
					}
					s.setApplied(10)
					c := &control{Kind: kind, Bucket: b, Version: version}
					if kind == ctlInstall {
						c.Data = mustMarshal(t, bucketData(t, b, version, newKeys))
					}
					check := func(what string, s *Store, r result) {
						t.Helper()
						if want.err == nil && r.err != nil || want.err != nil && !errors.Is(r.err, want.err) {
							t.Fatalf("%s: answered %v, want %v", what, r.err, want.err)
						}
						if got := s.ShardState().Status[b]; got != want.status {
							t.Fatalf("%s: bucket is %s, want %s", what, got, want.status)
						}
						wantKeys := map[string]string{}
						switch want.keys {
						case "old":
							for _, k := range oldKeys {
								wantKeys[k] = k
							}
						case "new":
							for _, k := range newKeys {
								wantKeys[k] = k
							}
						}
						if got := stateOf(s); !reflect.DeepEqual(got, wantKeys) {
							t.Fatalf("%s: keys %v, want %v", what, got, wantKeys)
						}
						if remembers := s.mu.buckets[b].dedup.len() == 1; remembers != (want.keys == "new") {
							t.Fatalf("%s: the bucket's dedup table remembers %d clients", what, s.mu.buckets[b].dedup.len())
						}
					}
					check("first apply", s, applyOwn(t, s, 11, request{Ctl: c}))
					r := restored(t, s)
					if !reflect.DeepEqual(viewOf(r), viewOf(s)) {
						t.Fatalf("restored state differs:\n%+v\n%+v", viewOf(r), viewOf(s))
					}
					// Applied again: a transition that happened is answered nil.
					if want.err == nil || want.status != st {
						want.err = nil
					}
					check("second apply", s, applyOwn(t, s, 12, request{Ctl: c}))
					check("second apply after a restart", r, applyOwn(t, r, 12, request{Ctl: c}))
				})
			}
		}
	}
}

// TestProposeConfigTransitions: a config applies only as the next version
// of a settled group, and sets each bucket's status from who held it
// before and who holds it now.
func TestProposeConfigTransitions(t *testing.T) {
	const n = 8
	g1 := []string{"http://g1"}
	g2 := []string{"http://g2"}
	c1 := shardmap.Config{Version: 1, Buckets: []uint64{1, 1, 1, 1, 2, 2, 2, 2}, Groups: map[uint64][]string{1: g1, 2: g2}}
	c2 := shardmap.Config{Version: 2, Buckets: []uint64{1, 1, 2, 2, 1, 1, 2, 2}, Groups: map[uint64][]string{1: g1, 2: g2}}
	c3 := shardmap.Config{Version: 3, Buckets: []uint64{1, 1, 1, 1, 1, 1, 1, 1}, Groups: map[uint64][]string{1: g1}}
	S, P, B, N := Serving, Pulling, BePulling, NotOwned

	s := shardStore(t, 1, n)
	index := uint64(0)
	step := func(name string, c shardmap.Config, wantErr error, want []BucketStatus, wantVersion uint64) {
		t.Helper()
		for try := range 2 { // the second time as a duplicate proposal
			index++
			r := applyOwn(t, s, index, request{Ctl: &control{Kind: ctlConfig, Config: marshalConfig(&c)}})
			if wantErr == nil && r.err != nil || wantErr != nil && !errors.Is(r.err, wantErr) {
				t.Fatalf("%s (try %d): %v, want %v", name, try+1, r.err, wantErr)
			}
			st := s.ShardState()
			if !slices.Equal(st.Status, want) || st.Config.Version != wantVersion {
				t.Fatalf("%s (try %d): config %d, statuses %v; want %d, %v", name, try+1, st.Config.Version, st.Status, wantVersion, want)
			}
		}
	}
	none := []BucketStatus{N, N, N, N, N, N, N, N}
	step("a gap", c2, ErrNotReady, none, 0)
	bad := c1.Clone()
	bad.Buckets = bad.Buckets[:4]
	step("wrong bucket count", bad, ErrBadShardOp, none, 0)
	step("first config: buckets from nobody serve at once", c1, nil, []BucketStatus{S, S, S, S, N, N, N, N}, 1)
	if st := s.ShardState(); st.Prev.Version != 0 || !reflect.DeepEqual(st.Config, c1) {
		t.Fatalf("after config 1: prev %d, config %+v", st.Prev.Version, st.Config)
	}
	step("a move each way", c2, nil, []BucketStatus{S, S, B, B, P, P, N, N}, 2)
	step("not settled", c3, ErrNotSettled, []BucketStatus{S, S, B, B, P, P, N, N}, 2)
	step("an old config", c1, nil, []BucketStatus{S, S, B, B, P, P, N, N}, 2)
	// Settle: the pulled buckets arrive and are finished, the others go.
	for _, b := range []int{4, 5} {
		for _, kind := range []controlKind{ctlInstall, ctlFinishGC} {
			c := &control{Kind: kind, Bucket: b, Version: 2}
			if kind == ctlInstall {
				c.Data = mustMarshal(t, bucketData(t, b, 2, keysIn(b, n, 2, "k")))
			}
			index++
			if r := applyOwn(t, s, index, request{Ctl: c}); r.err != nil {
				t.Fatal(r.err)
			}
		}
	}
	for _, b := range []int{2, 3} {
		index++
		if r := applyOwn(t, s, index, request{Ctl: &control{Kind: ctlDelete, Bucket: b, Version: 2}}); r.err != nil {
			t.Fatal(r.err)
		}
	}
	if !s.Settled() {
		t.Fatalf("not settled: %v", s.ShardState().Status)
	}
	step("the group takes every bucket", c3, nil, []BucketStatus{S, S, P, P, S, S, P, P}, 3)
	if st := s.ShardState(); !reflect.DeepEqual(st.Prev, c2) {
		t.Fatalf("prev is %+v, want config 2", st.Prev)
	}
}

// TestMarkJoinedStartsFrom: MarkJoined's config moves a group that owns
// no bucket to it, so that the configs before it, which listed an
// earlier group of the same id, are never taken; the next config then
// pulls from their owners there. It survives a snapshot. From the
// applied config itself, Prev becomes that config too. A group that owns
// a bucket only records the join; a config that lists the group is
// refused.
func TestMarkJoinedStartsFrom(t *testing.T) {
	const n = 4
	old, g2, fresh := []string{"http://old"}, []string{"http://g2"}, []string{"http://new"}
	c3 := shardmap.Config{Version: 3, Buckets: []uint64{2, 2, 2, 2}, Groups: map[uint64][]string{2: g2}}
	c4 := shardmap.Config{Version: 4, Buckets: []uint64{1, 1, 2, 2}, Groups: map[uint64][]string{1: fresh, 2: g2}}
	c1 := shardmap.Config{Version: 1, Buckets: []uint64{1, 1, 1, 1}, Groups: map[uint64][]string{1: old}}
	joined := func(s *Store, index uint64, from *shardmap.Config) result {
		c := &control{Kind: ctlJoined}
		if from != nil {
			c.Config = marshalConfig(from)
		}
		return applyOwn(t, s, index, request{Ctl: c})
	}
	S, P, N := Serving, Pulling, NotOwned

	s := shardStore(t, 1, n)
	if r := joined(s, 1, &c4); !errors.Is(r.err, ErrBadShardOp) || s.ShardState().Joined {
		t.Fatalf("MarkJoined from a config listing the group: %v, joined %v; want ErrBadShardOp, not joined", r.err, s.ShardState().Joined)
	}
	if r := joined(s, 2, &c3); r.err != nil {
		t.Fatal(r.err)
	}
	s = restored(t, s)
	if st := s.ShardState(); !st.Joined || !reflect.DeepEqual(st.Config, c3) || !slices.Equal(st.Status, []BucketStatus{N, N, N, N}) {
		t.Fatalf("after MarkJoined from config 3 and a snapshot: joined %v, config %+v, %v", st.Joined, st.Config, st.Status)
	}
	if r := applyOwn(t, s, 3, request{Ctl: &control{Kind: ctlConfig, Config: marshalConfig(&c4)}}); r.err != nil {
		t.Fatal(r.err)
	}
	if st := s.ShardState(); st.Config.Version != 4 || !slices.Equal(st.Status, []BucketStatus{P, P, N, N}) {
		t.Fatalf("config 4 after the jump: config %d, %v; want buckets 0 and 1 pulled from group 2", st.Config.Version, st.Status)
	}
	if st := s.ShardState(); !reflect.DeepEqual(st.Prev, c3) {
		t.Fatalf("prev is %+v, want config 3 (bucket 0 pulled from group 2)", st.Prev)
	}

	// A group that took configs without it up to from: Prev becomes from
	// too, where the driver tells its join's start.
	s = shardStore(t, 1, n)
	other := shardmap.Config{Version: 1, Buckets: []uint64{2, 2, 2, 2}, Groups: map[uint64][]string{2: g2}}
	if r := applyOwn(t, s, 1, request{Ctl: &control{Kind: ctlConfig, Config: marshalConfig(&other)}}); r.err != nil {
		t.Fatal(r.err)
	}
	if r := joined(s, 2, &other); r.err != nil {
		t.Fatal(r.err)
	}
	if st := s.ShardState(); !st.Joined || !reflect.DeepEqual(st.Config, other) || !reflect.DeepEqual(st.Prev, other) {
		t.Fatalf("MarkJoined from the applied config: joined %v, config %+v, prev %+v; want both config 1", st.Joined, st.Config, st.Prev)
	}

	// A group that took config 1 owns buckets: MarkJoined only records.
	s = shardStore(t, 1, n)
	if r := applyOwn(t, s, 1, request{Ctl: &control{Kind: ctlConfig, Config: marshalConfig(&c1)}}); r.err != nil {
		t.Fatal(r.err)
	}
	if r := joined(s, 2, &c3); r.err != nil {
		t.Fatal(r.err)
	}
	if st := s.ShardState(); !st.Joined || st.Config.Version != 1 || !slices.Equal(st.Status, []BucketStatus{S, S, S, S}) {
		t.Fatalf("MarkJoined of a group that owns buckets: joined %v, config %d, %v; want config 1 kept", st.Joined, st.Config.Version, st.Status)
	}
}

// TestWritesFencedAtApply: a write applies only when this group serves
// (Serving, GCing) the bucket of every key it touches; otherwise it is
// refused whole, with who serves the bucket, or as moving.
func TestWritesFencedAtApply(t *testing.T) {
	const n = 5
	s := shardStore(t, 1, n)
	c := shardmap.Config{Version: 4, Buckets: []uint64{1, 2, 2, 1, 0}, Groups: map[uint64][]string{1: {"http://a"}, 2: {"http://b1", "http://b2"}}}
	s.mu.shard.config = c
	s.mu.shard.status = []BucketStatus{Serving, NotOwned, BePulling, Pulling, GCing}
	key := func(b int) string { return keysIn(b, n, 1, "k")[0] }
	tests := []struct {
		name    string
		buckets []int
		wantErr error
		wrong   *WrongGroupError
	}{
		{"serving", []int{0}, nil, nil},
		{"gcing", []int{4}, nil, nil},
		{"serving and gcing", []int{0, 4}, nil, nil},
		{"not owned", []int{1}, ErrWrongGroup, &WrongGroupError{Key: key(1), Bucket: 1, Group: 1, Version: 4, Owner: 2, Servers: []string{"http://b1", "http://b2"}}},
		{"be pulling", []int{2}, ErrWrongGroup, &WrongGroupError{Key: key(2), Bucket: 2, Group: 1, Version: 4, Owner: 2, Servers: []string{"http://b1", "http://b2"}}},
		{"pulling", []int{3}, ErrBucketMoving, nil},
		{"serving and not owned", []int{0, 1}, ErrWrongGroup, &WrongGroupError{Key: key(1), Bucket: 1, Group: 1, Version: 4, Owner: 2, Servers: []string{"http://b1", "http://b2"}}},
		{"pulling, then not owned", []int{3, 2}, ErrWrongGroup, &WrongGroupError{Key: key(2), Bucket: 2, Group: 1, Version: 4, Owner: 2, Servers: []string{"http://b1", "http://b2"}}},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := stateOf(s)
			req := request{ClientID: "c", Seq: uint64(i + 1)}
			for _, b := range tt.buckets {
				req.Ops = append(req.Ops, Op{Type: OpPut, Key: key(b), Value: []byte(tt.name)})
			}
			r := applyOwn(t, s, uint64(i+1), req)
			if tt.wantErr == nil {
				if r.err != nil {
					t.Fatal(r.err)
				}
				for _, b := range tt.buckets {
					wantValue(t, s, key(b), tt.name)
				}
				return
			}
			if !errors.Is(r.err, tt.wantErr) {
				t.Fatalf("%v, want %v", r.err, tt.wantErr)
			}
			var wg *WrongGroupError
			if errors.As(r.err, &wg) != (tt.wrong != nil) || tt.wrong != nil && !reflect.DeepEqual(wg, tt.wrong) {
				t.Fatalf("%#v, want %#v", r.err, tt.wrong)
			}
			if after := stateOf(s); !reflect.DeepEqual(after, before) {
				t.Fatalf("a refused write changed the state: %v -> %v", before, after)
			}
			if e, found, _ := s.mu.buckets[tt.buckets[0]].dedup.lookup("c", req.Seq); found {
				t.Fatalf("a refused write was recorded as applied: %+v", e)
			}
		})
	}
	var wg *WrongGroupError
	if _, _, err := s.localFenced(t.Context(), key(1)); !errors.As(err, &wg) || !wg.Misdirected() || wg.Code() != "wrong_group" {
		t.Fatalf("read of a bucket not owned: %v", err)
	}
}

// TestDedupMovesWithTheBucket: a client's write applied by the old owner
// is a duplicate at the new owner once the bucket moved there, answered
// with the index of its first apply.
func TestDedupMovesWithTheBucket(t *testing.T) {
	const n = 4
	g := map[uint64][]string{1: {"http://g1"}, 2: {"http://g2"}}
	c1 := shardmap.Config{Version: 1, Buckets: []uint64{1, 1, 1, 1}, Groups: g}
	c2 := shardmap.Config{Version: 2, Buckets: []uint64{1, 2, 1, 1}, Groups: g}
	s1, s2 := shardStore(t, 1, n), shardStore(t, 2, n)
	applyOwn(t, s1, 1, request{Ctl: &control{Kind: ctlConfig, Config: marshalConfig(&c1)}})
	k := keysIn(1, n, 1, "moved")[0]
	first := applyOwn(t, s1, 2, put("client", 3, k, "v1"))
	if first.err != nil {
		t.Fatal(first.err)
	}
	applyOwn(t, s1, 3, request{Ctl: &control{Kind: ctlConfig, Config: marshalConfig(&c2)}})
	for i, c := range []shardmap.Config{c1, c2} {
		if r := applyOwn(t, s2, uint64(i+1), request{Ctl: &control{Kind: ctlConfig, Config: marshalConfig(&c)}}); r.err != nil {
			t.Fatal(r.err)
		}
	}
	s1.mu.Lock()
	d, err := s1.exportLocked(1, 2)
	s1.mu.Unlock()
	if err != nil {
		t.Fatal(err)
	}
	if r := applyOwn(t, s2, 3, request{Ctl: &control{Kind: ctlInstall, Bucket: 1, Version: 2, Data: mustMarshal(t, d)}}); r.err != nil {
		t.Fatal(r.err)
	}
	r := applyOwn(t, s2, 4, put("client", 3, k, "retry"))
	if r.err != nil || !r.dup || r.index != first.index {
		t.Fatalf("retry at the new owner: %+v, want a duplicate of index %d", r, first.index)
	}
	wantValue(t, s2, k, "v1")
	if r := applyOwn(t, s2, 5, put("client", 4, k, "v2")); r.err != nil || r.dup {
		t.Fatalf("next write at the new owner: %+v", r)
	}
	wantValue(t, s2, k, "v2")
	if r := applyOwn(t, s1, 4, put("client", 3, k, "retry")); !errors.Is(r.err, ErrWrongGroup) {
		t.Fatalf("retry at the old owner after the move: %+v, want ErrWrongGroup", r)
	}
}

// TestExportFences: ExportBucket answers only for a bucket BePulling at
// exactly the asked version.
func TestExportFences(t *testing.T) {
	s := shardStore(t, 1, 4)
	s.mu.shard.config.Version = 3
	s.mu.shard.status = []BucketStatus{Serving, BePulling, NotOwned, Pulling}
	tests := []struct {
		b       int
		version uint64
		want    error
	}{
		{1, 3, nil},
		{1, 4, ErrNotReady},
		{1, 2, ErrBucketGone},
		{0, 3, ErrBucketGone},
		{2, 3, ErrBucketGone},
		{3, 3, ErrBucketGone},
	}
	for _, tt := range tests {
		s.mu.Lock()
		d, err := s.exportLocked(tt.b, tt.version)
		s.mu.Unlock()
		if tt.want == nil && err != nil || tt.want != nil && !errors.Is(err, tt.want) {
			t.Fatalf("export of bucket %d at %d: %v, want %v", tt.b, tt.version, err, tt.want)
		}
		if err == nil && (d.Bucket != tt.b || d.Version != tt.version) {
			t.Fatalf("export of bucket %d at %d gave bucket %d at %d", tt.b, tt.version, d.Bucket, d.Version)
		}
	}
}

// TestBucketDataCodec: BucketData encodes and decodes to itself, and the
// decoder refuses truncations, bit flips and trailing bytes.
func TestBucketDataCodec(t *testing.T) {
	d := bucketData(t, 5, 9, keysIn(5, 16, 20, "k"))
	d.data.ReplaceOrInsert(newItem(keysIn(5, 16, 1, "bin\x00\xff")[0], binaryValue()))
	data := mustMarshal(t, d)
	var got BucketData
	if err := got.UnmarshalBinary(data); err != nil {
		t.Fatal(err)
	}
	if got.Bucket != 5 || got.Version != 9 || got.Len() != 21 || !bytes.Equal(mustMarshal(t, &got), data) {
		t.Fatalf("round trip: bucket %d version %d, %d keys", got.Bucket, got.Version, got.Len())
	}
	if err := got.checkKeys(16); err != nil {
		t.Fatal(err)
	}
	if err := got.checkKeys(17); !errors.Is(err, ErrBadShardOp) {
		t.Fatalf("keys checked against another bucket count: %v", err)
	}
	for cut := 0; cut < len(data); cut += 3 {
		if err := new(BucketData).UnmarshalBinary(data[:cut]); !errors.Is(err, ErrBadShardOp) {
			t.Fatalf("truncated at %d: %v", cut, err)
		}
	}
	for i := 0; i < len(data); i++ {
		bad := bytes.Clone(data)
		bad[i] ^= 0x04
		if err := new(BucketData).UnmarshalBinary(bad); err == nil {
			t.Fatalf("bit flip at byte %d went unnoticed", i)
		}
	}
	if err := new(BucketData).UnmarshalBinary(append(bytes.Clone(data), 0)); err == nil {
		t.Fatal("a trailing byte went unnoticed")
	}
}

// TestConfigCodec: a config encodes and decodes to itself; the decoder
// refuses invalid configs and counts past the input, so a corrupt entry
// cannot make a member allocate more than the entry holds.
func TestConfigCodec(t *testing.T) {
	c := shardmap.Config{Version: 7, Buckets: []uint64{2, 0, 9, 2}, Groups: map[uint64][]string{2: {"http://a", "http://b"}, 9: {"http://c"}}, Pinned: []int{2}}
	data := marshalConfig(&c)
	got, err := unmarshalConfig(data)
	if err != nil || !reflect.DeepEqual(got, c) {
		t.Fatalf("round trip: %+v, %v", got, err)
	}
	bad := []struct {
		name string
		data []byte
	}{
		{"truncated", data[:len(data)-1]},
		{"trailing byte", append(bytes.Clone(data), 0)},
		{"a bucket count past the input", []byte{1, 0xff, 0xff, 0xff, 0x7f}},
		{"a group count past the input", []byte{1, 1, 0, 0xff, 0xff, 0x03}},
		{"no buckets", []byte{1, 0, 0, 0}},
		{"a bucket of an unlisted group", []byte{1, 1, 5, 0, 0}},
		{"a group without servers", []byte{1, 1, 5, 1, 5, 0, 0}},
		{"gids out of order", []byte{1, 1, 5, 2, 5, 1, 1, 'a', 3, 1, 1, 'b', 0}},
		{"pinned out of range", []byte{1, 1, 0, 0, 1, 4}},
	}
	for _, b := range bad {
		if _, err := unmarshalConfig(b.data); !errors.Is(err, ErrBadShardOp) {
			t.Errorf("%s: %v", b.name, err)
		}
	}
	w := (&wireConfigOp{Join: []wireGroup{{GID: 3, Servers: []string{"a"}}, {GID: 3, Servers: []string{"b"}}}})
	if _, err := w.op(); !errors.Is(err, ErrBadConfigOp) {
		t.Fatalf("a join naming a group twice: %v", err)
	}
	op := ConfigOp{Join: map[uint64][]string{4: {"x"}, 1: {"y"}}}
	if back, err := op.wire().op(); err != nil || !reflect.DeepEqual(back, op) {
		t.Fatalf("join round trip: %+v, %v", back, err)
	}
}

// TestVersionsGoOnAcrossAMove: a bucket moves from a group whose log is
// long to one whose log is short. At the new owner a key's next version
// is past every version it had (not the new group's smaller raft index),
// so CreateIndex stays at most ModIndex, the bucket installs again where
// it goes next, and a version a client read at the old owner never comes
// back for another value: its If-Match fails. The floor survives a
// snapshot and a deleted key's versions count too.
func TestVersionsGoOnAcrossAMove(t *testing.T) {
	const n = 4
	g := map[uint64][]string{1: {"http://g1"}, 2: {"http://g2"}}
	c1 := shardmap.Config{Version: 1, Buckets: []uint64{1, 1, 1, 1}, Groups: g}
	c2 := shardmap.Config{Version: 2, Buckets: []uint64{1, 2, 1, 1}, Groups: g}
	c3 := shardmap.Config{Version: 3, Buckets: []uint64{1, 1, 1, 1}, Groups: g}
	s1, s2 := shardStore(t, 1, n), shardStore(t, 2, n)
	ctl := func(s *Store, index uint64, c *shardmap.Config) {
		t.Helper()
		if r := applyOwn(t, s, index, request{Ctl: &control{Kind: ctlConfig, Config: marshalConfig(c)}}); r.err != nil {
			t.Fatal(r.err)
		}
	}
	move := func(from, to *Store, fromIndex, toIndex, version uint64) {
		t.Helper()
		from.mu.Lock()
		d, err := from.exportLocked(1, version)
		from.mu.Unlock()
		if err != nil {
			t.Fatal(err)
		}
		if r := applyOwn(t, to, toIndex, request{Ctl: &control{Kind: ctlInstall, Bucket: 1, Version: version, Data: mustMarshal(t, d)}}); r.err != nil {
			t.Fatalf("install at index %d: %v", toIndex, r.err)
		}
	}
	kv := func(s *Store, key string) KeyValue {
		t.Helper()
		got, _, err := s.GetKV(t.Context(), key, ReadOptions{Stale: true})
		if err != nil {
			t.Fatal(err)
		}
		return got
	}
	keys := keysIn(1, n, 2, "v")
	k, gone := keys[0], keys[1]
	ctl(s1, 1, &c1)
	if r := applyOwn(t, s1, 2, put("", 0, gone, "x")); r.err != nil {
		t.Fatal(r.err)
	}
	// Group 1's log runs far ahead of group 2's.
	if r := applyOwn(t, s1, 100, put("", 0, k, "a")); r.err != nil {
		t.Fatal(r.err)
	}
	if r := applyOwn(t, s1, 120, put("", 0, gone, "y")); r.err != nil {
		t.Fatal(r.err)
	}
	if r := applyOwn(t, s1, 121, request{Ops: []Op{{Type: OpDelete, Key: gone}}}); r.err != nil {
		t.Fatal(r.err)
	}
	seen := kv(s1, k) // a client reads k at version 100
	ctl(s1, 130, &c2)
	ctl(s2, 1, &c1)
	ctl(s2, 2, &c2)
	move(s1, s2, 130, 3, 2)

	// At group 2, index 4 < 100: k's next version is past 120, and the
	// write's answer names it (a PUT's ETag), not the raft index; so does
	// its watch event, beside the raft index that orders it.
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	wt, err := s2.Watch(ctx, WatchOptions{Key: k, FromIndex: 4, AfterPos: -1})
	if err != nil {
		t.Fatal(err)
	}
	r := applyOwn(t, s2, 4, put("", 0, k, "b"))
	if r.err != nil {
		t.Fatal(r.err)
	}
	got := kv(s2, k)
	if got.ModIndex <= 120 || got.CreateIndex > got.ModIndex || got.CreateIndex != seen.CreateIndex {
		t.Fatalf("k after a write at group 2's index 4: create %d, mod %d; want create %d, mod past 120", got.CreateIndex, got.ModIndex, seen.CreateIndex)
	}
	if r.index != 4 || r.mod != got.ModIndex {
		t.Fatalf("the write answered index %d, version %d; want 4 and the key's version %d", r.index, r.mod, got.ModIndex)
	}
	select {
	case ev := <-wt.Events():
		if ev.Type != EventPut || ev.ModIndex != 4 || ev.KeyMod != got.ModIndex || ev.CreateIndex != got.CreateIndex {
			t.Fatalf("the write's event %+v; want index 4, version %d, create %d", ev, got.ModIndex, got.CreateIndex)
		}
	case <-ctx.Done():
		t.Fatal("no event of the write")
	}
	// The deleted key comes back past its own last version.
	if r := applyOwn(t, s2, 5, put("", 0, gone, "z")); r.err != nil {
		t.Fatal(r.err)
	}
	if g := kv(s2, gone); g.ModIndex <= 120 {
		t.Fatalf("a key deleted at group 1 at version 120, put again at group 2: version %d", g.ModIndex)
	}
	// An identified write, and its retry answered from the dedup table:
	// both name the version the write gave.
	first := applyOwn(t, s2, 6, put("c", 1, k, "b2"))
	retry := applyOwn(t, s2, 7, put("c", 1, k, "b2"))
	if want := kv(s2, k).ModIndex; first.err != nil || retry.err != nil || first.mod != want || !retry.dup || retry.mod != want || retry.index != 6 {
		t.Fatalf("write %+v and its retry %+v; want version %d in both", first, retry, want)
	}
	// Group 2's raft index reaches the version the client saw: its
	// If-Match of that version must not hold for today's value.
	if r := applyOwn(t, s2, seen.ModIndex, request{Txn: &Txn{
		Compares: []Compare{{Key: k, Target: CompareMod, Op: Equal, Index: seen.ModIndex}},
		Success:  []TxnOp{{Type: TxnPut, Key: k, Value: []byte("stale")}},
	}}); r.err != nil || r.txn.Succeeded {
		t.Fatalf("If-Match of a version read at the old owner, at the new owner's index %d: %+v", seen.ModIndex, r)
	}

	// The move ends; a snapshot keeps the floor; the bucket moves back.
	if r := applyOwn(t, s1, 131, request{Ctl: &control{Kind: ctlDelete, Bucket: 1, Version: 2}}); r.err != nil {
		t.Fatal(r.err)
	}
	if r := applyOwn(t, s2, seen.ModIndex+1, request{Ctl: &control{Kind: ctlFinishGC, Bucket: 1, Version: 2}}); r.err != nil {
		t.Fatal(r.err)
	}
	write, err := s2.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := write(&buf); err != nil {
		t.Fatal(err)
	}
	r2 := shardStore(t, 2, n)
	restoreFrom(t, r2, buf.Bytes(), seen.ModIndex+1)
	before := kv(r2, k).ModIndex
	if r := applyOwn(t, r2, 150, put("", 0, k, "c")); r.err != nil {
		t.Fatal(r.err)
	}
	if after := kv(r2, k).ModIndex; after <= before {
		t.Fatalf("after a restore, k went from version %d to %d", before, after)
	}
	ctl(r2, 151, &c3)
	ctl(s1, 132, &c3)
	move(r2, s1, 151, 133, 3)
	if got := kv(s1, k); got.Value == nil || string(got.Value) != "c" || got.CreateIndex > got.ModIndex {
		t.Fatalf("k back at group 1: %+v", got)
	}
}

// TestConfigVersionAt: a shard member tells which config it had applied
// as of an index: the version applied at or before it, 0 before the
// first, and after a snapshot's restore from the snapshot's index only.
func TestConfigVersionAt(t *testing.T) {
	const n = 8
	g1 := []string{"http://g1"}
	s := shardStore(t, 1, n)
	applyOwn(t, s, 1, put("", 0, "k", "v"))
	for i, v := range []uint64{1, 2} {
		c := shardmap.Config{Version: v, Buckets: slices.Repeat([]uint64{1}, n), Groups: map[uint64][]string{1: g1}}
		if r := applyOwn(t, s, uint64(3+2*i), request{Ctl: &control{Kind: ctlConfig, Config: marshalConfig(&c)}}); r.err != nil {
			t.Fatal(r.err)
		}
		applyOwn(t, s, uint64(4+2*i), put("", 0, "k", "v"))
	}
	// A config applied again changes nothing.
	c := shardmap.Config{Version: 2, Buckets: slices.Repeat([]uint64{1}, n), Groups: map[uint64][]string{1: g1}}
	applyOwn(t, s, 7, request{Ctl: &control{Kind: ctlConfig, Config: marshalConfig(&c)}})
	for index, want := range map[uint64]uint64{1: 0, 2: 0, 3: 1, 4: 1, 5: 2, 7: 2, 100: 2} {
		if got := s.ConfigVersionAt(index); got != want {
			t.Errorf("ConfigVersionAt(%d) = %d, want %d", index, got, want)
		}
	}
	r := restored(t, s)
	for index, want := range map[uint64]uint64{3: 0, 6: 0, 7: 2, 9: 2} {
		if got := r.ConfigVersionAt(index); got != want {
			t.Errorf("restored at 7: ConfigVersionAt(%d) = %d, want %d", index, got, want)
		}
	}
	if got := bareStore(zaptest.NewLogger(t), Config{}).ConfigVersionAt(5); got != 0 {
		t.Errorf("a plain store: ConfigVersionAt = %d, want 0", got)
	}
}
