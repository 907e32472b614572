package shardgroup

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/raftkv/raftkv/configgroup"
	"github.com/raftkv/raftkv/httpapi"
	"github.com/raftkv/raftkv/shardmap"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
)

// The driver's unit tests run its real loops and HTTP calls against the
// test doubles of double_test.go (the Store interface in memory, the
// config group's store under the real configgroup handler).

// TestDriverJoinAndMigrate: two groups join by themselves, the second
// takes half the buckets from the first (pull, install, delete, finish),
// then the first leaves and the second takes the rest; every bucket's
// data ends in exactly one group.
func TestDriverJoinAndMigrate(t *testing.T) {
	cfg := newMemConfig(t, 4)
	cs := serveConfigGroup(t, cfg)
	g1, g2 := newTestGroup(t, 1, 4), newTestGroup(t, 2, 4)

	g1.start(t, cs.URL, nil)
	waitFor(t, "group 1 to join and serve every bucket", func() bool { return g1.settledAt(1) && g1.store.ShardState().Joined })
	if got := cfg.ConfigHistory().Latest().Groups[1]; !slices.Equal(got, []string{g1.srv.URL}) {
		t.Fatalf("group 1 joined with %v, want its member's URL %s", got, g1.srv.URL)
	}
	for b := 0; b < 4; b++ {
		g1.store.put(b, fmt.Sprintf("keys of bucket %d", b))
	}

	g2.start(t, cs.URL, nil)
	waitFor(t, "both groups to settle at config 2", func() bool { return g1.settledAt(2) && g2.settledAt(2) })
	c2 := cfg.ConfigHistory().Query(2)
	checkOwnership(t, c2, g1, g2)
	for _, b := range c2.BucketsOf(2) {
		// The new owner's log: config 2, then install, then finish, in that order.
		log := g2.store.callLog()
		i, j, k := slices.Index(log, "config 2"), slices.Index(log, fmt.Sprintf("install %d@2", b)), slices.Index(log, fmt.Sprintf("finish %d@2", b))
		if i < 0 || j < i || k < j {
			t.Errorf("group 2's log for bucket %d: %v", b, log)
		}
		if !slices.Contains(g1.store.callLog(), fmt.Sprintf("delete %d@2", b)) {
			t.Errorf("group 1 never deleted bucket %d: %v", b, g1.store.callLog())
		}
	}

	cfg.op(t, configgroup.Op{Leave: []uint64{1}})
	waitFor(t, "both groups to settle at config 3", func() bool { return g1.settledAt(3) && g2.settledAt(3) })
	c3 := cfg.ConfigHistory().Query(3)
	checkOwnership(t, c3, g1, g2)
	if st := g1.store.ShardState(); statuses(st) != "nnnn" {
		t.Errorf("group 1 still holds buckets after leaving: %s", statuses(st))
	}
}

// checkOwnership checks that each bucket's data is in the group c gives
// it to, and only there.
func checkOwnership(t *testing.T, c shardmap.Config, groups ...*testGroup) {
	t.Helper()
	for b := range c.Buckets {
		want := fmt.Sprintf("keys of bucket %d", b)
		for _, g := range groups {
			got, ok := g.store.get(b)
			switch owner := c.Owner(b) == g.gid; {
			case owner && got != want:
				t.Errorf("config %d: group %d owns bucket %d and holds %q (present %v), want %q", c.Version, g.gid, b, got, ok, want)
			case !owner && ok:
				t.Errorf("config %d: group %d still holds bucket %d", c.Version, g.gid, b)
			}
		}
	}
}

// midMigration builds two groups whose states are where a crash would
// leave them: group 1 has applied config 2 and holds the buckets it gives
// group 2 BePulling; group 2 has applied config 2 with them Pulling. No
// driver runs yet.
func midMigration(t *testing.T) (*memConfig, *httptest.Server, *testGroup, *testGroup, []int) {
	cfg := newMemConfig(t, 4)
	cs := serveConfigGroup(t, cfg)
	g1, g2 := newTestGroup(t, 1, 4), newTestGroup(t, 2, 4)
	c1 := cfg.op(t, configgroup.Op{Join: map[uint64][]string{1: {g1.srv.URL}}})
	c2 := cfg.op(t, configgroup.Op{Join: map[uint64][]string{2: {g2.srv.URL}}})
	ctx := context.Background()
	for _, g := range []*testGroup{g1, g2} {
		g.store.MarkJoined(ctx, shardmap.Config{})
		if err := g.store.ProposeConfig(ctx, c1); err != nil {
			t.Fatal(err)
		}
		if g == g1 {
			for b := 0; b < 4; b++ {
				g1.store.put(b, fmt.Sprintf("keys of bucket %d", b))
			}
		}
		if err := g.store.ProposeConfig(ctx, c2); err != nil {
			t.Fatal(err)
		}
	}
	moving := c2.BucketsOf(2)
	if len(moving) == 0 {
		t.Fatal("config 2 moves no bucket")
	}
	for _, b := range moving {
		if st := g2.store.ShardState(); st.Status[b] != Pulling {
			t.Fatalf("bucket %d of group 2 is %v, want pulling", b, st.Status[b])
		}
	}
	return cfg, cs, g1, g2, moving
}

// TestDriverResumesPull: a new leader of group 2 finds buckets Pulling
// and finishes their migration from the replicated state alone.
func TestDriverResumesPull(t *testing.T) {
	_, cs, g1, g2, moving := midMigration(t)
	g2.start(t, cs.URL, nil)
	waitFor(t, "group 2 to settle at config 2", func() bool { return g2.settledAt(2) })
	waitFor(t, "group 1 to settle at config 2", func() bool { return g1.settledAt(2) })
	for _, b := range moving {
		if got, _ := g2.store.get(b); got != fmt.Sprintf("keys of bucket %d", b) {
			t.Errorf("bucket %d holds %q", b, got)
		}
	}
}

// TestDriverResumesGC: a new leader that finds a bucket GCing (the
// install applied before the crash) only asks for the delete and
// finishes: it pulls nothing again.
func TestDriverResumesGC(t *testing.T) {
	_, cs, g1, g2, moving := midMigration(t)
	ctx := context.Background()
	b := moving[0]
	data, err := g1.store.ExportBucket(ctx, b, 2)
	if err != nil {
		t.Fatal(err)
	}
	if err := g2.store.InstallBucket(ctx, b, 2, data); err != nil {
		t.Fatal(err)
	}
	g2.start(t, cs.URL, nil)
	waitFor(t, "both groups to settle at config 2", func() bool { return g1.settledAt(2) && g2.settledAt(2) })
	installs := 0
	for _, c := range g2.store.callLog() {
		if c == fmt.Sprintf("install %d@2", b) {
			installs++
		}
	}
	if installs != 1 {
		t.Errorf("bucket %d installed %d times: %v", b, installs, g2.store.callLog())
	}
}

// TestDriverWaitsForOldOwner: while the old owner has not applied the
// config that moves a bucket, its pulls answer 409 not_ready and the new
// owner keeps asking; leadership then moves to another member of the new
// owner, which finishes once the old owner catches up.
func TestDriverWaitsForOldOwner(t *testing.T) {
	cfg := newMemConfig(t, 4)
	cs := serveConfigGroup(t, cfg)
	g1, g2 := newTestGroup(t, 1, 4), newTestGroup(t, 2, 4)
	c1 := cfg.op(t, configgroup.Op{Join: map[uint64][]string{1: {g1.srv.URL}}})
	ctx := context.Background()
	g1.store.MarkJoined(ctx, shardmap.Config{})
	if err := g1.store.ProposeConfig(ctx, c1); err != nil {
		t.Fatal(err)
	}
	for b := 0; b < 4; b++ {
		g1.store.put(b, fmt.Sprintf("keys of bucket %d", b))
	}
	// Group 2's first leader takes configs 1 and 2 (after joining), then
	// pulls from group 1, which is still at config 1: not ready.
	g2.start(t, cs.URL, nil)
	waitFor(t, "group 2 to take config 2", func() bool { return g2.store.ShardState().Config.Version == 2 })
	// Its join recorded too (MarkJoined follows the config group's answer,
	// and may come after config 2), so that the next leader does not ask
	// the config group again.
	waitFor(t, "group 2 to record its join", func() bool { return g2.store.ShardState().Joined })
	if _, err := g1.store.ExportBucket(ctx, cfg.ConfigHistory().Query(2).BucketsOf(2)[0], 2); codeOf(err) != codeNotReady {
		t.Fatalf("export before config 2: %v, want not_ready", err)
	}
	if g2.settledAt(2) {
		t.Fatal("group 2 settled before the old owner reached config 2")
	}
	// Leadership moves to another member of group 2 (another driver over
	// the same replicated state).
	g2.leader.set(false)
	other := &testGroup{gid: 2, store: g2.store, srv: g2.srv, leader: &flag{v: true}}
	other.start(t, cs.URL, nil)
	g1.start(t, cs.URL, nil)
	waitFor(t, "both groups to settle at config 2", func() bool { return g1.settledAt(2) && g2.settledAt(2) })
	checkOwnership(t, cfg.ConfigHistory().Query(2), g1, g2)
}

// TestDriverActsOnlyWhileLeading: a member that does not lead asks
// nothing of the config group and changes nothing; once it leads it
// joins, and when it stops leading it stops taking configs.
func TestDriverActsOnlyWhileLeading(t *testing.T) {
	cfg := newMemConfig(t, 4)
	cs := serveConfigGroup(t, cfg)
	g1 := newTestGroup(t, 1, 4)
	g1.leader.set(false)
	g1.start(t, cs.URL, nil)
	time.Sleep(200 * time.Millisecond) // twenty poll intervals
	if n := cfg.queryCount(); n != 0 || len(g1.store.callLog()) != 0 || cfg.ConfigHistory().Latest().Version != 0 {
		t.Fatalf("a follower's driver acted: %d queries, log %v", n, g1.store.callLog())
	}
	g1.leader.set(true)
	waitFor(t, "group 1 to join and take config 1", func() bool { return g1.settledAt(1) })
	g1.leader.set(false)
	time.Sleep(100 * time.Millisecond) // the driver notices within a poll interval
	cfg.op(t, configgroup.Op{Join: map[uint64][]string{2: {"http://127.0.0.1:1"}}})
	time.Sleep(300 * time.Millisecond)
	if v := g1.store.ShardState().Config.Version; v != 1 {
		t.Errorf("a driver that stopped leading took config %d", v)
	}
}

// TestDriverRecordsAnEarlierJoin: a leader that finds its group in the
// latest config with its members' URLs (an earlier leader's join applied,
// and that leader lost its leadership before MarkJoined) records the join
// without asking again, which would make a config version with the same
// layout; one that finds the group with other URLs joins with its own.
func TestDriverRecordsAnEarlierJoin(t *testing.T) {
	for _, same := range []bool{true, false} {
		t.Run(fmt.Sprintf("same-urls=%v", same), func(t *testing.T) {
			cfg := newMemConfig(t, 4)
			cs := serveConfigGroup(t, cfg)
			g1 := newTestGroup(t, 1, 4)
			earlier := []string{g1.srv.URL}
			if !same {
				earlier = []string{"http://127.0.0.1:1"}
			}
			cfg.op(t, configgroup.Op{Join: map[uint64][]string{1: earlier}})
			g1.start(t, cs.URL, nil)
			want := uint64(1)
			if !same {
				want = 2
			}
			waitFor(t, "group 1 to record its join and settle", func() bool {
				return g1.store.ShardState().Joined && g1.settledAt(want)
			})
			latest := cfg.ConfigHistory().Latest()
			if latest.Version != want || !slices.Equal(latest.Groups[1], []string{g1.srv.URL}) {
				t.Fatalf("latest config %d lists group 1 as %v, want version %d with %s", latest.Version, latest.Groups[1], want, g1.srv.URL)
			}
		})
	}
}

// groupOneLeft builds configs 1 (group 1 joins at old's URL), 2 (group 2
// joins) and 3 (group 1 leaves), and groups 2 and old (the group 1 that
// left) where taking them left them: every bucket group 2's, Serving
// with its keys. No driver runs yet. It returns config 3 as left.
func groupOneLeft(t *testing.T) (cfg *memConfig, cs *httptest.Server, old, g2 *testGroup, left shardmap.Config) {
	cfg = newMemConfig(t, 4)
	cs = serveConfigGroup(t, cfg)
	old, g2 = newTestGroup(t, 1, 4), newTestGroup(t, 2, 4)
	cfg.op(t, configgroup.Op{Join: map[uint64][]string{1: {old.srv.URL}}})
	cfg.op(t, configgroup.Op{Join: map[uint64][]string{2: {g2.srv.URL}}})
	left = cfg.op(t, configgroup.Op{Leave: []uint64{1}})
	for _, g := range []*testGroup{g2, old} {
		g.store.mu.Lock()
		g.store.st.Prev, g.store.st.Config, g.store.st.Joined = cfg.ConfigHistory().Query(2), left, true
		if g == g2 {
			for b := range g.store.st.Status {
				g.store.st.Status[b] = Serving
			}
		}
		g.store.mu.Unlock()
	}
	for b := 0; b < 4; b++ {
		g2.store.put(b, fmt.Sprintf("keys of bucket %d", b))
	}
	return cfg, cs, old, g2, left
}

// TestDriverJoinsUnderAnIdThatLeft: a new group under the id of a group
// that left (a new log) starts from the last config before its join
// instead of taking the configs that listed the group that left. It used
// to take them as its own: it served the old group's buckets, empty, then
// gave them away BePulling to a group long past that config, and never
// reached its own join. The group that left, its members still running,
// does not take the new group's config.
func TestDriverJoinsUnderAnIdThatLeft(t *testing.T) {
	cfg, cs, old, g2, left := groupOneLeft(t)
	g1 := newTestGroup(t, 1, 4)
	old.start(t, cs.URL, nil)
	g2.start(t, cs.URL, nil)
	g1.start(t, cs.URL, nil)
	waitFor(t, "both groups to settle at config 4", func() bool { return g1.settledAt(4) && g2.settledAt(4) })
	if v := old.store.ShardState().Config.Version; v != left.Version || len(old.store.callLog()) != 0 {
		t.Errorf("the group that left took config %d (log %v), want it still at %d", v, old.store.callLog(), left.Version)
	}
	joined := cfg.ConfigHistory().Query(4)
	if !slices.Equal(joined.Groups[1], []string{g1.srv.URL}) || len(joined.BucketsOf(1)) == 0 {
		t.Fatalf("config 4 = %+v, want group 1's join at %s with buckets", joined, g1.srv.URL)
	}
	checkOwnership(t, joined, g1, g2)
	log := g1.store.callLog()
	if !slices.Contains(log, fmt.Sprintf("joined from %d", left.Version)) || slices.Contains(log, "config 1") || slices.Contains(log, "config 2") {
		t.Errorf("group 1's log %v: want it joined from config %d and never took configs 1 and 2", log, left.Version)
	}
}

// TestDriverRefusedRejoinComesBackNew: an operator joins a group that
// left again under URLs its members do not publish; the group, still
// running, refuses that config for good (it cannot tell it from a new
// group's). Stopped and started from empty data dirs, it joins as a new
// group: from the config before the operator's join, whose config it
// takes as the start of its own, then its own join's URLs.
func TestDriverRefusedRejoinComesBackNew(t *testing.T) {
	cfg, cs, old, g2, left := groupOneLeft(t)
	wrong := cfg.op(t, configgroup.Op{Join: map[uint64][]string{1: {"http://127.0.0.1:1"}}})
	old.start(t, cs.URL, nil)
	g2.start(t, cs.URL, nil)
	waitFor(t, "group 2 to take the operator's join", func() bool { return g2.store.ShardState().Config.Version == wrong.Version })
	time.Sleep(100 * time.Millisecond) // ten poll intervals of the old group
	if v := old.store.ShardState().Config.Version; v != left.Version {
		t.Fatalf("the group that left took config %d, want it still at %d", v, left.Version)
	}
	old.leader.set(false) // stopped; a new group 1 from empty data dirs
	g1 := newTestGroup(t, 1, 4)
	g1.start(t, cs.URL, nil)
	waitFor(t, "both groups to settle at config 5", func() bool { return g1.settledAt(5) && g2.settledAt(5) })
	latest := cfg.ConfigHistory().Latest()
	if latest.Version != 5 || !slices.Equal(latest.Groups[1], []string{g1.srv.URL}) {
		t.Fatalf("latest config %+v, want 5 with group 1 at %s", latest, g1.srv.URL)
	}
	checkOwnership(t, latest, g1, g2)
	if log := g1.store.callLog(); !slices.Contains(log, fmt.Sprintf("joined from %d", left.Version)) {
		t.Errorf("group 1's log %v: want it joined from config %d", log, left.Version)
	}
}

// TestTakenID: a config that lists the group's id with none of its
// members' URLs is another group's only for a group that left (joined,
// not in its applied config, which is not where its join put it); a URL
// compares without its trailing slash and case.
func TestTakenID(t *testing.T) {
	d := &Driver{cfg: Config{Group: 1, MemberURLs: func() ([]string, bool) { return []string{"http://a:1", "http://b:1"}, true }}}
	in := shardmap.Config{Version: 2, Groups: map[uint64][]string{1: {"http://a:1"}}}
	out := shardmap.Config{Version: 3, Groups: map[uint64][]string{2: {"http://c:1"}}}
	at0 := shardmap.Config{Groups: map[uint64][]string{}}
	left := ShardState{Config: out, Prev: in, Joined: true}
	for _, tc := range []struct {
		name    string
		st      ShardState
		servers []string
		want    bool
	}{
		{"left, other URLs", left, []string{"http://x:1"}, true},
		{"left, one of its URLs", left, []string{"http://x:1", "http://b:1"}, false},
		{"left, its URL with a slash and capitals", left, []string{"HTTP://A:1/"}, false},
		{"not joined", ShardState{Config: out, Prev: in}, []string{"http://x:1"}, false},
		{"listed in its applied config", ShardState{Config: in, Prev: at0, Joined: true}, []string{"http://x:1"}, false},
		{"where its join put it", ShardState{Config: out, Prev: out, Joined: true}, []string{"http://x:1"}, false},
		{"no config taken", ShardState{Config: at0, Prev: at0, Joined: true}, []string{"http://x:1"}, false},
	} {
		c := shardmap.Config{Version: 4, Groups: map[uint64][]string{1: tc.servers}}
		if got := d.takenID(tc.st, c); got != tc.want {
			t.Errorf("%s: takenID = %v, want %v", tc.name, got, tc.want)
		}
	}
	if d.takenID(left, out) {
		t.Error("a config without the group's id: taken")
	}
}

// TestDriverRotatesMembers: a pull that fails on one member of the old
// owner (refused, or not answering) is retried on the next.
func TestDriverRotatesMembers(t *testing.T) {
	_, cs, g1, g2, moving := midMigration(t)
	refusing := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "no leader", http.StatusServiceUnavailable)
	}))
	defer refusing.Close()
	dead := httptest.NewServer(http.NotFoundHandler())
	dead.Close()
	// Group 1's members, as the previous config lists them: two that
	// fail and the real one. Each bucket's tries start at another.
	g2.store.mu.Lock()
	g2.store.st.Prev.Groups[1] = []string{refusing.URL, dead.URL, g1.srv.URL}
	g2.store.mu.Unlock()
	g2.start(t, cs.URL, nil)
	waitFor(t, "both groups to settle at config 2", func() bool { return g1.settledAt(2) && g2.settledAt(2) })
	for _, b := range moving {
		if got, _ := g2.store.get(b); got != fmt.Sprintf("keys of bucket %d", b) {
			t.Errorf("bucket %d holds %q", b, got)
		}
	}
}

// TestDriverGivesUpGCOfLeftGroup: when the old owner has left the config
// and does not answer, the new owner finishes the GC after GCGiveUp; an
// old owner still in the config is asked until it answers.
func TestDriverGivesUpGCOfLeftGroup(t *testing.T) {
	for _, left := range []bool{true, false} {
		t.Run(fmt.Sprintf("left=%v", left), func(t *testing.T) {
			_, cs, g1, g2, moving := midMigration(t)
			ctx := context.Background()
			b := moving[0]
			data, err := g1.store.ExportBucket(ctx, b, 2)
			if err != nil {
				t.Fatal(err)
			}
			if err := g2.store.InstallBucket(ctx, b, 2, data); err != nil {
				t.Fatal(err)
			}
			g1.srv.Close() // the old owner is gone
			if left {
				g2.store.mu.Lock()
				delete(g2.store.st.Config.Groups, 1)
				g2.store.mu.Unlock()
			}
			g2.start(t, cs.URL, func(c *Config) { c.GCGiveUp = 100 * time.Millisecond })
			if left {
				waitFor(t, "group 2 to finish the GC without group 1", func() bool { return g2.store.ShardState().Status[b] == Serving })
				return
			}
			time.Sleep(500 * time.Millisecond) // five times GCGiveUp
			if s := g2.store.ShardState().Status[b]; s != GCing {
				t.Errorf("bucket %d is %v; the old owner is still in the config, so it must stay gcing", b, s)
			}
		})
	}
}

// TestHandler: the migration endpoints' answers, by table.
func TestHandler(t *testing.T) {
	_, _, g1, _, moving := midMigration(t)
	b := moving[0]
	notMoving := 0
	for slices.Contains(moving, notMoving) {
		notMoving++
	}
	tests := []struct {
		method, target string
		status         int
		code           string
	}{
		{"GET", fmt.Sprintf("/shard/pull?bucket=%d&version=2", b), 200, ""},
		{"GET", fmt.Sprintf("/shard/pull?bucket=%d&version=3", b), 409, "not_ready"},
		{"GET", fmt.Sprintf("/shard/pull?bucket=%d&version=1", b), 409, "bucket_gone"},
		{"GET", fmt.Sprintf("/shard/pull?bucket=%d&version=2", notMoving), 409, "bucket_gone"},
		{"GET", "/shard/pull?bucket=4&version=2", 400, "bad_request"},
		{"GET", "/shard/pull?bucket=-1&version=2", 400, "bad_request"},
		{"GET", "/shard/pull?bucket=x&version=2", 400, "bad_request"},
		{"GET", "/shard/pull?bucket=1&version=0", 400, "bad_request"},
		{"GET", "/shard/pull?bucket=1", 400, "bad_request"},
		{"GET", "/shard/pull?bucket=1&bucket=2&version=2", 400, "bad_request"},
		{"GET", "/shard/pull?%zz", 400, "bad_request"},
		{"POST", fmt.Sprintf("/shard/pull?bucket=%d&version=2", b), 405, "method_not_allowed"},
		{"GET", fmt.Sprintf("/shard/delete?bucket=%d&version=2", b), 405, "method_not_allowed"},
		{"GET", "/shard/other", 404, "not_found"},
		{"POST", fmt.Sprintf("/shard/delete?bucket=%d&version=3", b), 409, "not_ready"},
		{"POST", fmt.Sprintf("/shard/delete?bucket=%d&version=2", b), 204, ""},
		{"POST", fmt.Sprintf("/shard/delete?bucket=%d&version=2", b), 204, ""}, // idempotent
		{"POST", fmt.Sprintf("/shard/delete?bucket=%d&version=1", b), 204, ""}, // past
		{"GET", fmt.Sprintf("/shard/pull?bucket=%d&version=2", b), 409, "bucket_gone"},
		{"POST", "/shard/state", 405, "method_not_allowed"},
	}
	for _, tc := range tests {
		req, _ := http.NewRequest(tc.method, g1.srv.URL+tc.target, nil)
		req.Header.Set("Accept", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var body [512]byte
		n, _ := resp.Body.Read(body[:])
		resp.Body.Close()
		if resp.StatusCode != tc.status {
			t.Errorf("%s %s: %d %q, want %d", tc.method, tc.target, resp.StatusCode, body[:n], tc.status)
			continue
		}
		if tc.code != "" && !strings.Contains(string(body[:n]), `"code":"`+tc.code+`"`) {
			t.Errorf("%s %s: %q lacks code %s", tc.method, tc.target, body[:n], tc.code)
		}
		if tc.status == 200 && string(body[:n]) != fmt.Sprintf("%d@2:keys of bucket %d", b, b) {
			t.Errorf("%s %s: body %q", tc.method, tc.target, body[:n])
		}
	}
	resp, err := http.Get(g1.srv.URL + "/shard/state")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var st httpapi.ShardStatus
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /shard/state: %d, %v", resp.StatusCode, err)
	}
	want := StatusOf(g1.store.ShardState()) // bucket b deleted above
	if st.Group != 1 || st.ConfigVersion != 2 || !slices.Equal(st.Buckets.BePulling, want.Buckets.BePulling) || !slices.Equal(st.Buckets.Serving, want.Buckets.Serving) {
		t.Errorf("GET /shard/state: %+v, want %+v", st, *want)
	}
}

// TestDriverRefusesARewrittenHistory: the config group, restored alone
// from an older backup, made other configs under the versions group 1
// already took. Group 1 takes none of them: its config 1 is not the
// config group's.
func TestDriverRefusesARewrittenHistory(t *testing.T) {
	cfg := newMemConfig(t, 4)
	cs := serveConfigGroup(t, cfg)
	g1 := newTestGroup(t, 1, 4)
	ctx := context.Background()
	c1 := cfg.op(t, configgroup.Op{Join: map[uint64][]string{1: {g1.srv.URL}}})
	g1.store.MarkJoined(ctx, shardmap.Config{})
	if err := g1.store.ProposeConfig(ctx, c1); err != nil {
		t.Fatal(err)
	}
	cfg.restoreTo(0)
	cfg.op(t, configgroup.Op{Join: map[uint64][]string{1: {g1.srv.URL + "/other"}}})
	cfg.op(t, configgroup.Op{Move: &configgroup.MoveOp{Bucket: 0, GID: 1}})
	core, logs := observer.New(zap.ErrorLevel)
	g1.start(t, cs.URL, func(c *Config) { c.Logger = zap.New(core) })
	waitFor(t, "group 1 to refuse config 2, or take it", func() bool {
		return logs.FilterMessageSnippet("the config group's config 1 is not the one this group applied").Len() > 0 || g1.store.ShardState().Config.Version != 1
	})
	if v := g1.store.ShardState().Config.Version; v != 1 {
		t.Errorf("group 1 took config %d of a history that is not its own", v)
	}
}
