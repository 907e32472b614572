package raftnode

import (
	"os"

	"golang.org/x/sys/unix"
)

// flushRange writes the file's dirty pages in [off, off+n) to disk and
// waits for them, without flushing metadata or the journal (the final
// fsync does that once).
func flushRange(f *os.File, off, n int64) error {
	return unix.SyncFileRange(int(f.Fd()), off, n,
		unix.SYNC_FILE_RANGE_WAIT_BEFORE|unix.SYNC_FILE_RANGE_WRITE|unix.SYNC_FILE_RANGE_WAIT_AFTER)
}
