package shardgroup

import (
	"strings"
	"testing"

	"github.com/raftkv/raftkv/shardmap"
)

func TestCheckRestored(t *testing.T) {
	cfg := func(v uint64, buckets ...uint64) shardmap.Config {
		return shardmap.Config{Version: v, Buckets: buckets, Groups: map[uint64][]string{1: {"a"}, 2: {"b"}, 3: {"c"}}}
	}
	at := cfg(4, 1, 1, 2, 3)
	for _, tc := range []struct {
		name   string
		latest shardmap.Config
		after  []shardmap.Config
		want   string // "" for no refusal
	}{
		{"no config since", at, nil, ""},
		{"only other groups' buckets moved", cfg(6, 1, 1, 3, 2), []shardmap.Config{cfg(5, 1, 1, 3, 3), cfg(6, 1, 1, 3, 2)}, ""},
		{"a bucket moved away", cfg(5, 1, 2, 2, 3), []shardmap.Config{cfg(5, 1, 2, 2, 3)}, "bucket 1 is served by group 1; config 5, made since, gives it to group 2"},
		{"a bucket moved in", cfg(5, 1, 1, 1, 3), []shardmap.Config{cfg(5, 1, 1, 1, 3)}, "bucket 2 is served by group 2; config 5, made since, gives it to group 1"},
		{"moved away and back", cfg(6, 1, 1, 2, 3), []shardmap.Config{cfg(5, 3, 1, 2, 3), cfg(6, 1, 1, 2, 3)}, "config 5, made since, gives it to group 3"},
		{"the group left", cfg(5, 2, 2, 2, 3), []shardmap.Config{cfg(5, 2, 2, 2, 3)}, "bucket 0 is served by group 1"},
		{"the config group is behind", cfg(3, 1, 1, 2, 3), nil, "the backup is of config 4, but the config group's latest is 3"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := CheckRestored(1, at, tc.latest, tc.after)
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("CheckRestored: %v; want nil", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("CheckRestored: %v; want an error with %q", err, tc.want)
			}
		})
	}
	// A backup taken before the group joined holds none of its buckets.
	if err := CheckRestored(1, cfg(0, 0, 0, 0, 0), cfg(1, 1, 1, 1, 1), []shardmap.Config{cfg(1, 1, 1, 1, 1)}); err == nil || !strings.Contains(err.Error(), "served by no group") {
		t.Errorf("CheckRestored from before the join: %v", err)
	}
}
