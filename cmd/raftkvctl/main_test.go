package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/raftkv/raftkv/testcluster"
)

// The tests run the raftkvctl binary, built once per test process, against
// real raftkv clusters (processes started by testcluster).

func TestMain(m *testing.M) {
	code := func() int {
		defer func() {
			if ctlBuild.dir != "" {
				os.RemoveAll(ctlBuild.dir)
			}
		}()
		return testcluster.Run(m)
	}()
	os.Exit(code)
}

const (
	leaderTimeout = 20 * time.Second
	// cmdTimeout bounds one run of the binary; its own --command-timeout
	// is shorter.
	cmdTimeout = 2 * time.Minute
)

// ctlBuild is the raftkvctl binary the tests of this process share.
var ctlBuild struct {
	once sync.Once
	dir  string // removed by TestMain
	path string
	out  []byte
	err  error
}

// ctlBinary builds raftkvctl once per test process, with -race when the
// test binary has it, and returns its path.
func ctlBinary(t *testing.T) string {
	t.Helper()
	ctlBuild.once.Do(func() {
		ctlBuild.dir, ctlBuild.err = os.MkdirTemp("", "raftkvctl-test-")
		if ctlBuild.err != nil {
			return
		}
		ctlBuild.path = filepath.Join(ctlBuild.dir, "raftkvctl")
		args := []string{"build", "-o", ctlBuild.path}
		if raceBuild {
			args = append(args, "-race") // a race in raftkvctl then fails the test: its stderr is checked
		}
		ctlBuild.out, ctlBuild.err = exec.Command("go", append(args, ".")...).CombinedOutput()
	})
	if ctlBuild.err != nil {
		t.Fatalf("go build: %v\n%s", ctlBuild.err, ctlBuild.out)
	}
	return ctlBuild.path
}

// result is one run of the binary.
type result struct {
	code           int
	stdout, stderr string
}

// ctl runs raftkvctl with args and env (KEY=VALUE, added to an
// environment without RAFTKVCTL_ variables) and stdin.
type ctl struct {
	t   *testing.T
	bin string
	env []string
}

func newCtl(t *testing.T, env ...string) *ctl {
	return &ctl{t: t, bin: ctlBinary(t), env: env}
}

func (c *ctl) runIn(stdin []byte, args ...string) result {
	c.t.Helper()
	cmd := exec.Command(c.bin, args...)
	for _, e := range os.Environ() {
		if !strings.HasPrefix(e, envPrefix) {
			cmd.Env = append(cmd.Env, e)
		}
	}
	cmd.Env = append(cmd.Env, c.env...)
	cmd.Stdin = bytes.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Start(); err != nil {
		c.t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(cmdTimeout):
		cmd.Process.Kill()
		<-done
		c.t.Fatalf("raftkvctl %q did not end within %v", args, cmdTimeout)
	}
	return result{code: cmd.ProcessState.ExitCode(), stdout: out.String(), stderr: errb.String()}
}

func (c *ctl) run(args ...string) result {
	c.t.Helper()
	return c.runIn(nil, args...)
}

// ok runs args and fails the test unless it exits 0 with nothing on stderr.
func (c *ctl) ok(args ...string) string {
	c.t.Helper()
	r := c.run(args...)
	if r.code != 0 || r.stderr != "" {
		c.t.Fatalf("raftkvctl %q: exit %d, stderr %q, stdout %q; want success", args, r.code, r.stderr, r.stdout)
	}
	return r.stdout
}

// fails runs args and checks the exit status and that stderr is one line
// containing want.
func (c *ctl) fails(code int, want string, args ...string) result {
	c.t.Helper()
	r := c.run(args...)
	if r.code != code {
		c.t.Fatalf("raftkvctl %q: exit %d (stderr %q, stdout %q); want %d", args, r.code, r.stderr, r.stdout, code)
	}
	checkErrLine(c.t, args, r.stderr, want)
	return r
}

func checkErrLine(t *testing.T, args []string, stderr, want string) {
	t.Helper()
	if !strings.HasPrefix(stderr, "raftkvctl: ") || !strings.HasSuffix(stderr, "\n") || strings.Count(stderr, "\n") != 1 {
		t.Errorf("raftkvctl %q: stderr %q; want one line starting with \"raftkvctl: \"", args, stderr)
	}
	if !strings.Contains(stderr, want) {
		t.Errorf("raftkvctl %q: stderr %q; want it to contain %q", args, stderr, want)
	}
}

// decode unmarshals one line of JSON output.
func decode(t *testing.T, out string, v any) {
	t.Helper()
	if strings.Count(out, "\n") != 1 {
		t.Fatalf("-w json printed %q; want one line", out)
	}
	if err := json.Unmarshal([]byte(out), v); err != nil {
		t.Fatalf("-w json printed %q: %v", out, err)
	}
}

// startCluster starts a cluster of processes and waits until every member
// knows the leader.
func startCluster(t *testing.T, opts testcluster.Options) (*testcluster.Cluster, int) {
	t.Helper()
	if testing.Short() {
		t.Skip("raftkvctl: starts real raftkv processes")
	}
	c := testcluster.Start(t, opts)
	leader := c.WaitLeader(t, leaderTimeout)
	// Each member publishes its client URL through raft once it knows a
	// leader; until every member applied every one, members list would
	// show some unstarted.
	testcluster.WaitFor(t, leaderTimeout, "every member to know the leader and every client URL", func() error {
		for _, id := range c.Live() {
			st, err := c.Status(id)
			if err != nil {
				return err
			}
			if st.Leader == 0 {
				return fmt.Errorf("node %d knows no leader", id)
			}
			for _, m := range st.Members {
				if len(m.ClientURLs) == 0 {
					return fmt.Errorf("node %d does not know member %d's client URL yet", id, m.ID)
				}
			}
			leader = int(st.Leader)
		}
		return nil
	})
	return c, leader
}

// endpoints are the client URLs of c's nodes ids (all when none given).
func endpoints(c *testcluster.Cluster, ids ...int) string {
	if len(ids) == 0 {
		ids = c.IDs()
	}
	var urls []string
	for _, id := range ids {
		urls = append(urls, c.ClientURL(id))
	}
	return strings.Join(urls, ",")
}

// deadURL is the URL of a free port nothing listens on.
func deadURL(t *testing.T) string {
	return fmt.Sprintf("http://127.0.0.1:%d", testcluster.FreePorts(t, 1)[0])
}

// with returns a ctl with env added.
func (c *ctl) with(env ...string) *ctl {
	return &ctl{t: c.t, bin: c.bin, env: append(append([]string(nil), c.env...), env...)}
}

func itoa(n uint64) string { return fmt.Sprint(n) }
