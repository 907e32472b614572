package e2e

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/raftkv/raftkv/testcluster"
)

// answerTimeout bounds every request these tests send themselves: the daemon's
// --request-timeout is 5s, so a node that takes 10s to answer is hanging.
const answerTimeout = 10 * time.Second

// rawClient never follows redirects (raftkv serves every request on any member, so a
// redirect is a bug to see) and has no timeout of its own: request bounds each call.
var rawClient = &http.Client{
	CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
}

// request sends one request to rawURL with the given headers (may be nil) and reads the
// whole answer; the error is a transport error or "no answer within answerTimeout".
func request(method, rawURL string, body []byte, header http.Header) (testcluster.Response, error) {
	ctx, cancel := context.WithTimeout(context.Background(), answerTimeout)
	defer cancel()
	var r io.Reader
	if body != nil {
		r = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, rawURL, r)
	if err != nil {
		return testcluster.Response{}, err
	}
	for k, vs := range header {
		req.Header[k] = vs
	}
	resp, err := rawClient.Do(req)
	if err != nil {
		return testcluster.Response{}, fmt.Errorf("%s %s: %w", method, rawURL, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return testcluster.Response{}, fmt.Errorf("%s %s: reading body: %w", method, rawURL, err)
	}
	return testcluster.Response{Status: resp.StatusCode, Header: resp.Header, Body: b}, nil
}

// mustRequest is request to node id of c that fails the test on a transport error or
// a status other than want.
func mustRequest(t *testing.T, c *testcluster.Cluster, id int, method, path string, body []byte, want int) testcluster.Response {
	t.Helper()
	r, err := request(method, c.ClientURL(id)+path, body, nil)
	if err != nil {
		t.Fatalf("node %d: %v", id, err)
	}
	if r.Status != want {
		t.Fatalf("node %d: %s %s: status %d %s, want %d", id, method, path, r.Status, clip(r.Body), want)
	}
	return r
}

// raftIndex returns the X-Raft-Index of a write's 204, failing the test if it is
// missing or malformed.
func raftIndex(t *testing.T, id int, r testcluster.Response) uint64 {
	t.Helper()
	idx, err := strconv.ParseUint(r.Header.Get("X-Raft-Index"), 10, 64)
	if err != nil || idx == 0 {
		t.Fatalf("node %d: write answered 204 with X-Raft-Index %q, want a positive index", id, r.Header.Get("X-Raft-Index"))
	}
	return idx
}

// TestLinearizableReadsOnEveryNode: a write acknowledged by any member is seen by a
// linearizable read on every other member right away: the read confirms the commit
// index with a quorum and waits until that member applied it. The key is the same in
// every round, so a stale read would show the previous round's value. A read may
// instead fail, 503 or 504, when a quorum did not answer in time (two copies of the
// suite at once made one time out); it is sent again, for up to 10 s. Only its 200 is
// judged, and that must hold the new value.
func TestLinearizableReadsOnEveryNode(t *testing.T) {
	t.Parallel()
	c, _ := startCluster(t, testcluster.Options{InProcess: true})
	ids := c.Live()
	const key = "linearizable"
	levels := []string{"", "?level=consistent", "?level=default"}
	for i := range 50 {
		a := ids[i%len(ids)]
		val := fmt.Sprintf("round %d written through node %d", i, a)
		mustRequest(t, c, a, http.MethodPut, "/"+key, []byte(val), http.StatusNoContent)
		for _, b := range ids {
			if b == a {
				continue
			}
			for _, q := range levels {
				var r testcluster.Response
				for deadline := time.Now().Add(10 * time.Second); ; {
					var err error
					r, err = request(http.MethodGet, c.ClientURL(b)+"/"+key+q, nil, nil)
					if err != nil {
						t.Fatalf("round %d: node %d: %v", i, b, err)
					}
					if (r.Status != http.StatusServiceUnavailable && r.Status != http.StatusGatewayTimeout) || time.Now().After(deadline) {
						break
					}
					t.Logf("round %d: node %d: GET /%s%s: %d %s; again", i, b, key, q, r.Status, clip(r.Body))
				}
				if r.Status != http.StatusOK || string(r.Body) != val {
					t.Fatalf("round %d: node %d: GET /%s%s right after node %d acknowledged %q: %d %s, want 200 with the new value",
						i, b, key, q, a, val, r.Status, clip(r.Body))
				}
			}
		}
	}
}

// TestReadYourWritesWithMinIndex: the X-Raft-Index of a write, passed as min_index to a
// GET on another member, makes that member wait until it applied the write, so the
// first read already returns it (no polling, no quorum round).
func TestReadYourWritesWithMinIndex(t *testing.T) {
	t.Parallel()
	c, _ := startCluster(t, testcluster.Options{InProcess: true})
	ids := c.Live()
	const key = "read-your-writes"
	var last uint64
	for i := range 30 {
		a := ids[i%len(ids)]
		val := fmt.Sprintf("round %d written through node %d", i, a)
		r := mustRequest(t, c, a, http.MethodPut, "/"+key, []byte(val), http.StatusNoContent)
		idx := raftIndex(t, a, r)
		if idx <= last {
			t.Fatalf("round %d: X-Raft-Index %d not above the previous write's %d", i, idx, last)
		}
		last = idx
		for _, b := range ids {
			if b == a {
				continue
			}
			path := fmt.Sprintf("/%s?min_index=%d", key, idx)
			g := mustRequest(t, c, b, http.MethodGet, path, nil, http.StatusOK)
			if string(g.Body) != val {
				t.Fatalf("round %d: node %d: GET %s right after node %d acknowledged index %d: %s, want %q",
					i, b, path, a, idx, clip(g.Body), val)
			}
		}
	}
}

// TestMinorityRefusesLinearizableReads kills two of three members, leaving the leader
// alone: it must refuse linearizable reads and writes with 503 or 504 within the
// request deadline (never stale data, never a hang) while ?level=stale still serves
// its last value. Once the two are back, linearizable reads work again and the value
// is intact.
func TestMinorityRefusesLinearizableReads(t *testing.T) {
	t.Parallel()
	c, leader := startCluster(t, testcluster.Options{})
	const key, val = "minority", "written before the partition"
	// The survivor acknowledged (so applied) the value before losing its peers.
	mustRequest(t, c, leader, http.MethodPut, "/"+key, []byte(val), http.StatusNoContent)
	mustRequest(t, c, leader, http.MethodGet, "/"+key, nil, http.StatusOK)
	others := followers(c, leader)
	for _, id := range others {
		c.Kill(id)
	}
	t.Logf("killed nodes %v; node %d, the leader, is alone", others, leader)

	// The refused requests run concurrently: each may take the whole request deadline.
	refused := []struct{ method, path string }{
		{http.MethodGet, "/" + key},
		{http.MethodGet, "/key/" + key},
		{http.MethodGet, "/" + key + "?level=consistent"},
		{http.MethodGet, "/key/" + key + "?level=default"},
		{http.MethodPut, "/during-partition"},
	}
	var wg sync.WaitGroup
	answers := make([]string, len(refused))
	errs := make([]error, len(refused))
	for i, rq := range refused {
		wg.Add(1)
		go func() {
			defer wg.Done()
			answers[i], errs[i] = checkRefused(c.ClientURL(leader), rq.method, rq.path)
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("node %d alone: %v", leader, err)
		} else {
			t.Logf("node %d alone: %s", leader, answers[i])
		}
	}

	// Stale reads still answer from local state.
	if r := mustRequest(t, c, leader, http.MethodGet, "/"+key+"?level=stale", nil, http.StatusOK); string(r.Body) != val {
		t.Errorf("node %d alone: GET /%s?level=stale: %s, want %q", leader, key, clip(r.Body), val)
	}
	path := "/key/" + key + "?level=stale"
	checkKeyJSON(t, leader, path, mustRequest(t, c, leader, http.MethodGet, path, nil, http.StatusOK), fmt.Sprintf("{%q:%q}", key, val))

	// By now the survivor has stepped down (check quorum), so it knows it has no
	// leader: the documented answer is then 503 with Retry-After.
	testcluster.WaitFor(t, valueTimeout, "a linearizable read on the lone node to get 503", func() error {
		r, err := request(http.MethodGet, c.ClientURL(leader)+"/"+key, nil, nil)
		switch {
		case err != nil:
			return err
		case r.Status == http.StatusOK:
			t.Fatalf("node %d alone: GET /%s: 200 %s, want 503 or 504", leader, key, clip(r.Body))
		case r.Status != http.StatusServiceUnavailable:
			return fmt.Errorf("status %d %s", r.Status, clip(r.Body))
		case r.Header.Get("Retry-After") == "":
			t.Errorf("node %d alone: GET /%s: 503 without Retry-After", leader, key)
		}
		return nil
	})

	for _, id := range others {
		c.Restart(id)
	}
	c.WaitLeader(t, leaderTimeout)
	for _, id := range c.Live() {
		c.WaitValue(t, id, key, []byte(val), valueTimeout)
	}
	// Writes work again too.
	mustPut(t, c, leader, "after-partition", []byte("x"))
	for _, id := range c.Live() {
		c.WaitValue(t, id, "after-partition", []byte("x"), valueTimeout)
	}
}

// checkRefused sends one request to a node cut off from the majority and returns an
// error unless it answers 503 or 504 within answerTimeout; else it describes the answer.
func checkRefused(base, method, path string) (string, error) {
	var body []byte
	if method == http.MethodPut {
		body = []byte("must not be acknowledged")
	}
	start := time.Now()
	r, err := request(method, base+path, body, nil)
	took := time.Since(start).Round(time.Millisecond)
	if err != nil {
		return "", err
	}
	if !slices.Contains([]int{http.StatusServiceUnavailable, http.StatusGatewayTimeout}, r.Status) {
		return "", fmt.Errorf("%s %s: status %d %s after %v, want 503 or 504", method, path, r.Status, clip(r.Body), took)
	}
	return fmt.Sprintf("%s %s: %d %s after %v", method, path, r.Status, bytes.TrimSpace(r.Body), took), nil
}
