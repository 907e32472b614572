package kvstore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/raftkv/raftkv/raftnode"
)

// getKV reads key from s's local state.
func getKV(t *testing.T, s *Store, key string) (KeyValue, bool) {
	t.Helper()
	kv, _, err := s.GetKV(context.Background(), key, ReadOptions{Stale: true})
	switch {
	case errors.Is(err, ErrNotFound):
		return KeyValue{}, false
	case err != nil:
		t.Fatalf("GetKV(%q): %v", key, err)
	}
	return kv, true
}

func putOp(key, value string) Op { return Op{Type: OpPut, Key: key, Value: []byte(value)} }
func delOp(key string) Op        { return Op{Type: OpDelete, Key: key} }

// TestVersions: a key's CreateIndex is the index of the write that created
// it since it was last absent, its ModIndex that of its last write, through
// puts, deletes, several writes in one entry and several payloads of one
// raft index.
func TestVersions(t *testing.T) {
	type want struct {
		key         string
		found       bool
		create, mod uint64
		value       string
	}
	steps := []struct {
		name  string
		index uint64
		reqs  [][]Op // one payload per element, all at index
		want  []want
	}{
		{"create", 3, [][]Op{{putOp("a", "1")}},
			[]want{{"a", true, 3, 3, "1"}}},
		{"update keeps create", 5, [][]Op{{putOp("a", "2")}},
			[]want{{"a", true, 3, 5, "2"}}},
		{"two writes of one key in one request", 6, [][]Op{{putOp("a", "x"), putOp("a", "3"), putOp("b", "1")}},
			[]want{{"a", true, 3, 6, "3"}, {"b", true, 6, 6, "1"}}},
		{"delete", 8, [][]Op{{delOp("a")}},
			[]want{{"a", false, 0, 0, ""}, {"b", true, 6, 6, "1"}}},
		{"delete of an absent key", 9, [][]Op{{delOp("a")}},
			[]want{{"a", false, 0, 0, ""}}},
		{"re-created", 10, [][]Op{{putOp("a", "4")}},
			[]want{{"a", true, 10, 10, "4"}}},
		{"deleted and re-created in one request", 11, [][]Op{{delOp("b"), putOp("b", "2")}},
			[]want{{"b", true, 11, 11, "2"}}},
		{"payloads of one index", 12, [][]Op{{putOp("a", "5")}, {putOp("a", "6"), putOp("c", "1")}, {delOp("c")}},
			[]want{{"a", true, 10, 12, "6"}, {"c", false, 0, 0, ""}}},
	}
	s := newBareStore(t)
	id := uint64(0)
	for _, st := range steps {
		var ents []raftnode.Entry
		for i, ops := range st.reqs {
			id++
			ents = append(ents, mustEntry(t, st.index, &batch{Session: 40 + uint64(i), Watermark: 1, Reqs: []request{{ID: id, Ops: ops}}}))
		}
		s.applyEntries(ents)
		s.setApplied(st.index)
		for _, w := range st.want {
			kv, found := getKV(t, s, w.key)
			if found != w.found || kv.CreateIndex != w.create || kv.ModIndex != w.mod || string(kv.Value) != w.value || kv.TTL != 0 {
				t.Fatalf("%s: %q = %+v (found %v), want %+v", st.name, w.key, kv, found, w)
			}
		}
	}
	_, index, err := s.GetKV(t.Context(), "absent", ReadOptions{Stale: true})
	if !errors.Is(err, ErrNotFound) || index != 12 {
		t.Fatalf("absent key: index %d, %v; want 12, ErrNotFound", index, err)
	}
}

// TestVersionsOfUnversionedWriters: a write from a binary that kept no
// versions (batch.Format 0, as it encoded its entries) leaves its keys at
// version 0, as a snapshot of such a binary would have them, so that
// members replaying its entries and members restoring its snapshot agree;
// a later write of this binary gives the key its index and keeps create 0.
func TestVersionsOfUnversionedWriters(t *testing.T) {
	s := newBareStore(t)
	old := &batch{Session: 5, Watermark: 1, Reqs: []request{{ID: 1, Ops: []Op{putOp("k", "old")}}}}
	// encodeBatch marks what it encodes as this binary's; an old binary's
	// gob omits the field, as a zero Format encodes.
	data, err := encodeBatch(old)
	if err != nil {
		t.Fatal(err)
	}
	b, err := decodeBatch(data)
	if err != nil || b.Format != batchFormatVersions {
		t.Fatalf("decoded %+v, %v", b, err)
	}
	s.mu.Lock()
	s.ap.index = 4
	b.Format = 0
	s.applyBatchLocked(b, nil)
	s.mu.Unlock()
	if kv, _ := getKV(t, s, "k"); kv.CreateIndex != 0 || kv.ModIndex != 0 || string(kv.Value) != "old" {
		t.Fatalf("after an unversioned write: %+v", kv)
	}
	s.applyEntry(mustEntry(t, 7, &batch{Session: 6, Watermark: 1, Reqs: []request{{ID: 1, Ops: []Op{putOp("k", "new")}}}}))
	if kv, _ := getKV(t, s, "k"); kv.CreateIndex != 0 || kv.ModIndex != 7 || string(kv.Value) != "new" {
		t.Fatalf("after a versioned write: %+v", kv)
	}
}

// TestNoReadBetweenWritesOfOneIndex: every payload of one raft index is
// applied under one hold of the state lock, so a reader running meanwhile
// sees each key at a whole index: never the first of two writes of one
// key at one index, whether both are in one request, in two requests of
// one entry, or in two payloads the leader merged into one raft entry.
func TestNoReadBetweenWritesOfOneIndex(t *testing.T) {
	for _, shape := range []string{"one request", "two requests", "two payloads"} {
		t.Run(shape, func(t *testing.T) {
			s := newBareStore(t)
			var stop atomic.Bool
			var wg sync.WaitGroup
			var seen atomic.Value
			for range 2 {
				wg.Go(func() {
					for !stop.Load() {
						kv, _, err := s.GetKV(context.Background(), "k", ReadOptions{Stale: true})
						if err == nil && string(kv.Value[:3]) == "mid" {
							seen.Store(fmt.Sprintf("%s at mod %d", kv.Value, kv.ModIndex))
						}
					}
				})
			}
			for i := uint64(1); i <= 3000 && seen.Load() == nil; i++ {
				mid, final := putOp("k", fmt.Sprint("mid-", i)), putOp("k", fmt.Sprint("fin-", i))
				var ents []raftnode.Entry
				switch shape {
				case "one request":
					ents = append(ents, mustEntry(t, i, &batch{Session: 1, Watermark: i, Reqs: []request{{ID: i, Ops: []Op{mid, final}}}}))
				case "two requests":
					ents = append(ents, mustEntry(t, i, &batch{Session: 1, Watermark: 2 * i, Reqs: []request{{ID: 2 * i, Ops: []Op{mid}}, {ID: 2*i + 1, Ops: []Op{final}}}}))
				case "two payloads":
					ents = append(ents, mustEntry(t, i, &batch{Session: 1, Watermark: i, Reqs: []request{{ID: i, Ops: []Op{mid}}}}),
						mustEntry(t, i, &batch{Session: 2, Watermark: i, Reqs: []request{{ID: i, Ops: []Op{final}}}}))
				}
				s.applyEntries(ents)
				s.setApplied(i)
			}
			stop.Store(true)
			wg.Wait()
			if v := seen.Load(); v != nil {
				t.Fatalf("a reader saw the first of two writes of one index: %v", v)
			}
		})
	}
}

// TestUniqueVersionsPerWrite: in entries of batchFormatUniqueVersions two
// writes of one key at one raft index get versions of their own, so the
// first writer's version does not name the second writer's value: an
// If-Match with it fails, and a transaction retried after both answers
// its get from what it kept or not at all, never with the other value.
// Entries of batchFormatVersions are still applied as their writers did,
// one version for the index, so that every member agrees on them.
func TestUniqueVersionsPerWrite(t *testing.T) {
	apply := func(s *Store, index uint64, format uint8, reqs ...request) []answer {
		t.Helper()
		s.mu.Lock()
		defer s.mu.Unlock()
		s.ap.index = index
		return s.applyBatchLocked(&batch{Session: 1, Watermark: reqs[0].ID, Format: format, Reqs: reqs}, nil)
	}
	for _, tc := range []struct {
		format uint8
		unique bool
	}{{batchFormatUniqueVersions, true}, {batchFormatVersions, false}} {
		s := newBareStore(t)
		mine := apply(s, 10, tc.format, request{ID: 1, Ops: []Op{putOp("k", "A")}}, request{ID: 2, Ops: []Op{putOp("k", "B")}})
		a, b := mine[0].res.mod, mine[1].res.mod
		kv, _ := getKV(t, s, "k")
		if !tc.unique {
			if a != 10 || b != 10 || kv.ModIndex != 10 {
				t.Fatalf("format %d: versions %d and %d, key at %d; want 10 for both, as the writers gave", tc.format, a, b, kv.ModIndex)
			}
			continue
		}
		if a != 10 || b != 11 || kv.ModIndex != 11 || string(kv.Value) != "B" {
			t.Fatalf("format %d: versions %d and %d, key %q at %d; want 10 and 11, B at 11", tc.format, a, b, kv.Value, kv.ModIndex)
		}
		// The first writer's If-Match, at the next index.
		ifMatch := func(id, mod uint64, value string) bool {
			tx := &Txn{Compares: []Compare{{Key: "k", Target: CompareMod, Op: Equal, Index: mod}}, Success: []TxnOp{tput("k", value)}}
			return apply(s, 11+id, tc.format, request{ID: id, Txn: tx})[0].res.txn.Succeeded
		}
		if ifMatch(3, a, "A2") {
			t.Fatalf("If-Match %d, the first writer's version, overwrote B, which it never saw", a)
		}
		if !ifMatch(4, b, "B2") {
			t.Fatalf("If-Match %d, B's version, failed", b)
		}
		// The next index's first write goes on past the versions given.
		if kv, _ := getKV(t, s, "k"); kv.ModIndex != 15 || string(kv.Value) != "B2" {
			t.Fatalf("after B's If-Match at index 15: %+v; want B2 at 15", kv)
		}
		mine = apply(s, 16, tc.format, request{ID: 5, Ops: []Op{putOp("k", "C")}}, request{ID: 6, Ops: []Op{putOp("k", "D")}})
		if mine[0].res.mod != 16 || mine[1].res.mod != 17 {
			t.Fatalf("versions %d and %d at index 16, want 16 and 17", mine[0].res.mod, mine[1].res.mod)
		}
		if mine = apply(s, 17, tc.format, request{ID: 7, Ops: []Op{putOp("k", "E")}}); mine[0].res.mod != 18 {
			t.Fatalf("version %d at index 17 after version 17 was given, want 18", mine[0].res.mod)
		}

		// One request's puts to one bucket share its version, which a
		// transaction answers; a key it writes twice gets another one,
		// also after a delete between.
		k2 := ""
		for i := 0; k2 == ""; i++ {
			if c := fmt.Sprint("k", i); s.bucketOf(c) == s.bucketOf("k") && c != "k" {
				k2 = c
			}
		}
		two := &Txn{Success: []TxnOp{tput("k", "F"), tput(k2, "F")}}
		if r := apply(s, 18, tc.format, request{ID: 10, Txn: two})[0].res; r.txn.ModIndex != 19 || r.mod != 19 {
			t.Fatalf("a transaction's two puts at index 18: ModIndex %d, want 19 for both", r.txn.ModIndex)
		}
		for _, ops := range [][]TxnOp{
			{tput("k", "G"), tput("k", "H")},
			{tput("k", "G"), {Type: TxnDelete, Key: "k"}, tput("k", "H")},
		} {
			r := apply(s, 19, tc.format, request{ID: 11 + uint64(len(ops)), Txn: &Txn{Success: ops}})[0].res
			kv, _ := getKV(t, s, "k")
			if r.txn.ModIndex != 0 || kv.ModIndex <= 20 || string(kv.Value) != "H" {
				t.Fatalf("%d ops writing k twice at index 19: ModIndex %d, k %q at %d; want 0 (two versions), H past 20", len(ops), r.txn.ModIndex, kv.Value, kv.ModIndex)
			}
		}

		// A retried transaction whose get fell between two writes of its
		// key, with a value too large to keep: not answered with the value
		// of the second.
		big := string(bytes.Repeat([]byte("v"), 600))
		tx := &Txn{Success: []TxnOp{tput("t", big), tget("t"), tput("t", "after")}}
		first := apply(s, 20, tc.format, request{ID: 20, Txn: tx, ClientID: "c", Seq: 1})[0].res
		retry := apply(s, 21, tc.format, request{ID: 21, Txn: tx, ClientID: "c", Seq: 1})[0].res
		if string(first.txn.Gets[0].Value) != big {
			t.Fatalf("the transaction's get answered %.10q, want its own put's value", first.txn.Gets[0].Value)
		}
		switch {
		case errors.Is(retry.err, ErrTxnResultNotKept):
		case retry.err != nil:
			t.Fatalf("the retry: %v, want its first result or ErrTxnResultNotKept", retry.err)
		case string(retry.txn.Gets[0].Value) != big:
			t.Fatalf("the retry's get answered %q, the value written after it", retry.txn.Gets[0].Value)
		}
	}
}
