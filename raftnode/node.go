package raftnode

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"go.etcd.io/etcd/pkg/v3/idutil"
	"go.etcd.io/etcd/pkg/v3/wait"
	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
	"go.uber.org/zap"
)

// Proposal is one application entry on its way into raft.
type Proposal struct {
	Data []byte
	// Result, if non-nil, receives exactly one value: nil once raft took
	// the proposal (appended it, or forwarded it to the leader), or why
	// not: ErrNoLeader, ErrProposalDropped and ErrStopped mean it reached
	// no raft log; ErrTimeout, ErrOutcomeUnknown and any other error mean
	// raft may have it. It must have room for one value.
	Result chan<- error
}

// ConfChange is one membership change on its way into raft.
type ConfChange struct {
	Ctx context.Context
	// Type is ConfChangeAddNode, ConfChangeAddLearnerNode,
	// ConfChangeRemoveNode or ConfChangeUpdateNode.
	Type    raftpb.ConfChangeType
	NodeID  uint64
	PeerURL string // for the two adds and an update: the member's (new) URL
	// Promote, with ConfChangeAddNode, makes the learner NodeID a voter
	// (PeerURL unused); only the leader takes it, once the learner has
	// caught up (see PromoteMember).
	Promote bool
	// Result receives exactly one value: nil once the change is applied on
	// this member, or the reason it failed. It must have room for one value.
	Result chan<- error
}

// Entry is one committed application entry.
type Entry struct {
	Index uint64
	Data  []byte
}

// Commit is the next step of the state machine, published on Commits in
// log order. A Commit with a SnapshotPath replaces the whole state with
// the snapshot data in that file (as written by a SnapshotFunc) before its
// Entries. The application calls Applied once it has applied the commit,
// so raftnode knows when it may take a snapshot.
type Commit struct {
	SnapshotPath string
	Entries      []Entry
	// Index is the raft index the state machine reaches with this commit
	// (it counts entries raftnode consumed itself, such as conf changes).
	Index     uint64
	applyDone chan struct{}
}

// Applied reports that the application applied c. Call it exactly once.
func (c *Commit) Applied() { close(c.applyDone) }

// Node is one raft member: it owns the raft.Node, its Ready loop, the WAL,
// snapshot files, the transport to the other members and the membership
// list.
type Node struct {
	cfg Config
	lg  *zap.Logger

	proposeC    chan Proposal
	confChangeC chan ConfChange
	commitC     chan *Commit

	disk        *diskState
	node        raft.Node
	transport   Transport
	getSnapshot SnapshotFunc
	snapDoneC   chan snapResult
	// captureC carries CaptureState's requests to the Ready loop.
	captureC chan chan captureResult
	// pruneC carries the newest snapshot index to the pruner: removing a
	// data file of hundreds of megabytes may take a while, and must not
	// hold up the Ready loop.
	pruneC chan uint64
	// failpoint, set only by tests before Start, runs at each step of
	// saving a snapshot (see failpoint.go).
	failpoint func(name string) error

	// Owned by the run goroutine.
	confState     *raftpb.ConfState
	appliedIndex  uint64
	snapshotIndex uint64
	// appliedBytes is the data applied since the last snapshot began.
	appliedBytes uint64
	isLeader     bool
	// termSaved is the term of the last HardState given to the WAL.
	termSaved     uint64
	snapshotting  bool
	lastApplyDone <-chan struct{}
	// ccApplied are the ids of the conf changes applied in the Ready being
	// handled, answered once it is advanced (answerConfChanges).
	ccApplied []uint64
	// peers are the members added to the transport and not removed since.
	peers map[uint64]bool
	// released is the index of the newest snapshot whose older WAL
	// segments and data files were released for purging.
	released uint64

	mu struct {
		sync.RWMutex
		members   membership
		ccPending bool
	}
	ccWait wait.Wait
	reqIDs *idutil.Generator
	reads  *readIndexer
	batch  *batcher
	// notices are the commit notices the Ready loop holds (notices.go).
	notices *heldNotices
	met     *metrics

	leader atomic.Uint64
	// readFloor, while this member leads, is the index of the first entry
	// of its term; 0 otherwise (see readindex.go).
	readFloor atomic.Uint64
	// leadTerm, while this member leads, is its term; 0 otherwise.
	leadTerm atomic.Uint64
	// leaderKnown wakes the requests waiting for a leader (leaderwait.go).
	leaderKnown *leaderSignal
	// newLeaderC tells the application that another leader became known
	// (NewLeader).
	newLeaderC chan struct{}
	published  atomic.Uint64 // highest index handed to the application
	snapIndex  atomic.Uint64
	// levelUnlogged is set while the cluster level is only the one a new
	// cluster started at, which no entry or snapshot holds yet (level.go).
	levelUnlogged atomic.Bool

	started  bool
	stopOnce sync.Once
	stopc    chan struct{} // closed when the node starts stopping
	donec    chan struct{} // closed when the node has stopped
	stopCtx  context.Context
	cancel   context.CancelFunc
	err      error // why it stopped; written before stopc closes
	wg       sync.WaitGroup
}

// New validates cfg and replays the data dir. It starts nothing; call
// Start once the application is subscribed to Commits.
func New(cfg Config) (*Node, error) {
	cfg.applyDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	lg := cfg.Logger.With(zap.Uint64("member-id", cfg.ID))
	newID := cfg.ClusterID
	if newID == 0 {
		newID = DefaultClusterID
	}
	startLevel := cfg.Level // kept for restartLevel; a joiner starts none
	if cfg.Join {
		startLevel = 0
	}
	disk, err := openDisk(lg, cfg.DataDir, newID, cfg.ID, startLevel)
	if err != nil {
		return nil, err
	}
	n := &Node{
		cfg:         cfg,
		lg:          lg,
		proposeC:    make(chan Proposal),
		confChangeC: make(chan ConfChange),
		commitC:     make(chan *Commit, 128),
		snapDoneC:   make(chan snapResult, 1),
		pruneC:      make(chan uint64, 1),
		captureC:    make(chan chan captureResult),
		disk:        disk,
		confState:   &raftpb.ConfState{},
		peers:       map[uint64]bool{},
		ccWait:      wait.New(),
		reqIDs:      idutil.NewGenerator(uint16(cfg.ID), time.Now()),
		leaderKnown: newLeaderSignal(),
		stopc:       make(chan struct{}),
		donec:       make(chan struct{}),
		newLeaderC:  make(chan struct{}, 1),
	}
	n.stopCtx, n.cancel = context.WithCancel(context.Background())
	n.reads = newReadIndexer(n)
	n.batch = newBatcher(n)
	n.notices = newHeldNotices()
	n.met = newMetrics(cfg.Registerer)
	applied := make(chan struct{})
	close(applied)
	n.lastApplyDone = applied
	n.mu.members = newMembership()
	return n, nil
}

// ProposeC is where the application sends proposals.
func (n *Node) ProposeC() chan<- Proposal { return n.proposeC }

// ConfChangeC is where membership changes are sent.
func (n *Node) ConfChangeC() chan<- ConfChange { return n.confChangeC }

// Commits delivers committed state in log order; it is closed once the
// node has stopped.
func (n *Node) Commits() <-chan *Commit { return n.commitC }

// NewLeader receives a signal when this member learns of a leader other
// than the last one it knew (not when it loses one); a signal not yet
// received stands for every change since. Proposals forwarded to a leader
// that is gone are lost without an answer, so the application proposes
// again what it is still waiting for. It has one receiver.
func (n *Node) NewLeader() <-chan struct{} { return n.newLeaderC }

// Done is closed when the node has stopped, by Stop or by itself.
func (n *Node) Done() <-chan struct{} { return n.donec }

// Err tells why the node stopped: nil after Stop, ErrRemoved after this
// member applied its own removal, otherwise the fatal error. Only
// meaningful once Done is closed.
func (n *Node) Err() error {
	<-n.donec
	return n.err
}

// ID is this member's raft id.
func (n *Node) ID() uint64 { return n.cfg.ID }

// ClusterID is the id of this member's cluster (see clusterid.go).
func (n *Node) ClusterID() uint64 { return n.disk.clusterID }

// Leader is the leader this member last heard of; 0 means none.
func (n *Node) Leader() uint64 { return n.leader.Load() }

// Start joins or bootstraps the cluster and starts the goroutines.
// getSnapshot captures the application's state for a snapshot.
func (n *Node) Start(getSnapshot SnapshotFunc) error {
	n.getSnapshot = getSnapshot
	if err := n.restoreFromDisk(); err != nil {
		n.disk.wal.Close()
		return err
	}
	rc := &raft.Config{
		ID:                        n.cfg.ID,
		ElectionTick:              n.cfg.ElectionTicks,
		HeartbeatTick:             n.cfg.HeartbeatTicks,
		Storage:                   n.disk.storage,
		MaxSizePerMsg:             n.cfg.MaxSizePerMsg,
		MaxInflightMsgs:           n.cfg.MaxInflightMsgs,
		MaxUncommittedEntriesSize: n.cfg.MaxUncommittedEntriesSize,
		CheckQuorum:               true,
		PreVote:                   true,
		ReadOnlyOption:            raft.ReadOnlySafe,
		StepDownOnRemoval:         true,
		Logger:                    newRaftLogger(n.lg),
	}
	if n.disk.hasWAL || n.cfg.Join {
		n.node = raft.RestartNode(rc)
		n.restartLevel()
	} else {
		peers := make([]raft.Peer, len(n.cfg.Peers))
		for i, u := range n.cfg.Peers {
			peers[i] = raft.Peer{ID: uint64(i + 1), Context: []byte(u)}
		}
		n.node = raft.StartNode(rc, peers)
		n.startLevel()
	}
	// The transport hands incoming messages to n.node, so it starts only
	// once the raft node exists.
	if err := n.startTransport(); err != nil {
		n.node.Stop()
		n.disk.wal.Close()
		return err
	}
	if hs, _, err := n.disk.storage.InitialState(); err == nil {
		n.termSaved = hs.GetTerm()
	}
	n.started = true
	n.wg.Add(7)
	go n.run()
	go n.hastenFirstElection()
	go n.serveChannels()
	go n.batch.run()
	go n.prune()
	go n.reads.run()
	go n.publishAttributes()
	n.startPurge()
	go n.teardownWhenStopped()
	n.lg.Info("raft node started",
		zap.Bool("join", n.cfg.Join), zap.Bool("restart", n.disk.hasWAL),
		zap.Bool("default-transport", n.cfg.NewTransport == nil),
		zap.String("peer-listen", n.cfg.PeerListenAddr))
	return nil
}

// Stop shuts the node down and waits for it. It is idempotent.
func (n *Node) Stop() {
	n.stop(nil)
	<-n.donec
}

// stop begins shutdown; err says why (nil for an orderly Stop).
func (n *Node) stop(err error) {
	n.stopOnce.Do(func() {
		n.err = err
		switch {
		case err == nil:
		case errors.Is(err, ErrRemoved):
			n.lg.Info("this member was removed from the cluster; stopping")
		default:
			n.lg.Error("stopping raft node after a fatal error", zap.Error(err))
		}
		n.cancel()
		close(n.stopc)
		if !n.started {
			n.disk.wal.Close()
			close(n.commitC)
			close(n.donec)
		}
	})
}

// teardownWhenStopped tears the node down in order once stop was called:
// the Ready loop and proposal goroutines first, then raft, the transport
// (rafthttp, then its peer server) and last the WAL.
func (n *Node) teardownWhenStopped() {
	<-n.stopc
	n.wg.Wait()
	n.node.Stop()
	n.transport.Stop()
	if err := n.disk.wal.Close(); err != nil {
		n.lg.Warn("closing wal", zap.Error(err))
	}
	close(n.commitC)
	n.lg.Info("raft node stopped")
	close(n.donec)
}
