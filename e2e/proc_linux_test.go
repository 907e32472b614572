package e2e

import "syscall"

// sysProcAttr makes the kernel kill a node the test started itself if the test binary
// dies before its cleanup runs (for example on a test timeout panic).
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
