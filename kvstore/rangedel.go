package kvstore

import "context"

// DeleteRangeOptions chooses the keys a DeleteRange deletes: those that
// start with Prefix, or those in [Start, End), End "" meaning to the end.
// Prefix and Start/End may not both be set, and one of them must be: a
// DeleteRange names its keys (Start "\x00" reaches every key).
type DeleteRangeOptions struct {
	Prefix     string
	Start, End string
	// ConfigVersion, on a shard group member, when set, must be the
	// version of the config this member applied when the delete applies:
	// otherwise a *WrongGroupError and nothing is deleted, since the
	// caller's map is stale (a router sends every group the same one).
	ConfigVersion uint64
}

// DeleteRangeResult is what a DeleteRange did.
type DeleteRangeResult struct {
	// Index is the raft index it applied at.
	Index uint64
	// Deleted is the number of keys it deleted.
	Deleted int
}

// rangeDelete is a DeleteRange as proposed: the range as [Start, End),
// and the config version it asks for.
type rangeDelete struct {
	Start, End    string
	ConfigVersion uint64
}

// bounds returns the range opts names as [lo, hi), hi "" for no end, or
// ErrBadRange.
func (o DeleteRangeOptions) bounds() (lo, hi string, err error) {
	switch {
	case o.Prefix != "" && (o.Start != "" || o.End != ""):
		return "", "", detailf(ErrBadRange, "a range delete takes a prefix or a start and end, not both")
	case o.Prefix == "" && o.Start == "" && o.End == "":
		return "", "", detailf(ErrBadRange, "a range delete names its keys: a prefix, or a start and end")
	case o.End != "" && o.End <= o.Start:
		return "", "", detailf(ErrBadRange, "the end %q of the range is not after its start %q", truncateKey(o.End), truncateKey(o.Start))
	case o.Prefix != "":
		return o.Prefix, prefixEnd(o.Prefix), nil
	}
	return o.Start, o.End, nil
}

// truncateKey shortens a key for a sentence.
func truncateKey(k string) string {
	if len(k) > 100 {
		return k[:100] + "..."
	}
	return k
}

// DeleteRange deletes every key in the range opts names, atomically, in
// one raft entry, and returns how many there were once it is committed
// and applied on this member; watchers get a delete event for each. A
// shard group member deletes the keys of the buckets it serves (a router
// sends the same delete to every group), waiting while a bucket its config
// gives it is still being pulled (ErrBucketMoving at the deadline, nothing
// deleted). It is not exactly-once: a write sent again deletes again,
// with the keys written in between.
func (s *Store) DeleteRange(ctx context.Context, opts DeleteRangeOptions) (DeleteRangeResult, error) {
	r, err := s.deleteRange(ctx, opts)
	s.met.countWrite(err)
	return r, err
}

func (s *Store) deleteRange(ctx context.Context, opts DeleteRangeOptions) (DeleteRangeResult, error) {
	lo, hi, err := opts.bounds()
	if err != nil {
		return DeleteRangeResult{}, err
	}
	if s.mode == modeConfig {
		return DeleteRangeResult{}, ErrNoKeys
	}
	if s.mode == modeShard {
		// As a listing: nothing is proposed while a bucket is on its way
		// here, or for another config.
		for {
			s.mu.RLock()
			err := s.shardFenceLocked(opts.ConfigVersion)
			ch := s.mu.changedC
			s.mu.RUnlock()
			if err != ErrBucketMoving {
				if err != nil {
					return DeleteRangeResult{}, err
				}
				break
			}
			if err := s.awaitChange(ctx, ch); err != nil {
				return DeleteRangeResult{}, err
			}
		}
	}
	rd := &rangeDelete{Start: lo, End: hi, ConfigVersion: opts.ConfigVersion}
	res := s.submit(ctx, request{Range: rd}, len(lo)+len(hi)+16)
	if res.err != nil {
		return DeleteRangeResult{}, res.err
	}
	return DeleteRangeResult{Index: res.index, Deleted: res.deleted}, nil
}

// applyRangeLocked applies r, a range delete: on a shard group member
// only at the config version it names and with no bucket being pulled
// here, to the buckets the group serves. s.mu must be held.
func (s *Store) applyRangeLocked(r *request) result {
	rd := r.Range
	if s.mode == modeConfig {
		return result{err: ErrNoKeys}
	}
	if rd.End != "" && rd.End <= rd.Start {
		return result{err: detailf(ErrBadRange, "the end %q of the range is not after its start %q", truncateKey(rd.End), truncateKey(rd.Start))}
	}
	if s.mode == modeShard && !brokenFence {
		if err := s.shardFenceLocked(rd.ConfigVersion); err != nil {
			return result{err: err}
		}
	}
	var keys []string
	for b := range s.mu.buckets {
		if s.mode == modeShard && !s.servesLocked(b) {
			continue
		}
		for it := s.mu.buckets[b].data.seek(rd.Start); it.valid(); it.next() {
			k := it.item().key
			if rd.End != "" && k >= rd.End {
				break
			}
			keys = append(keys, k)
		}
	}
	for _, k := range keys {
		s.deleteLocked(k, EventDelete)
	}
	return result{index: s.ap.index, deleted: len(keys)}
}
