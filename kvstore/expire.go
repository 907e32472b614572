package kvstore

import (
	"container/heap"
	"context"
	"sync"
	"time"

	"go.uber.org/zap"
)

// expiry is one key with a TTL in the expiry queue: its version when it
// was set, and when the key is due.
type expiry struct {
	deadline time.Time
	key      string
	mod      uint64
	ttl      time.Duration
}

// expiryQueue is this member's in-memory queue of keys with a TTL, by
// deadline, with at most one entry per key: a key written again with a
// TTL moves its entry. Entries are not removed when their key is deleted
// or written without a TTL: an entry whose key is no longer at its
// version is dropped when it comes due.
type expiryQueue struct {
	sync.Mutex
	h expiryHeap
}

// expiryHeap is a min-heap of expiries by deadline that knows where each
// key's entry is.
type expiryHeap struct {
	items []expiry
	pos   map[string]int // key -> index in items
}

func (h *expiryHeap) Len() int           { return len(h.items) }
func (h *expiryHeap) Less(i, j int) bool { return h.items[i].deadline.Before(h.items[j].deadline) }
func (h *expiryHeap) Swap(i, j int) {
	h.items[i], h.items[j] = h.items[j], h.items[i]
	h.pos[h.items[i].key] = i
	h.pos[h.items[j].key] = j
}

func (h *expiryHeap) Push(x any) {
	e := x.(expiry)
	if h.pos == nil {
		h.pos = map[string]int{}
	}
	h.pos[e.key] = len(h.items)
	h.items = append(h.items, e)
}

func (h *expiryHeap) Pop() any {
	e := h.items[len(h.items)-1]
	h.items[len(h.items)-1] = expiry{}
	h.items = h.items[:len(h.items)-1]
	delete(h.pos, e.key)
	return e
}

// set queues e, replacing the entry of its key if there is one.
func (h *expiryHeap) set(e expiry) {
	if i, ok := h.pos[e.key]; ok {
		h.items[i] = e
		heap.Fix(h, i)
		return
	}
	heap.Push(h, e)
}

// reset empties the queue.
func (h *expiryHeap) reset() { *h = expiryHeap{} }

// maxExpiresPerEntry bounds the expiries the leader proposes in one
// request.
const maxExpiresPerEntry = 1024

// expireRetry is how long an expiry the leader proposed waits before it
// is proposed again, should its entry have been lost.
const expireRetry = 2 * time.Second

// queueExpiryLocked queues key, just written at mod with ttl, from the
// time the apply loop applies the index. s.mu must be held by the apply
// loop.
func (s *Store) queueExpiryLocked(key string, mod uint64, ttl time.Duration) {
	if s.ap.now.IsZero() {
		s.ap.now = time.Now()
	}
	s.exq.Lock()
	s.exq.h.set(expiry{deadline: s.ap.now.Add(ttl), key: key, mod: mod, ttl: ttl})
	s.exq.Unlock()
}

// queueTreeExpiries queues every key of trees with a TTL from now (a
// restored snapshot, an installed bucket).
func (s *Store) queueTreeExpiries(now time.Time, trees ...*tree) {
	s.exq.Lock()
	defer s.exq.Unlock()
	for _, t := range trees {
		t.Ascend(func(it item) bool {
			if it.hasTTL() && it.mod != 0 {
				s.exq.h.set(expiry{deadline: now.Add(it.ttl()), key: it.key, mod: it.mod, ttl: it.ttl()})
			}
			return true
		})
	}
}

// rebaseExpiries restarts every deadline at now + its TTL: this member
// became leader, and a key must not expire early because the deadlines
// of another member ran on another clock (etcd's lessor extends its
// leases on promotion likewise). A key may live up to one TTL longer.
func (s *Store) rebaseExpiries(now time.Time) {
	s.exq.Lock()
	for i := range s.exq.h.items {
		s.exq.h.items[i].deadline = now.Add(s.exq.h.items[i].ttl)
	}
	heap.Init(&s.exq.h)
	s.exq.Unlock()
}

// dueExpiries returns the expiries to propose at now: at most max keys
// past their deadline still at the version queued, in a bucket served
// here. Each stays queued, due again after expireRetry, until its key
// changes (its expiry applied, or a write). Entries of keys changed since
// are dropped.
func (s *Store) dueExpiries(now time.Time, max int) []Op {
	var ops []Op
	var retry []expiry
	s.mu.RLock()
	s.exq.Lock()
	for s.exq.h.Len() > 0 && len(ops) < max && !s.exq.h.items[0].deadline.After(now) {
		e := heap.Pop(&s.exq.h).(expiry)
		b := s.bucketOf(e.key)
		it, ok := s.mu.buckets[b].data.Get(item{prefix: keyPrefix(e.key), key: e.key})
		if !ok || it.mod != e.mod || !it.hasTTL() || !s.servesLocked(b) {
			continue
		}
		ops = append(ops, Op{Type: OpExpire, Key: e.key, IfModIndex: e.mod})
		e.deadline = now.Add(expireRetry)
		retry = append(retry, e)
	}
	for _, e := range retry {
		s.exq.h.set(e)
	}
	s.exq.Unlock()
	s.mu.RUnlock()
	return ops
}

// expireLocked applies an OpExpire: key is deleted (an expire event) if
// it is still at version mod and, on a shard group member, in a bucket
// served here. s.mu must be held.
func (s *Store) expireLocked(key string, mod uint64) {
	b := s.bucketOf(key)
	if mod == 0 || !s.servesLocked(b) {
		return
	}
	if it, ok := s.mu.buckets[b].data.Get(item{prefix: keyPrefix(key), key: key}); ok && it.mod == mod {
		s.deleteLocked(key, EventExpire)
	}
}

// expireLoop, on the leader, proposes the deletes of keys whose TTL ran
// out, every Config.ExpiryTick, until Stop. Only the leader acts, so that
// no member expires a key by its own clock; a member that becomes leader
// re-bases every deadline first.
func (s *Store) expireLoop() {
	defer close(s.expireDone)
	tick := time.NewTicker(s.cfg.ExpiryTick)
	defer tick.Stop()
	wasLeader := false
	for {
		select {
		case <-s.stopc:
			return
		case <-tick.C:
		}
		leader := s.node.Leader() == s.node.ID()
		if leader && !wasLeader {
			s.rebaseExpiries(time.Now())
		}
		wasLeader = leader
		if !leader {
			// What comes due here the leader proposes; taking it drops
			// the entries of keys changed since, or a member that does
			// not lead would keep one for every key ever given a TTL.
			s.dueExpiries(time.Now(), maxExpiresPerEntry)
			continue
		}
		ops := s.dueExpiries(time.Now(), maxExpiresPerEntry)
		if len(ops) == 0 {
			continue
		}
		size := 0
		for i := range ops {
			size += len(ops[i].Key) + 16
		}
		ctx, cancel := context.WithTimeout(context.Background(), expireRetry)
		r := s.submit(ctx, request{Ops: ops}, size)
		cancel()
		if r.err != nil && r.err != ErrStopped {
			// Proposed again after expireRetry; an expiry that did apply
			// meanwhile is dropped then.
			s.lg.Debug("proposing expiries", zap.Int("keys", len(ops)), zap.Error(r.err))
		}
	}
}
