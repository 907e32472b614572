package kvstore

import (
	"bytes"
	"context"
	"encoding/gob"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"reflect"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"
	"unsafe"
	"weak"

	dto "github.com/prometheus/client_model/go"
	"github.com/raftkv/raftkv/raftnode"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"
)

func binaryValue() []byte {
	v := make([]byte, 256)
	for i := range v {
		v[i] = byte(i)
	}
	return v
}

func TestBatchCodecRoundTrip(t *testing.T) {
	in := &batch{Session: 9, Watermark: 3, Reqs: []request{
		{ID: 3, Ops: []Op{{Type: OpPut, Key: "a/b\x00\xff", Value: binaryValue()}, {Type: OpDelete, Key: "x"}}},
		{ID: 4, Ops: []Op{{Type: OpPut, Key: "empty", Value: []byte{}}}},
	}}
	data, err := encodeBatch(in)
	if err != nil {
		t.Fatal(err)
	}
	out, err := decodeBatch(data)
	if err != nil {
		t.Fatal(err)
	}
	if out.Session != 9 || out.Watermark != 3 || len(out.Reqs) != 2 {
		t.Fatalf("header mismatch: %+v", out)
	}
	op := out.Reqs[0].Ops[0]
	if op.Key != "a/b\x00\xff" || !bytes.Equal(op.Value, binaryValue()) || out.Reqs[0].Ops[1].Type != OpDelete {
		t.Fatalf("ops mismatch: %+v", out.Reqs[0].Ops)
	}
	if _, err := decodeBatch([]byte{1, 2, 3}); err == nil {
		t.Fatal("decoding garbage succeeded")
	}
}

// The propose loop's encoder must write exactly what a fresh gob encoder
// writes, so every entry stays a self-contained stream any member decodes.
func TestEntryEncoderMatchesFreshEncoder(t *testing.T) {
	var e entryEncoder
	d := newEntryDecoder()
	for i := range 50 {
		in := &batch{Session: 9, Watermark: uint64(i)}
		for j := range i % 7 {
			in.Reqs = append(in.Reqs, request{ID: uint64(i*10 + j), Ops: []Op{
				{Type: OpPut, Key: fmt.Sprintf("k%d\x00%d", i, j), Value: binaryValue()[:i*j%256]},
				{Type: OpDelete, Key: "gone"},
			}})
		}
		got, err := e.encode(in)
		if err != nil {
			t.Fatal(err)
		}
		want, err := encodeBatch(in)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("batch %d: primed encoder wrote %x, a fresh one %x", i, got, want)
		}
		out, err := d.decode(got)
		if err != nil || out.Watermark != uint64(i) || len(out.Reqs) != len(in.Reqs) {
			t.Fatalf("batch %d: decoded %+v, %v", i, out, err)
		}
	}
}

// A batch of plain writes is written as a plainBatch, with a preamble of
// its own far shorter than batch's, and decodes into the same batch
// through a fresh gob decoder (as binaries from before plainBatch decode
// every entry) and through the apply loop's primed decoders, interleaved
// with batches that need batch's types.
func TestPlainEntriesDecodeAsBatches(t *testing.T) {
	plain := &batch{Session: 9, Watermark: 4, Format: batchFormatUniqueVersions, Reqs: []request{
		{ID: 4, Ops: []Op{{Type: OpPut, Key: "k", Value: binaryValue(), TTL: 3 * time.Second}}},
		{ID: 5, ClientID: "client", Seq: 77, Ops: []Op{{Type: OpDelete, Key: "gone"}, {Type: OpExpire, Key: "old", IfModIndex: 12}}},
	}}
	others := []*batch{
		{Session: 9, Watermark: 6, Reqs: []request{{ID: 6, Txn: &Txn{Success: []TxnOp{{Type: TxnPut, Key: "t", Value: []byte("v")}}}}}},
		{Session: 9, Watermark: 7, Reqs: []request{{ID: 7, Range: &rangeDelete{Start: "a", End: "b"}}}},
		{Session: 9, Watermark: 8, Reqs: []request{{ID: 8, Hash: true}}},
		{Session: 9, Watermark: 9, Reqs: []request{{ID: 9, Ops: []Op{{Type: OpPut, Key: "p"}}}, {ID: 10, Ctl: &control{Kind: ctlConfig}}}},
	}
	var e entryEncoder
	d := newEntryDecoder()
	for round := range 3 {
		data, err := e.encode(plain)
		if err != nil {
			t.Fatal(err)
		}
		pre := data[:gobValueOffset(data)]
		if string(pre) == entryTypes || len(pre) > len(entryTypes)/2 {
			t.Fatalf("a plain batch has a preamble of %d bytes (batch's is %d)", len(pre), len(entryTypes))
		}
		for name, decode := range map[string]func([]byte) (*batch, error){"fresh": decodeBatch, "primed": d.decode} {
			got, err := decode(data)
			if err != nil || !reflect.DeepEqual(got, plain) {
				t.Fatalf("round %d, %s decoder: got %+v, %v; want %+v", round, name, got, err, plain)
			}
		}
		for _, b := range others {
			data, err := e.encode(b)
			if err != nil {
				t.Fatal(err)
			}
			if got := data[:gobValueOffset(data)]; string(got) != entryTypes {
				t.Fatalf("batch %+v was written with preamble %x, want batch's", b, got)
			}
			got, err := d.decode(data)
			if err != nil || !reflect.DeepEqual(got, b) {
				t.Fatalf("round %d: got %+v, %v; want %+v", round, got, err, b)
			}
		}
	}
	if d.byFresh.Load() != 2 {
		t.Errorf("%d entries needed a fresh decoder, want 2 (one per preamble)", d.byFresh.Load())
	}
}

// plainBatch and plainRequest must have every field of batch and request
// but the ones that make a request more than a plain write, or asPlain
// would drop a field added later.
func TestPlainTypesMatchBatch(t *testing.T) {
	fields := func(v any) []string {
		var out []string
		for f := range reflect.TypeOf(v).Fields() {
			out = append(out, f.Name+" "+f.Type.String())
		}
		return out
	}
	notPlain := map[string]bool{"Ctl *kvstore.control": true, "Txn *kvstore.Txn": true, "Range *kvstore.rangeDelete": true, "Hash bool": true}
	var want []string
	for _, f := range fields(request{}) {
		if !notPlain[f] {
			want = append(want, f)
		}
	}
	if got := fields(plainRequest{}); !slices.Equal(got, want) {
		t.Errorf("plainRequest has fields %q, want %q", got, want)
	}
	want = fields(batch{})
	want[slices.Index(want, "Reqs []kvstore.request")] = "Reqs []kvstore.plainRequest"
	if got := fields(plainBatch{}); !slices.Equal(got, want) {
		t.Errorf("plainBatch has fields %q, want %q", got, want)
	}
}

func TestSnapshotStreamRoundTrip(t *testing.T) {
	keys := newTree()
	want := map[string][]byte{"bin": binaryValue(), "k/with/slash": []byte("v"), "\xff\xfe": {0}, "empty": {}}
	for k, v := range want {
		keys.ReplaceOrInsert(newItem(k, v))
	}
	sessions := map[uint64]*session{7: {Watermark: 5, Applied: map[uint64]bool{5: true, 9: true}}}
	var buf bytes.Buffer
	if err := writeSnapshot(&buf, &snapState{nbuckets: 1, buckets: []bucket{{data: keys}}, sessions: sessions}); err != nil {
		t.Fatal(err)
	}
	data := buf.Bytes()
	got, err := readSnapshot(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	gotTree, gotSessions := got.buckets[0].data, got.sessions
	if gotTree.Len() != len(want) {
		t.Fatalf("%d keys, want %d", gotTree.Len(), len(want))
	}
	for k, v := range want {
		it, ok := gotTree.Get(newItem(k, nil))
		if !ok || !bytes.Equal(it.valueBytes(), v) {
			t.Fatalf("key %q = %q, %v; want %q", k, it.value, ok, v)
		}
	}
	if s := gotSessions[7]; s == nil || s.Watermark != 5 || !s.Applied[9] {
		t.Fatalf("sessions mismatch: %+v", gotSessions)
	}

	// Every truncation and every single-bit flip is caught.
	for cut := 0; cut < len(data); cut += 7 {
		if _, err := readSnapshot(bytes.NewReader(data[:cut]), int64(cut)); !errors.Is(err, ErrCorruptSnapshot) {
			t.Fatalf("truncated at %d: %v", cut, err)
		}
	}
	for i := 0; i < len(data); i += 5 {
		bad := bytes.Clone(data)
		bad[i] ^= 0x10
		if _, err := readSnapshot(bytes.NewReader(bad), int64(len(bad))); err == nil {
			t.Fatalf("bit flip at byte %d went unnoticed", i)
		}
	}
}

// TestSnapshotDoesNotStopWrites: the captured state stays as it was while
// the store keeps applying, and a store restored from it is identical.
func TestSnapshotDoesNotStopWrites(t *testing.T) {
	s := newBareStore(t)
	put := func(index uint64, k, v string) {
		s.applyEntry(mustEntry(t, index, &batch{Session: 3, Watermark: index, Reqs: []request{{ID: index, Ops: []Op{{Type: OpPut, Key: k, Value: []byte(v)}}}}}))
		s.setApplied(index)
	}
	put(1, "a", "1")
	put(2, "b", "2")
	write, err := s.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	wantIndex, wantKeys, wantHash := s.Digest()
	put(3, "a", "changed")
	put(4, "c", "3")
	var buf bytes.Buffer
	if err := write(&buf); err != nil {
		t.Fatal(err)
	}
	// The write let go of the state as it went: a second one cannot
	// write it again.
	if err := write(io.Discard); err == nil {
		t.Fatal("a second write of the same snapshot succeeded")
	}
	st, err := readSnapshot(&buf, 0)
	if err != nil {
		t.Fatal(err)
	}
	r := newBareStore(t)
	r.install(st, wantIndex)
	r.setApplied(wantIndex)
	if index, keys, hash := r.Digest(); index != wantIndex || keys != wantKeys || hash != wantHash {
		t.Fatalf("restored digest (%d, %d, %s), want (%d, %d, %s)", index, keys, hash, wantIndex, wantKeys, wantHash)
	}
	if v, _ := s.local("a"); string(v) != "changed" {
		t.Fatalf("live store lost a write made during the snapshot: a = %q", v)
	}
	// The restored session still rejects a duplicate of request 2.
	r.applyEntry(mustEntry(t, 5, &batch{Session: 3, Watermark: 2, Reqs: []request{{ID: 2, Ops: []Op{{Type: OpPut, Key: "b", Value: []byte("dup")}}}}}))
	if v, _ := r.local("b"); string(v) != "2" {
		t.Fatalf("duplicate applied after restore: b = %q", v)
	}
}

func newBareStore(t testing.TB) *Store {
	return bareStore(zaptest.NewLogger(t), Config{})
}

// bareStore is a store of cfg with no node and no goroutines: tests feed
// its apply path directly.
func bareStore(lg *zap.Logger, cfg Config) *Store {
	cfg.applyDefaults()
	s := &Store{cfg: cfg, lg: lg, session: 1, met: newMetrics(nil, nil, nil, 0, nil), dec: newEntryDecoder(), appliedC: make(chan struct{})}
	s.initState()
	return s
}

func mustEntry(t testing.TB, index uint64, b *batch) raftnode.Entry {
	data, err := encodeBatch(b)
	if err != nil {
		t.Fatal(err)
	}
	return raftnode.Entry{Index: index, Data: data}
}

// TestApplyAtMostOnce: a request proposed twice is applied once, even when
// a later write to the same key comes between the copies; requests below
// the session's watermark are not applied.
func TestApplyAtMostOnce(t *testing.T) {
	s := newBareStore(t)
	put := func(id uint64, v string) request {
		return request{ID: id, Ops: []Op{{Type: OpPut, Key: "k", Value: []byte(v)}}}
	}
	steps := []struct {
		session, watermark uint64
		req                request
		want               string
	}{
		{session: 5, watermark: 1, req: put(1, "first"), want: "first"},
		{session: 6, watermark: 1, req: put(1, "other"), want: "other"}, // same id, other session
		{session: 5, watermark: 1, req: put(1, "first"), want: "other"}, // duplicate copy
		{session: 5, watermark: 3, req: put(3, "third"), want: "third"},
		{session: 5, watermark: 3, req: put(2, "late"), want: "third"},  // below watermark
		{session: 5, watermark: 3, req: put(1, "first"), want: "third"}, // old duplicate
	}
	for i, st := range steps {
		s.applyEntry(mustEntry(t, uint64(i+1), &batch{Session: st.session, Watermark: st.watermark, Reqs: []request{st.req}}))
		v, err := s.local("k")
		if err != nil || string(v) != st.want {
			t.Fatalf("step %d: k = %q, %v; want %q", i, v, err, st.want)
		}
	}
	if got := s.mu.sessions[5].Applied; len(got) != 1 || !got[3] {
		t.Fatalf("session 5 applied set not pruned to the watermark: %v", got)
	}
}

func TestApplyIsAtomicAndAnswersLocalWaiters(t *testing.T) {
	s := newBareStore(t)
	p := &pending{id: 4, done: make(chan result, 1)}
	s.pmu.pending[4] = p
	s.applyEntry(mustEntry(t, 12, &batch{Session: s.session, Watermark: 4, Reqs: []request{{ID: 4, Ops: []Op{
		{Type: OpPut, Key: "a", Value: []byte("1")},
		{Type: OpPut, Key: "b", Value: []byte("2")},
		{Type: OpDelete, Key: "a"},
	}}}}))
	r := <-p.done
	if r.err != nil || r.index != 12 {
		t.Fatalf("waiter got %+v, want index 12", r)
	}
	if _, err := s.local("a"); err != ErrNotFound {
		t.Fatalf("a should be deleted, got %v", err)
	}
	if v, _ := s.local("b"); string(v) != "2" {
		t.Fatalf("b = %q", v)
	}
	// An undecodable entry is skipped, not fatal.
	s.applyEntry(raftnode.Entry{Index: 13, Data: []byte("not gob")})
}

func TestEntryDecoderMatchesGob(t *testing.T) {
	d := newEntryDecoder()
	for i := uint64(1); i <= 50; i++ {
		in := &batch{Session: i, Watermark: i / 2, Reqs: []request{{ID: i, Ops: []Op{{Type: OpPut, Key: fmt.Sprint("k", i), Value: bytes.Repeat([]byte{byte(i)}, int(i))}}}}}
		data, err := encodeBatch(in)
		if err != nil {
			t.Fatal(err)
		}
		got, err := d.decode(data)
		if err != nil {
			t.Fatalf("entry %d: %v", i, err)
		}
		want, err := decodeBatch(data)
		if err != nil {
			t.Fatal(err)
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("entry %d: cached decoder got %+v, gob %+v", i, got, want)
		}
	}
	if len(d.primed) != 1 || d.byFresh.Load() != 1 {
		t.Fatalf("%d primed decoders and %d fresh decodes for this binary's own entries, want 1 and 1", len(d.primed), d.byFresh.Load())
	}

	// A writer whose type preamble differs (another type name here; in
	// practice another binary's type ids) gets a primed gob decoder.
	type otherBatch struct {
		Session, Watermark uint64
		Reqs               []request
	}
	var buf bytes.Buffer
	if err := gob.NewEncoder(&buf).Encode(otherBatch{Session: 99, Reqs: []request{{ID: 1}}}); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		got, err := d.decode(buf.Bytes())
		if err != nil || got.Session != 99 {
			t.Fatalf("other preamble: %+v, %v", got, err)
		}
	}
	if len(d.primed) != 2 {
		t.Fatalf("%d primed decoders, want 2: this binary's and the other writer's", len(d.primed))
	}

	// Odd entries get gob's own verdict (every member must agree on what
	// applies), and leave the decoder usable.
	good, _ := encodeBatch(&batch{Session: 5})
	for _, odd := range [][]byte{nil, {0}, {1, 2, 3}, good[:len(good)-1], append(bytes.Clone(good), 7), bytes.Repeat([]byte{0xff}, 40)} {
		_, err := d.decode(odd)
		_, gobErr := decodeBatch(odd)
		if (err == nil) != (gobErr == nil) {
			t.Fatalf("decoding %x: cached decoder says %v, gob says %v", odd, err, gobErr)
		}
		if got, err := d.decode(good); err != nil || got.Session != 5 {
			t.Fatalf("after a bad entry: %+v, %v", got, err)
		}
	}
}

func TestGobUint(t *testing.T) {
	tests := []struct {
		in    []byte
		want  uint64
		width int
	}{
		{[]byte{0}, 0, 1},
		{[]byte{0x7f}, 127, 1},
		{[]byte{0xff, 0x80}, 128, 2},
		{[]byte{0xfe, 0x01, 0x00}, 256, 3},
		{[]byte{0xf8, 1, 2, 3, 4, 5, 6, 7, 8}, 0x0102030405060708, 9},
		{[]byte{0x80}, 0, 0},       // a count of 128 bytes: malformed
		{[]byte{0xf7, 1}, 0, 0},    // a count of 9 bytes: malformed
		{[]byte{0xfe, 0x01}, 0, 0}, // truncated
		{nil, 0, 0},
	}
	for _, tt := range tests {
		if got, w := gobUint(tt.in); got != tt.want || w != tt.width {
			t.Errorf("gobUint(%x) = %d, %d; want %d, %d", tt.in, got, w, tt.want, tt.width)
		}
	}
}

// TestItemOrderIsKeyOrder checks that comparing items by their prefix
// first orders them exactly as their keys, for keys around the 8-byte
// prefix: shorter, longer, with zero bytes where the prefix pads.
func TestItemOrderIsKeyOrder(t *testing.T) {
	keys := []string{"", "\x00", "\x00\x00", "a", "a\x00", "a\x00\x00\x00\x00\x00\x00\x00", "a\x00\x00\x00\x00\x00\x00\x00\x00",
		"a\x00\x00\x00\x00\x00\x00\x01", "abcdefgh", "abcdefgh\x00", "abcdefghi", "abcdefgi", "abcdefg", "\xff\xff\xff\xff\xff\xff\xff\xff", "\xff\xff\xff\xff\xff\xff\xff\xff\xff", "00012345", "00012346"}
	for _, a := range keys {
		for _, b := range keys {
			checkItemOrder(t, a, b)
		}
	}
}

func FuzzItemOrder(f *testing.F) {
	f.Add("abcdefgh", "abcdefgh\x00")
	f.Add("a", "a\x00")
	f.Fuzz(checkItemOrder)
}

func checkItemOrder(t *testing.T, a, b string) {
	if got, want := itemLess(newItem(a, nil), newItem(b, nil)), a < b; got != want {
		t.Fatalf("itemLess(%q, %q) = %v, want %v", a, b, got, want)
	}
}

// TestEntriesOfAnotherProcessShareThePreamble: gob numbers types per
// process, in the order the process first meets them, so a member whose
// first gob use was something else (a snapshot header, raftnode's member
// attributes) must still write entries with the preamble of every other
// process of this binary, which their primed decoder takes. The test runs
// itself again as such a member and decodes the entry that process wrote.
func TestEntriesOfAnotherProcessShareThePreamble(t *testing.T) {
	const marker = "entry: "
	want := &batch{Session: 9, Watermark: 2, Reqs: []request{{ID: 3, Ops: []Op{{Type: OpPut, Key: "k", Value: []byte("v")}}}}, Format: batchFormatVersions}
	if os.Getenv("KVSTORE_TEST_WRITER") == "1" {
		var other bytes.Buffer
		if err := gob.NewEncoder(&other).Encode(struct{ Other map[string][]int }{}); err != nil {
			t.Fatal(err)
		}
		var e entryEncoder
		data, err := e.encode(want)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Println(marker + hex.EncodeToString(data))
		return
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestEntriesOfAnotherProcessShareThePreamble$", "-test.count=1")
	cmd.Env = append(os.Environ(), "KVSTORE_TEST_WRITER=1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("writer process: %v\n%s", err, out)
	}
	var data []byte
	for line := range strings.Lines(string(out)) {
		if h, ok := strings.CutPrefix(strings.TrimSpace(line), marker); ok {
			if data, err = hex.DecodeString(h); err != nil {
				t.Fatal(err)
			}
		}
	}
	if data == nil {
		t.Fatalf("writer process printed no entry:\n%s", out)
	}
	d := newEntryDecoder()
	var e entryEncoder
	own, err := e.encode(&batch{Session: 1})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.decode(own); err != nil { // primes the decoder of this process's preamble
		t.Fatal(err)
	}
	got, err := d.decode(data)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("decoded %+v, want %+v", got, want)
	}
	if d.byPrimed.Load() != 1 || d.byFresh.Load() != 1 {
		t.Errorf("the entry needed a fresh decoder: the writer numbered its types differently (preamble %x, this process's %x)",
			data[:gobValueOffset(data)], entryTypes)
	}
}

// A snapshot being written lets go of what it has written: a value
// replaced after the capture is kept only until the writer has passed it,
// not until the whole state is written, and one it has yet to write is
// kept.
func TestSnapshotWriteLetsGoOfWrittenValues(t *testing.T) {
	const keys, size = 4000, 1024 // 4 MB: many of the writer's buffers
	live := newTree()
	for i := range keys {
		live.ReplaceOrInsert(newItem(fmt.Sprintf("%06d", i), bytes.Repeat([]byte{'o'}, size)))
	}
	snap := live.Clone()
	first, last := fmt.Sprintf("%06d", 0), fmt.Sprintf("%06d", keys-1)
	oldFirst, oldLast := weakValue(live, first), weakValue(live, last)
	live.ReplaceOrInsert(newItem(first, []byte("new")))
	live.ReplaceOrInsert(newItem(last, []byte("new")))

	w := &gcOnFirstWrite{}
	w.check = func() {
		runtime.GC()
		if oldFirst.Value() != nil {
			t.Error("the first key's replaced value is still held after the writer passed it")
		}
		if oldLast.Value() == nil {
			t.Error("the last key's value was let go before it was written")
		}
	}
	if err := writeSnapshot(w, &snapState{nbuckets: 1, buckets: []bucket{{data: snap}}}); err != nil {
		t.Fatal(err)
	}
	if !w.checked {
		t.Fatal("the snapshot was written in a single write")
	}
	st, err := readSnapshot(bytes.NewReader(w.buf.Bytes()), 0)
	if err != nil {
		t.Fatal(err)
	}
	got := st.buckets[0].data
	for _, k := range []string{first, last} {
		it, ok := got.Get(newItem(k, nil))
		if !ok || len(it.value) != size {
			t.Fatalf("snapshot has %q = %d bytes, %v; want the value as of the capture", k, len(it.value), ok)
		}
	}
	if got.Len() != keys {
		t.Fatalf("snapshot has %d keys, want %d", got.Len(), keys)
	}
}

// weakValue returns a weak pointer to the value key has in t.
func weakValue(t *tree, key string) weak.Pointer[byte] {
	it, _ := t.Get(newItem(key, nil))
	return weak.Make(unsafe.StringData(it.value))
}

// gcOnFirstWrite keeps what is written and calls check at the first write.
type gcOnFirstWrite struct {
	buf     bytes.Buffer
	check   func()
	checked bool
}

func (w *gcOnFirstWrite) Write(p []byte) (int, error) {
	if !w.checked {
		w.checked = true
		w.check()
	}
	return w.buf.Write(p)
}

// TestReadsCounted: each read served, found or not, counts once at its level.
func TestReadsCounted(t *testing.T) {
	s := newBareStore(t)
	s.applyEntry(mustEntry(t, 1, &batch{Session: 2, Watermark: 1, Reqs: []request{{ID: 1, Ops: []Op{{Type: OpPut, Key: "k", Value: []byte("v")}}}}}))
	for _, key := range []string{"k", "absent", "k"} {
		s.Get(context.Background(), key, ReadOptions{Stale: true})
	}
	m := &dto.Metric{}
	if err := s.met.staleReads.Write(m); err != nil {
		t.Fatal(err)
	}
	if got := m.GetCounter().GetValue(); got != 3 {
		t.Errorf("stale reads = %v, want 3", got)
	}
	if err := s.met.linearReads.Write(m); err != nil {
		t.Fatal(err)
	}
	if got := m.GetCounter().GetValue(); got != 0 {
		t.Errorf("linearizable reads = %v, want 0", got)
	}
}

// TestDigestCoversVersionsAndTTLs: two stores with the same keys and
// values but a different version or TTL of one key have different
// digests; the same writes at the same indexes give the same digest.
func TestDigestCoversVersionsAndTTLs(t *testing.T) {
	build := func(index uint64, ttl time.Duration) string {
		s := newBareStore(t)
		put := func(index uint64, k, v string, ttl time.Duration) {
			s.applyEntry(mustEntry(t, index, &batch{Session: 3, Watermark: index, Reqs: []request{{ID: index, Ops: []Op{{Type: OpPut, Key: k, Value: []byte(v), TTL: ttl}}}}}))
			s.setApplied(index)
		}
		put(10, "a", "1", 0)
		put(index, "b", "2", ttl)
		_, _, hash := s.Digest()
		return hash
	}
	same, again := build(20, 0), build(20, 0)
	if same != again {
		t.Fatalf("the same writes gave digests %s and %s", same, again)
	}
	if other := build(21, 0); other == same {
		t.Error("a key written at another index (another version) left the digest unchanged")
	}
	if withTTL := build(20, time.Minute); withTTL == same {
		t.Error("a key with a TTL left the digest unchanged")
	}
}
