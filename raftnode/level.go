package raftnode

import (
	"context"
	"encoding/binary"
	"fmt"
	"math"

	"go.uber.org/zap"
)

// The cluster level is what etcd calls the cluster version: the feature
// level every member speaks, so that a member serves an operation only
// once no member would misapply its entries. Each binary speaks one level
// (Config.Level). The application's leader decides the cluster's from the
// levels the members report and proposes it (ProposeClusterLevel); every
// member applies it in log order, it only rises, and it lives in every
// snapshot's envelope. A member whose binary speaks less than the
// cluster's stops instead of applying entries it may not understand.
//
// A new cluster starts at its bootstrapping binary's level, so that its
// first requests are not refused while the leader asks around; its first
// leader then logs that level (see ClusterLevelLogged), so a member that
// restarts before any snapshot replays it.

// ClusterLevel is the cluster level this member last applied.
func (n *Node) ClusterLevel() uint32 {
	n.mu.RLock()
	defer n.mu.RUnlock()
	return n.mu.members.ClusterLevel
}

// Level is the feature level this binary speaks (Config.Level).
func (n *Node) Level() uint32 { return n.cfg.Level }

// ClusterLevelLogged reports whether an entry or a snapshot holds the
// cluster level; false while a new cluster's level is only the one it
// started at.
func (n *Node) ClusterLevelLogged() bool { return !n.levelUnlogged.Load() }

// ProposeClusterLevel proposes raising the cluster level to level. It
// returns once raft took the proposal, before it commits; a level at or
// below the applied one changes nothing when applied, so proposing it
// again only writes it into the log.
func (n *Node) ProposeClusterLevel(ctx context.Context, level uint32) error {
	data := binary.AppendUvarint([]byte{entryClusterLevel}, uint64(level))
	if err := n.node.Propose(ctx, data); err != nil {
		return n.proposeError(err)
	}
	return nil
}

// startLevel sets a new cluster's level to this binary's.
func (n *Node) startLevel() {
	n.mu.Lock()
	n.mu.members.ClusterLevel = n.cfg.Level
	n.mu.Unlock()
	n.levelUnlogged.Store(true)
}

// restartLevel gives a member that started a new cluster, as it
// restarts, the level it started the cluster at (its WAL's metadata keeps
// it), when no snapshot gave it that level or a higher one. The level
// only rises, so when every founder ran one binary the cluster is at it
// or above (founders of different levels each start at their own; see
// design.md). Without it the member would know level 0 until it
// replayed the level's entry, or for good when it restarted before the
// first leader logged one, and would write entries in the older formats
// meanwhile (see kvstore's awaitClusterLevel). It counts as unlogged
// until an entry or snapshot holds a level, so that as leader the member
// logs it. A start level above this binary's is not taken: the binary
// stops at the level's entry or snapshot, as before.
func (n *Node) restartLevel() {
	l := n.disk.startLevel
	if l == 0 || l > n.cfg.Level {
		return
	}
	n.mu.Lock()
	raised := l > n.mu.members.ClusterLevel
	if raised {
		n.mu.members.ClusterLevel = l
	}
	n.mu.Unlock()
	if raised {
		n.levelUnlogged.Store(true)
	}
}

// applyClusterLevel applies an entryClusterLevel's data.
func (n *Node) applyClusterLevel(index uint64, data []byte) error {
	v, w := binary.Uvarint(data)
	if w <= 0 || w != len(data) || v > math.MaxUint32 {
		n.lg.Warn("skipping undecodable cluster level", zap.Uint64("index", index))
		return nil
	}
	level := uint32(v)
	n.levelUnlogged.Store(false)
	n.mu.Lock()
	old := n.mu.members.ClusterLevel
	if level > old {
		n.mu.members.ClusterLevel = level
	}
	n.mu.Unlock()
	if level <= old {
		return nil
	}
	n.lg.Info("cluster level raised", zap.Uint32("from", old), zap.Uint32("to", level), zap.Uint32("binary-level", n.cfg.Level))
	return n.checkLevel(level)
}

// restoredLevel checks the cluster level of a snapshot's membership,
// which n.mu.members holds now; a level there is one a snapshot holds.
func (n *Node) restoredLevel(level uint32) error {
	if level > 0 {
		n.levelUnlogged.Store(false)
	}
	return n.checkLevel(level)
}

// checkLevel refuses a cluster level above this binary's.
func (n *Node) checkLevel(level uint32) error {
	if level <= n.cfg.Level {
		return nil
	}
	return &LevelError{Cluster: level, Binary: n.cfg.Level}
}

// LevelError stops a member whose binary speaks a lower level than the
// cluster: it might misapply the entries the others write.
type LevelError struct {
	Cluster, Binary uint32
}

func (e *LevelError) Error() string {
	return fmt.Sprintf("raftnode: the cluster is at level %d and this binary speaks only level %d: run a binary of level %d or newer on this data dir (a cluster level never goes down)",
		e.Cluster, e.Binary, e.Cluster)
}
