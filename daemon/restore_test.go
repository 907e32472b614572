package daemon

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/raftkv/raftkv/backup"
	"github.com/raftkv/raftkv/httpapi"
	"github.com/raftkv/raftkv/kvstore"
	"github.com/raftkv/raftkv/raftnode"
	"github.com/raftkv/raftkv/shardmap"
	"go.uber.org/zap/zaptest"
)

// saveBackup downloads GET /snapshot<query> from m into a file and
// returns its path and header.
func saveBackup(t *testing.T, m *Member, query string) (string, backup.Header) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, m.ClientURL()+"/snapshot"+query, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET /snapshot: %v", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /snapshot: %d %v %.200s", resp.StatusCode, err, body)
	}
	h, err := backup.Verify(bytes.NewReader(body))
	if err != nil {
		t.Fatalf("GET /snapshot: %v", err)
	}
	if got := resp.Header.Get("X-Raft-Index"); got != strconv.FormatUint(h.Index, 10) {
		t.Errorf("X-Raft-Index %s, the backup says %d", got, h.Index)
	}
	path := filepath.Join(t.TempDir(), "backup")
	if err := os.WriteFile(path, body, 0o600); err != nil {
		t.Fatal(err)
	}
	return path, h
}

// restoreOne restores path as member 1 of a new one-member cluster and
// returns the Config that starts it.
func restoreOne(t *testing.T, path string) Config {
	t.Helper()
	cfg := oneMember(t, filepath.Join(t.TempDir(), "restored"))
	if _, err := Restore(RestoreConfig{Backup: path, ID: 1, Peers: cfg.Peers, DataDir: cfg.DataDir, Logger: zaptest.NewLogger(t)}); err != nil {
		t.Fatalf("Restore: %v", err)
	}
	return cfg
}

// TestSnapshotDownloadIsOptIn: a member serves GET /snapshot only when
// its Config says so.
func TestSnapshotDownloadIsOptIn(t *testing.T) {
	m := startMember(t, oneMember(t, filepath.Join(t.TempDir(), "d")))
	waitLeader(t, m)
	if code, body := call(t, m, http.MethodGet, "/snapshot", ""); code != http.StatusNotFound || !strings.Contains(body, "not enabled") {
		t.Errorf("GET /snapshot without SnapshotDownload: %d %q", code, body)
	}
}

// TestBackupRestorePlain: a plain member's backup, restored as a new
// one-member cluster elsewhere, serves the same keys and takes writes;
// its header says what it is.
func TestBackupRestorePlain(t *testing.T) {
	cfg := oneMember(t, filepath.Join(t.TempDir(), "d"))
	cfg.SnapshotDownload = true
	m := startMember(t, cfg)
	waitLeader(t, m)
	for _, k := range []string{"a", "b", "c"} {
		if code, _ := call(t, m, http.MethodPut, "/"+k, "value-"+k); code != http.StatusNoContent {
			t.Fatalf("PUT /%s: %d", k, code)
		}
	}
	path, h := saveBackup(t, m, "")
	if h.Mode != backup.ModePlain || h.Buckets != 1 || h.MemberID != 1 || h.ClusterID != raftnode.DefaultClusterID || h.Created.IsZero() {
		t.Errorf("header %+v", h)
	}
	if _, stale := saveBackup(t, m, "?level=stale"); stale.Index < h.Index {
		t.Errorf("a stale backup after a linearizable one is at index %d < %d", stale.Index, h.Index)
	}
	want := m.kv.AppliedIndex()
	m.Stop()

	rcfg := restoreOne(t, path)
	rcfg.SnapshotDownload = true
	r := startMember(t, rcfg)
	waitLeader(t, r)
	for _, k := range []string{"a", "b", "c"} {
		if code, body := call(t, r, http.MethodGet, "/"+k, ""); code != http.StatusOK || body != "value-"+k {
			t.Errorf("restored GET /%s: %d %q", k, code, body)
		}
	}
	if code, _ := call(t, r, http.MethodPut, "/d", "new"); code != http.StatusNoContent {
		t.Errorf("restored PUT /d: %d", code)
	}
	if st := status(t, r); st.SnapshotIndex != h.Index || h.Index > want {
		t.Errorf("restored snapshot index %d, backup index %d, applied before %d", st.SnapshotIndex, h.Index, want)
	}
	// The restored cluster has an id of its own, the one every member
	// restored from this file with these peers gets; its backups say so.
	wantID := raftnode.RestoredClusterID(h.Index, h.Term, h.Created.UnixNano(), rcfg.Peers)
	if got := r.node.ClusterID(); got != wantID || got == raftnode.DefaultClusterID {
		t.Errorf("restored cluster id %x; want %x", got, wantID)
	}
	if _, again := saveBackup(t, r, ""); again.ClusterID != wantID {
		t.Errorf("a backup of the restored cluster says cluster id %x; want %x", again.ClusterID, wantID)
	}
}

// TestBackupRestoreSharded: the backups of a config group member and of
// a shard group member restore into data dirs of the same modes: started
// as such, they serve the same configs and keys; started in another mode
// they refuse, as any data dir does.
func TestBackupRestoreSharded(t *testing.T) {
	conf := oneMember(t, filepath.Join(t.TempDir(), "config"))
	conf.ConfigGroup, conf.Buckets, conf.SnapshotDownload = true, 8, true
	cm := startMember(t, conf)
	waitLeader(t, cm)
	shard := oneMember(t, filepath.Join(t.TempDir(), "shard"))
	shard.Group, shard.ConfigEndpoints, shard.ConfigPollInterval, shard.SnapshotDownload = 5, []string{cm.ClientURL()}, 10*time.Millisecond, true
	sm := startMember(t, shard)
	waitLeader(t, sm)
	eventually(t, "group 5 to serve every bucket", func() bool {
		st := status(t, sm)
		return st.Shard != nil && len(st.Shard.Buckets.Serving) == 8
	})
	if code, _ := call(t, sm, http.MethodPut, "/k", "v"); code != http.StatusNoContent {
		t.Fatalf("PUT /k: %d", code)
	}
	_, confBody := call(t, cm, http.MethodGet, "/config", "")
	confPath, ch := saveBackup(t, cm, "")
	shardPath, sh := saveBackup(t, sm, "")
	if ch.Mode != backup.ModeConfig || ch.Buckets != 8 || sh.Mode != backup.ModeShard || sh.Group != 5 || sh.Buckets != 8 {
		t.Fatalf("headers %+v and %+v", ch, sh)
	}
	sm.Stop()
	cm.Stop()

	rconf := restoreOne(t, confPath)
	rconf.ConfigGroup = true
	rcm := startMember(t, rconf)
	waitLeader(t, rcm)
	if _, body := call(t, rcm, http.MethodGet, "/config", ""); body != confBody {
		t.Errorf("restored config group: %s, want %s", body, confBody)
	}

	rshard := restoreOne(t, shardPath)
	asPlain := rshard
	if _, err := Start(context.Background(), asPlain); err == nil || !strings.Contains(err.Error(), "was made for a member of shard group 5 of 8 buckets") {
		t.Errorf("restored shard dir started as a plain member: %v", err)
	}
	rshard.Group, rshard.ConfigEndpoints = 5, []string{rcm.ClientURL()}
	rsm := startMember(t, rshard)
	waitLeader(t, rsm)
	if code, body := call(t, rsm, http.MethodGet, "/k", ""); code != http.StatusOK || body != "v" {
		t.Errorf("restored shard member GET /k: %d %q", code, body)
	}
	if dm, _, err := readMode(rshard.DataDir); err != nil || dm.Restored {
		t.Errorf("restored shard data dir after its first start: %+v, %v; want the restore's mark cleared", dm, err)
	}
	var c shardmap.Config
	if err := json.Unmarshal([]byte(confBody), &c); err != nil || len(c.Buckets) != 8 {
		t.Errorf("config %s: %v", confBody, err)
	}
}

// TestRestoredShardGroupRefusesMovedBuckets: a shard group restored from
// a backup taken before another group took half of its buckets refuses
// to start, naming a bucket that moved, and keeps refusing; it would
// serve those buckets without the writes made since. The data dir stays
// marked as restored; UnsafeSkipRestoreCheck starts it unchecked and
// clears the mark.
func TestRestoredShardGroupRefusesMovedBuckets(t *testing.T) {
	t.Parallel()
	cm, shard := startConfigGroup(t, false)
	g5 := startServingAll(t, shard(5))
	path, _ := saveBackup(t, g5, "")
	g6 := startMember(t, shard(6))
	waitLeader(t, g6)
	eventually(t, "groups 5 and 6 to serve 4 buckets each", func() bool { return serving(t, g5, 4)() && serving(t, g6, 4)() })
	g5.Stop()

	restored := restoreOne(t, path)
	restored.Group, restored.ConfigEndpoints = 5, []string{cm.ClientURL()}
	for range 2 {
		m, err := Start(context.Background(), restored)
		if err == nil {
			m.Stop()
			t.Fatal("a shard group restored from before it lost buckets started")
		}
		if !strings.Contains(err.Error(), "must not serve") || !strings.Contains(err.Error(), "to group 6, and group 6 (at config") {
			t.Fatalf("Start: %v; want a refusal naming a bucket that moved to group 6", err)
		}
		if !errors.Is(err, ErrRestoreCheck) {
			t.Errorf("Start: %v; want it to wrap ErrRestoreCheck", err)
		}
	}
	if dm, _, err := readMode(restored.DataDir); err != nil || !dm.Restored {
		t.Errorf("refused data dir: %+v, %v; want it still marked as restored", dm, err)
	}
	startUnchecked(t, restored)
}

// startUnchecked starts cfg, a refused restored member, with
// UnsafeSkipRestoreCheck, and requires it to lead and to have cleared
// its data dir's mark; then it stops it and starts it again without the
// setting, which then starts as any member does.
func startUnchecked(t *testing.T, cfg Config) {
	t.Helper()
	cfg.UnsafeSkipRestoreCheck = true
	m, err := Start(context.Background(), cfg)
	if err != nil {
		t.Fatalf("Start with UnsafeSkipRestoreCheck: %v", err)
	}
	waitLeader(t, m)
	if dm, _, err := readMode(cfg.DataDir); err != nil || dm.Restored {
		t.Errorf("data dir started unchecked: %+v, %v; want the mark cleared", dm, err)
	}
	m.Stop()
	cfg.UnsafeSkipRestoreCheck = false
	waitLeader(t, startMember(t, cfg))
}

// TestRestoreRefuses: a data dir with anything in it, a damaged or
// truncated backup, and a file that is no backup are refused with one
// line, and a refused restore leaves nothing behind.
func TestRestoreRefuses(t *testing.T) {
	cfg := oneMember(t, filepath.Join(t.TempDir(), "d"))
	cfg.SnapshotDownload = true
	m := startMember(t, cfg)
	waitLeader(t, m)
	path, _ := saveBackup(t, m, "")
	good, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	m.Stop()

	write := func(name string, b []byte) string {
		p := filepath.Join(t.TempDir(), name)
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	rewrap := func(h backup.Header, state []byte) []byte {
		var buf bytes.Buffer
		w, err := backup.NewWriter(&buf, h)
		if err == nil {
			_, err = w.Write(state)
		}
		if err == nil {
			err = w.Close()
		}
		if err != nil {
			t.Fatal(err)
		}
		return buf.Bytes()
	}
	rd, err := backup.NewReader(bytes.NewReader(good))
	if err != nil {
		t.Fatal(err)
	}
	state, err := io.ReadAll(rd)
	if err != nil {
		t.Fatal(err)
	}
	asConfig := rd.Header()
	asConfig.Mode = backup.ModeConfig
	flipped := bytes.Clone(good)
	flipped[backup.HeaderSize+4+5] ^= 0x10 // in the data
	nonEmpty := t.TempDir()
	if err := os.WriteFile(filepath.Join(nonEmpty, "x"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name    string
		backup  string
		dataDir string
		want    error
		wantMsg string
	}{
		{"member data dir", path, cfg.DataDir, nil, "holds a member's state"},
		{"non-empty dir", path, nonEmpty, nil, "is not empty"},
		{"bit flip", write("flipped", flipped), "", backup.ErrChecksum, "checksum mismatch"},
		{"truncated", write("truncated", good[:len(good)-100]), "", backup.ErrTruncated, "truncated"},
		{"no trailer", write("short", good[:len(good)-backup.TrailerSize]), "", backup.ErrTruncated, "truncated"},
		{"not a backup", write("other", []byte("raftkv-kv-snapshot-2\n...")), "", backup.ErrNotBackup, "not a raftkv backup"},
		{"missing file", filepath.Join(t.TempDir(), "none"), "", nil, "no such file"},
		{"state not the store's", write("garbage", rewrap(rd.Header(), []byte("not a state"))), "", kvstore.ErrCorruptSnapshot, "corrupt snapshot"},
		{"header of another kind", write("config", rewrap(asConfig, state)), "", nil, "is of a plain member of group 0 with 1 buckets, but the header says a config group member"},
	} {
		parent := t.TempDir()
		dir := tc.dataDir
		if dir == "" {
			dir = filepath.Join(parent, "new")
		}
		_, err := Restore(RestoreConfig{Backup: tc.backup, ID: 1, Peers: []string{"http://127.0.0.1:1"}, DataDir: dir})
		switch {
		case err == nil:
			t.Errorf("%s: restored", tc.name)
			continue
		case tc.want != nil && !errors.Is(err, tc.want):
			t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
		case !strings.Contains(err.Error(), tc.wantMsg) || strings.Contains(err.Error(), "\n"):
			t.Errorf("%s: %q, want one line containing %q", tc.name, err, tc.wantMsg)
		}
		if tc.dataDir == "" {
			if ents, _ := os.ReadDir(parent); len(ents) != 0 {
				t.Errorf("%s: left %d entries behind, such as %s", tc.name, len(ents), ents[0].Name())
			}
		}
	}
	// The member's data dir, refused, still starts.
	cfg.ClientListenAddr = "127.0.0.1:0"
	again := startMember(t, cfg)
	waitLeader(t, again)
}

// TestRestoredGroupMemberStartedLater: a 3-member shard group restored
// from one backup; members 1 and 2 start, pass the check and serve; a
// config change after the restore moves some of the group's buckets to a
// new group; member 3 of the same restored group, started later, reads
// the group's state (not its backup's) and starts, where it was refused
// for good when it checked the backup's config.
func TestRestoredGroupMemberStartedLater(t *testing.T) {
	t.Parallel()
	cm, shard := startConfigGroup(t, false)
	g5 := startServingAll(t, shard(5))
	path, _ := saveBackup(t, g5, "")
	g5.Stop()

	cfgs := restoreThree(t, path)
	for i := range cfgs {
		cfgs[i].RequestTimeout = 0
		cfgs[i].Group, cfgs[i].ConfigEndpoints, cfgs[i].ConfigPollInterval = 5, []string{cm.ClientURL()}, 10*time.Millisecond
	}
	r1 := startMember(t, cfgs[0]) // the check passes: nothing moved since
	r2 := startMember(t, cfgs[1])
	eventually(t, "restored group 5 to serve every bucket", serving(t, r1, 8))
	// The restored members are on new client URLs: an operator tells the
	// config group (a join of an existing gid keeps its buckets).
	body := fmt.Sprintf(`{"groups":{"5":[%q,%q]}}`, r1.ClientURL(), r2.ClientURL())
	if code, b := call(t, cm, "POST", "/config/join", body); code != 200 {
		t.Fatalf("POST /config/join: %d %s", code, b)
	}

	// A legitimate change after the restore: a new group joins and takes
	// half of group 5's buckets.
	g6 := startMember(t, shard(6))
	waitLeader(t, g6)
	eventually(t, "groups 5 and 6 to serve 4 buckets each", func() bool { return serving(t, r1, 4)() && serving(t, g6, 4)() })

	// The third member of the restored group starts now.
	m3, err := Start(context.Background(), cfgs[2])
	if err != nil {
		t.Fatalf("member 3 of the restored (and already serving) group 5 refused: %v", err)
	}
	m3.Stop()
}

// TestJoinerOfRestoredClusterBesideAnOldMember: members 2 and 3 restored
// in place while the old member 1 still runs; a member 4 added to the
// restored cluster and started with Join asks every listed member for the
// cluster id. The old member, which knows no member 4, does not answer it
// (before, it answered first and member 4 took its id, cut off from the
// cluster that then needed 3 of 4 voters and had 2).
func TestJoinerOfRestoredClusterBesideAnOldMember(t *testing.T) {
	src := oneMember(t, filepath.Join(t.TempDir(), "src"))
	src.SnapshotDownload = true
	sm := startMember(t, src)
	waitLeader(t, sm)
	if code, _ := call(t, sm, http.MethodPut, "/k", "v"); code != http.StatusNoContent {
		t.Fatal(code)
	}
	path, _ := saveBackup(t, sm, "")
	sm.Stop()

	peers := []string{freePeerURL(t), freePeerURL(t), freePeerURL(t)}
	// The old cluster's member 1, not stopped (default id 0x1000).
	old := startMember(t, peerConfig(t, 1, peers, filepath.Join(t.TempDir(), "old1")))
	// Members 2 and 3 restored in place.
	leader := restoreMembers2And3(t, path, peers)
	p4 := freePeerURL(t)
	if code, body := call(t, leader, http.MethodPost, "/4", p4); code/100 != 2 {
		t.Fatalf("POST /4: %d %s", code, body)
	}
	m4 := startMember(t, func() Config {
		c := peerConfig(t, 4, append(append([]string{}, peers...), p4), filepath.Join(t.TempDir(), "m4"))
		c.Join = true
		return c
	}())
	if m4.node.ClusterID() != leader.node.ClusterID() || m4.node.ClusterID() == old.node.ClusterID() {
		t.Fatalf("member 4 joined the restored cluster %x with cluster id %x (the old member's is %x)",
			leader.node.ClusterID(), m4.node.ClusterID(), old.node.ClusterID())
	}
	// The restored cluster, now of 4 voters, takes writes through member 4.
	eventually(t, "a write through member 4", func() bool {
		code, _ := call(t, m4, http.MethodPut, "/after-join", "x")
		return code == http.StatusNoContent
	})
}

// TestWholeDeploymentRestoredDuringAMove: the config group and both shard
// groups are restored from backups of one moment at which group 6 had
// joined and was still to pull half of group 5's buckets (group 5 was
// down). Group 5's backup is of the config before the move, but group 6
// says it has not pulled them, and group 5 says it still holds them for
// group 6 (each answers GET /shard/state while it checks), so both start,
// and the move finishes. The check compared configs only, and refused it.
func TestWholeDeploymentRestoredDuringAMove(t *testing.T) {
	cm, shard := startConfigGroup(t, true)
	g5 := startServingAll(t, shard(5))
	if code, _ := call(t, g5, http.MethodPut, "/k", "v"); code != http.StatusNoContent {
		t.Fatalf("PUT /k: %d", code)
	}
	path5, _ := saveBackup(t, g5, "")
	addr5 := strings.TrimPrefix(g5.ClientURL(), "http://")
	g5.Stop()
	g6 := startMember(t, shard(6))
	waitLeader(t, g6)
	eventually(t, "group 6 to wait for half of group 5's buckets", func() bool {
		st := status(t, g6)
		return st.Shard != nil && st.Shard.ConfigVersion == 2 && len(st.Shard.Buckets.Pulling) == 4
	})
	path6, _ := saveBackup(t, g6, "")
	pathConf, _ := saveBackup(t, cm, "")
	addr6, addrConf := strings.TrimPrefix(g6.ClientURL(), "http://"), strings.TrimPrefix(cm.ClientURL(), "http://")
	g6.Stop()
	cm.Stop()

	// Everything restored, each member at its old client address, which
	// the configs list.
	rconf := restoreOne(t, pathConf)
	rconf.ConfigGroup, rconf.ClientListenAddr = true, addrConf
	rcm := startMember(t, rconf)
	waitLeader(t, rcm)
	// The restored groups ask each other where they are while they
	// check, so they start together, as a deployment's processes do.
	restored := func(path, addr string, gid uint64) <-chan *Member {
		c := restoreOne(t, path)
		c.Group, c.ConfigEndpoints, c.ConfigPollInterval, c.ClientListenAddr = gid, []string{rcm.ClientURL()}, 10*time.Millisecond, addr
		done := make(chan *Member, 1)
		go func() {
			m, err := Start(context.Background(), c)
			if err != nil {
				t.Errorf("restored group %d: %v", gid, err)
				done <- nil
				return
			}
			t.Cleanup(m.Stop)
			done <- m
		}()
		return done
	}
	c6, c5 := restored(path6, addr6, 6), restored(path5, addr5, 5)
	r6, r5 := <-c6, <-c5
	if r5 == nil || r6 == nil {
		t.FailNow()
	}
	eventually(t, "the move to finish: groups 5 and 6 serving 4 buckets each", func() bool {
		s5, s6 := status(t, r5), status(t, r6)
		return s5.Shard != nil && s6.Shard != nil && len(s5.Shard.Buckets.Serving) == 4 && len(s6.Shard.Buckets.Serving) == 4 &&
			len(s5.Shard.Buckets.BePulling)+len(s6.Shard.Buckets.Pulling)+len(s6.Shard.Buckets.GCing) == 0
	})
}

// TestJoinAddrLearnsClusterIDFromItsJoin: a restore in place beside a
// forgotten old member 1 that tells its id (1000) to anyone, as a binary
// of the first cluster-id commits did. Member 4 joins the restored
// cluster with --join-addr: the member that adds it names the id in its
// answer, so it neither asks the old member nor fails after it was added
// (which left the cluster a voter that never started: 2 of 4, no quorum).
func TestJoinAddrLearnsClusterIDFromItsJoin(t *testing.T) {
	src := oneMember(t, filepath.Join(t.TempDir(), "src"))
	src.SnapshotDownload = true
	sm := startMember(t, src)
	waitLeader(t, sm)
	path, _ := saveBackup(t, sm, "")
	sm.Stop()

	peers := []string{freePeerURL(t), freePeerURL(t), freePeerURL(t)}
	// Old member 1, earlier binary: answers its id (1000) to any asker.
	u, _ := url.Parse(peers[0])
	ln, err := net.Listen("tcp", u.Host)
	if err != nil {
		t.Fatal(err)
	}
	old := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/raftkv/cluster-id" {
			fmt.Fprint(w, "1000\n")
			return
		}
		http.Error(w, "cluster id mismatch", http.StatusPreconditionFailed)
	})}
	go old.Serve(ln)
	defer old.Close()

	leader := restoreMembers2And3(t, path, peers)
	eventually(t, "a write before", func() bool { c, _ := call(t, leader, http.MethodPut, "/before", "x"); return c == http.StatusNoContent })

	c := peerConfig(t, 4, append(append([]string{}, peers...), freePeerURL(t)), filepath.Join(t.TempDir(), "m4"))
	c.JoinAddr = leader.ClientURL()
	c.JoinTimeout = 3 * time.Second
	m4, err := Start(context.Background(), c)
	if err != nil {
		t.Fatalf("member 4: %v", err)
	}
	t.Cleanup(m4.Stop)
	if m4.node.ClusterID() != leader.node.ClusterID() {
		t.Fatalf("member 4 has cluster id %x; the restored cluster's is %x", m4.node.ClusterID(), leader.node.ClusterID())
	}
	eventually(t, "a write through member 4", func() bool {
		code, _ := call(t, m4, http.MethodPut, "/after", "x")
		return code == http.StatusNoContent
	})
}

// TestRestoredGroupRefusedAtOnceWhenStartedAlone: the first member of a
// 3-member restore of group 5 from before it lost buckets, started alone,
// is refused without waiting out the join timeout for a leader that needs
// a second member, and says that the group's state could not be read.
func TestRestoredGroupRefusedAtOnceWhenStartedAlone(t *testing.T) {
	t.Parallel()
	cm, shard := startConfigGroup(t, false)
	g5 := startServingAll(t, shard(5))
	path, _ := saveBackup(t, g5, "")
	g6 := startMember(t, shard(6))
	waitLeader(t, g6)
	eventually(t, "groups 5 and 6 to serve 4 buckets each", func() bool { return serving(t, g5, 4)() && serving(t, g6, 4)() })
	g5.Stop()

	peers := []string{freePeerURL(t), freePeerURL(t), freePeerURL(t)}
	dir := filepath.Join(t.TempDir(), "r1")
	if _, err := Restore(RestoreConfig{Backup: path, ID: 1, Peers: peers, DataDir: dir, Logger: zaptest.NewLogger(t)}); err != nil {
		t.Fatal(err)
	}
	cfg := Config{ID: 1, Peers: peers, DataDir: dir, ClientListenAddr: "127.0.0.1:0",
		TickInterval: 10 * time.Millisecond, Logger: zaptest.NewLogger(t),
		Group: 5, ConfigEndpoints: []string{cm.ClientURL()}, ConfigPollInterval: 10 * time.Millisecond, JoinTimeout: time.Minute}
	start := time.Now()
	m, err := Start(context.Background(), cfg)
	if err == nil {
		m.Stop()
		t.Fatal("started")
	}
	if d := time.Since(start); d > 30*time.Second || !strings.Contains(err.Error(), "the group had no leader") {
		t.Errorf("refused after %v: %v; want a refusal that says the group had no leader, well before the join timeout", d.Round(time.Second), err)
	}
}

// TestRestoredAtAMoveUnderWaySinceCarriedOut: group 6's backup is taken at
// config 2 with 4 buckets Pulling from group 5 (down). Group 5 comes back,
// group 6 pulls, installs, has group 5 delete them and serves them. Group
// 6 restored from the backup must not start: group 5 no longer has the
// buckets, and the restored group would wait for them for ever (it
// started, when the check looked only at configs after the backup's).
func TestRestoredAtAMoveUnderWaySinceCarriedOut(t *testing.T) {
	t.Parallel()
	cm, shard := startConfigGroup(t, false)
	c5 := shard(5)
	g5 := startMember(t, c5)
	waitLeader(t, g5)
	eventually(t, "group 5 to serve every bucket", serving(t, g5, 8))
	c5.ClientListenAddr = strings.TrimPrefix(g5.ClientURL(), "http://")
	g5.Stop()
	c6 := shard(6)
	g6 := startMember(t, c6)
	waitLeader(t, g6)
	eventually(t, "group 6 to wait for half of group 5's buckets", func() bool {
		st := status(t, g6)
		return st.Shard != nil && st.Shard.ConfigVersion == 2 && len(st.Shard.Buckets.Pulling) == 4
	})
	path6, _ := saveBackup(t, g6, "")
	addr6 := strings.TrimPrefix(g6.ClientURL(), "http://")
	g5 = startMember(t, c5)
	eventually(t, "the move to finish", func() bool {
		s5, s6 := status(t, g5), status(t, g6)
		return s5.Shard != nil && s6.Shard != nil && len(s5.Shard.Buckets.Serving) == 4 && len(s6.Shard.Buckets.Serving) == 4 &&
			len(s5.Shard.Buckets.BePulling) == 0
	})
	g6.Stop()

	c := restoreOne(t, path6)
	c.Group, c.ConfigEndpoints, c.ConfigPollInterval, c.ClientListenAddr = 6, []string{cm.ClientURL()}, 10*time.Millisecond, addr6
	m, err := Start(context.Background(), c)
	if err == nil {
		m.Stop()
		t.Fatal("group 6, restored from its backup taken while it waited for buckets that it has pulled and group 5 has deleted since, started")
	}
	if !strings.Contains(err.Error(), "from group 5 to group 6, and group 5 (at config 2) has done so") {
		t.Fatalf("Start: %v; want a refusal naming the move group 5 carried out", err)
	}
}

// TestRestoredGroupsAskEachOther: every group and the config group
// restored from one moment, groups 5 and 6 at config 2, the config group
// at 3, which moves bucket 0 from 5 to 6 (neither group took it yet).
// Each restored group's check asks the other where it is; each answers
// GET /status while it checks (it did not serve until its check passed,
// and both were refused).
func TestRestoredGroupsAskEachOther(t *testing.T) {
	t.Parallel()
	cm, shardOf := startConfigGroup(t, true)
	shard := func(gid uint64) Config {
		c := shardOf(gid)
		c.RequestTimeout = time.Second
		return c
	}
	g5 := startServingAll(t, shard(5))
	g6 := startMember(t, shard(6))
	waitLeader(t, g6)
	eventually(t, "4 and 4", func() bool {
		s5, s6 := status(t, g5), status(t, g6)
		return len(s5.Shard.Buckets.Serving) == 4 && len(s6.Shard.Buckets.Serving) == 4 && len(s5.Shard.Buckets.BePulling) == 0
	})
	path5, _ := saveBackup(t, g5, "")
	path6, _ := saveBackup(t, g6, "")
	addr5, addr6 := strings.TrimPrefix(g5.ClientURL(), "http://"), strings.TrimPrefix(g6.ClientURL(), "http://")
	g5.Stop()
	g6.Stop()
	// bucket 0 is group 5's (the first joiner keeps the low buckets); move it to 6.
	if code, body := call(t, cm, http.MethodPost, "/config/move", `{"bucket":0,"gid":6}`); code != http.StatusOK {
		t.Fatalf("move: %d %s", code, body)
	}
	pathConf, _ := saveBackup(t, cm, "")
	addrConf := strings.TrimPrefix(cm.ClientURL(), "http://")
	cm.Stop()

	rconf := restoreOne(t, pathConf)
	rconf.ConfigGroup, rconf.ClientListenAddr = true, addrConf
	rcm := startMember(t, rconf)
	waitLeader(t, rcm)
	type res struct {
		gid uint64
		err error
	}
	done := make(chan res, 2)
	for _, g := range []struct {
		path, addr string
		gid        uint64
	}{{path5, addr5, 5}, {path6, addr6, 6}} {
		c := restoreOne(t, g.path)
		c.Group, c.ConfigEndpoints, c.ConfigPollInterval, c.ClientListenAddr, c.RequestTimeout = g.gid, []string{rcm.ClientURL()}, 10*time.Millisecond, g.addr, time.Second
		go func() {
			m, err := Start(context.Background(), c)
			if err == nil {
				t.Cleanup(m.Stop)
			}
			done <- res{g.gid, err}
		}()
	}
	for range 2 {
		r := <-done
		if r.err != nil {
			t.Errorf("restored group %d: %v", r.gid, r.err)
		}
	}
}

// TestRestoreGateRefusesKeysUntilOpen: while a restored member checks its
// state, every key request is refused as unavailable (503), and served
// once the gate opens.
func TestRestoreGateRefusesKeysUntilOpen(t *testing.T) {
	m := startMember(t, oneMember(t, filepath.Join(t.TempDir(), "d")))
	waitLeader(t, m)
	g := &restoreGate{Store: store{m.kv, m.node}}
	ctx := context.Background()
	unavailable := func(what string, err error) {
		t.Helper()
		var u interface{ Unavailable() bool }
		if !errors.As(err, &u) || !u.Unavailable() {
			t.Errorf("%s while checking: %v; want unavailable", what, err)
		}
	}
	_, _, err := g.GetKV(ctx, "k", httpapi.ReadOptions{})
	unavailable("GetKV", err)
	_, err = g.Put(ctx, "k", []byte("v"))
	unavailable("Put", err)
	_, err = g.PutAll(ctx, map[string][]byte{"k": []byte("v")})
	unavailable("PutAll", err)
	_, err = g.Delete(ctx, "k")
	unavailable("Delete", err)
	_, err = g.Write(ctx, nil, httpapi.WriteOptions{})
	unavailable("Write", err)
	_, err = g.Txn(ctx, httpapi.Txn{}, httpapi.WriteOptions{})
	unavailable("Txn", err)
	_, err = g.List(ctx, httpapi.ListOptions{})
	unavailable("List", err)
	_, err = g.DeleteRange(ctx, httpapi.DeleteRangeOptions{})
	unavailable("DeleteRange", err)
	_, err = g.Watch(ctx, httpapi.WatchOptions{})
	unavailable("Watch", err)
	g.open.Store(true)
	if _, err := g.Put(ctx, "k", []byte("v")); err != nil {
		t.Fatalf("Put once open: %v", err)
	}
}

// startConfigGroup starts a one-member config group of 8 buckets, its
// snapshot download on when download says so, and returns it with the
// Config of a one-member shard group gid against it (snapshot download
// on).
func startConfigGroup(t *testing.T, download bool) (*Member, func(gid uint64) Config) {
	conf := oneMember(t, filepath.Join(t.TempDir(), "config"))
	conf.ConfigGroup, conf.Buckets, conf.SnapshotDownload = true, 8, download
	cm := startMember(t, conf)
	waitLeader(t, cm)
	return cm, func(gid uint64) Config {
		c := oneMember(t, filepath.Join(t.TempDir(), "shard"))
		c.Group, c.ConfigEndpoints, c.ConfigPollInterval, c.SnapshotDownload = gid, []string{cm.ClientURL()}, 10*time.Millisecond, true
		return c
	}
}

// startServingAll starts the one-member shard group cfg and waits for it
// to lead and serve all 8 buckets of startConfigGroup's config group.
func startServingAll(t *testing.T, cfg Config) *Member {
	t.Helper()
	m := startMember(t, cfg)
	waitLeader(t, m)
	eventually(t, fmt.Sprintf("group %d to serve every bucket", cfg.Group), serving(t, m, 8))
	return m
}

// serving reports whether m serves exactly n buckets with none in flight.
func serving(t *testing.T, m *Member, n int) func() bool {
	return func() bool {
		st := status(t, m)
		return st.Shard != nil && len(st.Shard.Buckets.Serving) == n && len(st.Shard.Buckets.Pulling)+len(st.Shard.Buckets.BePulling)+len(st.Shard.Buckets.GCing) == 0
	}
}

// peerConfig is the Config of member id of the cluster at peers, its data
// in dir.
func peerConfig(t *testing.T, id uint64, peers []string, dir string) Config {
	return Config{ID: id, Peers: peers, DataDir: dir, ClientListenAddr: "127.0.0.1:0",
		TickInterval: 10 * time.Millisecond, Logger: zaptest.NewLogger(t), RequestTimeout: 2 * time.Second}
}

// restoreThree restores the backup at path into the data dirs of three
// members of a new cluster and returns their Configs (peerConfig).
func restoreThree(t *testing.T, path string) []Config {
	t.Helper()
	peers := []string{freePeerURL(t), freePeerURL(t), freePeerURL(t)}
	cfgs := make([]Config, 3)
	for i := range cfgs {
		id := uint64(i + 1)
		dir := filepath.Join(t.TempDir(), fmt.Sprintf("r%d", id))
		if _, err := Restore(RestoreConfig{Backup: path, ID: id, Peers: peers, DataDir: dir, Logger: zaptest.NewLogger(t)}); err != nil {
			t.Fatal(err)
		}
		cfgs[i] = peerConfig(t, id, peers, dir)
	}
	return cfgs
}

// restoreMembers2And3 restores members 2 and 3 of the cluster at peers
// (three URLs) from the backup at path, starts them, and returns the one
// they elect: a restore in place beside a member 1 the test starts.
func restoreMembers2And3(t *testing.T, path string, peers []string) *Member {
	t.Helper()
	var restored []*Member
	for _, id := range []uint64{2, 3} {
		dir := filepath.Join(t.TempDir(), fmt.Sprintf("r%d", id))
		if _, err := Restore(RestoreConfig{Backup: path, ID: id, Peers: peers, DataDir: dir, Logger: zaptest.NewLogger(t)}); err != nil {
			t.Fatal(err)
		}
		restored = append(restored, startMember(t, peerConfig(t, id, peers, dir)))
	}
	var leader *Member
	eventually(t, "a restored leader", func() bool {
		for _, m := range restored {
			if m.node.Leader() == m.ID() {
				leader = m
				return true
			}
		}
		return false
	})
	return leader
}
