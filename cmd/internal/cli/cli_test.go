package cli

import (
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"testing"

	"github.com/raftkv/raftkv/internal/buildinfo"
	"golang.org/x/sys/unix"
)

func TestVersion(t *testing.T) {
	v := Version("raftkv")
	for _, want := range []string{"raftkv version: ", "\nVCS revision: ", fmt.Sprintf("\nFeature level: %d\n", buildinfo.Level()), "\nGo version: " + runtime.Version() + "\n", "\nGo OS/Arch: " + runtime.GOOS + "/" + runtime.GOARCH + "\n"} {
		if !strings.Contains(v, want) {
			t.Errorf("Version() = %q, want it to contain %q", v, want)
		}
	}
}

func TestIsTerminal(t *testing.T) {
	null, err := os.Open(os.DevNull)
	if err != nil {
		t.Fatal(err)
	}
	defer null.Close()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	f, err := os.CreateTemp(t.TempDir(), "log")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, f := range []*os.File{null, w, f} {
		if IsTerminal(f) {
			t.Errorf("IsTerminal(%s) = true", f.Name())
		}
	}
	if runtime.GOOS != "linux" {
		return
	}
	ptmx, pty, err := openPTY()
	if err != nil {
		t.Skipf("no pseudo-terminal: %v", err)
	}
	defer ptmx.Close()
	defer pty.Close()
	if !IsTerminal(pty) {
		t.Errorf("IsTerminal(%s) = false", pty.Name())
	}
}

// openPTY opens a new pseudo-terminal (Linux): its controlling end and
// its terminal end.
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
