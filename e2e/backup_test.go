package e2e

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/raftkv/raftkv/backup"
	"github.com/raftkv/raftkv/client"
	"github.com/raftkv/raftkv/internal/buildinfo"
	"github.com/raftkv/raftkv/testcluster"
)

// runRestore runs `raftkv restore` with args and returns its exit status,
// stdout and stderr.
func runRestore(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, testcluster.BuildBinary(t), append([]string{"restore"}, args...)...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return 0, stdout.String(), stderr.String()
	case errors.As(err, &ee) && ee.Exited():
		return ee.ExitCode(), stdout.String(), stderr.String()
	}
	t.Fatalf("raftkv restore %v: %v (stderr %q)", args, err, stderr.String())
	return 0, "", ""
}

// TestBackupUnderLoadRestoresIntoNewCluster: a backup saved from a
// follower while writers keep writing through every member, restored with
// `raftkv restore` into three fresh data dirs, starts a new cluster that
// serves every write acknowledged before the save began, with its value,
// keeps the dedup table (a retried write is not applied again), and takes
// new writes. The same backup with one byte flipped is refused with one
// line and exit status 2, and leaves no data dir.
func TestBackupUnderLoadRestoresIntoNewCluster(t *testing.T) {
	t.Parallel()
	old, leader := startCluster(t, testcluster.Options{
		SnapshotCount: 50, // the members snapshot and compact while the load runs
		ExtraArgs:     []string{"--enable-snapshot-download"},
	})
	follower := followers(old, leader)[0]
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	// A write with a client identity, for the dedup table.
	ids := old.IDs()
	urls := make([]string, len(ids))
	for i, id := range ids {
		urls[i] = old.ClientURL(id)
	}
	oldClient, err := client.New(client.Config{Endpoints: urls, RequestTimeout: 20 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer oldClient.Close()
	dedupIndex, err := oldClient.Put(ctx, "dedup", []byte("first"), client.WithSeq("e2e-backup", 7))
	if err != nil {
		t.Fatalf("PUT dedup: %v", err)
	}

	// The load: one writer per member, and a second one through the
	// follower the backup comes from.
	a := newAcked()
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for i, id := range append(old.IDs(), follower) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			writer(old, id, fmt.Sprintf("load/%d", i), a, stop, false)
		}()
	}
	stopLoad := sync.OnceFunc(func() {
		close(stop)
		wg.Wait()
	})
	defer stopLoad()
	testcluster.WaitFor(t, valueTimeout, "writes to be acknowledged", func() error {
		if n := a.count("load/"); n < 300 {
			return fmt.Errorf("%d writes acknowledged", n)
		}
		return nil
	})

	// Every write acknowledged now must be in the backup.
	before := a.all()
	saver, err := client.New(client.Config{Endpoints: []string{old.ClientURL(follower)}, RequestTimeout: 20 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer saver.Close()
	path := filepath.Join(t.TempDir(), "raftkv.backup")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	info, err := saver.SnapshotSave(ctx, f)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		t.Fatalf("SnapshotSave from follower %d: %v", follower, err)
	}
	during := a.count("load/") - len(before)
	stopLoad()
	t.Logf("backup of %d bytes at index %d from member %d; %d writes acknowledged before it, %d while it was taken, %d in all",
		info.Size, info.Header.Index, info.Header.MemberID, len(before), during, a.count("load/"))
	if info.Header.MemberID != uint64(follower) || info.Header.Mode != backup.ModePlain {
		t.Errorf("backup header %+v, want one of plain member %d", info.Header, follower)
	}
	if st, err := old.Status(follower); err != nil || st.AppliedIndex < info.Header.Index {
		t.Errorf("follower %d status %+v (%v): the backup says index %d", follower, st, err, info.Header.Index)
	}

	// A damaged copy: refused, one line, exit 2, nothing made.
	good, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	bad := bytes.Clone(good)
	bad[len(bad)/2] ^= 0x01
	badPath := filepath.Join(t.TempDir(), "damaged.backup")
	if err := os.WriteFile(badPath, bad, 0o600); err != nil {
		t.Fatal(err)
	}
	badDir := filepath.Join(t.TempDir(), "damaged-data")
	code, stdout, stderr := runRestore(t, "--snapshot", badPath, "--id", "1", "--cluster", "http://127.0.0.1:2380", "--data-dir", badDir)
	if code != 2 || strings.Count(stderr, "\n") != 1 || !strings.HasSuffix(stderr, "\n") || !strings.Contains(stderr, "checksum mismatch") || stdout != "" {
		t.Errorf("restore of a damaged backup: exit %d, stdout %q, stderr %q; want exit 2 and one line about the checksum", code, stdout, stderr)
	}
	if _, err := os.Stat(badDir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("restore of a damaged backup left %s behind (%v)", badDir, err)
	}

	// A restored data dir is its member's: started under another --id
	// (each member's data dir is made the same, so a mix-up is easy) it
	// refuses with one line and exit 2, rather than vote as a member
	// whose log it does not hold.
	ports := testcluster.FreePorts(t, 3)
	peers := []string{fmt.Sprintf("http://127.0.0.1:%d", ports[0]), fmt.Sprintf("http://127.0.0.1:%d", ports[1])}
	oneDir := filepath.Join(t.TempDir(), "member-1")
	if code, stdout, stderr := runRestore(t, "--snapshot", path, "--id", "1", "--cluster", strings.Join(peers, ","), "--data-dir", oneDir); code != 0 {
		t.Fatalf("restore member 1: exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
	sctx, scancel := context.WithTimeout(ctx, time.Minute)
	defer scancel()
	wrong := exec.CommandContext(sctx, testcluster.BuildBinary(t), "--id", "2", "--cluster", strings.Join(peers, ","),
		"--port", fmt.Sprint(ports[2]), "--listen-host", "127.0.0.1", "--data-dir", oneDir, "--log-level", "error")
	var wrongErr bytes.Buffer
	wrong.Stderr = &wrongErr
	err = wrong.Run()
	wantLine := "raftkv: data dir " + oneDir + " holds member 1's state, not member 2's: start it with --id 1, or member 2 from its own data dir\n"
	if ee := (*exec.ExitError)(nil); !errors.As(err, &ee) || ee.ExitCode() != 2 || !strings.HasSuffix(wrongErr.String(), wantLine) {
		t.Errorf("member 2 started on member 1's restored data dir: %v, stderr %q; want exit 2 and %q", err, wrongErr.String(), wantLine)
	}

	// The new cluster, on other ports, from three restored data dirs.
	restored, _ := startCluster(t, testcluster.Options{
		Prepare: func(id int, peers []string, dataDir string) {
			code, stdout, stderr := runRestore(t, "--snapshot", path, "--id", fmt.Sprint(id),
				"--cluster", strings.Join(peers, ","), "--data-dir", dataDir)
			if code != 0 || stderr != "" || !strings.Contains(stdout, "start it with: raftkv --id "+fmt.Sprint(id)) {
				t.Fatalf("restore member %d: exit %d, stdout %q, stderr %q", id, code, stdout, stderr)
			}
		},
	})
	for _, id := range restored.IDs() {
		st, err := restored.Status(id)
		if err != nil {
			t.Fatal(err)
		}
		if st.SnapshotIndex != info.Header.Index || st.Voters() != 3 || st.ClusterLevel != buildinfo.Level() {
			t.Errorf("restored member %d: snapshot index %d (backup %d), %d voters, cluster level %d (want 1, the restoring binary's, from the start)",
				id, st.SnapshotIndex, info.Header.Index, st.Voters(), st.ClusterLevel)
		}
		for _, m := range st.Members {
			if len(m.PeerURLs) != 1 || m.PeerURLs[0] != restored.PeerURL(int(m.ID)) {
				t.Errorf("restored member %d lists member %d at %v, want %s", id, m.ID, m.PeerURLs, restored.PeerURL(int(m.ID)))
			}
		}
	}
	want := maps.Clone(before)
	want["dedup"] = []byte("first")
	for _, id := range restored.IDs() {
		waitKeys(t, restored, id, want, convergeTimeout)
	}

	// The dedup table came along: the retry of the identified write is
	// answered with its first apply and does not apply again.
	rurls := make([]string, 0, 3)
	for _, id := range restored.IDs() {
		rurls = append(rurls, restored.ClientURL(id))
	}
	newClient, err := client.New(client.Config{Endpoints: rurls, RequestTimeout: 20 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer newClient.Close()
	if index, err := newClient.Put(ctx, "dedup", []byte("second"), client.WithSeq("e2e-backup", 7)); err != nil || index != dedupIndex {
		t.Errorf("retry of the identified write on the restored cluster: index %d, %v; want its first apply's index %d", index, err, dedupIndex)
	}
	if v, err := newClient.Get(ctx, "dedup"); err != nil || string(v) != "first" {
		t.Errorf("dedup after the retry: %q, %v; want \"first\"", v, err)
	}

	// It takes writes through every member.
	for _, id := range restored.IDs() {
		key := fmt.Sprintf("after-restore-%d", id)
		mustPut(t, restored, id, key, []byte("new"))
		for _, other := range restored.IDs() {
			restored.WaitValue(t, other, key, []byte("new"), valueTimeout)
		}
	}
}

// TestBackupFromCutOffFollower: a backup holds every write acknowledged
// before it was asked for, even from a member that missed them: a
// follower cut off from the others refuses to save one (it cannot learn
// the commit index), a stale one it gives is older than the last
// acknowledged write, and once the links are back its backup holds it.
func TestBackupFromCutOffFollower(t *testing.T) {
	t.Parallel()
	c, leader := startCluster(t, testcluster.Options{
		Proxied:        true,
		RequestTimeout: 2 * time.Second,
		ExtraArgs:      []string{"--enable-snapshot-download"},
	})
	follower := followers(c, leader)[0]
	mustPut(t, c, leader, "before-cut", []byte("x"))
	c.WaitConverged(t, convergeTimeout)

	c.Isolate(follower)
	var index uint64
	testcluster.WaitFor(t, valueTimeout, "a write acknowledged by the two others", func() error {
		for _, id := range followers(c, follower) {
			r, err := c.Do(id, "PUT", "/after-cut", []byte("y"))
			if err != nil {
				return err
			}
			if r.Status == 204 {
				_, err := fmt.Sscan(r.Header.Get("X-Raft-Index"), &index)
				return err
			}
		}
		return errors.New("no member took the write")
	})

	saver, err := client.New(client.Config{Endpoints: []string{c.ClientURL(follower)}, RequestTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer saver.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var buf bytes.Buffer
	if info, err := saver.SnapshotSave(ctx, &buf); err == nil {
		t.Fatalf("the cut-off follower saved a backup at index %d; the write at index %d was acknowledged before", info.Header.Index, index)
	} else {
		t.Logf("cut-off follower: %v", err)
	}
	buf.Reset()
	stale, err := saver.SnapshotSave(ctx, &buf, client.WithStale())
	if err != nil {
		t.Fatalf("stale backup from the cut-off follower: %v", err)
	}
	if stale.Header.Index >= index {
		t.Errorf("the cut-off follower's stale backup is at index %d, at or past the write it missed at %d", stale.Header.Index, index)
	}

	c.Heal()
	testcluster.WaitFor(t, valueTimeout, "a backup from the follower once healed", func() error {
		buf.Reset()
		info, err := saver.SnapshotSave(ctx, &buf)
		if err != nil {
			return err
		}
		if info.Header.Index < index {
			t.Fatalf("backup at index %d after the write at %d was acknowledged", info.Header.Index, index)
		}
		return nil
	})
}

// TestRestoreInPlaceShutsOutAnOldMember: members 2 and 3 of a cluster are
// restored in place from a backup (same peer URLs, same ports) while old
// member 1, forgotten, still runs with a longer log and a higher term.
// The restored cluster has an id of its own, so the old member's traffic
// is refused (412) both ways: it cannot lead the restored members and
// append its log after theirs, which would bring back the writes the
// restore undid or crash them on a conflict with committed entries.
func TestRestoreInPlaceShutsOutAnOldMember(t *testing.T) {
	t.Parallel()
	c, leader := startCluster(t, testcluster.Options{ExtraArgs: []string{"--enable-snapshot-download"}})
	mustPut(t, c, leader, "before", []byte("backed-up"))
	r, err := c.Do(leader, http.MethodGet, "/snapshot", nil)
	if err != nil || r.Status != http.StatusOK {
		t.Fatalf("GET /snapshot: %v %d", err, r.Status)
	}
	path := filepath.Join(t.TempDir(), "raftkv.backup")
	if err := os.WriteFile(path, r.Body, 0o600); err != nil {
		t.Fatal(err)
	}
	// The old cluster moves on: terms above any the restored cluster will
	// reach soon, and a write the backup lacks.
	for range 4 {
		st, err := c.Status(leader)
		if err != nil {
			t.Fatal(err)
		}
		if r, err := c.Do(leader, http.MethodPost, "/leader/transfer", nil); err != nil || r.Status/100 != 2 {
			t.Fatalf("POST /leader/transfer: %v %d %s", err, r.Status, r.Body)
		}
		testcluster.WaitFor(t, leaderTimeout, "a leader of a later term", func() error {
			now, err := c.Status(leader)
			if err != nil || now.Leader == 0 || now.Term <= st.Term {
				return fmt.Errorf("status %+v, %v", now, err)
			}
			leader = int(now.Leader)
			return nil
		})
	}
	mustPut(t, c, leader, "after", []byte("undone-by-the-restore"))
	old, err := c.Status(1)
	if err != nil {
		t.Fatal(err)
	}

	// Members 2 and 3 restored in place; member 1 is not stopped.
	peers := []string{c.PeerURL(1), c.PeerURL(2), c.PeerURL(3)}
	for _, id := range []int{2, 3} {
		c.Kill(id)
		if err := os.RemoveAll(c.DataDir(id)); err != nil {
			t.Fatal(err)
		}
		if code, stdout, stderr := runRestore(t, "--snapshot", path, "--id", fmt.Sprint(id),
			"--cluster", strings.Join(peers, ","), "--data-dir", c.DataDir(id)); code != 0 {
			t.Fatalf("restore member %d: exit %d, stdout %q, stderr %q", id, code, stdout, stderr)
		}
	}
	for _, id := range []int{2, 3} {
		c.Restart(id)
	}
	for _, id := range []int{2, 3} {
		c.AwaitNodeListening(id)
	}
	// The restored members elect one of themselves and take writes.
	mustPut(t, c, 2, "restored", []byte("yes"))
	// The old member's traffic reaches them and is refused.
	testcluster.WaitFor(t, convergeTimeout, "the restored members to refuse the old member's traffic", func() error {
		for _, id := range []int{1, 2, 3} {
			if c.LogContains(id, "cluster ID mismatch") {
				return nil
			}
		}
		return errors.New("no member logged a cluster ID mismatch")
	})
	for _, id := range []int{2, 3} {
		st, err := c.Status(id)
		if err != nil {
			t.Fatal(err)
		}
		if st.Leader != 2 && st.Leader != 3 {
			t.Errorf("restored member %d follows %d; want 2 or 3 (the old member 1 ran at term %d)", id, st.Leader, old.Term)
		}
		c.WaitValue(t, id, "before", []byte("backed-up"), valueTimeout)
		c.WaitValue(t, id, "restored", []byte("yes"), valueTimeout)
		if v, code, err := c.Get(id, "after"); err != nil || code != http.StatusNotFound {
			t.Errorf("restored member %d: GET after = %d %q %v; want 404, the backup had no such key", id, code, v, err)
		}
	}
	// The old member, shut out, finds no leader of its own.
	var st1 testcluster.Status
	testcluster.WaitFor(t, convergeTimeout, "the old member to know no leader", func() error {
		var err error
		if st1, err = c.Status(1); err != nil || st1.Leader != 0 {
			return fmt.Errorf("old member 1: %+v, %v", st1, err)
		}
		return nil
	})
	if st1.ClusterID != "1000" {
		t.Errorf("old member 1: cluster id %q; want 1000", st1.ClusterID)
	}
	for _, id := range []int{2, 3} {
		if st, err := c.Status(id); err != nil || st.ClusterID == "" || st.ClusterID == st1.ClusterID {
			t.Errorf("restored member %d: cluster id %q (%v); want one of its own", id, st.ClusterID, err)
		}
	}
}
