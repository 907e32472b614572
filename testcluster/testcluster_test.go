package testcluster

import (
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestMain(m *testing.M) { Main(m) }

func TestFreePortsDistinct(t *testing.T) {
	seen := make(map[int]bool)
	lo, hi := listenPortRange()
	for range 5 {
		for _, p := range freePorts(t, 8) {
			if p < lo || p >= hi || seen[p] {
				t.Fatalf("port %d handed out twice or outside %d-%d, below the ephemeral ports", p, lo, hi)
			}
			seen[p] = true
		}
	}
}

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
