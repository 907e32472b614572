package kvstore

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/raftkv/raftkv/raftnode"
	"go.uber.org/zap"
)

// Config configures a Store.
type Config struct {
	// Logger receives the store's logs. Nil means zap.NewNop().
	Logger *zap.Logger
	// RetryInterval is how long a write may stay unapplied before it is
	// proposed again (a leader change or a dropped forward can lose a
	// proposal); duplicates are discarded on apply. Zero means 1s.
	RetryInterval time.Duration
	// MaxBatchBytes bounds the approximate size of the requests packed
	// into one raft entry. Zero means 512 KiB; a single larger request
	// still travels alone.
	MaxBatchBytes int
	// MaxInflightBatches is how many entries this member's writes may
	// have proposed but not yet applied before further writes wait and
	// gather into the next entry; the fewer, the larger each entry grows
	// under load. An entry unapplied after InflightTimeout no longer
	// counts (it may have been lost with a leader). Zero means 16 and
	// 100ms: the leader merges the entries of every member waiting for it
	// into one raft entry (raftnode's batcher), so an entry need not wait
	// here for the one before it; the bound only keeps a member from
	// flooding raft with small entries when no leader merges them.
	MaxInflightBatches int
	InflightTimeout    time.Duration
	// Registerer receives the store's Prometheus metrics. Nil means they
	// are kept but not exported.
	Registerer prometheus.Registerer
}

func (c *Config) applyDefaults() {
	if c.Logger == nil {
		c.Logger = zap.NewNop()
	}
	if c.RetryInterval == 0 {
		c.RetryInterval = time.Second
	}
	if c.MaxBatchBytes == 0 {
		c.MaxBatchBytes = 512 << 10
	}
	if c.MaxInflightBatches == 0 {
		c.MaxInflightBatches = 16
	}
	if c.InflightTimeout == 0 {
		c.InflightTimeout = 100 * time.Millisecond
	}
}

// Validate reports the first problem with the configuration.
func (c *Config) Validate() error {
	if c.RetryInterval < time.Millisecond {
		return errors.New("kvstore: retry interval below 1ms")
	}
	if c.MaxBatchBytes < 1 {
		return errors.New("kvstore: max batch bytes must be positive")
	}
	if c.MaxInflightBatches < 1 || c.InflightTimeout <= 0 {
		return errors.New("kvstore: in-flight batches and their timeout must be positive")
	}
	return nil
}

// Store is the replicated key-value state machine on top of a raftnode.
type Store struct {
	cfg  Config
	lg   *zap.Logger
	node *raftnode.Node
	met  *metrics
	dec  *entryDecoder // owned by the apply loop

	// session identifies this process's proposals; see session.
	session uint64
	nextID  atomic.Uint64
	reqC    chan *pending
	enc     entryEncoder // owned by the propose loop
	// appliedBatchC carries, from the apply loop to the propose loop, the
	// first request id of each applied entry of this session.
	appliedBatchC chan uint64
	// refusedC carries raft's refusals of this member's entries to the
	// propose loop.
	refusedC chan refusal

	mu struct {
		sync.RWMutex
		data     *tree
		sessions map[uint64]*session
	}

	pmu struct {
		sync.Mutex
		pending map[uint64]*pending
	}

	// inLog lists, oldest first, the applied entries whose values the
	// state holds in place, in the entry's data (owned by the apply loop).
	// The raft log holds that data until it is compacted, so a value
	// copied out of it at once would take its memory twice until then;
	// rehome copies them out once the log let go of the entry.
	inLog []inLogEntry

	applied   atomic.Uint64
	appliedMu sync.Mutex
	appliedC  chan struct{} // closed and replaced whenever applied grows

	stopOnce    sync.Once
	stopc       chan struct{}
	proposeDone chan struct{}
	applyDone   chan struct{}
}

// inLogEntry is an applied entry whose data values in the state point into.
type inLogEntry struct {
	index uint64
	data  []byte
	keys  []string // written with a value in data, in order
}

// inData reports whether v lies in data's memory.
func inData(data, v []byte) bool {
	if len(v) == 0 || len(data) == 0 {
		return false
	}
	lo := uintptr(unsafe.Pointer(unsafe.SliceData(data)))
	p := uintptr(unsafe.Pointer(unsafe.SliceData(v)))
	return p >= lo && p+uintptr(len(v)) <= lo+uintptr(len(data))
}

// pending is a local write waiting to be applied.
type pending struct {
	id   uint64
	ops  []Op
	size int
	done chan result

	// Guarded by Store.pmu.
	proposedAt time.Time
	finished   bool
}

type result struct {
	index uint64
	err   error
}

// New builds a store on node and starts consuming its commits. Call
// node.Start(store.Snapshot) afterwards.
func New(cfg Config, node *raftnode.Node) (*Store, error) {
	cfg.applyDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		return nil, err
	}
	s := &Store{
		cfg:           cfg,
		lg:            cfg.Logger,
		node:          node,
		session:       binary.BigEndian.Uint64(b[:]) | 1,
		reqC:          make(chan *pending, 1024),
		appliedBatchC: make(chan uint64, 1024),
		refusedC:      make(chan refusal),
		appliedC:      make(chan struct{}),
		stopc:         make(chan struct{}),
		proposeDone:   make(chan struct{}),
		applyDone:     make(chan struct{}),
	}
	s.mu.data = newTree()
	s.mu.sessions = map[uint64]*session{}
	s.pmu.pending = map[uint64]*pending{}
	s.dec = newEntryDecoder()
	s.met = newMetrics(cfg.Registerer, func() float64 { return float64(s.Len()) }, s.dec)
	go s.applyLoop()
	go s.proposeLoop()
	return s, nil
}

// Stop stops proposing; pending writes fail with ErrStopped. The apply
// loop ends when the node closes its commit channel.
func (s *Store) Stop() {
	s.stopOnce.Do(func() { close(s.stopc) })
	<-s.proposeDone
}

// Done is closed once the apply loop has ended (the node stopped).
func (s *Store) Done() <-chan struct{} { return s.applyDone }

// AppliedIndex is the raft index the state machine has applied.
func (s *Store) AppliedIndex() uint64 { return s.applied.Load() }

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
	index, err := s.apply(ctx, ops)
	s.met.countWrite(err)
	return index, err
}

func (s *Store) apply(ctx context.Context, ops []Op) (uint64, error) {
	if len(ops) == 0 {
		return 0, ErrEmptyRequest
	}
	size := 0
	for _, op := range ops {
		if op.Key == "" {
			return 0, ErrEmptyRequest
		}
		size += len(op.Key) + len(op.Value) + 8
	}
	p := &pending{ops: ops, size: size, done: make(chan result, 1)}
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
		return 0, ctxError(ctx)
	case <-s.stopc:
		return 0, ErrStopped
	}
	select {
	case r := <-p.done:
		return r.index, r.err
	case <-ctx.Done():
		return 0, ctxError(ctx)
	case <-s.stopc:
		return 0, ErrStopped
	case <-s.applyDone:
		return 0, ErrStopped
	}
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
// arriving while MaxInflightBatches entries of this member are on their
// way through raft waits for one of them to apply, and meanwhile later
// writes join it: one client is proposed at once, many share entries.
func (s *Store) proposeLoop() {
	defer close(s.proposeDone)
	retry := time.NewTicker(s.cfg.RetryInterval / 2)
	defer retry.Stop()
	inflight := map[uint64]time.Time{} // first request id -> proposed at
	expire := time.NewTimer(time.Hour)
	defer expire.Stop()
	for {
		reqC := s.reqC
		if len(inflight) >= s.cfg.MaxInflightBatches {
			// Window full: wait for an apply, or for the oldest to expire.
			reqC = nil
			oldest := time.Time{}
			for _, at := range inflight {
				if oldest.IsZero() || at.Before(oldest) {
					oldest = at
				}
			}
			expire.Reset(time.Until(oldest.Add(s.cfg.InflightTimeout)))
		}
		select {
		case p := <-reqC:
			reqs, size := []*pending{p}, p.size
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
			cutoff := time.Now().Add(-s.cfg.InflightTimeout)
			for id, at := range inflight {
				if !at.After(cutoff) {
					delete(inflight, id)
				}
			}
		case <-retry.C:
			s.proposeStale()
		case <-s.stopc:
			s.failPending(ErrStopped)
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
	s.pmu.Lock()
	for _, p := range reqs {
		if p.finished {
			continue
		}
		p.proposedAt = now
		b.Reqs = append(b.Reqs, request{ID: p.id, Ops: p.ops})
	}
	b.Watermark = s.watermarkLocked()
	s.pmu.Unlock()
	if len(b.Reqs) == 0 {
		return 0, false
	}
	s.met.batchRequests.Observe(float64(len(b.Reqs)))
	o := refusal{first: b.Reqs[0].ID, reqs: reqs, at: now, isRetry: isRetry}
	data, err := s.enc.encode(b)
	if err != nil {
		o.err = err
		s.proposalFailed(o)
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
		return 0, false // not taken: retried once RetryInterval passed
	case <-s.stopc:
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
	case <-s.stopc:
		return
	}
	if o.err == nil {
		return
	}
	select {
	case s.refusedC <- o:
	case <-s.stopc:
	}
}

// proposalFailed settles an entry raft refused. A first proposal refused
// outright (no leader, dropped) never reached any log, so its writes fail
// now with that error, unless they were proposed again since; a refused
// retry, or a proposal whose fate is unknown (a timeout), leaves them
// waiting, since a copy may still commit.
func (s *Store) proposalFailed(o refusal) {
	if o.isRetry || errors.Is(o.err, raftnode.ErrTimeout) {
		return
	}
	s.pmu.Lock()
	for _, p := range o.reqs {
		if p.proposedAt.Equal(o.at) {
			s.finishLocked(p, result{err: o.err})
		}
	}
	s.pmu.Unlock()
}

func (s *Store) proposeStale() {
	cutoff := time.Now().Add(-s.cfg.RetryInterval)
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

func (s *Store) failPending(err error) {
	s.pmu.Lock()
	defer s.pmu.Unlock()
	for _, p := range s.pmu.pending {
		s.finishLocked(p, result{err: err})
	}
}

// applyLoop applies commits in order until the node closes the channel.
func (s *Store) applyLoop() {
	defer close(s.applyDone)
	// Values are copied out of compacted entries a little at a time, so
	// the compaction after a snapshot, which drops tens of megabytes of
	// entries at once, does not hold up applying; the ticker drains the
	// rest when no commits come.
	tick := time.NewTicker(rehomeInterval)
	defer tick.Stop()
	commits := s.node.Commits()
	busy := false
	for {
		select {
		case c, ok := <-commits:
			if !ok {
				s.failPending(ErrStopped)
				return
			}
			busy = true
			start := time.Now()
			if c.SnapshotPath != "" {
				if err := s.restore(c.SnapshotPath, c.Index); err != nil {
					// Every member restores the same bytes; serving a
					// state that silently differs would be worse.
					panic(err)
				}
			}
			added := 0
			for _, e := range c.Entries {
				added += s.applyEntry(e)
			}
			s.setApplied(c.Index)
			c.Applied()
			s.rehomeCompacted(rehomeMin + 2*added)
			s.met.applySeconds.Observe(time.Since(start).Seconds())
		case <-tick.C:
			if busy {
				// Commits came since the last tick, and they copy.
				busy = false
				continue
			}
			// Idle: copy more, a share at a time, each under the lock
			// alone, and stop as soon as a commit waits.
			for n := 0; n < rehomeIdle && len(commits) == 0; n += rehomeMin {
				if !s.rehomeCompacted(rehomeMin) {
					break
				}
			}
		}
	}
}

// Copying values out of compacted entries (see Store.inLog): each commit
// copies at most rehomeMin plus twice the values it added (each copy holds
// the state's lock about a microsecond), and a tick that saw no commit
// since the last one up to rehomeIdle, rehomeMin at a time.
const (
	rehomeMin      = 256
	rehomeIdle     = 16384
	rehomeInterval = 100 * time.Millisecond
)

// applyEntry applies e and returns how many of the values it stored are
// held in e's data.
func (s *Store) applyEntry(e raftnode.Entry) int {
	b, err := s.dec.decode(e.Data)
	if err != nil {
		// Skipped identically on every member, so replicas stay equal.
		s.lg.Error("skipping undecodable entry", zap.Uint64("index", e.Index), zap.Error(err))
		return 0
	}
	var inLog []string
	var mine []uint64
	s.mu.Lock()
	sess := s.mu.sessions[b.Session]
	if sess == nil {
		sess = &session{Applied: map[uint64]bool{}}
		s.mu.sessions[b.Session] = sess
	}
	for _, r := range b.Reqs {
		if r.ID < sess.Watermark || sess.Applied[r.ID] {
			continue // a duplicate, or abandoned by its proposer
		}
		sess.Applied[r.ID] = true
		for _, op := range r.Ops {
			switch op.Type {
			case OpPut:
				s.mu.data.ReplaceOrInsert(newItem(op.Key, op.Value))
				if inData(e.Data, op.Value) {
					inLog = append(inLog, op.Key)
				}
			case OpDelete:
				s.mu.data.Delete(newItem(op.Key, nil))
			}
		}
		if b.Session == s.session {
			mine = append(mine, r.ID)
		}
	}
	if b.Session == s.session && len(b.Reqs) > 0 {
		select {
		case s.appliedBatchC <- b.Reqs[0].ID:
		default: // the propose loop is behind; the entry expires there
		}
	}
	if b.Watermark > sess.Watermark {
		sess.Watermark = b.Watermark
		for id := range sess.Applied {
			if id < b.Watermark {
				delete(sess.Applied, id)
			}
		}
	}
	s.mu.Unlock()
	if len(inLog) > 0 {
		s.inLog = append(s.inLog, inLogEntry{index: e.Index, data: e.Data, keys: inLog})
	}
	if len(mine) > 0 {
		s.pmu.Lock()
		for _, id := range mine {
			if p := s.pmu.pending[id]; p != nil {
				s.finishLocked(p, result{index: e.Index})
			}
		}
		s.pmu.Unlock()
	}
	return len(inLog)
}

// rehomeCompacted is rehome up to the raft log's first entry; it asks the
// log only when some entry is listed.
func (s *Store) rehomeCompacted(budget int) bool {
	return len(s.inLog) > 0 && s.rehome(s.node.LogFirstIndex(), budget)
}

// rehome copies out of their entries the values of entries before first,
// which the raft log no longer holds, oldest first and about budget of
// them: a value still in such an entry is all that keeps the entry's data
// alive. Values replaced or deleted since are skipped. It reports whether
// entries before first are still listed.
func (s *Store) rehome(first uint64, budget int) bool {
	compacted := func() bool { return len(s.inLog) > 0 && s.inLog[0].index < first }
	if !compacted() {
		return false
	}
	s.mu.Lock()
	for compacted() && budget > 0 {
		e := s.inLog[0]
		for _, k := range e.keys {
			if it, ok := s.mu.data.Get(newItem(k, nil)); ok && inData(e.data, it.valueBytes()) {
				s.mu.data.ReplaceOrInsert(newItem(k, bytes.Clone(it.valueBytes())))
			}
		}
		budget -= len(e.keys)
		s.inLog[0] = inLogEntry{}
		s.inLog = s.inLog[1:]
	}
	s.mu.Unlock()
	return compacted()
}

func (s *Store) setApplied(index uint64) {
	// Stored under mu so Digest sees an index matching the data.
	s.mu.Lock()
	s.applied.Store(index)
	s.mu.Unlock()
	s.appliedMu.Lock()
	close(s.appliedC)
	s.appliedC = make(chan struct{})
	s.appliedMu.Unlock()
}

// WaitApplied returns once the state machine applied index.
func (s *Store) WaitApplied(ctx context.Context, index uint64) error {
	for {
		s.appliedMu.Lock()
		ch := s.appliedC
		s.appliedMu.Unlock()
		if s.applied.Load() >= index {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			if errors.Is(ctx.Err(), context.DeadlineExceeded) {
				return ErrReadTimeout
			}
			return ctx.Err()
		case <-s.applyDone:
			return ErrStopped
		}
	}
}

// Snapshot captures the state as of the last applied commit, in O(1):
// a copy-on-write clone of the tree and a copy of the sessions. The
// returned function writes that state while applying goes on, once: it
// lets go of the state as it writes it.
// raftnode calls Snapshot when every published commit has been applied.
func (s *Store) Snapshot() (func(io.Writer) error, error) {
	s.mu.Lock()
	state := s.mu.data.Clone()
	sessions := make(map[uint64]*session, len(s.mu.sessions))
	for id, ss := range s.mu.sessions {
		sessions[id] = &session{Watermark: ss.Watermark, Applied: maps.Clone(ss.Applied)}
	}
	s.mu.Unlock()
	return func(w io.Writer) error {
		if state == nil {
			return errors.New("kvstore: snapshot already written")
		}
		st := state
		state = nil
		return writeSnapshot(w, st, sessions)
	}, nil
}

// restore replaces the state with the snapshot in the file at path.
func (s *Store) restore(path string, index uint64) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("kvstore: open snapshot: %w", err)
	}
	defer f.Close()
	state, sessions, err := readSnapshot(f)
	if err != nil {
		return fmt.Errorf("kvstore: snapshot %s: %w", path, err)
	}
	s.install(state, sessions, index)
	return nil
}

// install makes state and sessions the state as of index.
func (s *Store) install(state *tree, sessions map[uint64]*session, index uint64) {
	s.mu.Lock()
	s.mu.data, s.mu.sessions = state, sessions
	own := sessions[s.session]
	s.mu.Unlock()
	clear(s.inLog) // none of the new state's values is in an entry
	s.inLog = s.inLog[:0]
	s.lg.Info("restored state from snapshot", zap.Uint64("index", index), zap.Int("keys", state.Len()))
	// Our writes that the snapshot covers will never be seen as entries.
	if own != nil {
		s.pmu.Lock()
		for id, p := range s.pmu.pending {
			if own.Applied[id] {
				s.finishLocked(p, result{index: index})
			}
		}
		s.pmu.Unlock()
	}
}

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
