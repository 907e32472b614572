package httpapi

import (
	"context"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
)

// The membership routes beyond raftexample's add and remove: adding a
// learner (POST /<id>?learner=true, or "learner":true in POST /join),
// promoting it (POST /<id>/promote) and moving leadership (POST
// /leader/transfer). POST to the root is never a key write, so these names
// take no key away.

var (
	// ErrBadLearnerFlag: POST /<id>?learner= with a value that is not a
	// boolean.
	ErrBadLearnerFlag error = badRequest("learner must be true or false")
	// ErrBadPromoteID: POST /<id>/promote with an <id> that is not a
	// positive integer.
	ErrBadPromoteID error = badRequest("POST /<id>/promote promotes a learner, and <id> must be a positive integer")
	// ErrBadUpdateID: POST /<id>/update with an <id> that is not a
	// positive integer.
	ErrBadUpdateID error = badRequest("POST /<id>/update gives a member a new peer URL, and <id> must be a positive integer")
	// ErrBadTransferTo: POST /leader/transfer?to= with a value that is not
	// a member id.
	ErrBadTransferTo error = badRequest("to must be the id of a voting member (a positive integer), or absent for the most caught-up one")
)

const (
	transferPath  = "leader/transfer"
	promoteSuffix = "/promote"
	updateSuffix  = "/update"
)

// postRoot serves POST /<name>: POST /leader/transfer, POST /<id>/promote,
// POST /<id>/update, else raftexample's add of member <name>.
func (h *handler) postRoot(w http.ResponseWriter, r *http.Request, name string) error {
	switch {
	case name == transferPath:
		return h.transferLeadership(w, r)
	case strings.HasSuffix(name, promoteSuffix):
		return h.promoteMember(w, r, strings.TrimSuffix(name, promoteSuffix))
	case strings.HasSuffix(name, updateSuffix):
		return h.updateMember(w, r, strings.TrimSuffix(name, updateSuffix))
	}
	return h.addMember(w, r, name)
}

// learnerFlag reads POST /<id>'s learner parameter (strconv.ParseBool's
// spellings: true, 1, false, 0...); absent means a voting member.
func learnerFlag(rawQuery string) (bool, error) {
	q, err := parseQuery(rawQuery)
	if err != nil {
		return false, err
	}
	// A misspelt learner flag would add a voter.
	if err := writeParams(q, "POST /<id>", "learner"); err != nil {
		return false, err
	}
	v, ok, err := queryParam(q, "learner")
	if err != nil || !ok {
		return false, err
	}
	learner, err := strconv.ParseBool(strings.TrimSpace(v))
	if err != nil {
		return false, withDetail(ErrBadLearnerFlag, "learner must be true or false, got %q", v)
	}
	return learner, nil
}

// parseJoinLearner reads /join's "learner": true or false; absent or null
// means a voting member.
func parseJoinLearner(raw json.RawMessage) (bool, error) {
	switch string(raw) {
	case "", "null", "false":
		return false, nil
	case "true":
		return true, nil
	}
	return false, withMore(ErrBadJoin, "learner must be true or false, got %s", raw)
}

// addMemberAs adds member id at peerURL, as a learner if learner says so.
func (h *handler) addMemberAs(parent context.Context, id uint64, peerURL string, learner bool) error {
	ctx, cancel := h.callContext(parent)
	defer cancel()
	var err error
	if learner {
		err = h.cfg.Cluster.AddLearner(ctx, id, peerURL)
	} else {
		err = h.cfg.Cluster.AddMember(ctx, id, peerURL)
	}
	if err != nil {
		return onMember{err}
	}
	return nil
}

// promoteMember serves POST /<id>/promote: 204 once learner <id> is a
// voter. The leader refuses a learner not caught up (409
// learner_not_ready); a voter gets 409, an unknown id 404.
func (h *handler) promoteMember(w http.ResponseWriter, r *http.Request, idText string) error {
	id, ok := parseMemberID(idText)
	if !ok {
		return ErrBadPromoteID
	}
	if err := noParams(r, "POST /<id>/promote"); err != nil {
		return err
	}
	ctx, cancel := h.callContext(r.Context())
	defer cancel()
	if err := h.cfg.Cluster.PromoteMember(ctx, id); err != nil {
		return onMember{err}
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// updateMember serves POST /<id>/update, its body the member's new peer
// URL: 204 once the change is applied, as etcd's member update. An
// unknown id gets 404, a URL another member has 409.
func (h *handler) updateMember(w http.ResponseWriter, r *http.Request, idText string) error {
	id, ok := parseMemberID(idText)
	if !ok {
		return ErrBadUpdateID
	}
	if err := noParams(r, "POST /<id>/update"); err != nil {
		return err
	}
	peerURL, err := readPeerURL(w, r)
	if err != nil {
		return err
	}
	ctx, cancel := h.callContext(r.Context())
	defer cancel()
	if err := h.cfg.Cluster.UpdateMember(ctx, id, peerURL); err != nil {
		return onMember{err}
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// readPeerURL reads the peer URL that is the body of POST /<id> and POST
// /<id>/update.
func readPeerURL(w http.ResponseWriter, r *http.Request) (string, error) {
	body, err := readBody(w, r, maxPeerURLBytes)
	if err != nil {
		return "", err
	}
	return parsePeerURL(string(body))
}

// transferAnswer is the body of a completed POST /leader/transfer.
type transferAnswer struct {
	Leader uint64 `json:"leader"`
}

// transferLeadership serves POST /leader/transfer[?to=<id>]: 200
// {"leader":<id>} once this member sees the new leader.
func (h *handler) transferLeadership(w http.ResponseWriter, r *http.Request) error {
	q, err := parseQuery(r.URL.RawQuery)
	if err != nil {
		return err
	}
	if err := writeParams(q, "POST /leader/transfer", "to"); err != nil {
		return err
	}
	toText, hasTo, err := queryParam(q, "to")
	if err != nil {
		return err
	}
	var to uint64
	if hasTo {
		var ok bool
		if to, ok = parseMemberID(strings.TrimSpace(toText)); !ok {
			return withMore(ErrBadTransferTo, "got %q", toText)
		}
	}
	ctx, cancel := h.callContext(r.Context())
	defer cancel()
	leader, err := h.cfg.Cluster.TransferLeadership(ctx, to)
	if err != nil {
		return onMember{err}
	}
	return writeJSON(w, r, http.StatusOK, transferAnswer{Leader: leader})
}
