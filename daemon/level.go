package daemon

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"strings"
	"time"

	"github.com/raftkv/raftkv/internal/buildinfo"
	"github.com/raftkv/raftkv/kvstore"
	"github.com/raftkv/raftkv/raftnode"
	"go.uber.org/zap"
)

// The cluster level, as etcd has its cluster version: each binary speaks
// a feature level (buildinfo.Level), a raft group runs at the lowest
// level all its members speak, and an operation of a higher level is
// refused until every member speaks it, so that no member applies an
// entry it does not understand (see raftnode's level.go for how the level
// is kept). The group's leader decides it: monitorLevel asks every member
// for its /status, as etcd's leader asks every member for its /version.

// levelDataModel is the level of conditional writes, transactions and
// TTLs: binaries before levels applied their entries as writes of nothing
// or as permanent keys.
const levelDataModel = 1

// levelDeleteRange is the level of range deletes (DELETE /key?prefix=):
// binaries of level 1 apply their entries as nothing.
const levelDeleteRange = 2

// Level 3 (kvstore.LevelUniqueVersions) gates nothing here: from it on,
// each store writes its entries in the format that gives every request
// versions of its own.

// levelPollInterval is how often the leader asks the members, and
// levelRetell how often at most it proposes the level it is at again.
const (
	levelPollInterval = time.Second
	levelRetell       = 5 * time.Second
)

// levelError refuses an operation of a level above the group's.
type levelError struct {
	what    string
	need    uint32
	cluster uint32
}

func (e *levelError) Error() string { return "daemon: " + e.HumanMessage() }

// HumanMessage says what to do about it.
func (e *levelError) HumanMessage() string {
	return fmt.Sprintf("%s need cluster level %d and this group is at level %d: a member runs an older binary; upgrade every member (raftkvctl status shows each one's LEVEL), then retry",
		e.what, e.need, e.cluster)
}

// Unavailable reports true: nothing was proposed.
func (*levelError) Unavailable() bool { return true }

// Code is the answer's code.
func (*levelError) Code() string { return "cluster_level" }

// needLevel returns a levelError unless levels' group is at need or above.
func needLevel(levels interface{ ClusterLevel() uint32 }, need uint32, what string) error {
	if levels == nil {
		return nil
	}
	if cl := levels.ClusterLevel(); cl < need {
		return &levelError{what: what, need: need, cluster: cl}
	}
	return nil
}

// gate is needLevel for s's operations. A member that restarted, or lags,
// may not have applied its group's level yet: before it refuses, it
// applies through a ReadIndex (kvstore's SyncClusterLevel) and looks
// again, so that such a member does not tell its client to upgrade the
// members. Below the level every refusal costs that ReadIndex. Nothing
// is proposed either way: a wait that ran out of time or was canceled
// answers the refusal (503 cluster_level, not applied), not a write's
// timeout, which would say "outcome unknown".
func (s store) gate(ctx context.Context, need uint32, what string) error {
	err := needLevel(s.levels, need, what)
	if err == nil || s.Store == nil {
		return err
	}
	if serr := s.Store.SyncClusterLevel(ctx); serr != nil {
		if ctx.Err() != nil || errors.Is(serr, kvstore.ErrTimeout) {
			return err
		}
		return wireError(serr)
	}
	return needLevel(s.levels, need, what)
}

// memberLevel is one member's answer to the leader's question.
type memberLevel struct {
	id uint64
	// ok: the member answered; level and cluster are its binary's level
	// and the cluster level it applied, 0 from binaries before levels.
	ok             bool
	level, cluster uint32
	err            error
}

// decideLevel is the leader's decision, from the level it applied (cur;
// logged says an entry or snapshot holds it) and each member's answer
// (its own among them): the level to propose, or 0 for none. It proposes
// the lowest level of the members once every member answered and that is
// above cur; otherwise cur again, to put it into the log when only the
// start of a new cluster set it, or when a member whose binary speaks
// cur answered with a lower cluster level (one that restarted from a data
// dir written by a binary before levels, which the log of the level
// passed by).
func decideLevel(cur uint32, logged bool, members []memberLevel) uint32 {
	lowest, all := uint32(math.MaxUint32), len(members) > 0
	for _, m := range members {
		if !m.ok {
			all = false
			continue
		}
		lowest = min(lowest, m.level)
	}
	if all && lowest > cur {
		return lowest
	}
	if cur == 0 {
		return 0
	}
	if !logged {
		return cur
	}
	for _, m := range members {
		if m.ok && m.cluster < cur && m.level >= cur {
			return cur
		}
	}
	return 0
}

// blockingMember returns a member that did not answer while every member
// that did speaks a level above cur: the one the raise waits for.
func blockingMember(cur uint32, members []memberLevel) (memberLevel, bool) {
	var blocking memberLevel
	found := false
	for _, m := range members {
		switch {
		case !m.ok && !found:
			blocking, found = m, true
		case m.ok && m.level <= cur:
			return memberLevel{}, false
		}
	}
	return blocking, found
}

// monitorLevel runs while the member does: whenever it leads, it asks
// every member for its level each levelPollInterval and proposes the
// level decideLevel picks.
func (m *Member) monitorLevel() {
	defer close(m.levelDone)
	warned := map[uint64]uint32{} // members warned of, with their level then
	var blockedSince time.Time    // when a member first did not answer, of a raise it blocks
	var toldAgain time.Time       // when cur was last proposed again
	m.whileLeading(levelPollInterval, func(stopped context.Context) {
		ctx, cancel := context.WithTimeout(stopped, levelPollInterval)
		defer cancel()
		members := m.memberLevels(ctx)
		cur := m.node.ClusterLevel()
		for _, ml := range members {
			if ml.ok && ml.level < cur && warned[ml.id] != ml.level+1 {
				warned[ml.id] = ml.level + 1
				m.lg.Error("a member runs a binary below the cluster level; it may misapply entries: upgrade it",
					zap.Uint64("peer-id", ml.id), zap.Uint32("binary-level", ml.level), zap.Uint32("cluster-level", cur))
			}
		}
		if ml, ok := blockingMember(cur, members); !ok {
			blockedSince = time.Time{}
		} else if blockedSince.IsZero() {
			blockedSince = time.Now()
		} else if time.Since(blockedSince) > 30*time.Second {
			blockedSince = time.Now()
			m.lg.Warn("every member that answered speaks a higher level, but a member does not answer; the cluster level stays",
				zap.Uint64("peer-id", ml.id), zap.Uint32("cluster-level", cur), zap.Error(ml.err))
		}
		l := decideLevel(cur, m.node.ClusterLevelLogged(), members)
		if l == cur {
			// Said again: once per levelRetell, as the member that
			// needs it may take a while to apply it.
			if time.Since(toldAgain) < levelRetell {
				l = 0
			} else {
				toldAgain = time.Now()
			}
		}
		if l > 0 {
			if l > cur {
				m.lg.Info("every member speaks a higher level; raising the cluster level", zap.Uint32("from", cur), zap.Uint32("to", l))
			}
			if err := m.node.ProposeClusterLevel(ctx, l); err != nil {
				m.lg.Warn("cannot propose the cluster level", zap.Uint32("level", l), zap.Error(err))
			}
		}
	})
}

// whileLeading calls f every interval while this member leads, until the
// member stops; f's context ends when it does.
func (m *Member) whileLeading(every time.Duration, f func(stopped context.Context)) {
	stopped, stop := context.WithCancel(context.Background())
	defer stop()
	go func() {
		select {
		case <-m.stopc:
		case <-m.node.Done():
		}
		stop()
	}()
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-stopped.Done():
			return
		case <-t.C:
		}
		if m.node.Leader() == m.node.ID() {
			f(stopped)
		}
	}
}

// memberLevels asks every member, learners too, for its level, this one
// first and from itself.
func (m *Member) memberLevels(ctx context.Context) []memberLevel {
	out := []memberLevel{{id: m.node.ID(), ok: true, level: buildinfo.Level(), cluster: m.node.ClusterLevel()}}
	type answer struct {
		i  int
		ml memberLevel
	}
	var asked []raftnode.Member
	for _, mem := range m.node.Members() {
		if mem.ID != m.node.ID() {
			asked = append(asked, mem)
		}
	}
	answers := make(chan answer, len(asked))
	for i, mem := range asked {
		go func() { answers <- answer{i, m.askLevel(ctx, mem)} }()
	}
	got := make([]memberLevel, len(asked))
	for range asked {
		a := <-answers
		got[a.i] = a.ml
	}
	return append(out, got...)
}

// askLevel reads mem's level from its /status: build.level and
// clusterLevel, each 0 when absent, as from a binary before levels.
func (m *Member) askLevel(ctx context.Context, mem raftnode.Member) memberLevel {
	ml := memberLevel{id: mem.ID}
	body, err := m.getFromMember(ctx, mem, "/status")
	if err != nil {
		ml.err = err
		return ml
	}
	var st struct {
		ID           uint64 `json:"id"`
		ClusterLevel uint32 `json:"clusterLevel"`
		Build        struct {
			Level uint32 `json:"level"`
		} `json:"build"`
	}
	if err := json.Unmarshal(body, &st); err != nil {
		ml.err = fmt.Errorf("member %d's status: %w", mem.ID, err)
		return ml
	}
	if st.ID != mem.ID {
		ml.err = fmt.Errorf("%s answers as member %d, not %d", mem.ClientURL, st.ID, mem.ID)
		return ml
	}
	ml.ok, ml.level, ml.cluster = true, st.Build.Level, st.ClusterLevel
	return ml
}

// getFromMember GETs path (and query) from mem's client port and returns
// the body of a 200 answer, at most 1 MiB; any other answer is an error
// that names the member, the status and the answer's first line.
func (m *Member) getFromMember(ctx context.Context, mem raftnode.Member, path string) ([]byte, error) {
	if mem.ClientURL == "" {
		return nil, fmt.Errorf("member %d has not published its client URL", mem.ID)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimSuffix(mem.ClientURL, "/")+path, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/json")
	hc := m.httpc
	if hc == nil {
		hc = forwardClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		line, _, _ := strings.Cut(strings.TrimSpace(string(body)), "\n")
		return nil, fmt.Errorf("member %d answered %s: %s", mem.ID, resp.Status, line)
	}
	return body, nil
}
