package kvstore

import (
	"context"
	"errors"
	"slices"
	"time"

	"github.com/raftkv/raftkv/raftnode"
	"go.uber.org/zap"
)

// applyLoop applies commits in order until the node closes the channel.
func (s *Store) applyLoop() {
	defer close(s.applyDone)
	for c := range s.node.Commits() {
		start := time.Now()
		if c.SnapshotPath != "" {
			if err := s.restore(c.SnapshotPath, c.Index); err != nil {
				// Every member restores the same bytes; serving a
				// state that silently differs would be worse.
				panic(err)
			}
		}
		for _, e := range c.Entries {
			s.applyEntry(e)
		}
		s.setApplied(c.Index)
		c.Applied()
		s.met.applySeconds.Observe(time.Since(start).Seconds())
	}
	// The propose loop answers the writes left waiting.
}

// applyEntry applies e.
func (s *Store) applyEntry(e raftnode.Entry) {
	b, err := s.dec.decode(e.Data)
	if err != nil {
		// Skipped identically on every member, so replicas stay equal.
		s.lg.Error("skipping undecodable entry", zap.Uint64("index", e.Index), zap.Error(err))
		return
	}
	var mine []answer
	s.mu.Lock()
	sess := s.mu.sessions[b.Session]
	if sess == nil {
		sess = &session{Applied: map[uint64]bool{}}
		s.mu.sessions[b.Session] = sess
	}
	for i := range b.Reqs {
		r := &b.Reqs[i]
		if r.ID < sess.Watermark || sess.Applied[r.ID] {
			continue // a duplicate, or abandoned by its proposer
		}
		sess.Applied[r.ID] = true
		res := s.applyRequestLocked(r, e.Index)
		if b.Session == s.session {
			mine = append(mine, answer{r.ID, res})
		}
	}
	if b.Session == s.session && len(b.Reqs) > 0 {
		select {
		case s.appliedBatchC <- b.Reqs[0].ID:
		default: // the propose loop is behind; the entry expires there
		}
	}
	if b.Watermark > sess.Watermark {
		sess.Watermark = b.Watermark
		for id := range sess.Applied {
			if id < b.Watermark {
				delete(sess.Applied, id)
			}
		}
	}
	s.mu.Unlock()
	if len(mine) > 0 {
		s.pmu.Lock()
		for _, a := range mine {
			if p := s.pmu.pending[a.id]; p != nil {
				s.finishLocked(p, a.res)
			}
		}
		s.pmu.Unlock()
	}
}

// answer is the result of one of this session's requests, for its waiter.
type answer struct {
	id  uint64
	res result
}

// applyRequestLocked applies r, the request of an entry at index that the
// session check let through, and returns its result. s.mu must be held.
func (s *Store) applyRequestLocked(r *request, index uint64) result {
	if r.Ctl != nil {
		return s.applyControlLocked(r, index)
	}
	if s.mode == modeConfig {
		return result{err: ErrNoKeys}
	}
	if s.mode == modeShard && !brokenFence {
		// The bucket fence: refused, not applied, unless this group
		// serves every key's bucket now.
		if err := s.fenceLocked(r.Ops); err != nil {
			return result{err: err}
		}
	}
	if r.ClientID == "" {
		s.applyOpsLocked(r.Ops)
		return result{index: index}
	}
	// Exactly-once: the request's (client, seq) in the dedup table of
	// every bucket it touches.
	if !validClientID(r.ClientID) || r.Seq == 0 {
		return result{err: ErrBadClientID}
	}
	var buf [8]int
	touched := s.touchedBuckets(r.Ops, buf[:0])
	tooOld := false
	for _, b := range touched {
		e, found, old := s.mu.buckets[b].dedup.lookup(r.ClientID, r.Seq)
		if found {
			return result{index: e.index, dup: true, version: e.version}
		}
		tooOld = tooOld || old
	}
	if tooOld {
		return result{err: ErrSeqTooOld}
	}
	s.applyOpsLocked(r.Ops)
	for _, b := range touched {
		s.recordLocked(b, r.ClientID, dedupEntry{seq: r.Seq, index: index}, index)
	}
	return result{index: index}
}

// applyOpsLocked applies ops in order. s.mu must be held.
func (s *Store) applyOpsLocked(ops []Op) {
	for _, op := range ops {
		switch op.Type {
		case OpPut:
			s.mu.buckets[s.bucketOf(op.Key)].data.ReplaceOrInsert(newItem(op.Key, op.Value))
		case OpDelete:
			s.mu.buckets[s.bucketOf(op.Key)].data.Delete(newItem(op.Key, nil))
		}
	}
}

// recordLocked remembers e as the result of client id in bucket b's dedup
// table. s.mu must be held.
func (s *Store) recordLocked(b int, id string, e dedupEntry, index uint64) {
	bk := &s.mu.buckets[b]
	if bk.dedup == nil {
		bk.dedup = newDedupTable()
	}
	bk.dedup.record(id, e, index, s.cfg.DedupWindow, s.cfg.DedupClients)
}

// touchedBuckets appends to buf the distinct buckets of ops' keys, in
// ascending order.
func (s *Store) touchedBuckets(ops []Op, buf []int) []int {
	if s.nbuckets == 1 {
		return append(buf, 0)
	}
	for _, op := range ops {
		buf = append(buf, s.bucketOf(op.Key))
	}
	slices.Sort(buf)
	return slices.Compact(buf)
}

func (s *Store) setApplied(index uint64) {
	// Stored under mu so Digest sees an index matching the data.
	s.mu.Lock()
	s.applied.Store(index)
	s.mu.Unlock()
	s.appliedMu.Lock()
	close(s.appliedC)
	s.appliedC = make(chan struct{})
	s.appliedMu.Unlock()
}

// WaitApplied returns once the state machine applied index.
func (s *Store) WaitApplied(ctx context.Context, index uint64) error {
	for {
		s.appliedMu.Lock()
		ch := s.appliedC
		s.appliedMu.Unlock()
		if s.applied.Load() >= index {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			if errors.Is(ctx.Err(), context.DeadlineExceeded) {
				return ErrReadTimeout
			}
			return ctx.Err()
		case <-s.applyDone:
			return ErrStopped
		}
	}
}
