package shardgroup

import (
	"slices"
	"strings"
	"testing"
)

// TestInstalledBy: which buckets an old owner, holding them BePulling at
// config 5, may delete by the new owner's own account of where it is.
func TestInstalledBy(t *testing.T) {
	buckets := []int{1, 3}
	for _, tc := range []struct {
		name string
		gs   GroupState
		gap  uint64
		done []int
		why  string
	}{
		{"before the config", GroupState{Version: 4}, 0, nil, ""},
		{"at it, pulling both", GroupState{Version: 5, Pulling: []int{1, 3}}, 0, nil, ""},
		{"at it, one installed", GroupState{Version: 5, Pulling: []int{3}}, 0, []int{1}, ""},
		{"at it, both installed", GroupState{Version: 5, BePulling: []int{1}}, 0, []int{1, 3}, ""},
		{"past it, listed since", GroupState{Version: 7, Pulling: []int{1}}, 0, []int{1, 3}, ""},
		{"past it, before a gap", GroupState{Version: 7}, 8, []int{1, 3}, ""},
		{"past it, at a gap", GroupState{Version: 8}, 8, nil, "config 8 does not list it and a later one does"},
		{"past it, past a gap", GroupState{Version: 9}, 8, nil, "config 8 does not list it"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			done, why := installedBy(5, buckets, tc.gs, tc.gap)
			if !slices.Equal(done, tc.done) || (tc.why == "") != (why == "") || !strings.Contains(why, tc.why) {
				t.Errorf("installedBy: %v %q, want %v %q", done, why, tc.done, tc.why)
			}
		})
	}
}
