package ui

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Cluster is the body of GET /ui/api/cluster: the members as the serving
// member knows them, each as its own /status and /metrics show it.
type Cluster struct {
	// Self is the id of the member serving the page; 0 if its own /status
	// failed, and then Error says why.
	Self uint64 `json:"self"`
	// At is when the aggregation began.
	At time.Time `json:"at"`
	// Leader is the member that reports itself leader in the highest
	// term, else the leader the serving member knows of; 0: none.
	Leader uint64 `json:"leader"`
	// Term is the highest term an up member reports.
	Term uint64 `json:"term"`
	// LastLeaderChange is the last change of Leader (or of its term) this
	// member's dashboard observed since it started; nil before any.
	LastLeaderChange *LeaderChange `json:"lastLeaderChange"`
	// WritesPerSec and ReadsPerSec are the members' rates added up; nil
	// until some member has two samples.
	WritesPerSec *float64 `json:"writesPerSec"`
	ReadsPerSec  *float64 `json:"readsPerSec"`
	// Members are in id order.
	Members []Member `json:"members"`
	// ShardConfig is a config group's latest config, from GET /config of
	// the serving member, when its /status has a config section.
	ShardConfig *ShardConfig `json:"shardConfig,omitempty"`
	// Groups are the shard groups of ShardConfig, each member as its
	// /status shows it.
	Groups []Group `json:"groups,omitempty"`
	// Error says why the serving member's own /status failed, or why
	// ShardConfig could not be read.
	Error string `json:"error,omitempty"`
}

// LeaderChange is one observed change of leader.
type LeaderChange struct {
	At   time.Time `json:"at"`
	From uint64    `json:"from"` // 0: the dashboard had seen no leader yet
	To   uint64    `json:"to"`
	Term uint64    `json:"term"`
}

// Member is one raft member of the serving member's group.
type Member struct {
	ID        uint64   `json:"id"`
	ClientURL string   `json:"clientURL"`
	PeerURLs  []string `json:"peerURLs"`
	IsLearner bool     `json:"isLearner"`
	// Up: its /status answered. Error says why not.
	Up    bool   `json:"up"`
	Error string `json:"error,omitempty"`
	// Role is "leader", "follower" or "learner", "no-leader" when it knows
	// no leader, "down" when it did not answer.
	Role string `json:"role"`
	// From its /status, when up.
	Leader        uint64 `json:"leader"`
	Term          uint64 `json:"term"`
	CommitIndex   uint64 `json:"commitIndex"`
	AppliedIndex  uint64 `json:"appliedIndex"`
	SnapshotIndex uint64 `json:"snapshotIndex"`
	// ApplyLag is CommitIndex - AppliedIndex.
	ApplyLag uint64 `json:"applyLag"`
	// Match and MatchLag (the leader's commit index - Match, at least 0)
	// come from the leader's progress of this member, and State is that
	// progress's state; nil and "" for the leader and when the leader is
	// not up.
	Match    *uint64 `json:"match"`
	MatchLag *uint64 `json:"matchLag"`
	State    string  `json:"state,omitempty"`
	// From its /metrics; nil when unknown. Writes counts the writes it
	// committed for its clients, Reads the reads it served.
	Writes        *float64 `json:"writes"`
	Reads         *float64 `json:"reads"`
	LeaderChanges *float64 `json:"leaderChanges"`
	WritesPerSec  *float64 `json:"writesPerSec"`
	ReadsPerSec   *float64 `json:"readsPerSec"`
	// Shard and Config are its /status sections of those names.
	Shard  *ShardStatus  `json:"shard,omitempty"`
	Config *ConfigStatus `json:"config,omitempty"`
	// Version is the binary it runs (version, VCS revision), "" when its
	// /status does not say; Level the feature level that binary speaks
	// and ClusterLevel its group's (0 from members before levels).
	Version      string `json:"version,omitempty"`
	Level        uint32 `json:"level"`
	ClusterLevel uint32 `json:"clusterLevel"`
	// DataBytes is the size of its keys as its space quota counts them,
	// QuotaBytes that quota (0: none, or a member before quotas).
	DataBytes  int64 `json:"dataBytes"`
	QuotaBytes int64 `json:"quotaBytes"`
}

// ShardConfig is a config group's latest config.
type ShardConfig struct {
	Version uint64 `json:"version"`
	// Buckets[b] is the group owning bucket b, 0 for none.
	Buckets []uint64 `json:"buckets"`
}

// Group is one shard group of the config.
type Group struct {
	ID      uint64        `json:"id"`
	Buckets int           `json:"buckets"` // owned in the config
	Members []GroupMember `json:"members"`
}

// GroupMember is a shard group member as its /status shows it.
type GroupMember struct {
	ClientURL    string       `json:"clientURL"`
	Up           bool         `json:"up"`
	Error        string       `json:"error,omitempty"`
	ID           uint64       `json:"id"`
	Role         string       `json:"role"`
	Term         uint64       `json:"term"`
	AppliedIndex uint64       `json:"appliedIndex"`
	Shard        *ShardStatus `json:"shard,omitempty"`
}

// Bounds of what one aggregation reads.
const (
	maxStatusBytes  = 1 << 20
	maxMetricsBytes = 8 << 20
	maxConfigBytes  = 8 << 20
	// maxGroupMembers bounds the shard group members a config group
	// member's dashboard asks for their /status.
	maxGroupMembers = 128
)

// aggregator builds Cluster and keeps what successive aggregations need:
// each member's counter samples and the last leader seen.
type aggregator struct {
	cfg Config

	mu struct {
		sync.Mutex
		series map[string]*series // by member id and client URL
		leader uint64
		term   uint64
		change *LeaderChange
	}
}

func newAggregator(cfg Config) *aggregator {
	a := &aggregator{cfg: cfg}
	a.mu.series = map[string]*series{}
	return a
}

// fetched is what one member's /status and /metrics gave.
type fetched struct {
	st       status
	stErr    error
	cnt      counters
	cntErr   error
	cntTaken time.Time
}

// aggregate asks the serving member for its /status, then every member it
// lists for theirs and their /metrics, at once, each within MemberTimeout.
func (a *aggregator) aggregate(ctx context.Context) Cluster {
	out := Cluster{At: time.Now(), Members: []Member{}}
	self := a.fetch(ctx, a.cfg.Self)
	if self.stErr != nil {
		out.Error = fmt.Sprintf("this member's own /status failed: %v", self.stErr)
		return out
	}
	out.Self = self.st.ID
	list := self.st.Members
	if !slices.ContainsFunc(list, func(m statusMember) bool { return m.ID == self.st.ID }) {
		list = append(list, statusMember{ID: self.st.ID, ClientURLs: []string{a.cfg.Self}})
	}
	slices.SortFunc(list, func(x, y statusMember) int { return cmp.Compare(x.ID, y.ID) })

	results := make([]fetched, len(list))
	var wg sync.WaitGroup
	for i, m := range list {
		switch {
		case m.ID == self.st.ID:
			results[i] = self
		case len(m.ClientURLs) == 0:
			results[i].stErr = errors.New("it has published no client URL")
		default:
			wg.Go(func() { results[i] = a.fetch(ctx, m.ClientURLs[0]) })
		}
	}
	var cfgErr error
	var sc *shardConfig
	if self.st.Config != nil {
		wg.Go(func() { sc, cfgErr = a.shardConfig(ctx, a.cfg.Self) })
	}
	wg.Wait()

	for i, m := range list {
		mv := Member{ID: m.ID, PeerURLs: m.PeerURLs, IsLearner: m.IsLearner, Role: "down"}
		if len(m.ClientURLs) > 0 {
			mv.ClientURL = m.ClientURLs[0]
		}
		if m.ID == self.st.ID {
			mv.ClientURL = a.cfg.Self
		}
		r := results[i]
		if r.stErr != nil {
			mv.Error = r.stErr.Error()
			out.Members = append(out.Members, mv)
			continue
		}
		st := r.st
		mv.Up = true
		mv.Leader, mv.Term = st.Leader, st.Term
		mv.CommitIndex, mv.AppliedIndex, mv.SnapshotIndex = st.CommitIndex, st.AppliedIndex, st.SnapshotIndex
		if st.Build != nil {
			mv.Version, mv.Level = st.Build.Short(), st.Build.Level
		}
		mv.ClusterLevel = st.ClusterLevel
		mv.DataBytes, mv.QuotaBytes = st.DataBytes, st.QuotaBytes
		mv.ApplyLag = sub0(st.CommitIndex, st.AppliedIndex)
		mv.Role = role(st, m.IsLearner)
		mv.Shard, mv.Config = st.Shard, st.Config
		if r.cntErr == nil {
			mv.Writes, mv.Reads, mv.LeaderChanges = known(r.cnt.Writes), known(r.cnt.Reads), known(r.cnt.LeaderChanges)
		} else {
			mv.Error = r.cntErr.Error()
		}
		out.Term = max(out.Term, st.Term)
		out.Members = append(out.Members, mv)
	}

	// The leader: a member that says so itself, in the highest term.
	var leader *status
	for i := range results {
		if r := &results[i]; r.stErr == nil && r.st.Leader == r.st.ID && (leader == nil || r.st.Term > leader.Term) {
			leader = &r.st
		}
	}
	leaderTerm := self.st.Term
	if leader != nil {
		out.Leader, leaderTerm = leader.ID, leader.Term
		for i := range out.Members {
			mv := &out.Members[i]
			pr, ok := leader.Progress[strconv.FormatUint(mv.ID, 10)]
			if !ok || mv.ID == leader.ID {
				continue
			}
			match, lag := pr.Match, sub0(leader.CommitIndex, pr.Match)
			mv.Match, mv.MatchLag, mv.State = &match, &lag, pr.State
		}
	} else {
		out.Leader = self.st.Leader
	}

	if sc != nil {
		out.ShardConfig = &ShardConfig{Version: sc.Version, Buckets: sc.Buckets}
		out.Groups = a.groups(ctx, sc)
	} else if cfgErr != nil {
		out.Error = fmt.Sprintf("GET /config: %v", cfgErr)
	}

	a.record(&out, list, results, leaderTerm)
	return out
}

// record adds the samples of this aggregation, fills in the rates, and
// notes a change of leader, or of the leader's term (leaderTerm).
func (a *aggregator) record(out *Cluster, list []statusMember, results []fetched, leaderTerm uint64) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for i := range out.Members {
		mv, r := &out.Members[i], results[i]
		if r.stErr != nil || r.cntErr != nil {
			continue
		}
		key := strconv.FormatUint(list[i].ID, 10) + " " + mv.ClientURL
		s := a.mu.series[key]
		if s == nil {
			s = &series{}
			a.mu.series[key] = s
		}
		mv.WritesPerSec, mv.ReadsPerSec = s.add(sample{at: r.cntTaken, counters: r.cnt})
		out.WritesPerSec = addRate(out.WritesPerSec, mv.WritesPerSec)
		out.ReadsPerSec = addRate(out.ReadsPerSec, mv.ReadsPerSec)
	}
	for key, s := range a.mu.series {
		if out.At.Sub(s.last()) > forgetAfter {
			delete(a.mu.series, key)
		}
	}
	// A leader in a term below the one seen is an old leader's answer
	// that came late: not a change.
	if out.Leader != 0 && leaderTerm >= a.mu.term && (out.Leader != a.mu.leader || leaderTerm > a.mu.term) {
		if a.mu.leader != 0 {
			a.mu.change = &LeaderChange{At: out.At, From: a.mu.leader, To: out.Leader, Term: leaderTerm}
		}
		a.mu.leader, a.mu.term = out.Leader, leaderTerm
	}
	if a.mu.change != nil {
		c := *a.mu.change
		out.LastLeaderChange = &c
	}
}

// groups asks every member of every group of sc for its /status, at once.
func (a *aggregator) groups(ctx context.Context, sc *shardConfig) []Group {
	owned := map[uint64]int{}
	for _, g := range sc.Buckets {
		owned[g]++
	}
	var gs []Group
	for gid, urls := range sc.Groups {
		id, err := strconv.ParseUint(gid, 10, 64)
		if err != nil {
			continue
		}
		g := Group{ID: id, Buckets: owned[id]}
		for _, u := range urls {
			g.Members = append(g.Members, GroupMember{ClientURL: u})
		}
		gs = append(gs, g)
	}
	slices.SortFunc(gs, func(x, y Group) int { return cmp.Compare(x.ID, y.ID) })
	var wg sync.WaitGroup
	n := 0
	for gi := range gs {
		for mi := range gs[gi].Members {
			gm := &gs[gi].Members[mi]
			if n++; n > maxGroupMembers {
				gm.Error = "not asked: too many group members"
				continue
			}
			wg.Go(func() {
				st, err := a.status(ctx, gm.ClientURL)
				if err != nil {
					gm.Role, gm.Error = "down", err.Error()
					return
				}
				gm.Up, gm.ID, gm.Term, gm.AppliedIndex, gm.Shard = true, st.ID, st.Term, st.AppliedIndex, st.Shard
				gm.Role = role(st, slices.ContainsFunc(st.Members, func(m statusMember) bool { return m.ID == st.ID && m.IsLearner }))
			})
		}
	}
	wg.Wait()
	return gs
}

// role is what a member's own status says it is.
func role(st status, learner bool) string {
	switch {
	case st.Leader != 0 && st.Leader == st.ID:
		return "leader"
	case learner:
		return "learner"
	case st.Leader == 0:
		return "no-leader"
	}
	return "follower"
}

// fetch reads base's /status and /metrics, at once, within MemberTimeout.
func (a *aggregator) fetch(ctx context.Context, base string) fetched {
	ctx, cancel := context.WithTimeout(ctx, a.cfg.MemberTimeout)
	defer cancel()
	var f fetched
	var wg sync.WaitGroup
	wg.Go(func() { f.st, f.stErr = a.status(ctx, base) })
	wg.Go(func() {
		var b []byte
		b, f.cntErr = a.get(ctx, base, "/metrics", maxMetricsBytes)
		f.cntTaken = time.Now()
		if f.cntErr == nil {
			f.cnt, f.cntErr = parseCounters(bytes.NewReader(b))
		}
	})
	wg.Wait()
	return f
}

// status reads and decodes base's /status within ctx.
func (a *aggregator) status(ctx context.Context, base string) (status, error) {
	ctx, cancel := context.WithTimeout(ctx, a.cfg.MemberTimeout)
	defer cancel()
	var st status
	b, err := a.get(ctx, base, "/status", maxStatusBytes)
	if err != nil {
		return st, err
	}
	if err := json.Unmarshal(b, &st); err != nil {
		return st, fmt.Errorf("/status is not the JSON expected: %v", err)
	}
	return st, nil
}

// shardConfig reads a config group member's latest config, from its local
// state (level=stale): the dashboard shows what the member knows.
func (a *aggregator) shardConfig(ctx context.Context, base string) (*shardConfig, error) {
	ctx, cancel := context.WithTimeout(ctx, a.cfg.MemberTimeout)
	defer cancel()
	b, err := a.get(ctx, base, "/config?level=stale", maxConfigBytes)
	if err != nil {
		return nil, err
	}
	var sc shardConfig
	if err := json.Unmarshal(b, &sc); err != nil {
		return nil, fmt.Errorf("/config is not the JSON expected: %v", err)
	}
	return &sc, nil
}

// get reads base+path, at most limit bytes, and wants 200.
func (a *aggregator) get(ctx context.Context, base, path string, limit int64) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimSuffix(base, "/")+path, nil)
	if err != nil {
		return nil, err
	}
	resp, err := a.cfg.Client.Do(req)
	if err != nil {
		return nil, describe(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	switch {
	case err != nil:
		return nil, describe(err)
	case resp.StatusCode != http.StatusOK:
		return nil, fmt.Errorf("%s answered %s", path, resp.Status)
	case int64(len(b)) > limit:
		return nil, fmt.Errorf("%s answered more than %d bytes", path, limit)
	}
	return b, nil
}

// describe says in a few words why a request got no answer.
func describe(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	var op *net.OpError
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return errors.New("no answer in time")
	case errors.As(err, &op) && op.Op == "dial":
		var se *os.SyscallError
		if errors.As(op.Err, &se) {
			return fmt.Errorf("cannot connect: %v", se.Err)
		}
		return fmt.Errorf("cannot connect: %v", op.Err)
	}
	return err
}

func known(v float64) *float64 {
	if math.IsNaN(v) { // not exported
		return nil
	}
	return &v
}

func addRate(sum, r *float64) *float64 {
	if r == nil {
		return sum
	}
	if sum == nil {
		v := *r
		return &v
	}
	v := *sum + *r
	return &v
}

func sub0(a, b uint64) uint64 {
	if a < b {
		return 0
	}
	return a - b
}
