package ui

import (
	"encoding/json"
	"math"
	"reflect"
	"strings"
	"testing"
)

// TestStatusSections decodes the /status sections of sharded members, as
// the sharding contract writes them, and their absence on a plain member.
func TestStatusSections(t *testing.T) {
	tests := []struct {
		name       string
		body       string
		wantShard  *ShardStatus
		wantConfig *ConfigStatus
	}{
		{"plain member", `{"id":1,"leader":1,"term":2,"members":[]}`, nil, nil},
		{"shard member",
			`{"id":2,"leader":1,"term":3,"shard":{"group":7,"configVersion":5,"buckets":{"serving":[0,1,2],"pulling":[3],"bePulling":[9],"gcing":[]}}}`,
			&ShardStatus{Group: 7, ConfigVersion: 5, Buckets: BucketsByState{Serving: []int{0, 1, 2}, Pulling: []int{3}, BePulling: []int{9}, GCing: []int{}}}, nil},
		{"config group member",
			`{"id":1,"leader":1,"term":1,"config":{"version":6,"buckets":256,"groups":{"1":85,"2":86,"3":85}}}`,
			nil, &ConfigStatus{Version: 6, Buckets: 256, Groups: map[string]int{"1": 85, "2": 86, "3": 85}}},
		{"unknown fields ignored", `{"id":1,"shard":{"group":1,"future":true},"other":{}}`, &ShardStatus{Group: 1}, nil},
	}
	for _, tc := range tests {
		var st status
		if err := json.Unmarshal([]byte(tc.body), &st); err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		if !reflect.DeepEqual(st.Shard, tc.wantShard) || !reflect.DeepEqual(st.Config, tc.wantConfig) {
			t.Errorf("%s: shard %+v config %+v; want %+v %+v", tc.name, st.Shard, st.Config, tc.wantShard, tc.wantConfig)
		}
	}
	// The config group's GET /config, in shardmap's (eraft's) form.
	var sc shardConfig
	if err := json.Unmarshal([]byte(`{"Version":6,"Buckets":[1,1,0],"Groups":{"1":["http://127.0.0.1:6088"]}}`), &sc); err != nil {
		t.Fatal(err)
	}
	if want := (shardConfig{Version: 6, Buckets: []uint64{1, 1, 0}, Groups: map[string][]string{"1": {"http://127.0.0.1:6088"}}}); !reflect.DeepEqual(sc, want) {
		t.Errorf("config %+v, want %+v", sc, want)
	}
}

func TestRole(t *testing.T) {
	tests := []struct {
		st      status
		learner bool
		want    string
	}{
		{status{ID: 1, Leader: 1}, false, "leader"},
		{status{ID: 2, Leader: 1}, false, "follower"},
		{status{ID: 4, Leader: 1}, true, "learner"},
		{status{ID: 2, Leader: 0}, false, "no-leader"},
		{status{ID: 4, Leader: 0}, true, "learner"},
	}
	for _, tc := range tests {
		if got := role(tc.st, tc.learner); got != tc.want {
			t.Errorf("role(%+v, learner %v) = %q, want %q", tc.st, tc.learner, got, tc.want)
		}
	}
}

func TestParseCounters(t *testing.T) {
	const text = `# HELP raftkv_kv_writes_total Writes (proposals) by outcome.
# TYPE raftkv_kv_writes_total counter
raftkv_kv_writes_total{result="committed"} 42
raftkv_kv_writes_total{result="timeout"} 3
# TYPE raftkv_kv_reads_total counter
raftkv_kv_reads_total{level="linearizable"} 7
raftkv_kv_reads_total{level="stale"} 5
# TYPE raftkv_raft_leader_changes_seen_total counter
raftkv_raft_leader_changes_seen_total 2
# TYPE go_goroutines gauge
go_goroutines 12
`
	c, err := parseCounters(strings.NewReader(text))
	if err != nil {
		t.Fatal(err)
	}
	if want := (counters{Writes: 42, Reads: 12, LeaderChanges: 2}); c != want {
		t.Errorf("counters %+v, want %+v", c, want)
	}
	// A member without the reads counter: unknown, not zero.
	c, err = parseCounters(strings.NewReader("raftkv_kv_writes_total{result=\"committed\"} 1\n"))
	if err != nil {
		t.Fatal(err)
	}
	if c.Writes != 1 || !math.IsNaN(c.Reads) || !math.IsNaN(c.LeaderChanges) {
		t.Errorf("counters %+v, want writes 1 and the rest NaN", c)
	}
	if _, err := parseCounters(strings.NewReader("not { metrics\n")); err == nil {
		t.Error("bad metrics text parsed without error")
	}
}
