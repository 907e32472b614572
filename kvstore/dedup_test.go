package kvstore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"reflect"
	"testing"
	"time"

	"github.com/raftkv/raftkv/raftnode"
	"go.uber.org/zap/zaptest"
)

// applyOwn applies req as this store's own request (session s.session,
// request id index) in an entry at index, and returns what its waiter is
// answered.
func applyOwn(t testing.TB, s *Store, index uint64, req request) result {
	t.Helper()
	req.ID = index
	p := &pending{id: index, req: req, done: make(chan result, 1)}
	s.pmu.Lock()
	s.pmu.pending[index] = p
	s.pmu.Unlock()
	s.applyEntry(mustEntry(t, index, &batch{Session: s.session, Watermark: index, Reqs: []request{req}}))
	s.setApplied(index)
	s.pmu.Lock()
	delete(s.pmu.pending, index)
	s.pmu.Unlock()
	select {
	case r := <-p.done:
		return r
	default:
		t.Fatalf("request at index %d was not answered", index)
		return result{}
	}
}

func put(client string, seq uint64, kvs ...string) request {
	r := request{ClientID: client, Seq: seq}
	for i := 0; i+1 < len(kvs); i += 2 {
		r.Ops = append(r.Ops, Op{Type: OpPut, Key: kvs[i], Value: []byte(kvs[i+1])})
	}
	return r
}

func wantValue(t *testing.T, s *Store, key, want string) {
	t.Helper()
	v, err := s.local(key)
	if want == "" {
		if !errors.Is(err, ErrNotFound) {
			t.Fatalf("%q = %q, %v; want absent", key, v, err)
		}
		return
	}
	if err != nil || string(v) != want {
		t.Fatalf("%q = %q, %v; want %q", key, v, err, want)
	}
}

// TestDedupAnswersDuplicatesWithTheFirstResult walks a client's writes
// through the dedup table of a store with a window of 3 results and 2
// clients per bucket: a retry is answered with the first result and not
// applied again, a seq below a full window is refused as too old, and the
// least recently written client is forgotten first.
func TestDedupAnswersDuplicatesWithTheFirstResult(t *testing.T) {
	steps := []struct {
		name    string
		req     request
		want    result // index 0: the step's own index
		key     string
		wantVal string
	}{
		{"first write", put("a", 1, "k", "1"), result{}, "k", "1"},
		{"retry, other value", put("a", 1, "k", "retry"), result{index: 1, dup: true}, "k", "1"},
		{"next seq", put("a", 2, "k", "2"), result{}, "k", "2"},
		{"seq 3", put("a", 3, "k", "3"), result{}, "k", "3"},
		{"retry of seq 1 still in the window", put("a", 1, "k", "x"), result{index: 1, dup: true}, "k", "3"},
		{"seq 4 pushes seq 1 out", put("a", 4, "k", "4"), result{}, "k", "4"},
		{"seq 1 is too old now", put("a", 1, "k", "x"), result{err: ErrSeqTooOld}, "k", "4"},
		{"seq 9, ahead", put("a", 9, "k", "9"), result{}, "k", "9"},
		{"seq 5, late but above the floor", put("a", 5, "k", "5"), result{}, "k", "5"},
		{"seq 2 is too old now", put("a", 2, "k", "x"), result{err: ErrSeqTooOld}, "k", "5"},
		{"retry of seq 9", put("a", 9, "k", "x"), result{index: 8, dup: true}, "k", "5"},
		{"no client id: applied each time", put("", 0, "k", "plain"), result{}, "k", "plain"},
		{"client b", put("b", 1, "b", "1"), result{}, "b", "1"},
		{"client a again", put("a", 10, "k", "10"), result{}, "k", "10"},
		{"client c evicts b, written least recently", put("c", 1, "c", "1"), result{}, "c", "1"},
		{"b forgotten: its retry applies again", put("b", 1, "b", "again"), result{}, "b", "again"},
		{"b back evicted a: its retry applies again", put("a", 10, "k", "x"), result{}, "k", "x"},
		{"a remembered", put("a", 10, "k", "y"), result{index: 17, dup: true}, "k", "x"},
		{"b still remembered", put("b", 1, "b", "x"), result{index: 16, dup: true}, "b", "again"},
		{"invalid client id", put("bad id", 1, "k", "y"), result{err: ErrBadClientID}, "k", "x"},
		{"client id without seq", put("a", 0, "k", "y"), result{err: ErrBadClientID}, "k", "x"},
	}
	s := bareStore(zaptest.NewLogger(t), Config{DedupWindow: 3, DedupClients: 2})
	for i, st := range steps {
		index := uint64(i + 1)
		want := st.want
		if want.index == 0 && want.err == nil {
			want.index = index
		}
		got := applyOwn(t, s, index, st.req)
		if got.index != want.index || got.dup != want.dup || !errors.Is(got.err, want.err) || (want.err == nil) != (got.err == nil) {
			t.Fatalf("step %d (%s): %+v, want %+v", i+1, st.name, got, want)
		}
		wantValue(t, s, st.key, st.wantVal)
	}
}

// TestDedupAcrossBuckets: a write touching two buckets is remembered in
// both, so a retry is a duplicate whichever of them it is judged by, and
// the table of a bucket the write did not touch knows nothing of it.
func TestDedupAcrossBuckets(t *testing.T) {
	s := bareStore(zaptest.NewLogger(t), Config{Buckets: 16})
	var k1, k2, k3 string
	for i := 0; k3 == ""; i++ {
		k := fmt.Sprint("key", i)
		switch b := s.bucketOf(k); {
		case k1 == "":
			k1 = k
		case k2 == "" && b != s.bucketOf(k1):
			k2 = k
		case k2 != "" && b != s.bucketOf(k1) && b != s.bucketOf(k2):
			k3 = k
		}
	}
	if r := applyOwn(t, s, 1, put("c", 1, k1, "1", k2, "2")); r.err != nil || r.dup {
		t.Fatalf("first write: %+v", r)
	}
	for i, req := range []request{put("c", 1, k1, "x"), put("c", 1, k2, "x"), put("c", 1, k3, "x", k2, "x")} {
		if r := applyOwn(t, s, uint64(2+i), req); !r.dup || r.index != 1 {
			t.Fatalf("retry %d: %+v, want a duplicate of index 1", i, r)
		}
	}
	wantValue(t, s, k1, "1")
	wantValue(t, s, k2, "2")
	wantValue(t, s, k3, "")
	if n := s.mu.buckets[s.bucketOf(k3)].dedup.len(); n != 0 {
		t.Fatalf("the untouched bucket remembers %d clients", n)
	}
}

// TestDedupSurvivesSnapshot: a store restored from a snapshot answers a
// retry as a duplicate with the first index, and refuses a seq its window
// let go of, as the store it came from would.
func TestDedupSurvivesSnapshot(t *testing.T) {
	cfg := Config{Buckets: 4, DedupWindow: 2}
	s := bareStore(zaptest.NewLogger(t), cfg)
	for i := uint64(1); i <= 5; i++ {
		applyOwn(t, s, i, put("c", i, "k", fmt.Sprint(i)))
	}
	r := bareStore(zaptest.NewLogger(t), cfg)
	restoreFrom(t, r, snapshotOf(t, s), 5)
	if got := applyOwn(t, r, 6, put("c", 5, "k", "x")); !got.dup || got.index != 5 {
		t.Fatalf("retry after restore: %+v, want a duplicate of index 5", got)
	}
	if got := applyOwn(t, r, 7, put("c", 3, "k", "x")); !errors.Is(got.err, ErrSeqTooOld) {
		t.Fatalf("seq below the window after restore: %+v, want ErrSeqTooOld", got)
	}
	wantValue(t, r, "k", "5")
}

// restoreFrom restores the snapshot stream data into s as of index, as
// the apply loop does.
func restoreFrom(t *testing.T, s *Store, data []byte, index uint64) {
	t.Helper()
	path := t.TempDir() + "/snap.db"
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := s.restore(path, index); err != nil {
		t.Fatal(err)
	}
	s.setApplied(index)
}

// TestDedupIsDeterministic: two members applying the same entries, many
// clients over a small window and client bound, end with the same keys and
// the same dedup tables, byte for byte.
func TestDedupIsDeterministic(t *testing.T) {
	cfg := Config{Buckets: 8, DedupWindow: 4, DedupClients: 5}
	a := bareStore(zaptest.NewLogger(t), cfg)
	b := bareStore(zaptest.NewLogger(t), cfg)
	rng := rand.New(rand.NewPCG(7, 8))
	seqs := map[string]uint64{}
	for i := uint64(1); i <= 2000; i++ {
		client := fmt.Sprint("client-", rng.IntN(12))
		seq := seqs[client] + 1
		if rng.IntN(4) == 0 && seq > 1 { // a retry, or a write out of order
			seq = uint64(1 + rng.IntN(int(seq)))
		} else {
			seqs[client] = seq
		}
		req := put(client, seq, fmt.Sprint("k", rng.IntN(50)), fmt.Sprint(i))
		req.ID = i
		e := mustEntry(t, i, &batch{Session: 3 + i%2, Watermark: i, Reqs: []request{req}})
		for _, s := range []*Store{a, b} {
			s.applyEntry(e)
			s.setApplied(i)
		}
	}
	if da, db := digestOf(a), digestOf(b); da != db {
		t.Fatalf("digests differ: %+v, %+v", da, db)
	}
	for i := range a.mu.buckets {
		ea, eb := encodeTable(a.mu.buckets[i].dedup), encodeTable(b.mu.buckets[i].dedup)
		if !bytes.Equal(ea, eb) {
			t.Fatalf("bucket %d: dedup tables differ", i)
		}
		if n := a.mu.buckets[i].dedup.len(); n > cfg.DedupClients {
			t.Fatalf("bucket %d remembers %d clients, more than %d", i, n, cfg.DedupClients)
		}
	}
}

func encodeTable(t *dedupTable) []byte {
	var buf bytes.Buffer
	e := binWriter{w: &buf}
	t.encode(&e, true)
	return buf.Bytes()
}

// TestDedupTableCodec: a table encodes and decodes to itself, and the
// decoder refuses what encode never writes.
func TestDedupTableCodec(t *testing.T) {
	tbl := newDedupTable()
	tbl.record("a", dedupEntry{seq: 1, index: 10}, 10, 3, 10)
	tbl.record("a", dedupEntry{seq: 5, index: 12, version: 7}, 12, 3, 10)
	tbl.record("b.c_d-9", dedupEntry{seq: 2, index: 11}, 11, 3, 10)
	tbl.record("t", dedupEntry{seq: 1, index: 13, txn: &storedTxn{succeeded: true, kept: keptValues,
		gets: []storedGet{{found: true, create: 2, mod: 9, ttl: time.Second, value: []byte("v")}, {}}}}, 13, 3, 10)
	tbl.record("t", dedupEntry{seq: 2, index: 14, txn: &storedTxn{kept: keptVersions, gets: []storedGet{{found: true, create: 1, mod: 1}}}}, 14, 3, 10)
	tbl.record("t", dedupEntry{seq: 3, index: 15, txn: &storedTxn{kept: keptNothing}}, 15, 3, 10)
	data := encodeTable(tbl)
	got := decodeDedupTable(&binReader{r: bytes.NewReader(data), limit: len(data)}, true)
	if !bytes.Equal(encodeTable(got), data) || !reflect.DeepEqual(got.clients["t"].ents, tbl.clients["t"].ents) {
		t.Fatalf("round trip changed the table")
	}
	bad := []struct {
		name string
		data []byte
	}{
		{"ids out of order", []byte{2, 1, 'b', 0, 0, 0, 1, 'a', 0, 0, 0}},
		{"invalid id", []byte{1, 1, ' ', 0, 0, 0}},
		{"empty id", []byte{1, 0, 0, 0, 0}},
		{"seq 0", []byte{1, 1, 'a', 0, 0, 1, 0, 1, 0}},
		{"seq below floor", []byte{1, 1, 'a', 0, 5, 1, 4, 1, 0}},
		{"seqs out of order", []byte{1, 1, 'a', 0, 0, 2, 3, 1, 0, 2, 1, 0}},
		{"count past the input", []byte{100}},
		{"transaction result of an unknown kind", []byte{1, 1, 'a', 0, 0, 1, 1, 1, 0, 4}},
		{"gets kept with nothing kept", []byte{1, 1, 'a', 0, 0, 1, 1, 1, 0, 1, 1, 1, 0, 0, 0, 0}},
		{"more gets than a branch has", []byte{1, 1, 'a', 0, 0, 1, 1, 1, 0, 2, 1, 129, 1}},
		{"truncated", data[:len(data)-1]},
	}
	for _, b := range bad {
		d := &binReader{r: bytes.NewReader(b.data), limit: len(b.data)}
		if decodeDedupTable(d, true); d.err == nil {
			t.Errorf("%s: decoded without error", b.name)
		}
	}
}

// TestClusterWriteExactlyOnce: a client's retry through another member is
// answered with the first result and not applied again; a seq below the
// window is refused with ErrSeqTooOld; every member ends with the same
// state.
func TestClusterWriteExactlyOnce(t *testing.T) {
	c := newInprocClusterWith(t, 3, raftnode.Config{TickInterval: 50 * time.Millisecond}, Config{DedupWindow: 2})
	lead := c.waitLeader()
	f := c.follower()
	write := func(i int, seq uint64, value string) (Result, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		return c.stors[i].Write(ctx, []Op{{Type: OpPut, Key: "k", Value: []byte(value)}}, WriteOptions{ClientID: "client-1", Seq: seq})
	}
	first, err := write(f, 1, "first")
	if err != nil || first.Duplicate {
		t.Fatalf("first write: %+v, %v", first, err)
	}
	again, err := write(lead, 1, "retry")
	if err != nil || !again.Duplicate || again.Index != first.Index {
		t.Fatalf("retry through the leader: %+v, %v; want a duplicate of index %d", again, err, first.Index)
	}
	for seq := uint64(2); seq <= 3; seq++ {
		if _, err := write(lead, seq, fmt.Sprint(seq)); err != nil {
			t.Fatal(err)
		}
	}
	if r, err := write(f, 1, "late"); !errors.Is(err, ErrSeqTooOld) || status(err) != 504 {
		t.Fatalf("seq 1 after 2 and 3 with a window of 2: %+v, %v; want ErrSeqTooOld (504)", r, err)
	}
	if _, err := c.stors[f].Write(context.Background(), []Op{{Type: OpPut, Key: "k"}}, WriteOptions{ClientID: "no seq"}); !errors.Is(err, ErrBadClientID) {
		t.Fatalf("invalid client id: %v", err)
	}
	for i := range c.stors {
		c.waitValue(i, "k", []byte("3"))
	}
	want := digestOf(c.stors[lead])
	for i := range c.stors {
		if err := c.stors[i].WaitApplied(context.Background(), want.index); err != nil {
			t.Fatal(err)
		}
		if d := digestOf(c.stors[i]); d.hash != want.hash {
			t.Fatalf("member %d digest %+v, leader %+v", i+1, d, want)
		}
	}
}

// FuzzDedupTable decodes arbitrary bytes as a dedup table of format 3
// (transaction results included): never a panic; what decodes encodes
// to bytes that decode to the same table.
func FuzzDedupTable(f *testing.F) {
	tbl := newDedupTable()
	tbl.record("a", dedupEntry{seq: 1, index: 10, version: 2}, 10, 3, 10)
	tbl.record("t", dedupEntry{seq: 1, index: 13, txn: &storedTxn{succeeded: true, kept: keptValues,
		gets: []storedGet{{found: true, create: 2, mod: 9, ttl: time.Second, value: []byte("v")}, {}}}}, 13, 3, 10)
	tbl.record("t", dedupEntry{seq: 2, index: 14, txn: &storedTxn{kept: keptVersions, gets: []storedGet{{found: true, create: 1, mod: 1}}}}, 14, 3, 10)
	f.Add(encodeTable(tbl))
	f.Add([]byte{})
	f.Add([]byte{1, 1, 'a', 0, 0, 1, 1, 1, 0, 3, 1, 1, 1, 2, 3, 0, 1, 'x'})
	f.Fuzz(func(t *testing.T, data []byte) {
		d := &binReader{r: bytes.NewReader(data), limit: len(data)}
		got := decodeDedupTable(d, true)
		if d.err != nil {
			return
		}
		again := encodeTable(got)
		d2 := &binReader{r: bytes.NewReader(again), limit: len(again)}
		back := decodeDedupTable(d2, true)
		if d2.err != nil {
			t.Fatalf("re-encoded table does not decode: %v", d2.err)
		}
		if !bytes.Equal(encodeTable(back), again) {
			t.Fatal("decoding and encoding again changed the table")
		}
	})
}
