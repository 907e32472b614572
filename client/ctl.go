package client

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
)

// The operator calls of raftkvctl: membership changes, leader transfer and
// the status of one given member. Like Status they go to Config.Endpoints,
// or to the config group when the Client is sharded.

// AddMember adds member id at peerURL (POST /<id>, body the peer URL), as
// a learner (?learner=true) if learner is set, and returns once the change
// is applied. A change is a write: it is retried as one, and a change some
// try of which may have been applied ends, if it fails, in
// ErrOutcomeUnknown (a retry of an add that was applied is answered 409).
func (c *Client) AddMember(ctx context.Context, id uint64, peerURL string, learner bool) error {
	if id == 0 {
		return badInput("member-add", "", "member id 0: want a positive integer")
	}
	path := "/" + strconv.FormatUint(id, 10)
	if learner {
		path += "?learner=true"
	}
	_, err := c.do(ctx, &call{op: "member-add", method: http.MethodPost, path: path, body: []byte(peerURL),
		write: true, admin: c.Sharded(), ok: []int{http.StatusNoContent, http.StatusOK}})
	return err
}

// RemoveMember removes member id (DELETE /<id>) and returns once the
// change is applied.
func (c *Client) RemoveMember(ctx context.Context, id uint64) error {
	if id == 0 {
		return badInput("member-remove", "", "member id 0: want a positive integer")
	}
	_, err := c.do(ctx, &call{op: "member-remove", method: http.MethodDelete, path: "/" + strconv.FormatUint(id, 10),
		write: true, admin: c.Sharded(), ok: []int{http.StatusNoContent, http.StatusOK}})
	return err
}

// PromoteMember makes learner id a voting member (POST /<id>/promote) once
// the leader finds it caught up; a learner that is not yet is refused with
// ErrConflict, code learner_not_ready.
func (c *Client) PromoteMember(ctx context.Context, id uint64) error {
	if id == 0 {
		return badInput("member-promote", "", "member id 0: want a positive integer")
	}
	_, err := c.do(ctx, &call{op: "member-promote", method: http.MethodPost, path: "/" + strconv.FormatUint(id, 10) + "/promote",
		write: true, admin: c.Sharded(), ok: []int{http.StatusNoContent, http.StatusOK}})
	return err
}

// UpdateMember gives member id the peer URL peerURL (POST /<id>/update,
// body the URL), as etcd's member update, and returns once the change is
// applied. Restart the member listening there afterwards.
func (c *Client) UpdateMember(ctx context.Context, id uint64, peerURL string) error {
	if id == 0 {
		return badInput("member-update", "", "member id 0: want a positive integer")
	}
	_, err := c.do(ctx, &call{op: "member-update", method: http.MethodPost, path: "/" + strconv.FormatUint(id, 10) + "/update",
		body: []byte(peerURL), write: true, admin: c.Sharded(), ok: []int{http.StatusNoContent, http.StatusOK}})
	return err
}

// TransferLeader hands leadership to member to (POST
// /leader/transfer?to=<id>), or to the most caught-up voter when to is 0,
// and returns the new leader once the member asked sees it.
func (c *Client) TransferLeader(ctx context.Context, to uint64) (uint64, error) {
	path := "/leader/transfer"
	if to != 0 {
		path += "?" + url.Values{"to": {strconv.FormatUint(to, 10)}}.Encode()
	}
	rep, err := c.do(ctx, &call{op: "leader-transfer", method: http.MethodPost, path: path,
		admin: c.Sharded(), ok: []int{http.StatusOK}})
	if err != nil {
		return 0, err
	}
	var ans struct {
		Leader uint64 `json:"leader"`
	}
	if err := json.Unmarshal(rep.body, &ans); err != nil {
		return 0, &Error{Op: "leader-transfer", Endpoint: rep.endpoint, Status: rep.status, Code: CodeInternal,
			Message: "unreadable answer", Err: err}
	}
	return ans.Leader, nil
}

// StatusOf returns GET /status of the member at endpoint (a client URL),
// whichever group it belongs to, in one try bounded by RequestTimeout: it
// reports that member, so it does not move on to another.
func (c *Client) StatusOf(ctx context.Context, endpoint string) (Status, error) {
	rep, err := c.getOnce(ctx, "status", endpoint, "/status")
	if err != nil {
		return Status{}, err
	}
	return decodeStatus(rep)
}

// getOnce GETs path from the member at endpoint (a client URL) in one try
// bounded by RequestTimeout, and returns its 200 answer; any other answer,
// or none, is the call op's *Error.
func (c *Client) getOnce(ctx context.Context, op, endpoint, path string) (*reply, error) {
	base, err := normalizeURL(endpoint)
	if err != nil {
		return nil, badInput(op, "", "%v", err)
	}
	ctx, cancel := c.callContext(ctx)
	defer cancel()
	rep, _, err := c.send(ctx, &call{op: op, method: http.MethodGet, path: path}, base)
	if err != nil {
		return nil, &Error{Op: op, Endpoint: base, Err: err, Tries: 1}
	}
	if rep.status != http.StatusOK {
		e := errorOf(rep)
		e.Op, e.Tries = op, 1
		return nil, e
	}
	return rep, nil
}
