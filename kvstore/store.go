package kvstore

import (
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/raftkv/raftkv/raftnode"
	"github.com/raftkv/raftkv/shardmap"
	"go.uber.org/zap"
)

// Store is the replicated key-value state machine on top of a raftnode.
type Store struct {
	cfg  Config
	lg   *zap.Logger
	node *raftnode.Node
	met  *metrics
	dec  *entryDecoder // owned by the apply loop
	ap   applyState    // owned by the apply loop

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

	// nbuckets is the number of buckets of the key space (Config.Buckets).
	nbuckets int
	mode     mode

	mu struct {
		sync.RWMutex
		// buckets holds the keys, one tree per bucket: a key lives in
		// buckets[s.bucketOf(key)].
		buckets []bucket
		// index is the raft index of the state: every entry up to it is
		// applied, none after it.
		index    uint64
		sessions map[uint64]*session
		// shard is the state of the buckets in a shard group.
		shard shardState
		// configAt are the raft indexes the latest configs were applied
		// at, oldest first, at most maxConfigAt (ConfigVersionAt).
		configAt []configApplied
		// history is the config group's state: every config.
		history shardmap.History
		// changedC is closed and replaced at each change of shard or
		// history (see ShardChanged).
		changedC chan struct{}
	}

	// win is the window of recent events that watchers read.
	win window
	// exq is the queue of keys with a TTL (see expireLoop).
	exq expiryQueue

	pmu struct {
		sync.Mutex
		pending map[uint64]*pending
	}

	// levelCurrent is set once this member applied LevelUniqueVersions,
	// and levelWaiting counts the writes awaitClusterLevel holds.
	levelCurrent atomic.Bool
	levelWaiting atomic.Int32

	applied   atomic.Uint64
	appliedMu sync.Mutex
	appliedC  chan struct{} // closed and replaced whenever applied grows

	// hashes are this member's last state hashes (see HashKV).
	hashes hashLog

	// dataBytes is the size of every bucket's keys (tree.Bytes), kept by
	// the trees' sink; see DataBytes.
	dataBytes atomic.Int64

	stopOnce    sync.Once
	stopc       chan struct{}
	proposeDone chan struct{}
	expireDone  chan struct{}
	applyDone   chan struct{}
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
		expireDone:    make(chan struct{}),
		applyDone:     make(chan struct{}),
	}
	s.initState()
	s.dec = newEntryDecoder()
	s.met = newMetrics(cfg.Registerer, func() float64 { return float64(s.Len()) },
		func() float64 { return float64(s.DataBytes()) }, cfg.QuotaBytes, s.dec)
	go s.applyLoop()
	go s.proposeLoop()
	go s.expireLoop()
	return s, nil
}

// initState sets up the empty state the configuration describes; cfg
// must hold its defaults.
func (s *Store) initState() {
	s.nbuckets = s.cfg.Buckets
	s.mode = modePlain
	slots := s.nbuckets
	switch {
	case s.cfg.Group != 0:
		s.mode = modeShard
		s.mu.shard = newShardState(s.nbuckets)
	case s.cfg.ConfigGroup:
		s.mode = modeConfig
		s.mu.history = newHistory(s.nbuckets)
		slots = 1 // no keys; the slot keeps the dedup table of config operations
	}
	s.mu.buckets = make([]bucket, slots)
	for b, nb := range newBuckets(slots) {
		s.setBucketLocked(b, nb)
	}
	s.mu.sessions = map[uint64]*session{}
	s.mu.changedC = make(chan struct{})
	s.win.changed = make(chan struct{})
	s.win.from = 1
	s.pmu.pending = map[uint64]*pending{}
}

// newHistory is the history of n buckets (Validate checked n).
func newHistory(n int) shardmap.History {
	h, err := shardmap.NewHistory(n)
	if err != nil {
		panic(err)
	}
	return h
}

// mode is what a store is: a plain member, a shard group member, or a
// config group member.
type mode uint8

const (
	modePlain  mode = iota // serves every key
	modeShard              // serves the buckets its config gives its group
	modeConfig             // keeps the configs; no keys
)

func (m mode) String() string {
	switch m {
	case modePlain:
		return "plain"
	case modeShard:
		return "shard"
	case modeConfig:
		return "config"
	}
	return fmt.Sprintf("mode(%d)", uint8(m))
}

// Stop stops proposing; pending writes fail with ErrStopped, or
// ErrOutcomeUnknown if they were handed to raft. The apply loop ends when
// the node closes its commit channel.
func (s *Store) Stop() {
	s.stopOnce.Do(func() { close(s.stopc) })
	<-s.proposeDone
	<-s.expireDone
}

// Done is closed once the apply loop has ended (the node stopped).
func (s *Store) Done() <-chan struct{} { return s.applyDone }

// DataBytes is the size of the keys this member holds: their keys' and
// values' bytes and 56 bytes for each (see Config.QuotaBytes).
func (s *Store) DataBytes() int64 { return s.dataBytes.Load() }

// QuotaBytes is the space quota, Config.QuotaBytes.
func (s *Store) QuotaBytes() int64 { return s.cfg.QuotaBytes }

// AppliedIndex is the raft index the state machine has applied.
func (s *Store) AppliedIndex() uint64 { return s.applied.Load() }
