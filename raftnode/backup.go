package raftnode

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/raftkv/raftkv/peerurl"
	"go.etcd.io/etcd/client/pkg/v3/fileutil"
	"go.etcd.io/etcd/server/v3/etcdserver/api/snap"
	"go.etcd.io/etcd/server/v3/storage/wal"
	"go.etcd.io/etcd/server/v3/storage/wal/walpb"
	"go.etcd.io/raft/v3/raftpb"
	"go.uber.org/zap"
	"google.golang.org/protobuf/proto"
)

// Backups. CaptureState hands out the application's state at one applied
// index, as a snapshot would take it, for a backup taken while the member
// runs; Bootstrap makes the data dir of a member of a new cluster that
// starts from such a state (etcdutl snapshot restore).

// ErrNothingApplied means the member has applied no entry yet, so it has
// no state to capture.
var ErrNothingApplied = newError(unavailable, "raftnode: nothing applied yet",
	"this member has not applied anything yet; retry shortly")

// Capture is the application's state at one applied index.
type Capture struct {
	// Index is the index of the last entry the state holds; Term is that
	// entry's term.
	Index, Term uint64
	// Write writes the state as the function the application's
	// SnapshotFunc returned writes a snapshot data file. Call it once; it
	// may run while the member goes on applying.
	Write func(io.Writer) error
}

type captureResult struct {
	c   Capture
	err error
}

// CaptureState captures the application's state the way the node's own
// snapshots do (invariant 2): on the Ready loop, once the application has
// applied every commit published to it, through the SnapshotFunc given to
// Start. The state is then exactly that of the applied index: no more, no
// less. It asks no quorum: a caller that wants every write acknowledged
// before the call in it first waits, after ReadIndex, until the
// application applied that index.
func (n *Node) CaptureState(ctx context.Context) (Capture, error) {
	resc := make(chan captureResult, 1)
	select {
	case n.captureC <- resc:
	case <-ctx.Done():
		return Capture{}, fmt.Errorf("raftnode: capture state: %w", ctx.Err())
	case <-n.stopc:
		return Capture{}, ErrStopped
	}
	select {
	case res := <-resc:
		return res.c, res.err
	case <-ctx.Done():
		// The capture, if taken, is a clone nobody writes: dropped.
		return Capture{}, fmt.Errorf("raftnode: capture state: %w", ctx.Err())
	case <-n.stopc:
		return Capture{}, ErrStopped
	}
}

// capture runs on the Ready loop, between two Readies: every committed
// entry published so far is in the storage, and none is being published.
func (n *Node) capture() captureResult {
	if n.appliedIndex == 0 {
		return captureResult{err: ErrNothingApplied}
	}
	select {
	case <-n.lastApplyDone:
	case <-n.stopc:
		return captureResult{err: ErrStopped}
	}
	term, err := n.disk.storage.Term(n.appliedIndex)
	if err != nil {
		return captureResult{err: fmt.Errorf("raftnode: term of applied index %d: %w", n.appliedIndex, err)}
	}
	write, err := n.getSnapshot()
	if err != nil {
		return captureResult{err: fmt.Errorf("raftnode: application snapshot: %w", err)}
	}
	return captureResult{c: Capture{Index: n.appliedIndex, Term: term, Write: write}}
}

// BootstrapConfig describes the data dir Bootstrap makes.
type BootstrapConfig struct {
	// DataDir is the data dir to make, an absolute path. It must not
	// exist, or be an empty directory.
	DataDir string
	// Peers are the peer URLs of the new cluster, in id order: member
	// i+1 listens on Peers[i]. Every member is a voter.
	Peers []string
	// Index and Term are those of the state: the new cluster's log starts
	// after Index. Both at least 1.
	Index, Term uint64
	// Level is the new cluster's level (see Config.Level): that of the
	// binary that will run it.
	Level uint32
	// ClusterID is the new cluster's id (RestoredClusterID); zero means
	// DefaultClusterID.
	ClusterID uint64
	// ID is the member the data dir is made for, which its WAL names so
	// that no other member starts from it (see openDisk); zero: any.
	ID uint64
	// Logger receives the WAL's and snapshotter's logs. Nil means
	// zap.NewNop().
	Logger *zap.Logger
}

// Validate reports the first problem with c, without touching the disk.
func (c BootstrapConfig) Validate() error {
	switch {
	case c.DataDir == "":
		return errors.New("raftnode: data dir is required")
	case !filepath.IsAbs(c.DataDir):
		return fmt.Errorf("raftnode: data dir %q must be an absolute path", c.DataDir)
	case len(c.Peers) == 0:
		return errors.New("raftnode: the peer list is empty")
	case c.Index == 0 || c.Term == 0:
		return fmt.Errorf("raftnode: a state at index %d, term %d: both must be at least 1", c.Index, c.Term)
	case c.ID > uint64(len(c.Peers)):
		return fmt.Errorf("raftnode: member %d is not among the %d peers", c.ID, len(c.Peers))
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
	return nil
}

// Bootstrap makes the data dir of a member of a new cluster whose state
// machine starts from a given state rather than from nothing: a snapshot
// at cfg.Index whose data file write writes (as a SnapshotFunc's function
// would) and whose member list is cfg.Peers, ids 1 to n, all voters; and a
// WAL holding that snapshot's record and a HardState at cfg.Term that
// commits it. The member id does not enter the data dir, so every member
// of the new cluster gets the same one: each must be made from the same
// state, index, term and peers, and then started with the same peers,
// without Join. On start, New finds the WAL (HasState), Start hands the
// data file to the application as the first commit, and raft restarts with
// a log that ends, committed, at cfg.Index, so the members elect a leader
// among themselves and go on from there.
//
// The files are written durably in the order a restart needs them (the
// data file, the .snap file, then the WAL), so a data dir that a crash
// left without its WAL is not taken for a member's. Bootstrap does not
// remove what it wrote when it fails; its caller discards the directory.
func Bootstrap(cfg BootstrapConfig, write func(io.Writer) error) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	lg := cfg.Logger
	if lg == nil {
		lg = zap.NewNop()
	}
	if err := requireEmptyDir(cfg.DataDir); err != nil {
		return err
	}
	sd := snapDir(cfg.DataDir)
	if err := os.MkdirAll(sd, 0o700); err != nil {
		return fmt.Errorf("raftnode: create snapshot dir: %w", err)
	}
	if _, err := writeDataFile(sd, cfg.Index, -1, nil, write); err != nil {
		return fmt.Errorf("raftnode: write snapshot data file: %w", err)
	}
	m := newMembership()
	m.ClusterLevel = cfg.Level
	cs := &raftpb.ConfState{}
	for i, u := range cfg.Peers {
		id := uint64(i + 1)
		// Every member is made with the backup's index as the one
		// that set the URLs: its own --cluster's, which may name a
		// proxy per link, stay when a leader's snapshot names the same
		// members at that index with the leader's own.
		m.Members[id] = Member{ID: id, PeerURL: u, URLIndex: cfg.Index}
		cs.Voters = append(cs.Voters, id)
	}
	env, err := encodeEnvelope(m)
	if err != nil {
		return err
	}
	md := &raftpb.SnapshotMetadata{Index: proto.Uint64(cfg.Index), Term: proto.Uint64(cfg.Term), ConfState: cs}
	if err := snap.New(snapshotterLogger(lg), sd).SaveSnap(&raftpb.Snapshot{Data: env, Metadata: md}); err != nil {
		return fmt.Errorf("raftnode: save snapshot file: %w", err)
	}
	id := cfg.ClusterID
	if id == 0 {
		id = DefaultClusterID
	}
	w, err := wal.Create(lg, walDir(cfg.DataDir), encodeWALMetadata(id, cfg.ID, 0))
	if err != nil {
		return fmt.Errorf("raftnode: create wal: %w", err)
	}
	err = w.SaveSnapshot(&walpb.Snapshot{Index: proto.Uint64(cfg.Index), Term: proto.Uint64(cfg.Term), ConfState: cs})
	if err == nil {
		// Term changed from none, so Save syncs.
		err = w.Save(&raftpb.HardState{Term: proto.Uint64(cfg.Term), Commit: proto.Uint64(cfg.Index)}, nil)
	}
	if cerr := w.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("raftnode: write wal: %w", err)
	}
	return nil
}

// requireEmptyDir succeeds when dir does not exist or is an empty
// directory.
func requireEmptyDir(dir string) error {
	ents, err := os.ReadDir(dir)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return nil
	case err != nil:
		return fmt.Errorf("raftnode: data dir %s: %w", dir, err)
	case len(ents) > 0:
		return fmt.Errorf("raftnode: data dir %s is not empty", dir)
	}
	return fileutil.IsDirWriteable(dir)
}
