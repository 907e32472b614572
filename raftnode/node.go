package raftnode

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net"
	"net/http"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/raftkv/raftkv/peerurl"
	"go.etcd.io/etcd/client/pkg/v3/fileutil"
	"go.etcd.io/etcd/client/pkg/v3/types"
	"go.etcd.io/etcd/pkg/v3/idutil"
	"go.etcd.io/etcd/pkg/v3/wait"
	"go.etcd.io/etcd/server/v3/etcdserver/api/rafthttp"
	"go.etcd.io/etcd/server/v3/etcdserver/api/snap"
	stats "go.etcd.io/etcd/server/v3/etcdserver/api/v2stats"
	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
	"go.uber.org/zap"
	"google.golang.org/protobuf/proto"
)

// clusterID tags rafthttp traffic so members of other raftkv clusters
// reject it; raftexample uses the same constant.
const clusterID = 0x1000

// Proposal is one application entry on its way into raft.
type Proposal struct {
	Data []byte
	// Result, if non-nil, receives exactly one value: nil once raft took
	// the proposal (appended it, or forwarded it to the leader), or the
	// reason it did not. It must have room for one value.
	Result chan<- error
}

// ConfChange is one membership change on its way into raft.
type ConfChange struct {
	Ctx     context.Context
	Type    raftpb.ConfChangeType // ConfChangeAddNode or ConfChangeRemoveNode
	NodeID  uint64
	PeerURL string // for ConfChangeAddNode
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
// snapshot files, the rafthttp transport and the membership list.
type Node struct {
	cfg Config
	lg  *zap.Logger

	proposeC    chan Proposal
	confChangeC chan ConfChange
	commitC     chan *Commit

	disk        *diskState
	node        raft.Node
	transport   *rafthttp.Transport
	peerServer  *http.Server
	getSnapshot SnapshotFunc
	snapDoneC   chan snapResult
	// pruneC carries the newest snapshot index to the pruner: removing a
	// data file of hundreds of megabytes may take a while, and must not
	// hold up the Ready loop.
	pruneC chan uint64

	// Owned by the run goroutine.
	confState     *raftpb.ConfState
	appliedIndex  uint64
	snapshotIndex uint64
	// appliedBytes is the data applied since the last snapshot began.
	appliedBytes  uint64
	isLeader      bool
	snapshotting  bool
	lastApplyDone <-chan struct{}
	// ccApplied are the ids of the conf changes applied in the Ready being
	// handled, answered once it is advanced (answerConfChanges).
	ccApplied []uint64

	mu struct {
		sync.RWMutex
		members   membership
		ccPending bool
	}
	ccWait wait.Wait
	reqIDs *idutil.Generator
	reads  *readIndexer
	batch  *batcher
	met    *metrics

	leader    atomic.Uint64
	published atomic.Uint64 // highest index handed to the application
	snapIndex atomic.Uint64

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
	disk, err := openDisk(lg, cfg.DataDir)
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
		disk:        disk,
		confState:   &raftpb.ConfState{},
		ccWait:      wait.New(),
		reqIDs:      idutil.NewGenerator(uint16(cfg.ID), time.Now()),
		stopc:       make(chan struct{}),
		donec:       make(chan struct{}),
	}
	n.stopCtx, n.cancel = context.WithCancel(context.Background())
	n.reads = newReadIndexer(n)
	n.batch = newBatcher(n)
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

// LogFirstIndex is the first entry the in-memory raft log holds: those
// before it were compacted away after a snapshot, and the log holds their
// data no longer. The data of a Commit's Entries is the log's own, never
// changed, so an application may keep parts of it in place while the log
// holds it.
func (n *Node) LogFirstIndex() uint64 {
	i, _ := n.disk.storage.FirstIndex() // MemoryStorage never fails it
	return i
}

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
	} else {
		peers := make([]raft.Peer, len(n.cfg.Peers))
		for i, u := range n.cfg.Peers {
			peers[i] = raft.Peer{ID: uint64(i + 1), Context: []byte(u)}
		}
		n.node = raft.StartNode(rc, peers)
	}
	// The transport hands incoming messages to n.node, so it starts only
	// once the raft node exists.
	if err := n.startTransport(); err != nil {
		n.node.Stop()
		n.disk.wal.Close()
		return err
	}
	n.started = true
	n.wg.Add(6)
	go n.run()
	go n.serveChannels()
	go n.batch.run()
	go n.prune()
	go n.reads.run()
	go n.publishAttributes()
	n.startPurge()
	go n.teardownWhenStopped()
	n.lg.Info("raft node started",
		zap.Bool("join", n.cfg.Join), zap.Bool("restart", n.disk.hasWAL),
		zap.String("peer-listen", n.cfg.PeerListenAddr))
	return nil
}

// restoreFromDisk hands the snapshot found on disk, if any, to the
// application as the first commit, and restores membership from it.
func (n *Node) restoreFromDisk() error {
	s := n.disk.snapshot
	if s == nil {
		return nil
	}
	env, err := decodeEnvelope(s.GetData())
	if err != nil {
		return err
	}
	md := s.GetMetadata()
	path := n.dataFile(md.GetIndex())
	if _, err := os.Stat(path); err != nil {
		return fmt.Errorf("raftnode: snapshot %d has no data file: %w", md.GetIndex(), err)
	}
	n.mu.members = env.Membership
	n.confState = md.GetConfState()
	n.appliedIndex, n.snapshotIndex = md.GetIndex(), md.GetIndex()
	n.snapIndex.Store(md.GetIndex())
	done := make(chan struct{})
	n.commitC <- &Commit{SnapshotPath: path, Index: md.GetIndex(), applyDone: done}
	n.lastApplyDone = done
	n.published.Store(md.GetIndex())
	return nil
}

func (n *Node) startTransport() error {
	ln, err := net.Listen("tcp", n.cfg.PeerListenAddr)
	if err != nil {
		return fmt.Errorf("raftnode: listen for peers on %s: %w", n.cfg.PeerListenAddr, err)
	}
	n.transport = &rafthttp.Transport{
		Logger:      n.lg.Named("rafthttp"),
		ID:          types.ID(n.cfg.ID),
		ClusterID:   clusterID,
		Raft:        n,
		Snapshotter: n.disk.snapshotter,
		ServerStats: stats.NewServerStats("", strconv.FormatUint(n.cfg.ID, 10)),
		LeaderStats: stats.NewLeaderStats(n.lg, strconv.FormatUint(n.cfg.ID, 10)),
		ErrorC:      make(chan error, 1),
	}
	if err := n.transport.Start(); err != nil {
		ln.Close()
		return fmt.Errorf("raftnode: start transport: %w", err)
	}
	// Peers come from the command line first (so a member reaches each
	// peer the way its own --cluster says, even through a proxy), then
	// from the snapshot's membership; conf changes applied later add and
	// remove the rest.
	n.mu.RLock()
	for i, u := range n.cfg.Peers {
		n.addPeerLocked(uint64(i+1), u)
	}
	for _, m := range n.mu.members.sorted() {
		n.addPeerLocked(m.ID, m.PeerURL)
	}
	n.mu.RUnlock()
	n.peerServer = &http.Server{
		Handler:           n.transport.Handler(),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          zap.NewStdLog(n.lg.Named("peer-http")),
	}
	go func() {
		if err := n.peerServer.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			n.stop(fmt.Errorf("raftnode: peer server: %w", err))
		}
	}()
	return nil
}

// addPeerLocked adds id to the transport unless it is this member, was
// removed, is already there, or has an unusable URL (rafthttp panics on
// those). n.mu must be held.
func (n *Node) addPeerLocked(id uint64, peerURL string) {
	if id == n.cfg.ID || n.mu.members.Removed[id] || n.transport.Get(types.ID(id)) != nil {
		return
	}
	if err := peerurl.Validate(peerURL); err != nil {
		n.lg.Warn("ignoring member with unusable peer URL", zap.Uint64("peer-id", id), zap.Error(err))
		return
	}
	n.transport.AddPeer(types.ID(id), []string{peerURL})
}

func (n *Node) startPurge() {
	interval := n.cfg.PurgeInterval
	_, snapErrC := fileutil.PurgeFileWithoutFlock(n.lg, snapDir(n.cfg.DataDir), "snap", n.cfg.MaxSnapshotFiles, interval, n.stopc)
	walErrC := fileutil.PurgeFile(n.lg, walDir(n.cfg.DataDir), "wal", n.cfg.MaxWALFiles, interval, n.stopc)
	go func() {
		select {
		case err := <-snapErrC:
			n.stop(fmt.Errorf("raftnode: purge snapshots: %w", err))
		case err := <-walErrC:
			n.stop(fmt.Errorf("raftnode: purge wal: %w", err))
		case <-n.stopc:
		}
	}()
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
// the Ready loop and proposal goroutines first, then raft, the transport,
// the peer server and last the WAL.
func (n *Node) teardownWhenStopped() {
	<-n.stopc
	n.wg.Wait()
	n.node.Stop()
	n.transport.Stop()
	n.peerServer.Close()
	if err := n.disk.wal.Close(); err != nil {
		n.lg.Warn("closing wal", zap.Error(err))
	}
	close(n.commitC)
	n.lg.Info("raft node stopped")
	close(n.donec)
}

// run is the Ready loop: the only goroutine that touches n.node's Ready
// channel, the WAL, the snapshot files and the MemoryStorage writes.
func (n *Node) run() {
	defer n.wg.Done()
	ticker := time.NewTicker(n.cfg.TickInterval)
	defer ticker.Stop()
	for {
		select {
		case <-ticker.C:
			n.node.Tick()
		case rd := <-n.node.Ready():
			start := time.Now()
			err := n.handleReady(rd)
			n.met.readySeconds.Observe(since(start))
			if err != nil {
				n.answerConfChanges() // applied all the same; we stop now
				n.stop(err)
				return
			}
			n.node.Advance()
			n.answerConfChanges()
		case res := <-n.snapDoneC:
			if err := n.finishSnapshot(res); err != nil {
				n.stop(err)
				return
			}
		case err := <-n.transport.ErrorC:
			// rafthttp reports that the cluster told us we were removed.
			n.stop(fmt.Errorf("%w (%v)", ErrRemoved, err))
			return
		case <-n.stopc:
			return
		}
	}
}

// handleReady processes one Ready in the order raft's doc.go requires.
func (n *Node) handleReady(rd raft.Ready) error {
	if rd.SoftState != nil {
		if old := n.leader.Swap(rd.SoftState.Lead); old != rd.SoftState.Lead {
			n.lg.Info("leader changed", zap.Uint64("from", old), zap.Uint64("to", rd.SoftState.Lead))
			if rd.SoftState.Lead != raft.None {
				n.met.leaderChanges.Inc()
			}
		}
		n.isLeader = rd.SoftState.RaftState == raft.StateLeader
		n.met.hasLeader.Set(boolGauge(rd.SoftState.Lead != raft.None))
		n.met.isLeader.Set(boolGauge(n.isLeader))
	}
	// A leader may send appends before its own fsync (raft thesis 10.2.1):
	// it counts itself toward the quorum only after Advance.
	var after []*raftpb.Message
	if n.isLeader {
		n.send(rd.Messages)
		if len(rd.Messages) > 0 && len(rd.Entries) > 0 {
			// The transport's writers were just made runnable on this
			// goroutine's P, and the fsync below blocks its thread in
			// the kernel while they wait there for another thread to
			// take them. Yielding lets them write the appends first, so
			// the followers start their own fsyncs sooner.
			runtime.Gosched()
		}
	} else {
		// A follower forwards proposals and read requests at once: they
		// carry no term and state nothing about this member's log, so
		// they need not wait for the fsync below (raft sends them as
		// local messages).
		var early []*raftpb.Message
		early, after = splitForwarded(rd.Messages)
		n.send(early)
	}
	if !raft.IsEmptySnap(rd.Snapshot) {
		if err := n.installSnapshot(rd.Snapshot); err != nil {
			return err
		}
	}
	// Committed entries are durable on a quorum already, so applying them
	// may overlap this member's own fsync of new entries, as in etcd. No
	// snapshot covers entries this member has not persisted: maybeSnapshot
	// runs after the save below.
	if err := n.publishEntries(rd.CommittedEntries); err != nil {
		return err
	}
	if err := n.disk.wal.Save(rd.HardState, rd.Entries); err != nil {
		return fmt.Errorf("raftnode: save wal: %w", err)
	}
	if err := n.disk.storage.Append(rd.Entries); err != nil {
		return fmt.Errorf("raftnode: append to storage: %w", err)
	}
	n.send(after)
	if len(rd.ReadStates) > 0 {
		n.reads.deliver(rd.ReadStates)
	}
	return n.maybeSnapshot()
}

// splitForwarded separates the proposals and read requests a follower
// forwards to its leader from the messages that must wait until this
// Ready is persisted.
func splitForwarded(ms []*raftpb.Message) (forwarded, rest []*raftpb.Message) {
	for _, m := range ms {
		switch m.GetType() {
		case raftpb.MsgProp, raftpb.MsgReadIndex:
			forwarded = append(forwarded, m)
		default:
			rest = append(rest, m)
		}
	}
	return forwarded, rest
}

// send hands messages to the transport. A snapshot message carries the
// small raft snapshot; the state follows it as a body streamed from the
// data file, which the receiver saves as its own data file.
func (n *Node) send(ms []*raftpb.Message) {
	ms = n.processMessages(ms)
	regular := ms[:0]
	for _, m := range ms {
		if m.GetType() != raftpb.MsgSnap {
			regular = append(regular, m)
			continue
		}
		index := m.GetSnapshot().GetMetadata().GetIndex()
		f, err := os.Open(n.dataFile(index))
		var fi os.FileInfo
		if err == nil {
			fi, err = f.Stat()
		}
		if err != nil {
			n.lg.Error("cannot send snapshot", zap.Uint64("to", m.GetTo()), zap.Uint64("snapshot-index", index), zap.Error(err))
			if f != nil {
				f.Close()
			}
			n.node.ReportSnapshot(m.GetTo(), raft.SnapshotFailure)
			continue
		}
		n.lg.Info("sending snapshot", zap.Uint64("to", m.GetTo()),
			zap.Uint64("snapshot-index", index), zap.Int64("bytes", fi.Size()))
		n.transport.SendSnapshot(snap.NewMessage(m, f, fi.Size()))
	}
	n.transport.Send(regular)
}

// processMessages prepares outgoing messages. A snapshot message carries
// the snapshot's stored ConfState, which predates members added since;
// the receiver would reject a snapshot that does not list it, so the
// current ConfState is patched in.
func (n *Node) processMessages(ms []*raftpb.Message) []*raftpb.Message {
	for _, m := range ms {
		if m.GetType() == raftpb.MsgSnap && m.Snapshot != nil {
			s := m.Snapshot
			m.Snapshot = &raftpb.Snapshot{
				Data: s.GetData(),
				Metadata: &raftpb.SnapshotMetadata{
					Index:     proto.Uint64(s.GetMetadata().GetIndex()),
					Term:      proto.Uint64(s.GetMetadata().GetTerm()),
					ConfState: n.confState,
				},
			}
		}
	}
	return ms
}

// installSnapshot persists a snapshot from the leader (its data file was
// saved by rafthttp before raft saw the message), loads it into raft's
// storage and hands it to the application.
func (n *Node) installSnapshot(s *raftpb.Snapshot) error {
	if _, err := os.Stat(n.dataFile(s.GetMetadata().GetIndex())); err != nil {
		return fmt.Errorf("raftnode: snapshot from leader has no data file: %w", err)
	}
	if err := n.disk.saveSnapshot(s); err != nil {
		return err
	}
	if err := n.disk.storage.ApplySnapshot(s); err != nil {
		return fmt.Errorf("raftnode: apply snapshot to storage: %w", err)
	}
	return n.publishSnapshot(s)
}

func (n *Node) publishSnapshot(s *raftpb.Snapshot) error {
	md := s.GetMetadata()
	if md.GetIndex() <= n.appliedIndex {
		return fmt.Errorf("raftnode: snapshot index %d is not past applied index %d", md.GetIndex(), n.appliedIndex)
	}
	env, err := decodeEnvelope(s.GetData())
	if err != nil {
		return err
	}
	n.mu.Lock()
	n.mu.members = env.Membership
	for _, m := range env.Membership.sorted() {
		n.addPeerLocked(m.ID, m.PeerURL)
	}
	n.mu.Unlock()
	n.confState = md.GetConfState()
	n.appliedIndex, n.snapshotIndex = md.GetIndex(), md.GetIndex()
	n.snapIndex.Store(md.GetIndex())
	n.lg.Info("applying snapshot from leader", zap.Uint64("snapshot-index", md.GetIndex()))
	n.met.snapshotsReceived.Inc()
	n.requestPrune(md.GetIndex())
	return n.publish(&Commit{SnapshotPath: n.dataFile(md.GetIndex()), Index: md.GetIndex()})
}

// entriesToApply drops the entries at or below applied, which the state
// machine already has (raft may hand them out again after a snapshot).
func entriesToApply(ents []*raftpb.Entry, applied uint64) ([]*raftpb.Entry, error) {
	if len(ents) == 0 {
		return nil, nil
	}
	first := ents[0].GetIndex()
	if first > applied+1 {
		return nil, fmt.Errorf("raftnode: first committed entry %d is past applied index %d + 1", first, applied)
	}
	if skip := applied - first + 1; skip < uint64(len(ents)) {
		return ents[skip:], nil
	}
	return nil, nil
}

// publishEntries applies conf changes and raftnode's own records, and
// hands the application entries to the application.
func (n *Node) publishEntries(committed []*raftpb.Entry) error {
	ents, err := entriesToApply(committed, n.appliedIndex)
	if err != nil || len(ents) == 0 {
		return err
	}
	var (
		out         []Entry
		removedSelf bool
	)
	for _, e := range ents {
		switch e.GetType() {
		case raftpb.EntryNormal:
			d := e.GetData()
			if len(d) == 0 {
				continue // a new leader's empty entry
			}
			switch d[0] {
			case entryApp:
				out = append(out, Entry{Index: e.GetIndex(), Data: d[1:]})
			case entryBatch:
				member, seq, payloads, err := decodeBatch(d[1:])
				if err != nil {
					n.lg.Warn("skipping undecodable batch entry", zap.Uint64("index", e.GetIndex()), zap.Error(err))
					continue
				}
				for _, p := range payloads {
					out = append(out, Entry{Index: e.GetIndex(), Data: p})
				}
				if member == n.cfg.ID {
					n.batch.committed(seq)
				}
			case entryAttributes:
				n.applyAttributes(d[1:])
			default:
				n.lg.Warn("skipping entry of unknown kind", zap.Uint64("index", e.GetIndex()), zap.Uint8("kind", d[0]))
			}
		case raftpb.EntryConfChange:
			cc := &raftpb.ConfChange{}
			if err := proto.Unmarshal(e.GetData(), cc); err != nil {
				return fmt.Errorf("raftnode: decode conf change at index %d: %w", e.GetIndex(), err)
			}
			n.confState = n.node.ApplyConfChange(cc)
			if n.applyMembership(cc) {
				removedSelf = true
			}
			n.ccApplied = append(n.ccApplied, cc.GetId())
		}
	}
	for _, e := range ents {
		n.appliedBytes += uint64(len(e.GetData()))
	}
	n.appliedIndex = ents[len(ents)-1].GetIndex()
	n.met.committedEntries.Add(float64(len(ents)))
	if err := n.publish(&Commit{Entries: out, Index: n.appliedIndex}); err != nil {
		return err
	}
	if removedSelf {
		return ErrRemoved
	}
	return nil
}

func (n *Node) publish(c *Commit) error {
	done := make(chan struct{})
	c.applyDone = done
	select {
	case n.commitC <- c:
	case <-n.stopc:
		return ErrStopped
	}
	n.lastApplyDone = done
	n.published.Store(c.Index)
	return nil
}

// answerConfChanges answers the proposers of the conf changes applied in
// the last Ready. Not before Advance: until then raft counts the last
// change as unapplied and drops the next one proposed (it becomes an empty
// entry), so a client answered earlier could send one that is lost and
// times out.
func (n *Node) answerConfChanges() {
	for _, id := range n.ccApplied {
		n.ccWait.Trigger(id, nil)
	}
	n.ccApplied = n.ccApplied[:0]
}

// applyMembership records an applied conf change and reports whether it
// removed this member.
func (n *Node) applyMembership(cc *raftpb.ConfChange) bool {
	id := cc.GetNodeId()
	n.mu.Lock()
	defer n.mu.Unlock()
	switch cc.GetType() {
	case raftpb.ConfChangeAddNode, raftpb.ConfChangeAddLearnerNode:
		if m, ok := n.mu.members.Members[id]; ok {
			// Two members proposed the same id at once; the first one
			// applied keeps its URL, on every member alike.
			n.lg.Warn("ignoring a second add of a member", zap.Uint64("peer-id", id),
				zap.String("peer-url", m.PeerURL), zap.String("ignored-url", string(cc.GetContext())))
			return false
		}
		m := Member{ID: id, PeerURL: string(cc.GetContext())}
		n.mu.members.Members[id] = m
		n.addPeerLocked(id, m.PeerURL)
		n.lg.Info("member added", zap.Uint64("peer-id", id), zap.String("peer-url", m.PeerURL))
	case raftpb.ConfChangeRemoveNode:
		delete(n.mu.members.Members, id)
		n.mu.members.Removed[id] = true
		n.lg.Info("member removed", zap.Uint64("peer-id", id))
		if id == n.cfg.ID {
			return true
		}
		if n.transport.Get(types.ID(id)) != nil {
			n.transport.RemovePeer(types.ID(id))
		}
	}
	return false
}

func (n *Node) applyAttributes(data []byte) {
	a, err := decodeAttributes(data)
	if err != nil {
		n.lg.Warn("skipping undecodable member attributes", zap.Error(err))
		return
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if m, ok := n.mu.members.Members[a.ID]; ok {
		m.ClientURL = a.ClientURL
		n.mu.members.Members[a.ID] = m
	}
}

// publishAttributes proposes this member's client URL until the member
// list shows it, as etcd members publish theirs when they start.
func (n *Node) publishAttributes() {
	defer n.wg.Done()
	if n.cfg.ClientURL == "" {
		return
	}
	data, err := encodeAttributes(attributes{ID: n.cfg.ID, ClientURL: n.cfg.ClientURL})
	if err != nil {
		n.lg.Warn("cannot encode member attributes", zap.Error(err))
		return
	}
	t := time.NewTicker(500 * time.Millisecond)
	defer t.Stop()
	for {
		n.mu.RLock()
		m, ok := n.mu.members.Members[n.cfg.ID]
		n.mu.RUnlock()
		if ok && m.ClientURL == n.cfg.ClientURL {
			return
		}
		if ok && n.leader.Load() != raft.None {
			ctx, cancel := context.WithTimeout(n.stopCtx, time.Second)
			_ = n.node.Propose(ctx, data) // retried until applied
			cancel()
		}
		select {
		case <-t.C:
		case <-n.stopc:
			return
		}
	}
}

// snapResult is a data file written in the background, to be recorded.
type snapResult struct {
	index     uint64
	confState *raftpb.ConfState
	envelope  []byte
	bytes     int64
	started   time.Time
	err       error
}

// maybeSnapshot starts a snapshot once SnapshotCount entries, or entries
// of SnapshotBytes, were applied since the last one. The state is captured here, on the Ready loop, after
// the application applied every published commit (so it covers exactly
// the entries up to appliedIndex); its data file is written on another
// goroutine while entries keep flowing, and finishSnapshot records it.
func (n *Node) maybeSnapshot() error {
	if n.snapshotting || n.appliedIndex == n.snapshotIndex ||
		n.appliedIndex-n.snapshotIndex < n.cfg.SnapshotCount && n.appliedBytes < n.cfg.SnapshotBytes {
		return nil
	}
	start := time.Now()
	select {
	case <-n.lastApplyDone:
	case <-n.stopc:
		return ErrStopped
	}
	write, err := n.getSnapshot()
	if err != nil {
		return fmt.Errorf("raftnode: application snapshot: %w", err)
	}
	n.mu.RLock()
	env, err := encodeEnvelope(n.mu.members)
	n.mu.RUnlock()
	if err != nil {
		return err
	}
	res := snapResult{index: n.appliedIndex, confState: n.confState, envelope: env, started: start}
	n.snapshotting = true
	n.appliedBytes = 0
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		res.bytes, res.err = writeDataFile(snapDir(n.cfg.DataDir), res.index, n.cfg.SnapshotWriteRate, n.stopc, write)
		n.snapDoneC <- res // buffered; only one snapshot is in flight
	}()
	return nil
}

// finishSnapshot records a written data file as raft's snapshot, then
// compacts the in-memory log keeping SnapshotCatchUpEntries for slow
// followers.
func (n *Node) finishSnapshot(res snapResult) error {
	n.snapshotting = false
	if res.err != nil {
		return fmt.Errorf("raftnode: write snapshot data: %w", res.err)
	}
	s, err := n.disk.storage.CreateSnapshot(res.index, res.confState, res.envelope)
	if errors.Is(err, raft.ErrSnapOutOfDate) {
		return nil // a newer snapshot from the leader was applied meanwhile
	}
	if err != nil {
		return fmt.Errorf("raftnode: create snapshot: %w", err)
	}
	if err := n.disk.saveSnapshot(s); err != nil {
		return err
	}
	compact, err := n.compactIndex(res.index)
	if err != nil {
		return err
	}
	if err := n.disk.storage.Compact(compact); err != nil && !errors.Is(err, raft.ErrCompacted) {
		return fmt.Errorf("raftnode: compact log: %w", err)
	}
	n.lg.Info("saved snapshot", zap.Uint64("snapshot-index", res.index),
		zap.Uint64("compacted-to", compact), zap.Int64("bytes", res.bytes),
		zap.Duration("took", time.Since(res.started)))
	if res.index > n.snapshotIndex {
		n.snapshotIndex = res.index
		n.snapIndex.Store(res.index)
	}
	n.requestPrune(n.snapshotIndex)
	n.met.snapshotsSaved.Inc()
	n.met.snapshotSeconds.Observe(since(res.started))
	return nil
}

// requestPrune asks the pruner to remove the data files behind the
// snapshot at current; only the latest request matters. Called from the
// Ready loop only, so the drain and send cannot race another sender.
func (n *Node) requestPrune(current uint64) {
	select {
	case <-n.pruneC:
	default:
	}
	n.pruneC <- current
}

// prune removes old snapshot data files, off the Ready loop.
func (n *Node) prune() {
	defer n.wg.Done()
	for {
		select {
		case current := <-n.pruneC:
			pruneDataFiles(n.lg, snapDir(n.cfg.DataDir), n.cfg.MaxSnapshotDataFiles, current)
		case <-n.stopc:
			return
		}
	}
}

// compactIndex is where the in-memory log may be compacted after a
// snapshot at index: behind index it keeps SnapshotCatchUpEntries entries,
// or fewer if those hold more than SnapshotCatchUpBytes of data.
func (n *Node) compactIndex(index uint64) (uint64, error) {
	first, err := n.disk.storage.FirstIndex()
	if err != nil {
		return 0, fmt.Errorf("raftnode: compact log: %w", err)
	}
	lo := max(first, index-min(index, n.cfg.SnapshotCatchUpEntries)+1)
	if lo > index {
		return index, nil
	}
	ents, err := n.disk.storage.Entries(lo, index+1, math.MaxUint64)
	if errors.Is(err, raft.ErrCompacted) {
		return index, nil
	}
	if err != nil {
		return 0, fmt.Errorf("raftnode: compact log: %w", err)
	}
	var kept uint64
	for i := len(ents) - 1; i >= 0; i-- {
		kept += uint64(len(ents[i].GetData()))
		if kept > n.cfg.SnapshotCatchUpBytes {
			return ents[i].GetIndex(), nil
		}
	}
	return max(1, lo-1), nil
}

// serveChannels feeds proposals and conf changes into raft.
func (n *Node) serveChannels() {
	defer n.wg.Done()
	for {
		select {
		case p := <-n.proposeC:
			// The leader merges proposals (see batcher); a follower sends
			// its own to the leader's.
			var err error
			switch lead := n.leader.Load(); {
			case lead == n.cfg.ID && n.batch.add(p.Data, p.Result):
				continue
			case lead != raft.None && lead != n.cfg.ID:
				n.forward(lead, p.Data)
			default:
				err = n.propose(p.Data)
			}
			if p.Result != nil {
				p.Result <- err
			}
		case cc := <-n.confChangeC:
			n.proposeConfChange(cc)
		case <-n.stopc:
			return
		}
	}
}

// forward sends application data to the leader lead as a proposal
// (MsgProp), as raft forwards a follower's proposal, but from here rather
// than from raft's next Ready: that would take two more goroutine
// hand-offs and a Ready cycle for each. Its Process hands the payload to
// its batcher, or, if it is no longer leader, to raft, which forwards or
// drops it; like any message, the transport may drop it too, and the
// application proposes it again.
func (n *Node) forward(lead uint64, data []byte) {
	n.transport.Send([]*raftpb.Message{{
		Type:    raftpb.MsgProp.Enum(),
		From:    proto.Uint64(n.cfg.ID),
		To:      proto.Uint64(lead),
		Entries: []*raftpb.Entry{{Type: raftpb.EntryNormal.Enum(), Data: wrapAppData(data)}},
	}})
}

// propose hands application data to raft as one entry.
func (n *Node) propose(data []byte) error { return n.proposeEntry(wrapAppData(data)) }

// proposeEntry hands entry data, kind byte included, to raft.
// raft.Node.Propose blocks while no leader is known, so that case is
// answered here at once.
func (n *Node) proposeEntry(entry []byte) error {
	if n.leader.Load() == raft.None {
		n.met.proposalsDropped.Inc()
		return ErrNoLeader
	}
	ctx, cancel := context.WithTimeout(n.stopCtx, n.electionTimeout())
	defer cancel()
	return n.proposeError(n.node.Propose(ctx, entry))
}

func (n *Node) electionTimeout() time.Duration {
	return time.Duration(n.cfg.ElectionTicks) * n.cfg.TickInterval
}

// proposeError turns raft's answer to a proposal into this package's.
func (n *Node) proposeError(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, raft.ErrProposalDropped) && n.leader.Load() == raft.None:
		n.met.proposalsDropped.Inc()
		return ErrNoLeader
	case errors.Is(err, raft.ErrProposalDropped):
		n.met.proposalsDropped.Inc()
		return ErrProposalDropped
	case errors.Is(err, raft.ErrStopped), errors.Is(err, context.Canceled):
		return ErrStopped
	case errors.Is(err, context.DeadlineExceeded):
		return ErrTimeout
	}
	return err
}

func (n *Node) proposeConfChange(req ConfChange) {
	n.mu.Lock()
	var err error
	switch {
	case n.mu.ccPending:
		err = ErrConfChangeInProgress
	case req.Type == raftpb.ConfChangeAddNode:
		err = n.mu.members.checkAdd(req.NodeID, req.PeerURL)
	case req.Type == raftpb.ConfChangeRemoveNode:
		err = n.mu.members.checkRemove(req.NodeID)
	default:
		err = fmt.Errorf("%w: unsupported change %v", ErrInvalidMember, req.Type)
	}
	if err == nil && n.leader.Load() == raft.None {
		err = ErrNoLeader
	}
	if err != nil {
		n.mu.Unlock()
		req.Result <- err
		return
	}
	n.mu.ccPending = true
	n.mu.Unlock()

	id := n.reqIDs.Next()
	appliedC := n.ccWait.Register(id)
	cc := &raftpb.ConfChange{Type: req.Type.Enum(), NodeId: proto.Uint64(req.NodeID), Id: proto.Uint64(id)}
	if req.Type == raftpb.ConfChangeAddNode {
		cc.Context = []byte(req.PeerURL)
	}
	ctx, cancel := context.WithTimeout(req.Ctx, n.electionTimeout())
	err = n.node.ProposeConfChange(ctx, cc)
	cancel()
	if err != nil {
		n.ccWait.Trigger(id, n.proposeError(err))
	}
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		var res error
		select {
		case v := <-appliedC:
			res, _ = v.(error)
		case <-req.Ctx.Done():
			n.ccWait.Trigger(id, nil)
			res = ErrTimeout
		case <-n.stopc:
			n.ccWait.Trigger(id, nil)
			res = ErrStopped
		}
		n.mu.Lock()
		n.mu.ccPending = false
		n.mu.Unlock()
		req.Result <- res
	}()
}

// AddMember adds a voting member and returns once the change is applied
// on this member.
func (n *Node) AddMember(ctx context.Context, id uint64, peerURL string) error {
	return n.changeMembership(ctx, ConfChange{Type: raftpb.ConfChangeAddNode, NodeID: id, PeerURL: peerURL})
}

// RemoveMember removes a member and returns once the change is applied on
// this member. Removing this member stops it.
func (n *Node) RemoveMember(ctx context.Context, id uint64) error {
	return n.changeMembership(ctx, ConfChange{Type: raftpb.ConfChangeRemoveNode, NodeID: id})
}

func (n *Node) changeMembership(ctx context.Context, cc ConfChange) error {
	res := make(chan error, 1)
	cc.Ctx, cc.Result = ctx, res
	select {
	case n.confChangeC <- cc:
	case <-ctx.Done():
		return ErrTimeout
	case <-n.stopc:
		return ErrStopped
	}
	select {
	case err := <-res:
		return err
	case <-n.donec:
		return ErrStopped
	}
}

// Propose sends data through proposeC and returns raft's answer: nil once
// the entry was appended or forwarded to the leader. It does not wait for
// the entry to commit. ErrNoLeader, ErrProposalDropped and ErrStopped mean
// the entry reached no log; after ErrTimeout that is unknown.
func (n *Node) Propose(ctx context.Context, data []byte) error {
	res := make(chan error, 1)
	select {
	case n.proposeC <- Proposal{Data: data, Result: res}:
	case <-ctx.Done():
		return ErrTimeout
	case <-n.stopc:
		return ErrStopped
	}
	select {
	case err := <-res:
		return err
	case <-ctx.Done():
		return ErrTimeout
	case <-n.stopc:
		return ErrStopped
	}
}

// Members returns the current member list, sorted by id.
func (n *Node) Members() []Member {
	n.mu.RLock()
	defer n.mu.RUnlock()
	return n.mu.members.sorted()
}

// Status is a snapshot of this member's raft state.
type Status struct {
	ID            uint64
	Leader        uint64
	Term          uint64
	CommitIndex   uint64
	AppliedIndex  uint64 // highest index handed to the application
	SnapshotIndex uint64
	Members       []Member
	// Progress is each follower's replication state; only on the leader.
	Progress map[uint64]Progress
}

// Progress is the leader's view of one follower.
type Progress struct {
	Match, Next uint64
	State       string // probe, replicate or snapshot
	IsLearner   bool
}

// Status reports this member's raft state.
func (n *Node) Status() Status {
	st := Status{
		ID:            n.cfg.ID,
		Leader:        n.leader.Load(),
		AppliedIndex:  n.published.Load(),
		SnapshotIndex: n.snapIndex.Load(),
		Members:       n.Members(),
	}
	select {
	case <-n.stopc:
		return st
	default:
	}
	rs := n.node.Status()
	st.Term, st.CommitIndex = rs.HardState.GetTerm(), rs.HardState.GetCommit()
	if rs.RaftState == raft.StateLeader && len(rs.Progress) > 0 {
		st.Progress = make(map[uint64]Progress, len(rs.Progress))
		for id, pr := range rs.Progress {
			if id == n.cfg.ID {
				continue
			}
			st.Progress[id] = Progress{Match: pr.Match, Next: pr.Next, State: strings.ToLower(strings.TrimPrefix(pr.State.String(), "State")), IsLearner: pr.IsLearner}
		}
	}
	return st
}

// Process implements rafthttp.Raft.
func (n *Node) Process(ctx context.Context, m *raftpb.Message) error {
	if m.GetType() == raftpb.MsgProp && n.leader.Load() == n.cfg.ID {
		return n.stepForwarded(ctx, m)
	}
	return n.node.Step(ctx, m)
}

// IsIDRemoved implements rafthttp.Raft.
func (n *Node) IsIDRemoved(id uint64) bool {
	n.mu.RLock()
	defer n.mu.RUnlock()
	return n.mu.members.Removed[id]
}

// ReportUnreachable implements rafthttp.Raft.
func (n *Node) ReportUnreachable(id uint64) { n.node.ReportUnreachable(id) }

// ReportSnapshot implements rafthttp.Raft.
func (n *Node) ReportSnapshot(id uint64, status raft.SnapshotStatus) {
	n.node.ReportSnapshot(id, status)
}
