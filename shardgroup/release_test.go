package shardgroup

import (
	"context"
	"fmt"
	"net/http/httptest"
	"slices"
	"strings"
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
	} {
		t.Run(tc.name, func(t *testing.T) {
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

// TestReleaseKeepsACopyNobodyInstalled: group 2 left without pulling
// group 1's buckets, and a new group 2, from empty data dirs, joined
// since and is past config 2. Group 1 must keep its copies: nobody has
// them, though "group 2 is past config 2" would say otherwise.
func TestReleaseKeepsACopyNobodyInstalled(t *testing.T) {
	cfg, cs, g1, moving := leftWithoutPulling(t)
	ctx := context.Background()
	c3, err := cfg.QueryConfig(ctx, 3, httpapi.ReadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	newG2 := newTestGroup(t, 2, 4)
	c4 := cfg.op(t, configgroup.Op{Join: map[uint64][]string{2: {newG2.srv.URL}}})
	if err := newG2.store.MarkJoined(ctx, c3); err != nil {
		t.Fatal(err)
	}
	if err := newG2.store.ProposeConfig(ctx, c4); err != nil {
		t.Fatal(err)
	}
	if v := newG2.store.ShardState().Config.Version; v != 4 {
		t.Fatalf("the new group 2 is at config %d, want 4", v)
	}
	g1.start(t, cs.URL, func(c *Config) { c.ReleaseCheck = 5 * time.Millisecond })
	time.Sleep(300 * time.Millisecond) // sixty checks
	st := g1.store.ShardState()
	for _, b := range moving {
		if data, ok := g1.store.get(b); st.Status[b] != BePulling || !ok || data != fmt.Sprintf("keys of bucket %d", b) {
			t.Errorf("group 1's bucket %d: %v, %q", b, st.Status[b], data)
		}
	}
}
