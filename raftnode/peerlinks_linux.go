package raftnode

import (
	"net"

	"golang.org/x/sys/unix"
)

// tcpEstablished is TCP_ESTABLISHED of the kernel's TCP states.
const tcpEstablished = 1

// stillEstablished reports whether c is still an established connection
// from this side: its peer's FIN or reset has not arrived.
func stillEstablished(c net.Conn) bool {
	tc, ok := tcpConn(c)
	if !ok {
		return true
	}
	raw, err := tc.SyscallConn()
	if err != nil {
		return false
	}
	established := false
	if err := raw.Control(func(fd uintptr) {
		info, err := unix.GetsockoptTCPInfo(int(fd), unix.IPPROTO_TCP, unix.TCP_INFO)
		established = err == nil && info.State == tcpEstablished
	}); err != nil {
		return false // closed here already
	}
	return established
}
