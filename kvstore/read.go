package kvstore

import "context"

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

// Get reads key at the stated consistency. The value is shared with the
// state: the caller must not modify it.
func (s *Store) Get(ctx context.Context, key string, opts ReadOptions) ([]byte, error) {
	if s.mode == modeConfig {
		return nil, ErrNoKeys
	}
	if err := s.readBarrier(ctx, opts); err != nil {
		return nil, err
	}
	s.met.countRead(opts.Stale)
	if s.mode == modeShard {
		return s.localFenced(ctx, key)
	}
	return s.local(key)
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

func (s *Store) local(key string) ([]byte, error) {
	s.mu.RLock()
	it, ok := s.mu.buckets[s.bucketOf(key)].data.Get(newItem(key, nil))
	s.mu.RUnlock()
	if !ok {
		return nil, ErrNotFound
	}
	return it.valueBytes(), nil
}

// localFenced reads key from the applied state of a shard group member,
// if its bucket is served here (Serving or GCing), after waiting while it
// is Pulling; else a *WrongGroupError.
func (s *Store) localFenced(ctx context.Context, key string) ([]byte, error) {
	b := s.bucketOf(key)
	ops := []Op{{Key: key}}
	for {
		s.mu.RLock()
		err := s.fenceLocked(ops)
		ch := s.mu.changedC
		it, ok := s.mu.buckets[b].data.Get(newItem(key, nil))
		s.mu.RUnlock()
		switch {
		case err == nil && !ok:
			return nil, ErrNotFound
		case err == nil:
			return it.valueBytes(), nil
		case err != ErrBucketMoving:
			return nil, err
		}
		if err := s.awaitChange(ctx, ch); err != nil {
			return nil, err
		}
	}
}
