package kvstore

import (
	"container/heap"
	"context"
)

// ListOptions chooses the keys a List returns and its consistency.
type ListOptions struct {
	// Prefix lists the keys that start with it; or Start and End list
	// [Start, End), End "" meaning to the end. Prefix and Start/End may
	// not both be set; none of them lists every key.
	Prefix     string
	Start, End string
	// After continues a listing: only keys greater than After.
	After string
	// Limit is the most keys returned; 0: no limit (the HTTP layer caps
	// it).
	Limit int
	// KeysOnly leaves every Value nil.
	KeysOnly bool
	// Stale reads this member's state; else the listing is linearizable
	// (ReadIndex, then a wait until applied), as Get.
	Stale bool
	// MinIndex, when set, first waits until this member applied it.
	MinIndex uint64
	// ConfigVersion, on a shard group member, when set, must be the
	// version of the config this member applied: otherwise a
	// *WrongGroupError, since the caller's map is stale.
	ConfigVersion uint64
}

// ListResult is one page of a listing, all of one state.
type ListResult struct {
	// KVs are the keys in key order, their values shared with the state
	// (do not modify them).
	KVs []KeyValue
	// More says keys in range follow the last one (list again with After
	// set to it).
	More bool
	// Index is the applied index of the state the listing was read at.
	Index uint64
}

// listLockedMax is the most keys a listing collects while holding the
// state's read lock; a longer one reads copy-on-write clones instead, so
// that applying goes on meanwhile.
const listLockedMax = 1024

// List returns the keys in the range opts chooses, in key order, with
// their versions, all read at one applied index. A shard group member
// lists only the buckets it serves (a router gathers the others from
// their groups) and waits while any bucket its config gives it is still
// being pulled (ErrBucketMoving at the deadline).
func (s *Store) List(ctx context.Context, opts ListOptions) (ListResult, error) {
	if s.mode == modeConfig {
		return ListResult{}, ErrNoKeys
	}
	switch {
	case opts.Prefix != "" && (opts.Start != "" || opts.End != ""):
		return ListResult{}, detailf(ErrBadList, "a listing takes a prefix or a start and end, not both")
	case opts.End != "" && opts.End <= opts.Start:
		return ListResult{}, detailf(ErrBadList, "the end %q of a listing is not after its start %q", opts.End, opts.Start)
	case opts.Limit < 0:
		return ListResult{}, detailf(ErrBadList, "limit %d is negative", opts.Limit)
	}
	if err := s.readBarrier(ctx, ReadOptions{Stale: opts.Stale, MinIndex: opts.MinIndex}); err != nil {
		return ListResult{}, err
	}
	s.met.countRead(opts.Stale)
	lo, hi := opts.Start, opts.End
	if opts.Prefix != "" {
		lo, hi = opts.Prefix, prefixEnd(opts.Prefix)
	}
	if opts.After != "" && opts.After >= lo {
		lo = opts.After + "\x00"
	}
	clones := opts.Limit == 0 || opts.Limit > listLockedMax
	for {
		if clones {
			s.mu.Lock()
		} else {
			s.mu.RLock()
		}
		unlock := s.mu.Unlock
		if !clones {
			unlock = s.mu.RUnlock
		}
		err := s.shardFenceLocked(opts.ConfigVersion)
		ch := s.mu.changedC
		if err == ErrBucketMoving {
			unlock()
			if err := s.awaitChange(ctx, ch); err != nil {
				return ListResult{}, err
			}
			continue
		}
		if err != nil {
			unlock()
			return ListResult{}, err
		}
		res := ListResult{Index: s.mu.index}
		trees := make([]*tree, 0, len(s.mu.buckets))
		for b := range s.mu.buckets {
			if !s.servesLocked(b) {
				continue
			}
			t := s.mu.buckets[b].data
			if clones {
				t = t.Clone()
			}
			trees = append(trees, t)
		}
		if clones {
			unlock()
		}
		res.KVs, res.More = listTrees(trees, lo, hi, opts.Limit, opts.KeysOnly)
		if !clones {
			unlock()
		}
		return res, nil
	}
}

// shardFenceLocked checks a listing or a range delete against a shard
// group member's applied state: the caller's config version (0: any),
// and no bucket on its way here (ErrBucketMoving). s.mu must be held.
func (s *Store) shardFenceLocked(version uint64) error {
	if s.mode != modeShard {
		return nil
	}
	c := &s.mu.shard.config
	if version != 0 && version != c.Version {
		return &WrongGroupError{Bucket: -1, Group: s.cfg.Group, Version: c.Version, AskedVersion: version}
	}
	for _, st := range s.mu.shard.status {
		if st == Pulling {
			return ErrBucketMoving
		}
	}
	return nil
}

// prefixEnd is the least key greater than every key with prefix p, ""
// when there is none (p is all 0xff).
func prefixEnd(p string) string {
	b := []byte(p)
	for i := len(b) - 1; i >= 0; i-- {
		if b[i] < 0xff {
			b[i]++
			return string(b[:i+1])
		}
	}
	return ""
}

// listTrees merges trees' keys in [lo, hi) (hi "": no end) in key order,
// at most limit of them (0: all), and says whether more follow.
func listTrees(trees []*tree, lo, hi string, limit int, keysOnly bool) ([]KeyValue, bool) {
	var h iterHeap
	for _, t := range trees {
		if it := t.seek(lo); it.valid() {
			h = append(h, it)
		}
	}
	heap.Init(&h)
	var kvs []KeyValue
	for len(h) > 0 {
		it := &h[0]
		cur := it.item()
		if hi != "" && cur.key >= hi {
			break
		}
		if limit > 0 && len(kvs) == limit {
			return kvs, true
		}
		kvs = append(kvs, cur.keyValue(keysOnly))
		if it.next(); it.valid() {
			heap.Fix(&h, 0)
		} else {
			heap.Pop(&h)
		}
	}
	return kvs, false
}

// iterHeap orders tree iterators by their current keys.
type iterHeap []iterator

func (h iterHeap) Len() int           { return len(h) }
func (h iterHeap) Less(i, j int) bool { return itemLess(h[i].item(), h[j].item()) }
func (h iterHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *iterHeap) Push(x any)        { *h = append(*h, x.(iterator)) }
func (h *iterHeap) Pop() any {
	old := *h
	it := old[len(old)-1]
	*h = old[:len(old)-1]
	return it
}
