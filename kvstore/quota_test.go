package kvstore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/raftkv/raftkv/internal/testutil"
	"github.com/raftkv/raftkv/raftnode"
	"go.uber.org/zap/zaptest"
)

// TestTreeSink: a tree's sink follows its Bytes through puts, replaces
// and deletes; a clone has none, and its changes leave the sink alone.
func TestTreeSink(t *testing.T) {
	var sink atomic.Int64
	tr := newTree()
	tr.sink = &sink
	tr.Put(newItem("a", []byte("12345")))
	tr.Put(newItem("bb", []byte("1")))
	tr.Put(newItem("a", []byte("1234567890"))) // replaced: 5 bytes more
	want := 2*itemOverhead + 1 + 10 + 2 + 1
	if tr.Bytes() != want || sink.Load() != want {
		t.Fatalf("Bytes() = %d, sink %d; want %d", tr.Bytes(), sink.Load(), want)
	}
	c := tr.Clone()
	c.Put(newItem("ccc", []byte("x")))
	c.Delete(newItem("a", nil))
	if c.sink != nil || sink.Load() != want || c.Bytes() != want+itemOverhead+4-(itemOverhead+11) {
		t.Fatalf("after the clone changed: sink %d (want %d), clone's Bytes() %d", sink.Load(), want, c.Bytes())
	}
	tr.Delete(newItem("bb", nil))
	if want -= itemOverhead + 3; tr.Bytes() != want || sink.Load() != want {
		t.Fatalf("after a delete: Bytes() = %d, sink %d; want %d", tr.Bytes(), sink.Load(), want)
	}
}

// TestClusterSpaceQuota: with QuotaBytes set, a write that would take the
// keys past it is refused on the member it reaches, before it is
// proposed; deletes go through, and once they made room, writes do again.
// DataBytes agrees on every member, through snapshots and restarts.
func TestClusterSpaceQuota(t *testing.T) {
	const quota = 20 << 10
	c := newInprocClusterWith(t, 3, raftnode.Config{TickInterval: 50 * time.Millisecond, SnapshotCount: 8},
		Config{QuotaBytes: quota})
	lead := c.waitLeader()
	f := (lead + 1) % 3
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	value := bytes.Repeat([]byte("v"), 1000)
	var size int64 // what the keys written take
	written := 0
	for ; ; written++ {
		key := fmt.Sprintf("k%02d", written)
		err := settle(ctx, func() error { _, err := c.stors[f].Put(ctx, key, value); return err })
		if errors.Is(err, ErrNoSpace) {
			if size+putSize(key, value, 0) <= quota {
				t.Fatalf("put %d refused at %d bytes, though it fits the quota of %d: %v", written, size, quota, err)
			}
			break
		}
		if err != nil {
			t.Fatalf("put %q: %v", key, err)
		}
		size += putSize(key, value, 0)
	}
	if written != quota/(1000+3+int(itemOverhead)) {
		t.Fatalf("%d puts of 1000 bytes fit a quota of %d bytes", written, quota)
	}
	refused := fmt.Sprintf("k%02d", written)
	waitDataBytes(t, c, size)
	for i, s := range c.stors {
		if err := settle(ctx, func() error { _, err := s.Get(ctx, refused, ReadOptions{}); return err }); !errors.Is(err, ErrNotFound) {
			t.Fatalf("member %d reads the refused key: %v", i+1, err)
		}
	}

	// Every kind of write that puts is refused; a transaction that only
	// deletes is not, nor a plain delete.
	over := bytes.Repeat([]byte("w"), quota)
	if err := settle(ctx, func() error { _, err := c.stors[lead].PutAll(ctx, map[string][]byte{"x": over}); return err }); !errors.Is(err, ErrNoSpace) {
		t.Fatalf("PutAll past the quota: %v", err)
	}
	if err := settle(ctx, func() error {
		_, err := c.stors[lead].Write(ctx, []Op{{Type: OpPut, Key: "x", Value: over, TTL: time.Hour}}, WriteOptions{ClientID: "c1", Seq: 1})
		return err
	}); !errors.Is(err, ErrNoSpace) {
		t.Fatalf("TTL write past the quota: %v", err)
	}
	if err := settle(ctx, func() error {
		_, err := c.stors[f].Txn(ctx, Txn{Failure: []TxnOp{{Type: TxnPut, Key: "x", Value: over}}}, WriteOptions{})
		return err
	}); !errors.Is(err, ErrNoSpace) {
		t.Fatalf("transaction that may put past the quota: %v", err)
	}
	if err := settle(ctx, func() error {
		_, err := c.stors[f].Txn(ctx, Txn{Success: []TxnOp{{Type: TxnDelete, Key: "k00"}, {Type: TxnGet, Key: "k01"}}}, WriteOptions{})
		return err
	}); err != nil {
		t.Fatalf("transaction that only deletes: %v", err)
	}
	size -= putSize("k00", value, 0)
	if err := settle(ctx, func() error { _, err := c.stors[lead].Delete(ctx, "k01"); return err }); err != nil {
		t.Fatalf("delete over the quota: %v", err)
	}
	size -= putSize("k01", value, 0)
	waitDataBytes(t, c, size)

	// Room again: a write with a client identity goes through; once the
	// keys are past the quota again, its retry is answered with its
	// first result rather than refused.
	var r Result
	if err := settle(ctx, func() (err error) {
		r, err = c.stors[f].Write(ctx, []Op{{Type: OpPut, Key: "id", Value: value}}, WriteOptions{ClientID: "c2", Seq: 7})
		return err
	}); err != nil {
		t.Fatalf("write after deletes made room: %v", err)
	}
	size += putSize("id", value, 0)
	for i := 0; ; i++ {
		key := fmt.Sprintf("fill%d", i)
		if err := settle(ctx, func() error { _, err := c.stors[f].Put(ctx, key, value); return err }); errors.Is(err, ErrNoSpace) {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		size += putSize(key, value, 0)
	}
	var again Result
	err := settle(ctx, func() (err error) {
		again, err = c.stors[f].Write(ctx, []Op{{Type: OpPut, Key: "id", Value: value}}, WriteOptions{ClientID: "c2", Seq: 7})
		return err
	})
	if err != nil || !again.Duplicate || again.Index != r.Index {
		t.Fatalf("retry of an applied write over the quota: %+v, %v; want a duplicate of %+v", again, err, r)
	}
	if err := settle(ctx, func() error {
		_, err := c.stors[f].Write(ctx, []Op{{Type: OpPut, Key: "id", Value: value}}, WriteOptions{ClientID: "c2", Seq: 8})
		return err
	}); !errors.Is(err, ErrNoSpace) {
		t.Fatalf("a new write of the same client over the quota: %v", err)
	}

	// A member restarted from its snapshot and WAL counts the same.
	if c.nodes[f].Status().SnapshotIndex == 0 {
		t.Fatalf("member %d took no snapshot after %d writes", f+1, written)
	}
	c.stop(f)
	c.start(f, false)
	waitDataBytes(t, c, size)
}

// settle calls write until it returns anything but an unavailable error
// other than ErrNoSpace (no leader, a dropped proposal: certainly not
// applied, so another try is safe), as a client would; the short test
// ticks allow an election at any time on a loaded machine.
func settle(ctx context.Context, write func() error) error {
	for {
		err := write()
		var u interface{ Unavailable() bool }
		if err == nil || errors.Is(err, ErrNoSpace) || !errors.As(err, &u) || !u.Unavailable() || ctx.Err() != nil {
			return err
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// waitDataBytes waits until every member's DataBytes is want.
func waitDataBytes(t *testing.T, c *inprocCluster, want int64) {
	t.Helper()
	testutil.WaitFor(t, 15*time.Second, fmt.Sprintf("DataBytes %d on every member", want), func() error {
		for i, s := range c.stors {
			if got := s.DataBytes(); got != want {
				return fmt.Errorf("member %d has %d", i+1, got)
			}
		}
		return nil
	})
}

// TestQuotaRetryBelowTheWindow: over the quota, a retry whose seq fell
// below its client's dedup window (it may have been applied and
// forgotten) is an unknown outcome (ErrSeqTooOld, 504), as at apply, not
// "nothing was applied" (ErrNoSpace, 503); a retry of a seq the table
// holds passes to be answered with its first result, and a new seq is
// refused.
func TestQuotaRetryBelowTheWindow(t *testing.T) {
	s := bareStore(zaptest.NewLogger(t), Config{DedupWindow: 2, QuotaBytes: 400})
	applyOwn(t, s, 1, put("c", 1, "k1", "v"))
	applyOwn(t, s, 2, put("c", 2, "k2", "v"))
	applyOwn(t, s, 3, put("c", 3, "k3", "v")) // seq 1 leaves the window
	applyOwn(t, s, 4, put("", 0, "fill", string(make([]byte, 200))))
	if r := applyOwn(t, s, 5, put("c", 1, "k1", "v")); !errors.Is(r.err, ErrSeqTooOld) {
		t.Fatalf("apply of the retry of seq 1: %v, want ErrSeqTooOld", r.err)
	}
	check := func(seq uint64) error {
		return s.checkQuota(putSize("k1", []byte("v"), 0), opKeys([]Op{{Type: OpPut, Key: "k1", Value: []byte("v")}}), WriteOptions{ClientID: "c", Seq: seq})
	}
	if err := check(1); !errors.Is(err, ErrSeqTooOld) || status(err) != 504 {
		t.Errorf("quota check of a retry below the window: %v (status %d), want ErrSeqTooOld, 504", err, status(err))
	}
	if err := check(3); err != nil {
		t.Errorf("quota check of a retry the table holds: %v, want it to pass", err)
	}
	if err := check(4); !errors.Is(err, ErrNoSpace) {
		t.Errorf("quota check of a new seq: %v, want ErrNoSpace", err)
	}
}
