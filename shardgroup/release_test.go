package shardgroup

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/raftkv/raftkv/configgroup"
	"github.com/raftkv/raftkv/httpapi"
	"github.com/raftkv/raftkv/shardmap"
)

// TestInstalledBy: which group, if any, shows that bucket 1, BePulling
// at config 5 in group 1, was installed where it went, by the configs
// since and the groups' own accounts of where they are.
func TestInstalledBy(t *testing.T) {
	// cfg is config v: bucket 1's owner, and the groups listed.
	cfg := func(v, owner uint64, groups ...uint64) shardmap.Config {
		c := shardmap.Config{Version: v, Buckets: []uint64{1, owner, 1}, Groups: map[uint64][]string{}}
		for _, g := range groups {
			c.Groups[g] = []string{"http://g"}
		}
		return c
	}
	at5 := cfg(5, 2, 1, 2, 3)
	type states map[uint64]GroupState
	for _, tc := range []struct {
		name    string
		configs []shardmap.Config
		states  states
		by      uint64
		why     string
	}{
		{"no answer", []shardmap.Config{at5}, states{}, 0, ""},
		{"the new owner before the config", []shardmap.Config{at5}, states{2: {Version: 4}}, 0, ""},
		{"the new owner still pulling", []shardmap.Config{at5}, states{2: {Version: 5, Pulling: []int{1}}}, 0, ""},
		{"the new owner installed it", []shardmap.Config{at5}, states{2: {Version: 5, Pulling: []int{0}}}, 2, ""},
		{"the new owner past the config", []shardmap.Config{at5, cfg(6, 2, 1, 2, 3)}, states{2: {Version: 6, Pulling: []int{1}}}, 2, ""},
		{"the new owner left and is gone; the next one installed it",
			[]shardmap.Config{at5, cfg(6, 3, 1, 3)}, states{3: {Version: 6}}, 3, ""},
		{"the next one still pulling it from the new owner",
			[]shardmap.Config{at5, cfg(6, 3, 1, 3)}, states{3: {Version: 6, Pulling: []int{1}}}, 0, ""},
		{"the new owner past the config, its id reused since",
			[]shardmap.Config{at5, cfg(6, 3, 1, 3), cfg(7, 3, 1, 2, 3)}, states{2: {Version: 6}}, 0,
			"group 2, at config 6, left the config at 6 and was listed again"},
		{"the new owner before its gap",
			[]shardmap.Config{at5, cfg(6, 2, 1, 2, 3), cfg(7, 3, 1, 3), cfg(8, 3, 1, 2, 3)}, states{2: {Version: 6}}, 2, ""},
		{"its id reused, but the next owner installed it",
			[]shardmap.Config{at5, cfg(6, 3, 1, 3), cfg(7, 3, 1, 2, 3)}, states{2: {Version: 7}, 3: {Version: 7}}, 3, ""},
		{"given to no group since: nothing down the line counts",
			[]shardmap.Config{at5, cfg(6, 0, 1), cfg(7, 3, 1, 3)}, states{3: {Version: 7}}, 0, ""},
		{"back to this group: it cannot have given it on",
			[]shardmap.Config{at5, cfg(6, 1, 1, 2, 3), cfg(7, 3, 1, 2, 3)}, states{3: {Version: 7, Pulling: []int{1}}}, 0, ""},
		// The config group alone restored from an older backup: the
		// groups' histories are not the configs read.
		{"the new owner past the config group's latest",
			[]shardmap.Config{at5, cfg(6, 3, 1, 3)}, states{2: {Version: 7}}, 0, "group 2 is at config 7, past the config group's latest, 6"},
		{"the new owner holding other buckets than the config group's config gives it",
			[]shardmap.Config{at5, cfg(6, 2, 1, 2, 3)}, states{2: {Version: 6, Owned: []int{0, 1}}}, 0,
			"its config 6 is not the config group's"},
		{"the new owner at a config of its own version with the same buckets, but another one",
			[]shardmap.Config{at5, cfg(6, 2, 1, 2, 3)}, states{2: {Version: 6, Owned: []int{1}, Digest: cfg(6, 2, 1, 2).Digest()}}, 0,
			"its config 6 is not the config group's"},
		{"the new owner at the config group's config of its version, by digest",
			[]shardmap.Config{at5, cfg(6, 2, 1, 2, 3)}, states{2: {Version: 6, Owned: []int{1}, Digest: cfg(6, 2, 1, 2, 3).Digest()}}, 2, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for g, st := range tc.states {
				// A group holds what its config gives it, unless the
				// case says otherwise.
				if i := int(st.Version) - int(tc.configs[0].Version); st.Owned == nil && i >= 0 && i < len(tc.configs) {
					st.Owned = tc.configs[i].BucketsOf(g)
					tc.states[g] = st
				}
			}
			by, why := installedBy(1, tc.configs, tc.states)
			if by != tc.by || (tc.why == "") != (why == "") || !strings.Contains(why, tc.why) {
				t.Errorf("installedBy: %d %q, want %d %q", by, why, tc.by, tc.why)
			}
		})
	}
}

func TestArrivals(t *testing.T) {
	cfg := func(v, owner uint64) shardmap.Config {
		return shardmap.Config{Version: v, Buckets: []uint64{owner}}
	}
	got := arrivals(0, []shardmap.Config{cfg(3, 2), cfg(4, 2), cfg(5, 3), cfg(6, 2), cfg(7, 0), cfg(8, 4)})
	want := []arrival{{3, 2}, {5, 3}, {6, 2}}
	if !slices.Equal(got, want) {
		t.Errorf("arrivals: %v, want %v", got, want)
	}
}

// leftWithoutPulling: group 1 gave buckets to group 2 at config 2, and
// group 2 left at config 3 without pulling them (stopped first). It
// returns the config group, its server, group 1 and the buckets it
// holds BePulling at config 2.
func leftWithoutPulling(t *testing.T) (*memConfig, *httptest.Server, *testGroup, []int) {
	t.Helper()
	cfg, cs, g1, g2, moving := midMigration(t)
	g2.srv.Close() // stopped before it pulled
	cfg.op(t, configgroup.Op{Leave: []uint64{2}})
	return cfg, cs, g1, moving
}

// newGroupTakesID2 joins a new group 2, from empty data dirs, at config
// 4, after group 2 left at 3, and has it take config 4.
func newGroupTakesID2(t *testing.T, cfg *memConfig) {
	t.Helper()
	ctx := context.Background()
	c3, err := cfg.QueryConfig(ctx, 3, httpapi.ReadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	g := newTestGroup(t, 2, 4)
	c4 := cfg.op(t, configgroup.Op{Join: map[uint64][]string{2: {g.srv.URL}}})
	if err := g.store.MarkJoined(ctx, c3); err != nil {
		t.Fatal(err)
	}
	if err := g.store.ProposeConfig(ctx, c4); err != nil {
		t.Fatal(err)
	}
	if v := g.store.ShardState().Config.Version; v != 4 {
		t.Fatalf("the new group 2 is at config %d, want 4", v)
	}
}

// TestReleaseKeepsACopyNobodyInstalled: group 2 left without pulling
// group 1's buckets, and a new group 2, from empty data dirs, joined
// since and is past config 2. Group 1 must keep its copies: nobody has
// them, though "group 2 is past config 2" would say otherwise.
func TestReleaseKeepsACopyNobodyInstalled(t *testing.T) {
	cfg, cs, g1, moving := leftWithoutPulling(t)
	newGroupTakesID2(t, cfg)
	g1.start(t, cs.URL, func(c *Config) { c.ReleaseCheck = 5 * time.Millisecond })
	keepsAfterChecks(t, cfg, g1, moving)
}

// keepsAfterChecks waits for g1's driver to read the configs in several
// release checks, then requires it to still hold buckets BePulling with
// their data.
func keepsAfterChecks(t *testing.T, cfg *memConfig, g1 *testGroup, buckets []int) {
	t.Helper()
	from := cfg.queryCount()
	waitFor(t, "ten release checks", func() bool {
		st := g1.store.ShardState()
		return cfg.queryCount() >= from+40 || slices.ContainsFunc(buckets, func(b int) bool { return st.Status[b] != BePulling })
	})
	st := g1.store.ShardState()
	for _, b := range buckets {
		if data, ok := g1.store.get(b); st.Status[b] != BePulling || !ok || data != fmt.Sprintf("keys of bucket %d", b) {
			t.Errorf("group 1's bucket %d: %v, %q; want it kept", b, st.Status[b], data)
		}
	}
}

// TestReleaseReadsConfigsAfterTheAnswers: the new group 2, at the URL of
// the one that left without pulling, joins between the release check's
// first read of the configs and its answer, and is at config 3, the one
// before its join. Only configs read after the answer show the join, and
// with it that group 2 may be a new group.
func TestReleaseReadsConfigsAfterTheAnswers(t *testing.T) {
	cfg := newMemConfig(t, 4)
	cs := serveConfigGroup(t, cfg)
	ctx := context.Background()
	g1, newG2 := newTestGroup(t, 1, 4), newTestGroup(t, 2, 4)
	var (
		once   sync.Once
		joined atomic.Bool
	)
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/shard/state" && cfg.ConfigHistory().Latest().Version == 3 {
			once.Do(func() {
				c4 := cfg.op(t, configgroup.Op{Join: map[uint64][]string{2: {frontURL(r)}}})
				c3, _ := cfg.QueryConfig(ctx, 3, httpapi.ReadOptions{})
				if c4.Version != 4 || newG2.store.MarkJoined(ctx, c3) != nil {
					t.Error("the new group 2 did not join")
				}
				joined.Store(true)
			})
		}
		if !joined.Load() {
			http.Error(w, "the old group 2 is stopped", http.StatusServiceUnavailable)
			return
		}
		newG2.srv.Config.Handler.ServeHTTP(w, r)
	}))
	t.Cleanup(front.Close)
	c1 := cfg.op(t, configgroup.Op{Join: map[uint64][]string{1: {g1.srv.URL}}})
	c2 := cfg.op(t, configgroup.Op{Join: map[uint64][]string{2: {front.URL}}})
	g1.store.MarkJoined(ctx, shardmap.Config{})
	if err := g1.store.ProposeConfig(ctx, c1); err != nil {
		t.Fatal(err)
	}
	for b := range 4 {
		g1.store.put(b, fmt.Sprintf("keys of bucket %d", b))
	}
	if err := g1.store.ProposeConfig(ctx, c2); err != nil {
		t.Fatal(err)
	}
	moving := c2.BucketsOf(2)
	cfg.op(t, configgroup.Op{Leave: []uint64{2}}) // the old group 2 never pulled
	g1.start(t, cs.URL, func(c *Config) { c.ReleaseCheck = 5 * time.Millisecond })
	waitFor(t, "the new group 2 to join", joined.Load)
	keepsAfterChecks(t, cfg, g1, moving)
}

// frontURL is the base URL r was sent to.
func frontURL(r *http.Request) string { return "http://" + r.Host }

// TestReleaseRefusesARewrittenHistory: the config group alone restored
// from an older backup, so that the configs it answers are not those the
// groups took. Group 1 holds buckets BePulling at config 2 for group 2,
// which left without pulling them; a new group 2 took config 4.
func TestReleaseRefusesARewrittenHistory(t *testing.T) {
	for _, tc := range []struct {
		name    string
		rewrite func(*memConfig)
	}{
		{"the config group behind the new group 2", func(c *memConfig) { c.restoreTo(3) }},
		{"a config 4 of another layout", func(c *memConfig) {
			c.restoreTo(3)
			c.op(t, configgroup.Op{Join: map[uint64][]string{3: {"http://127.0.0.1:1"}}})
		}},
		{"a config 2 of another layout", func(c *memConfig) {
			c.restoreTo(1)
			c.op(t, configgroup.Op{Join: map[uint64][]string{3: {"http://127.0.0.1:1"}}})
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, cs, g1, moving := leftWithoutPulling(t)
			newGroupTakesID2(t, cfg)
			tc.rewrite(cfg)
			g1.start(t, cs.URL, func(c *Config) { c.ReleaseCheck = 5 * time.Millisecond })
			keepsAfterChecks(t, cfg, g1, moving)
		})
	}
}

// TestConfigsSince: the configs from the group's own on, and refusals
// of a config group whose history is not the one the group took.
func TestConfigsSince(t *testing.T) {
	cfg := newMemConfig(t, 4)
	cs := serveConfigGroup(t, cfg)
	var own []shardmap.Config
	for gid := uint64(1); gid <= 3; gid++ {
		own = append(own, cfg.op(t, configgroup.Op{Join: map[uint64][]string{gid: {fmt.Sprintf("http://127.0.0.1:%d", gid)}}}))
	}
	d := &Driver{cfg: Config{RequestTimeout: time.Second}.withDefaults(), eps: newEndpoints([]string{cs.URL})}
	ctx := context.Background()
	got, err := d.configsSince(ctx, own[1])
	if err != nil || len(got) != 2 || !sameConfig(got[0], own[1]) || !sameConfig(got[1], own[2]) {
		t.Fatalf("configsSince(2): %v, %v; want configs 2 and 3", got, err)
	}
	cfg.restoreTo(1)
	if _, err := d.configsSince(ctx, own[1]); err == nil || !strings.Contains(err.Error(), "latest config is 1, older than this group's, 2") {
		t.Errorf("config group behind: %v", err)
	}
	cfg.op(t, configgroup.Op{Join: map[uint64][]string{4: {"http://127.0.0.1:4"}}})
	if _, err := d.configsSince(ctx, own[1]); err == nil || !strings.Contains(err.Error(), "config 2 is not the one this group applied") {
		t.Errorf("another config 2: %v", err)
	}
}

// TestJudgeNothingOnAnotherHistory: one group's answer shows a history
// other than the configs read, so no bucket is judged, not even one
// whose own groups look right.
func TestJudgeNothingOnAnotherHistory(t *testing.T) {
	cfg := func(v uint64, owners ...uint64) shardmap.Config {
		c := shardmap.Config{Version: v, Buckets: owners, Groups: map[uint64][]string{}}
		for _, g := range owners {
			c.Groups[g] = []string{"http://g"}
		}
		return c
	}
	// Buckets 1 and 2 left group 1 at config 5, for groups 2 and 3.
	configs := []shardmap.Config{cfg(5, 1, 2, 3), cfg(6, 1, 2, 3)}
	three := GroupState{Version: 6, Owned: []int{2}}
	installed, kept, err := judge([]int{1, 2}, configs, map[uint64]GroupState{2: {Version: 6, Owned: []int{1}}, 3: three})
	if err != nil || len(kept) != 0 || installed[1] != 2 || installed[2] != 3 {
		t.Fatalf("one history: %v %v %v; want both installed", installed, kept, err)
	}
	for name, two := range map[string]GroupState{
		"past the latest":        {Version: 7, Owned: []int{1}},
		"other buckets than 6's": {Version: 6, Owned: []int{0, 1}},
	} {
		installed, kept, err := judge([]int{1, 2}, configs, map[uint64]GroupState{2: two, 3: three})
		if err == nil || len(installed) != 0 || len(kept) != 0 {
			t.Errorf("group 2 %s: %v %v %v; want nothing judged and an error", name, installed, kept, err)
		}
	}
}
