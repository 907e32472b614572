package kvstore

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/raftkv/raftkv/internal/testutil"
	"github.com/raftkv/raftkv/raftnode"
)

func ttlPut(key, value string, ttl time.Duration) request {
	return request{Ops: []Op{{Type: OpPut, Key: key, Value: []byte(value), TTL: ttl}}}
}

func expireOp(key string, mod uint64) request {
	return request{Ops: []Op{{Type: OpExpire, Key: key, IfModIndex: mod}}}
}

// TestExpiryQueue: a key with a TTL comes due TTL after it was applied,
// at the version it was set; it is proposed again until its key changes;
// a refresh (a put with a TTL) or a put without one supersedes it; an
// expiry applies only at the version it names, as an expire event; a new
// leader's re-base moves every deadline to now + TTL; a restored snapshot
// queues its keys with a TTL from the restore.
func TestExpiryQueue(t *testing.T) {
	s := newBareStore(t)
	w, err := s.Watch(t.Context(), WatchOptions{AfterPos: -1})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	applyOwn(t, s, 1, ttlPut("t", "1", time.Hour))
	applyOwn(t, s, 2, put("", 0, "p", "permanent"))
	if kv, _ := getKV(t, s, "t"); kv.TTL != time.Hour {
		t.Fatalf("t: %+v", kv)
	}
	due := func(at time.Time) []Op { return s.dueExpiries(at, maxExpiresPerEntry) }
	want := []Op{{Type: OpExpire, Key: "t", IfModIndex: 1}}
	if ops := due(start.Add(59 * time.Minute)); ops != nil {
		t.Fatalf("due before the TTL: %+v", ops)
	}
	later := time.Now().Add(time.Hour)
	if ops := due(later); !reflect.DeepEqual(ops, want) {
		t.Fatalf("due after the TTL: %+v", ops)
	}
	if ops := due(later); ops != nil {
		t.Fatalf("proposed again at once: %+v", ops)
	}
	if ops := due(later.Add(expireRetry)); !reflect.DeepEqual(ops, want) {
		t.Fatalf("not proposed again after %v: %+v", expireRetry, ops)
	}
	// A refresh: the expiry of version 1 is dropped, version 3's is due
	// an hour after the refresh.
	applyOwn(t, s, 3, ttlPut("t", "2", time.Hour))
	if ops := due(later.Add(time.Minute)); !reflect.DeepEqual(ops, []Op{{Type: OpExpire, Key: "t", IfModIndex: 3}}) {
		t.Fatalf("after a refresh: %+v", ops)
	}
	applyOwn(t, s, 4, expireOp("t", 1)) // stale: nothing
	applyOwn(t, s, 5, expireOp("p", 2)) // no TTL, but at that version: the state machine decides by version alone
	wantValue(t, s, "t", "2")
	applyOwn(t, s, 6, expireOp("t", 3))
	wantValue(t, s, "t", "")
	wantValue(t, s, "p", "")
	evs := brief(drain(t, w, 6))
	if got := evs[len(evs)-2:]; !reflect.DeepEqual(got, []string{`5.0 expire "p"="" c0 b0`, `6.0 expire "t"="" c0 b0`}) {
		t.Fatalf("expire events: %q", got)
	}
	// A put without a TTL makes a key permanent.
	applyOwn(t, s, 7, ttlPut("k", "1", time.Minute))
	applyOwn(t, s, 8, put("", 0, "k", "2"))
	if ops := due(time.Now().Add(24 * time.Hour)); ops != nil {
		t.Fatalf("due after a put without a TTL: %+v", ops)
	}
	// Re-based on promotion.
	applyOwn(t, s, 9, ttlPut("r", "1", time.Hour))
	rebase := time.Now().Add(50 * time.Minute)
	s.rebaseExpiries(rebase)
	if ops := due(rebase.Add(59 * time.Minute)); ops != nil {
		t.Fatalf("due before TTL after the re-base: %+v", ops)
	}
	if ops := due(rebase.Add(time.Hour)); !reflect.DeepEqual(ops, []Op{{Type: OpExpire, Key: "r", IfModIndex: 9}}) {
		t.Fatalf("due after the re-base: %+v", ops)
	}
	// A restored snapshot queues its keys with a TTL from the restore.
	r := newBareStore(t)
	restoreFrom(t, r, snapshotOf(t, s), 9)
	if ops := r.dueExpiries(time.Now().Add(time.Hour), maxExpiresPerEntry); !reflect.DeepEqual(ops, []Op{{Type: OpExpire, Key: "r", IfModIndex: 9}}) {
		t.Fatalf("due after a restore: %+v", ops)
	}
	// A client may not send an expiry.
	if _, err := r.Write(t.Context(), []Op{{Type: OpExpire, Key: "r", IfModIndex: 9}}, WriteOptions{}); !errors.Is(err, ErrBadOp) {
		t.Fatalf("a client's expiry: %v", err)
	}
}

// TestExpiryQueueOneEntryPerKey: refreshing keys' TTLs many times keeps
// one queued expiry per key (it used to keep one per refresh until each
// came due: a key refreshed every second with a TTL of an hour held 3600),
// and the key comes due at its last deadline, at its last version.
func TestExpiryQueueOneEntryPerKey(t *testing.T) {
	s := newBareStore(t)
	index := uint64(0)
	for round := range 200 {
		for _, k := range []string{"a", "b", "c"} {
			index++
			applyOwn(t, s, index, ttlPut(k, fmt.Sprint(round), time.Hour))
		}
	}
	s.exq.Lock()
	n := s.exq.h.Len()
	s.exq.Unlock()
	if n != 3 {
		t.Fatalf("%d expiries queued for 3 keys refreshed 200 times", n)
	}
	ops := s.dueExpiries(time.Now().Add(time.Hour+time.Minute), maxExpiresPerEntry)
	if len(ops) != 3 {
		t.Fatalf("due: %+v", ops)
	}
	for _, op := range ops {
		if kv, _ := getKV(t, s, op.Key); op.IfModIndex != kv.ModIndex {
			t.Errorf("expiry of %s at version %d, its last is %d", op.Key, op.IfModIndex, kv.ModIndex)
		}
	}
}

// TestFollowerDropsStaleExpiries: what a member that does not lead does
// each expiry tick (dueExpiries, its result unused) drops the due entries
// of keys deleted or rewritten since, as the leader's does; it kept one
// for every key ever written with a TTL. A due entry whose key still has
// it stays, for when this member leads.
func TestFollowerDropsStaleExpiries(t *testing.T) {
	s := newBareStore(t)
	index := uint64(0)
	for i := range 100 {
		index++
		applyOwn(t, s, index, ttlPut(fmt.Sprint("k", i), "v", time.Minute))
	}
	for i := range 99 {
		index++
		applyOwn(t, s, index, put("", 0, fmt.Sprint("k", i), "permanent"))
	}
	queued := func() int {
		s.exq.Lock()
		defer s.exq.Unlock()
		return s.exq.h.Len()
	}
	s.dueExpiries(time.Now(), maxExpiresPerEntry)
	if n := queued(); n != 100 {
		t.Fatalf("%d queued before any came due, want 100", n)
	}
	s.dueExpiries(time.Now().Add(2*time.Minute), maxExpiresPerEntry)
	if n := queued(); n != 1 {
		t.Fatalf("%d queued after they came due, want 1 (k99, still with its TTL)", n)
	}
	if ops := s.dueExpiries(time.Now().Add(time.Hour), maxExpiresPerEntry); len(ops) != 1 || ops[0].Key != "k99" {
		t.Fatalf("due once this member leads: %+v, want k99", ops)
	}
}

// TestClusterTTL: on a real 3-member cluster a key with a TTL expires on
// every member (an expire event); a key refreshed before its TTL lives
// on; a leader change does not expire a key early: the new leader
// re-bases its deadline.
func TestClusterTTL(t *testing.T) {
	c := newInprocCluster(t, 3, raftnode.Config{TickInterval: 20 * time.Millisecond})
	f := c.follower()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	// Expires everywhere.
	idx, err := c.stors[f].Apply(ctx, []Op{{Type: OpPut, Key: "short", Value: []byte("x"), TTL: time.Second}})
	if err != nil {
		t.Fatal(err)
	}
	w, err := c.stors[f].Watch(ctx, WatchOptions{Key: "short", FromIndex: idx, AfterPos: -1})
	if err != nil {
		t.Fatal(err)
	}
	for i := range c.stors {
		testutil.WaitFor(t, 30*time.Second, fmt.Sprintf("member %d to expire short", i+1), func() error {
			if _, _, err := c.stors[i].GetKV(ctx, "short", ReadOptions{Stale: true}); !errors.Is(err, ErrNotFound) {
				return fmt.Errorf("still there: %v", err)
			}
			return nil
		})
	}
	if evs := collect(t, w, 2); evs[0].Type != EventPut || evs[1].Type != EventExpire || evs[1].ModIndex <= idx {
		t.Fatalf("events of short: %q", brief(evs))
	}

	// Refreshed, it lives on: no event but puts while it is refreshed.
	const ttl = 1500 * time.Millisecond
	w, err = c.stors[f].Watch(ctx, WatchOptions{Key: "refreshed", AfterPos: -1})
	if err != nil {
		t.Fatal(err)
	}
	var last uint64
	for i := range 12 {
		last, err = c.stors[i%3].Apply(ctx, []Op{{Type: OpPut, Key: "refreshed", Value: []byte(fmt.Sprint(i)), TTL: ttl}})
		if err != nil {
			t.Fatal(err)
		}
		time.Sleep(ttl / 5) // the scenario's pace: 12 refreshes over about 2 TTLs
	}
	evs := drain(t, w, last)
	for _, e := range evs {
		if e.Type != EventPut {
			t.Fatalf("a refreshed key got %q", brief(evs))
		}
	}
	if len(evs) != 12 {
		t.Fatalf("%d events of 12 refreshes: %q", len(evs), brief(evs))
	}

	// A leader change does not expire a key early.
	testutil.Retry(t, 3, "a key outlives its TTL across a leader change", func(int) error {
		return ttlAcrossLeaderChange(t, c)
	})
}

// ttlAcrossLeaderChange puts a key with a TTL of 6s, stops the leader 3s
// later, and reads the key 7s after the put: the new leader's deadline is
// at least 6s after its election, so the key is there. A new leader that
// kept the deadline of its own apply (about the put's) would have
// expired it by then. The key then expires on its own.
func ttlAcrossLeaderChange(t *testing.T, c *inprocCluster) error {
	const ttl = 6 * time.Second
	lead := c.waitLeader()
	via := (lead + 1) % 3
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	key := fmt.Sprint("across-", time.Now().UnixNano())
	if _, err := c.stors[via].Apply(ctx, []Op{{Type: OpPut, Key: key, Value: []byte("x"), TTL: ttl}}); err != nil {
		return err
	}
	put := time.Now()
	time.Sleep(3 * time.Second) // the scenario: half the TTL passes
	c.stop(lead)
	defer c.start(lead, false)
	newLead := c.waitLeader()
	elected := time.Now()
	time.Sleep(time.Until(put.Add(ttl + time.Second)))
	_, _, err := c.stors[newLead].GetKV(ctx, key, ReadOptions{})
	read := time.Now()
	if read.After(elected.Add(ttl)) {
		return fmt.Errorf("read %v after the election: too late to judge", read.Sub(elected))
	}
	if err != nil {
		t.Fatalf("%s, put with a TTL of %v, read %v after the put and %v after a leader change: %v",
			key, ttl, read.Sub(put), read.Sub(elected), err)
	}
	testutil.WaitFor(t, 30*time.Second, key+" to expire", func() error {
		if _, _, err := c.stors[newLead].GetKV(ctx, key, ReadOptions{Stale: true}); !errors.Is(err, ErrNotFound) {
			return fmt.Errorf("still there: %v", err)
		}
		return nil
	})
	return nil
}
