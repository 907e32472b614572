package kvstore

import (
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
)

// legacyKeys are the keys of the snapshots in testdata/legacy (see its
// README for how older releases wrote them).
var legacyKeys = map[string]string{
	"a": "1", "b": "two", "bin\xff\x00": "\x00\x01\xfe", "empty": "", "k/1": "v1", "k/2": "v2",
}

func readLegacy(t *testing.T, name string) []byte {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", "legacy", name))
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// checkUnversioned checks that s holds exactly keys, each at version 0
// with no TTL, in the bucket of its own.
func checkUnversioned(t *testing.T, s *Store, keys map[string]string) {
	t.Helper()
	if got := stateOf(s); !maps.Equal(got, keys) {
		t.Fatalf("keys %q, want %q", got, keys)
	}
	v := fullViewOf(s)
	for k, ver := range v.Versions {
		if ver != [3]uint64{} {
			t.Fatalf("key %q restored at versions %v, want 0", k, ver)
		}
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	for b := range s.mu.buckets {
		s.mu.buckets[b].data.Ascend(func(it item) bool {
			if s.bucketOf(it.key) != b {
				t.Errorf("key %q in bucket %d, not %d", it.key, b, s.bucketOf(it.key))
			}
			return true
		})
	}
}

// TestSnapshotFormat1: a format 1 snapshot (a plain member's keys and a
// gob header, from before buckets), as a release of that format wrote it,
// restores into a plain member of any bucket count with its keys at
// version 0 and its sessions; a shard or config group member refuses it;
// a header that does not match the keys is refused, not trusted.
func TestSnapshotFormat1(t *testing.T) {
	data := readLegacy(t, "format1-plain.snap")
	wantSessions := map[uint64]*session{7: {Watermark: 3, Applied: map[uint64]bool{3: true, 5: true}}, 9: {Watermark: 1, Applied: map[uint64]bool{}}}
	for _, cfg := range []Config{{}, {Buckets: 4}, {Buckets: 64}} {
		s := bareStore(zap.NewNop(), cfg)
		restoreFrom(t, s, data, 12)
		checkUnversioned(t, s, legacyKeys)
		if got := sessionsOf(s); !reflect.DeepEqual(got, wantSessions) {
			t.Fatalf("%+v: sessions %v, want %v", cfg, got, wantSessions)
		}
		// Written again, it is format 3 and reads back the same.
		checkRoundTrip(t, s, digestOf(s), sessionsOf(s))
		// The next write versions a key.
		applyOwn(t, s, 13, put("", 0, "a", "new"))
		if kv, _ := getKV(t, s, "a"); kv.CreateIndex != 0 || kv.ModIndex != 13 {
			t.Fatalf("a after a write: %+v", kv)
		}
	}
	path := filepath.Join(t.TempDir(), "v1.snap")
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, cfg := range []Config{{Buckets: 4, Group: 1}, {ConfigGroup: true}} {
		if err := bareStore(zap.NewNop(), cfg).restore(path, 12); !errors.Is(err, ErrSnapshotMismatch) || !strings.Contains(err.Error(), "format-1") {
			t.Fatalf("restoring format 1 into %+v: %v", cfg, err)
		}
	}

	// A stream as format 1 wrote it, of more keys.
	keys := map[string]string{}
	for i := range 500 {
		keys[fmt.Sprint("key-", i)] = fmt.Sprint(i)
	}
	s := bareStore(zap.NewNop(), Config{Buckets: 8})
	restoreFrom(t, s, writeFormat1(t, keys, nil), 3)
	checkUnversioned(t, s, keys)

	// A header that counts other keys than the stream holds.
	bad := writeFormat1Count(t, keys, 499)
	if err := os.WriteFile(path, bad, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := newBareStore(t).restore(path, 3); !errors.Is(err, ErrCorruptSnapshot) || !strings.Contains(err.Error(), "counts 499 keys") {
		t.Fatalf("a header of 499 keys over 500: %v", err)
	}
}

// TestSnapshotFormat2: a format 2 snapshot (buckets and dedup tables, no
// versions), as the release of that format wrote it, restores with its
// keys at version 0 and its dedup tables, which answer retries.
func TestSnapshotFormat2(t *testing.T) {
	data := readLegacy(t, "format2-plain-4buckets.snap")
	s := bareStore(zap.NewNop(), Config{Buckets: 4})
	restoreFrom(t, s, data, 4)
	checkUnversioned(t, s, legacyKeys)
	for _, retry := range []struct {
		client   string
		seq, was uint64
		keys     []string
	}{{"client-1", 1, 2, []string{"empty", "again", "k/1", "again"}}, {"client-1", 2, 4, []string{"k/1", "again"}}, {"client-2", 4, 3, []string{"k/2", "again"}}} {
		r := applyOwn(t, s, 10+retry.seq, put(retry.client, retry.seq, retry.keys...))
		if r.err != nil || !r.dup || r.index != retry.was {
			t.Fatalf("retry of %s seq %d: %+v, want a duplicate of index %d", retry.client, retry.seq, r, retry.was)
		}
	}
	wantValue(t, s, "k/1", "v1")
	wantValue(t, s, "k/2", "v2")
	if err := bareStore(zap.NewNop(), Config{}).restore(writeTemp(t, data), 4); !errors.Is(err, ErrSnapshotMismatch) {
		t.Fatalf("format 2 of 4 buckets into a store of 1: %v", err)
	}
}

// TestBucketDataForm1: bucket data as an old owner of the release before
// versions exported it decodes with its keys at version 0 and its dedup
// table, and encodes again in the current form.
func TestBucketDataForm1(t *testing.T) {
	var d BucketData
	if err := d.UnmarshalBinary(readLegacy(t, "bucket1-b2-of-4.bin")); err != nil {
		t.Fatal(err)
	}
	if d.Bucket != 2 || d.Version != 5 || d.Len() != 3 || d.dedup.len() != 1 {
		t.Fatalf("decoded bucket %d version %d, %d keys, %d clients", d.Bucket, d.Version, d.Len(), d.dedup.len())
	}
	d.data.Ascend(func(it item) bool {
		if it.create != 0 || it.mod != 0 || it.key != string(it.valueBytes()) {
			t.Fatalf("key %+v", it)
		}
		return true
	})
	if e, ok, _ := d.dedup.lookup("mover", 1); !ok || e.index != 7 {
		t.Fatalf("dedup entry %+v, %v", e, ok)
	}
	again, err := d.MarshalBinary()
	if err != nil || !strings.HasPrefix(string(again), bucketMagic) {
		t.Fatalf("re-encoded: %q, %v", again[:min(len(again), 20)], err)
	}
}

// TestSnapshotKeepsVersionsTTLsAndTxnResults: format 3 carries each key's
// versions and TTL, and a transaction's kept result, so a retry of the
// transaction on a member that caught up by snapshot is answered as the
// first time, its gets included.
func TestSnapshotKeepsVersionsTTLsAndTxnResults(t *testing.T) {
	s := newBareStore(t)
	applyOwn(t, s, 1, request{Ops: []Op{{Type: OpPut, Key: "a", Value: []byte("1"), TTL: time.Hour}}})
	applyOwn(t, s, 2, put("", 0, "a", "2", "b", "1"))
	txn := Txn{Compares: []Compare{cmpMod("a", Equal, 2)}, Success: []TxnOp{tget("a"), {Type: TxnPut, Key: "c", Value: []byte("x"), TTL: time.Second}}}
	first := applyOwn(t, s, 3, request{Txn: &txn, ClientID: "c", Seq: 1})
	if first.err != nil || !first.txn.Succeeded {
		t.Fatalf("first: %+v", first)
	}
	r := newBareStore(t)
	restoreFrom(t, r, snapshotOf(t, s), 3)
	want := fullViewOf(s)
	if got := fullViewOf(r); !reflect.DeepEqual(got, want) {
		t.Fatalf("restored %+v\nwant %+v", got, want)
	}
	if want.Versions["a"] != [3]uint64{1, 2, 0} || want.Versions["c"] != [3]uint64{3, 3, uint64(time.Second)} {
		t.Fatalf("versions %v", want.Versions)
	}
	retry := applyOwn(t, r, 4, request{Txn: &txn, ClientID: "c", Seq: 1})
	w := *first.txn
	w.Duplicate = true
	if retry.err != nil || !retry.dup || !reflect.DeepEqual(*retry.txn, w) {
		t.Fatalf("retry after the snapshot: %v %+v, want %+v", retry.err, retry.txn, w)
	}
}

func writeTemp(t *testing.T, data []byte) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "snap")
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}
