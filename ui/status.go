package ui

import (
	"fmt"
	"io"
	"math"

	"github.com/raftkv/raftkv/internal/buildinfo"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// status is the part of a member's GET /status the dashboard reads. The
// sections shard and config are absent on a plain member.
type status struct {
	ID            uint64              `json:"id"`
	Leader        uint64              `json:"leader"`
	Term          uint64              `json:"term"`
	CommitIndex   uint64              `json:"commitIndex"`
	AppliedIndex  uint64              `json:"appliedIndex"`
	SnapshotIndex uint64              `json:"snapshotIndex"`
	Members       []statusMember      `json:"members"`
	Progress      map[string]progress `json:"progress"`
	Shard         *ShardStatus        `json:"shard"`
	Config        *ConfigStatus       `json:"config"`
	Build         *buildinfo.Info     `json:"build"`
	ClusterLevel  uint32              `json:"clusterLevel"`
	DataBytes     int64               `json:"dataBytes"`
	QuotaBytes    int64               `json:"quotaBytes"`
}

type statusMember struct {
	ID         uint64   `json:"id"`
	PeerURLs   []string `json:"peerURLs"`
	ClientURLs []string `json:"clientURLs"`
	IsLearner  bool     `json:"isLearner"`
}

type progress struct {
	Match uint64 `json:"match"`
	Next  uint64 `json:"next"`
	State string `json:"state"`
}

// ShardStatus is the "shard" section of a shard group member's /status:
// its group, the config version it applied and its buckets by state.
type ShardStatus struct {
	Group         uint64         `json:"group"`
	ConfigVersion uint64         `json:"configVersion"`
	Buckets       BucketsByState `json:"buckets"`
}

// BucketsByState lists bucket numbers by their state in a shard group.
type BucketsByState struct {
	// Serving: owned and served.
	Serving []int `json:"serving"`
	// Pulling: owned in the group's config, data still being pulled in.
	Pulling []int `json:"pulling"`
	// BePulling: no longer owned; frozen data kept for the new owner.
	BePulling []int `json:"bePulling"`
	// GCing: served; the old owner must still be told to delete its copy.
	GCing []int `json:"gcing"`
}

// ConfigStatus is the "config" section of a config group member's /status:
// the latest config version, the number of buckets and each group's bucket
// count, by group id in decimal.
type ConfigStatus struct {
	Version uint64         `json:"version"`
	Buckets int            `json:"buckets"`
	Groups  map[string]int `json:"groups"`
}

// shardConfig is a config group's GET /config: shardmap.Config's JSON,
// Buckets[b] being the group id that owns bucket b (0: none).
type shardConfig struct {
	Version uint64              `json:"Version"`
	Buckets []uint64            `json:"Buckets"`
	Groups  map[string][]string `json:"Groups"`
}

// counters are the totals of a member's /metrics the dashboard reads.
type counters struct {
	// Writes are the writes this member committed for its clients.
	Writes float64
	// Reads are the reads it served, at any level.
	Reads float64
	// LeaderChanges are the leader changes it has seen.
	LeaderChanges float64
}

// The metrics counters reads.
const (
	metricWrites        = "raftkv_kv_writes_total"
	metricReads         = "raftkv_kv_reads_total"
	metricLeaderChanges = "raftkv_raft_leader_changes_seen_total"
)

// parseCounters reads counters from a /metrics body in Prometheus text
// format. A counter a member does not export counts as NaN, so that an
// older member's missing reads show as unknown rather than zero.
func parseCounters(r io.Reader) (counters, error) {
	p := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := p.TextToMetricFamilies(r)
	if err != nil {
		return counters{}, fmt.Errorf("metrics: %w", err)
	}
	sum := func(name string, keep func(labels map[string]string) bool) float64 {
		mf := mfs[name]
		if mf == nil {
			return math.NaN()
		}
		var total float64
		for _, m := range mf.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if keep == nil || keep(labels) {
				switch {
				case m.Counter != nil:
					total += m.GetCounter().GetValue()
				case m.Untyped != nil:
					total += m.GetUntyped().GetValue()
				}
			}
		}
		return total
	}
	return counters{
		Writes:        sum(metricWrites, func(l map[string]string) bool { return l["result"] == "committed" }),
		Reads:         sum(metricReads, nil),
		LeaderChanges: sum(metricLeaderChanges, nil),
	}, nil
}
