//go:build !linux

package testcluster

import "syscall"

// sysProcAttr is nil: Blackholable clusters, the only users of uid, need Linux.
func sysProcAttr(int) *syscall.SysProcAttr { return nil }
