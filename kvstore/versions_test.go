package kvstore

import (
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
