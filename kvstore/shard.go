package kvstore

import (
	"context"
	"errors"
	"iter"
	"slices"
	"strings"
	"time"

	"github.com/raftkv/raftkv/shardmap"
)

// BucketStatus is what a shard group member does with one bucket
// (shardmap's, which shardgroup's driver shares).
type BucketStatus = shardmap.BucketStatus

// The bucket states of a shard group: see shardmap.
const (
	NotOwned  = shardmap.NotOwned
	Serving   = shardmap.Serving
	Pulling   = shardmap.Pulling
	BePulling = shardmap.BePulling
	GCing     = shardmap.GCing
)

// ShardState is a shard group member's applied state of its buckets.
type ShardState struct {
	Group uint64
	// Config is the applied config; Version 0 means none yet.
	Config shardmap.Config
	// Prev is the config before Config: who held each bucket.
	Prev shardmap.Config
	// Status holds each bucket's state; len(Status) is the bucket count.
	Status []BucketStatus
	// Joined says MarkJoined was applied: this group has asked to join
	// the config once.
	Joined       bool
	AppliedIndex uint64
}

// shardState is the replicated state of a shard group beside its keys.
type shardState struct {
	config, prev shardmap.Config
	status       []BucketStatus
	joined       bool
}

func newShardState(buckets int) shardState {
	c := shardmap.Config{Buckets: make([]uint64, buckets), Groups: map[uint64][]string{}}
	return shardState{config: c, prev: c.Clone(), status: make([]BucketStatus, buckets)}
}

func (st *shardState) clone() shardState {
	return shardState{config: st.config.Clone(), prev: st.prev.Clone(), status: slices.Clone(st.status), joined: st.joined}
}

// settled reports whether every bucket is Serving or NotOwned: no
// migration is under way, and the next config may apply.
func (st *shardState) settled() bool {
	for _, b := range st.status {
		if b != Serving && b != NotOwned {
			return false
		}
	}
	return true
}

// controlKind says what a control request does.
type controlKind uint8

const (
	ctlConfig   controlKind = iota + 1 // ProposeConfig
	ctlInstall                         // InstallBucket
	ctlDelete                          // DeleteBucket
	ctlFinishGC                        // FinishGC
	ctlJoined                          // MarkJoined
	ctlConfigOp                        // ConfigOp, on the config group
)

// control is a request that changes a shard group's bucket states, or the
// config group's configs, instead of keys. Every field is checked at
// apply, where the outcome is decided from the state alone. It holds no
// map (see confcodec.go).
type control struct {
	Kind    controlKind
	Config  []byte        // ctlConfig: the config's binary form (marshalConfig)
	Bucket  int           // ctlInstall, ctlDelete, ctlFinishGC
	Version uint64        // ctlInstall, ctlDelete, ctlFinishGC
	Data    []byte        // ctlInstall: the BucketData's binary form
	Op      *wireConfigOp // ctlConfigOp
}

// LinearizableShardState returns the shard state as of a linearizable
// read: it includes every change the group applied before the call.
func (s *Store) LinearizableShardState(ctx context.Context) (ShardState, error) {
	if err := s.readBarrier(ctx, ReadOptions{}); err != nil {
		return ShardState{}, err
	}
	return s.ShardState(), nil
}

// ShardState returns a copy of the applied shard state, consistent with
// itself and AppliedIndex.
func (s *Store) ShardState() ShardState {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.mode != modeShard {
		return ShardState{AppliedIndex: s.applied.Load()}
	}
	st := s.mu.shard.clone()
	return ShardState{Group: s.cfg.Group, Config: st.config, Prev: st.prev, Status: st.status, Joined: st.joined,
		AppliedIndex: s.applied.Load()}
}

// ShardChanged returns a channel closed at the next change of the applied
// shard state (its config, a bucket's status, Joined) or, on a config
// group member, of the config history. AppliedIndex alone does not close
// it.
func (s *Store) ShardChanged() <-chan struct{} {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.mu.changedC
}

// notifyLocked wakes those waiting on ShardChanged. s.mu must be held for
// writing.
func (s *Store) notifyLocked() {
	close(s.mu.changedC)
	s.mu.changedC = make(chan struct{})
}

// Settled reports whether every bucket is Serving or NotOwned.
func (s *Store) Settled() bool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.mode != modeShard || s.mu.shard.settled()
}

// ProposeConfig proposes c as this group's next config, in one entry. It
// applies iff c.Version is the applied config's plus one and the group is
// Settled; otherwise the entry changes nothing. ProposeConfig returns nil
// when the applied config's version is c.Version or more afterwards,
// ErrNotSettled when a migration kept c from applying, ErrNotReady when c
// does not follow the applied config.
func (s *Store) ProposeConfig(ctx context.Context, c shardmap.Config) error {
	if err := s.checkShardGroup(); err != nil {
		return err
	}
	if err := s.checkConfig(&c); err != nil {
		return err
	}
	s.mu.RLock()
	done := s.mu.shard.config.Version >= c.Version
	s.mu.RUnlock()
	if done {
		return nil
	}
	data := marshalConfig(&c)
	return s.submitControl(ctx, &control{Kind: ctlConfig, Config: data}, len(data)+16)
}

// ExportBucket returns bucket b's keys and dedup table as of config
// version, for its new owner. It is linearizable: it waits until this
// member applied everything committed when it was called. It answers
// ErrNotReady while the applied config is older than version, and
// ErrBucketGone unless the applied config is version and b is BePulling.
// The data is a copy-on-write clone: encoding it holds no lock.
func (s *Store) ExportBucket(ctx context.Context, b int, version uint64) (*BucketData, error) {
	if err := s.checkShardGroup(); err != nil {
		return nil, err
	}
	if err := s.checkBucket(b); err != nil {
		return nil, err
	}
	if err := s.readBarrier(ctx, ReadOptions{}); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.exportLocked(b, version)
}

// exportLocked is ExportBucket on the applied state. s.mu must be held
// for writing (a clone changes the original's tags).
func (s *Store) exportLocked(b int, version uint64) (*BucketData, error) {
	cur, st := s.mu.shard.config.Version, s.mu.shard.status[b]
	switch {
	case brokenFence:
	case cur < version:
		return nil, notReadyError(cur, version)
	case cur > version || st != BePulling:
		return nil, detailf(ErrBucketGone, "bucket %d is %s here at config %d, asked for at %d", b, st, cur, version)
	}
	bk := s.mu.buckets[b]
	return &BucketData{Bucket: b, Version: version, data: bk.data.Clone(), dedup: bk.dedup.clone(), floor: bk.floor}, nil
}

// InstallBucket makes d the data and dedup table of bucket d.Bucket, in
// one entry. It applies iff the applied config is d.Version and the
// bucket is Pulling, which it leaves GCing. It returns nil also when that
// is done already (the bucket GCing or Serving at d.Version, or the
// config past it), ErrNotReady while the config is older.
func (s *Store) InstallBucket(ctx context.Context, d *BucketData) error {
	if err := s.checkShardGroup(); err != nil {
		return err
	}
	if d == nil || d.data == nil {
		return detailf(ErrBadShardOp, "no bucket data")
	}
	if err := s.checkBucket(d.Bucket); err != nil {
		return err
	}
	if err := d.checkKeys(s.nbuckets); err != nil {
		return err
	}
	if s.alreadyDone(ctlInstall, d.Bucket, d.Version) {
		return nil
	}
	data, err := d.MarshalBinary()
	if err != nil {
		return err
	}
	return s.submitControl(ctx, &control{Kind: ctlInstall, Bucket: d.Bucket, Version: d.Version, Data: data}, len(data)+32)
}

// DeleteBucket drops bucket b's data and dedup table once its new owner
// installed them, in one entry. It applies iff the applied config is
// version and b is BePulling, which it leaves NotOwned. It returns nil
// also when that is done already or the config is past version,
// ErrNotReady while the config is older.
func (s *Store) DeleteBucket(ctx context.Context, b int, version uint64) error {
	if err := s.checkShardGroup(); err != nil {
		return err
	}
	if err := s.checkBucket(b); err != nil {
		return err
	}
	if s.alreadyDone(ctlDelete, b, version) {
		return nil
	}
	return s.submitControl(ctx, &control{Kind: ctlDelete, Bucket: b, Version: version}, 32)
}

// FinishGC makes bucket b Serving once its previous owner deleted its
// copy, in one entry. It applies iff the applied config is version and b
// is GCing. It returns nil also when that is done already.
func (s *Store) FinishGC(ctx context.Context, b int, version uint64) error {
	if err := s.checkShardGroup(); err != nil {
		return err
	}
	if err := s.checkBucket(b); err != nil {
		return err
	}
	if s.alreadyDone(ctlFinishGC, b, version) {
		return nil
	}
	return s.submitControl(ctx, &control{Kind: ctlFinishGC, Bucket: b, Version: version}, 32)
}

// MarkJoined records, in one entry, that this group asked to join the
// config (ShardState.Joined), so that it asks only once. from, unless
// its Version is 0, is the config the group starts from: the last before
// the join's that does not list it. A group that owns no bucket moves to
// it at once instead of taking the configs before it one by one, and so
// never takes as its own a config that lists an earlier group of the
// same id (one that left: this group's log is another).
func (s *Store) MarkJoined(ctx context.Context, from shardmap.Config) error {
	if err := s.checkShardGroup(); err != nil {
		return err
	}
	s.mu.RLock()
	done := s.mu.shard.joined
	s.mu.RUnlock()
	if done {
		return nil
	}
	c := &control{Kind: ctlJoined}
	if from.Version > 0 {
		if err := s.checkConfig(&from); err != nil {
			return err
		}
		c.Config = marshalConfig(&from)
	}
	return s.submitControl(ctx, c, 16+len(c.Config))
}

// submitControl proposes c and returns its outcome at apply.
func (s *Store) submitControl(ctx context.Context, c *control, size int) error {
	return s.submit(ctx, request{Ctl: c}, size).err
}

// alreadyDone reports whether the applied state shows that the operation
// kind on bucket b at version has been applied, or will never need to be:
// facts that stay true as the state moves on, so nothing need be proposed.
func (s *Store) alreadyDone(kind controlKind, b int, version uint64) bool {
	if brokenFence && kind != ctlFinishGC {
		return false
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	apply, err := bucketVerdict(kind, s.mu.shard.config.Version, b, s.mu.shard.status[b], version)
	return !apply && err == nil
}

// bucketVerdict decides an operation of kind on bucket b at version from
// the applied config version cur and b's status st: whether it applies,
// and otherwise the answer (nil: done already, or past).
func bucketVerdict(kind controlKind, cur uint64, b int, st BucketStatus, version uint64) (apply bool, err error) {
	switch {
	case cur > version:
		return false, nil // every migration of version ended before cur applied
	case cur < version:
		return false, notReadyError(cur, version)
	}
	switch kind {
	case ctlInstall:
		switch st {
		case Pulling:
			return true, nil
		case GCing, Serving:
			return false, nil
		}
	case ctlDelete:
		switch st {
		case BePulling:
			return true, nil
		case NotOwned:
			return false, nil
		}
	case ctlFinishGC:
		switch st {
		case GCing:
			return true, nil
		case Serving:
			return false, nil
		case Pulling:
			return false, detailf(ErrNotReady, "bucket %d is not installed yet at config %d", b, cur)
		}
	}
	return false, detailf(ErrBucketState, "bucket %d is %s at config %d", b, st, cur)
}

func notReadyError(cur, version uint64) error {
	return detailf(ErrNotReady, "this group applied config %d, not yet %d", cur, version)
}

// applyControlLocked applies r, a control request. s.mu must be held.
func (s *Store) applyControlLocked(r *request, index uint64) result {
	c := r.Ctl
	switch {
	case c.Kind == ctlConfigOp && s.mode == modeConfig:
		return s.applyConfigOpLocked(r, index)
	case c.Kind == ctlConfigOp:
		return result{err: ErrNotConfigGroup}
	case s.mode != modeShard:
		return result{err: ErrNotShardGroup}
	}
	var err error
	before := s.mu.shard.config.Version
	defer func() {
		if v := s.mu.shard.config.Version; v != before {
			s.noteConfigAtLocked(index, v)
		}
	}()
	switch c.Kind {
	case ctlConfig:
		err = s.applyConfigLocked(c.Config)
	case ctlInstall, ctlDelete, ctlFinishGC:
		err = s.applyBucketOpLocked(c)
	case ctlJoined:
		err = s.applyJoinedLocked(c.Config)
	default:
		err = detailf(ErrBadShardOp, "unknown control operation %d", c.Kind)
	}
	return result{index: index, err: err}
}

// applyConfigLocked applies the config data encodes (see ProposeConfig).
func (s *Store) applyConfigLocked(data []byte) error {
	cfg, err := unmarshalConfig(data)
	if err != nil {
		return err
	}
	c := &cfg
	if err := s.checkConfig(c); err != nil {
		return err
	}
	sh := &s.mu.shard
	cur := sh.config
	switch {
	case c.Version <= cur.Version:
		return nil
	case c.Version > cur.Version+1:
		return detailf(ErrNotReady, "config %d does not follow the applied config %d", c.Version, cur.Version)
	case !sh.settled():
		return ErrNotSettled
	}
	g := s.cfg.Group
	for b := range sh.status {
		was, will := cur.Owner(b) == g, c.Owner(b) == g
		switch {
		case was && will:
			sh.status[b] = Serving
		case will && (cur.Version == 0 || cur.Owner(b) == 0):
			sh.status[b] = Serving // from nobody: nothing to pull
			s.emitLocked(Event{Type: EventBucketIn, Bucket: b, Version: c.Version})
		case will:
			sh.status[b] = Pulling
		case was:
			sh.status[b] = BePulling
			s.emitLocked(Event{Type: EventBucketOut, Bucket: b, Version: c.Version})
		default:
			sh.status[b] = NotOwned
		}
	}
	// After the last bucket_out: a watch of this group then knows it has
	// every event the group will ever have.
	if _, was := cur.Groups[g]; was {
		if _, will := c.Groups[g]; !will {
			s.emitLocked(Event{Type: EventGroupLeft, Bucket: -1, Version: c.Version})
		}
	}
	sh.prev, sh.config = cur, cfg
	s.notifyLocked()
	return nil
}

// applyJoinedLocked applies MarkJoined: Joined, and, when data holds a
// config (the applied one or later) that does not list this group and
// the group owns no bucket, that config as the applied one and as Prev
// (see MarkJoined; the two the same tell the group's driver where its
// join put it). Every bucket stays NotOwned, so no event is due.
func (s *Store) applyJoinedLocked(data []byte) error {
	sh := &s.mu.shard
	if sh.joined {
		return nil
	}
	if len(data) > 0 {
		from, err := unmarshalConfig(data)
		if err != nil {
			return err
		}
		if err := s.checkConfig(&from); err != nil {
			return err
		}
		if _, listed := from.Groups[s.cfg.Group]; listed {
			return detailf(ErrBadShardOp, "config %d, to start from, lists this group", from.Version)
		}
		owns := slices.ContainsFunc(sh.status, func(b BucketStatus) bool { return b != NotOwned })
		if from.Version >= sh.config.Version && !owns {
			sh.prev, sh.config = from.Clone(), from
		}
	}
	sh.joined = true
	s.notifyLocked()
	return nil
}

// applyBucketOpLocked applies an install, delete or finish of one bucket.
func (s *Store) applyBucketOpLocked(c *control) error {
	if err := s.checkBucket(c.Bucket); err != nil {
		return err
	}
	sh := &s.mu.shard
	b, st := c.Bucket, sh.status[c.Bucket]
	apply, err := bucketVerdict(c.Kind, sh.config.Version, b, st, c.Version)
	if brokenFence && c.Kind != ctlFinishGC {
		apply = true
	}
	if !apply {
		return err
	}
	switch c.Kind {
	case ctlInstall:
		var d BucketData
		if err := d.UnmarshalBinary(c.Data); err != nil {
			return err
		}
		if d.Bucket != b || d.Version != c.Version {
			return detailf(ErrBadShardOp, "the data is of bucket %d at config %d, not bucket %d at %d", d.Bucket, d.Version, b, c.Version)
		}
		if err := d.checkKeys(s.nbuckets); err != nil {
			return err
		}
		d.dedup.bound(s.cfg.DedupWindow, s.cfg.DedupClients)
		if d.dedup.len() == 0 {
			d.dedup = nil
		}
		s.setBucketLocked(b, bucket{data: d.data, dedup: d.dedup, floor: max(d.floor, s.mu.buckets[b].floor)})
		s.queueTreeExpiries(time.Now(), d.data)
		if st == Pulling {
			sh.status[b] = GCing
			s.emitLocked(Event{Type: EventBucketIn, Bucket: b, Version: c.Version})
		}
	case ctlDelete:
		// The floor stays: should the bucket come back with no data (a
		// config that gives it to this group from nobody), its keys'
		// versions still go on past every one it had.
		s.setBucketLocked(b, bucket{data: newTree(), floor: s.mu.buckets[b].floor})
		if st == BePulling {
			sh.status[b] = NotOwned
		}
	case ctlFinishGC:
		sh.status[b] = Serving
	}
	s.notifyLocked()
	return nil
}

// fenceLocked says whether writes of keys may apply in this group's
// applied state: a *WrongGroupError for the first key whose bucket the
// group does not serve, else ErrBucketMoving when a key's bucket is
// Pulling, else nil (every bucket Serving or GCing). s.mu must be held.
func (s *Store) fenceLocked(keys iter.Seq[string]) error {
	moving := false
	for key := range keys {
		switch err := s.fenceKeyLocked(key, s.bucketOf(key)); err {
		case nil:
		case ErrBucketMoving:
			moving = true
		default:
			return err
		}
	}
	if moving {
		return ErrBucketMoving
	}
	return nil
}

// fenceKeyLocked is fenceLocked of key, whose bucket is b.
func (s *Store) fenceKeyLocked(key string, b int) error {
	switch s.mu.shard.status[b] {
	case Serving, GCing:
		return nil
	case Pulling:
		return ErrBucketMoving
	}
	return s.wrongGroupLocked(key, b)
}

// serves says whether this member serves bucket b's keys in its applied
// state: always on a plain member; Serving or GCing on a shard group's.
// s.mu must be held.
func (s *Store) servesLocked(b int) bool {
	if s.mode != modeShard {
		return true
	}
	st := s.mu.shard.status[b]
	return st == Serving || st == GCing
}

// opKeys yields the keys of ops a client wrote: not those of the
// expiries, which the state machine checks one by one.
func opKeys(ops []Op) iter.Seq[string] {
	return func(yield func(string) bool) {
		for i := range ops {
			if ops[i].Type != OpExpire && !yield(ops[i].Key) {
				return
			}
		}
	}
}

func (s *Store) wrongGroupLocked(key string, b int) *WrongGroupError {
	c := &s.mu.shard.config
	owner := c.Owner(b)
	var servers []string
	if owner != 0 {
		servers = slices.Clone(c.Groups[owner])
	}
	return &WrongGroupError{Key: key, Bucket: b, Group: s.cfg.Group, Version: c.Version, Owner: owner, Servers: servers}
}

// awaitServing waits until every one of keys is in a bucket this group
// serves (Serving or GCing), while one is Pulling. It returns at once a
// *WrongGroupError for a key the group does not serve; ErrBucketMoving
// when the deadline passes first.
func (s *Store) awaitServing(ctx context.Context, keys iter.Seq[string]) error {
	for {
		s.mu.RLock()
		err := s.fenceLocked(keys)
		ch := s.mu.changedC
		s.mu.RUnlock()
		if err != ErrBucketMoving {
			return err
		}
		if err := s.awaitChange(ctx, ch); err != nil {
			return err
		}
	}
}

// awaitChange waits for ch to close. A passed deadline is ErrBucketMoving:
// the caller waited for a bucket to arrive.
func (s *Store) awaitChange(ctx context.Context, ch <-chan struct{}) error {
	select {
	case <-ch:
		return nil
	case <-ctx.Done():
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return ErrBucketMoving
		}
		return ctx.Err()
	case <-s.applyDone:
		return ErrStopped
	}
}

func (s *Store) checkShardGroup() error {
	if s.mode != modeShard {
		return ErrNotShardGroup
	}
	return nil
}

func (s *Store) checkBucket(b int) error {
	if b < 0 || b >= s.nbuckets {
		return detailf(ErrBadShardOp, "bucket %d is not in 0-%d", b, s.nbuckets-1)
	}
	return nil
}

// checkConfig checks that c is a usable config for this store.
func (s *Store) checkConfig(c *shardmap.Config) error {
	if len(c.Buckets) != s.nbuckets {
		return detailf(ErrBadShardOp, "the config has %d buckets, this group %d", len(c.Buckets), s.nbuckets)
	}
	if err := c.Validate(); err != nil {
		return detailf(ErrBadShardOp, "%s", strings.TrimPrefix(err.Error(), shardmap.ErrInvalid.Error()+": "))
	}
	return nil
}

// configApplied is a config version a shard member applied, and the raft
// index it applied it at.
type configApplied struct{ index, version uint64 }

// maxConfigAt bounds Store.mu.configAt.
const maxConfigAt = 64

// noteConfigAtLocked records that the config of version v applies from
// index on. s.mu must be held for writing.
func (s *Store) noteConfigAtLocked(index, v uint64) {
	if len(s.mu.configAt) == maxConfigAt {
		s.mu.configAt = slices.Delete(s.mu.configAt, 0, 1)
	}
	s.mu.configAt = append(s.mu.configAt, configApplied{index, v})
}

// ConfigVersionAt returns the version of the config a shard member had
// applied as of raft index, which must be applied; 0 when it cannot
// tell (not a shard member, or index is older than what it recorded).
// Its bucket_out markers of that config, and of every one before it, are
// at or before index.
func (s *Store) ConfigVersionAt(index uint64) uint64 {
	s.mu.RLock()
	defer s.mu.RUnlock()
	for i := len(s.mu.configAt) - 1; i >= 0; i-- {
		if c := s.mu.configAt[i]; c.index <= index {
			return c.version
		}
	}
	return 0
}
