package kvstore

import (
	"bufio"
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

	"github.com/raftkv/raftkv/shardmap"
	"go.uber.org/zap"
)

// storeKinds are the configurations seededStore builds: a plain member of
// one bucket and of several, a shard group member, a config group member.
var storeKinds = []Config{
	{},
	{Buckets: 4},
	{Buckets: 4, Group: 1},
	{Buckets: 4, ConfigGroup: true},
}

// seededStore is a bare store of storeKinds[kind] holding a state of
// every part its kind has: keys in several buckets, sessions, dedup
// tables, a shard state mid-migration, a config history.
func seededStore(tb testing.TB, kind int) *Store {
	s := bareStore(zap.NewNop(), storeKinds[kind])
	index := uint64(0)
	next := func(req request) result {
		index++
		return applyOwn(tb, s, index, req)
	}
	if s.mode == modeConfig {
		next(configOp("admin", 1, ConfigOp{Join: map[uint64][]string{1: {"http://a"}}}))
		next(configOp("admin", 2, ConfigOp{Join: map[uint64][]string{2: {"http://b"}}}))
		next(configOp("", 0, ConfigOp{Move: &MoveOp{Bucket: 1, GID: 2}}))
		s.setApplied(index)
		return s
	}
	g := map[uint64][]string{1: {"http://a"}, 2: {"http://b"}}
	if s.mode == modeShard {
		c1 := shardmap.Config{Version: 1, Buckets: []uint64{1, 1, 1, 2}, Groups: g}
		next(request{Ctl: &control{Kind: ctlConfig, Config: marshalConfig(&c1)}})
		next(request{Ctl: &control{Kind: ctlJoined}})
	}
	for i := range 12 { // in a shard group, those of bucket 3 are refused
		next(put(fmt.Sprint("client-", i%3), uint64(1+i/3), fmt.Sprint("k", i), fmt.Sprint(i)))
	}
	// A transaction with a TTL and a get, remembered with its result.
	next(request{ClientID: "client-0", Seq: 10, Txn: &Txn{Compares: []Compare{{Key: "k0", Target: CompareExists, Op: Equal, Exists: true}},
		Success: []TxnOp{{Type: TxnPut, Key: "k1", Value: []byte("t"), TTL: time.Minute}, {Type: TxnGet, Key: "k0"}}}})
	seedState(tb, s) // entries of other sessions
	index = max(index, s.AppliedIndex())
	if s.mode == modeShard {
		c2 := shardmap.Config{Version: 2, Buckets: []uint64{1, 2, 1, 1}, Groups: g}
		next(request{Ctl: &control{Kind: ctlConfig, Config: marshalConfig(&c2)}})
	}
	s.setApplied(index)
	return s
}

// fullView is every part of a store's state, for comparing two.
type fullView struct {
	Digest   digest
	Keys     map[string]string
	Sessions map[uint64]*session
	Shard    ShardState
	History  shardmap.History
	Dedup    [][]byte
	// Versions holds each key's CreateIndex, ModIndex and TTL.
	Versions map[string][3]uint64
}

func fullViewOf(s *Store) fullView {
	v := fullView{Digest: digestOf(s), Keys: stateOf(s), Sessions: sessionsOf(s), Shard: s.ShardState(), History: s.ConfigHistory()}
	s.mu.RLock()
	v.Versions = map[string][3]uint64{}
	for _, b := range s.mu.buckets {
		v.Dedup = append(v.Dedup, encodeTable(b.dedup))
		b.data.Ascend(func(it item) bool {
			v.Versions[it.key] = [3]uint64{it.createIndex(), it.mod, uint64(it.ttl())}
			return true
		})
	}
	s.mu.RUnlock()
	return v
}

// TestSnapshotRoundTripEachKind: a snapshot of each kind of store restores
// into a store of the same configuration to the same state, and a store
// of any other configuration refuses it with the numbers that differ.
func TestSnapshotRoundTripEachKind(t *testing.T) {
	for kind, cfg := range storeKinds {
		t.Run(fmt.Sprintf("%+v", cfg), func(t *testing.T) {
			s := seededStore(t, kind)
			want := fullViewOf(s)
			if s.mode == modeShard && (want.Shard.Config.Version != 2 || !want.Shard.Joined || want.Shard.Status[1] != BePulling) {
				t.Fatalf("seeded shard state: %+v", want.Shard)
			}
			if s.mode == modeConfig && len(want.History.Configs) != 4 {
				t.Fatalf("seeded history: %+v", want.History)
			}
			data := snapshotOf(t, s)
			r := bareStore(zap.NewNop(), cfg)
			restoreFrom(t, r, data, s.AppliedIndex())
			if got := fullViewOf(r); !reflect.DeepEqual(got, want) {
				t.Fatalf("restored:\n%+v\nwant\n%+v", got, want)
			}
			path := filepath.Join(t.TempDir(), "snap.db")
			if err := os.WriteFile(path, data, 0o644); err != nil {
				t.Fatal(err)
			}
			others := []Config{{Buckets: 5}, {Buckets: 4, Group: 2}, {Buckets: 5, Group: 1}, {Buckets: 5, ConfigGroup: true}}
			for _, other := range append(others, storeKinds...) {
				if other == cfg {
					continue
				}
				o := bareStore(zap.NewNop(), other)
				err := o.restore(path, 9)
				if !errors.Is(err, ErrSnapshotMismatch) || !strings.Contains(err.Error(), fmt.Sprintf("%d buckets", o.nbuckets)) {
					t.Fatalf("restore into %+v: %v, want ErrSnapshotMismatch naming the numbers", other, err)
				}
			}
		})
	}
}

// writeFormat1 writes keys and sessions as format 1 did.
func writeFormat1(t *testing.T, keys map[string]string, sessions map[uint64]*session) []byte {
	return writeFormat1Header(t, keys, sessions, len(keys))
}

// writeFormat1Count writes keys as format 1 did, with a header that
// counts count keys.
func writeFormat1Count(t *testing.T, keys map[string]string, count int) []byte {
	return writeFormat1Header(t, keys, nil, count)
}

func writeFormat1Header(t *testing.T, keys map[string]string, sessions map[uint64]*session, count int) []byte {
	var buf bytes.Buffer
	bw := bufio.NewWriter(&buf)
	crc := crc32.New(crcTable)
	out := func(b []byte) {
		bw.Write(b)
		crc.Write(b)
	}
	field := func(b []byte) {
		out(binary.AppendUvarint(nil, uint64(len(b))))
		out(b)
	}
	var hdr bytes.Buffer
	type snapshotHeader struct {
		Keys     int
		Sessions map[uint64]*session
	}
	if err := gob.NewEncoder(&hdr).Encode(snapshotHeader{Keys: count, Sessions: sessions}); err != nil {
		t.Fatal(err)
	}
	out([]byte(snapshotMagicV1))
	field(hdr.Bytes())
	for _, k := range slices.Sorted(maps.Keys(keys)) {
		field([]byte(k))
		field([]byte(keys[k]))
	}
	bw.Write(binary.BigEndian.AppendUint32(nil, crc.Sum32()))
	if err := bw.Flush(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// TestReadAfterRestoreSaysItsIndex: a read served once a snapshot's state
// is installed, before the apply loop marks the index applied, reports
// the snapshot's index, not an older one beside the newer state.
func TestReadAfterRestoreSaysItsIndex(t *testing.T) {
	a := newBareStore(t)
	applyOwn(t, a, 40, put("c", 1, "k", "snap"))
	a.setApplied(40)
	data := snapshotOf(t, a)

	r := newBareStore(t)
	path := t.TempDir() + "/snap.db"
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := r.restore(path, 40); err != nil {
		t.Fatal(err)
	}
	kv, index, err := r.GetKV(t.Context(), "k", ReadOptions{Stale: true})
	if err != nil || string(kv.Value) != "snap" || index != 40 {
		t.Fatalf("read after the restore: %q at index %d, %v; want snap at 40", kv.Value, index, err)
	}
}
