package httpapi

import (
	"net/http"
	"strconv"
	"strings"
)

// This file holds /debug/hash: a hash check, a state hash every member
// takes at one raft index (Store.HashKV), so that members can be
// compared while writes go on.

// HashResult is a member's hash of its state at one raft index.
type HashResult struct {
	Index uint64 `json:"index"`
	Keys  int    `json:"keys"`
	Hash  string `json:"hash"`
}

// ErrBadHashIndex: GET /debug/hash without a usable index.
var ErrBadHashIndex error = badRequest("GET /debug/hash takes ?index=N, the raft index a POST /debug/hash answered with")

const (
	// hashRoute is the path of the hash check.
	hashRoute = "/debug/hash"
	allowHash = "GET, HEAD, POST"
)

// hash serves /debug/hash: POST proposes a hash request and answers this
// member's hash at its index; GET ?index=N answers this member's hash at
// N, once it has applied N (404 hash_not_kept when it keeps none there).
func (h *handler) hash(w http.ResponseWriter, r *http.Request) error {
	q, err := parseQuery(r.URL.RawQuery)
	if err != nil {
		return err
	}
	v, ok, err := queryParam(q, "index")
	if err != nil {
		return err
	}
	var index uint64
	if r.Method == http.MethodPost {
		if ok {
			return withDetail(ErrBadHashIndex, "POST /debug/hash takes no index: it starts a hash check at a new one; read a member's hash at an index with GET /debug/hash?index=N")
		}
		if err := writeParams(q, "POST /debug/hash"); err != nil {
			return err
		}
	} else {
		if index, err = strconv.ParseUint(strings.TrimSpace(v), 10, 64); !ok || err != nil || index == 0 {
			return ErrBadHashIndex
		}
	}
	ctx, cancel := h.callContext(r.Context())
	defer cancel()
	var res HashResult
	if r.Method == http.MethodPost {
		res, err = h.cfg.Store.HashKV(ctx)
	} else {
		res, err = h.cfg.Store.HashAt(ctx, index)
	}
	if err != nil {
		return err
	}
	w.Header()["X-Raft-Index"] = []string{strconv.FormatUint(res.Index, 10)}
	return writeJSON(w, r, http.StatusOK, res)
}
