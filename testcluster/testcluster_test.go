package testcluster

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/raftkv/raftkv/daemon"
)

func TestMain(m *testing.M) { Main(m) }

func TestTail(t *testing.T) {
	path := filepath.Join(t.TempDir(), "log")
	if err := os.WriteFile(path, []byte("a\nb\nc\nd\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		n    int
		want string
	}{
		{1, "d"},
		{2, "c\nd"},
		{10, "a\nb\nc\nd"},
	} {
		if got := tail(path, tc.n); got != tc.want {
			t.Errorf("tail(%d) = %q, want %q", tc.n, got, tc.want)
		}
	}
}

func TestSummarize(t *testing.T) {
	got := summarize(map[int]Status{
		2: {ID: 2, Leader: 1, Term: 3, Members: []Member{{ID: 2}, {ID: 1}}},
		1: {ID: 1, Leader: 1, Term: 3, CommitIndex: 7, AppliedIndex: 7},
	})
	want := "[node 1: leader=1 term=3 commit=7 applied=7 snapshot=0 members=[]] " +
		"[node 2: leader=1 term=3 commit=0 applied=0 snapshot=0 members=[1 2]]"
	if got != want {
		t.Errorf("summarize:\n got %s\nwant %s", got, want)
	}
}

// TestStopJustStarted stops a node right after its restart, as a test's
// end can: Stop (and the cleanup) wait until the process catches SIGTERM,
// so the stop is still the clean one, with status 0.
func TestStopJustStarted(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a raftkv process")
	}
	c := Start(t, Options{N: 1})
	c.WaitLeader(t, 20*time.Second)
	for i := range 3 {
		if code := c.Stop(1); code != 0 {
			t.Fatalf("stop %d: exit status %d, want 0", i, code)
		}
		c.Restart(1)
	}
}

// TestSingleNodeLifecycle exercises the helper itself against a one-node cluster:
// election, a write, a clean stop, a restart from the same data dir, a kill.
func TestSingleNodeLifecycle(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a raftkv process")
	}
	c := Start(t, Options{N: 1})
	if l := c.WaitLeader(t, 20*time.Second); l != 1 {
		t.Fatalf("leader = %d, want 1", l)
	}
	if st, err := c.Put(1, "k", []byte("v")); err != nil || st != http.StatusNoContent {
		t.Fatalf("put: %d %v", st, err)
	}
	if code := c.Stop(1); code != 0 {
		t.Fatalf("stop: exit status %d, want 0", code)
	}
	if c.Running(1) || len(c.Live()) != 0 {
		t.Fatalf("node 1 still running after Stop")
	}
	c.Restart(1)
	c.WaitLeader(t, 20*time.Second)
	c.WaitValue(t, 1, "k", []byte("v"), 10*time.Second)
	c.Kill(1)
	if code, err := c.Wait(1, time.Second); err != nil || code != -1 {
		t.Fatalf("wait after kill: %d %v, want -1", code, err)
	}
	if !c.LogContains(1, "=== testcluster:") {
		t.Errorf("log %s lacks the start marker", c.LogPath(1))
	}
}

func TestRaceReports(t *testing.T) {
	path := filepath.Join(t.TempDir(), "log")
	log := "{\"msg\":\"x\"}\n==================\nWARNING: DATA RACE\nWrite at 0x1 by goroutine 7:\n  main.f()\n==================\n{\"msg\":\"y\"}\n"
	if err := os.WriteFile(path, []byte(log), 0o644); err != nil {
		t.Fatal(err)
	}
	want := "WARNING: DATA RACE\nWrite at 0x1 by goroutine 7:\n  main.f()"
	if got := raceReports(path); got != want {
		t.Errorf("raceReports = %q, want %q", got, want)
	}
	if err := os.WriteFile(path, []byte("{\"msg\":\"clean\"}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if got := raceReports(path); got != "" {
		t.Errorf("raceReports of a clean log = %q, want \"\"", got)
	}
}

// TestInProcessLifecycle is TestSingleNodeLifecycle for an in-process
// node: election, a write, a clean stop, a restart from the same data dir,
// and Kill refused with a clear failure.
func TestInProcessLifecycle(t *testing.T) {
	rec := &fatalRecorder{TB: t}
	c := Start(rec, Options{N: 1, InProcess: true, Configure: func(id int, cfg *daemon.Config) { cfg.Pprof = true }})
	if l := c.WaitLeader(t, 20*time.Second); l != 1 {
		t.Fatalf("leader = %d, want 1", l)
	}
	if st, err := c.Put(1, "k", []byte("v")); err != nil || st != http.StatusNoContent {
		t.Fatalf("put: %d %v", st, err)
	}
	if r, err := c.Do(1, http.MethodGet, "/debug/pprof/", nil); err != nil || r.Status != http.StatusOK {
		t.Fatalf("GET /debug/pprof/ with Configure setting Pprof: %d %v", r.Status, err)
	}
	if code := c.Stop(1); code != 0 {
		t.Fatalf("stop: exit status %d, want 0", code)
	}
	if c.Running(1) || len(c.Live()) != 0 {
		t.Fatalf("node 1 still running after Stop")
	}
	if !c.LogContains(1, `"msg":"serving clients"`) || !c.LogContains(1, "start node 1 in process: --id 1 ") {
		t.Errorf("log %s lacks the member's records or the start marker", c.LogPath(1))
	}
	c.Restart(1)
	c.WaitLeader(t, 20*time.Second)
	c.WaitValue(t, 1, "k", []byte("v"), 10*time.Second)

	if msg := rec.fatal(func() { c.Kill(1) }); !strings.Contains(msg, "Kill needs raftkv processes") {
		t.Errorf("Kill in process: failure %q, want one that says it needs processes", msg)
	}
	if !c.Running(1) {
		t.Error("the refused Kill stopped node 1")
	}
}

// fatalRecorder is a testing.TB whose Fatalf, called through fatal, is
// recorded instead of failing the test.
type fatalRecorder struct {
	testing.TB
	mu  sync.Mutex
	msg *string // set while fatal runs
}

func (r *fatalRecorder) Fatalf(format string, args ...any) {
	r.mu.Lock()
	msg := r.msg
	r.mu.Unlock()
	if msg == nil {
		r.TB.Fatalf(format, args...)
		return
	}
	*msg = fmt.Sprintf(format, args...)
	runtime.Goexit()
}

// fatal runs f on a goroutine of its own and returns the message of the
// Fatalf that ended it, or "" if none did.
func (r *fatalRecorder) fatal(f func()) string {
	var msg string
	r.mu.Lock()
	r.msg = &msg
	r.mu.Unlock()
	done := make(chan struct{})
	go func() {
		defer close(done)
		f()
	}()
	<-done
	r.mu.Lock()
	r.msg = nil
	r.mu.Unlock()
	return msg
}

func TestMemberConfig(t *testing.T) {
	c := &Cluster{opts: Options{SnapshotCount: 7, SnapshotCatchUpEntries: 3, TickMs: 20, RequestTimeout: 2 * time.Second}}
	n := &node{id: 2, clientURL: "http://127.0.0.1:22380", dir: "/tmp/node2"}
	cfg, err := memberConfig(c.args(n, []string{"http://127.0.0.1:12379", "http://127.0.0.1:22379"}, true))
	if err != nil {
		t.Fatal(err)
	}
	want := daemon.Config{
		ID: 2, Peers: []string{"http://127.0.0.1:12379", "http://127.0.0.1:22379"}, Join: true,
		DataDir: "/tmp/node2/data", ClientListenAddr: ":22380", SnapshotCount: 7, SnapshotCatchUpEntries: 3,
		TickInterval: 20 * time.Millisecond, RequestTimeout: 2 * time.Second,
	}
	if !reflect.DeepEqual(cfg, want) {
		t.Errorf("memberConfig:\n got %+v\nwant %+v", cfg, want)
	}
	if _, err := memberConfig([]string{"--id", "1", "--enable-pprof"}); err == nil || !strings.Contains(err.Error(), "--enable-pprof") {
		t.Errorf("an unknown flag: %v, want an error naming it", err)
	}
	rec := &fatalRecorder{TB: t}
	if msg := rec.fatal(func() { Start(rec, Options{InProcess: true, ExtraArgs: []string{"--enable-pprof"}}) }); !strings.Contains(msg, "Options.Configure instead of ExtraArgs") {
		t.Errorf("ExtraArgs in process: failure %q", msg)
	}
}
