package daemon

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/raftkv/raftkv/httpapi"
	"github.com/raftkv/raftkv/internal/testutil"
	"github.com/raftkv/raftkv/shardmap"
)

// startMember starts cfg and registers its Stop.
func startMember(t *testing.T, cfg Config) *Member {
	t.Helper()
	m, err := Start(context.Background(), cfg)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(m.Stop)
	return m
}

// status reads m's GET /status.
func status(t *testing.T, m *Member) httpapi.Status {
	t.Helper()
	code, body := call(t, m, http.MethodGet, "/status", "")
	var st httpapi.Status
	if code != http.StatusOK || json.Unmarshal([]byte(body), &st) != nil {
		t.Fatalf("GET /status: %d %s", code, body)
	}
	return st
}

// eventually polls cond until it holds or 20 seconds pass.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	testutil.WaitFor(t, 20*time.Second, what, func() error {
		if !cond() {
			return errors.New("not yet")
		}
		return nil
	})
}

// TestShardedMembers: a one-member config group and a one-member shard
// group in process: the shard member learns the bucket count, joins by
// itself, serves keys and reports its buckets; the config member serves
// the config and refuses keys with a 400.
func TestShardedMembers(t *testing.T) {
	cfgMember := oneMember(t, filepath.Join(t.TempDir(), "config"))
	cfgMember.ConfigGroup, cfgMember.Buckets = true, 8
	cm := startMember(t, cfgMember)
	waitLeader(t, cm)

	shard := oneMember(t, filepath.Join(t.TempDir(), "shard"))
	shard.Group, shard.ConfigEndpoints, shard.ConfigPollInterval = 5, []string{cm.ClientURL()}, 10*time.Millisecond
	sm := startMember(t, shard)
	waitLeader(t, sm)
	eventually(t, "group 5 to join and serve every bucket", func() bool {
		st := status(t, sm)
		return st.Shard != nil && len(st.Shard.Buckets.Serving) == 8
	})
	if code, body := call(t, sm, http.MethodPut, "/k", "v"); code != http.StatusNoContent {
		t.Fatalf("PUT /k on the shard member: %d %s", code, body)
	}
	if code, body := call(t, sm, http.MethodGet, "/k", ""); code != http.StatusOK || body != "v" {
		t.Fatalf("GET /k on the shard member: %d %q", code, body)
	}

	code, body := call(t, cm, http.MethodGet, "/config", "")
	var c shardmap.Config
	if code != http.StatusOK || json.Unmarshal([]byte(body), &c) != nil || len(c.Buckets) != 8 || len(c.Groups[5]) != 1 || c.Groups[5][0] != sm.ClientURL() {
		t.Fatalf("GET /config: %d %s", code, body)
	}
	if st := status(t, cm); st.Config == nil || st.Config.Buckets != 8 || st.Config.Groups["5"] != 8 || st.Shard != nil {
		t.Errorf("config member's status: %+v", st)
	}
	if code, body := call(t, cm, http.MethodPut, "/k", "v"); code != http.StatusBadRequest || !strings.Contains(body, "serves no keys") {
		t.Errorf("PUT /k on the config member: %d %q", code, body)
	}
	if code, body := call(t, cm, http.MethodGet, "/key/k", ""); code != http.StatusBadRequest || !strings.Contains(body, "serves no keys") {
		t.Errorf("GET /key/k on the config member: %d %q", code, body)
	}
}

// TestDataDirModes: a data dir made for one mode refuses to start a
// member of another, with one line that says what it was made for.
func TestDataDirModes(t *testing.T) {
	root := t.TempDir()
	restart := func(cfg Config) error {
		t.Helper()
		cfg.ClientListenAddr = "127.0.0.1:0"
		m, err := Start(context.Background(), cfg)
		if err == nil {
			m.Stop()
		}
		return err
	}
	expect := func(what string, err error, want string) {
		t.Helper()
		if err == nil || !strings.Contains(err.Error(), want) || strings.Contains(err.Error(), "\n") {
			t.Errorf("%s: %v, want one line containing %q", what, err, want)
		}
	}

	plain := oneMember(t, filepath.Join(root, "plain"))
	m := startMember(t, plain)
	waitLeader(t, m)
	m.Stop()
	asConfig := plain
	asConfig.ConfigGroup = true
	expect("plain dir as config member", restart(asConfig), "holds a plain member's state")

	conf := oneMember(t, filepath.Join(root, "config"))
	conf.ConfigGroup, conf.Buckets = true, 8
	cm := startMember(t, conf)
	waitLeader(t, cm)
	cm.Stop()
	conf.Buckets = 0 // the data dir's count
	if err := restart(conf); err != nil {
		t.Fatalf("config member without a bucket count: %v", err)
	}
	conf.Buckets = 16
	expect("config dir with another count", restart(conf), "was made for a config group of 8 buckets, not 16")
	asPlain := conf
	asPlain.ConfigGroup, asPlain.Buckets = false, 0
	expect("config dir as plain member", restart(asPlain), "was made for a config group member of 8 buckets; start it with --config-group")

	// A running config group of 8 buckets, and a shard member of group 1.
	conf.Buckets = 8
	conf.ClientListenAddr = "127.0.0.1:0"
	cm = startMember(t, conf)
	waitLeader(t, cm)
	shard := oneMember(t, filepath.Join(root, "shard"))
	shard.Group, shard.ConfigEndpoints = 1, []string{cm.ClientURL()}
	sm := startMember(t, shard)
	waitLeader(t, sm)
	sm.Stop()
	other := shard
	other.Group = 2
	expect("group 1's dir as group 2", restart(other), "was made for shard group 1, not 2")

	// Another config group, of 16 buckets: the shard member refuses it.
	big := oneMember(t, filepath.Join(root, "config16"))
	big.ConfigGroup, big.Buckets = true, 16
	bm := startMember(t, big)
	moved := shard
	moved.ConfigEndpoints = []string{bm.ClientURL()}
	expect("8-bucket shard dir with a 16-bucket config group", restart(moved), "was made for 8 buckets, but the config group at")

	// With the config group down, a member with state restarts from it.
	cm.Stop()
	bm.Stop()
	if err := restart(shard); err != nil {
		t.Errorf("shard member with state, config group down: %v", err)
	}
	// A new one cannot learn its bucket count.
	fresh := oneMember(t, filepath.Join(root, "fresh"))
	fresh.Group, fresh.ConfigEndpoints, fresh.JoinTimeout = 1, []string{cm.ClientURL()}, 300*time.Millisecond
	expect("new shard member, config group down", restart(fresh), "cannot learn the bucket count from the config group")
}
