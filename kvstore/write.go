package kvstore

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"time"

	"github.com/raftkv/raftkv/raftnode"
	"go.uber.org/zap"
)

// pending is a local write waiting to be applied.
type pending struct {
	id   uint64
	req  request // what to propose; its ID is id
	size int
	done chan result

	// Guarded by Store.pmu.
	proposedAt time.Time
	finished   bool
	// handed: an entry carrying the write was handed to raftnode, which
	// may have sent it on, so only its apply or raft's outright refusal
	// tells the write's outcome from then on. Set before the hand-off,
	// under the same lock that checks finished, so that no write answered
	// "not applied" is handed afterwards; cleared again if that first
	// hand-off did not happen.
	handed bool
}

// result is what became of a request: applied at index, refused at apply
// or never applied (err), or a duplicate answered from the dedup table
// (dup, index the first apply's).
type result struct {
	index uint64
	err   error
	dup   bool
	// version is the config version a config operation produced.
	version uint64
	// mod is the version a key write or transaction gave the keys it put
	// (Result.ModIndex).
	mod uint64
	// txn is a transaction's result.
	txn *TxnResult
	// deleted is the number of keys a range delete deleted.
	deleted int
}

// Put sets key to value and returns the raft index of the write once it
// is committed and applied on this member.
func (s *Store) Put(ctx context.Context, key string, value []byte) (uint64, error) {
	return s.Apply(ctx, []Op{{Type: OpPut, Key: key, Value: value}})
}

// Delete removes key (an absent key is not an error) once committed and
// applied on this member.
func (s *Store) Delete(ctx context.Context, key string) (uint64, error) {
	return s.Apply(ctx, []Op{{Type: OpDelete, Key: key}})
}

// PutAll sets every pair atomically, as one write.
func (s *Store) PutAll(ctx context.Context, kvs map[string][]byte) (uint64, error) {
	ops := make([]Op, 0, len(kvs))
	for k, v := range kvs {
		ops = append(ops, Op{Type: OpPut, Key: k, Value: v})
	}
	return s.Apply(ctx, ops)
}

// Apply applies ops atomically, as one request, and returns its raft
// index once it is committed and applied on this member.
func (s *Store) Apply(ctx context.Context, ops []Op) (uint64, error) {
	r, err := s.Write(ctx, ops, WriteOptions{})
	return r.Index, err
}

// Write applies ops atomically, as one request, once: a write whose
// (wo.ClientID, wo.Seq) the state machine applied already is answered
// with the first result (Duplicate), not applied again.
func (s *Store) Write(ctx context.Context, ops []Op, wo WriteOptions) (Result, error) {
	r, err := s.write(ctx, ops, wo)
	s.met.countWrite(err)
	return r, err
}

func (s *Store) write(ctx context.Context, ops []Op, wo WriteOptions) (Result, error) {
	if len(ops) == 0 {
		return Result{}, ErrEmptyRequest
	}
	size, puts := 0, int64(0)
	for i := range ops {
		if err := checkOp(&ops[i]); err != nil {
			return Result{}, err
		}
		size += len(ops[i].Key) + len(ops[i].Value) + 8
		if ops[i].Type == OpPut {
			puts += putSize(ops[i].Key, ops[i].Value, ops[i].TTL)
		}
	}
	if err := checkWriteOptions(wo); err != nil {
		return Result{}, err
	}
	if s.mode == modeConfig {
		return Result{}, ErrNoKeys
	}
	if s.mode == modeShard {
		// Nothing is proposed for a key of another group, or before a
		// bucket being pulled here arrives.
		if err := s.awaitServing(ctx, opKeys(ops)); err != nil {
			return Result{}, err
		}
	}
	if err := s.checkQuota(puts, opKeys(ops), wo); err != nil {
		return Result{}, err
	}
	r := s.submit(ctx, request{Ops: ops, ClientID: wo.ClientID, Seq: wo.Seq}, size+len(wo.ClientID))
	if r.err != nil {
		return Result{}, r.err
	}
	return Result{Index: r.index, ModIndex: r.mod, Duplicate: r.dup}, nil
}

// MaxTTL is the longest TTL a key may have.
const MaxTTL = 100 * 365 * 24 * time.Hour

// checkOp checks a client's op before it is proposed.
func checkOp(op *Op) error {
	switch {
	case op.Key == "":
		return ErrEmptyRequest
	case op.Type != OpPut && op.Type != OpDelete:
		return detailf(ErrBadOp, "operation %d on key %q is neither a put nor a delete", op.Type, op.Key)
	case op.IfModIndex != 0:
		return detailf(ErrBadOp, "a put or delete has no IfModIndex")
	case op.TTL != 0 && op.Type != OpPut:
		return detailf(ErrBadOp, "a delete has no TTL")
	}
	return checkTTL(op.TTL)
}

// checkTTL checks a put's TTL (0: none).
func checkTTL(ttl time.Duration) error {
	if ttl < 0 || ttl > MaxTTL {
		return detailf(ErrBadTTL, "TTL %v is not in 0-%v", ttl, MaxTTL)
	}
	return nil
}

// submit proposes req (with size its approximate encoded size) and
// returns what became of it once it is applied, or why the wait ended.
func (s *Store) submit(ctx context.Context, req request, size int) result {
	if err := s.awaitClusterLevel(ctx); err != nil {
		return result{err: err}
	}
	p := &pending{req: req, size: size, done: make(chan result, 1)}
	// The id is taken and registered under one lock, so no watermark
	// computed meanwhile can pass an id not yet in pending.
	s.pmu.Lock()
	p.id = s.nextID.Add(1)
	s.pmu.pending[p.id] = p
	s.pmu.Unlock()
	defer func() {
		s.pmu.Lock()
		delete(s.pmu.pending, p.id)
		s.pmu.Unlock()
	}()

	select {
	case s.reqC <- p:
	case <-ctx.Done():
		return result{err: ctxError(ctx)}
	case <-s.stopc:
		return result{err: ErrStopped}
	case <-s.proposeDone:
		return result{err: ErrStopped}
	}
	select {
	case r := <-p.done:
		return r
	case <-ctx.Done():
		return s.abandon(p, ctxError(ctx))
	case <-s.proposeDone:
		// The propose loop answered the writes it knew of as it ended
		// (failPending); p may have been queued since, and then was never
		// handed to raft.
		s.pmu.Lock()
		s.stopPendingLocked(p)
		s.pmu.Unlock()
		return <-p.done
	}
}

// awaitClusterLevel holds a write until the cluster level this member
// applied may pick the format of the entry that carries it (propose).
//
// A member writes batchFormatUniqueVersions only once it applied
// LevelUniqueVersions. One that restarts knows only the level of its
// last snapshot until it has replayed its log, and one that lags may not
// have applied a raise yet. An entry it wrote meanwhile in the older
// format gave two writes of one key at one index one version
// (versionLocked), in a cluster long at the level: the first writer's
// If-Match then held against the second writer's value. So while the
// applied level is below it, and this binary speaks it, a write first
// waits for this member to apply through a ReadIndex: every level raise
// committed before the write began is then applied. The level never goes
// down, so once it is reached writes pass at once. Nothing is proposed
// before this returns nil.
func (s *Store) awaitClusterLevel(ctx context.Context) error {
	if s.node == nil || s.levelCurrent.Load() {
		return nil
	}
	if s.node.ClusterLevel() >= LevelUniqueVersions {
		s.levelCurrent.Store(true)
		return nil
	}
	if s.node.Level() < LevelUniqueVersions {
		return nil // this binary writes the older format in any case
	}
	s.levelWaiting.Add(1)
	defer s.levelWaiting.Add(-1)
	return s.SyncClusterLevel(ctx)
}

// SyncClusterLevel returns once this member applied every entry
// committed before the call (a ReadIndex), and so every raise of the
// cluster level committed by then: a member that restarted, or lags,
// may not have applied the group's level yet. No leader is
// raftnode.ErrNoLeader, a leader known but no quorum answering
// ErrLevelUnconfirmed, the store stopping ErrStopped, ctx's deadline
// ErrTimeout and its cancel context.Canceled.
func (s *Store) SyncClusterLevel(ctx context.Context) error {
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		select {
		case <-s.stopc:
			cancel()
		case <-wctx.Done():
		}
	}()
	index, err := s.node.ReadIndex(wctx)
	if err == nil {
		err = s.WaitApplied(wctx, index)
	}
	select {
	case <-s.stopc:
		if err != nil {
			return ErrStopped
		}
	default:
	}
	switch {
	case err == nil:
		return nil
	case ctx.Err() != nil:
		return ctxError(ctx)
	case errors.Is(err, raftnode.ErrReadTimeout):
		return ErrLevelUnconfirmed // a leader is known, but no quorum answered
	}
	return err
}

// abandon answers p, whose caller stops waiting with err, and returns p's
// answer: its real one if it came meanwhile. A cancellation says "not
// applied" only while no entry carrying p was handed to raft (and none will
// be: p is finished); after that its outcome is unknown.
func (s *Store) abandon(p *pending, err error) result {
	s.pmu.Lock()
	if p.handed && errors.Is(err, context.Canceled) {
		err = fmt.Errorf("%w: %w", ErrOutcomeUnknown, err)
	}
	s.finishLocked(p, result{err: err})
	s.pmu.Unlock()
	return <-p.done
}

func ctxError(ctx context.Context) error {
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return ErrTimeout
	}
	return ctx.Err()
}

// finish answers p once; later answers (a duplicate apply) are dropped.
func (s *Store) finishLocked(p *pending, r result) {
	if p.finished {
		return
	}
	p.finished = true
	p.done <- r
}

// watermarkLocked is the lowest id this session still waits for; every
// request below it is answered or abandoned. s.pmu must be held.
func (s *Store) watermarkLocked() uint64 {
	wm := s.nextID.Load() + 1
	for id, p := range s.pmu.pending {
		if id < wm && !p.finished {
			wm = id
		}
	}
	return wm
}

// proposeLoop packs queued writes into raft entries (group commit) and
// re-proposes writes that stayed unapplied for RetryInterval. A write
// arriving while MaxUnappliedEntries entries of this member are on their
// way through raft waits for one of them to apply, and meanwhile later
// writes join it: one client is proposed at once, many share entries.
func (s *Store) proposeLoop() {
	defer close(s.proposeDone)
	retry := time.NewTicker(s.cfg.RetryInterval / 2)
	defer retry.Stop()
	inflight := map[uint64]time.Time{} // first request id -> proposed at
	expire := time.NewTimer(time.Hour)
	defer expire.Stop()
	var newLeader <-chan struct{}
	if s.node != nil {
		newLeader = s.node.NewLeader()
	}
	for {
		reqC := s.reqC
		if len(inflight) >= s.cfg.MaxUnappliedEntries {
			// Window full: wait for an apply, or for the oldest to expire.
			reqC = nil
			oldest := time.Time{}
			for _, at := range inflight {
				if oldest.IsZero() || at.Before(oldest) {
					oldest = at
				}
			}
			expire.Reset(time.Until(oldest.Add(s.cfg.UnappliedEntryTimeout)))
		}
		select {
		case p := <-reqC:
			reqs, size := []*pending{p}, p.size
			// Let the connections that have read a write run first, so
			// that it joins this entry rather than the next: on a busy
			// member (one P, see cmd/raftkv's procs.go) entries grew
			// from about three writes to four or five. With nothing
			// else runnable it returns at once.
			runtime.Gosched()
		drain:
			for size < s.cfg.MaxBatchBytes {
				select {
				case q := <-s.reqC:
					reqs = append(reqs, q)
					size += q.size
				default:
					break drain
				}
			}
			if first, ok := s.propose(reqs, false); ok {
				inflight[first] = time.Now()
			}
		case id := <-s.appliedBatchC:
			delete(inflight, id)
		case o := <-s.refusedC:
			delete(inflight, o.first)
			s.proposalFailed(o)
		case <-expire.C:
			cutoff := time.Now().Add(-s.cfg.UnappliedEntryTimeout)
			for id, at := range inflight {
				if !at.After(cutoff) {
					delete(inflight, id)
				}
			}
		case <-retry.C:
			s.proposeStale(time.Now().Add(-s.cfg.RetryInterval))
		case <-newLeader:
			// What this member forwarded to the old leader may be lost
			// with it: propose again, now, every write still waiting.
			// Those that did commit are dropped as duplicates on apply.
			s.proposeStale(time.Now())
		case <-s.stopc:
			s.failPending()
			return
		case <-s.applyDone:
			// The node stopped (this member was removed, or a fatal
			// error): nothing more is proposed or applied here, though
			// the entries already sent may still be applied elsewhere.
			s.failPending()
			return
		}
	}
}

// propose hands reqs to raft as one entry and reports the entry's first
// request id and whether raft has it now. Raft's answer comes later, to
// awaitProposal; a refusal is settled by proposalFailed.
func (s *Store) propose(reqs []*pending, isRetry bool) (first uint64, taken bool) {
	b := &batch{Session: s.session, Reqs: make([]request, 0, len(reqs))}
	now := time.Now()
	var marked []*pending // handed from now on, and not before
	s.pmu.Lock()
	for _, p := range reqs {
		if p.finished {
			continue
		}
		p.proposedAt = now
		if !p.handed {
			p.handed = true
			marked = append(marked, p)
		}
		r := p.req
		r.ID = p.id
		b.Reqs = append(b.Reqs, r)
	}
	b.Watermark = s.watermarkLocked()
	s.pmu.Unlock()
	if len(b.Reqs) == 0 {
		return 0, false
	}
	// notHanded takes back the mark of a hand-off that did not happen.
	notHanded := func() {
		s.pmu.Lock()
		for _, p := range marked {
			p.handed = false
		}
		s.pmu.Unlock()
	}
	s.met.batchRequests.Observe(float64(len(b.Reqs)))
	o := refusal{first: b.Reqs[0].ID, reqs: reqs, at: now, isRetry: isRetry}
	b.Format = batchFormatVersions
	if s.node != nil && s.node.ClusterLevel() >= LevelUniqueVersions {
		b.Format = batchFormatUniqueVersions
	}
	data, err := s.enc.encode(b)
	if err != nil {
		notHanded()
		if !isRetry { // a retry's earlier copies may still commit
			o.err = err
			s.failProposal(o)
		}
		return 0, false
	}
	// Only the hand-off waits here: raft's answer may take a while on the
	// leader, whose batcher holds a proposal until it proposes its next
	// entry, and writes arriving meanwhile are to join that entry too.
	res := make(chan error, 1)
	t := time.NewTimer(s.cfg.RetryInterval)
	defer t.Stop()
	select {
	case s.node.ProposeC() <- raftnode.Proposal{Data: data, Result: res}:
	case <-t.C:
		notHanded()
		return 0, false // not taken: retried once RetryInterval passed
	case <-s.stopc:
		notHanded()
		return 0, false
	case <-s.applyDone:
		notHanded()
		return 0, false
	}
	go s.awaitProposal(o, res)
	return o.first, true
}

// refusal is raft's refusal of an entry of this member, reported by the
// goroutine that waited for raft's answer.
type refusal struct {
	first   uint64     // the entry's first request id
	reqs    []*pending // its writes
	at      time.Time  // when they were proposed
	isRetry bool
	err     error
}

// awaitProposal waits for raft's answer to the entry o describes (a
// raftnode.Proposal's Result always gets one) and reports a refusal to
// the propose loop.
func (s *Store) awaitProposal(o refusal, res <-chan error) {
	select {
	case o.err = <-res:
	case <-s.proposeDone:
		return
	}
	if o.err == nil {
		return
	}
	select {
	case s.refusedC <- o:
	case <-s.proposeDone:
	}
}

// refusedOutright reports whether err, raftnode's answer to a proposal,
// says the entry reached no raft log (see raftnode.Proposal): no leader,
// dropped by raft, or the node stopped before it proposed the entry. Any
// other answer (a timeout, an outcome unknown) leaves it possibly in a log.
func refusedOutright(err error) bool {
	return errors.Is(err, raftnode.ErrNoLeader) || errors.Is(err, raftnode.ErrProposalDropped) ||
		errors.Is(err, raftnode.ErrStopped)
}

// proposalFailed settles an entry raft refused. A first proposal refused
// outright never reached any log, so its writes fail now with that error,
// unless they were proposed again since; a refused retry, or a proposal
// whose fate is unknown, leaves them waiting, since a copy may still
// commit.
func (s *Store) proposalFailed(o refusal) {
	if o.isRetry || !refusedOutright(o.err) {
		return
	}
	s.failProposal(o)
}

// failProposal fails with o.err the writes of the entry o describes that
// were not proposed again since.
func (s *Store) failProposal(o refusal) {
	s.pmu.Lock()
	for _, p := range o.reqs {
		if p.proposedAt.Equal(o.at) {
			s.finishLocked(p, result{err: o.err})
		}
	}
	s.pmu.Unlock()
}

// proposeStale proposes again the writes still waiting that were last
// proposed before cutoff.
func (s *Store) proposeStale(cutoff time.Time) {
	var stale []*pending
	s.pmu.Lock()
	for _, p := range s.pmu.pending {
		if !p.finished && !p.proposedAt.IsZero() && p.proposedAt.Before(cutoff) {
			stale = append(stale, p)
		}
	}
	s.pmu.Unlock()
	for len(stale) > 0 {
		n, size := 0, 0
		for n < len(stale) && (n == 0 || size+stale[n].size <= s.cfg.MaxBatchBytes) {
			size += stale[n].size
			n++
		}
		s.lg.Debug("re-proposing unapplied writes", zap.Int("count", n))
		s.met.retries.Add(float64(n))
		s.propose(stale[:n], true)
		stale = stale[n:]
	}
}

// failPending answers every write still waiting as the propose loop ends
// (see stopPendingLocked).
func (s *Store) failPending() {
	s.pmu.Lock()
	defer s.pmu.Unlock()
	for _, p := range s.pmu.pending {
		s.stopPendingLocked(p)
	}
}

// stopPendingLocked answers p, unless it was answered already, for a store
// that can no longer propose it nor learn of its apply: ErrStopped (not
// applied) if no entry carrying it was handed to raft, ErrOutcomeUnknown if
// one was. s.pmu must be held.
func (s *Store) stopPendingLocked(p *pending) {
	err := ErrStopped
	if p.handed {
		err = ErrOutcomeUnknown
	}
	s.finishLocked(p, result{err: err})
}
