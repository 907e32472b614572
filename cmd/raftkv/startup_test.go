package main

import (
	"bytes"
	"context"
	"io"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/raftkv/raftkv/testcluster"
)

func TestMain(m *testing.M) { testcluster.Main(m) }

// runTimeout bounds one run of the binary that is expected to fail at once.
const runTimeout = time.Minute

// result is one finished run of the raftkv binary.
type result struct {
	code           int
	stdout, stderr string
}

// runRaftkv runs bin with args, as the user cred names (nil: this
// process's), and waits for it to exit.
func runRaftkv(t *testing.T, bin string, cred *syscall.Credential, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), runTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Dir = t.TempDir()
	if cred != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
		reachable(t, cmd.Dir)
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("raftkv %s: still running after %v", strings.Join(args, " "), runTimeout)
	}
	if _, ok := err.(*exec.ExitError); err != nil && !ok {
		t.Fatalf("raftkv %s: %v", strings.Join(args, " "), err)
	}
	return result{cmd.ProcessState.ExitCode(), stdout.String(), stderr.String()}
}

// startMember starts cmd (a member) and returns the result of its Wait;
// when the test ends it is stopped with SIGTERM, and killed if it has not
// exited within runTimeout.
func startMember(t *testing.T, cmd *exec.Cmd) <-chan error {
	t.Helper()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	waited := make(chan struct{}) // the test may take the result from exited
	go func() {
		exited <- cmd.Wait()
		close(waited)
	}()
	t.Cleanup(func() {
		select {
		case <-waited:
			return
		default:
		}
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-waited:
		case <-time.After(runTimeout):
			_ = cmd.Process.Kill()
			<-waited
		}
	})
	return exited
}

// awaitMember polls ready until it returns nil, and fails the test with
// the member's logs if the member exits first (done, from startMember) or
// that takes more than 20 s; what names what it waits for.
func awaitMember(t *testing.T, done <-chan error, logs func() string, what string, ready func() error) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		err := ready()
		if err == nil {
			return
		}
		select {
		case err := <-done:
			t.Fatalf("the member exited (%v) before %s:\n%s", err, what, logs())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %s in 20 s (last: %v):\n%s", what, err, logs())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// stderrToFile makes cmd write its stderr to a file (not a buffer: the
// child writes it while the test reads) and returns a func that reads it.
func stderrToFile(t *testing.T, cmd *exec.Cmd) func() string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "stderr")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	cmd.Stderr = f
	return func() string { b, _ := os.ReadFile(path); return string(b) }
}

// checkStartupError fails the test unless r is a start-up error: exit
// status 2 and a last line on stderr of "raftkv: " and then want, after at
// most logs lines of the member's log.
func checkStartupError(t *testing.T, r result, want string, logs int) {
	t.Helper()
	if r.code != 2 {
		t.Errorf("exit status %d, want 2", r.code)
	}
	if strings.Contains(r.stderr, "goroutine") {
		t.Errorf("stderr holds a stack trace:\n%s", r.stderr)
	}
	lines := strings.Split(strings.TrimSuffix(r.stderr, "\n"), "\n")
	last := lines[len(lines)-1]
	if !strings.HasPrefix(last, "raftkv: "+want) || strings.Count(r.stderr, "raftkv: ") != 1 {
		t.Errorf("stderr %q, want its last line to start %q", r.stderr, "raftkv: "+want)
	}
	for _, l := range lines[:len(lines)-1] {
		if !strings.HasPrefix(l, "{") {
			t.Errorf("stderr line %q is not a log record", l)
		}
	}
	if len(lines)-1 > logs {
		t.Errorf("stderr holds %d lines, want at most %d log records and the error:\n%s", len(lines), logs, r.stderr)
	}
}

// TestStartupErrors runs the binary where another member already holds
// what it needs: each attempt must end at once with exit status 2 and one
// line on stderr naming the data dir or port, and leave the running member
// serving.
func TestStartupErrors(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the raftkv binary")
	}
	bin := testcluster.BuildBinary(t)
	c := testcluster.Start(t, testcluster.Options{N: 1})
	c.WaitLeader(t, 20*time.Second)
	cu, err := url.Parse(c.ClientURL(1))
	if err != nil {
		t.Fatal(err)
	}
	busyClient := cu.Port()
	busyPeer := c.PeerURL(1)
	free := testcluster.FreePorts(t, 6)
	peer := func(i int) string { return "http://127.0.0.1:" + strconv.Itoa(free[i]) }
	port := func(i int) string { return strconv.Itoa(free[i]) }
	dir := t.TempDir()

	for _, tc := range []struct {
		name    string
		args    []string
		want    string
		dataDir string // must not exist after the attempt
	}{
		{"data dir locked by a running member",
			[]string{"--cluster", peer(0), "--port", port(1), "--data-dir", c.DataDir(1)},
			"data dir " + c.DataDir(1) + " is in use by another process", ""},
		{"client port in use",
			[]string{"--cluster", peer(2), "--port", busyClient, "--data-dir", filepath.Join(dir, "a")},
			"cannot listen for clients on :" + busyClient + ": address already in use", filepath.Join(dir, "a")},
		{"peer port in use",
			[]string{"--cluster", busyPeer, "--port", port(3), "--data-dir", filepath.Join(dir, "b")},
			"cannot listen for peers on " + strings.TrimPrefix(busyPeer, "http://") + ": address already in use", filepath.Join(dir, "b")},
		{"https peer URL without the peer certificate",
			[]string{"--cluster", "https://127.0.0.1:" + port(4), "--port", port(5), "--data-dir", filepath.Join(dir, "c")},
			"--cluster entry 1 https://127.0.0.1:" + port(4) + " is https, which needs --peer-cert-file and --peer-key-file", filepath.Join(dir, "c")},
		{"client certificate file missing",
			[]string{"--cluster", peer(4), "--port", port(5), "--data-dir", filepath.Join(dir, "d"),
				"--cert-file", filepath.Join(dir, "none.crt"), "--key-file", filepath.Join(dir, "none.key")},
			"client TLS: open " + filepath.Join(dir, "none.crt") + ": no such file or directory", filepath.Join(dir, "d")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := runRaftkv(t, bin, nil, append([]string{"--id", "1"}, tc.args...)...)
			checkStartupError(t, r, tc.want, 0)
			if tc.dataDir == "" {
				return
			}
			if _, err := os.Stat(tc.dataDir); !os.IsNotExist(err) {
				t.Errorf("the failed start touched its data dir %s: %v", tc.dataDir, err)
			}
		})
	}
	if st, err := c.Put(1, "after", []byte("ok")); err != nil || st != 204 {
		t.Fatalf("the running member after the failed starts: PUT %d %v", st, err)
	}

	// A data dir made for a plain member refuses a config group member,
	// and the member's flags say how to fix it.
	c.Stop(1)
	r := runRaftkv(t, bin, nil, "--id", "1", "--cluster", peer(0), "--port", port(1), "--data-dir", c.DataDir(1), "--config-group")
	checkStartupError(t, r, "data dir "+c.DataDir(1)+" holds a plain member's state; start it with neither --config-group nor --group", 0)
}

// TestStartupUnwritableDataDir runs the binary on data dirs it may not
// write, as a user other than their owner: exit status 2 and one line
// naming the dir.
func TestStartupUnwritableDataDir(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the raftkv binary")
	}
	// root may write anywhere, so as root the binary runs as nobody.
	var cred *syscall.Credential
	if os.Geteuid() == 0 {
		cred = &syscall.Credential{Uid: 65534, Gid: 65534}
	}
	root := t.TempDir()
	reachable(t, root)
	bin := filepath.Join(root, "raftkv")
	copyFile(t, testcluster.BuildBinary(t), bin, 0o755)

	readOnly := filepath.Join(root, "read-only")
	if err := os.Mkdir(readOnly, 0o755); err != nil {
		t.Fatal(err)
	}
	// A data dir a member of another user wrote: it may enter the dir, but
	// not its WAL.
	foreign := filepath.Join(root, "foreign")
	for _, d := range []string{foreign, filepath.Join(foreign, "wal")} {
		if err := os.Mkdir(d, 0o777); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(foreign, "wal", "0000000000000000-0000000000000000.wal"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if cred == nil {
		os.Chmod(readOnly, 0o555)
		os.Chmod(filepath.Join(foreign, "wal"), 0o000)
		defer os.Chmod(readOnly, 0o755)
		defer os.Chmod(filepath.Join(foreign, "wal"), 0o755)
	} else {
		os.Chmod(filepath.Join(foreign, "wal"), 0o700)
		os.Chmod(foreign, 0o777) // writable by nobody, against the umask
	}
	free := testcluster.FreePorts(t, 2)
	for _, tc := range []struct {
		name, dataDir, want string
		logs                int // etcd's wal logs what it failed at
	}{
		{"existing", readOnly, "--data-dir " + readOnly + " is not readable and writable", 0},
		{"to create", filepath.Join(readOnly, "sub"), "--data-dir " + filepath.Join(readOnly, "sub") + ": cannot create it in " + readOnly, 0},
		{"its wal", foreign, "data dir " + foreign + ": ", 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := runRaftkv(t, bin, cred, "--id", "1", "--cluster", "http://127.0.0.1:"+strconv.Itoa(free[0]),
				"--port", strconv.Itoa(free[1]), "--data-dir", tc.dataDir)
			checkStartupError(t, r, tc.want, tc.logs)
		})
	}
}

func copyFile(t *testing.T, src, dst string, mode os.FileMode) {
	t.Helper()
	in, err := os.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, mode)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
}

// reachable lets every user enter dir, a t.TempDir(), whose parent is
// private to this test's user.
func reachable(t *testing.T, dir string) {
	t.Helper()
	for _, d := range []string{filepath.Dir(dir), dir} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
}
