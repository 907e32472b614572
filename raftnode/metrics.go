package raftnode

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// latencyBuckets span 50µs to about 3s.
var latencyBuckets = prometheus.ExponentialBuckets(0.00005, 2, 16)

// metrics are one node's; registered on Config.Registerer when set, so
// several nodes in one process keep separate registries.
type metrics struct {
	leaderChanges     prometheus.Counter
	hasLeader         prometheus.Gauge
	isLeader          prometheus.Gauge
	snapshotsSaved    prometheus.Counter
	snapshotsReceived prometheus.Counter
	snapshotSeconds   prometheus.Histogram
	readIndexSeconds  prometheus.Histogram
	readIndexFailures prometheus.Counter
	readIndexRemote   prometheus.Counter
	readySeconds      prometheus.Histogram
	committedEntries  prometheus.Counter
	proposalsDropped  prometheus.Counter
	batchPayloads     prometheus.Histogram
	noticesHeld       prometheus.Counter
	noticesSuperseded prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		leaderChanges: prometheus.NewCounter(prometheus.CounterOpts{Namespace: "raftkv", Subsystem: "raft",
			Name: "leader_changes_seen_total", Help: "Leader changes this member has seen."}),
		hasLeader: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: "raftkv", Subsystem: "raft",
			Name: "has_leader", Help: "1 when this member knows a leader."}),
		isLeader: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: "raftkv", Subsystem: "raft",
			Name: "is_leader", Help: "1 when this member is the leader."}),
		snapshotsSaved: prometheus.NewCounter(prometheus.CounterOpts{Namespace: "raftkv", Subsystem: "snapshot",
			Name: "saved_total", Help: "Snapshots this member took and saved."}),
		snapshotsReceived: prometheus.NewCounter(prometheus.CounterOpts{Namespace: "raftkv", Subsystem: "snapshot",
			Name: "received_total", Help: "Snapshots received from the leader and applied."}),
		snapshotSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: "raftkv", Subsystem: "snapshot",
			Name: "save_duration_seconds", Help: "Time to take, encode and save a snapshot.", Buckets: latencyBuckets}),
		readIndexSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: "raftkv", Subsystem: "raft",
			Name: "read_index_duration_seconds", Help: "Time of one ReadIndex round.", Buckets: latencyBuckets}),
		readIndexFailures: prometheus.NewCounter(prometheus.CounterOpts{Namespace: "raftkv", Subsystem: "raft",
			Name: "read_index_failures_total", Help: "ReadIndex rounds that failed (no leader, timeout)."}),
		readIndexRemote: prometheus.NewCounter(prometheus.CounterOpts{Namespace: "raftkv", Subsystem: "raft",
			Name: "read_index_remote_total", Help: "Other members' ReadIndex requests this member as leader answered from its own rounds."}),
		readySeconds: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: "raftkv", Subsystem: "raft",
			Name: "ready_duration_seconds", Help: "Time to handle one Ready (WAL write and fsync included).", Buckets: latencyBuckets}),
		committedEntries: prometheus.NewCounter(prometheus.CounterOpts{Namespace: "raftkv", Subsystem: "raft",
			Name: "committed_entries_total", Help: "Committed entries handed to the state machine."}),
		proposalsDropped: prometheus.NewCounter(prometheus.CounterOpts{Namespace: "raftkv", Subsystem: "raft",
			Name: "proposals_dropped_total", Help: "Proposals raft refused (no leader, transfer, overload)."}),
		batchPayloads: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: "raftkv", Subsystem: "raft",
			Name: "entry_payloads", Help: "Application proposals merged into one entry by this member as leader.",
			Buckets: prometheus.ExponentialBuckets(1, 2, 10)}),
		noticesHeld: prometheus.NewCounter(prometheus.CounterOpts{Namespace: "raftkv", Subsystem: "raft",
			Name: "commit_notices_held_total", Help: "Commit-only appends this member as leader held back (see --commit-notice-delay)."}),
		noticesSuperseded: prometheus.NewCounter(prometheus.CounterOpts{Namespace: "raftkv", Subsystem: "raft",
			Name: "commit_notices_superseded_total", Help: "Held commit-only appends not sent, as a newer append to the same follower carried the commit index."}),
	}
	if reg != nil {
		reg.MustRegister(m.leaderChanges, m.hasLeader, m.isLeader, m.snapshotsSaved, m.snapshotsReceived,
			m.snapshotSeconds, m.readIndexSeconds, m.readIndexFailures, m.readIndexRemote, m.readySeconds, m.committedEntries, m.proposalsDropped, m.batchPayloads,
			m.noticesHeld, m.noticesSuperseded)
	}
	return m
}

func since(t time.Time) float64 { return time.Since(t).Seconds() }

func boolGauge(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
