//go:build unix

package testutil

import (
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// lockChildEnv makes the test binary, run as a child by
// TestFreePortsAcrossProcesses, try to take the ports it lists.
const lockChildEnv = "RAFTKV_TESTUTIL_LOCK_PORTS"

// TestFreePortsAcrossProcesses: another process cannot take a port this
// one handed out, and can take one this one did not.
func TestFreePortsAcrossProcesses(t *testing.T) {
	if ports := os.Getenv(lockChildEnv); ports != "" {
		var out []string
		for _, p := range strings.Split(ports, ",") {
			n, _ := strconv.Atoi(p)
			out = append(out, p+"="+strconv.FormatBool(lockPort(n)))
		}
		os.Stdout.WriteString("locks: " + strings.Join(out, " ") + "\n")
		return
	}
	ours := FreePorts(t, 2)
	if portLocks.f == nil {
		t.Skip("no port registry file in the temp dir")
	}
	lo, hi := ListenPortRange()
	// A port no process holds (F_GETLK asks whether another process's lock
	// would conflict).
	other := lo
	for ; other < hi; other++ {
		lk := syscall.Flock_t{Type: syscall.F_WRLCK, Start: int64(other), Len: 1}
		if handedOut.ports[other] {
			continue
		}
		if err := syscall.FcntlFlock(portLocks.f.Fd(), syscall.F_GETLK, &lk); err == nil && lk.Type == syscall.F_UNLCK {
			break
		}
	}
	list := []string{strconv.Itoa(ours[0]), strconv.Itoa(ours[1]), strconv.Itoa(other)}
	cmd := exec.Command(os.Args[0], "-test.run=^TestFreePortsAcrossProcesses$", "-test.count=1")
	cmd.Env = append(os.Environ(), lockChildEnv+"="+strings.Join(list, ","))
	b, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("child: %v\n%s", err, b)
	}
	want := "locks: " + list[0] + "=false " + list[1] + "=false " + list[2] + "=true"
	if !strings.Contains(string(b), want) {
		t.Fatalf("child printed\n%s\nwant a line %q", b, want)
	}
}
