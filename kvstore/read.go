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
	if opts.MinIndex > 0 {
		if err := s.WaitApplied(ctx, opts.MinIndex); err != nil {
			return nil, err
		}
	}
	if !opts.Stale && !brokenLocalReads {
		index, err := s.node.ReadIndex(ctx)
		if err != nil {
			return nil, err
		}
		if err := s.WaitApplied(ctx, index); err != nil {
			return nil, err
		}
	}
	return s.local(key)
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
