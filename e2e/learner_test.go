package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/raftkv/raftkv/testcluster"
)

// leaderStatus is the part of GET /status these tests read that
// testcluster.Status leaves out: the leader's progress of each follower.
type leaderStatus struct {
	Leader      uint64
	Term        uint64
	CommitIndex uint64
	Members     []struct {
		ID        uint64
		IsLearner bool
	}
	Progress map[string]struct {
		Match     uint64
		IsLearner bool
	}
}

func statusOf(t *testing.T, c *testcluster.Cluster, id int) leaderStatus {
	t.Helper()
	r, err := c.Do(id, http.MethodGet, "/status", nil)
	if err != nil || r.Status != http.StatusOK {
		t.Fatalf("node %d: GET /status: %d %q %v", id, r.Status, r.Body, err)
	}
	var s leaderStatus
	if err := json.Unmarshal(r.Body, &s); err != nil {
		t.Fatalf("node %d: GET /status: %v: %q", id, err, r.Body)
	}
	return s
}

// doJSON sends a request asking for errors in JSON and returns the
// status, the error's code, if any, and the body.
func doJSON(t *testing.T, c *testcluster.Cluster, id int, method, path string) (int, string, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, c.ClientURL(id)+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Accept", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("node %d: %s %s: %v", id, method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("node %d: %s %s: reading the answer: %v", id, method, path, err)
	}
	var e struct{ Error, Code string }
	_ = json.Unmarshal(b, &e)
	return resp.StatusCode, e.Code, strings.TrimSpace(string(b))
}

// waitRole waits until node via lists member id with the role learner says.
func waitRole(t *testing.T, c *testcluster.Cluster, via, id int, learner bool) {
	t.Helper()
	testcluster.WaitFor(t, convergeTimeout, fmt.Sprintf("node %d to list %d with isLearner %v", via, id, learner), func() error {
		s, err := c.Status(via)
		if err != nil {
			return err
		}
		for _, m := range s.Members {
			if m.ID == uint64(id) {
				if m.IsLearner != learner {
					return fmt.Errorf("isLearner %v", m.IsLearner)
				}
				return nil
			}
		}
		return fmt.Errorf("no member %d in %v", id, s.MemberIDs())
	})
}

// TestLearnerCatchesUpAndIsPromoted: a learner added once the log was
// compacted catches up from a snapshot and is listed as a learner, with
// the leader's progress of it. Stopped while the others go on, it is
// refused promotion (409 learner_not_ready), even through a follower,
// which forwards it; restarted and caught up, it is promoted, and votes.
func TestLearnerCatchesUpAndIsPromoted(t *testing.T) {
	t.Parallel()
	c, leader := startCluster(t, testcluster.Options{SnapshotCount: 30, SnapshotCatchUpEntries: 10})
	want := make(map[string][]byte)
	for i := range 80 { // one at a time: one raft entry each
		k, v := fmt.Sprintf("key-%03d", i), []byte(fmt.Sprintf("value-%03d", i))
		mustPut(t, c, leader, k, v)
		want[k] = v
	}
	waitSnapshot(t, c, leader)

	n := c.AddLearner(t)
	waitKeys(t, c, n, want, 60*time.Second)
	waitSnapshot(t, c, n) // entry 1 is long compacted: it restored a snapshot
	if !c.LogContains(n, "applying snapshot from leader") {
		t.Errorf("node %d caught up without a snapshot from the leader", n)
	}
	for _, id := range c.Live() {
		waitRole(t, c, id, n, true)
	}
	leader = c.WaitLeader(t, leaderTimeout)
	if pr, ok := statusOf(t, c, leader).Progress[strconv.Itoa(n)]; !ok || !pr.IsLearner {
		t.Errorf("leader %d's progress of learner %d: %+v (present %v)", leader, n, pr, ok)
	}

	// Stopped, the learner falls behind: below 90% of the leader's log.
	if code := c.Stop(n); code != 0 {
		t.Fatalf("learner %d exited with status %d on SIGTERM", n, code)
	}
	for i := 0; ; i++ {
		s := statusOf(t, c, leader)
		if pr := s.Progress[strconv.Itoa(n)]; float64(pr.Match) < 0.9*float64(s.CommitIndex) {
			break
		}
		if i > 1000 {
			t.Fatalf("learner still within 90%% of the leader after %d writes: %+v", i, s)
		}
		mustPut(t, c, leader, fmt.Sprintf("behind-%04d", i), []byte("x"))
	}
	follower := followers(c, leader)[0]
	path := fmt.Sprintf("/%d/promote", n)
	if st, code, body := doJSON(t, c, follower, http.MethodPost, path); st != http.StatusConflict || code != "learner_not_ready" ||
		!strings.Contains(body, fmt.Sprintf("learner %d is not caught up", n)) {
		t.Fatalf("POST %s of a stopped learner through node %d: %d %s", path, follower, st, body)
	}
	waitRole(t, c, leader, n, true)

	c.Restart(n)
	waitKeys(t, c, n, want, 60*time.Second)
	testcluster.WaitFor(t, convergeTimeout, "POST "+path+" to be taken", func() error {
		st, code, body := doJSON(t, c, follower, http.MethodPost, path)
		if st != http.StatusNoContent {
			return fmt.Errorf("%d %s %s", st, code, body)
		}
		return nil
	})
	for _, id := range c.Live() {
		waitRole(t, c, id, n, false)
	}
	if st, code, body := doJSON(t, c, leader, http.MethodPost, path); st != http.StatusConflict || code != "conflict" {
		t.Errorf("POST %s of a voter: %d %s, want 409 conflict", path, st, body)
	}
	if st, code, body := doJSON(t, c, leader, http.MethodPost, "/9/promote"); st != http.StatusNotFound || code != "member_not_found" {
		t.Errorf("POST /9/promote: %d %s, want 404 member_not_found", st, body)
	}
	// Four voters now: with two of them stopped, no quorum.
	s, err := c.Status(n)
	if err != nil || s.Voters() != 4 {
		t.Fatalf("node %d: %d voters, %v", n, s.Voters(), err)
	}
	mustPut(t, c, n, "written-via-promoted", []byte("y"))
	c.WaitConverged(t, convergeTimeout)
}

// TestLeaderTransfer: POST /leader/transfer?to=<id>, sent to a follower
// that forwards it, answers once the chosen member leads, which got there
// by raft's MsgTimeoutNow; a SIGTERM of the leader then hands leadership
// on in the same way before it exits, so no member waits out an election
// timeout.
func TestLeaderTransfer(t *testing.T) {
	t.Parallel()
	c, leader := startCluster(t, testcluster.Options{})
	mustPut(t, c, leader, "before", []byte("1"))
	fs := followers(c, leader)
	to, via := fs[0], fs[1]
	path := fmt.Sprintf("/leader/transfer?to=%d", to)
	// 503 until node via knows the leader's client URL, to forward to it.
	testcluster.WaitFor(t, leaderTimeout, "POST "+path+" through node "+strconv.Itoa(via), func() error {
		st, code, body := doJSON(t, c, via, http.MethodPost, path)
		switch {
		case st == http.StatusServiceUnavailable:
			return fmt.Errorf("%d %s %s", st, code, body)
		case st != http.StatusOK || body != fmt.Sprintf(`{"leader":%d}`, to):
			t.Fatalf("POST %s through node %d: %d %s %s", path, via, st, code, body)
		}
		return nil
	})
	for _, id := range c.Live() {
		if s, err := c.Status(id); err != nil || s.Leader != uint64(to) {
			t.Errorf("node %d sees leader %d (%v) once the transfer was answered, want %d", id, s.Leader, err, to)
		}
	}
	timeoutNow := fmt.Sprintf("received MsgTimeoutNow from %x", leader)
	if !c.LogContains(to, timeoutNow) {
		t.Errorf("node %d's log lacks %q", to, timeoutNow)
	}
	for _, tc := range []struct {
		path, code string
		status     int
	}{
		{"/leader/transfer?to=9", "conflict", http.StatusConflict},
		{"/leader/transfer?to=x", "bad_request", http.StatusBadRequest},
	} {
		if st, code, body := doJSON(t, c, to, http.MethodPost, tc.path); st != tc.status || code != tc.code {
			t.Errorf("POST %s: %d %s, want %d %s", tc.path, st, body, tc.status, tc.code)
		}
	}
	mustPut(t, c, via, "after-transfer", []byte("2"))

	// A graceful stop of the leader: leadership is handed on first.
	term := statusOf(t, c, to).Term
	if code := c.Stop(to); code != 0 {
		t.Fatalf("leader %d exited with status %d on SIGTERM", to, code)
	}
	if !c.LogContains(to, "leadership transferred before stopping") {
		t.Errorf("stopped leader %d's log lacks the transfer", to)
	}
	next := c.WaitLeader(t, leaderTimeout)
	timeoutNow = fmt.Sprintf("received MsgTimeoutNow from %x", to)
	if !c.LogContains(next, timeoutNow) {
		t.Errorf("new leader %d's log lacks %q: elected by an election timeout, not a transfer", next, timeoutNow)
	}
	if s := statusOf(t, c, next); s.Term != term+1 {
		t.Errorf("new leader's term %d, want %d: one campaign, started by the transfer", s.Term, term+1)
	}
	mustPut(t, c, next, "after-stop", []byte("3"))
	c.Restart(to)
	c.WaitConverged(t, convergeTimeout)
}
