package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/raftkv/raftkv/testcluster"
)

// TestSnapshotSave: snapshot save writes a whole backup (FILE.part
// renamed once checked) that raftkv restore makes a new cluster of, with
// the keys written before it; a member that serves no backups, and a
// directory that does not exist, are errors.
func TestSnapshotSave(t *testing.T) {
	t.Parallel()
	c, _ := startCluster(t, testcluster.Options{ExtraArgs: []string{"--enable-snapshot-download"}})
	ctl := newCtl(t, "RAFTKVCTL_ENDPOINTS="+endpoints(c))
	ctl.ok("put", "saved", "before the backup")
	dir := t.TempDir()
	file := filepath.Join(dir, "backup.raftkv")
	var snap struct {
		Path     string
		Endpoint string
		Size     int64
		Index    uint64
		Term     uint64
	}
	decode(t, ctl.ok("-w", "json", "snapshot", "save", file), &snap)
	if fi, err := os.Stat(file); err != nil || snap.Path != file || snap.Index == 0 || snap.Term == 0 || fi.Size() != snap.Size {
		t.Errorf("snapshot save -w json = %+v (%v); want the file of its size, with index and term", snap, err)
	}
	if out := ctl.ok("snapshot", "save", file); !strings.HasPrefix(out, "Snapshot saved at "+file+": index ") {
		t.Errorf("snapshot save printed %q", out)
	}
	if out := ctl.ok("-w", "table", "snapshot", "save", file); !strings.Contains(out, "| PATH ") {
		t.Errorf("snapshot save -w table printed\n%s", out)
	}
	if _, err := os.Stat(file + ".part"); !os.IsNotExist(err) {
		t.Errorf("snapshot save left %s.part: %v", file, err)
	}
	ctl.fails(1, "no such file or directory", "snapshot", "save", filepath.Join(dir, "missing", "b"))
	ctl.fails(2, "accepts 1 arg(s), received 0", "snapshot", "save")

	// A new one-member cluster restored from the backup holds the key.
	bin := testcluster.BuildBinary(t)
	restored := testcluster.Start(t, testcluster.Options{N: 1, Prepare: func(id int, peers []string, dataDir string) {
		out, err := exec.Command(bin, "restore", "--snapshot", file, "--id", "1", "--cluster", strings.Join(peers, ","), "--data-dir", dataDir).CombinedOutput()
		if err != nil {
			t.Errorf("raftkv restore: %v\n%s", err, out)
		}
	}})
	restored.WaitLeader(t, leaderTimeout)
	if out := ctl.ok("--endpoints", restored.ClientURL(1), "get", "saved"); out != "before the backup\n" {
		t.Errorf("get from the restored cluster printed %q", out)
	}

	// Members started without --enable-snapshot-download serve none.
	plain := testcluster.Start(t, testcluster.Options{N: 1})
	plain.WaitLeader(t, leaderTimeout)
	r := ctl.fails(1, "snapshot", "--endpoints", plain.ClientURL(1), "--command-timeout", "2s", "snapshot", "save", file+"2")
	t.Logf("from a member without --enable-snapshot-download: %s", strings.TrimSpace(r.stderr))
	if _, err := os.Stat(file + "2"); !os.IsNotExist(err) {
		t.Errorf("a failed snapshot save left %s2: %v", file, err)
	}
}
