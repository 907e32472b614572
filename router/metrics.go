package router

import (
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// The operations the router's metrics count by: what a request asked for,
// as route dispatched it. "other" is a request the router answered
// without routing it (an unknown or members-only path, a membership
// change, a method not allowed).
const (
	opGet         = "get"
	opPut         = "put"
	opDelete      = "delete"
	opPutAll      = "put_all"
	opList        = "list"
	opDeleteRange = "delete_range"
	opTxn         = "txn"
	opWatch       = "watch"
	opStatus      = "status"
	opHealth      = "health"
	opMetrics     = "metrics"
	opOther       = "other"
)

// metrics are the router's own, served at its /metrics beside the
// process's (CPU, memory, Go runtime).
type metrics struct {
	requests *prometheus.CounterVec
	seconds  *prometheus.HistogramVec
	watches  prometheus.Gauge
	serve    http.Handler
}

func newMetrics(reg *prometheus.Registry, h *handler) (*metrics, error) {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "raftkv", Subsystem: "router",
			Name: "requests_total", Help: "Requests answered, by operation and HTTP status (a watch once it ends)."}, []string{"op", "code"}),
		seconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: "raftkv", Subsystem: "router",
			Name: "request_duration_seconds", Help: "Time to answer a request, by operation; watches are not timed.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 2, 18)}, []string{"op"}),
		watches: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: "raftkv", Subsystem: "router",
			Name: "watches", Help: "Watch streams open now."}),
		serve: promhttp.HandlerFor(reg, promhttp.HandlerOpts{}),
	}
	// The process's own: its CPU and memory, and Go's runtime. Not
	// prometheus.DefaultGatherer, which in this binary also holds the
	// members' etcd WAL and snapshot metrics, all zero in a router.
	for _, c := range []prometheus.Collector{collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{})} {
		if err := reg.Register(c); err != nil && !errors.As(err, new(prometheus.AlreadyRegisteredError)) {
			return nil, err
		}
	}
	for _, c := range []prometheus.Collector{
		m.requests, m.seconds, m.watches,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: "raftkv", Subsystem: "router",
			Name: "config_version", Help: "Version of the cached config the router routes by; 0 before it has one."},
			func() float64 {
				cfg, _ := h.c.CachedConfig()
				return float64(cfg.Version)
			}),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Namespace: "raftkv", Subsystem: "router",
			Name: "config_fetches_total", Help: "Configs fetched from the config group."},
			func() float64 { return float64(h.c.ConfigFetches()) }),
	} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// recorder is the ResponseWriter of a counted request: it keeps the
// status and the operation route found. Unwrap lets a watch flush
// through it.
type recorder struct {
	http.ResponseWriter
	m      *metrics
	op     string
	status int
}

func (rec *recorder) WriteHeader(code int) {
	if rec.status == 0 {
		rec.status = code
	}
	rec.ResponseWriter.WriteHeader(code)
}

func (rec *recorder) Write(b []byte) (int, error) {
	if rec.status == 0 {
		rec.status = http.StatusOK
	}
	return rec.ResponseWriter.Write(b)
}

func (rec *recorder) Unwrap() http.ResponseWriter { return rec.ResponseWriter }

// setOp names the operation of the request answered through w, when it
// is counted.
func setOp(w http.ResponseWriter, op string) {
	if rec, ok := w.(*recorder); ok && rec.op == opOther {
		rec.op = op
		if op == opWatch {
			rec.m.watches.Inc()
		}
	}
}

// observe counts a request once it is answered.
func (m *metrics) observe(rec *recorder, start time.Time) {
	status := rec.status
	if status == 0 {
		status = http.StatusOK // net/http's answer to a handler that wrote nothing
	}
	m.requests.WithLabelValues(rec.op, strconv.Itoa(status)).Inc()
	if rec.op == opWatch {
		m.watches.Dec()
		return
	}
	m.seconds.WithLabelValues(rec.op).Observe(time.Since(start).Seconds())
}
