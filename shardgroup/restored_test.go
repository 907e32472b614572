package shardgroup

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/raftkv/raftkv/httpapi"
	"github.com/raftkv/raftkv/shardmap"
)

func TestCheckRestored(t *testing.T) {
	cfg := func(v uint64, buckets ...uint64) shardmap.Config {
		return shardmap.Config{Version: v, Buckets: buckets, Groups: map[uint64][]string{1: {"a"}, 2: {"b"}, 3: {"c"}}}
	}
	at := cfg(4, 1, 1, 2, 3) // group 1, restored, serves buckets 0 and 1
	settled := ShardState{Group: 1, Config: at, Prev: at, Status: []BucketStatus{Serving, Serving, NotOwned, NotOwned}}
	type states map[uint64]GroupState
	for _, tc := range []struct {
		name   string
		latest shardmap.Config
		after  []shardmap.Config
		states states      // groups not listed do not answer
		want   string      // "" for no refusal
		st     *ShardState // the restored state; nil: settled at at
	}{
		{"no config since", at, nil, states{2: {Version: 4}, 3: {Version: 4}}, "", nil},
		{"only other groups' buckets moved", cfg(6, 1, 1, 3, 2), []shardmap.Config{cfg(5, 1, 1, 3, 3), cfg(6, 1, 1, 3, 2)},
			states{2: {Version: 6}, 3: {Version: 6}}, "", nil},
		{"moved away, pulled since", cfg(5, 1, 2, 2, 3), []shardmap.Config{cfg(5, 1, 2, 2, 3)},
			states{2: {Version: 5}, 3: {Version: 5}}, "moves bucket 1 from group 1 to group 2, and group 2 (at config 5) has done so", nil},
		{"moved away, the other group past it", cfg(5, 1, 2, 2, 3), []shardmap.Config{cfg(5, 1, 2, 2, 3)},
			states{2: {Version: 6}, 3: {Version: 5}}, "group 2 (at config 6) has done so", nil},
		{"moved away, not yet pulled", cfg(5, 1, 2, 2, 3), []shardmap.Config{cfg(5, 1, 2, 2, 3)},
			states{2: {Version: 5, Pulling: []int{1}}, 3: {Version: 5}}, "", nil},
		{"moved away, the other group before it", cfg(5, 1, 2, 2, 3), []shardmap.Config{cfg(5, 1, 2, 2, 3)},
			states{2: {Version: 4}, 3: {Version: 5}}, "", nil},
		{"moved in, deleted there since", cfg(5, 1, 1, 1, 3), []shardmap.Config{cfg(5, 1, 1, 1, 3)},
			states{2: {Version: 5}, 3: {Version: 5}}, "moves bucket 2 from group 2 to group 1, and group 2 (at config 5) has done so", nil},
		{"moved in, not yet pulled", cfg(5, 1, 1, 1, 3), []shardmap.Config{cfg(5, 1, 1, 1, 3)},
			states{2: {Version: 5, BePulling: []int{2}}, 3: {Version: 5}}, "", nil},
		{"moved away and back", cfg(6, 1, 1, 2, 3), []shardmap.Config{cfg(5, 3, 1, 2, 3), cfg(6, 1, 1, 2, 3)},
			states{2: {Version: 6}, 3: {Version: 6}}, "config 5 moves bucket 0 from group 1 to group 3, and group 3 (at config 6) has done so", nil},
		{"the other group does not answer", cfg(5, 1, 2, 2, 3), []shardmap.Config{cfg(5, 1, 2, 2, 3)},
			states{3: {Version: 5}}, "group 2 cannot say whether it did", nil},
		{"an uninvolved group does not answer", cfg(5, 1, 1, 3, 3), []shardmap.Config{cfg(5, 1, 1, 3, 3)},
			states{2: {Version: 4}}, "", nil},
		{"the config group is behind", cfg(3, 1, 1, 2, 3), nil, states{2: {Version: 3}, 3: {Version: 3}},
			"the backup is of config 4, but the config group's latest is 3", nil},
		{"another group is past the config group", at, nil, states{2: {Version: 5}, 3: {Version: 4}},
			"group 2 is at config 5, past the config group's latest, 4", nil},
		// Moves under way at the backup's own config: bucket 2 coming
		// from group 2, bucket 1 going to it.
		{"pulling at the backup, the old owner still has it",
			at, nil, states{2: {Version: 4, BePulling: []int{2}}, 3: {Version: 4}}, "", &ShardState{Group: 1, Config: at, Prev: cfg(3, 1, 1, 2, 3), Status: []BucketStatus{Serving, Serving, Pulling, NotOwned}}},
		{"pulling at the backup, the old owner deleted it since",
			at, nil, states{2: {Version: 4}, 3: {Version: 4}}, "config 4 moves bucket 2 from group 2 to group 1, and group 2 (at config 4) has done so", &ShardState{Group: 1, Config: at, Prev: cfg(3, 1, 1, 2, 3), Status: []BucketStatus{Serving, Serving, Pulling, NotOwned}}},
		{"giving at the backup, not pulled yet",
			cfg(4, 1, 2, 2, 3), nil, states{2: {Version: 4, Pulling: []int{1}}, 3: {Version: 4}}, "", &ShardState{Group: 1, Config: cfg(4, 1, 2, 2, 3), Prev: at, Status: []BucketStatus{Serving, BePulling, NotOwned, NotOwned}}},
		{"giving at the backup, pulled since",
			cfg(4, 1, 2, 2, 3), nil, states{2: {Version: 5}, 3: {Version: 4}}, "moves bucket 1 from group 1 to group 2, and group 2 (at config 5) has done so", &ShardState{Group: 1, Config: cfg(4, 1, 2, 2, 3), Prev: at, Status: []BucketStatus{Serving, BePulling, NotOwned, NotOwned}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			asked := map[uint64]int{}
			st := settled
			if tc.st != nil {
				st = *tc.st
			}
			err := CheckRestored(1, st, tc.latest, tc.after, func(gid uint64, needed bool) (GroupState, error) {
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
	before := ShardState{Group: 1, Config: cfg(0, 0, 0, 0, 0), Status: make([]BucketStatus, 4)}
	if err := CheckRestored(1, before, cfg(1, 1, 1, 1, 1), []shardmap.Config{cfg(1, 1, 1, 1, 1)},
		func(uint64, bool) (GroupState, error) { return GroupState{Version: 1}, nil }); err != nil {
		t.Errorf("CheckRestored from before the join: %v", err)
	}
}

// TestAskGroupState: of a group's members, the most advanced answers win,
// and of those at one version a bucket is in flight only if every one
// says so: a member that lags must not hide a move its group made.
func TestAskGroupState(t *testing.T) {
	// member serves GET /shard/state (the group's state) and GET /status
	// (its own, which lags the group's by lag configs); an older member
	// (old) has no /shard/state, and one without a leader (leaderless)
	// answers it 503.
	type kind int
	const (
		current kind = iota
		old
		leaderless
	)
	memberOf := func(k kind, lag, gid, version uint64, pulling ...int) string {
		s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			group := &httpapi.ShardStatus{Group: gid, ConfigVersion: version, Buckets: httpapi.BucketStates{Pulling: pulling}}
			switch {
			case r.URL.Path == "/status":
				own := *group
				own.ConfigVersion -= lag
				json.NewEncoder(w).Encode(httpapi.Status{Shard: &own})
			case r.URL.Path != "/shard/state" || k == old:
				http.NotFound(w, r)
			case k == leaderless:
				http.Error(w, "no leader", http.StatusServiceUnavailable)
			default:
				json.NewEncoder(w).Encode(group)
			}
		}))
		t.Cleanup(s.Close)
		return s.URL
	}
	member := func(gid, version uint64, pulling ...int) string {
		return memberOf(current, 0, gid, version, pulling...)
	}
	down := httptest.NewServer(http.NotFoundHandler())
	down.Close()
	ctx := context.Background()
	for _, tc := range []struct {
		name    string
		servers []string
		want    GroupState
	}{
		{"a lagging member at an older config", []string{member(2, 4, 1), member(2, 5, 3), down.URL}, GroupState{Version: 5, Pulling: []int{3}}},
		{"a lagging member at the same config", []string{member(2, 5, 1, 3), member(2, 5, 3)}, GroupState{Version: 5, Pulling: []int{3}}},
		{"another group's member at a listed URL", []string{member(7, 9), member(2, 5, 3)}, GroupState{Version: 5, Pulling: []int{3}}},
		{"a member whose own state lags: the group's is read", []string{memberOf(current, 2, 2, 5, 3)}, GroupState{Version: 5, Pulling: []int{3}}},
		{"an older member: its own state", []string{memberOf(old, 2, 2, 5, 3)}, GroupState{Version: 3, Pulling: []int{3}}},
		{"a member without a leader is not heard", []string{memberOf(leaderless, 0, 2, 6), member(2, 5, 3)}, GroupState{Version: 5, Pulling: []int{3}}},
	} {
		got, err := AskGroupState(ctx, nil, 2, tc.servers, time.Second, false)
		if err != nil || got.Version != tc.want.Version || !slices.Equal(got.Pulling, tc.want.Pulling) {
			t.Errorf("%s: %+v, %v; want %+v", tc.name, got, err, tc.want)
		}
	}
	for _, servers := range [][]string{{down.URL}, {memberOf(leaderless, 0, 2, 5)}, {member(0, 0)}} {
		if st, err := AskGroupState(ctx, nil, 2, servers, time.Second, false); err == nil {
			t.Errorf("no member of group 2 answered, yet %+v was given", st)
		}
	}
	short, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	if _, err := AskGroupState(short, nil, 2, []string{down.URL}, time.Second, true); err == nil {
		t.Error("no member answered while retrying, yet a state was given")
	}
}

func TestCheckConfigRestored(t *testing.T) {
	h := shardmap.History{Configs: []shardmap.Config{
		{Version: 0, Buckets: []uint64{0, 0, 0, 0}},
		{Version: 1, Buckets: []uint64{1, 1, 1, 1}, Groups: map[uint64][]string{1: {"a"}}},
		{Version: 2, Buckets: []uint64{1, 1, 2, 2}, Groups: map[uint64][]string{1: {"a"}, 2: {"b"}}},
	}}
	type states map[uint64]GroupState
	for _, tc := range []struct {
		name       string
		states     states
		unanswered []uint64
		want       string
	}{
		{"every group at or before the latest", states{1: {Version: 2, Owned: []int{0, 1}}, 2: {Version: 1}}, nil, ""},
		{"a group that does not answer", states{1: {Version: 2, Owned: []int{0, 1}}}, []uint64{2}, ""},
		{"a group past the latest", states{1: {Version: 3, Owned: []int{0}}, 2: {Version: 2, Owned: []int{2, 3}}}, nil, "group 1 is at config 3, past the backup's latest, 2"},
		{"a group of another history", states{1: {Version: 2, Owned: []int{0, 1, 2}}, 2: {Version: 2, Owned: []int{3}}}, nil, "group 1, at config 2, holds another config 2 than the backup's"},
		{"a group of another history, its buckets the same", states{1: {Version: 2, Owned: []int{0, 1}, Digest: "0123"}, 2: {Version: 1}}, nil, "group 1, at config 2, holds another config 2 than the backup's"},
		{"a group at the backup's config, by digest", states{1: {Version: 2, Owned: []int{0, 1}, Digest: h.Configs[2].Digest()}, 2: {Version: 1}}, nil, ""},
	} {
		unanswered, err := CheckConfigRestored(h, func(gid uint64) (GroupState, error) {
			if st, ok := tc.states[gid]; ok {
				return st, nil
			}
			return GroupState{}, errors.New("no answer")
		})
		if (tc.want == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tc.want)) || !slices.Equal(unanswered, tc.unanswered) {
			t.Errorf("%s: %v, %v; want %v, %q", tc.name, unanswered, err, tc.unanswered, tc.want)
		}
	}
}
