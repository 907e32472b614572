package kvstore

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/raftkv/raftkv/raftnode"
)

// hashEverywhere asks member via for a hash check and returns every live
// member's hash at its index.
func hashEverywhere(t *testing.T, c *inprocCluster, via int) (uint64, map[int]HashResult) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var r HashResult
	if err := settle(ctx, func() (err error) { r, err = c.stors[via].HashKV(ctx); return err }); err != nil {
		t.Fatalf("HashKV on member %d: %v", via+1, err)
	}
	out := map[int]HashResult{}
	for i, s := range c.stors {
		if s == nil {
			continue
		}
		h, err := s.HashAt(ctx, r.Index)
		if err != nil {
			t.Fatalf("HashAt(%d) on member %d: %v", r.Index, i+1, err)
		}
		out[i] = h
	}
	if out[via] != r {
		t.Fatalf("member %d answered HashKV with %+v, HashAt with %+v", via+1, r, out[via])
	}
	return r.Index, out
}

// sameHashes fails unless every hash of hs is that of member 0's.
func sameHashes(t *testing.T, index uint64, hs map[int]HashResult) {
	t.Helper()
	for i, h := range hs {
		if h.Index != index || h.Hash != hs[0].Hash || h.Keys != hs[0].Keys {
			t.Fatalf("at index %d member %d has %+v, member 1 %+v", index, i+1, h, hs[0])
		}
	}
}

// TestClusterHashKV checks that members agree on the state hash at every
// hash request, while writes of every kind go on, after a restart from a
// snapshot and on a member that caught up by one; and that a member whose
// state was changed behind raft's back disagrees, even where only a
// proposer session differs, which GET /debug/state's digest does not see.
func TestClusterHashKV(t *testing.T) {
	c := newInprocCluster(t, 3, raftnode.Config{TickInterval: 50 * time.Millisecond, SnapshotCount: 10, SnapshotCatchUpEntries: 2})
	lead := c.waitLeader()
	f := (lead + 1) % 3

	// Writers on every member: puts with and without a TTL, exactly-once
	// writes, transactions and deletes.
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for w := range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ctx.Err() == nil; i++ {
				s := c.stors[w]
				if s == nil {
					return
				}
				key := fmt.Sprintf("w%d-%d", w, i%20)
				var err error
				switch i % 4 {
				case 0:
					_, err = s.Put(ctx, key, []byte(fmt.Sprint(i)))
				case 1:
					_, err = s.Write(ctx, []Op{{Type: OpPut, Key: key, Value: []byte("t"), TTL: time.Hour}},
						WriteOptions{ClientID: fmt.Sprintf("writer-%d", w), Seq: uint64(i)})
				case 2:
					_, err = s.Txn(ctx, Txn{
						Compares: []Compare{{Key: key, Target: CompareExists, Op: Equal, Exists: true}},
						Success:  []TxnOp{{Type: TxnDelete, Key: key}},
						Failure:  []TxnOp{{Type: TxnPut, Key: key, Value: []byte("x")}},
					}, WriteOptions{})
				case 3:
					_, err = s.Delete(ctx, fmt.Sprintf("w%d-%d", w, (i+7)%20))
				}
				if err != nil && ctx.Err() == nil {
					time.Sleep(10 * time.Millisecond) // no leader for a moment
				}
			}
		}()
	}
	seen := map[string]bool{}
	for round := range 6 {
		index, hs := hashEverywhere(t, c, round%3)
		sameHashes(t, index, hs)
		seen[hs[0].Hash] = true
	}
	cancel()
	wg.Wait()
	if len(seen) < 2 {
		t.Fatalf("six hash checks under writes gave %d distinct hashes", len(seen))
	}

	// A member restarted from a snapshot past a hash request keeps no
	// hash of it, and agrees on the next.
	index, _ := hashEverywhere(t, c, lead)
	for i := 0; i < 30; i++ {
		c.put(lead, fmt.Sprintf("more-%d", i), []byte("v"))
	}
	c.stop(f)
	c.start(f, false)
	hctx, hcancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer hcancel()
	if _, err := c.stors[f].HashAt(hctx, index); !errors.Is(err, ErrHashNotKept) {
		t.Fatalf("restarted member's hash at %d: %v, want ErrHashNotKept", index, err)
	}
	if c.nodes[f].Status().SnapshotIndex == 0 {
		t.Fatalf("member %d restarted without a snapshot", f+1)
	}
	index, hs := hashEverywhere(t, c, f)
	sameHashes(t, index, hs)

	// A member that caught up by the leader's snapshot agrees too.
	n := c.addMember(lead)
	c.waitValue(n, "more-29", []byte("v"))
	index, hs = hashEverywhere(t, c, n)
	sameHashes(t, index, hs)

	// The check sees a key changed behind raft's back...
	s := c.stors[f]
	s.mu.Lock()
	s.applyOpsLocked([]Op{{Type: OpPut, Key: "more-3", Value: []byte("rot")}})
	s.mu.Unlock()
	index, hs = hashEverywhere(t, c, lead)
	if hs[f].Hash == hs[lead].Hash {
		t.Fatalf("member %d with a changed value has the leader's hash at %d", f+1, index)
	}
	for i, h := range hs {
		if i != f && h.Hash != hs[lead].Hash {
			t.Fatalf("member %d disagrees with the leader at %d", i+1, index)
		}
	}

	// ... and a proposer session that differs on another member, with
	// the same keys.
	s = c.stors[n]
	s.mu.Lock()
	s.mu.sessions[1<<60] = &session{Watermark: 1, Applied: map[uint64]bool{}}
	s.mu.Unlock()
	index, hs = hashEverywhere(t, c, lead)
	if hs[n].Hash == hs[lead].Hash || hs[n].Keys != hs[lead].Keys {
		t.Fatalf("member %d with a changed session: %+v, the leader %+v", n+1, hs[n], hs[lead])
	}
	if hs[f].Hash == hs[lead].Hash {
		t.Fatalf("member %d with a changed value has the leader's hash at %d", f+1, index)
	}
	testDigestsEqual(t, c, n, lead)
}

// testDigestsEqual waits until members a and b report the same Digest,
// as they do once both applied the same index.
func testDigestsEqual(t *testing.T, c *inprocCluster, a, b int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		ia, ka, ha := c.stors[a].Digest()
		ib, kb, hb := c.stors[b].Digest()
		if ia == ib && ka == kb && ha == hb {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("digests differ: member %d at %d (%d keys, %.12s), member %d at %d (%d keys, %.12s)", a+1, ia, ka, ha, b+1, ib, kb, hb)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestHashAtNoHashRequest checks that HashAt refuses an index that was
// not a hash request, and an index too old to keep.
func TestHashAtNoHashRequest(t *testing.T) {
	c := newInprocCluster(t, 1, raftnode.Config{TickInterval: 50 * time.Millisecond})
	c.waitLeader()
	put := c.put(0, "k", []byte("v"))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := c.stors[0].HashAt(ctx, put); !errors.Is(err, ErrHashNotKept) {
		t.Fatalf("HashAt of a put's index: %v", err)
	}
	first, _ := hashEverywhere(t, c, 0)
	for range maxHashRecords {
		hashEverywhere(t, c, 0)
	}
	if _, err := c.stors[0].HashAt(ctx, first); !errors.Is(err, ErrHashNotKept) {
		t.Fatalf("HashAt of a hash %d checks old: %v", maxHashRecords, err)
	}
	short, scancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer scancel()
	if _, err := c.stors[0].HashAt(short, c.stors[0].AppliedIndex()+1000); !errors.Is(err, ErrReadTimeout) {
		t.Fatalf("HashAt of an index not applied yet: %v", err)
	}
}

// TestHashKVBusy: a member that still computes maxPendingHashes hashes
// proposes no new hash request until they are done.
func TestHashKVBusy(t *testing.T) {
	c := newInprocCluster(t, 1, raftnode.Config{TickInterval: 50 * time.Millisecond})
	c.waitLeader()
	s := c.stors[0]
	s.hashes.computing.Lock() // as if a long pass were under way
	for i := range maxPendingHashes {
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		_, err := s.HashKV(ctx)
		cancel()
		if !errors.Is(err, ErrReadTimeout) {
			s.hashes.computing.Unlock()
			t.Fatalf("hash check %d while hashing is held: %v, want ErrReadTimeout", i+1, err)
		}
	}
	applied := s.AppliedIndex()
	_, err := s.HashKV(context.Background())
	s.hashes.computing.Unlock()
	if !errors.Is(err, ErrHashBusy) || s.AppliedIndex() != applied {
		t.Fatalf("hash check with %d pending: %v, applied %d -> %d; want ErrHashBusy, nothing proposed", maxPendingHashes, err, applied, s.AppliedIndex())
	}
	hashEverywhere(t, c, 0)
}

// TestDigestIndexMatchesItsState: within a commit of several raft
// indexes, before the commit is marked applied, Digest names the index
// of the state it hashed: two members at one named index must have
// hashed one state, or the convergence checks see a false mismatch.
func TestDigestIndexMatchesItsState(t *testing.T) {
	s := newBareStore(t)
	s.applyEntry(mustEntry(t, 1, &batch{Session: 1, Watermark: 1, Reqs: []request{{ID: 1, Ops: []Op{putOp("k", "1")}}}}))
	s.setApplied(1)
	_, _, at1 := s.Digest()
	s.applyEntry(mustEntry(t, 2, &batch{Session: 1, Watermark: 2, Reqs: []request{{ID: 2, Ops: []Op{putOp("k", "2")}}}}))
	index, _, hash := s.Digest() // index 2 applied, the commit not yet marked
	if hash != at1 && index != 2 {
		t.Fatalf("Digest = index %d with the state of index 2 (hash %s, %s at 1)", index, hash, at1)
	}
}
