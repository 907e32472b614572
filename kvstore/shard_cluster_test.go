package kvstore

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"testing"
	"time"

	"github.com/raftkv/raftkv/internal/testutil"
	"github.com/raftkv/raftkv/raftnode"
	"github.com/raftkv/raftkv/shardmap"
)

// retrying calls op with a 5s deadline per try until it succeeds, fails
// for good, or 30s pass; 503s (no leader yet) and 504s (outcome unknown)
// are tried again, as a client of an idempotent operation would.
func retrying(t *testing.T, what string, op func(ctx context.Context) error) error {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		err := op(ctx)
		cancel()
		if st := status(err); st != 503 && st != 504 || time.Now().After(deadline) {
			return err
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func mustRetry(t *testing.T, what string, op func(ctx context.Context) error) {
	t.Helper()
	if err := retrying(t, what, op); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// keysOf returns every key and value of a member's state.
func keysOf(s *Store) map[string]string { return stateOf(s) }

// waitConfig waits until every member of g applied config version v: a
// proposal is answered once its proposer applied it, and the others may
// learn that it committed a moment later.
func waitConfig(t *testing.T, g *inprocCluster, v uint64) {
	t.Helper()
	testutil.WaitFor(t, 10*time.Second, fmt.Sprintf("config %d on every member", v), func() error {
		for i, s := range g.stors {
			if s == nil {
				continue
			}
			if got := s.ShardState().Config.Version; got < v {
				return fmt.Errorf("member %d applied config %d", i+1, got)
			}
		}
		return nil
	})
}

// TestClusterBucketMigration moves half the buckets of group 1 to group 2
// (two raft groups of real members in this process), as the shard
// group's driver does: both apply config 2; group 2 exports each moved
// bucket from group 1, installs it, has group 1 delete it, and finishes.
// Writes and reads of a moved bucket wait at group 2 until it arrives and
// are refused by group 1 from config 2 on; at the end every key is in
// exactly one group, the right one, with its last value, and a client's
// write applied by group 1 is a duplicate at group 2.
func TestClusterBucketMigration(t *testing.T) {
	const n = 8
	rc := raftnode.Config{TickInterval: 50 * time.Millisecond, SnapshotCount: 30, SnapshotCatchUpEntries: 5}
	g1 := newInprocClusterWith(t, 3, rc, Config{Buckets: n, Group: 1})
	g2 := newInprocClusterWith(t, 3, rc, Config{Buckets: n, Group: 2})
	h, err := shardmap.NewHistory(n)
	if err != nil {
		t.Fatal(err)
	}
	c1, err := h.Latest().Join(map[uint64][]string{1: {"http://g1"}})
	if err != nil {
		t.Fatal(err)
	}
	c2, err := c1.Join(map[uint64][]string{2: {"http://g2"}})
	if err != nil {
		t.Fatal(err)
	}
	moved := c2.BucketsOf(2)
	if len(moved) != n/2 {
		t.Fatalf("config 2 moves buckets %v", moved)
	}
	for _, g := range []*inprocCluster{g1, g2} {
		s := g.stors[g.waitLeader()]
		mustRetry(t, "config 1", func(ctx context.Context) error { return s.ProposeConfig(ctx, c1) })
		waitConfig(t, g, 1)
	}

	write := func(g *inprocCluster, i int, key, value string, seq uint64) (Result, error) {
		var r Result
		err := retrying(t, "write", func(ctx context.Context) (err error) {
			r, err = g.stors[i].Write(ctx, []Op{{Type: OpPut, Key: key, Value: []byte(value)}}, WriteOptions{ClientID: "writer", Seq: seq})
			return err
		})
		return r, err
	}
	want := map[string]string{}
	seq := uint64(0)
	firsts := map[string]Result{} // key -> the result of its first write
	seqs := map[string]uint64{}   // key -> the seq of its first write
	for i := range 40 {
		k := fmt.Sprint("key", i)
		seq++
		r, err := write(g1, i%3, k, fmt.Sprint("v", i), seq)
		if err != nil {
			t.Fatal(err)
		}
		firsts[k], seqs[k], want[k] = r, seq, fmt.Sprint("v", i)
	}
	if _, err := write(g2, 0, "key0", "x", 1000); !errors.Is(err, ErrWrongGroup) {
		t.Fatalf("group 2 took a write before it owned a bucket: %v", err)
	}

	// Group 1 applies config 2: the moved buckets freeze.
	mustRetry(t, "config 2 at group 1", func(ctx context.Context) error { return g1.stors[0].ProposeConfig(ctx, c2) })
	waitConfig(t, g1, 2)
	var movedKey, otherMovedKey, stayingKey string
	for k := range want {
		switch {
		case c2.OwnerOfKey(k) == 1:
			stayingKey = k
		case movedKey == "":
			movedKey = k
		default:
			otherMovedKey = k
		}
	}
	var wg *WrongGroupError
	if _, err := write(g1, 1, movedKey, "x", 1001); !errors.As(err, &wg) || wg.Owner != 2 || wg.Version != 2 {
		t.Fatalf("write to a bucket group 1 gave away: %v", err)
	}
	if _, err := g1.stors[2].Get(context.Background(), movedKey, ReadOptions{}); !errors.Is(err, ErrWrongGroup) {
		t.Fatalf("read of a bucket group 1 gave away: %v", err)
	}
	mustRetry(t, "export before group 2 is ready", func(ctx context.Context) error {
		_, err := g1.stors[0].ExportBucket(ctx, moved[0], 3)
		if errors.Is(err, ErrNotReady) {
			return nil
		}
		return fmt.Errorf("want ErrNotReady: %w", err)
	})

	// Group 2 applies config 2: a write and a read of a moved bucket wait.
	mustRetry(t, "config 2 at group 2", func(ctx context.Context) error { return g2.stors[1].ProposeConfig(ctx, c2) })
	if st := g2.stors[1].ShardState(); st.Status[moved[0]] != Pulling {
		t.Fatalf("group 2, bucket %d: %s, want pulling", moved[0], st.Status[moved[0]])
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	_, err = g2.stors[1].Write(ctx, []Op{{Type: OpPut, Key: movedKey, Value: []byte("early")}}, WriteOptions{})
	cancel()
	if !errors.Is(err, ErrBucketMoving) || status(err) != 503 {
		t.Fatalf("write to a pulling bucket past its deadline: %v, want ErrBucketMoving (503)", err)
	}
	waitingWrite := make(chan error, 1)
	waitingRead := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		_, err := g2.stors[1].Write(ctx, []Op{{Type: OpPut, Key: movedKey, Value: []byte("waited")}}, WriteOptions{ClientID: "waiter", Seq: 1})
		waitingWrite <- err
	}()
	wantRead := want[otherMovedKey]
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		v, err := g2.stors[2].Get(ctx, otherMovedKey, ReadOptions{})
		if err == nil && string(v) != wantRead {
			err = fmt.Errorf("read %q, want %q", v, wantRead)
		}
		waitingRead <- err
	}()

	// The driver's steps, each bucket in turn.
	for _, b := range moved {
		var d *BucketData
		mustRetry(t, "export", func(ctx context.Context) (err error) {
			d, err = g1.stors[b%3].ExportBucket(ctx, b, 2)
			return err
		})
		if b == shardmap.BucketOf(movedKey, n) {
			select {
			case err := <-waitingWrite:
				t.Fatalf("a write to a pulling bucket was answered before the bucket arrived: %v", err)
			default:
			}
		}
		for range 2 { // the second time as the driver retrying
			mustRetry(t, "install", func(ctx context.Context) error { return g2.stors[b%3].InstallBucket(ctx, d) })
		}
		if st := g2.stors[b%3].ShardState(); st.Status[b] != GCing {
			t.Fatalf("bucket %d after install: %s", b, st.Status[b])
		}
		for range 2 {
			mustRetry(t, "delete", func(ctx context.Context) error { return g1.stors[(b+1)%3].DeleteBucket(ctx, b, 2) })
		}
		mustRetry(t, "export after delete", func(ctx context.Context) error {
			if _, err := g1.stors[0].ExportBucket(ctx, b, 2); !errors.Is(err, ErrBucketGone) {
				return fmt.Errorf("want ErrBucketGone: %w", err)
			}
			return nil
		})
		for range 2 {
			mustRetry(t, "finish", func(ctx context.Context) error { return g2.stors[(b+2)%3].FinishGC(ctx, b, 2) })
		}
		// A late install of the old data changes nothing now.
		mustRetry(t, "late install", func(ctx context.Context) error { return g2.stors[0].InstallBucket(ctx, d) })
	}
	for what, ch := range map[string]chan error{"write": waitingWrite, "read": waitingRead} {
		select {
		case err := <-ch:
			if err != nil {
				t.Fatalf("the waiting %s: %v", what, err)
			}
		case <-time.After(30 * time.Second):
			t.Fatalf("the waiting %s was not answered once the buckets arrived", what)
		}
	}
	want[movedKey] = "waited"
	for _, g := range []*inprocCluster{g1, g2} {
		for i := range g.stors {
			if !g.stors[i].Settled() {
				mustRetry(t, "settle", func(ctx context.Context) error {
					if !g.stors[i].Settled() {
						return ErrBucketMoving
					}
					return nil
				})
			}
		}
	}

	// A retry of a write group 1 applied before the move is a duplicate
	// at group 2; writes after the move land in group 2.
	r, err := write(g2, 2, movedKey, "retry", seqs[movedKey])
	if err != nil || !r.Duplicate || r.Index != firsts[movedKey].Index {
		t.Fatalf("retry at group 2 of a write group 1 applied: %+v, %v; want a duplicate of index %d", r, err, firsts[movedKey].Index)
	}
	seq++
	if _, err := write(g2, 0, movedKey, "after", seq); err != nil {
		t.Fatal(err)
	}
	want[movedKey] = "after"
	seq++
	if _, err := write(g1, 0, stayingKey, "after", seq); err != nil {
		t.Fatal(err)
	}
	want[stayingKey] = "after"

	// Every key exactly once, in the group config 2 gives it, on every
	// member, also after a restart.
	g2.stop(1)
	g2.start(1, false)
	for _, g := range []*inprocCluster{g1, g2} {
		lead := g.waitLeader()
		g.waitValue(lead, map[*inprocCluster]string{g1: stayingKey, g2: movedKey}[g], []byte("after"))
	}
	union := map[string]string{}
	for gid, g := range map[uint64]*inprocCluster{1: g1, 2: g2} {
		var first map[string]string
		for i := range g.stors {
			idx := g.stors[g.waitLeader()].AppliedIndex()
			if err := g.stors[i].WaitApplied(context.Background(), idx); err != nil {
				t.Fatal(err)
			}
			keys := keysOf(g.stors[i])
			if first == nil {
				first = keys
			} else if !maps.Equal(keys, first) {
				t.Fatalf("group %d: members differ:\n%v\n%v", gid, keys, first)
			}
		}
		for k, v := range first {
			if c2.OwnerOfKey(k) != gid {
				t.Fatalf("key %q of group %d is held by group %d", k, c2.OwnerOfKey(k), gid)
			}
			if _, dup := union[k]; dup {
				t.Fatalf("key %q in both groups", k)
			}
			union[k] = v
		}
	}
	if !maps.Equal(union, want) {
		t.Fatalf("keys after the migration:\n got %v\nwant %v", union, want)
	}
}
