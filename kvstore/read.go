package kvstore

import (
	"context"
	"time"
)

// ReadOptions states a read's consistency.
type ReadOptions struct {
	// Stale serves from this member's state without coordination. When
	// false the read is linearizable: a ReadIndex round confirms the
	// commit index with a quorum, and the read is served once this member
	// applied it.
	Stale bool
	// MinIndex, when set, first waits until this member applied it, so a
	// client that saw a write's index reads its own write from any member.
	MinIndex uint64
}

// KeyValue is a key as the state holds it.
type KeyValue struct {
	Key string
	// Value is shared with the state: do not modify it.
	Value []byte
	// CreateIndex is the raft index of the write that created the key
	// (since it was last absent), ModIndex that of its last write. Both
	// are 0 for a key last written by a binary that kept no versions.
	CreateIndex, ModIndex uint64
	// TTL is the key's time to live as last set; 0: none.
	TTL time.Duration
}

// Get reads key at the stated consistency. The value is shared with the
// state: the caller must not modify it.
func (s *Store) Get(ctx context.Context, key string, opts ReadOptions) ([]byte, error) {
	kv, _, err := s.GetKV(ctx, key, opts)
	return kv.Value, err
}

// GetKV reads key and its versions at the stated consistency, and returns
// the raft index of the state it read: the applied index after the
// ReadIndex wait, or the local one when stale. An absent key is
// ErrNotFound, still with the index.
func (s *Store) GetKV(ctx context.Context, key string, opts ReadOptions) (KeyValue, uint64, error) {
	if s.mode == modeConfig {
		return KeyValue{}, 0, ErrNoKeys
	}
	if err := s.readBarrier(ctx, opts); err != nil {
		return KeyValue{}, 0, err
	}
	s.met.countRead(opts.Stale)
	if s.mode == modeShard {
		return s.localFenced(ctx, key)
	}
	it, ok, index := s.localKV(key)
	if !ok {
		return KeyValue{}, index, ErrNotFound
	}
	return it.keyValue(false), index, nil
}

// readBarrier waits until this member's applied state may serve a read of
// opts' consistency.
func (s *Store) readBarrier(ctx context.Context, opts ReadOptions) error {
	if opts.MinIndex > 0 {
		if err := s.WaitApplied(ctx, opts.MinIndex); err != nil {
			return err
		}
	}
	if !opts.Stale && !brokenLocalReads {
		index, err := s.node.ReadIndex(ctx)
		if err != nil {
			return err
		}
		if err := s.WaitApplied(ctx, index); err != nil {
			return err
		}
	}
	return nil
}

// localKV reads key from the applied state, and the index of that state.
func (s *Store) localKV(key string) (item, bool, uint64) {
	s.mu.RLock()
	it, ok := s.mu.buckets[s.bucketOf(key)].data.Get(item{prefix: keyPrefix(key), key: key})
	index := s.mu.index
	s.mu.RUnlock()
	return it, ok, index
}

// local reads key's value from the applied state.
func (s *Store) local(key string) ([]byte, error) {
	it, ok, _ := s.localKV(key)
	if !ok {
		return nil, ErrNotFound
	}
	return it.valueBytes(), nil
}

// localFenced reads key from the applied state of a shard group member,
// if its bucket is served here (Serving or GCing), after waiting while it
// is Pulling; else a *WrongGroupError.
func (s *Store) localFenced(ctx context.Context, key string) (KeyValue, uint64, error) {
	b := s.bucketOf(key)
	for {
		s.mu.RLock()
		err := s.fenceKeyLocked(key, b)
		ch := s.mu.changedC
		it, ok := s.mu.buckets[b].data.Get(item{prefix: keyPrefix(key), key: key})
		index := s.mu.index
		s.mu.RUnlock()
		switch {
		case err == nil && !ok:
			return KeyValue{}, index, ErrNotFound
		case err == nil:
			return it.keyValue(false), index, nil
		case err != ErrBucketMoving:
			return KeyValue{}, 0, err
		}
		if err := s.awaitChange(ctx, ch); err != nil {
			return KeyValue{}, 0, err
		}
	}
}
