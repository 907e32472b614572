package raftnode

import (
	"errors"
	"fmt"
	"math"
	"os"
	"time"

	"go.etcd.io/etcd/client/pkg/v3/fileutil"
	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
	"go.uber.org/zap"
)

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
	if err := n.restoredLevel(env.Membership.ClusterLevel); err != nil {
		return err
	}
	n.confState = md.GetConfState()
	n.appliedIndex, n.snapshotIndex = md.GetIndex(), md.GetIndex()
	n.snapIndex.Store(md.GetIndex())
	done := make(chan struct{})
	n.commitC <- &Commit{SnapshotPath: path, Index: md.GetIndex(), applyDone: done}
	n.lastApplyDone = done
	n.published.Store(md.GetIndex())
	return nil
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
	if err := n.fail(fpSnapDataWritten); err != nil {
		return err
	}
	s, err := n.disk.storage.CreateSnapshot(res.index, res.confState, res.envelope)
	if errors.Is(err, raft.ErrSnapOutOfDate) {
		return nil // a newer snapshot from the leader was applied meanwhile
	}
	if err != nil {
		return fmt.Errorf("raftnode: create snapshot: %w", err)
	}
	// The WAL record's sync also makes durable the HardState that
	// committed res.index, saved by an earlier Ready.
	if err := n.saveSnapshot(s); err != nil {
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
	// CreateSnapshot refused any index not past the storage's snapshot.
	n.snapshotIndex = res.index
	n.snapIndex.Store(res.index)
	n.met.snapshotsSaved.Inc()
	n.met.snapshotSeconds.Observe(since(res.started))
	return n.releaseTo(res.index)
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
