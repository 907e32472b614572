package kvstore

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
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
	s.met.countRead(opts.Stale)
	return s.local(key)
}

func (s *Store) local(key string) ([]byte, error) {
	s.mu.RLock()
	it, ok := s.mu.data.Get(newItem(key, nil))
	s.mu.RUnlock()
	if !ok {
		return nil, ErrNotFound
	}
	return it.valueBytes(), nil
}

// Digest is the applied index, the key count and a SHA-256 over the
// sorted keys and values, all taken at one applied index.
func (s *Store) Digest() (index uint64, keys int, hash string) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	h := sha256.New()
	var n [8]byte
	s.mu.data.Ascend(func(it item) bool {
		binary.BigEndian.PutUint64(n[:], uint64(len(it.key)))
		h.Write(n[:])
		h.Write([]byte(it.key))
		binary.BigEndian.PutUint64(n[:], uint64(len(it.value)))
		h.Write(n[:])
		h.Write(it.valueBytes())
		return true
	})
	return s.applied.Load(), s.mu.data.Len(), hex.EncodeToString(h.Sum(nil))
}

// Len is the number of keys.
func (s *Store) Len() int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.mu.data.Len()
}
