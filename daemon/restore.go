package daemon

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/raftkv/raftkv/backup"
	"github.com/raftkv/raftkv/httpapi"
	"github.com/raftkv/raftkv/internal/buildinfo"
	"github.com/raftkv/raftkv/kvstore"
	"github.com/raftkv/raftkv/peerurl"
	"github.com/raftkv/raftkv/raftnode"
	"github.com/raftkv/raftkv/shardgroup"
	"github.com/raftkv/raftkv/shardmap"
	"go.etcd.io/etcd/client/pkg/v3/fileutil"
	"go.uber.org/zap"
)

// RestoreConfig describes a restore: a backup file (GET /snapshot) and
// the member of a new cluster whose data dir it makes.
type RestoreConfig struct {
	// Backup is the path of the backup file.
	Backup string
	// ID is the member's raft id in the new cluster, 1-based: it will
	// listen for peers on Peers[ID-1].
	ID uint64
	// Peers are the peer URLs of the new cluster, in id order, as the
	// members' Config.Peers (raftexample's --cluster). Every member is a
	// voter.
	Peers []string
	// DataDir is the data dir to make, an absolute path. It must not
	// exist, or be an empty directory.
	DataDir string
	// Logger receives the WAL's logs. Nil means zap.NewNop().
	Logger *zap.Logger
}

// Validate reports the first problem with c, without touching the disk.
func (c RestoreConfig) Validate() error {
	switch {
	case c.Backup == "":
		return errors.New("daemon: the backup file is required")
	case len(c.Peers) == 0:
		return errors.New("daemon: the peer list is empty")
	case c.ID == 0 || c.ID > uint64(len(c.Peers)):
		return fmt.Errorf("daemon: id %d is outside the peer list of %d URLs", c.ID, len(c.Peers))
	case c.DataDir == "":
		return errors.New("daemon: data dir is required")
	case !filepath.IsAbs(c.DataDir):
		return fmt.Errorf("daemon: data dir %q must be an absolute path", c.DataDir)
	}
	seen := make(map[string]bool, len(c.Peers))
	for i, p := range c.Peers {
		if err := peerurl.Validate(p); err != nil {
			return fmt.Errorf("daemon: peer %d: %w", i+1, err)
		}
		if seen[p] {
			return fmt.Errorf("daemon: peer URL %s is listed twice", p)
		}
		seen[p] = true
	}
	return nil
}

// Restore makes the data dir of member ID of a new cluster from a backup,
// as etcdutl snapshot restore does, and returns the backup's header. The
// members of the new cluster are Peers, ids 1 to n, all voters; each is
// restored from the same file, then started with Config{ID, Peers,
// DataDir} and without Join, in the mode the backup was taken in (a
// shard member with its Group and ConfigEndpoints, a config group member
// with ConfigGroup), and they elect a leader among themselves and serve
// the backup's state.
//
// The data dir is made whole or not at all: it is built in a temporary
// directory beside it, from the backup as it is read, and renamed into
// place only once the backup's checksum matched and this binary's store
// decoded the whole state (kvstore.CheckSnapshot), finding it of the kind
// the header says. So a state the members could not load is refused
// here, with one line, rather than by each of them at its start; the
// check holds the decoded state in memory, as a member does. So a damaged or
// truncated backup, a full disk or a crash leaves no data dir behind
// that a member could start from. A data dir that holds anything is
// refused, as is a backup of a plain member of more than one bucket,
// which no plain member of this version could load.
func Restore(cfg RestoreConfig) (backup.Header, error) {
	if err := cfg.Validate(); err != nil {
		return backup.Header{}, err
	}
	lg := cfg.Logger
	if lg == nil {
		lg = zap.NewNop()
	}
	if err := requireNoDataDir(cfg.DataDir); err != nil {
		return backup.Header{}, err
	}
	f, err := os.Open(cfg.Backup)
	if err != nil {
		return backup.Header{}, fmt.Errorf("backup %s: %w", cfg.Backup, unwrapPathError(err))
	}
	defer f.Close()
	rd, err := backup.NewReader(f)
	if err != nil {
		return backup.Header{}, fmt.Errorf("backup %s: %w", cfg.Backup, err)
	}
	h := rd.Header()
	if h.Mode == backup.ModePlain && h.Buckets != 1 {
		return h, fmt.Errorf("backup %s is of %s; a plain member of this version has one bucket", cfg.Backup, h.Describe())
	}
	parent := filepath.Dir(cfg.DataDir)
	if err := os.MkdirAll(parent, 0o700); err != nil {
		return h, fmt.Errorf("data dir %s: %w", cfg.DataDir, unwrapPathError(err))
	}
	tmp, err := os.MkdirTemp(parent, "."+filepath.Base(cfg.DataDir)+".restore-")
	if err != nil {
		return h, fmt.Errorf("data dir %s: %w", cfg.DataDir, unwrapPathError(err))
	}
	keep := false
	defer func() {
		if !keep {
			os.RemoveAll(tmp)
		}
	}()
	src := &recordingReader{r: rd}
	var stateErr error
	// The new cluster has an id of its own, which every member made from
	// this backup with these peers shares: a member of the cluster the
	// backup came from cannot talk to it (see raftnode/clusterid.go).
	id := RestoredClusterID(h, cfg.Peers)
	err = raftnode.Bootstrap(raftnode.BootstrapConfig{DataDir: tmp, Peers: cfg.Peers, Index: h.Index, Term: h.Term, Level: buildinfo.Level(), ClusterID: id, ID: cfg.ID, Logger: lg},
		func(w io.Writer) error {
			stateErr = copyCheckedState(w, src, h)
			return stateErr
		})
	switch {
	case src.err != nil:
		return h, fmt.Errorf("backup %s: %w", cfg.Backup, src.err)
	case errors.Is(stateErr, errBadState):
		return h, fmt.Errorf("backup %s: %w", cfg.Backup, stateErr)
	case err != nil:
		return h, fmt.Errorf("data dir %s: %w", cfg.DataDir, err)
	}
	if h.Mode != backup.ModePlain {
		m := dirMode{Mode: modeConfig, Buckets: h.Buckets, Restored: true}
		if h.Mode == backup.ModeShard {
			m = dirMode{Mode: modeShard, Group: h.Group, Buckets: h.Buckets, Restored: true}
		}
		if err := writeMode(tmp, m); err != nil {
			return h, err
		}
	}
	if err := syncDir(tmp); err != nil {
		return h, fmt.Errorf("data dir %s: %w", cfg.DataDir, err)
	}
	// An empty data dir gives way to the one made; rename cannot replace
	// a directory.
	if err := os.Remove(cfg.DataDir); err != nil && !errors.Is(err, os.ErrNotExist) {
		return h, fmt.Errorf("data dir %s: %w", cfg.DataDir, unwrapPathError(err))
	}
	if err := os.Rename(tmp, cfg.DataDir); err != nil {
		return h, fmt.Errorf("data dir %s: %w", cfg.DataDir, unwrapPathError(err))
	}
	keep = true
	if err := syncDir(parent); err != nil {
		return h, fmt.Errorf("data dir %s: %w", cfg.DataDir, err)
	}
	return h, nil
}

// RestoredClusterID is the cluster id of the members Restore makes from a
// backup with header h for peers.
func RestoredClusterID(h backup.Header, peers []string) uint64 {
	return raftnode.RestoredClusterID(h.Index, h.Term, h.Created.UnixNano(), peers)
}

// errBadState marks a backup whose state this binary's store cannot
// restore, or that is not of the kind its header says.
var errBadState = errors.New("the state it holds")

// copyCheckedState copies the backup's state from src to w and, as it
// goes, has the store decode it as a restoring member would
// (kvstore.CheckSnapshot): a state of a format this binary does not read,
// or of another kind than the header says, is refused here rather than
// by every member of the new cluster at its start. It succeeds only once
// src ended at the backup's io.EOF (its trailer matched) and the store
// read the whole state. Whatever the store says, it reads src to its
// end, so that a damaged file is reported as such (src records it).
func copyCheckedState(w io.Writer, src io.Reader, h backup.Header) error {
	pr, pw := io.Pipe()
	type checked struct {
		kind kvstore.SnapshotKind
		err  error
	}
	done := make(chan checked, 1)
	go func() {
		kind, err := kvstore.CheckSnapshot(pr, 0)
		pr.CloseWithError(errors.Join(errBadState, err)) // the copy stops writing to it
		done <- checked{kind, err}
	}()
	_, err := io.Copy(io.MultiWriter(w, pw), src)
	pw.CloseWithError(err) // nil: the reader sees io.EOF
	c := <-done
	if err != nil {
		// Not all of src was read: the store's error, a write error, or
		// src's own.
		io.Copy(io.Discard, src)
		if c.err != nil {
			return fmt.Errorf("%w: %w", errBadState, c.err)
		}
		return err
	}
	if c.err != nil {
		return fmt.Errorf("%w: %w", errBadState, c.err)
	}
	if c.kind.Mode != h.Mode.String() || c.kind.Group != h.Group || c.kind.Buckets != h.Buckets {
		return fmt.Errorf("%w is of a %s member of group %d with %d buckets, but the header says %s",
			errBadState, c.kind.Mode, c.kind.Group, c.kind.Buckets, h.Describe())
	}
	return nil
}

// recordingReader keeps the error of its reader other than io.EOF.
type recordingReader struct {
	r   io.Reader
	err error
}

func (r *recordingReader) Read(p []byte) (int, error) {
	n, err := r.r.Read(p)
	if err != nil && !errors.Is(err, io.EOF) {
		r.err = err
	}
	return n, err
}

// requireNoDataDir succeeds when dir does not exist or is an empty
// directory.
func requireNoDataDir(dir string) error {
	ents, err := os.ReadDir(dir)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return nil
	case err != nil:
		return fmt.Errorf("data dir %s: %w", dir, unwrapPathError(err))
	case raftnode.HasState(dir):
		return fmt.Errorf("data dir %s holds a member's state; a restore makes a new member and needs an empty or missing data dir", dir)
	case len(ents) > 0:
		return fmt.Errorf("data dir %s is not empty; a restore needs an empty or missing data dir", dir)
	}
	return nil
}

// unwrapPathError drops the *fs.PathError around err: the messages that
// use it name the path already.
func unwrapPathError(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// syncDir makes dir's entries durable.
func syncDir(dir string) error {
	d, err := fileutil.OpenDir(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return fileutil.Fsync(d)
}

// StartFlags is the command line that starts the member cfg restored from
// a backup with header h, for messages: `raftkv` and its flags.
func StartFlags(cfg RestoreConfig, h backup.Header) string {
	args := []string{"raftkv"}
	switch h.Mode {
	case backup.ModeConfig:
		args = append(args, "--config-group")
	case backup.ModeShard:
		args = append(args, fmt.Sprintf("--group %d --config-endpoints <config group URLs>", h.Group))
	}
	// The client port is not the backup's to know; members on one host
	// each need their own.
	args = append(args, fmt.Sprintf("--id %d --cluster %s --port <client port> --data-dir %s", cfg.ID, strings.Join(cfg.Peers, ","), cfg.DataDir))
	return strings.Join(args, " ")
}

// checkRestored is a restored shard member's first start: it asks the
// config group for the configs made since the backup's, and refuses to
// serve when one of them moved a bucket to or from the group
// (shardgroup.CheckRestored); once the check passes it clears the data
// dir's mark, so later starts skip it. Other members pass at once.
//
// The backup's config is this member's own state once its snapshot is
// loaded. When that fails the check, the group's state as of a read
// through its leader gets a second one: other members of the restored
// group may have passed it and served since (this one started later, or
// crashed before it cleared its mark), and the group then took configs
// after the backup's. A restore that fails both stays refused; one that
// passes the first needs no quorum of its own group, so its members may
// start one by one. The other groups it asks answer through their
// leaders (GET /shard/state), so of restored groups that need each
// other's answers, a majority of each must run within the check's time.
func (m *Member) checkRestored(ctx context.Context) error {
	qctx, cancel := context.WithTimeout(ctx, m.cfg.JoinTimeout)
	defer cancel()
	dm, restored, err := m.restoredState(qctx, modeShard)
	if err != nil || !restored {
		return err
	}
	if err := m.checkShardAgainstDeployment(qctx); err != nil {
		return &restoreCheckError{err}
	}
	dm.Restored = false
	return writeMode(m.cfg.DataDir, dm)
}

// checkShardAgainstDeployment is checkRestored's check, of the backup's
// state and then, if need be, of the group's.
func (m *Member) checkShardAgainstDeployment(qctx context.Context) error {
	st := shardStore{m.kv}.ShardState()
	latest, err := m.checkAgainstConfigs(qctx, st)
	if err != nil {
		var refused *restoreRefusal
		if !errors.As(err, &refused) {
			return err
		}
		group, rerr := m.groupState(qctx)
		if rerr != nil {
			return fmt.Errorf("%w (nor could the group's own state be read through a leader: %v)", err, rerr)
		}
		if group.Config.Version == st.Config.Version {
			return err // the group is where the backup left it
		}
		if latest, err = m.checkAgainstConfigs(qctx, group); err != nil {
			return err
		}
		st = group
	}
	m.lg.Info("restored from a backup: no other group carried out a move of a bucket to or from this one since",
		zap.Uint64("group-config-version", st.Config.Version), zap.Uint64("latest-config-version", latest.Version))
	return nil
}

// restoredState reports whether m is a member of mode whose data dir is
// marked as restored (Restore) and not yet checked, and then waits,
// within ctx, for the store to load the backup's state: it does so from
// the snapshot a moment after the node starts.
func (m *Member) restoredState(ctx context.Context, mode string) (dirMode, bool, error) {
	if m.cfg.mode() != mode {
		return dirMode{}, false, nil
	}
	dm, ok, err := readMode(m.cfg.DataDir)
	if err != nil || !ok || !dm.Restored {
		return dm, false, err
	}
	if m.cfg.UnsafeSkipRestoreCheck {
		m.lg.Warn("restored from a backup: not checked against the deployment, as asked (unsafe skip of the restore check): "+
			"if another group carried out a move of a bucket to or from this group, or took configs the backup lacks, since the backup, "+
			"this member serves state that the deployment has moved past", zap.String("data-dir", m.cfg.DataDir), zap.String("mode", mode))
		dm.Restored = false
		return dm, false, writeMode(m.cfg.DataDir, dm)
	}
	if err := m.kv.WaitApplied(ctx, m.node.Status().SnapshotIndex); err != nil {
		return dm, false, fmt.Errorf("data dir %s: loading the restored state: %w", m.cfg.DataDir, err)
	}
	return dm, true, nil
}

// checkConfigRestored is a restored config group member's first start,
// before it serves: it asks every group its configs list where it is,
// all at once (shardgroup.CheckConfigRestored), and refuses to serve when
// one took configs the backup lacks; once the check passes it clears the
// data dir's mark. Groups that cannot say (down, without a leader,
// unreachable) are passed over; the check fails if its time (JoinTimeout)
// runs out first. When the backup's configs fail, the group's own, as of
// a read through its leader, get a second check: other members of the
// restored group may have passed and made configs since. Other members
// pass at once.
func (m *Member) checkConfigRestored(ctx context.Context) error {
	qctx, cancel := context.WithTimeout(ctx, m.cfg.JoinTimeout)
	defer cancel()
	dm, restored, err := m.restoredState(qctx, modeConfig)
	if err != nil || !restored {
		return err
	}
	h := m.kv.ConfigHistory()
	answers := map[uint64]groupAnswer{}
	unanswered, err := m.checkConfigHistory(qctx, h, answers)
	if err != nil {
		// Other members of the restored group may have passed and made
		// configs since (this one started later, or crashed before it
		// cleared its mark): the group's history as of a read through
		// its leader gets a second check.
		group, rerr := throughLeader(qctx, m, func(ctx context.Context) (shardmap.History, error) {
			_, err := m.kv.QueryConfig(ctx, -1, kvstore.ReadOptions{})
			return m.kv.ConfigHistory(), err
		})
		switch {
		case rerr != nil:
			err = fmt.Errorf("%w (nor could the group's own configs be read through a leader: %v)", err, rerr)
		case group.Latest().Version > h.Latest().Version:
			h = group
			unanswered, err = m.checkConfigHistory(qctx, h, answers) // asks only the groups not heard from
		}
	}
	if err != nil {
		return &restoreCheckError{fmt.Errorf("data dir %s, restored from a backup of the config group, must not serve: %w", m.cfg.DataDir, err)}
	}
	m.lg.Info("restored from a backup: no group that answered took configs the backup lacks",
		zap.Uint64("latest-config-version", h.Latest().Version), zap.Uint64s("unanswered-groups", unanswered))
	dm.Restored = false
	return writeMode(m.cfg.DataDir, dm)
}

// groupAnswer is a group's answer to checkConfigHistory's question.
type groupAnswer struct {
	st  shardgroup.GroupState
	err error
}

// checkConfigHistory asks every group h lists where it is, all at once
// (skipping those that answered already in answers, and adding the new
// answers to it), and checks h against the answers
// (shardgroup.CheckConfigRestored). It fails when ctx ended before every
// group answered or failed to.
func (m *Member) checkConfigHistory(ctx context.Context, h shardmap.History, answers map[uint64]groupAnswer) ([]uint64, error) {
	var ask []uint64
	for _, gid := range shardgroup.GroupsIn(h) {
		if a, ok := answers[gid]; !ok || a.err != nil {
			ask = append(ask, gid)
		}
	}
	got := make([]groupAnswer, len(ask))
	var wg sync.WaitGroup
	for i, gid := range ask {
		wg.Add(1)
		go func() {
			defer wg.Done()
			st, err := shardgroup.AskGroupState(ctx, startupClient(m.httpc), gid, shardgroup.ServersIn(h, gid), m.cfg.RequestTimeout, false)
			got[i] = groupAnswer{st, err}
		}()
	}
	wg.Wait()
	var silent []uint64
	for i, gid := range ask {
		answers[gid] = got[i]
		if got[i].err != nil {
			silent = append(silent, gid)
		}
	}
	if ctx.Err() != nil {
		return nil, fmt.Errorf("could not hear from every group its configs list within %v (none from groups %v)", m.cfg.JoinTimeout, silent)
	}
	return shardgroup.CheckConfigRestored(h, func(gid uint64) (shardgroup.GroupState, error) {
		return answers[gid].st, answers[gid].err
	})
}

// throughLeader reads what read returns while m's group has a leader,
// retrying until ctx ends; read is to go through the leader (a
// linearizable read). It gives up once the group has had no leader for
// groupLeaderWait: other members of a restored group that start one by
// one are not up yet, or those that were have stopped.
func throughLeader[T any](ctx context.Context, m *Member, read func(context.Context) (T, error)) (T, error) {
	var (
		zero          T
		noLeaderSince time.Time
		err           = errors.New("the group had no leader")
	)
	for {
		if m.node.Leader() == 0 {
			if noLeaderSince.IsZero() {
				noLeaderSince = time.Now()
			}
			if time.Since(noLeaderSince) >= groupLeaderWait {
				return zero, fmt.Errorf("the group had no leader for %v", groupLeaderWait)
			}
		} else {
			noLeaderSince = time.Time{}
			var v T
			if v, err = read(ctx); err == nil {
				return v, nil
			}
		}
		select {
		case <-ctx.Done():
			return zero, err
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// groupLeaderWait bounds how long checkRestored waits for its group's
// leader when the backup's own config failed the check.
const groupLeaderWait = 5 * time.Second

// ErrRestoreCheck is what Start's error wraps when a member whose data
// dir Restore made failed its first start's check against the
// deployment: it found that a group moved on since the backup, or could
// not find out in time. The data dir stays marked, so the next start
// checks again; Config.UnsafeSkipRestoreCheck starts it unchecked.
var ErrRestoreCheck = errors.New("restore check failed")

// restoreCheckError marks err as a failed restore check (ErrRestoreCheck).
type restoreCheckError struct{ err error }

func (e *restoreCheckError) Error() string        { return e.err.Error() }
func (e *restoreCheckError) Unwrap() error        { return e.err }
func (e *restoreCheckError) Is(target error) bool { return target == ErrRestoreCheck }

// restoreRefusal is checkRestored's verdict that the group's state must
// not serve, as opposed to a failure to check.
type restoreRefusal struct{ err error }

func (e *restoreRefusal) Error() string { return e.err.Error() }

// checkAgainstConfigs reads the configs made after st's from the config
// group and checks st against them and the other groups' states
// (shardgroup.CheckRestored); it returns the config group's latest.
func (m *Member) checkAgainstConfigs(ctx context.Context, st shardgroup.ShardState) (shardmap.Config, error) {
	at := st.Config
	latest, after, err := shardgroup.ConfigsAfter(ctx, startupClient(m.httpc), m.cfg.ConfigEndpoints, at.Version, m.cfg.RequestTimeout)
	if err != nil {
		return shardmap.Config{}, fmt.Errorf("data dir %s was restored from a backup, and its first start checks the configs made since with the config group: %w", m.cfg.DataDir, err)
	}
	// Another group's members, as the newest config that lists it says.
	servers := func(k uint64) []string {
		if s, ok := latest.Groups[k]; ok {
			return s
		}
		for i := len(after) - 1; i >= 0; i-- {
			if s, ok := after[i].Groups[k]; ok {
				return s
			}
		}
		if s, ok := at.Groups[k]; ok {
			return s
		}
		return st.Prev.Groups[k]
	}
	state := func(k uint64, needed bool) (shardgroup.GroupState, error) {
		return shardgroup.AskGroupState(ctx, startupClient(m.httpc), k, servers(k), m.cfg.RequestTimeout, needed)
	}
	if err := shardgroup.CheckRestored(m.cfg.Group, st, latest, after, state); err != nil {
		return shardmap.Config{}, &restoreRefusal{fmt.Errorf("data dir %s, restored from a backup of shard group %d, must not serve: %w", m.cfg.DataDir, m.cfg.Group, err)}
	}
	return latest, nil
}

// groupState is the group's shard state as of a read through its leader. A
// group with no leader within a few seconds is not waited for: the other
// members of a restored group that start one by one are not up yet.
func (m *Member) groupState(ctx context.Context) (shardgroup.ShardState, error) {
	return throughLeader(ctx, m, func(ctx context.Context) (shardgroup.ShardState, error) {
		st, err := m.kv.LinearizableShardState(ctx)
		return shardState(st), err
	})
}

// restoreGate is a restored shard member's key store while checkRestored
// runs: every key request is refused 503 until open is set.
type restoreGate struct {
	httpapi.Store
	open atomic.Bool
}

// errRestoreCheck refuses a key request while the restore is checked.
type errRestoreCheck struct{}

func (errRestoreCheck) Error() string {
	return "daemon: restored from a backup; checking the state against the deployment's"
}
func (errRestoreCheck) HumanMessage() string {
	return "this member was restored from a backup and checks its state against the other groups' before it serves keys; retry shortly"
}
func (errRestoreCheck) Unavailable() bool { return true }

func (g *restoreGate) check() error {
	if !g.open.Load() {
		return errRestoreCheck{}
	}
	return nil
}

func (g *restoreGate) GetKV(ctx context.Context, key string, opts httpapi.ReadOptions) (httpapi.KeyValue, uint64, error) {
	if err := g.check(); err != nil {
		return httpapi.KeyValue{}, 0, err
	}
	return g.Store.GetKV(ctx, key, opts)
}

func (g *restoreGate) Put(ctx context.Context, key string, value []byte) (httpapi.Written, error) {
	if err := g.check(); err != nil {
		return httpapi.Written{}, err
	}
	return g.Store.Put(ctx, key, value)
}

func (g *restoreGate) PutAll(ctx context.Context, kvs map[string][]byte) (uint64, error) {
	if err := g.check(); err != nil {
		return 0, err
	}
	return g.Store.PutAll(ctx, kvs)
}

func (g *restoreGate) Delete(ctx context.Context, key string) (uint64, error) {
	if err := g.check(); err != nil {
		return 0, err
	}
	return g.Store.Delete(ctx, key)
}

func (g *restoreGate) Write(ctx context.Context, ops []httpapi.Op, wo httpapi.WriteOptions) (httpapi.Written, error) {
	if err := g.check(); err != nil {
		return httpapi.Written{}, err
	}
	return g.Store.Write(ctx, ops, wo)
}

func (g *restoreGate) Txn(ctx context.Context, t httpapi.Txn, wo httpapi.WriteOptions) (httpapi.TxnResult, error) {
	if err := g.check(); err != nil {
		return httpapi.TxnResult{}, err
	}
	return g.Store.Txn(ctx, t, wo)
}

func (g *restoreGate) List(ctx context.Context, opts httpapi.ListOptions) (httpapi.ListResult, error) {
	if err := g.check(); err != nil {
		return httpapi.ListResult{}, err
	}
	return g.Store.List(ctx, opts)
}

func (g *restoreGate) DeleteRange(ctx context.Context, opts httpapi.DeleteRangeOptions) (httpapi.DeleteRangeResult, error) {
	if err := g.check(); err != nil {
		return httpapi.DeleteRangeResult{}, err
	}
	return g.Store.DeleteRange(ctx, opts)
}

func (g *restoreGate) Watch(ctx context.Context, opts httpapi.WatchOptions) (httpapi.Watcher, error) {
	if err := g.check(); err != nil {
		return nil, err
	}
	return g.Store.Watch(ctx, opts)
}
