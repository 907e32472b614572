package robustness

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Hash checks during a history: every so often one live member is asked
// to start a hash check (POST /debug/hash), and every member of the group
// for its hash at the check's index (GET /debug/hash?index=N), while the
// workload and the fault go on. Members that applied the same log hold the
// same state at every index, so two different hashes at one index are a
// violation. A member that does not answer (it is down or cut off), or
// keeps no hash there (a snapshot took it past the index), is counted,
// not judged.

// HashCheckResult is what the hash checks of a history found.
type HashCheckResult struct {
	// Checks is the number of checks started; Compared the number of
	// them in which at least two members gave a hash.
	Checks, Compared int
	// Hashes is the number of member hashes read; NotKept and NoAnswer
	// count the members that gave none.
	Hashes, NotKept, NoAnswer int
	// Violations are the checks in which members disagreed, one line each.
	Violations []string
	// Members counts the checks the members' leaders ran themselves
	// (raftkv --hash-check-interval), by result, as their /metrics say
	// (AddMemberChecks); nil when not read.
	Members map[string]int
}

// OK reports whether no check found members that disagree.
func (r HashCheckResult) OK() bool { return len(r.Violations) == 0 && r.Members["mismatch"] == 0 }

func (r HashCheckResult) String() string {
	s := fmt.Sprintf("%d hash checks (%d compared two members or more), %d member hashes, %d not kept, %d unanswered",
		r.Checks, r.Compared, r.Hashes, r.NotKept, r.NoAnswer)
	if r.Members != nil {
		s += fmt.Sprintf("; the leaders' own checks: %d agree, %d incomplete, %d not started, %d mismatch",
			r.Members["agree"], r.Members["incomplete"], r.Members["error"], r.Members["mismatch"])
	}
	if len(r.Violations) > 0 {
		s += ": " + strings.Join(r.Violations, "; ")
	}
	return s
}

// memberCheckLine matches a member's raftkv_hash_checks_total sample.
var memberCheckLine = regexp.MustCompile(`(?m)^raftkv_hash_checks_total\{result="(\w+)"\} (\d+)$`)

// AddMemberChecks adds up the hash checks the members at urls ran as
// their groups' leaders, from their /metrics; a member that does not
// answer (it is down) is skipped.
func (r *HashCheckResult) AddMemberChecks(cl *Client, urls []string) {
	if r.Members == nil {
		r.Members = map[string]int{}
	}
	for _, u := range urls {
		resp := cl.do(http.MethodGet, strings.TrimSuffix(u, "/")+"/metrics", nil)
		if resp.err != nil || resp.status != http.StatusOK {
			continue
		}
		for _, m := range memberCheckLine.FindAllStringSubmatch(string(resp.body), -1) {
			n, _ := strconv.Atoi(m[2])
			r.Members[m[1]] += n
		}
	}
}

// HashChecker runs hash checks in the background until Stop.
type HashChecker struct {
	cl     *Client
	groups func() [][]string // each raft group's members' client URLs
	stop   chan struct{}
	done   chan struct{}
	mu     sync.Mutex
	res    HashCheckResult
}

// StartHashChecks starts a check every interval in a random group of
// groups() (each the client URLs of one raft group's members), on a
// random member of it, and reads its hash on every member of that group.
// A member that is down gets the check's start too: it fails at once,
// and nothing is counted.
func StartHashChecks(cl *Client, groups func() [][]string, interval time.Duration, seed uint64) *HashChecker {
	h := &HashChecker{cl: cl, groups: groups, stop: make(chan struct{}), done: make(chan struct{})}
	rng := rand.New(rand.NewPCG(seed, 0x4a54))
	go func() {
		defer close(h.done)
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-h.stop:
				return
			case <-t.C:
			}
			if gs := h.groups(); len(gs) > 0 {
				if g := gs[rng.IntN(len(gs))]; len(g) > 0 {
					h.checkOnce(g[rng.IntN(len(g))], g)
				}
			}
		}
	}()
	return h
}

// Stop ends the checks, waits for the one under way and returns what they
// found.
func (h *HashChecker) Stop() HashCheckResult {
	select {
	case <-h.stop:
	default:
		close(h.stop)
	}
	<-h.done
	return h.Result()
}

// Result is what the checks found so far.
func (h *HashChecker) Result() HashCheckResult {
	h.mu.Lock()
	defer h.mu.Unlock()
	r := h.res
	r.Violations = slices.Clone(r.Violations)
	return r
}

// memberHash is a member's answer of GET /debug/hash.
type memberHash struct {
	Index uint64 `json:"index"`
	Keys  int    `json:"keys"`
	Hash  string `json:"hash"`
}

// checkOnce starts one check on base and compares the hashes of members.
func (h *HashChecker) checkOnce(base string, members []string) {
	r := h.cl.do(http.MethodPost, strings.TrimSuffix(base, "/")+"/debug/hash", nil)
	var started memberHash
	if r.err != nil || r.status != http.StatusOK || json.Unmarshal(r.body, &started) != nil || started.Index == 0 {
		return // no leader, cut off: not started, or not known where
	}
	got := map[string]memberHash{}
	var mu sync.Mutex
	notKept, noAnswer := 0, 0
	var wg sync.WaitGroup
	for _, m := range members {
		wg.Go(func() {
			r := h.cl.do(http.MethodGet, strings.TrimSuffix(m, "/")+"/debug/hash?index="+strconv.FormatUint(started.Index, 10), nil)
			var mh memberHash
			mu.Lock()
			defer mu.Unlock()
			switch {
			case r.err == nil && r.status == http.StatusOK && json.Unmarshal(r.body, &mh) == nil && mh.Index == started.Index:
				got[m] = mh
			case r.err == nil && r.status == http.StatusNotFound && bytes.Contains(r.body, []byte("hash_not_kept")):
				notKept++
			default:
				noAnswer++
			}
		})
	}
	wg.Wait()
	h.mu.Lock()
	defer h.mu.Unlock()
	h.res.Checks++
	h.res.Hashes += len(got)
	h.res.NotKept += notKept
	h.res.NoAnswer += noAnswer
	if len(got) >= 2 {
		h.res.Compared++
	}
	byHash := map[string][]string{}
	for m, mh := range got {
		byHash[mh.Hash] = append(byHash[mh.Hash], fmt.Sprintf("%s (%d keys)", m, mh.Keys))
	}
	if len(byHash) > 1 {
		var parts []string
		for hash, ms := range byHash {
			slices.Sort(ms)
			parts = append(parts, fmt.Sprintf("%.12s at %s", hash, strings.Join(ms, ", ")))
		}
		slices.Sort(parts)
		h.res.Violations = append(h.res.Violations, fmt.Sprintf("members disagree at index %d: %s", started.Index, strings.Join(parts, "; ")))
	}
}
