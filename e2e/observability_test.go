package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/raftkv/raftkv/daemon"
	"github.com/raftkv/raftkv/testcluster"
)

// nodeStatus is GET /status in full, with the fields testcluster.Status leaves out.
type nodeStatus struct {
	ID           uint64         `json:"id"`
	Leader       uint64         `json:"leader"`
	Term         uint64         `json:"term"`
	CommitIndex  uint64         `json:"commitIndex"`
	AppliedIndex uint64         `json:"appliedIndex"`
	Members      []memberStatus `json:"members"`
	// Progress is keyed by follower id in decimal; only the leader has it.
	Progress map[string]progress `json:"progress"`
}

type memberStatus struct {
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

func (s nodeStatus) memberIDs() []uint64 {
	var ids []uint64
	for _, m := range s.Members {
		ids = append(ids, m.ID)
	}
	slices.Sort(ids)
	return ids
}

func (s nodeStatus) member(id uint64) (memberStatus, bool) {
	for _, m := range s.Members {
		if m.ID == id {
			return m, true
		}
	}
	return memberStatus{}, false
}

// getStatus fetches GET /status from the member whose client URL is base.
func getStatus(base string) (nodeStatus, error) {
	r, err := request(http.MethodGet, base+"/status", nil, nil)
	if err != nil {
		return nodeStatus{}, err
	}
	if r.Status != http.StatusOK {
		return nodeStatus{}, fmt.Errorf("GET %s/status: %d %s", base, r.Status, clip(r.Body))
	}
	var s nodeStatus
	if err := json.Unmarshal(r.Body, &s); err != nil {
		return nodeStatus{}, fmt.Errorf("GET %s/status: %w: %s", base, err, clip(r.Body))
	}
	return s, nil
}

// TestStatusAgreesOnAllNodes: every member's /status names the same leader and the same
// members, each with its real peer URL and, once published, its real client URL; the
// leader reports every follower's progress, in state replicate once it settles, and the
// followers report none. /debug/pprof/ answers on every member that enables it.
func TestStatusAgreesOnAllNodes(t *testing.T) {
	t.Parallel()
	c, _ := startCluster(t, testcluster.Options{InProcess: true, Configure: func(_ int, cfg *daemon.Config) { cfg.Pprof = true }})
	ids := c.Live()
	testcluster.WaitFor(t, convergeTimeout, "every /status to agree", func() error {
		var leader uint64
		for _, id := range ids {
			s, err := getStatus(c.ClientURL(id))
			if err != nil {
				return err
			}
			if s.ID != uint64(id) {
				t.Fatalf("node %d: /status says id %d", id, s.ID)
			}
			if s.Leader == 0 || (leader != 0 && s.Leader != leader) {
				return fmt.Errorf("node %d sees leader %d, another node %d", id, s.Leader, leader)
			}
			leader = s.Leader
			if got := s.memberIDs(); !slices.Equal(got, []uint64{1, 2, 3}) {
				return fmt.Errorf("node %d lists members %v, want [1 2 3]", id, got)
			}
			for _, m := range s.Members {
				want := int(m.ID)
				if m.IsLearner {
					return fmt.Errorf("node %d lists member %d as a learner", id, m.ID)
				}
				if !slices.Equal(m.PeerURLs, []string{c.PeerURL(want)}) {
					return fmt.Errorf("node %d: member %d peerURLs %v, want [%s]", id, m.ID, m.PeerURLs, c.PeerURL(want))
				}
				if !slices.Equal(m.ClientURLs, []string{c.ClientURL(want)}) {
					return fmt.Errorf("node %d: member %d clientURLs %v, want [%s]", id, m.ID, m.ClientURLs, c.ClientURL(want))
				}
			}
			if s.Leader != uint64(id) {
				if s.Progress != nil {
					return fmt.Errorf("follower %d reports progress %v", id, s.Progress)
				}
				continue
			}
			var want []string
			for _, f := range ids {
				if f != id {
					want = append(want, strconv.Itoa(f))
				}
			}
			if got := slices.Sorted(maps.Keys(s.Progress)); !slices.Equal(got, want) {
				return fmt.Errorf("leader %d reports progress of %v, want %v", id, got, want)
			}
			for f, p := range s.Progress {
				if p.State != "replicate" || p.Match == 0 || p.Next <= p.Match {
					return fmt.Errorf("leader %d: progress of %s is %+v, want replicate with 0 < match < next", id, f, p)
				}
			}
		}
		return nil
	})

	for _, id := range ids {
		r := mustRequest(t, c, id, http.MethodGet, "/debug/pprof/", nil, http.StatusOK)
		if !bytes.Contains(r.Body, []byte("goroutine")) {
			t.Errorf("node %d: GET /debug/pprof/ does not list the goroutine profile: %s", id, clip(r.Body))
		}
	}
}

// TestPprofIsOptIn: a member started without --enable-pprof does not serve
// Go profiling, which shows its command line and lets clients run CPU
// profiles and traces.
func TestPprofIsOptIn(t *testing.T) {
	t.Parallel()
	c, leader := startCluster(t, testcluster.Options{N: 1})
	for _, path := range []string{"/debug/pprof/", "/debug/pprof/heap", "/debug/pprof/cmdline", "/debug/pprof/profile?seconds=1"} {
		r := mustRequest(t, c, leader, http.MethodGet, path, nil, http.StatusNotFound)
		if !bytes.Contains(r.Body, []byte("pprof is not enabled")) {
			t.Errorf("GET %s: 404 %s, want it to say pprof is not enabled", path, clip(r.Body))
		}
	}
}

// health is the body of GET /health.
type health struct {
	Health string `json:"health"`
	Reason string `json:"reason"`
}

// getHealth fetches GET /health from node id.
func getHealth(c *testcluster.Cluster, id int) (int, health, testcluster.Response, error) {
	r, err := request(http.MethodGet, c.ClientURL(id)+"/health", nil, nil)
	if err != nil {
		return 0, health{}, r, err
	}
	var h health
	if err := json.Unmarshal(r.Body, &h); err != nil {
		return 0, health{}, r, fmt.Errorf("node %d: GET /health: %d %s: %w", id, r.Status, clip(r.Body), err)
	}
	if ct := r.Header.Get("Content-Type"); ct != "application/json" {
		return 0, health{}, r, fmt.Errorf("node %d: GET /health: Content-Type %q, want application/json", id, ct)
	}
	return r.Status, h, r, nil
}

// TestHealthWithoutQuorum: /health is 200 {"health":"true","reason":""} on every member
// of a healthy cluster; a member left alone by killing the two others turns 503 with
// a reason.
func TestHealthWithoutQuorum(t *testing.T) {
	t.Parallel()
	c, leader := startCluster(t, testcluster.Options{})
	for _, id := range c.Live() {
		testcluster.WaitFor(t, convergeTimeout, fmt.Sprintf("node %d to be healthy", id), func() error {
			st, h, _, err := getHealth(c, id)
			switch {
			case err != nil:
				return err
			case st != http.StatusOK || h != (health{Health: "true"}):
				return fmt.Errorf("node %d: /health %d %+v", id, st, h)
			}
			return nil
		})
	}

	// Leave a follower alone: it loses its leader once the election timeout passes.
	survivor := followers(c, leader)[0]
	for _, id := range c.Live() {
		if id != survivor {
			c.Kill(id)
		}
	}
	testcluster.WaitFor(t, valueTimeout, fmt.Sprintf("lone node %d to report itself unhealthy", survivor), func() error {
		st, h, r, err := getHealth(c, survivor)
		switch {
		case err != nil:
			return err
		case st != http.StatusServiceUnavailable:
			return fmt.Errorf("/health %d %+v", st, h)
		case h.Health != "false" || h.Reason == "":
			t.Fatalf("node %d: /health 503 with body %s, want health \"false\" and a reason", survivor, clip(r.Body))
		case r.Header.Get("Retry-After") == "":
			t.Errorf("node %d: /health 503 without Retry-After", survivor)
		}
		t.Logf("node %d alone: /health 503 %s", survivor, bytes.TrimSpace(r.Body))
		return nil
	})
}

// metricFamilies fetches node id's /metrics and parses it as Prometheus text format.
func metricFamilies(t *testing.T, c *testcluster.Cluster, id int) map[string]*dto.MetricFamily {
	t.Helper()
	r := mustRequest(t, c, id, http.MethodGet, "/metrics", nil, http.StatusOK)
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
		t.Errorf("node %d: /metrics Content-Type %q, want text/plain", id, ct)
	}
	p := expfmt.NewTextParser(model.LegacyValidation)
	mfs, err := p.TextToMetricFamilies(bytes.NewReader(r.Body))
	if err != nil {
		t.Fatalf("node %d: /metrics is not Prometheus text format: %v", id, err)
	}
	return mfs
}

// counterValue returns the value of the counter name whose labels include want.
func counterValue(t *testing.T, mfs map[string]*dto.MetricFamily, name string, want map[string]string) float64 {
	t.Helper()
	mf := mfs[name]
	if mf == nil {
		t.Fatalf("no metric %s", name)
	}
	for _, m := range mf.GetMetric() {
		labels := map[string]string{}
		for _, lp := range m.GetLabel() {
			labels[lp.GetName()] = lp.GetValue()
		}
		match := true
		for k, v := range want {
			match = match && labels[k] == v
		}
		if match {
			return m.GetCounter().GetValue()
		}
	}
	return 0 // a labelled counter appears with its first increment
}

// histogramCount returns the sample count of the unlabelled histogram name.
func histogramCount(t *testing.T, mfs map[string]*dto.MetricFamily, name string) uint64 {
	t.Helper()
	mf := mfs[name]
	if mf == nil || len(mf.GetMetric()) != 1 {
		t.Fatalf("metric %s: want one histogram, got %v", name, mf)
	}
	return mf.GetMetric()[0].GetHistogram().GetSampleCount()
}

// TestMetricsCountWritesAndReads: /metrics on every member is valid Prometheus text
// with raftkv's, etcd's and Go's metrics; after n writes and n linearizable reads
// through a follower, its committed-writes counter grew by at least n and its ReadIndex
// histogram by at least one round (concurrent reads share rounds); and every member
// decoded every entry but the first with its one primed decoder (every process
// numbers its gob types alike).
func TestMetricsCountWritesAndReads(t *testing.T) {
	t.Parallel()
	c, leader := startCluster(t, testcluster.Options{})
	wantTypes := map[string]string{
		"raftkv_kv_writes_total":                  "COUNTER",
		"raftkv_raft_read_index_duration_seconds": "HISTOGRAM",
		"etcd_disk_wal_fsync_duration_seconds":    "HISTOGRAM",
		"go_goroutines":                           "GAUGE",
	}
	// raftkv_kv_writes_total is labelled by outcome, and a labelled counter is only
	// exported once some write went through the member: write through each first.
	for _, id := range c.Live() {
		mustRequest(t, c, id, http.MethodPut, fmt.Sprintf("/warm-up-%d", id), []byte("v"), http.StatusNoContent)
	}
	for _, id := range c.Live() {
		mfs := metricFamilies(t, c, id)
		for name, typ := range wantTypes {
			mf := mfs[name]
			if mf == nil {
				t.Errorf("node %d: /metrics lacks %s", id, name)
				continue
			}
			if got := mf.GetType().String(); got != typ {
				t.Errorf("node %d: %s has type %s, want %s", id, name, got, typ)
			}
		}
	}
	if t.Failed() {
		t.FailNow()
	}

	const n = 20
	f := followers(c, leader)[0]
	committed := map[string]string{"result": "committed"}
	before := metricFamilies(t, c, f)
	for i := range n {
		key := fmt.Sprintf("metrics-%02d", i)
		mustRequest(t, c, f, http.MethodPut, "/"+key, []byte("v"), http.StatusNoContent)
		mustRequest(t, c, f, http.MethodGet, "/"+key, nil, http.StatusOK)
	}
	after := metricFamilies(t, c, f)

	w0, w1 := counterValue(t, before, "raftkv_kv_writes_total", committed), counterValue(t, after, "raftkv_kv_writes_total", committed)
	if w1-w0 < n {
		t.Errorf("node %d: raftkv_kv_writes_total{result=\"committed\"} went from %v to %v after %d acknowledged writes", f, w0, w1, n)
	}
	const readIndex = "raftkv_raft_read_index_duration_seconds"
	r0, r1 := histogramCount(t, before, readIndex), histogramCount(t, after, readIndex)
	if r1 <= r0 {
		t.Errorf("node %d: %s count went from %d to %d after %d linearizable reads", f, readIndex, r0, r1, n)
	}
	t.Logf("node %d: committed writes %v -> %v, ReadIndex rounds %d -> %d", f, w0, w1, r0, r1)
	checkDecodedPrimed(t, c, n)
}

// checkDecodedPrimed checks that every live member decoded at least n
// entries, all but one (the first, which primes it) with its primed
// decoder: every process of one binary numbers its gob types alike, so
// all entries share one preamble.
func checkDecodedPrimed(t *testing.T, c *testcluster.Cluster, n int) {
	t.Helper()
	const decoded = "raftkv_kv_entries_decoded_total"
	for _, id := range c.Live() {
		mfs := metricFamilies(t, c, id)
		primed, fresh := counterValue(t, mfs, decoded, map[string]string{"by": "primed"}), counterValue(t, mfs, decoded, map[string]string{"by": "fresh"})
		if primed < float64(n) || fresh != 1 {
			t.Errorf("node %d: %s is %v by a primed decoder and %v by a fresh one, want at least %d primed and 1 fresh", id, decoded, primed, fresh, n)
		}
	}
}
