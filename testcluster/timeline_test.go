package testcluster

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestTimelineMergesEventsInTimeOrder(t *testing.T) {
	dir := t.TempDir()
	write := func(name, text string) string {
		t.Helper()
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	// 1796589436 is 2026-12-06T20:37:16Z.
	one := write("node1.log", ""+
		`{"level":"info","ts":1796589436.100,"logger":"raft","msg":"1 became leader at term 2","member-id":1}`+"\n"+
		`{"level":"info","ts":1796589436.200,"msg":"serving clients","address":"[::]:1"}`+"\n"+
		"=== testcluster: 2026-12-06T20:37:16.300Z links cut: 1-2\n"+
		`{"level":"warn","ts":1796589436.400,"msg":"peer became inactive (message send to peer failed)","peer-id":"2","error":"EOF"}`+"\n"+
		"not a log line\n"+
		`{"level":"info","ts":1796589436.900,"msg":"leader changed","from":1,"to":0}`+"\n")
	two := write("node2.log", ""+
		`{"level":"info","ts":1796589436.150,"logger":"raft","msg":"raft.node: 2 elected leader 1 at term 2"}`+"\n"+
		"=== testcluster: 2026-12-06T20:37:16.300Z links cut: 1-2\n"+
		`{"level":"info","ts":1796589436.500,"logger":"raft","msg":"2 became pre-candidate at term 2"}`+"\n")

	got := timeline(map[int]string{1: one, 2: two}, 100)
	want := strings.Join([]string{
		"20:37:16.100 node 1: 1 became leader at term 2",
		"20:37:16.150 node 2: raft.node: 2 elected leader 1 at term 2",
		"20:37:16.300 test: links cut: 1-2",
		"20:37:16.400 node 1: peer became inactive (message send to peer failed) peer-id=2 error=EOF",
		"20:37:16.500 node 2: 2 became pre-candidate at term 2",
		"20:37:16.900 node 1: leader changed from=1 to=0",
	}, "\n") + "\n"
	if got != want {
		t.Fatalf("timeline:\n%s\nwant:\n%s", got, want)
	}

	last := timeline(map[int]string{1: one, 2: two}, 2)
	if want := "20:37:16.500 node 2: 2 became pre-candidate at term 2\n20:37:16.900 node 1: leader changed from=1 to=0\n"; last != want {
		t.Fatalf("last 2 events:\n%s\nwant:\n%s", last, want)
	}
}
