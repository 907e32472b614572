package main

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/raftkv/raftkv/testcluster"
	"golang.org/x/sys/unix"
)

// TestLogFormatAuto runs a member with its stderr on a pseudo-terminal:
// without --log-format it logs for a person to read, not JSON.
func TestLogFormatAuto(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the raftkv binary")
	}
	bin := testcluster.BuildBinary(t)
	ptmx, pty, err := openPTY()
	if err != nil {
		t.Skipf("no pseudo-terminal: %v", err)
	}
	defer ptmx.Close()
	ports := testcluster.FreePorts(t, 2)
	cmd := exec.Command(bin, "--id", "1", "--cluster", "http://127.0.0.1:"+strconv.Itoa(ports[0]),
		"--port", strconv.Itoa(ports[1]), "--data-dir", filepath.Join(t.TempDir(), "data"))
	cmd.Stdout, cmd.Stderr = pty, pty
	startMember(t, cmd)
	pty.Close() // the child has its own

	lines := make(chan string)
	done := make(chan struct{})
	defer close(done)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(ptmx)
		for sc.Scan() {
			select {
			case lines <- sc.Text():
			case <-done:
				return
			}
		}
	}()
	deadline := time.After(runTimeout)
	for {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatal("the terminal closed before the member logged \"serving clients\"")
			}
			if strings.HasPrefix(strings.TrimSpace(l), "{") {
				t.Fatalf("a JSON log line on a terminal: %s", l)
			}
			if strings.Contains(l, "serving clients") {
				if !strings.Contains(l, "INFO") {
					t.Errorf("console line without its level: %q", l)
				}
				return
			}
		case <-deadline:
			t.Fatalf("no \"serving clients\" line within %v", runTimeout)
		}
	}
}

// openPTY opens a new pseudo-terminal: its controlling end and its
// terminal end.
func openPTY() (ptmx, pty *os.File, err error) {
	ptmx, err = os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		return nil, nil, err
	}
	fd := int(ptmx.Fd())
	n, err := unix.IoctlGetInt(fd, unix.TIOCGPTN)
	if err == nil {
		err = unix.IoctlSetPointerInt(fd, unix.TIOCSPTLCK, 0)
	}
	if err == nil {
		pty, err = os.OpenFile("/dev/pts/"+strconv.Itoa(n), os.O_RDWR|unix.O_NOCTTY, 0)
	}
	if err != nil {
		ptmx.Close()
		return nil, nil, err
	}
	return ptmx, pty, nil
}
