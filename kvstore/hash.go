package kvstore

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"sync"
)

// A hash check compares the members of a group while writes go on, as
// etcd's HashKV does: HashKV proposes a request that changes nothing, and
// every member, as it applies that request's entry, captures its whole
// state (a copy-on-write clone, as a snapshot does) and hashes it in the
// background. Members that applied the same log agree on the state at
// every index, so they must agree on the hash at that one; HashAt reads a
// member's.
//
// The hash is a SHA-256 of the state in the snapshot format
// (writeSnapshot): every bucket's keys with their values, versions and
// TTLs, the dedup tables with their results, the proposer sessions, and a
// shard group member's configs and bucket states or a config group
// member's configs. That format is the same on every member for the same
// state: maps are written in key order, and a key's TTL as its duration,
// not its local deadline.
//
// A member keeps the last maxHashRecords hashes, in memory only. A
// restarted member that replays the entry from its WAL hashes again; one
// that did not apply the entry (the leader's snapshot, or its own on a
// restart, took it past the index) has none there: ErrHashNotKept.

// maxHashRecords is how many hashes a member keeps.
const maxHashRecords = 16

// maxPendingHashes bounds the hashes a member has still to compute when it
// proposes another hash request: each waiting one holds a clone of the
// state, which keeps the tree nodes that writes change meanwhile. A member
// over it refuses to propose (ErrHashBusy), so at most this many per
// member are proposed while waiting.
const maxPendingHashes = 4

// HashResult is a member's hash of its state at one raft index.
type HashResult struct {
	// Index is the raft index of the hash request's entry; the state
	// hashed is the one its apply left.
	Index uint64
	// Keys is the number of keys the member held there.
	Keys int
	// Hash is the SHA-256 of the state, in hex.
	Hash string
}

// hashRecord is one member's hash at one index: done is closed once
// hash is set.
type hashRecord struct {
	res  HashResult
	done chan struct{}
}

// hashLog is the member's last hash records, by ascending index.
type hashLog struct {
	mu   sync.Mutex
	recs []*hashRecord
	// computing is held while a hash is computed: one at a time, so that
	// a burst of hash requests takes one core, not all.
	computing sync.Mutex
}

func (l *hashLog) add(r *hashRecord) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.recs) == maxHashRecords {
		l.recs = append(l.recs[:0], l.recs[1:]...)
	}
	l.recs = append(l.recs, r)
}

// pending is how many of the kept hashes are still being computed.
func (l *hashLog) pending() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, r := range l.recs {
		select {
		case <-r.done:
		default:
			n++
		}
	}
	return n
}

func (l *hashLog) find(index uint64) *hashRecord {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, r := range l.recs {
		if r.res.Index == index {
			return r
		}
	}
	return nil
}

// HashKV hashes the state of every member at one raft index: it proposes
// a hash request, and once its entry is applied here returns this
// member's hash there. Read the other members' with HashAt(Index). A
// member with maxPendingHashes hashes still to compute proposes nothing:
// ErrHashBusy.
func (s *Store) HashKV(ctx context.Context) (HashResult, error) {
	if n := s.hashes.pending(); n >= maxPendingHashes {
		return HashResult{}, detailf(ErrHashBusy, "this member is still computing %d hashes of earlier checks; retry once they are done", n)
	}
	res := s.submit(ctx, request{Hash: true}, 16)
	if res.err != nil {
		return HashResult{}, res.err
	}
	return s.HashAt(ctx, res.index)
}

// HashAt returns this member's hash of its state at index, the index of a
// hash request (HashKV), once it has applied it and the hash is computed:
// ErrHashNotKept if it did not apply a hash request there or no longer
// keeps its hash, ErrReadTimeout if ctx ends first.
func (s *Store) HashAt(ctx context.Context, index uint64) (HashResult, error) {
	if err := s.WaitApplied(ctx, index); err != nil {
		return HashResult{}, err
	}
	r := s.hashes.find(index)
	if r == nil {
		return HashResult{}, detailf(ErrHashNotKept, "this member keeps no hash of index %d: it did not apply a hash request there (a snapshot may have taken it past that index), or the hash is older than the last %d it keeps", index, maxHashRecords)
	}
	select {
	case <-r.done:
		return r.res, nil
	case <-ctx.Done():
		return HashResult{}, ErrReadTimeout
	case <-s.stopc:
		return HashResult{}, ErrStopped
	}
}

// applyHashLocked applies a hash request at index: it captures the state
// and hashes it in the background. s.mu must be held for writing.
func (s *Store) applyHashLocked(index uint64) result {
	st := s.captureLocked()
	r := &hashRecord{res: HashResult{Index: index}, done: make(chan struct{})}
	for i := range st.buckets {
		r.res.Keys += st.buckets[i].data.Len()
	}
	s.hashes.add(r)
	go func() {
		s.hashes.computing.Lock()
		defer s.hashes.computing.Unlock()
		h := sha256.New()
		if err := writeSnapshot(h, st); err != nil {
			panic(err) // a hash takes every write
		}
		r.res.Hash = hex.EncodeToString(h.Sum(nil))
		close(r.done)
	}()
	return result{index: index}
}
