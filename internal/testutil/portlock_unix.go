//go:build unix

package testutil

import (
	"errors"
	"os"
	"path/filepath"
	"sync"
	"syscall"
)

// portLocks is this process's share of a machine-wide registry of the
// ports test processes have handed out: one file, in which a process
// holds a write lock on byte p for each port p it handed out, until it
// exits (the kernel drops a process's record locks then, however it
// ends). Two test processes running at once (go test runs packages in
// parallel, and a package twice at once must work) then never hand out
// the same port, even one the other's server has closed for a moment,
// as a restarted member does.
var portLocks struct {
	once sync.Once
	f    *os.File // kept open: closing any descriptor of it drops the locks
}

// lockPort takes port p in the registry. It reports false when another
// live process holds it; true when it is this process's now, or when
// there is no registry to use (the check is then only this process's).
func lockPort(p int) bool {
	portLocks.once.Do(func() {
		f, err := os.OpenFile(filepath.Join(os.TempDir(), "raftkv-test-ports.lock"), os.O_RDWR|os.O_CREATE, 0o666)
		if err == nil {
			portLocks.f = f
		}
	})
	if portLocks.f == nil {
		return true
	}
	lk := syscall.Flock_t{Type: syscall.F_WRLCK, Whence: 0, Start: int64(p), Len: 1}
	err := syscall.FcntlFlock(portLocks.f.Fd(), syscall.F_SETLK, &lk)
	// Only a lock another process holds says no; a file system that
	// cannot lock leaves the registry unused rather than every port taken.
	return !errors.Is(err, syscall.EAGAIN) && !errors.Is(err, syscall.EACCES)
}
