package daemon

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/raftkv/raftkv/raftnode"
	"go.uber.org/zap"
)

// Periodic hash checks, as etcd's leader checks its members' hashes
// every --experimental-corrupt-check-time: with Config.HashCheckInterval
// set, the group's leader starts a hash check (kvstore.HashKV) every
// interval and reads every member's hash at its index (GET
// /debug/hash?index=N). Members that applied the same log must agree, so
// two hashes at one index mean a member's state went wrong: the leader
// logs it as an error, with every member's hash, and counts it in
// raftkv_hash_checks_total{result="mismatch"}. Unlike etcd it raises no
// alarm that stops writes: which member is wrong is for an operator to
// judge (a member restored from a good backup, or replaced, heals it).

// Results of a periodic hash check, the label of raftkv_hash_checks_total.
const (
	hashAgree      = "agree"      // every member answered the same hash
	hashMismatch   = "mismatch"   // two members answered different hashes
	hashIncomplete = "incomplete" // no disagreement, but a member gave no hash
	hashError      = "error"      // the check could not start (no leader, stopping)
)

// memberHash is one member's answer to a periodic check.
type memberHash struct {
	id   uint64
	hash string // "" with err
	keys int
	err  error
}

// judgeHashes is a check's verdict from every member's answer: its
// result, and for a mismatch the members grouped by hash, as one line.
func judgeHashes(answers []memberHash) (string, string) {
	byHash := map[string][]string{}
	missing := false
	for _, a := range answers {
		if a.err != nil {
			missing = true
			continue
		}
		byHash[a.hash] = append(byHash[a.hash], strconv.FormatUint(a.id, 10))
	}
	if len(byHash) > 1 {
		hashes := make([]string, 0, len(byHash))
		for h := range byHash {
			hashes = append(hashes, h)
		}
		slices.Sort(hashes)
		parts := make([]string, 0, len(hashes))
		for _, h := range hashes {
			parts = append(parts, fmt.Sprintf("members %s have %s", strings.Join(byHash[h], ", "), h))
		}
		return hashMismatch, strings.Join(parts, "; ")
	}
	if missing {
		return hashIncomplete, ""
	}
	return hashAgree, ""
}

// newHashCheckCounter is raftkv_hash_checks_total, registered on reg.
func newHashCheckCounter(reg prometheus.Registerer) *prometheus.CounterVec {
	c := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "raftkv_hash_checks_total",
		Help: "Periodic hash checks this member started as its group's leader (--hash-check-interval), by result: agree, mismatch (two members' states differ), incomplete (a member gave no hash), error (not started).",
	}, []string{"result"})
	for _, r := range []string{hashAgree, hashMismatch, hashIncomplete, hashError} {
		c.WithLabelValues(r)
	}
	reg.MustRegister(c)
	return c
}

// monitorHashes runs while the member does: whenever it leads, it runs a
// hash check every Config.HashCheckInterval.
func (m *Member) monitorHashes(checks *prometheus.CounterVec) {
	defer close(m.hashDone)
	every := m.cfg.HashCheckInterval
	if every <= 0 {
		return
	}
	m.whileLeading(every, func(stopped context.Context) {
		checks.WithLabelValues(m.checkHashes(stopped)).Inc()
	})
}

// checkHashes runs one hash check and returns its result.
func (m *Member) checkHashes(parent context.Context) string {
	ctx, cancel := context.WithTimeout(parent, 2*m.cfg.RequestTimeout)
	defer cancel()
	own, err := m.kv.HashKV(ctx)
	if err != nil {
		if parent.Err() == nil {
			m.lg.Warn("cannot start a hash check", zap.Error(err))
		}
		return hashError
	}
	var others []raftnode.Member
	for _, mem := range m.node.Members() {
		if mem.ID != m.node.ID() {
			others = append(others, mem)
		}
	}
	answers := make([]memberHash, len(others))
	var wg sync.WaitGroup
	for i, mem := range others {
		wg.Go(func() { answers[i] = m.askHash(ctx, mem, own.Index) })
	}
	wg.Wait()
	answers = append([]memberHash{{id: m.node.ID(), hash: own.Hash, keys: own.Keys}}, answers...)
	result, detail := judgeHashes(answers)
	switch result {
	case hashMismatch:
		fields := []zap.Field{zap.Uint64("index", own.Index), zap.String("hashes", detail)}
		for _, a := range answers {
			if a.err == nil {
				fields = append(fields, zap.Int(fmt.Sprintf("keys-of-%d", a.id), a.keys))
			}
		}
		m.lg.Error("members' states differ at one raft index: a member's state is corrupt; compare their keys, and restore or replace the wrong one", fields...)
	case hashIncomplete:
		for _, a := range answers {
			if a.err != nil {
				m.lg.Debug("a member gave no hash", zap.Uint64("index", own.Index), zap.Uint64("peer-id", a.id), zap.Error(a.err))
			}
		}
	}
	return result
}

// askHash reads mem's hash at index from its GET /debug/hash.
func (m *Member) askHash(ctx context.Context, mem raftnode.Member, index uint64) memberHash {
	a := memberHash{id: mem.ID}
	body, err := m.getFromMember(ctx, mem, "/debug/hash?index="+strconv.FormatUint(index, 10))
	if err != nil {
		a.err = err
		return a
	}
	var h struct {
		Index uint64 `json:"index"`
		Keys  int    `json:"keys"`
		Hash  string `json:"hash"`
	}
	if err := json.Unmarshal(body, &h); err != nil || h.Hash == "" || h.Index != index {
		a.err = fmt.Errorf("member %d answered %q", mem.ID, body)
		return a
	}
	a.hash, a.keys = h.Hash, h.Keys
	return a
}
