package kvstore

import (
	"bytes"
	"context"
	"errors"
	"time"
	"unsafe"

	"github.com/raftkv/raftkv/raftnode"
	"go.uber.org/zap"
)

// inLogEntry is an applied entry whose data values in the state point into.
type inLogEntry struct {
	index uint64
	data  []byte
	keys  []string // written with a value in data, in order
}

// inData reports whether v lies in data's memory.
func inData(data, v []byte) bool {
	if len(v) == 0 || len(data) == 0 {
		return false
	}
	lo := uintptr(unsafe.Pointer(unsafe.SliceData(data)))
	p := uintptr(unsafe.Pointer(unsafe.SliceData(v)))
	return p >= lo && p+uintptr(len(v)) <= lo+uintptr(len(data))
}

// applyLoop applies commits in order until the node closes the channel.
func (s *Store) applyLoop() {
	defer close(s.applyDone)
	// Values are copied out of compacted entries a little at a time, so
	// the compaction after a snapshot, which drops tens of megabytes of
	// entries at once, does not hold up applying; the ticker drains the
	// rest when no commits come.
	tick := time.NewTicker(rehomeInterval)
	defer tick.Stop()
	commits := s.node.Commits()
	busy := false
	for {
		select {
		case c, ok := <-commits:
			if !ok {
				// The propose loop answers the writes left waiting.
				return
			}
			busy = true
			start := time.Now()
			if c.SnapshotPath != "" {
				if err := s.restore(c.SnapshotPath, c.Index); err != nil {
					// Every member restores the same bytes; serving a
					// state that silently differs would be worse.
					panic(err)
				}
			}
			added := 0
			for _, e := range c.Entries {
				added += s.applyEntry(e)
			}
			s.setApplied(c.Index)
			c.Applied()
			s.rehomeCompacted(rehomeMin + 2*added)
			s.met.applySeconds.Observe(time.Since(start).Seconds())
		case <-tick.C:
			if busy {
				// Commits came since the last tick, and they copy.
				busy = false
				continue
			}
			// Idle: copy more, a share at a time, each under the lock
			// alone, and stop as soon as a commit waits.
			for n := 0; n < rehomeIdle && len(commits) == 0; n += rehomeMin {
				if !s.rehomeCompacted(rehomeMin) {
					break
				}
			}
		}
	}
}

// Copying values out of compacted entries (see Store.inLog): each commit
// copies at most rehomeMin plus twice the values it added (each copy holds
// the state's lock about a microsecond), and a tick that saw no commit
// since the last one up to rehomeIdle, rehomeMin at a time.
const (
	rehomeMin      = 256
	rehomeIdle     = 16384
	rehomeInterval = 100 * time.Millisecond
)

// applyEntry applies e and returns how many of the values it stored are
// held in e's data.
func (s *Store) applyEntry(e raftnode.Entry) int {
	b, err := s.dec.decode(e.Data)
	if err != nil {
		// Skipped identically on every member, so replicas stay equal.
		s.lg.Error("skipping undecodable entry", zap.Uint64("index", e.Index), zap.Error(err))
		return 0
	}
	var inLog []string
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
				s.mu.data.ReplaceOrInsert(newItem(op.Key, op.Value))
				if inData(e.Data, op.Value) {
					inLog = append(inLog, op.Key)
				}
			case OpDelete:
				s.mu.data.Delete(newItem(op.Key, nil))
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
	if len(inLog) > 0 {
		s.inLog = append(s.inLog, inLogEntry{index: e.Index, data: e.Data, keys: inLog})
	}
	if len(mine) > 0 {
		s.pmu.Lock()
		for _, id := range mine {
			if p := s.pmu.pending[id]; p != nil {
				s.finishLocked(p, result{index: e.Index})
			}
		}
		s.pmu.Unlock()
	}
	return len(inLog)
}

// rehomeCompacted is rehome up to the raft log's first entry; it asks the
// log only when some entry is listed.
func (s *Store) rehomeCompacted(budget int) bool {
	return len(s.inLog) > 0 && s.rehome(s.node.LogFirstIndex(), budget)
}

// rehome copies out of their entries the values of entries before first,
// which the raft log no longer holds, oldest first and about budget of
// them: a value still in such an entry is all that keeps the entry's data
// alive. Values replaced or deleted since are skipped. It reports whether
// entries before first are still listed.
func (s *Store) rehome(first uint64, budget int) bool {
	compacted := func() bool { return len(s.inLog) > 0 && s.inLog[0].index < first }
	if !compacted() {
		return false
	}
	s.mu.Lock()
	for compacted() && budget > 0 {
		e := s.inLog[0]
		for _, k := range e.keys {
			if it, ok := s.mu.data.Get(newItem(k, nil)); ok && inData(e.data, it.valueBytes()) {
				s.mu.data.ReplaceOrInsert(newItem(k, bytes.Clone(it.valueBytes())))
			}
		}
		budget -= len(e.keys)
		s.inLog[0] = inLogEntry{}
		s.inLog = s.inLog[1:]
	}
	s.mu.Unlock()
	return compacted()
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
