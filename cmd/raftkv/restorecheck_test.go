package main

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/raftkv/raftkv/testcluster"
)

// TestRestoredConfigGroupUncheckedStart runs the binaries as an operator
// would: a config group backed up while group 5 alone served, group 6
// joined since, and the config group restored alone from that backup.
// Its start is refused (exit status 2) with the reason and a line naming
// --unsafe-skip-restore-check; started with that flag, it serves, and
// logs that it was not checked.
func TestRestoredConfigGroupUncheckedStart(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the raftkv binary")
	}
	bin := testcluster.BuildBinary(t)
	conf := testcluster.Start(t, testcluster.Options{N: 1, ExtraArgs: []string{"--config-group", "--buckets", "8", "--enable-snapshot-download"}})
	conf.WaitLeader(t, 20*time.Second)
	shard := func(gid int) *testcluster.Cluster {
		c := testcluster.Start(t, testcluster.Options{N: 1, ExtraArgs: []string{
			"--group", strconv.Itoa(gid), "--config-endpoints", conf.ClientURL(1), "--config-poll-interval", "50ms"}})
		c.WaitLeader(t, 20*time.Second)
		return c
	}
	serves := func(c *testcluster.Cluster, n int) func() error {
		return func() error {
			st, err := c.Status(1)
			switch {
			case err != nil:
				return err
			case st.Shard == nil || len(st.Shard.Buckets.Serving) != n || st.Shard.Buckets.Moving() != 0:
				return fmt.Errorf("shard status %+v", st.Shard)
			}
			return nil
		}
	}
	g5 := shard(5)
	testcluster.WaitFor(t, 20*time.Second, "group 5 to serve every bucket", serves(g5, 8))

	backup := filepath.Join(t.TempDir(), "config.backup")
	resp, err := http.Get(conf.ClientURL(1) + "/snapshot")
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /snapshot: %d %v", resp.StatusCode, err)
	}
	if err := os.WriteFile(backup, body, 0o600); err != nil {
		t.Fatal(err)
	}

	g6 := shard(6)
	testcluster.WaitFor(t, 30*time.Second, "groups 5 and 6 to serve 4 buckets each", func() error {
		if err := serves(g5, 4)(); err != nil {
			return err
		}
		return serves(g6, 4)()
	})
	conf.Stop(1)

	free := testcluster.FreePorts(t, 2)
	peer := "http://127.0.0.1:" + strconv.Itoa(free[0])
	dataDir := filepath.Join(t.TempDir(), "restored")
	if r := runRaftkv(t, bin, nil, "restore", "--snapshot", backup, "--id", "1", "--cluster", peer, "--data-dir", dataDir); r.code != 0 {
		t.Fatalf("raftkv restore: exit %d, stderr %q", r.code, r.stderr)
	}
	args := []string{"--config-group", "--id", "1", "--cluster", peer, "--port", strconv.Itoa(free[1]), "--data-dir", dataDir}

	r := runRaftkv(t, bin, nil, args...)
	lines := strings.Split(strings.TrimSuffix(r.stderr, "\n"), "\n")
	if r.code != 2 || len(lines) < 2 ||
		!strings.HasPrefix(lines[len(lines)-2], "raftkv: data dir "+dataDir+", restored from a backup of the config group, must not serve") ||
		!strings.Contains(lines[len(lines)-2], "group 5 is at config 2, past the backup's latest, 1") ||
		!strings.Contains(lines[len(lines)-1], "--unsafe-skip-restore-check starts it unchecked") {
		t.Fatalf("start of the restored config group: exit %d, stderr:\n%s\nwant exit 2, the refusal naming group 5, then the flag that skips the check", r.code, r.stderr)
	}

	cmd := exec.Command(bin, append(args, "--unsafe-skip-restore-check")...)
	logs := stderrToFile(t, cmd)
	done := startMember(t, cmd)
	clientURL := "http://127.0.0.1:" + strconv.Itoa(free[1])
	awaitMember(t, done, logs, "a config served by the member started unchecked", func() error {
		resp, err := http.Get(clientURL + "/config")
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("GET /config: %d", resp.StatusCode)
		}
		return nil
	})
	if !strings.Contains(logs(), "not checked against the deployment, as asked") {
		t.Errorf("the member started unchecked did not log so:\n%s", logs())
	}
}
