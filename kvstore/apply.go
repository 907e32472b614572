package kvstore

import (
	"context"
	"errors"
	"fmt"
	"iter"
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
		s.applyEntries(c.Entries)
		s.setApplied(c.Index)
		c.Applied()
		s.met.applySeconds.Observe(time.Since(start).Seconds())
	}
	// The propose loop answers the writes left waiting.
}

// applyEntries applies ents in order, the payloads of one raft index
// (entries the leader's batcher merged) together.
func (s *Store) applyEntries(ents []raftnode.Entry) {
	for len(ents) > 0 {
		n := 1
		for n < len(ents) && ents[n].Index == ents[0].Index {
			n++
		}
		s.applyIndex(ents[:n])
		ents = ents[n:]
	}
}

// applyEntry applies e, the only payload of its raft index.
func (s *Store) applyEntry(e raftnode.Entry) { s.applyIndex([]raftnode.Entry{e}) }

// applyIndex applies ents, every payload of one raft index, under one hold
// of the state lock: no read sees a state between two of its writes, so a
// ModIndex names one observable version of a key.
func (s *Store) applyIndex(ents []raftnode.Entry) {
	index := ents[0].Index
	if index&ttlFlag != 0 {
		panic(fmt.Sprintf("kvstore: raft index %d is past 2^63", index))
	}
	batches := s.ap.batches[:0]
	for _, e := range ents {
		b, err := s.dec.decode(e.Data)
		if err != nil {
			// Skipped identically on every member, so replicas stay equal.
			s.lg.Error("skipping undecodable entry", zap.Uint64("index", index), zap.Error(err))
			continue
		}
		batches = append(batches, b)
	}
	var mine []answer
	s.mu.Lock()
	s.ap.index = index
	s.ap.now = time.Time{}
	for _, b := range batches {
		mine = s.applyBatchLocked(b, mine)
	}
	s.mu.index = max(s.mu.index, index)
	s.mu.Unlock()
	s.publishEvents(index)
	clear(batches)
	s.ap.batches = batches[:0]
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

// applyState is what the apply loop knows of the raft index it applies.
// It is the apply loop's, used under s.mu.
type applyState struct {
	index uint64
	// versioned says the batch being applied was written by a binary that
	// keeps versions (batch.Format): a write of an older one leaves its
	// keys at version 0, as a snapshot of such a binary does, so that
	// members that replay its entries and members that restore its
	// snapshot agree.
	versioned bool
	// unique says it was written in batchFormatUniqueVersions: each of its
	// requests gets versions of its own (see versionLocked). req counts
	// the requests applied, to tell them apart; multi says the one being
	// applied may write a key twice (a transaction, or several ops).
	unique  bool
	req     uint64
	multi   bool
	batches []*batch // reused
	// events are those of the index being applied, for the watch window.
	events []Event
	// now is when the index began to apply, taken when a TTL needs it:
	// the start of the deadlines of the keys it gives a TTL.
	now time.Time
}

// applyBatchLocked applies b, one payload of the raft index s.ap.index,
// and appends to mine the answers for this session's waiters. s.mu must be
// held.
func (s *Store) applyBatchLocked(b *batch, mine []answer) []answer {
	s.ap.versioned = b.Format >= batchFormatVersions
	s.ap.unique = b.Format >= batchFormatUniqueVersions
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
		res := s.applyRequestLocked(r, s.ap.index)
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
	return mine
}

// answer is the result of one of this session's requests, for its waiter.
type answer struct {
	id  uint64
	res result
}

// applyRequestLocked applies r, the request of an entry at index that the
// session check let through, and returns its result. s.mu must be held.
func (s *Store) applyRequestLocked(r *request, index uint64) result {
	s.ap.req++
	s.ap.multi = r.Txn != nil || len(r.Ops) > 1
	if r.Hash {
		return s.applyHashLocked(index)
	}
	if r.Ctl != nil {
		return s.applyControlLocked(r, index)
	}
	if r.Txn != nil {
		return s.applyTxnLocked(r)
	}
	if r.Range != nil {
		return s.applyRangeLocked(r)
	}
	if s.mode == modeConfig {
		return result{err: ErrNoKeys}
	}
	if s.mode == modeShard && !brokenFence {
		// The bucket fence: refused, not applied, unless this group
		// serves every key's bucket now.
		if err := s.fenceLocked(opKeys(r.Ops)); err != nil {
			return result{err: err}
		}
	}
	if r.ClientID == "" {
		return result{index: index, mod: s.applyOpsLocked(r.Ops)}
	}
	// Exactly-once: the request's (client, seq) in the dedup table of
	// every bucket it touches.
	if !validClientID(r.ClientID) || r.Seq == 0 {
		return result{err: ErrBadClientID}
	}
	var buf [8]int
	touched := s.touchedBuckets(opKeys(r.Ops), buf[:0])
	if e, found, tooOld := s.lookupLocked(touched, r.ClientID, r.Seq); found {
		return result{index: e.index, dup: true, mod: e.version}
	} else if tooOld {
		return result{err: ErrSeqTooOld}
	}
	mod := s.applyOpsLocked(r.Ops)
	for _, b := range touched {
		s.recordLocked(b, r.ClientID, dedupEntry{seq: r.Seq, index: index, version: mod}, index)
	}
	return result{index: index, mod: mod}
}

// putVersion gathers the versions a write's puts give their keys: the
// one they all got (the puts of one request to one bucket get the same,
// but for a key written twice; buckets differ only where one brought a
// version floor from another group), else 0.
type putVersion struct {
	v     uint64
	mixed bool
}

func (p *putVersion) add(v uint64) {
	switch {
	case p.mixed || v == p.v:
	case p.v == 0:
		p.v = v
	default:
		p.v, p.mixed = 0, true
	}
}

// applyOpsLocked applies ops in order at s.ap.index and returns the
// version its puts gave their keys (Result.ModIndex). s.mu must be held.
func (s *Store) applyOpsLocked(ops []Op) uint64 {
	var pv putVersion
	for i := range ops {
		op := &ops[i]
		switch op.Type {
		case OpPut:
			pv.add(s.putLocked(op.Key, op.Value, op.TTL).mod)
		case OpDelete:
			s.deleteLocked(op.Key, EventDelete)
		case OpExpire:
			s.expireLocked(op.Key, op.IfModIndex)
		}
	}
	return pv.v
}

// putLocked sets key to value at s.ap.index, with ttl (0: none). s.mu must
// be held.
func (s *Store) putLocked(key string, value []byte, ttl time.Duration) item {
	b := s.bucketOf(key)
	v := s.versionLocked(b)
	if s.ap.unique && s.ap.multi && v != 0 {
		// The request wrote key already, at v: this write is another.
		if old, ok := s.getLocked(key); ok && old.mod == v {
			v = s.freshVersionLocked(b)
		}
	}
	it := newKV(key, value, v, v, ttl)
	old, found := s.mu.buckets[b].data.Put(it)
	if found {
		it.create = old.createIndex() | it.create&ttlFlag
	}
	s.emitLocked(Event{Type: EventPut, Key: key, Value: it.valueBytes(), CreateIndex: it.createIndex(), KeyMod: it.mod, Bucket: b})
	if ttl > 0 && it.mod != 0 {
		s.queueExpiryLocked(key, it.mod, ttl)
	}
	return it
}

// versionLocked is the version (ModIndex) a write applied at s.ap.index
// gives a key of bucket b: the raft index, as long as it is past every
// version the bucket has held; else one past the greatest. Raft indexes
// are a group's own, and a bucket that moved here from a group with a
// longer log brings versions past this group's index: without the floor
// a key's next version would be below its last (below its CreateIndex,
// even), and a version a client saw in the old group could come again
// for another value (an If-Match that should fail would hold).
//
// One raft index carries many requests (group commit), and two of them
// may write one key. In entries of batchFormatUniqueVersions each request
// gets versions of its own: the second request to write a bucket at an
// index gets one past the first's, so the bucket's versions run ahead of
// the raft index while it takes more than one request an index. The puts
// of one request to one bucket share its version (a transaction's answer
// names it), unless the request writes one key twice, which then gets a
// fresh one (putLocked). Older entries gave every write of one index to
// one bucket the same version; then the first of two writes of one key
// answered the version the second one's value holds, and an If-Match with
// it overwrote a value its sender never saw. They are still applied that
// way, as the members that wrote them did.
//
// 0 while the store keeps no versions (s.ap.versioned unset).
func (s *Store) versionLocked(b int) uint64 {
	if !s.ap.versioned {
		return 0
	}
	bk := &s.mu.buckets[b]
	if bk.floor != 0 && bk.floorAt == s.ap.index && (!s.ap.unique || bk.floorReq == s.ap.req) {
		return bk.floor
	}
	v := max(s.ap.index, bk.floor+1)
	bk.floor, bk.floorAt, bk.floorReq = v, s.ap.index, s.ap.req
	return v
}

// freshVersionLocked is a version of bucket b no write has had, for the
// request being applied from now on.
func (s *Store) freshVersionLocked(b int) uint64 {
	s.mu.buckets[b].floorReq = 0
	return s.versionLocked(b)
}

// deleteLocked removes key at s.ap.index, an event of type t if it was
// there. s.mu must be held.
func (s *Store) deleteLocked(key string, t EventType) (item, bool) {
	b := s.bucketOf(key)
	bk := &s.mu.buckets[b]
	old, found := bk.data.Delete(item{prefix: keyPrefix(key), key: key})
	if found {
		s.emitLocked(Event{Type: t, Key: key, Bucket: b})
		if s.ap.unique && s.ap.multi && old.mod != 0 && old.mod == bk.floor && bk.floorAt == s.ap.index && bk.floorReq == s.ap.req {
			// The request wrote key at its version: a put of key after
			// this delete is another write (see putLocked).
			bk.floorReq = 0
		}
	}
	return old, found
}

// lookupLocked returns the result of (id, seq) that the dedup table of one
// of buckets remembers, if one does, and otherwise whether seq is too old
// for any of them to judge. s.mu must be held.
func (s *Store) lookupLocked(buckets []int, id string, seq uint64) (e dedupEntry, found, tooOld bool) {
	for _, b := range buckets {
		e, found, old := s.mu.buckets[b].dedup.lookup(id, seq)
		if found {
			return e, true, false
		}
		tooOld = tooOld || old
	}
	return dedupEntry{}, false, tooOld
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

// touchedBuckets appends to buf the distinct buckets of keys, in
// ascending order.
func (s *Store) touchedBuckets(keys iter.Seq[string], buf []int) []int {
	if s.nbuckets == 1 {
		return append(buf, 0)
	}
	for key := range keys {
		buf = append(buf, s.bucketOf(key))
	}
	slices.Sort(buf)
	return slices.Compact(buf)
}

func (s *Store) setApplied(index uint64) {
	// Stored under mu so Digest sees an index matching the data.
	s.mu.Lock()
	s.applied.Store(index)
	s.mu.index = max(s.mu.index, index)
	s.mu.Unlock()
	s.publishEvents(index)
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
