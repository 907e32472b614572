package shardgroup

import (
	"errors"
	"strings"
	"testing"

	"github.com/raftkv/raftkv/shardmap"
)

func TestCheckRestored(t *testing.T) {
	cfg := func(v uint64, buckets ...uint64) shardmap.Config {
		return shardmap.Config{Version: v, Buckets: buckets, Groups: map[uint64][]string{1: {"a"}, 2: {"b"}, 3: {"c"}}}
	}
	at := cfg(4, 1, 1, 2, 3) // group 1, restored, serves buckets 0 and 1
	type states map[uint64]GroupState
	for _, tc := range []struct {
		name   string
		latest shardmap.Config
		after  []shardmap.Config
		states states // groups not listed do not answer
		want   string // "" for no refusal
	}{
		{"no config since", at, nil, states{2: {Version: 4}, 3: {Version: 4}}, ""},
		{"only other groups' buckets moved", cfg(6, 1, 1, 3, 2), []shardmap.Config{cfg(5, 1, 1, 3, 3), cfg(6, 1, 1, 3, 2)},
			states{2: {Version: 6}, 3: {Version: 6}}, ""},
		{"moved away, pulled since", cfg(5, 1, 2, 2, 3), []shardmap.Config{cfg(5, 1, 2, 2, 3)},
			states{2: {Version: 5}, 3: {Version: 5}}, "moves bucket 1 from group 1 to group 2, and group 2 (at config 5) has done so"},
		{"moved away, the other group past it", cfg(5, 1, 2, 2, 3), []shardmap.Config{cfg(5, 1, 2, 2, 3)},
			states{2: {Version: 6}, 3: {Version: 5}}, "group 2 (at config 6) has done so"},
		{"moved away, not yet pulled", cfg(5, 1, 2, 2, 3), []shardmap.Config{cfg(5, 1, 2, 2, 3)},
			states{2: {Version: 5, Pulling: []int{1}}, 3: {Version: 5}}, ""},
		{"moved away, the other group before it", cfg(5, 1, 2, 2, 3), []shardmap.Config{cfg(5, 1, 2, 2, 3)},
			states{2: {Version: 4}, 3: {Version: 5}}, ""},
		{"moved in, deleted there since", cfg(5, 1, 1, 1, 3), []shardmap.Config{cfg(5, 1, 1, 1, 3)},
			states{2: {Version: 5}, 3: {Version: 5}}, "moves bucket 2 from group 2 to group 1, and group 2 (at config 5) has done so"},
		{"moved in, not yet pulled", cfg(5, 1, 1, 1, 3), []shardmap.Config{cfg(5, 1, 1, 1, 3)},
			states{2: {Version: 5, BePulling: []int{2}}, 3: {Version: 5}}, ""},
		{"moved away and back", cfg(6, 1, 1, 2, 3), []shardmap.Config{cfg(5, 3, 1, 2, 3), cfg(6, 1, 1, 2, 3)},
			states{2: {Version: 6}, 3: {Version: 6}}, "config 5, made since, moves bucket 0 from group 1 to group 3, and group 3 (at config 6) has done so"},
		{"the other group does not answer", cfg(5, 1, 2, 2, 3), []shardmap.Config{cfg(5, 1, 2, 2, 3)},
			states{3: {Version: 5}}, "group 2 cannot say whether it did"},
		{"an uninvolved group does not answer", cfg(5, 1, 1, 3, 3), []shardmap.Config{cfg(5, 1, 1, 3, 3)},
			states{2: {Version: 4}}, ""},
		{"the config group is behind", cfg(3, 1, 1, 2, 3), nil, states{2: {Version: 3}, 3: {Version: 3}},
			"the backup is of config 4, but the config group's latest is 3"},
		{"another group is past the config group", at, nil, states{2: {Version: 5}, 3: {Version: 4}},
			"group 2 is at config 5, past the config group's latest, 4"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			asked := map[uint64]int{}
			err := CheckRestored(1, at, tc.latest, tc.after, func(gid uint64) (GroupState, error) {
				asked[gid]++
				if st, ok := tc.states[gid]; ok {
					return st, nil
				}
				return GroupState{}, errors.New("no member answered")
			})
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("CheckRestored: %v; want nil", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("CheckRestored: %v; want an error with %q", err, tc.want)
			}
			for gid, n := range asked {
				if n > 1 {
					t.Errorf("group %d asked %d times", gid, n)
				}
			}
		})
	}
	// A backup taken before the group joined: its buckets came from no
	// group, so no other group holds them.
	if err := CheckRestored(1, cfg(0, 0, 0, 0, 0), cfg(1, 1, 1, 1, 1), []shardmap.Config{cfg(1, 1, 1, 1, 1)},
		func(uint64) (GroupState, error) { return GroupState{Version: 1}, nil }); err != nil {
		t.Errorf("CheckRestored from before the join: %v", err)
	}
}
