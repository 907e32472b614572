package shardgroup

import (
	"reflect"
	"testing"

	"github.com/raftkv/raftkv/shardmap"
)

// configOf builds a config of version v from bucket owners and groups.
func configOf(v uint64, buckets []uint64, groups map[uint64][]string) shardmap.Config {
	return shardmap.Config{Version: v, Buckets: buckets, Groups: groups}
}

var (
	groupsAB  = map[uint64][]string{1: {"http://a1", "http://a2"}, 2: {"http://b1"}}
	groupsB   = map[uint64][]string{2: {"http://b1"}}
	groupsABC = map[uint64][]string{1: {"http://a1", "http://a2"}, 2: {"http://b1"}, 3: {"http://c1"}}
)

// TestNextStep: which bucket is pulled from whom, and deleted where.
func TestNextStep(t *testing.T) {
	prev := configOf(4, []uint64{1, 1, 2, 0}, groupsAB)
	cur := configOf(5, []uint64{2, 1, 2, 2}, groupsB) // group 1 left; bucket 3 came from nobody
	st := ShardState{Group: 2, Prev: prev, Config: cur, Status: []BucketStatus{Pulling, NotOwned, GCing, Serving}}
	tests := []struct {
		b    int
		want step
	}{
		// The old owner is asked where Prev lists it, though it has left.
		{0, step{kind: stepPull, bucket: 0, version: 5, from: 1, servers: []string{"http://a1", "http://a2"}}},
		{1, step{kind: stepNone, bucket: 1, version: 5}},
		{2, step{kind: stepDelete, bucket: 2, version: 5, from: 2, servers: []string{"http://b1"}}},
		{3, step{kind: stepNone, bucket: 3, version: 5}},
		{-1, step{kind: stepNone, bucket: -1, version: 5}},
		{4, step{kind: stepNone, bucket: 4, version: 5}},
	}
	for _, tc := range tests {
		if got := nextStep(st, tc.b); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("nextStep(bucket %d) = %+v, want %+v", tc.b, got, tc.want)
		}
	}
	if got := pendingBuckets(st); !reflect.DeepEqual(got, []int{0, 2}) {
		t.Errorf("pendingBuckets = %v, want [0 2]", got)
	}
	// The step's servers are a copy: a caller cannot change the state's.
	s := nextStep(st, 0)
	s.servers[0] = "http://changed"
	if st.Prev.Groups[1][0] != "http://a1" {
		t.Error("nextStep's servers alias the state's config")
	}
	// A BePulling bucket needs nothing from its holder's driver: the new
	// owner pulls it and asks for its deletion.
	if got := nextStep(ShardState{Config: cur, Status: []BucketStatus{BePulling}}, 0); got.kind != stepNone {
		t.Errorf("BePulling bucket: %+v", got)
	}
}

// TestNextVersion: a group asks for and proposes config V+1 only when
// every bucket is Serving or NotOwned.
func TestNextVersion(t *testing.T) {
	tests := []struct {
		status []BucketStatus
		want   uint64
		ok     bool
	}{
		{[]BucketStatus{Serving, NotOwned, Serving}, 8, true},
		{[]BucketStatus{NotOwned, NotOwned}, 8, true},
		{[]BucketStatus{Serving, Pulling}, 0, false},
		{[]BucketStatus{BePulling, Serving}, 0, false},
		{[]BucketStatus{GCing}, 0, false},
	}
	for _, tc := range tests {
		st := ShardState{Config: shardmap.Config{Version: 7}, Status: tc.status}
		got, ok := nextVersion(st)
		if got != tc.want || ok != tc.ok || st.Settled() != tc.ok {
			t.Errorf("nextVersion(%v) = %d, %v (settled %v); want %d, %v", tc.status, got, ok, st.Settled(), tc.want, tc.ok)
		}
	}
	// A group that has no config yet asks for version 1.
	if got, ok := nextVersion(ShardState{Status: make([]BucketStatus, 4)}); got != 1 || !ok {
		t.Errorf("fresh group: %d, %v; want 1, true", got, ok)
	}
}

// TestAcceptConfig: only the asked version, with the group's bucket
// count and consistent, is proposed.
func TestAcceptConfig(t *testing.T) {
	st := ShardState{Config: configOf(4, []uint64{1, 1, 2}, groupsAB), Status: make([]BucketStatus, 3)}
	tests := []struct {
		name string
		c    shardmap.Config
		ok   bool
	}{
		{"next", configOf(5, []uint64{1, 2, 3}, groupsABC), true},
		{"older: nothing new yet", configOf(4, []uint64{1, 1, 2}, groupsAB), false},
		{"later than asked", configOf(6, []uint64{1, 2, 3}, groupsABC), false},
		{"other bucket count", configOf(5, []uint64{1, 2}, groupsAB), false},
		{"unknown group", configOf(5, []uint64{1, 2, 9}, groupsAB), false},
	}
	for _, tc := range tests {
		if why := acceptConfig(st, 5, tc.c); (why == "") != tc.ok {
			t.Errorf("%s: acceptConfig = %q, want ok %v", tc.name, why, tc.ok)
		}
	}
}

// TestStatusOf: the shard section lists owned buckets by state.
func TestStatusOf(t *testing.T) {
	st := ShardState{Group: 3, Config: shardmap.Config{Version: 9}, Status: []BucketStatus{Serving, NotOwned, Pulling, BePulling, GCing, Serving}}
	got := StatusOf(st)
	if got.Group != 3 || got.ConfigVersion != 9 ||
		!reflect.DeepEqual(got.Buckets.Serving, []int{0, 5}) || !reflect.DeepEqual(got.Buckets.Pulling, []int{2}) ||
		!reflect.DeepEqual(got.Buckets.BePulling, []int{3}) || !reflect.DeepEqual(got.Buckets.GCing, []int{4}) {
		t.Errorf("StatusOf = %+v", got)
	}
	empty := StatusOf(ShardState{Status: []BucketStatus{NotOwned}})
	if empty.Buckets.Serving == nil || empty.Buckets.Pulling == nil || empty.Buckets.BePulling == nil || empty.Buckets.GCing == nil {
		t.Errorf("empty lists must be [] in JSON, not null: %+v", empty.Buckets)
	}
}
