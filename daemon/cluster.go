package daemon

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/raftkv/raftkv/httpapi"
	"github.com/raftkv/raftkv/internal/buildinfo"
	"github.com/raftkv/raftkv/kvstore"
	"github.com/raftkv/raftkv/peerurl"
	"github.com/raftkv/raftkv/raftnode"
)

// healthLag is how far the applied index may trail the commit index
// before the member reports itself unhealthy.
const healthLag = 1000

// store adapts kvstore to the HTTP layer's interface.
type store struct {
	*kvstore.Store
	// levels is the raft group's cluster level, which gates the
	// operations above level 0 (level.go); nil gates nothing.
	levels interface{ ClusterLevel() uint32 }
}

func (s store) GetKV(ctx context.Context, key string, o httpapi.ReadOptions) (httpapi.KeyValue, uint64, error) {
	kv, index, err := s.Store.GetKV(ctx, key, kvstore.ReadOptions{Stale: o.Stale, MinIndex: o.MinIndex})
	return wireKV(kv), index, wireError(err)
}

func (s store) Put(ctx context.Context, key string, value []byte) (httpapi.Written, error) {
	r, err := s.Store.Write(ctx, []kvstore.Op{{Type: kvstore.OpPut, Key: key, Value: value}}, kvstore.WriteOptions{})
	return httpapi.Written{Index: r.Index, ModIndex: r.ModIndex}, wireError(err)
}

func (s store) PutAll(ctx context.Context, kvs map[string][]byte) (uint64, error) {
	index, err := s.Store.PutAll(ctx, kvs)
	return index, wireError(err)
}

func (s store) Delete(ctx context.Context, key string) (uint64, error) {
	index, err := s.Store.Delete(ctx, key)
	return index, wireError(err)
}

func (s store) Digest() httpapi.Digest {
	index, keys, hash := s.Store.Digest()
	return httpapi.Digest{AppliedIndex: index, Keys: keys, Hash: hash}
}

// cluster adapts raftnode's membership to the HTTP layer's interface.
type cluster struct {
	node  *raftnode.Node
	store *kvstore.Store
	// extra adds the mode's section to the status; nil for none.
	extra func(*httpapi.Status)
	// http passes requests on to the leader's client URL.
	http *http.Client
	// peerScheme is the scheme of this cluster's peer URLs: http, or https
	// with peer TLS. A new member's must be the same.
	peerScheme string
}

// checkScheme refuses a new member's peer URL that the peer links could
// not reach.
func (c cluster) checkScheme(peerURL string) error {
	if s := peerurl.Scheme(peerURL); s != "" && c.peerScheme != "" && s != c.peerScheme {
		return &peerSchemeError{url: peerURL, want: c.peerScheme}
	}
	return nil
}

func (c cluster) AddMember(ctx context.Context, id uint64, peerURL string) error {
	if err := c.checkScheme(peerURL); err != nil {
		return err
	}
	if leader, ok := c.leaderClientURL(); ok {
		return forward(ctx, c.http, http.MethodPost, leader+"/"+strconv.FormatUint(id, 10), peerURL)
	}
	return c.node.AddMember(ctx, id, peerURL)
}

func (c cluster) RemoveMember(ctx context.Context, id uint64) error {
	if leader, ok := c.leaderClientURL(); ok {
		return forward(ctx, c.http, http.MethodDelete, leader+"/"+strconv.FormatUint(id, 10), "")
	}
	return c.node.RemoveMember(ctx, id)
}

func (c cluster) AddLearner(ctx context.Context, id uint64, peerURL string) error {
	if err := c.checkScheme(peerURL); err != nil {
		return err
	}
	if leader, ok := c.leaderClientURL(); ok {
		return forward(ctx, c.http, http.MethodPost, leader+"/"+strconv.FormatUint(id, 10)+"?learner=true", peerURL)
	}
	return c.node.AddLearner(ctx, id, peerURL)
}

// PromoteMember goes to the leader like any membership change, and above
// all because only the leader knows how far the learner is.
func (c cluster) PromoteMember(ctx context.Context, id uint64) error {
	if leader, ok := c.leaderClientURL(); ok {
		return forward(ctx, c.http, http.MethodPost, leader+"/"+strconv.FormatUint(id, 10)+"/promote", "")
	}
	return c.node.PromoteMember(ctx, id)
}

// UpdateMember goes to the leader like any membership change.
func (c cluster) UpdateMember(ctx context.Context, id uint64, peerURL string) error {
	if err := c.checkScheme(peerURL); err != nil {
		return err
	}
	if leader, ok := c.leaderClientURL(); ok {
		return forward(ctx, c.http, http.MethodPost, leader+"/"+strconv.FormatUint(id, 10)+"/update", peerURL)
	}
	return c.node.UpdateMember(ctx, id, peerURL)
}

// TransferLeadership asks the leader, which alone can hand leadership on;
// the leader answers once it sees the new leader.
func (c cluster) TransferLeadership(ctx context.Context, to uint64) (uint64, error) {
	leader, ok := c.leaderClientURL()
	if !ok {
		return c.node.TransferLeadership(ctx, to)
	}
	target := leader + "/leader/transfer"
	if to != 0 {
		target += "?to=" + strconv.FormatUint(to, 10)
	}
	body, err := forwardFor(ctx, c.http, http.MethodPost, target, "")
	if err != nil {
		return 0, err
	}
	var answer struct{ Leader uint64 }
	if err := json.Unmarshal(body, &answer); err != nil || answer.Leader == 0 {
		return 0, fmt.Errorf("daemon: leader's answer to a leadership transfer %q: %v", body, err)
	}
	return answer.Leader, nil
}

func (c cluster) Health() error {
	st := c.node.Status()
	applied := c.store.AppliedIndex()
	switch {
	case st.Leader == 0:
		return fmt.Errorf("no leader")
	case st.CommitIndex > applied+healthLag:
		return fmt.Errorf("applied index %d is %d entries behind commit index %d", applied, st.CommitIndex-applied, st.CommitIndex)
	}
	return nil
}

func (c cluster) Status() httpapi.Status {
	st := c.node.Status()
	build := buildinfo.Get()
	out := httpapi.Status{
		ID:            st.ID,
		Leader:        st.Leader,
		Term:          st.Term,
		CommitIndex:   st.CommitIndex,
		AppliedIndex:  c.store.AppliedIndex(),
		SnapshotIndex: st.SnapshotIndex,
		ClusterLevel:  st.ClusterLevel,
		ClusterID:     strconv.FormatUint(c.node.ClusterID(), 16),
		DataBytes:     c.store.DataBytes(),
		QuotaBytes:    c.store.QuotaBytes(),
		Build:         &build,
	}
	for _, m := range st.Members {
		hm := httpapi.Member{ID: m.ID, PeerURLs: []string{m.PeerURL}, IsLearner: m.IsLearner}
		if m.ClientURL != "" {
			hm.ClientURLs = []string{m.ClientURL}
		}
		out.Members = append(out.Members, hm)
	}
	if len(st.Progress) > 0 {
		out.Progress = make(map[string]httpapi.Progress, len(st.Progress))
		for id, pr := range st.Progress {
			out.Progress[strconv.FormatUint(id, 10)] = httpapi.Progress{Match: pr.Match, Next: pr.Next, State: pr.State, IsLearner: pr.IsLearner}
		}
	}
	if c.extra != nil {
		c.extra(&out)
	}
	return out
}

func urlHost(raw string) (string, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return "", err
	}
	return u.Hostname(), nil
}

// Membership changes go to the leader. raft takes one conf change at a
// time and silently drops a second one proposed while the first is
// pending, so changes sent to different members at once would leave one
// writer waiting for a change that never comes. At the leader the second
// one is refused at once (409), since the leader's raftnode sees both.

// leaderClientURL returns the leader's client URL when another member
// leads and has published it.
func (c cluster) leaderClientURL() (string, bool) {
	st := c.node.Status()
	if st.Leader == 0 || st.Leader == st.ID {
		return "", false
	}
	for _, m := range st.Members {
		if m.ID == st.Leader && m.ClientURL != "" {
			return strings.TrimSuffix(m.ClientURL, "/"), true
		}
	}
	return "", false
}

// forwardedError carries the leader's answer, classified by behaviour for
// the HTTP layer; human, the leader's own sentence, is what the client is
// shown, and code the leader's code, kept where the HTTP layer has a row
// of its own for it.
type forwardedError struct {
	status int
	code   string
	msg    string
	human  string
}

func (e *forwardedError) Error() string         { return e.msg }
func (e *forwardedError) BadRequest() bool      { return e.status == http.StatusBadRequest }
func (e *forwardedError) NotFound() bool        { return e.status == http.StatusNotFound }
func (e *forwardedError) Conflict() bool        { return e.status == http.StatusConflict }
func (e *forwardedError) Forbidden() bool       { return e.status == http.StatusForbidden }
func (e *forwardedError) Unavailable() bool     { return e.status == http.StatusServiceUnavailable }
func (e *forwardedError) Timeout() bool         { return e.status == http.StatusGatewayTimeout }
func (e *forwardedError) LearnerNotReady() bool { return e.code == "learner_not_ready" }
func (e *forwardedError) LeaderTransferTimeout() bool {
	return e.code == "transfer_timeout"
}

// HumanMessage is the sentence the HTTP layer shows the client.
func (e *forwardedError) HumanMessage() string { return e.human }

// forwardClient passes requests on to the leader when the client port has
// no TLS.
var forwardClient = &http.Client{
	// No redirects: raftkv answers on any member.
	CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
}

// forward sends a membership request to the leader and maps its answer.
// Without an answer it says 503 (not applied) only when the connection to
// the leader could not be made, so the request never left; once it may
// have reached the leader, the change may be applied: 504.
func forward(ctx context.Context, hc *http.Client, method, url, body string) error {
	_, err := forwardFor(ctx, hc, method, url, body)
	return err
}

// forwardFor is forward that returns the body of the leader's 2xx answer.
func forwardFor(ctx context.Context, hc *http.Client, method, url, body string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, method, url, strings.NewReader(body))
	if err != nil {
		return nil, err
	}
	// The JSON form of an error carries its code as well as its sentence.
	req.Header.Set("Accept", "application/json")
	if hc == nil {
		hc = forwardClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		var op *net.OpError
		switch {
		case errors.As(err, &op) && op.Op == "dial":
			return nil, &forwardedError{status: http.StatusServiceUnavailable, msg: "cannot reach the leader: " + err.Error(),
				human: "this member cannot reach the leader; retry shortly"}
		case ctx.Err() != nil:
			return nil, &forwardedError{status: http.StatusGatewayTimeout, msg: "membership change forwarded to the leader timed out; its outcome is unknown"}
		}
		return nil, &forwardedError{status: http.StatusGatewayTimeout, msg: "membership change forwarded to the leader got no answer; its outcome is unknown: " + err.Error(),
			human: "the leader did not answer the forwarded membership change; it may or may not have been applied"}
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
	if resp.StatusCode/100 == 2 {
		return msg, nil
	}
	answer := strings.TrimSpace(string(msg))
	fe := &forwardedError{status: resp.StatusCode, msg: "leader answered: " + answer, human: answer}
	var e struct{ Error, Code string }
	if json.Unmarshal(msg, &e) == nil && e.Error != "" {
		fe.human, fe.code = e.Error, e.Code
		fe.msg = "leader answered: " + e.Error
	}
	return nil, fe
}

// Write applies ops as one write under the writer's identity wo, which
// kvstore's dedup table makes exactly-once.
func (s store) Write(ctx context.Context, ops []httpapi.Op, wo httpapi.WriteOptions) (httpapi.Written, error) {
	for _, op := range ops {
		if op.TTL > 0 {
			if err := s.gate(ctx, levelDataModel, "TTLs"); err != nil {
				return httpapi.Written{}, err
			}
			break
		}
	}
	kops := make([]kvstore.Op, len(ops))
	for i, op := range ops {
		kops[i] = kvstore.Op{Type: kvstore.OpPut, Key: op.Key, Value: op.Value, TTL: op.TTL}
		if op.Delete {
			kops[i] = kvstore.Op{Type: kvstore.OpDelete, Key: op.Key}
		}
	}
	r, err := s.Store.Write(ctx, kops, kvstore.WriteOptions{ClientID: wo.ClientID, Seq: wo.Seq})
	return httpapi.Written{Index: r.Index, ModIndex: r.ModIndex}, wireError(err)
}
