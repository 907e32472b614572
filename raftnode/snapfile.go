package raftnode

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"go.etcd.io/etcd/client/pkg/v3/fileutil"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// Snapshot data files. A raft snapshot at index I is two files in the snap
// dir: etcd's <term>-<I>.snap, a small record whose data is raftnode's
// envelope, and <I>.snap.db, the application's state as written by its
// SnapshotFunc. A snapshot from the leader arrives the same way: rafthttp
// saves the streamed body as <I>.snap.db before raft sees the message.
// Keeping the state out of the raft snapshot keeps it out of memory: raft's
// MemoryStorage holds only the envelope, and a snapshot is sent by
// streaming the file.

// SnapshotFunc captures the application's state as of the last commit it
// reported Applied. raftnode calls it on the Ready loop, so it must be
// quick (a copy-on-write clone, say); the function it returns writes that
// state and is called once, on another goroutine, while the application
// goes on applying.
type SnapshotFunc func() (write func(io.Writer) error, err error)

func dataFileName(index uint64) string { return fmt.Sprintf("%016x.snap.db", index) }

func (n *Node) dataFile(index uint64) string {
	return filepath.Join(snapDir(n.cfg.DataDir), dataFileName(index))
}

// writeDataFile writes a snapshot's data file durably: to a temporary
// file that etcd's snapshotter removes if a crash leaves it behind, then
// fsync, rename and fsync of the directory. It writes at most rate bytes a
// second (rate <= 0: as fast as it can) and gives up with ErrStopped once
// stopc is closed.
func writeDataFile(dir string, index uint64, rate int64, stopc <-chan struct{}, write func(io.Writer) error) (int64, error) {
	f, err := os.CreateTemp(dir, "db.tmp")
	if err != nil {
		return 0, err
	}
	defer os.Remove(f.Name()) // a no-op after the rename
	cw := &dataFileWriter{f: f, rate: rate, start: time.Now(), stopc: stopc}
	err = write(cw)
	if err == nil {
		err = fileutil.Fsync(f)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return 0, err
	}
	if err := os.Rename(f.Name(), filepath.Join(dir, dataFileName(index))); err != nil {
		return 0, err
	}
	d, err := fileutil.OpenDir(dir)
	if err != nil {
		return 0, err
	}
	defer d.Close()
	return cw.n, fileutil.Fsync(d)
}

// dataFileWriterSyncBytes is how much of a data file may be written
// before it is flushed to disk.
const dataFileWriterSyncBytes = 1 << 20

// dataFileWriter counts what it writes, flushes the file every
// dataFileWriterSyncBytes and paces itself to rate bytes a second. Left to
// the final fsync, hundreds of megabytes of dirty pages would be flushed at
// once, and on ext4 (data=ordered) the WAL's fdatasync waits for them:
// writes would stall for a second or more in every snapshot of a large
// state. Flushed in small pieces at a bounded rate, a snapshot leaves the
// disk to the WAL most of the time, on every member at once.
type dataFileWriter struct {
	f         *os.File
	n, synced int64
	rate      int64
	start     time.Time
	stopc     <-chan struct{}
}

func (c *dataFileWriter) Write(p []byte) (int, error) {
	n, err := c.f.Write(p)
	c.n += int64(n)
	if err == nil && c.n-c.synced >= dataFileWriterSyncBytes {
		err = flushRange(c.f, c.synced, c.n-c.synced)
		c.synced = c.n
		if err == nil {
			err = c.pace()
		}
	}
	return n, err
}

// pace sleeps until the bytes written so far are due at rate.
func (c *dataFileWriter) pace() error {
	if c.rate <= 0 {
		return nil
	}
	due := c.start.Add(time.Duration(float64(c.n) / float64(c.rate) * float64(time.Second)))
	wait := time.Until(due)
	if wait <= 0 {
		return nil
	}
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-c.stopc:
		return ErrStopped
	}
}

// pruneDataFiles keeps the newest keep data files (the names sort by
// index) and never the one of index current.
func pruneDataFiles(lg *zap.Logger, dir string, keep uint, current uint64) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		lg.Warn("listing snapshot data files", zap.Error(err))
		return
	}
	var names []string
	for _, e := range ents {
		if strings.HasSuffix(e.Name(), ".snap.db") {
			names = append(names, e.Name())
		}
	}
	slices.Sort(names)
	for len(names) > int(keep) {
		if names[0] != dataFileName(current) {
			if err := os.Remove(filepath.Join(dir, names[0])); err != nil {
				lg.Warn("removing old snapshot data file", zap.String("file", names[0]), zap.Error(err))
			}
		}
		names = names[1:]
	}
}

// nonSnapWarning is what etcd's snapshotter logs, at every start and
// snapshot load, for each file of the snap dir that is not a .snap file
// (or its own "db").
const nonSnapWarning = "found unexpected non-snap file; skipping"

// snapshotterLogger is lg for etcd's snapshotter, without its warning
// about the data files that live beside its .snap files by design: every
// member that ever took a snapshot would log one at each start, which
// reads as damage. Any other file it finds is still warned of.
func snapshotterLogger(lg *zap.Logger) *zap.Logger {
	return lg.WithOptions(zap.WrapCore(func(c zapcore.Core) zapcore.Core { return quietDataFiles{c} }))
}

// quietDataFiles drops nonSnapWarning for a path named as a data file.
type quietDataFiles struct{ zapcore.Core }

func (c quietDataFiles) With(fs []zapcore.Field) zapcore.Core { return quietDataFiles{c.Core.With(fs)} }

func (c quietDataFiles) Check(e zapcore.Entry, ce *zapcore.CheckedEntry) *zapcore.CheckedEntry {
	if e.Message != nonSnapWarning {
		return c.Core.Check(e, ce)
	}
	if c.Enabled(e.Level) {
		return ce.AddCore(e, c) // Write sees the path
	}
	return ce
}

func (c quietDataFiles) Write(e zapcore.Entry, fs []zapcore.Field) error {
	if e.Message == nonSnapWarning {
		for _, f := range fs {
			if f.Key == "path" && f.Type == zapcore.StringType && strings.HasSuffix(f.String, ".snap.db") {
				return nil
			}
		}
	}
	return c.Core.Write(e, fs)
}
