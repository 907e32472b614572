package testcluster

import "syscall"

// sysProcAttr makes the kernel kill a node if the test binary dies before its cleanup
// runs (for example on a test timeout panic). A non-zero uid runs the node as that
// user and group, so iptables can tell its packets apart (see Blackhole); Go sets the
// parent-death signal after switching users, which would otherwise clear it.
func sysProcAttr(uid int) *syscall.SysProcAttr {
	a := &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if uid != 0 {
		a.Credential = &syscall.Credential{Uid: uint32(uid), Gid: uint32(uid)} // and no supplementary groups
	}
	return a
}
