package daemon

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/raftkv/raftkv/backup"
	"github.com/raftkv/raftkv/httpapi"
	"github.com/raftkv/raftkv/kvstore"
	"github.com/raftkv/raftkv/raftnode"
)

// snapshotter takes the backups of GET /snapshot: raftnode captures the
// store's state at one applied index, through the store's Snapshot (the
// copy-on-write clone its snapshots use), and package backup frames it.
type snapshotter struct {
	node *raftnode.Node
	kv   *kvstore.Store
	// head describes this member: its ids and mode; the capture adds the
	// index, term and time.
	head backup.Header
}

// snapshotterFor is GET /snapshot's Snapshotter for m, a member of
// buckets buckets, when Config.SnapshotDownload enables it; else nil.
func (m *Member) snapshotterFor(buckets int) httpapi.Snapshotter {
	if !m.cfg.SnapshotDownload {
		return nil
	}
	return snapshotter{node: m.node, kv: m.kv, head: backup.Header{
		ClusterID: m.node.ClusterID(),
		MemberID:  m.cfg.ID,
		Mode:      backupMode(m.cfg.mode()),
		Group:     m.cfg.Group,
		Buckets:   buckets,
	}}
}

// backupMode is a member mode as a backup header says it.
func backupMode(mode string) backup.Mode {
	switch mode {
	case modeShard:
		return backup.ModeShard
	case modeConfig:
		return backup.ModeConfig
	}
	return backup.ModePlain
}

// Snapshot waits, as a read of opts' level does, until this member's
// applied state holds what the backup must (a linearizable one: every
// write acknowledged before the call, through ReadIndex), then captures
// it. The state captured is at least that recent and exactly that of the
// index it reports.
func (s snapshotter) Snapshot(ctx context.Context, opts httpapi.ReadOptions) (httpapi.SnapshotInfo, func(io.Writer) error, error) {
	if opts.MinIndex > 0 {
		if err := s.kv.WaitApplied(ctx, opts.MinIndex); err != nil {
			return httpapi.SnapshotInfo{}, nil, err
		}
	}
	if !opts.Stale {
		index, err := s.node.ReadIndex(ctx)
		if err != nil {
			return httpapi.SnapshotInfo{}, nil, err
		}
		if err := s.kv.WaitApplied(ctx, index); err != nil {
			return httpapi.SnapshotInfo{}, nil, err
		}
	}
	c, err := s.node.CaptureState(ctx)
	if err != nil {
		return httpapi.SnapshotInfo{}, nil, err
	}
	h := s.head
	h.Index, h.Term, h.Created = c.Index, c.Term, time.Now()
	write := func(w io.Writer) error {
		bw, err := backup.NewWriter(w, h)
		if err != nil {
			return err
		}
		if err := c.Write(bw); err != nil {
			return fmt.Errorf("daemon: writing the state at index %d: %w", h.Index, err)
		}
		return bw.Close()
	}
	return httpapi.SnapshotInfo{Index: c.Index, Term: c.Term}, write, nil
}
