package kvstore

import (
	"context"
	"errors"
	"strings"

	"github.com/raftkv/raftkv/shardmap"
)

// ConfigOp is one operation on the config group's latest config: exactly
// one of its fields is set.
type ConfigOp struct {
	// Join adds groups (gid -> its members' client URLs) and rebalances.
	Join map[uint64][]string
	// Leave removes groups and hands their buckets to the others.
	Leave []uint64
	// Move places one bucket on one group by hand.
	Move *MoveOp
}

// MoveOp places Bucket on group GID.
type MoveOp struct {
	Bucket int
	GID    uint64
}

// checkShape reports whether exactly one of op's operations is set, with
// something in it: before proposing, an empty Join or Leave is named as
// such (an entry carries it as absent).
func (op *ConfigOp) checkShape() error {
	n := 0
	for _, set := range []bool{op.Join != nil, op.Leave != nil, op.Move != nil} {
		if set {
			n++
		}
	}
	switch {
	case n != 1:
		return detailf(ErrBadConfigOp, "a config operation is exactly one of join, leave and move")
	case op.Join != nil && len(op.Join) == 0:
		return detailf(ErrBadConfigOp, "join names no group")
	case op.Leave != nil && len(op.Leave) == 0:
		return detailf(ErrBadConfigOp, "leave names no group")
	}
	return nil
}

// apply returns the config op makes of c, with shardmap's functions.
func (op *ConfigOp) apply(c shardmap.Config) (shardmap.Config, error) {
	var (
		next shardmap.Config
		err  error
	)
	switch {
	case len(op.Join) > 0 && len(op.Leave) == 0 && op.Move == nil:
		next, err = c.Join(op.Join)
	case len(op.Leave) > 0 && len(op.Join) == 0 && op.Move == nil:
		next, err = c.Leave(op.Leave)
	case op.Move != nil && len(op.Join) == 0 && len(op.Leave) == 0:
		next, err = c.Move(op.Move.Bucket, op.Move.GID)
	default:
		return shardmap.Config{}, detailf(ErrBadConfigOp, "a config operation is exactly one of join, leave and move")
	}
	if err != nil {
		return shardmap.Config{}, &configOpError{err: err}
	}
	return next, nil
}

// configOpError is shardmap's refusal of a config operation: a bad request
// whose sentence is shardmap's reason.
type configOpError struct{ err error }

func (e *configOpError) Error() string   { return "kvstore: " + e.err.Error() }
func (e *configOpError) Unwrap() []error { return []error{ErrBadConfigOp, e.err} }
func (e *configOpError) BadRequest() bool {
	return true
}

func (e *configOpError) HumanMessage() string {
	return strings.TrimPrefix(e.err.Error(), shardmap.ErrInvalid.Error()+": ")
}

// ConfigOp applies op to the latest config, in one entry, and returns the
// config it produced. An op shardmap refuses is answered with an error
// wrapping shardmap.ErrInvalid (BadRequest), and nothing is applied. With
// wo, a retry of an op already applied is answered with the config it
// produced then.
func (s *Store) ConfigOp(ctx context.Context, op ConfigOp, wo WriteOptions) (shardmap.Config, error) {
	if s.mode != modeConfig {
		return shardmap.Config{}, ErrNotConfigGroup
	}
	if err := op.checkShape(); err != nil {
		return shardmap.Config{}, err
	}
	if err := checkWriteOptions(wo); err != nil {
		return shardmap.Config{}, err
	}
	size := 64
	for _, urls := range op.Join {
		for _, u := range urls {
			size += len(u) + 16
		}
	}
	r := s.submit(ctx, request{ClientID: wo.ClientID, Seq: wo.Seq, Ctl: &control{Kind: ctlConfigOp, Op: op.wire()}}, size+8*len(op.Leave))
	if r.err != nil {
		return shardmap.Config{}, r.err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.mu.history.Query(int64(r.version)).Clone(), nil
}

// QueryConfig returns config version (the latest when version is negative
// or past the latest), linearizable unless opts.Stale.
func (s *Store) QueryConfig(ctx context.Context, version int64, opts ReadOptions) (shardmap.Config, error) {
	if s.mode != modeConfig {
		return shardmap.Config{}, ErrNotConfigGroup
	}
	if err := s.readBarrier(ctx, opts); err != nil {
		return shardmap.Config{}, err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.mu.history.Query(version).Clone(), nil
}

// WaitConfigVersion returns once this member's latest config is version
// or newer: a long poll. At the deadline it answers ErrConfigWaitTimeout.
func (s *Store) WaitConfigVersion(ctx context.Context, version uint64) error {
	if s.mode != modeConfig {
		return ErrNotConfigGroup
	}
	for {
		s.mu.RLock()
		latest := s.mu.history.Latest().Version
		ch := s.mu.changedC
		s.mu.RUnlock()
		if latest >= version {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			if errors.Is(ctx.Err(), context.DeadlineExceeded) {
				return ErrConfigWaitTimeout
			}
			return ctx.Err()
		case <-s.applyDone:
			return ErrStopped
		}
	}
}

// LatestConfig returns a copy of the newest config this member applied.
func (s *Store) LatestConfig() shardmap.Config {
	s.mu.RLock()
	configs := s.mu.history.Configs
	s.mu.RUnlock()
	if len(configs) == 0 {
		return shardmap.Config{}
	}
	return configs[len(configs)-1].Clone()
}

// ConfigHistory returns a copy of every config, version 0 first.
func (s *Store) ConfigHistory() shardmap.History {
	s.mu.RLock()
	configs := s.mu.history.Configs // configs are never changed once appended
	s.mu.RUnlock()
	h := shardmap.History{Configs: make([]shardmap.Config, len(configs))}
	for i, c := range configs {
		h.Configs[i] = c.Clone()
	}
	return h
}

// applyConfigOpLocked applies a config operation (see ConfigOp). s.mu must
// be held.
func (s *Store) applyConfigOpLocked(r *request, index uint64) result {
	if r.Ctl.Op == nil {
		return result{err: detailf(ErrBadConfigOp, "a config operation is exactly one of join, leave and move")}
	}
	if r.ClientID != "" {
		if !validClientID(r.ClientID) || r.Seq == 0 {
			return result{err: ErrBadClientID}
		}
		e, found, tooOld := s.mu.buckets[0].dedup.lookup(r.ClientID, r.Seq)
		switch {
		case found:
			return result{index: e.index, dup: true, version: e.version}
		case tooOld:
			return result{err: ErrSeqTooOld}
		}
	}
	op, err := r.Ctl.Op.op()
	if err != nil {
		return result{err: err}
	}
	next, err := op.apply(s.mu.history.Latest())
	if err != nil {
		return result{err: err}
	}
	if err := s.mu.history.Append(next); err != nil {
		// shardmap's operations make the successor of their config.
		panic(err)
	}
	if r.ClientID != "" {
		s.recordLocked(0, r.ClientID, dedupEntry{seq: r.Seq, index: index, version: next.Version}, index)
	}
	s.notifyLocked()
	return result{index: index, version: next.Version}
}
