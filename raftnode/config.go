package raftnode

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"path/filepath"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/raftkv/raftkv/peerurl"
	"go.etcd.io/etcd/client/pkg/v3/transport"
	"go.uber.org/zap"
)

// Config configures one raft member. Every field has a documented default;
// New applies the defaults to a copy before validating it.
type Config struct {
	// ID is this member's raft id; it must be non-zero.
	ID uint64
	// Peers lists the peer URLs of the initial cluster: member i+1 listens
	// on Peers[i] (raftexample's --cluster). For a joining member it lists
	// the members it may contact, itself included.
	Peers []string
	// Join says this member is joining a running cluster, so it must not
	// bootstrap a new one.
	Join bool
	// ClusterID is the cluster id to write in a new WAL: a joining member
	// learns it from the others (DiscoverClusterID). A data dir that has a
	// WAL keeps the id its WAL names. Zero means DefaultClusterID.
	ClusterID uint64
	// DataDir holds the WAL (DataDir/wal) and snapshot files (DataDir/snap).
	// Required; it is never derived from the working directory.
	DataDir string
	// ClientURL is this member's client address, published to the others
	// through raft once it joins. Empty means none is published.
	ClientURL string
	// Level is the feature level this binary speaks (see ClusterLevel): a
	// new cluster it bootstraps starts at it, and the node stops rather
	// than apply a cluster level above it. 0 means none: such a node
	// tracks the cluster level but speaks only level 0.
	Level uint32
	// PeerListenAddr is the host:port the peer (rafthttp) server listens on.
	// Empty means the host:port of this member's own entry in Peers. Only
	// the default transport uses it.
	PeerListenAddr string
	// PeerListener, when set, is the listener the default transport's peer
	// server serves instead of listening on PeerListenAddr, so a caller can claim the port
	// before the data dir is touched. Once Start succeeded the node closes
	// it when it stops; until then closing it is the caller's. Nil means
	// the node listens on PeerListenAddr itself.
	PeerListener net.Listener
	// PeerTLS, when set, secures the links between members: the peer
	// server serves TLS with its certificate (re-read from disk at each
	// handshake, so renewed files take effect without a restart), rafthttp
	// dials with it and trusts TrustedCAFile, and with ClientCertAuth the
	// peer server refuses a member that presents no certificate that
	// TrustedCAFile verifies. Every peer URL is then https. Nil means plain
	// http. Only the default transport uses it; a NewTransport gets it in
	// TransportParams.
	PeerTLS *transport.TLSInfo
	// NewTransport builds the transport that carries raft messages to the
	// other members (see Transport). Start calls it once raft runs; the
	// node stops it after raft. Nil means etcd's rafthttp, with a peer
	// HTTP server on PeerListenAddr: what a daemon uses. Tests connect
	// members in one process with their own.
	NewTransport func(TransportParams) (Transport, error)

	// SnapshotCount is the number of applied entries between snapshots.
	// Zero means DefaultSnapshotCount.
	SnapshotCount uint64
	// SnapshotCatchUpEntries is how many entries are kept in the raft log
	// behind a snapshot so slow followers catch up without a snapshot.
	// Zero means DefaultSnapshotCatchUpEntries.
	SnapshotCatchUpEntries uint64
	// SnapshotBytes also starts a snapshot once the entries applied since
	// the last one hold this many bytes of data, and SnapshotCatchUpBytes
	// bounds the data of the entries kept behind a snapshot: an entry may
	// carry many writes, and the in-memory log should not outgrow the
	// state. Zero means DefaultSnapshotBytes and 8 MiB.
	SnapshotBytes        uint64
	SnapshotCatchUpBytes uint64
	// SnapshotWriteRate bounds how fast a snapshot's data file is written,
	// in bytes per second, so that writing a large state leaves the disk
	// to the WAL's fsyncs. Zero means DefaultSnapshotWriteRate; negative
	// means no bound.
	SnapshotWriteRate int64
	// MaxSnapshotFiles and MaxWALFiles bound the files kept on disk; older
	// ones are purged once no longer needed. Zero means 5. The .snap files
	// are purged by number alone, so at least 2 are kept: until the newest
	// one's WAL record and a HardState that commits it are durable, a
	// restart needs the one before.
	MaxSnapshotFiles uint
	MaxWALFiles      uint
	// MaxSnapshotDataFiles bounds the snapshot data files kept (each holds
	// the whole state, unlike the small .snap files). Zero means 2.
	MaxSnapshotDataFiles uint
	// PurgeInterval is how often old snapshot and WAL files are looked
	// for. Zero means 30s.
	PurgeInterval time.Duration

	// TickInterval is the duration of one raft tick. Zero means
	// DefaultTickInterval.
	TickInterval time.Duration
	// ElectionTicks is the election timeout in ticks. Zero means
	// DefaultElectionTicks.
	ElectionTicks int
	// HeartbeatTicks is the heartbeat interval in ticks. Zero means 1.
	HeartbeatTicks int
	// MaxSizePerMsg bounds the bytes of entries in one append message.
	// Zero means 1 MiB.
	MaxSizePerMsg uint64
	// MaxInflightMsgs bounds the append messages in flight to one follower.
	// Zero means 512.
	MaxInflightMsgs int
	// MaxUncommittedEntriesSize bounds the bytes a leader holds uncommitted
	// before it drops proposals. Zero means 1 GiB.
	MaxUncommittedEntriesSize uint64
	// UncommittedBatchTimeout is how long the leader's batch entry may stay
	// uncommitted before the next one is proposed anyway (it may have been
	// lost with a leader change). Zero means 100ms.
	UncommittedBatchTimeout time.Duration
	// MaxUncommittedBatches is how many of the leader's batch entries may be
	// uncommitted at once. Zero means 1.
	MaxUncommittedBatches int
	// BatchGatherWait is the longest the leader waits, once its batch entry
	// committed, for the writes queued to add up to most of that entry
	// before it proposes the next (see gatherPolicy). Zero means
	// DefaultBatchGatherWait; negative means it never waits.
	BatchGatherWait time.Duration
	// MaxBatchQueueBytes bounds the proposals the leader holds waiting for
	// the next batch entry; past it they go to raft one by one. Zero means
	// 64 MiB.
	MaxBatchQueueBytes int
	// CommitNoticeDelay is the longest the leader holds an append that
	// only tells a follower a new commit index, when no write that
	// follower forwarded is in the entries it commits: a newer append
	// meanwhile carries it instead (see notices.go). Zero means
	// DefaultCommitNoticeDelay; negative means notices are sent at once.
	CommitNoticeDelay time.Duration

	// Logger receives the node's and raft's logs. Nil means zap.NewNop().
	Logger *zap.Logger
	// Registerer receives the node's Prometheus metrics. Nil means they
	// are kept but not exported.
	Registerer prometheus.Registerer
}

// The defaults of the settings the daemon's flags show.
const (
	DefaultSnapshotCount          = 10000
	DefaultSnapshotCatchUpEntries = 5000
	DefaultSnapshotBytes          = 64 << 20
	DefaultSnapshotWriteRate      = 48 << 20 // bytes per second
	DefaultTickInterval           = 100 * time.Millisecond
	DefaultElectionTicks          = 10
	DefaultBatchGatherWait        = 2 * time.Millisecond
	DefaultCommitNoticeDelay      = 2 * time.Millisecond
)

func (c *Config) applyDefaults() {
	if c.SnapshotCount == 0 {
		c.SnapshotCount = DefaultSnapshotCount
	}
	if c.SnapshotCatchUpEntries == 0 {
		c.SnapshotCatchUpEntries = DefaultSnapshotCatchUpEntries
	}
	if c.SnapshotBytes == 0 {
		c.SnapshotBytes = DefaultSnapshotBytes
	}
	if c.SnapshotCatchUpBytes == 0 {
		c.SnapshotCatchUpBytes = 8 << 20
	}
	if c.SnapshotWriteRate == 0 {
		c.SnapshotWriteRate = DefaultSnapshotWriteRate
	}
	if c.MaxSnapshotFiles == 0 {
		c.MaxSnapshotFiles = 5
	}
	if c.MaxWALFiles == 0 {
		c.MaxWALFiles = 5
	}
	if c.MaxSnapshotDataFiles == 0 {
		c.MaxSnapshotDataFiles = 2
	}
	if c.PurgeInterval == 0 {
		c.PurgeInterval = 30 * time.Second
	}
	if c.TickInterval == 0 {
		c.TickInterval = DefaultTickInterval
	}
	if c.ElectionTicks == 0 {
		c.ElectionTicks = DefaultElectionTicks
	}
	if c.HeartbeatTicks == 0 {
		c.HeartbeatTicks = 1
	}
	if c.MaxSizePerMsg == 0 {
		c.MaxSizePerMsg = 1 << 20
	}
	if c.MaxInflightMsgs == 0 {
		c.MaxInflightMsgs = 512
	}
	if c.MaxUncommittedEntriesSize == 0 {
		c.MaxUncommittedEntriesSize = 1 << 30
	}
	if c.UncommittedBatchTimeout == 0 {
		c.UncommittedBatchTimeout = 100 * time.Millisecond
	}
	if c.MaxUncommittedBatches == 0 {
		c.MaxUncommittedBatches = 1
	}
	if c.BatchGatherWait == 0 {
		c.BatchGatherWait = DefaultBatchGatherWait
	}
	if c.CommitNoticeDelay == 0 {
		c.CommitNoticeDelay = DefaultCommitNoticeDelay
	}
	if c.MaxBatchQueueBytes == 0 {
		c.MaxBatchQueueBytes = 64 << 20
	}
	if c.Logger == nil {
		c.Logger = zap.NewNop()
	}
	if c.PeerListenAddr == "" && c.ID >= 1 && c.ID <= uint64(len(c.Peers)) {
		if u, err := url.Parse(c.Peers[c.ID-1]); err == nil {
			c.PeerListenAddr = u.Host
		}
	}
}

// Validate reports the first problem with the configuration, without
// touching the disk or the network.
func (c *Config) Validate() error {
	if c.ID == 0 {
		return errors.New("raftnode: id must be positive")
	}
	if len(c.Peers) == 0 {
		return errors.New("raftnode: the peer list is empty")
	}
	if c.ID > uint64(len(c.Peers)) {
		return fmt.Errorf("raftnode: id %d is outside the peer list of %d members", c.ID, len(c.Peers))
	}
	seen := make(map[string]bool, len(c.Peers))
	for i, p := range c.Peers {
		if err := peerurl.Validate(p); err != nil {
			return fmt.Errorf("raftnode: peer %d: %w", i+1, err)
		}
		if seen[p] {
			return fmt.Errorf("raftnode: peer URL %s is listed twice", p)
		}
		seen[p] = true
	}
	if c.DataDir == "" {
		return errors.New("raftnode: data dir is required")
	}
	if !filepath.IsAbs(c.DataDir) {
		return fmt.Errorf("raftnode: data dir %q must be an absolute path", c.DataDir)
	}
	if c.ElectionTicks <= c.HeartbeatTicks {
		return fmt.Errorf("raftnode: election ticks (%d) must exceed heartbeat ticks (%d)", c.ElectionTicks, c.HeartbeatTicks)
	}
	if c.TickInterval < time.Millisecond {
		return fmt.Errorf("raftnode: tick interval %v is below 1ms", c.TickInterval)
	}
	if c.MaxSnapshotFiles < 2 {
		return fmt.Errorf("raftnode: max snapshot files %d is below 2; a restart may need the snapshot before the newest", c.MaxSnapshotFiles)
	}
	if c.PeerListenAddr == "" && c.NewTransport == nil {
		return errors.New("raftnode: no peer listen address")
	}
	if c.PeerTLS != nil && (c.PeerTLS.CertFile == "" || c.PeerTLS.KeyFile == "") {
		return errors.New("raftnode: peer TLS needs a certificate and a key file")
	}
	return nil
}
