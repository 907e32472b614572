package main

import (
	"fmt"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/raftkv/raftkv/shardmap"
	"github.com/raftkv/raftkv/testcluster"
)

// shardBuckets is the test deployment's bucket count.
const shardBuckets = 8

// groupsJSON is groups -w json.
type groupsJSON struct {
	Version uint64      `json:"version"`
	Groups  []groupJSON `json:"groups"`
}

// TestSharding: the sharding verbs and routed key calls against a config
// group and two shard groups of real processes (one member each, to keep
// the machine's load down).
func TestSharding(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("raftkvctl: starts real raftkv processes")
	}
	cfgGroup := testcluster.Start(t, testcluster.Options{N: 1,
		ExtraArgs: []string{"--config-group", "--buckets", strconv.Itoa(shardBuckets)}})
	cfgGroup.WaitLeader(t, leaderTimeout)
	cfgURL := cfgGroup.ClientURL(1)
	groups := map[uint64]*testcluster.Cluster{}
	for _, gid := range []uint64{1, 2} {
		g := testcluster.Start(t, testcluster.Options{N: 1, ExtraArgs: []string{
			"--group", strconv.FormatUint(gid, 10), "--config-endpoints", cfgURL, "--config-poll-interval", "20ms"}})
		g.WaitLeader(t, leaderTimeout)
		groups[gid] = g
	}
	ctl := newCtl(t, "RAFTKVCTL_CONFIG_ENDPOINTS="+cfgURL, "RAFTKVCTL_COMMAND_TIMEOUT=30s")

	// Both groups join by themselves.
	var gs groupsJSON
	testcluster.WaitFor(t, leaderTimeout, "both groups to join", func() error {
		decode(t, ctl.ok("-w", "json", "groups"), &gs)
		if len(gs.Groups) != 2 {
			return fmt.Errorf("groups %+v", gs)
		}
		return nil
	})
	for _, g := range gs.Groups {
		if len(g.Buckets) != shardBuckets/2 || !slices.Equal(g.Servers, []string{groups[g.GID].ClientURL(1)}) {
			t.Errorf("groups -w json: %+v; want %d buckets and its member's URL", g, shardBuckets/2)
		}
	}
	out := ctl.ok("groups")
	if !strings.HasPrefix(out, fmt.Sprintf("config version %d\n", gs.Version)) ||
		!strings.Contains(out, "group 2: 4 buckets (") || !strings.Contains(out, groups[2].ClientURL(1)) {
		t.Errorf("groups printed\n%s", out)
	}
	if out := ctl.ok("-w", "table", "groups"); !strings.Contains(out, "| GROUP | BUCKETS | BUCKET IDS | SERVERS") {
		t.Errorf("groups -w table printed\n%s", out)
	}
	// The sharding verbs take the config group from --endpoints too.
	if out := newCtl(t).ok("--endpoints", cfgURL, "groups"); !strings.Contains(out, "group 1: 4 buckets") {
		t.Errorf("groups with --endpoints printed\n%s", out)
	}

	// Key calls route by bucket through the config group.
	keys := []string{"apple", "banana", "cherry", "damson", "elder", "fig"}
	for _, k := range keys {
		ctl.ok("put", k, "v-"+k)
	}
	var bk struct {
		Version uint64 `json:"version"`
		Keys    []struct {
			Key    string `json:"key"`
			Bucket int    `json:"bucket"`
			GID    uint64 `json:"gid"`
		} `json:"keys"`
	}
	decode(t, ctl.ok(append([]string{"-w", "json", "buckets"}, keys...)...), &bk)
	owners := map[uint64]bool{}
	for i, k := range bk.Keys {
		if k.Key != keys[i] || k.Bucket != shardmap.BucketOf(keys[i], shardBuckets) || k.GID == 0 {
			t.Fatalf("buckets -w json %v: %+v", keys, bk)
		}
		owners[k.GID] = true
		// The owner holds it: read from its member directly.
		if v, code, err := groups[k.GID].Get(1, k.Key); err != nil || code != 200 || string(v) != "v-"+k.Key {
			t.Errorf("group %d's member: GET %s = %d %q, %v", k.GID, k.Key, code, v, err)
		}
		if out := ctl.ok("get", k.Key); out != "v-"+k.Key+"\n" {
			t.Errorf("get %s printed %q", k.Key, out)
		}
	}
	if len(owners) != 2 {
		t.Logf("keys %v all in one group: %+v", keys, bk)
	}
	if out := ctl.ok("buckets", "apple"); out != fmt.Sprintf("apple: bucket %d, group %d\n", bk.Keys[0].Bucket, bk.Keys[0].GID) {
		t.Errorf("buckets apple printed %q", out)
	}
	out = ctl.ok("buckets")
	if !strings.HasPrefix(out, fmt.Sprintf("config version %d, %d buckets\n", bk.Version, shardBuckets)) {
		t.Errorf("buckets printed\n%s", out)
	}

	// move: apple's bucket to the other group, pinned; apple stays readable.
	b, from := bk.Keys[0].Bucket, bk.Keys[0].GID
	to := 3 - from
	out = ctl.ok("move", strconv.Itoa(b), strconv.FormatUint(to, 10))
	if !strings.HasPrefix(out, fmt.Sprintf("Bucket %d moved to group %d: config version ", b, to)) {
		t.Errorf("move printed %q", out)
	}
	if out := ctl.ok("buckets", "apple"); out != fmt.Sprintf("apple: bucket %d, group %d\n", b, to) {
		t.Errorf("after move, buckets apple printed %q", out)
	}
	if out := ctl.ok("-w", "table", "buckets"); !strings.Contains(out, fmt.Sprintf("| %d ", b)) || !strings.Contains(out, "| true ") {
		t.Errorf("buckets -w table after move printed\n%s", out)
	}
	if out := ctl.ok("get", "apple"); out != "v-apple\n" {
		t.Errorf("get apple after move printed %q", out)
	}
	testcluster.WaitFor(t, leaderTimeout, "group "+strconv.FormatUint(to, 10)+" to serve apple", func() error {
		v, code, err := groups[to].Get(1, "apple")
		if err != nil || code != 200 || string(v) != "v-apple" {
			return fmt.Errorf("GET apple: %d %q %v", code, v, err)
		}
		return nil
	})

	// leave 2, then join it again.
	if out := ctl.ok("leave", "2"); !strings.HasPrefix(out, "Group 2 left: config version ") {
		t.Errorf("leave printed %q", out)
	}
	decode(t, ctl.ok("-w", "json", "groups"), &gs)
	if len(gs.Groups) != 1 || gs.Groups[0].GID != 1 || len(gs.Groups[0].Buckets) != shardBuckets {
		t.Errorf("groups after leave: %+v", gs)
	}
	for _, k := range keys {
		if out := ctl.ok("get", k); out != "v-"+k+"\n" {
			t.Errorf("get %s after group 2 left printed %q", k, out)
		}
	}
	var cfg shardmap.Config
	decode(t, ctl.ok("-w", "json", "join", "2", groups[2].ClientURL(1)), &cfg)
	if len(cfg.GIDs()) != 2 || len(cfg.BucketsOf(2)) == 0 || cfg.Version <= gs.Version {
		t.Errorf("join -w json = %+v; want group 2 back with buckets", cfg)
	}
	for _, k := range keys {
		if out := ctl.ok("get", k); out != "v-"+k+"\n" {
			t.Errorf("get %s after group 2 joined again printed %q", k, out)
		}
	}

	// check routes its clients by bucket too.
	if out := ctl.ok("check", "--duration", "1s", "--keys", "8"); !strings.HasPrefix(out, "PASS: ") {
		t.Errorf("check through the config group printed %q", out)
	}

	// hashkv checks the config group and then each shard group.
	var hk hashkvJSON
	decode(t, ctl.ok("-w", "json", "hashkv"), &hk)
	if !hk.OK || len(hk.Groups) != 3 || !hk.Groups[0].Config || hk.Groups[1].Group != 1 || hk.Groups[2].Group != 2 {
		t.Errorf("hashkv -w json through the config group: %+v", hk)
	}
	if out := ctl.ok("hashkv"); !strings.Contains(out, "config group, index ") || !strings.Contains(out, "group 2, index ") {
		t.Errorf("hashkv through the config group printed\n%s", out)
	}

	// Membership and status of one group: --endpoints names it.
	var ml membersJSON
	decode(t, ctl.ok("--endpoints", groups[1].ClientURL(1), "-w", "json", "members", "list"), &ml)
	if len(ml.Members) != 1 || ml.Members[0].ClientURLs[0] != groups[1].ClientURL(1) {
		t.Errorf("members list of group 1: %+v", ml)
	}
	decode(t, ctl.ok("-w", "json", "members", "list"), &ml) // the config group's
	if len(ml.Members) != 1 || ml.Members[0].ClientURLs[0] != cfgURL {
		t.Errorf("members list with --config-endpoints only: %+v", ml)
	}

	// Errors.
	ctl.fails(1, "400", "move", strconv.Itoa(shardBuckets), "1")
	ctl.fails(2, `bucket "x"`, "move", "x", "1")
	ctl.fails(2, `group id "g2"`, "leave", "g2")
	ctl.fails(2, "requires at least 2 arg(s)", "join", "3")
	// A shard member is no config group: it takes /config for a key, of
	// its own bucket or another group's.
	for _, g := range groups {
		newCtl(t).fails(1, "is not a member of a config group", "--endpoints", g.ClientURL(1), "--command-timeout", "1s", "groups")
	}

	// A router serves keys, but is neither a raft member nor in the config
	// group: the verbs that need one say so.
	router := testcluster.StartRouterOver(t, []string{cfgURL})
	router.WaitReady(t, leaderTimeout)
	rt := router.URL()
	at := func(a ...string) []string {
		return append([]string{"--endpoints", rt, "--command-timeout", "5s"}, a...)
	}
	if out := newCtl(t).ok(at("get", "apple")...); out != "v-apple\n" {
		t.Errorf("get apple through the router printed %q", out)
	}
	for _, verb := range [][]string{{"status"}, {"members", "list"}} {
		newCtl(t).fails(1, "is a router, not a raft member", at(verb...)...)
	}
	for _, verb := range [][]string{{"groups"}, {"buckets", "apple"}, {"move", "1", "2"}, {"leave", "2"}} {
		newCtl(t).fails(1, "is a router, not a member of a config group", at(verb...)...)
	}
	newCtl(t).fails(1, "router: /snapshot is served by members", at("snapshot", "save", filepath.Join(t.TempDir(), "backup"))...)
}
