package kvstore

import (
	"errors"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
)

type metrics struct {
	writes        *prometheus.CounterVec
	outcomes      map[string]prometheus.Counter // writes' children, by outcome
	reads         *prometheus.CounterVec
	staleReads    prometheus.Counter // reads' children
	linearReads   prometheus.Counter
	retries       prometheus.Counter
	applySeconds  prometheus.Histogram
	batchRequests prometheus.Histogram
}

func newMetrics(reg prometheus.Registerer, keys, dataBytes func() float64, quota int64, dec *entryDecoder) *metrics {
	m := &metrics{
		writes: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "raftkv", Subsystem: "kv",
			Name: "writes_total", Help: "Writes (proposals) by outcome: committed, or why they failed."}, []string{"result"}),
		reads: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "raftkv", Subsystem: "kv",
			Name: "reads_total", Help: "Reads served by this member (found or not), by level: linearizable or stale."}, []string{"level"}),
		retries: prometheus.NewCounter(prometheus.CounterOpts{Namespace: "raftkv", Subsystem: "kv",
			Name: "proposals_retried_total", Help: "Writes proposed again after staying unapplied."}),
		applySeconds: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: "raftkv", Subsystem: "kv",
			Name: "apply_duration_seconds", Help: "Time to apply one commit to the state machine.",
			Buckets: prometheus.ExponentialBuckets(0.00001, 2, 18)}),
		batchRequests: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: "raftkv", Subsystem: "kv",
			Name: "entry_requests", Help: "Writes packed into one proposed raft entry.",
			Buckets: prometheus.ExponentialBuckets(1, 2, 12)}),
	}
	// Present from the start, so a scrape before the first write sees 0,
	// and looked up once, not on every write.
	m.outcomes = map[string]prometheus.Counter{}
	for _, r := range []string{"committed", "timeout", "unknown", "unavailable", "no_space", "stopped", "error"} {
		m.outcomes[r] = m.writes.WithLabelValues(r)
	}
	m.staleReads, m.linearReads = m.reads.WithLabelValues("stale"), m.reads.WithLabelValues("linearizable")
	if reg != nil {
		reg.MustRegister(m.writes, m.reads, m.retries, m.applySeconds, m.batchRequests,
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: "raftkv", Subsystem: "kv",
				Name: "keys", Help: "Keys in the state machine."}, keys),
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: "raftkv", Subsystem: "kv",
				Name: "data_bytes", Help: "Size of the keys: their keys' and values' bytes and 56 bytes for each, as the space quota counts."}, dataBytes),
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: "raftkv", Subsystem: "kv",
				Name: "quota_bytes", Help: "The space quota (--quota-bytes); 0: none."}, func() float64 { return float64(quota) }))
		// A fresh decoder compiles the entry's types: once per preamble
		// (two per writer binary, see entryTypes), and for entries not
		// framed as expected.
		for by, n := range map[string]*atomic.Uint64{"primed": &dec.byPrimed, "fresh": &dec.byFresh} {
			reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Namespace: "raftkv", Subsystem: "kv",
				Name: "entries_decoded_total", Help: "Committed entries decoded, by a primed gob decoder or a fresh one.",
				ConstLabels: prometheus.Labels{"by": by}}, func() float64 { return float64(n.Load()) }))
		}
	}
	return m
}

// countWrite counts a write by its outcome.
func (m *metrics) countWrite(err error) { m.outcomes[outcome(err)].Inc() }

// countRead counts a read served at the level stale says.
func (m *metrics) countRead(stale bool) {
	if stale {
		m.staleReads.Inc()
	} else {
		m.linearReads.Inc()
	}
}

// outcome names a write's result for the writes_total counter.
func outcome(err error) string {
	switch {
	case err == nil:
		return "committed"
	case errors.Is(err, ErrTimeout):
		return "timeout"
	case errors.Is(err, ErrOutcomeUnknown):
		return "unknown"
	case errors.Is(err, ErrStopped):
		return "stopped"
	case errors.Is(err, ErrNoSpace):
		return "no_space"
	case isUnavailable(err):
		return "unavailable"
	}
	return "error"
}

// isUnavailable is outcome's errors.As, apart, so that the target it
// takes the address of is allocated only for a failed write.
func isUnavailable(err error) bool {
	var b interface{ Unavailable() bool }
	return errors.As(err, &b) && b.Unavailable()
}
