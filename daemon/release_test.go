package daemon

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/raftkv/raftkv/shardgroup"
	"github.com/raftkv/raftkv/shardmap"
)

// TestGroupThatLeftReleasesBucketsGivenUp: group 5 leaves the config and
// group 6 pulls its buckets, but group 6's deletes never reach it (a
// proxy in front of group 5 refuses them), so group 6 stops asking once
// GCGiveUp passed. Group 5 is stopped; group 7 joins, and group 6
// leaves, so that group 7 holds every bucket, and is stopped. Group 5,
// started again with its data, still holds its old buckets for group 6;
// it asks group 7, which group 6 gave them to, finds them installed
// there, deletes its copies and takes the later configs; joined again,
// it takes buckets back, and every key is read with its value. Before, it held them for ever, took no config,
// and its join froze every bucket meant for it.
func TestGroupThatLeftReleasesBucketsGivenUp(t *testing.T) {
	t.Parallel()
	cm, shard := startConfigGroup(t, false)
	var (
		target        atomic.Pointer[url.URL]
		refuseDeletes atomic.Bool
	)
	forward := &httputil.ReverseProxy{
		Rewrite:  func(r *httputil.ProxyRequest) { r.SetURL(target.Load()) },
		ErrorLog: log.New(io.Discard, "", 0), // a stopped group 5
	}
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if refuseDeletes.Load() && r.URL.Path == "/shard/delete" {
			http.Error(w, "refused by the test", http.StatusServiceUnavailable)
			return
		}
		forward.ServeHTTP(w, r)
	}))
	t.Cleanup(proxy.Close)
	point := func(m *Member) { target.Store(&url.URL{Scheme: "http", Host: m.ClientAddr().String()}) }
	quick := func(c *shardgroup.Config) { c.GCGiveUp, c.ReleaseCheck = 300*time.Millisecond, 100*time.Millisecond }
	latest := func() uint64 {
		var c shardmap.Config
		if code, body := call(t, cm, http.MethodGet, "/config", ""); code != http.StatusOK || json.Unmarshal([]byte(body), &c) != nil {
			t.Fatalf("GET /config: %d %s", code, body)
		}
		return c.Version
	}
	// settled: every group at the latest config, serving every bucket
	// between them, none in flight.
	settled := func(groups ...*Member) func() bool {
		return func() bool {
			v, n := latest(), 0
			for _, m := range groups {
				st := status(t, m).Shard
				if st == nil || st.ConfigVersion != v || len(st.Buckets.Pulling)+len(st.Buckets.BePulling)+len(st.Buckets.GCing) != 0 {
					return false
				}
				n += len(st.Buckets.Serving)
			}
			return n == 8
		}
	}

	c5 := shard(5)
	c5.AdvertiseClientURL = proxy.URL
	c5.editDriver = func(c *shardgroup.Config) { c.ReleaseCheck = time.Hour } // not before its restart
	g5 := startMember(t, c5)
	point(g5)
	waitLeader(t, g5)
	eventually(t, "group 5 to serve every bucket", serving(t, g5, 8))
	const keys = 40
	for i := range keys {
		if code, body := call(t, g5, http.MethodPut, fmt.Sprintf("/k%d", i), fmt.Sprintf("v%d", i)); code != http.StatusNoContent {
			t.Fatalf("PUT /k%d: %d %s", i, code, body)
		}
	}
	c6 := shard(6)
	c6.editDriver = quick
	g6 := startMember(t, c6)
	waitLeader(t, g6)
	eventually(t, "groups 5 and 6 to serve 4 buckets each", func() bool { return serving(t, g5, 4)() && serving(t, g6, 4)() })

	refuseDeletes.Store(true)
	if code, body := call(t, cm, http.MethodPost, "/config/leave", `{"gids":[5]}`); code != http.StatusOK {
		t.Fatalf("POST /config/leave: %d %s", code, body)
	}
	left := latest()
	eventually(t, "group 6 to install group 5's buckets", func() bool {
		b := status(t, g6).Shard.Buckets
		return len(b.Serving)+len(b.GCing) == 8
	})
	g5.Stop()
	eventually(t, "group 6 to stop asking group 5 to delete and serve every bucket", serving(t, g6, 8))
	c7 := shard(7)
	c7.editDriver = quick
	g7 := startMember(t, c7)
	waitLeader(t, g7)
	eventually(t, "group 7 to join", func() bool { return latest() > left })
	eventually(t, "groups 6 and 7 to settle", settled(g6, g7))
	if code, body := call(t, cm, http.MethodPost, "/config/leave", `{"gids":[6]}`); code != http.StatusOK {
		t.Fatalf("POST /config/leave: %d %s", code, body)
	}
	eventually(t, "group 7 to take every bucket from group 6", settled(g6, g7))
	g6.Stop() // a group that left is shut down

	c5.editDriver = quick
	g5 = startMember(t, c5)
	point(g5)
	eventually(t, "group 5 to delete the buckets group 6 installed and take the latest config", func() bool {
		st := status(t, g5).Shard
		return st != nil && st.ConfigVersion == latest() && len(st.Buckets.Serving)+len(st.Buckets.BePulling) == 0
	})

	refuseDeletes.Store(false)
	if code, body := call(t, cm, http.MethodPost, "/config/join", fmt.Sprintf(`{"groups":{"5":[%q]}}`, proxy.URL)); code != http.StatusOK {
		t.Fatalf("POST /config/join: %d %s", code, body)
	}
	eventually(t, "groups 5 and 7 to settle", settled(g5, g7))
	if len(status(t, g5).Shard.Buckets.Serving) == 0 {
		t.Error("group 5, joined again, serves no bucket")
	}
	for i := range keys {
		want := fmt.Sprintf("v%d", i)
		for _, m := range []*Member{g5, g7} { // one serves it, the other forwards
			if code, body := call(t, m, http.MethodGet, fmt.Sprintf("/k%d", i), ""); code != http.StatusOK || body != want {
				t.Errorf("GET /k%d from group %d: %d %q, want %q", i, m.cfg.Group, code, body, want)
			}
		}
	}
}

// TestRestoredConfigGroupRefusesAGroupPastIt: the config group restored
// alone from a backup taken before group 6 joined refuses to serve, as
// group 5 is past the backup's latest config; the configs it would make
// next would reuse versions group 5 took. Its data dir stays marked, and
// UnsafeSkipRestoreCheck starts it unchecked.
func TestRestoredConfigGroupRefusesAGroupPastIt(t *testing.T) {
	t.Parallel()
	cm, shard := startConfigGroup(t, true)
	g5 := startServingAll(t, shard(5))
	path, _ := saveBackup(t, cm, "")
	g6 := startMember(t, shard(6))
	waitLeader(t, g6)
	eventually(t, "groups 5 and 6 to serve 4 buckets each", func() bool { return serving(t, g5, 4)() && serving(t, g6, 4)() })
	cm.Stop()

	restored := restoreOne(t, path)
	restored.ConfigGroup = true
	m, err := Start(context.Background(), restored)
	if err == nil {
		m.Stop()
		t.Fatal("a config group restored from before groups took later configs started")
	}
	if !strings.Contains(err.Error(), "must not serve") || !strings.Contains(err.Error(), "group 5 is at config 2, past the backup's latest, 1") {
		t.Fatalf("Start: %v; want a refusal naming group 5", err)
	}
	if !errors.Is(err, ErrRestoreCheck) {
		t.Errorf("Start: %v; want it to wrap ErrRestoreCheck", err)
	}
	if dm, _, err := readMode(restored.DataDir); err != nil || !dm.Restored {
		t.Errorf("refused data dir: %+v, %v; want it still marked as restored", dm, err)
	}
	startUnchecked(t, restored)
}

// TestRestoredConfigMemberStartedLater: members 1 and 2 of a config
// group restored from one backup pass and serve, and the groups take a
// config the backup lacks. Member 3, started later, and member 1 started
// again with its mark left in place (as a binary that did not know the
// mark leaves it) find the group's own configs through its leader and
// pass.
func TestRestoredConfigMemberStartedLater(t *testing.T) {
	t.Parallel()
	cm, shard := startConfigGroup(t, true)
	g5 := startServingAll(t, shard(5))
	path, _ := saveBackup(t, cm, "")
	cm.Stop()

	cfgs := restoreThree(t, path)
	for i := range cfgs {
		cfgs[i].ConfigGroup = true
	}
	// Member 1 takes the old member's client address, which group 5 asks.
	cfgs[0].ClientListenAddr = cm.ClientAddr().String()
	marked, _, err := readMode(cfgs[0].DataDir)
	if err != nil || !marked.Restored {
		t.Fatalf("restored config data dir: %+v, %v; want it marked", marked, err)
	}
	r1, r2 := startMember(t, cfgs[0]), startMember(t, cfgs[1])
	eventually(t, "a leader of the restored config group", func() bool { return r1.node.Leader() != 0 })
	c6 := shard(6)
	c6.ConfigEndpoints = []string{r1.ClientURL(), r2.ClientURL()}
	g6 := startMember(t, c6)
	waitLeader(t, g6)
	eventually(t, "groups 5 and 6 to serve 4 buckets each", func() bool { return serving(t, g5, 4)() && serving(t, g6, 4)() })

	startMember(t, cfgs[2])
	r1.Stop()
	if err := writeMode(cfgs[0].DataDir, marked); err != nil {
		t.Fatal(err)
	}
	startMember(t, cfgs[0])
	for _, c := range cfgs {
		if dm, _, err := readMode(c.DataDir); err != nil || dm.Restored {
			t.Errorf("data dir %s: %+v, %v; want the mark cleared", c.DataDir, dm, err)
		}
	}
}

// TestCheckConfigHistoryPassesOverSilentGroups: groups that cannot be
// reached are asked all at once, passed over and named, twice with one
// map of answers (the second check of a late member); run under the race
// detector, it also checks that the answers are gathered safely.
func TestCheckConfigHistoryPassesOverSilentGroups(t *testing.T) {
	h := shardmap.History{Configs: []shardmap.Config{{Buckets: make([]uint64, 8), Groups: map[uint64][]string{}}}}
	last := shardmap.Config{Version: 1, Buckets: make([]uint64, 8), Groups: map[uint64][]string{}}
	for gid := uint64(1); gid <= 8; gid++ {
		last.Groups[gid] = []string{"http://" + closedAddr(t)}
		last.Buckets[gid-1] = gid
	}
	h.Configs = append(h.Configs, last)
	m := &Member{cfg: Config{RequestTimeout: time.Second, JoinTimeout: 10 * time.Second}, httpc: &http.Client{}}
	answers := map[uint64]groupAnswer{}
	for range 2 {
		unanswered, err := m.checkConfigHistory(context.Background(), h, answers)
		if err != nil || len(unanswered) != 8 {
			t.Fatalf("checkConfigHistory: %v, %v; want all 8 groups passed over", unanswered, err)
		}
	}
}

// closedAddr is a loopback address nothing listens on.
func closedAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}
