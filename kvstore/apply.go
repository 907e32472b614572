package kvstore

import (
	"context"
	"errors"
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
	var mine []uint64
	s.mu.Lock()
	sess := s.mu.sessions[b.Session]
	if sess == nil {
		sess = &session{Applied: map[uint64]bool{}}
		s.mu.sessions[b.Session] = sess
	}
	for _, r := range b.Reqs {
		if r.ID < sess.Watermark || sess.Applied[r.ID] {
			continue // a duplicate, or abandoned by its proposer
		}
		sess.Applied[r.ID] = true
		for _, op := range r.Ops {
			switch op.Type {
			case OpPut:
				s.mu.buckets[s.bucketOf(op.Key)].data.ReplaceOrInsert(newItem(op.Key, op.Value))
			case OpDelete:
				s.mu.buckets[s.bucketOf(op.Key)].data.Delete(newItem(op.Key, nil))
			}
		}
		if b.Session == s.session {
			mine = append(mine, r.ID)
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
		for _, id := range mine {
			if p := s.pmu.pending[id]; p != nil {
				s.finishLocked(p, result{index: e.Index})
			}
		}
		s.pmu.Unlock()
	}
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
