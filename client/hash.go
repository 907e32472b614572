package client

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
)

// A hash check compares the members of one raft group while writes go
// on, as etcdctl's endpoint hashkv does: one member is asked to start it
// (POST /debug/hash), which puts a request that changes nothing in the
// raft log, and every member hashes its state as it applies that entry.
// Members that applied the same log hold the same state there, so their
// hashes at that index must be equal.

// CodeHashNotKept (404): a member keeps no hash at the index asked for: it
// did not apply a hash request there (a snapshot took it past that index:
// the leader's, or its own when it restarted), or the hash is older than
// the last 16 it keeps.
const CodeHashNotKept = "hash_not_kept"

// Hash is one member's hash of its state at one raft index.
type Hash struct {
	// Index is the raft index of the hash request's entry.
	Index uint64 `json:"index"`
	// Keys is the number of keys the member held there.
	Keys int `json:"keys"`
	// Hash is the SHA-256, in hex, of the whole state: keys, values,
	// versions and TTLs, dedup tables, and a shard member's buckets and
	// configs.
	Hash string `json:"hash"`
	// Endpoint is the member that answered (not part of the JSON).
	Endpoint string `json:"-"`
}

// StartHash starts a hash check in the group of Config.Endpoints (the
// config group when the Client is sharded) and returns the hash of the
// member that took it, at the check's index. The request changes nothing,
// so a try that timed out is simply tried again; a member still computing
// the hashes of earlier checks answers 503 (code hash_busy), and the next
// endpoint is tried, as after any 503. Members with an admin
// certificate requirement (TLS) ask for one, as for membership changes.
func (c *Client) StartHash(ctx context.Context) (Hash, error) {
	rep, err := c.do(ctx, &call{op: "hash", method: http.MethodPost, path: "/debug/hash",
		admin: c.Sharded(), ok: []int{http.StatusOK}})
	if err != nil {
		return Hash{}, err
	}
	return decodeHash(rep, "hash")
}

// HashOf returns the hash of the member at endpoint (a client URL) at
// index, in one try bounded by RequestTimeout: it reports that member, so
// it does not move on to another. The member answers once it has applied
// index; a member that keeps no hash there answers 404, code
// CodeHashNotKept.
func (c *Client) HashOf(ctx context.Context, endpoint string, index uint64) (Hash, error) {
	rep, err := c.getOnce(ctx, "hash", endpoint, "/debug/hash?index="+strconv.FormatUint(index, 10))
	if err != nil {
		return Hash{}, err
	}
	return decodeHash(rep, "hash")
}

func decodeHash(rep *reply, op string) (Hash, error) {
	var h Hash
	if err := json.Unmarshal(rep.body, &h); err != nil || h.Hash == "" {
		if err == nil {
			err = fmt.Errorf("no hash in %q", clip(rep.body))
		}
		return Hash{}, &Error{Op: op, Endpoint: rep.endpoint, Status: rep.status, Code: CodeInternal,
			Message: "unreadable hash", Err: err}
	}
	h.Endpoint = rep.endpoint
	return h, nil
}

// clip shortens a body for an error.
func clip(b []byte) string {
	if len(b) > 200 {
		return string(b[:200]) + "..."
	}
	return string(b)
}

// HashCheck is the outcome of CheckHashes: every member's hash at one
// index.
type HashCheck struct {
	Index   uint64       `json:"index"`
	Members []MemberHash `json:"members"`
}

// MemberHash is one member's part of a HashCheck: its hash, or why it has
// none.
type MemberHash struct {
	ID       uint64 `json:"id"`
	Endpoint string `json:"endpoint,omitempty"`
	Hash            // Index, Keys, Hash; zero with Err
	Err      error  `json:"-"`
}

// Problem is nil when every member answered the same hash, and otherwise
// says, in one sentence, which members disagree and which did not answer.
func (h HashCheck) Problem() error {
	byHash := map[string][]string{}
	var failed []string
	for _, m := range h.Members {
		if m.Err != nil {
			failed = append(failed, fmt.Sprintf("member %d: %s", m.ID, strings.TrimPrefix(m.Err.Error(), "client: ")))
			continue
		}
		byHash[m.Hash.Hash] = append(byHash[m.Hash.Hash], strconv.FormatUint(m.ID, 10))
	}
	var parts []string
	if len(byHash) > 1 {
		hashes := make([]string, 0, len(byHash))
		for hh := range byHash {
			hashes = append(hashes, hh)
		}
		slices.Sort(hashes)
		groups := make([]string, 0, len(hashes))
		for _, hh := range hashes {
			groups = append(groups, fmt.Sprintf("members %s have %.12s", strings.Join(byHash[hh], ", "), hh))
		}
		parts = append(parts, fmt.Sprintf("members disagree at index %d: %s", h.Index, strings.Join(groups, "; ")))
	}
	if len(failed) > 0 {
		parts = append(parts, fmt.Sprintf("%d of %d members gave no hash (%s)", len(failed), len(h.Members), strings.Join(failed, "; ")))
	}
	if len(parts) == 0 {
		return nil
	}
	return fmt.Errorf("%s", strings.Join(parts, "; "))
}

// CheckHashes runs a hash check in the group of Config.Endpoints (the
// config group when the Client is sharded): it starts one (StartHash),
// then asks every member of the group's member list for its hash at the
// check's index, all at once. A member that does not answer in time, or
// keeps no hash there, has Err set. The error is the call's own (no
// member started the check); see HashCheck.Problem for the verdict.
func (c *Client) CheckHashes(ctx context.Context) (HashCheck, error) {
	st, err := c.Status(ctx)
	if err != nil {
		return HashCheck{}, err
	}
	first, err := c.StartHash(ctx)
	if err != nil {
		return HashCheck{}, err
	}
	members := slices.Clone(st.Members)
	slices.SortFunc(members, func(x, y Member) int {
		switch {
		case x.ID < y.ID:
			return -1
		case x.ID > y.ID:
			return 1
		}
		return 0
	})
	out := HashCheck{Index: first.Index, Members: make([]MemberHash, len(members))}
	var wg sync.WaitGroup
	for i, m := range members {
		out.Members[i].ID = m.ID
		if len(m.ClientURLs) == 0 {
			out.Members[i].Err = fmt.Errorf("not started: it has published no client URL")
			continue
		}
		out.Members[i].Endpoint = m.ClientURLs[0]
		wg.Go(func() {
			h, err := c.HashOf(ctx, m.ClientURLs[0], first.Index)
			out.Members[i].Hash, out.Members[i].Err = h, err
		})
	}
	wg.Wait()
	return out, nil
}
