package kvstore

import (
	"iter"
	"time"

	"github.com/raftkv/raftkv/internal/units"
)

// putSize is what a put of key and value (with a TTL: ttl > 0) adds to
// DataBytes at most: see itemSize.
func putSize(key string, value []byte, ttl time.Duration) int64 {
	n := int64(len(key)+len(value)) + itemOverhead
	if ttl > 0 {
		n += ttlBytes
	}
	return n
}

// putSize is what t's puts add to DataBytes at most: those of the branch
// that puts more.
func (t *Txn) putSize() int64 {
	var most int64
	for _, ops := range [][]TxnOp{t.Success, t.Failure} {
		var n int64
		for i := range ops {
			if ops[i].Type == TxnPut {
				n += putSize(ops[i].Key, ops[i].Value, ops[i].TTL)
			}
		}
		most = max(most, n)
	}
	return most
}

// checkQuota refuses, with ErrNoSpace, a write whose puts add size to
// DataBytes when that would pass Config.QuotaBytes; a write that puts
// nothing always passes. A write with a client identity that the state
// machine applied already passes too: it is answered with its first
// result, not applied again, and must not be told it was not applied. One
// whose seq is below its client's dedup window here may have been applied
// and forgotten: it gets ErrSeqTooOld (an unknown outcome), as it would at
// apply.
func (s *Store) checkQuota(size int64, keys iter.Seq[string], wo WriteOptions) error {
	q := s.cfg.QuotaBytes
	if q <= 0 || size == 0 {
		return nil
	}
	have := s.dataBytes.Load()
	if have+size <= q {
		return nil
	}
	if wo.ClientID != "" {
		switch found, tooOld := s.appliedBefore(keys, wo); {
		case found:
			return nil
		case tooOld:
			return ErrSeqTooOld
		}
	}
	return detailf(ErrNoSpace, "the keys on this member take %s of its %s space quota, and this write would add up to %s; delete keys to make room, or raise --quota-bytes on every member; nothing was applied",
		units.Bytes(have), units.Bytes(q), units.Bytes(size))
}

// appliedBefore reports whether the dedup table of a bucket of keys holds
// wo's result, and if not, whether wo's seq is below the window of its
// client there (lookupLocked).
func (s *Store) appliedBefore(keys iter.Seq[string], wo WriteOptions) (found, tooOld bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	var buf [8]int
	_, found, tooOld = s.lookupLocked(s.touchedBuckets(keys, buf[:0]), wo.ClientID, wo.Seq)
	return found, tooOld
}
