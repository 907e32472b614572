package raftnode

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"go.etcd.io/etcd/client/pkg/v3/fileutil"
	"go.etcd.io/etcd/server/v3/etcdserver/api/snap"
	"go.etcd.io/etcd/server/v3/storage/wal"
	"go.etcd.io/etcd/server/v3/storage/wal/walpb"
	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
	"go.uber.org/zap"
	"google.golang.org/protobuf/proto"
)

// diskState is what a node reads back from its data dir at start.
type diskState struct {
	wal         *wal.WAL
	snapshotter *snap.Snapshotter
	storage     *raft.MemoryStorage
	snapshot    *raftpb.Snapshot // nil when there is none
	hasWAL      bool             // a WAL existed before this start
	// clusterID is the cluster's id, from the WAL's metadata.
	clusterID uint64
	// startLevel is the cluster level this member started a new cluster
	// at, from the WAL's metadata (0: it joined, or is older).
	startLevel uint32
}

// OtherMemberError: the data dir's WAL names member Owner, and member ID
// is starting on it.
type OtherMemberError struct{ Owner, ID uint64 }

func (e *OtherMemberError) Error() string {
	return fmt.Sprintf("raftnode: the data dir holds member %d's state, not member %d's", e.Owner, e.ID)
}

func walDir(dataDir string) string  { return filepath.Join(dataDir, "wal") }
func snapDir(dataDir string) string { return filepath.Join(dataDir, "snap") }

// HasState reports whether dataDir already holds a WAL, that is whether a
// member started there before.
func HasState(dataDir string) bool { return wal.Exist(walDir(dataDir)) }

// openDisk opens (or creates, with cluster id newID and member id member
// in its metadata) the WAL and snapshot directories, loads the newest
// snapshot the WAL knows of, and replays the WAL after it into a
// MemoryStorage. A WAL whose tail was torn by a crash is repaired once.
// A WAL that names another member is refused.
func openDisk(lg *zap.Logger, dataDir string, newID, member uint64, startLevel uint32) (*diskState, error) {
	if err := os.MkdirAll(snapDir(dataDir), 0o700); err != nil {
		return nil, fmt.Errorf("raftnode: create snapshot dir: %w", err)
	}
	ds := &diskState{snapshotter: snap.New(snapshotterLogger(lg), snapDir(dataDir)), hasWAL: wal.Exist(walDir(dataDir))}
	if !ds.hasWAL {
		w, err := wal.Create(lg, walDir(dataDir), encodeWALMetadata(newID, member, startLevel))
		if err != nil {
			return nil, fmt.Errorf("raftnode: create wal: %w", err)
		}
		if err := w.Close(); err != nil {
			return nil, fmt.Errorf("raftnode: close new wal: %w", err)
		}
	}

	walSnaps, err := wal.ValidSnapshotEntries(lg, walDir(dataDir))
	if err != nil {
		return nil, fmt.Errorf("raftnode: read wal snapshot entries: %w", err)
	}
	ds.snapshot, err = ds.snapshotter.LoadNewestAvailable(walSnaps)
	if err != nil && !errors.Is(err, snap.ErrNoSnapshot) {
		return nil, fmt.Errorf("raftnode: load snapshot: %w", err)
	}
	walsnap := &walpb.Snapshot{}
	if ds.snapshot != nil {
		md := ds.snapshot.GetMetadata()
		walsnap = &walpb.Snapshot{Index: proto.Uint64(md.GetIndex()), Term: proto.Uint64(md.GetTerm()), ConfState: md.GetConfState()}
	}

	var (
		st   *raftpb.HardState
		ents []*raftpb.Entry
	)
	for repaired := false; ; repaired = true {
		ds.wal, err = openWAL(lg, dataDir, walsnap, !ds.hasWAL)
		if err != nil {
			return nil, fmt.Errorf("raftnode: open wal: %w", err)
		}
		var md []byte
		md, st, ents, err = ds.wal.ReadAll()
		if err == nil {
			var owner uint64
			if ds.clusterID, owner, ds.startLevel, err = decodeWALMetadata(md); err != nil {
				ds.wal.Close()
				return nil, err
			}
			if owner != 0 && owner != member {
				ds.wal.Close()
				return nil, &OtherMemberError{Owner: owner, ID: member}
			}
			break
		}
		ds.wal.Close()
		if repaired || !errors.Is(err, io.ErrUnexpectedEOF) {
			return nil, fmt.Errorf("raftnode: read wal: %w", err)
		}
		lg.Warn("repairing torn wal tail", zap.Error(err))
		if !wal.Repair(lg, walDir(dataDir)) {
			return nil, fmt.Errorf("raftnode: wal repair failed: %w", err)
		}
	}

	ds.storage = raft.NewMemoryStorage()
	if ds.snapshot != nil {
		if err := ds.storage.ApplySnapshot(ds.snapshot); err != nil {
			ds.wal.Close()
			return nil, fmt.Errorf("raftnode: apply snapshot to storage: %w", err)
		}
	}
	if st != nil {
		if err := ds.storage.SetHardState(st); err != nil {
			ds.wal.Close()
			return nil, fmt.Errorf("raftnode: set hard state: %w", err)
		}
	}
	if err := ds.storage.Append(ents); err != nil {
		ds.wal.Close()
		return nil, fmt.Errorf("raftnode: append wal entries: %w", err)
	}
	if ds.hasWAL && ds.snapshot == nil && len(ents) == 0 && (st == nil || raft.IsEmptyHardState(st)) {
		// The WAL was created by a first start that stopped before raft's
		// first Ready was saved (its transport or application failed to
		// start, or the process died): this member never voted, acked or
		// applied anything. Restarting raft from it would leave the
		// member with no voters, never to elect; it bootstraps anew.
		lg.Warn("the wal holds no state, from a first start that did not finish: starting as a new member")
		ds.hasWAL = false
		if ds.startLevel != startLevel {
			// Its metadata's start level is that first start's, which
			// a later restart would take (restartLevel): this start's
			// goes in instead, by the same cluster id.
			if err := recreateWAL(lg, dataDir, ds, member, startLevel); err != nil {
				return nil, err
			}
		}
	}
	// Only now that this member holds the WAL's lock: a second process
	// started on a data dir in use must not touch a receive under way.
	removePartialSnapshots(lg, snapDir(dataDir))
	lg.Info("replayed wal",
		zap.String("cluster-id", strconv.FormatUint(ds.clusterID, 16)),
		zap.Uint64("snapshot-index", ds.snapshot.GetMetadata().GetIndex()),
		zap.Uint64("commit-index", st.GetCommit()),
		zap.Int("entries", len(ents)))
	return ds, nil
}

// removePartialSnapshots removes what a snapshot being received when the
// member died left in dir: rafthttp writes the incoming state to a file
// named tmp* (etcd's Snapshotter.SaveDBFrom) before renaming it, and
// nothing else removes one left behind, up to the whole state's size at
// each such death. No receive runs yet at start; the caller holds the
// WAL's lock, so no other process on this data dir runs one either.
func removePartialSnapshots(lg *zap.Logger, dir string) {
	left, _ := filepath.Glob(filepath.Join(dir, "tmp*"))
	for _, f := range left {
		if err := os.Remove(f); err != nil {
			lg.Warn("cannot remove a partly received snapshot", zap.String("path", f), zap.Error(err))
			continue
		}
		lg.Info("removed a partly received snapshot", zap.String("path", f))
	}
}

// recreateWAL replaces ds's WAL, which holds no state, with an empty one
// whose metadata names ds's cluster id, member and startLevel, ready to
// write (as etcd's server uses a WAL it creates).
//
// The old WAL is closed first. An open WAL's file pipeline creates its
// next segment (wal/0.tmp) in the background at any moment: removing the
// directory under it could fail ("directory not empty"), and its close
// afterwards removes that file by name, which could then be the new
// WAL's next segment. Between the close and the create the data dir is
// unlocked; another process started on it in that moment makes one of
// the two creates fail, as two first starts on one data dir do.
func recreateWAL(lg *zap.Logger, dataDir string, ds *diskState, member uint64, startLevel uint32) error {
	ds.wal.Close()
	ds.wal = nil
	if err := os.RemoveAll(walDir(dataDir)); err != nil {
		return fmt.Errorf("raftnode: remove the wal of an unfinished start: %w", err)
	}
	w, err := wal.Create(lg, walDir(dataDir), encodeWALMetadata(ds.clusterID, member, startLevel))
	if err != nil {
		return fmt.Errorf("raftnode: create wal: %w", err)
	}
	ds.wal, ds.startLevel = w, startLevel
	return nil
}

// openWAL opens the WAL at walsnap. created says this start just created
// it and closed it again: its segment's lock is an open file description
// lock, which a child that another goroutine of this process forked
// meanwhile shares until it execs, so the lock may outlive the close for
// a moment (seen in tests that run members in process beside others
// that start processes). Then the open is tried again, for up to a
// second, rather than fail as if another process held the data dir.
func openWAL(lg *zap.Logger, dataDir string, walsnap *walpb.Snapshot, created bool) (*wal.WAL, error) {
	deadline := time.Now().Add(time.Second)
	for {
		w, err := wal.Open(lg, walDir(dataDir), walsnap)
		if err == nil || !created || !errors.Is(err, fileutil.ErrLocked) || time.Now().After(deadline) {
			return w, err
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// saveSnapshot makes the snapshot s durable, its data file being durable
// already: the .snap file first, then its WAL record (which syncs the WAL),
// so that a restart never finds a WAL record without its file. It releases
// nothing; see releaseTo.
func (n *Node) saveSnapshot(s *raftpb.Snapshot) error {
	if err := n.disk.snapshotter.SaveSnap(s); err != nil {
		return fmt.Errorf("raftnode: save snapshot file: %w", err)
	}
	if err := n.fail(fpSnapFileSaved); err != nil {
		return err
	}
	md := s.GetMetadata()
	if err := n.disk.wal.SaveSnapshot(&walpb.Snapshot{Index: proto.Uint64(md.GetIndex()), Term: proto.Uint64(md.GetTerm()), ConfState: md.GetConfState()}); err != nil {
		return fmt.Errorf("raftnode: save wal snapshot record: %w", err)
	}
	return n.fail(fpSnapRecordSaved)
}

// releaseTo lets the purgers remove the WAL segments wholly before the
// snapshot at index (etcd's fileutil.PurgeFile takes only unlocked ones)
// and the data files behind it (prune). The caller makes sure that the
// snapshot, and a HardState that commits it, are durable: a restart
// starts from the newest snapshot the WAL's last HardState commits.
func (n *Node) releaseTo(index uint64) error {
	if err := n.disk.wal.ReleaseLockTo(index); err != nil {
		return fmt.Errorf("raftnode: release wal: %w", err)
	}
	n.released = index
	n.requestPrune(index)
	return n.fail(fpSnapReleased)
}
