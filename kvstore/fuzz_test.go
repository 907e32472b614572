package kvstore

import (
	"bytes"
	"encoding/binary"
	"encoding/gob"
	"errors"
	"fmt"
	"hash/crc32"
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/raftkv/raftkv/raftnode"
	"github.com/raftkv/raftkv/shardmap"
	"go.uber.org/zap"
)

// Run these as fuzzers with, for example:
//
//	go test -run='^$' -fuzz=FuzzApplyEntry -fuzztime=60s ./kvstore/
//
// Without -fuzz, go test runs their seeds (f.Add and testdata/fuzz) as tests.

// fuzzStore is newBareStore (no node, no goroutines) logging nothing, so
// fuzzing is not slowed by logging undecodable entries, and usable by
// testing.F.
func fuzzStore() *Store { return bareStore(zap.NewNop(), Config{}) }

// seedState applies a few entries from two sessions, one of them with a
// watermark and a duplicate, so the state has keys and sessions to lose.
func seedState(t testing.TB, s *Store) {
	entries := []*batch{
		{Session: 3, Watermark: 1, Reqs: []request{{ID: 1, Ops: []Op{{Type: OpPut, Key: "a", Value: []byte("1")}}}}},
		{Session: 3, Watermark: 2, Reqs: []request{{ID: 2, Ops: []Op{
			{Type: OpPut, Key: "b/c", Value: []byte{0, 0xff}}, {Type: OpPut, Key: "d", Value: []byte{}},
		}}}},
		{Session: 5, Watermark: 7, Reqs: []request{{ID: 7, Ops: []Op{{Type: OpPut, Key: "e", Value: []byte("5")}}}, {ID: 9}}},
		{Session: 3, Watermark: 2, Reqs: []request{{ID: 2, Ops: []Op{{Type: OpDelete, Key: "a"}}}}}, // duplicate: ignored
	}
	for i, b := range entries {
		data, err := encodeBatch(b)
		if err != nil {
			t.Fatal(err)
		}
		s.applyEntry(raftnode.Entry{Index: uint64(i + 1), Data: data})
	}
	s.setApplied(uint64(len(entries)))
}

// digest is Store.Digest as one comparable value.
type digest struct {
	index uint64
	keys  int
	hash  string
}

func digestOf(s *Store) digest {
	i, k, h := s.Digest()
	return digest{i, k, h}
}

// state is d without its index: an entry that changes nothing still
// moves the index the state is at.
func (d digest) state() digest { return digest{keys: d.keys, hash: d.hash} }

// sessionsOf deep-copies the store's sessions.
func sessionsOf(s *Store) map[uint64]*session {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make(map[uint64]*session, len(s.mu.sessions))
	for id, ss := range s.mu.sessions {
		out[id] = &session{Watermark: ss.Watermark, Applied: maps.Clone(ss.Applied)}
	}
	return out
}

// stateOf returns the store's keys and values.
func stateOf(s *Store) map[string]string {
	s.mu.RLock()
	defer s.mu.RUnlock()
	m := map[string]string{}
	for _, b := range s.mu.buckets {
		b.data.Ascend(func(it item) bool {
			m[it.key] = string(it.valueBytes())
			return true
		})
	}
	return m
}

func encodeSeed(f *testing.F, b *batch) []byte {
	data, err := encodeBatch(b)
	if err != nil {
		f.Fatal(err)
	}
	return data
}

// seedBatch is the first of batchSeeds, decoded.
var seedBatch = &batch{Session: 3, Watermark: 2, Reqs: []request{
	{ID: 2, Ops: []Op{{Type: OpPut, Key: "a/b\x00\xff", Value: []byte{0, 0x80, 0xff}}, {Type: OpDelete, Key: "d"}}},
	{ID: 4, Ops: []Op{{Type: OpPut, Key: "k", Value: []byte("v")}, {Type: 9, Key: "unknown-op"}}},
	{ID: 1, Ops: []Op{{Type: OpPut, Key: "below-watermark", Value: []byte("x")}}},
}}

// batchSeeds are well-formed entries and near misses of them; the first
// encodes seedBatch.
func batchSeeds(f *testing.F) [][]byte {
	good := encodeSeed(f, seedBatch)
	return [][]byte{
		good,
		good[:len(good)/2],
		append(bytes.Clone(good), 0),
		encodeSeed(f, &batch{Session: 5, Watermark: 100, Reqs: []request{{ID: 100, Ops: []Op{{Type: OpPut, Key: "e", Value: nil}}}}}),
		encodeSeed(f, &batch{Session: 3, Watermark: 1, Reqs: []request{{ID: 5}, {ID: 5, Ops: []Op{{Type: OpDelete, Key: "e"}}}}}),
		encodeSeed(f, &batch{}),
		{},
		[]byte("not gob"),
		encodeSeed(f, &batch{Session: 6, Watermark: 1, Reqs: []request{
			{ID: 1, ClientID: "client", Seq: 3, Ops: []Op{{Type: OpPut, Key: "exactly-once", Value: []byte("1")}}},
			{ID: 2, ClientID: "client", Seq: 3, Ops: []Op{{Type: OpPut, Key: "exactly-once", Value: []byte("2")}}},
			{ID: 3, ClientID: "bad id", Seq: 1, Ops: []Op{{Type: OpPut, Key: "refused", Value: []byte("x")}}},
		}}),
		encodeSeed(f, &batch{Session: 7, Watermark: 1, Reqs: []request{
			{ID: 1, Ctl: &control{Kind: ctlConfig, Config: marshalConfig(&shardmap.Config{Version: 1, Buckets: []uint64{1}, Groups: map[uint64][]string{1: {"http://a"}}})}},
			{ID: 2, Ctl: &control{Kind: ctlInstall, Bucket: 0, Version: 1, Data: []byte(bucketMagic)}},
			{ID: 3, ClientID: "admin", Seq: 1, Ctl: &control{Kind: ctlConfigOp, Op: &wireConfigOp{Join: []wireGroup{{GID: 2, Servers: []string{"http://b"}}}}}},
			{ID: 4, Ctl: &control{Kind: ctlConfigOp, Op: &wireConfigOp{Move: &MoveOp{Bucket: 1, GID: 2}}}, Ops: []Op{{Type: OpPut, Key: "ignored"}}},
		}}),
		encodeSeed(f, &batch{Session: 9, Watermark: 1, Reqs: []request{
			{ID: 1, Ops: []Op{{Type: OpPut, Key: "x", Value: []byte("1"), TTL: 1e9}, {Type: OpExpire, Key: "a", IfModIndex: 1}}},
			{ID: 2, Ops: []Op{{Type: OpExpire, Key: "x", IfModIndex: 0}, {Type: OpExpire, Key: "b/c"}, {Type: OpExpire, Key: "e", IfModIndex: 3}}},
		}}),
		encodeSeed(f, &batch{Session: 10, Watermark: 1, Reqs: []request{
			{ID: 1, Range: &rangeDelete{Start: "b", End: "d"}},
			{ID: 2, ClientID: "rd", Seq: 1, Range: &rangeDelete{Start: "e"}},
			{ID: 3, Range: &rangeDelete{Start: "z", End: "a"}},
			{ID: 4, Ops: []Op{{Type: OpPut, Key: "b", Value: []byte("after")}}},
		}}),
		encodeSeed(f, &batch{Session: 11, Watermark: 1, Reqs: []request{
			{ID: 1, Hash: true},
			{ID: 2, Hash: true, Ops: []Op{{Type: OpPut, Key: "ignored", Value: []byte("x")}}},
			{ID: 3, Ops: []Op{{Type: OpPut, Key: "h", Value: []byte("after")}}},
		}}),
		encodeSeed(f, &batch{Session: 8, Watermark: 1, Reqs: []request{
			{ID: 1, Txn: &Txn{Compares: []Compare{{Key: "a", Target: CompareExists, Op: Equal, Exists: true}, {Key: "e", Target: CompareMod, Op: Less, Index: 9}},
				Success: []TxnOp{{Type: TxnPut, Key: "t", Value: []byte("1")}, {Type: TxnGet, Key: "a"}, {Type: TxnDelete, Key: "e"}},
				Failure: []TxnOp{{Type: TxnPut, Key: "f", Value: []byte("0")}}}},
			{ID: 2, ClientID: "tx", Seq: 1, Txn: &Txn{Compares: []Compare{{Key: "t", Target: CompareValue, Op: Greater, Value: []byte("0")}},
				Success: []TxnOp{{Type: TxnPut, Key: "t", Value: []byte("2"), TTL: 1e9}}}},
			{ID: 3, ClientID: "tx", Seq: 1, Txn: &Txn{Success: []TxnOp{{Type: TxnPut, Key: "dup", Value: []byte("x")}}}},
			{ID: 4, Txn: &Txn{Compares: []Compare{{Key: "", Target: CompareMod, Op: Equal}}}},
		}}),
	}
}

// FuzzDecodeBatch: neither decodeBatch nor the apply loop's entryDecoder
// panics on arbitrary bytes, and they agree: a member whose entryDecoder is
// primed by earlier entries decides exactly as a member that just restarted
// (a fresh gob decoder), whether the entry decodes and to what, every time
// it sees it; a batch that decodes encodes again to the same batch.
func FuzzDecodeBatch(f *testing.F) {
	seeds := batchSeeds(f)
	for _, s := range seeds {
		f.Add(s)
	}
	warm := seeds[0] // primes the decoder for the preamble of this binary
	f.Fuzz(func(t *testing.T, data []byte) {
		want, wantErr := decodeBatch(data)
		d := newEntryDecoder()
		if _, err := d.decode(warm); err != nil {
			t.Fatal(err)
		}
		for i := range 2 { // the second time data may have primed a decoder
			got, err := d.decode(data)
			checkSameDecision(t, fmt.Sprintf("entryDecoder, pass %d", i+1), got, err, want, wantErr)
			if b, err := d.decode(warm); err != nil || !sameBatch(b, seedBatch) {
				t.Fatalf("pass %d: a good entry after this one decodes to %+v, %v", i+1, b, err)
			}
		}
		if wantErr != nil {
			return
		}
		again, err := encodeBatch(want)
		if err != nil {
			t.Fatalf("a decoded batch does not encode: %v", err)
		}
		b2, err := decodeBatch(again)
		if err != nil {
			t.Fatalf("a re-encoded batch does not decode: %v", err)
		}
		if !sameBatch(want, b2) {
			t.Fatalf("round trip changed the batch: %+v -> %+v", want, b2)
		}
	})
}

// FuzzEntryDecoder feeds a sequence of entries (a, b, a, c, b) through one
// entryDecoder: each decision must be gob's own on that entry alone,
// whatever came before, or members with different histories (one restarted,
// one not) would apply different things.
func FuzzEntryDecoder(f *testing.F) {
	seeds := batchSeeds(f)
	other := encodeOther(f)
	f.Add(seeds[0], seeds[3], seeds[4])
	f.Add(seeds[1], seeds[0], seeds[2])
	f.Add(other, seeds[0], other[:len(other)-2])
	f.Add([]byte{}, seeds[5], seeds[7])
	f.Fuzz(func(t *testing.T, a, b, c []byte) {
		d := newEntryDecoder()
		for i, data := range [][]byte{a, b, a, c, b} {
			want, wantErr := decodeBatch(data)
			got, err := d.decode(data)
			checkSameDecision(t, fmt.Sprintf("entry %d of the sequence", i), got, err, want, wantErr)
		}
	})
}

// encodeOther encodes a batch under another type name, as another binary's
// type preamble would differ.
func encodeOther(f *testing.F) []byte {
	type otherBatch struct {
		Session, Watermark uint64
		Reqs               []request
	}
	var buf bytes.Buffer
	if err := gob.NewEncoder(&buf).Encode(otherBatch{Session: 99, Reqs: []request{{ID: 1, Ops: []Op{{Type: OpPut, Key: "o"}}}}}); err != nil {
		f.Fatal(err)
	}
	return buf.Bytes()
}

func checkSameDecision(t *testing.T, what string, got *batch, err error, want *batch, wantErr error) {
	t.Helper()
	switch {
	case (err == nil) != (wantErr == nil):
		t.Fatalf("%s: decoder says %v, a fresh gob decoder says %v", what, err, wantErr)
	case err == nil && !sameBatch(got, want):
		t.Fatalf("%s: decoder gives %+v, a fresh gob decoder %+v", what, got, want)
	}
}

// sameBatch compares batches, treating nil and empty values alike (gob does).
func sameBatch(a, b *batch) bool {
	if a.Session != b.Session || a.Watermark != b.Watermark || len(a.Reqs) != len(b.Reqs) {
		return false
	}
	for i := range a.Reqs {
		ra, rb := a.Reqs[i], b.Reqs[i]
		if ra.ID != rb.ID || len(ra.Ops) != len(rb.Ops) || ra.ClientID != rb.ClientID || ra.Seq != rb.Seq || !reflect.DeepEqual(ra.Ctl, rb.Ctl) {
			return false
		}
		for j := range ra.Ops {
			oa, ob := ra.Ops[j], rb.Ops[j]
			if oa.Type != ob.Type || oa.Key != ob.Key || !bytes.Equal(oa.Value, ob.Value) {
				return false
			}
		}
	}
	return true
}

// FuzzApplyEntry sends arbitrary bytes as a committed entry through
// applyEntry on a store that already holds keys and sessions:
//   - it never panics;
//   - an entry that does not decode changes nothing (keys, values, sessions);
//   - one that decodes has exactly the effect of the at-most-once model
//     below, the same on two replicas, and applying it again changes nothing.
//
// Versions are the entry's index in the model; the store gives a bucket's
// write at least one more than the bucket's last version (a floor that a
// moved bucket carries), which is the index for every index a raft log can
// commit after the seeded ones. Older indexes are never applied.
func FuzzApplyEntry(f *testing.F) {
	for _, s := range batchSeeds(f) {
		f.Add(uint64(10), s)
	}
	f.Fuzz(func(t *testing.T, index uint64, data []byte) {
		// A committed entry's index is above every index applied before it
		// (seedState applied 1-4) and below 2^63 (applyIndex refuses more).
		index = 5 + index%(1<<40)
		s := fuzzStore()
		seedState(t, s)
		beforeDigest, beforeState, beforeSessions, beforeVersions := digestOf(s), stateOf(s), sessionsOf(s), versionsOf(s)

		s.applyEntry(raftnode.Entry{Index: index, Data: data})

		b, err := decodeBatch(data)
		if err != nil {
			if d := digestOf(s); d.state() != beforeDigest.state() || !reflect.DeepEqual(sessionsOf(s), beforeSessions) {
				t.Fatalf("an undecodable entry (%v) changed the state: digest %+v -> %+v", err, beforeDigest, d)
			}
			return
		}
		wantVersions := maps.Clone(beforeVersions)
		if got, want := stateOf(s), applyModel(beforeState, beforeSessions, b, index, wantVersions); !maps.Equal(got, want) {
			t.Fatalf("state after %+v:\n got %q\nwant %q", b, got, want)
		}
		if got := versionsOf(s); !maps.Equal(got, wantVersions) {
			t.Fatalf("versions after %+v:\n got %v\nwant %v", b, got, wantVersions)
		}

		replica := fuzzStore()
		seedState(t, replica)
		replica.dec = newEntryDecoder() // as if restarted from a snapshot of the same state
		replica.applyEntry(raftnode.Entry{Index: index, Data: data})
		afterDigest, afterSessions := digestOf(s), sessionsOf(s)
		if d := digestOf(replica); d != afterDigest || !reflect.DeepEqual(sessionsOf(replica), afterSessions) {
			t.Fatalf("two replicas differ after the same entry: %+v vs %+v", afterDigest, d)
		}

		s.applyEntry(raftnode.Entry{Index: index + 1, Data: data})
		if d := digestOf(s); d.state() != afterDigest.state() || !reflect.DeepEqual(sessionsOf(s), afterSessions) {
			t.Fatalf("applying the entry a second time changed the state: %+v -> %+v", afterDigest, d)
		}
	})
}

// applyModel is the specification of applying b at index to a plain
// member whose dedup tables are empty: in order, each request whose id is
// neither below its session's watermark nor already applied is processed
// once: a control operation is refused; a write with an invalid client id
// is refused, and one whose (client, seq) an earlier request of b had is a
// duplicate, or too old for the window of 1024 seqs; a malformed
// transaction is refused; any other write applies all its ops in order,
// an expiry deletes its key if the key is still at its version, and
// unknown op types do nothing; a transaction applies the branch its
// compares choose.
func applyModel(state map[string]string, sessions map[uint64]*session, b *batch, index uint64, versions map[string][2]uint64) map[string]string {
	state = maps.Clone(state)
	var watermark uint64
	applied := map[uint64]bool{}
	if ss := sessions[b.Session]; ss != nil {
		watermark, applied = ss.Watermark, maps.Clone(ss.Applied)
	}
	type window struct {
		seqs  []uint64 // ascending
		floor uint64
	}
	clients := map[string]*window{}
	// A batch of a writer that keeps no versions (an older Format) leaves
	// the keys it writes at version 0, a present key's CreateIndex aside
	// (applyState.versioned).
	mod := index
	if b.Format < batchFormatVersions {
		mod = 0
	}
	put := func(k, v string) {
		ver, ok := versions[k]
		if _, present := state[k]; !present || !ok {
			ver[0] = mod
		}
		versions[k] = [2]uint64{ver[0], mod}
		state[k] = v
	}
	del := func(k string) {
		delete(state, k)
		delete(versions, k)
	}
	for _, r := range b.Reqs {
		if r.ID < watermark || applied[r.ID] {
			continue
		}
		applied[r.ID] = true
		if r.Hash || r.Ctl != nil || r.Txn != nil && r.Txn.check() != nil {
			continue // a hash request changes nothing, whatever else it carries
		}
		if rd := r.Range; r.Txn == nil && rd != nil {
			// A range delete keeps no dedup entry: its client id is not
			// looked at.
			if rd.End == "" || rd.End > rd.Start {
				for _, k := range slices.Sorted(maps.Keys(state)) {
					if k >= rd.Start && (rd.End == "" || k < rd.End) {
						del(k)
					}
				}
			}
			continue
		}
		if r.ClientID != "" {
			if !validClientID(r.ClientID) || r.Seq == 0 {
				continue
			}
			w := clients[r.ClientID]
			if w == nil {
				w = &window{}
				clients[r.ClientID] = w
			}
			if slices.Contains(w.seqs, r.Seq) || r.Seq < w.floor {
				continue
			}
			w.seqs = append(w.seqs, r.Seq)
			slices.Sort(w.seqs)
			if len(w.seqs) > 1024 {
				w.floor, w.seqs = w.seqs[0]+1, w.seqs[1:]
			}
		}
		if r.Txn != nil {
			ok := true
			for _, c := range r.Txn.Compares {
				v, present := state[c.Key]
				ver := versions[c.Key]
				var cmp int
				switch c.Target {
				case CompareValue:
					if !present {
						ok = false
						continue
					}
					cmp = strings.Compare(v, string(c.Value))
				case CompareMod:
					cmp = cmpUint(ver[1], c.Index)
				case CompareCreate:
					cmp = cmpUint(ver[0], c.Index)
				case CompareExists:
					if present != c.Exists {
						cmp = 1
					}
				}
				ok = ok && (c.Op == Equal && cmp == 0 || c.Op == NotEqual && cmp != 0 || c.Op == Greater && cmp > 0 || c.Op == Less && cmp < 0)
			}
			ops := r.Txn.Success
			if !ok {
				ops = r.Txn.Failure
			}
			for _, op := range ops {
				switch op.Type {
				case TxnPut:
					put(op.Key, string(op.Value))
				case TxnDelete:
					del(op.Key)
				}
			}
			continue
		}
		for _, op := range r.Ops {
			switch op.Type {
			case OpPut:
				put(op.Key, string(op.Value))
			case OpDelete:
				del(op.Key)
			case OpExpire:
				if _, present := state[op.Key]; present && op.IfModIndex != 0 && versions[op.Key][1] == op.IfModIndex {
					del(op.Key)
				}
			}
		}
	}
	return state
}

func cmpUint(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// versionsOf returns the versions (create, mod) of the store's keys.
func versionsOf(s *Store) map[string][2]uint64 {
	s.mu.RLock()
	defer s.mu.RUnlock()
	m := map[string][2]uint64{}
	for _, b := range s.mu.buckets {
		b.data.Ascend(func(it item) bool {
			m[it.key] = [2]uint64{it.createIndex(), it.mod}
			return true
		})
	}
	return m
}

// snapshotOf returns the snapshot stream of s's current state.
func snapshotOf(t testing.TB, s *Store) []byte {
	write, err := s.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := write(&buf); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// FuzzSnapshotRestore restores arbitrary bytes as a snapshot data file, the
// way the apply loop does (restore, then setApplied), into a store of one
// of the kinds of seededStore that already holds a state:
//   - it never panics;
//   - bytes it refuses give ErrCorruptSnapshot (or ErrSnapshotMismatch, for
//     a well-formed snapshot of another kind of store) and leave the state
//     as it was;
//   - bytes it accepts give a consistent state: every session has an
//     Applied set, and the state snapshots and restores again to the same
//     state.
func FuzzSnapshotRestore(f *testing.F) {
	var empty bytes.Buffer
	if err := writeSnapshot(&empty, &snapState{nbuckets: 1, buckets: []bucket{{data: newTree()}}}); err != nil {
		f.Fatal(err)
	}
	for kind := range storeKinds {
		valid := snapshotOf(f, seededStore(f, kind))
		for _, s := range [][]byte{
			valid, empty.Bytes(),
			valid[:len(valid)-1],                  // checksum cut short
			append(bytes.Clone(valid), "tail"...), // bytes after the checksum
			[]byte(snapshotMagic),
			append([]byte(snapshotMagic), 0xff, 0xff, 0xff, 0xff, 0x03), // a 1 GiB field, absent
			{},
		} {
			for into := range storeKinds {
				f.Add(uint8(into), false, s)
			}
			f.Add(uint8(kind), true, s)
		}
	}
	// Snapshots of older formats, as their releases wrote them.
	for _, name := range []string{"format1-plain.snap", "format2-plain-4buckets.snap"} {
		data, err := os.ReadFile(filepath.Join("testdata", "legacy", name))
		if err != nil {
			f.Fatal(err)
		}
		for into := range storeKinds {
			f.Add(uint8(into), false, data)
			f.Add(uint8(into), true, data[:len(data)/2])
		}
	}
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, kind uint8, fixSum bool, data []byte) {
		if fixSum {
			data = withChecksum(data)
		}
		path := filepath.Join(dir, "fuzz.snap.db")
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatal(err)
		}
		s := seededStore(t, int(kind)%len(storeKinds))
		before := fullViewOf(s)
		const index = 40
		if err := s.restore(path, index); err != nil {
			if !errors.Is(err, ErrCorruptSnapshot) && !errors.Is(err, ErrSnapshotMismatch) {
				t.Fatalf("restore refused the bytes with %v, not ErrCorruptSnapshot", err)
			}
			if after := fullViewOf(s); !reflect.DeepEqual(after, before) {
				t.Fatalf("a refused snapshot changed the state: %+v -> %+v", before, after)
			}
			return
		}
		s.setApplied(index)
		for id, ss := range sessionsOf(s) {
			if ss.Applied == nil {
				t.Fatalf("restored session %d has a nil Applied set", id)
			}
		}
		checkRoundTrip(t, s, digestOf(s), sessionsOf(s))
	})
}

// checkRoundTrip snapshots s, restores the stream into a fresh store of
// the same configuration as the apply loop would, and checks it has want,
// wantSessions and every other part of s's state.
func checkRoundTrip(t *testing.T, s *Store, want digest, wantSessions map[uint64]*session) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "round-trip.snap.db")
	if err := os.WriteFile(path, snapshotOf(t, s), 0o644); err != nil {
		t.Fatal(err)
	}
	r := bareStore(zap.NewNop(), s.cfg)
	if err := r.restore(path, want.index); err != nil {
		t.Fatalf("restoring a snapshot of the state: %v", err)
	}
	r.setApplied(want.index)
	if d := digestOf(r); d != want {
		t.Fatalf("restored digest %+v, want %+v", d, want)
	}
	if got := sessionsOf(r); !reflect.DeepEqual(got, wantSessions) {
		t.Fatalf("restored sessions %v, want %v", got, wantSessions)
	}
	if got, want := fullViewOf(r), fullViewOf(s); !reflect.DeepEqual(got, want) {
		t.Fatalf("restored state %+v, want %+v", got, want)
	}
}

// FuzzSnapshotRoundTrip builds a state from a recipe of writes, captures it
// with Snapshot, keeps applying more writes, and then writes and restores
// the capture into a fresh store: the restored Digest and sessions are
// those of the moment of capture.
func FuzzSnapshotRoundTrip(f *testing.F) {
	f.Add([]byte("a1b2c3"), []byte("a9"))
	f.Add([]byte{0x00, 'k', 0xff, 0x01, 'k'}, []byte{0x41, 'x', 3, 'v', 'v', 'v'})
	f.Add([]byte{}, []byte("\x80key\x00value"))
	f.Fuzz(func(t *testing.T, before, after []byte) {
		s := fuzzStore()
		index := applyRecipe(t, s, before, 0)
		s.setApplied(index)
		want, wantSessions := digestOf(s), sessionsOf(s)
		write, err := s.Snapshot()
		if err != nil {
			t.Fatal(err)
		}
		s.setApplied(applyRecipe(t, s, after, index))

		var buf bytes.Buffer
		if err := write(&buf); err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(t.TempDir(), "capture.snap.db")
		if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		r := fuzzStore()
		if err := r.restore(path, want.index); err != nil {
			t.Fatalf("restoring the capture: %v", err)
		}
		r.setApplied(want.index)
		if d := digestOf(r); d != want {
			t.Fatalf("restored digest %+v, want the captured %+v", d, want)
		}
		if got := sessionsOf(r); !reflect.DeepEqual(got, wantSessions) {
			t.Fatalf("restored sessions %v, want the captured %v", got, wantSessions)
		}
		checkRoundTrip(t, s, digestOf(s), sessionsOf(s)) // and the live state too
	})
}

// applyRecipe turns recipe into entries and applies them from index+1 on;
// it returns the last index. Each write starts with a control byte c:
// session 1+c>>6, a put if c&1 == 0 (else a delete), a key of 1+(c>>1)&7
// bytes, for a put a length byte and a value of at most 63 bytes; c&0x10
// applies the entry twice, as a re-proposed write would be.
func applyRecipe(t *testing.T, s *Store, recipe []byte, index uint64) uint64 {
	take := func(n int) []byte {
		n = min(n, len(recipe))
		b := recipe[:n]
		recipe = recipe[n:]
		return b
	}
	nextID := map[uint64]uint64{}
	for len(recipe) > 0 {
		c := take(1)[0]
		sess := 1 + uint64(c>>6)
		op := Op{Type: OpPut, Key: string(take(1 + int(c>>1&7)))}
		if c&1 != 0 {
			op.Type = OpDelete
		} else if n := take(1); len(n) == 1 {
			op.Value = bytes.Clone(take(int(n[0] & 63)))
		}
		nextID[sess]++
		id := nextID[sess]
		e := mustEntry(t, index+1, &batch{Session: sess, Watermark: id, Reqs: []request{{ID: id, Ops: []Op{op}}}})
		s.applyEntry(e)
		index++
		if c&0x10 != 0 {
			e.Index = index + 1
			s.applyEntry(e)
			index++
		}
	}
	return index
}

// FuzzBucketDataUnmarshal decodes arbitrary bytes as a pulled bucket:
// never a panic; what decodes encodes again to bytes that decode to the
// same, and installs as the data of a bucket being pulled.
func FuzzBucketDataUnmarshal(f *testing.F) {
	d := &BucketData{Bucket: 2, Version: 3, data: newTree(), dedup: newDedupTable()}
	for _, k := range []string{"a", "b\x00", "c/d"} {
		d.data.ReplaceOrInsert(newItem(k, []byte(k+"-value")))
	}
	d.data.ReplaceOrInsert(newKV("e", []byte("ttl"), 3, 8, time.Minute))
	d.dedup.record("client", dedupEntry{seq: 4, index: 9}, 9, 8, 8)
	d.dedup.record("client", dedupEntry{seq: 5, index: 10, txn: &storedTxn{succeeded: true, kept: keptValues,
		gets: []storedGet{{found: true, create: 3, mod: 8, ttl: time.Minute, value: []byte("ttl")}, {}}}}, 10, 8, 8)
	valid, err := d.MarshalBinary()
	if err != nil {
		f.Fatal(err)
	}
	empty, err := (&BucketData{data: newTree()}).MarshalBinary()
	if err != nil {
		f.Fatal(err)
	}
	form1, err := os.ReadFile(filepath.Join("testdata", "legacy", "bucket1-b2-of-4.bin"))
	if err != nil {
		f.Fatal(err)
	}
	for _, s := range [][]byte{valid, empty, valid[:len(valid)-1], append(bytes.Clone(valid), 0), []byte(bucketMagic), {}, form1} {
		f.Add(false, s)
		f.Add(true, s)
	}
	f.Fuzz(func(t *testing.T, fixSum bool, data []byte) {
		if fixSum {
			data = withChecksum(data)
		}
		var got BucketData
		if err := got.UnmarshalBinary(data); err != nil {
			if !errors.Is(err, ErrBadShardOp) {
				t.Fatalf("refused with %v, not ErrBadShardOp", err)
			}
			return
		}
		again, err := got.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		var back BucketData
		if err := back.UnmarshalBinary(again); err != nil {
			t.Fatalf("re-encoded data does not decode: %v", err)
		}
		if again2, _ := back.MarshalBinary(); !bytes.Equal(again, again2) {
			t.Fatal("decoding and encoding again changed the data")
		}
		// It installs wherever its keys belong: a store with one bucket
		// takes every key.
		s := bareStore(zap.NewNop(), Config{Buckets: 1, Group: 1, DedupWindow: 2, DedupClients: 2})
		s.mu.shard.config.Version, s.mu.shard.status[0] = got.Version, Pulling
		got.Bucket = 0
		r := applyOwn(t, s, 1, request{Ctl: &control{Kind: ctlInstall, Bucket: 0, Version: got.Version, Data: mustMarshal(t, &got)}})
		if r.err != nil {
			t.Fatalf("install: %v", r.err)
		}
		if s.Len() != got.Len() || s.mu.buckets[0].dedup.len() > 2 {
			t.Fatalf("installed %d keys and %d clients, from %d keys", s.Len(), s.mu.buckets[0].dedup.len(), got.Len())
		}
		checkRoundTrip(t, s, digestOf(s), sessionsOf(s))
	})
}

// withChecksum replaces the last 4 bytes of data with the CRC-32C of the
// bytes before them, so that a fuzzer gets past the checksum to the
// decoding behind it.
func withChecksum(data []byte) []byte {
	if len(data) < 4 {
		return data
	}
	out := bytes.Clone(data)
	binary.BigEndian.PutUint32(out[len(out)-4:], crc32.Checksum(out[:len(out)-4], crcTable))
	return out
}
