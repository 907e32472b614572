package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"

	"go.uber.org/zap/zaptest"
)

// testErr implements every behaviour method; only the one it names answers true.
type testErr string

func (e testErr) Error() string     { return "test: " + string(e) }
func (e testErr) NotFound() bool    { return e == "not-found" }
func (e testErr) BadRequest() bool  { return e == "bad-request" }
func (e testErr) Conflict() bool    { return e == "conflict" }
func (e testErr) Unavailable() bool { return e == "unavailable" }
func (e testErr) Timeout() bool     { return e == "timeout" }

// hook, when set on a fake, runs first in every call that takes a ctx; a
// non-nil result is returned as the call's error.
type hook func(ctx context.Context) error

// blockUntilDone models a store that never gets an answer from raft.
func blockUntilDone(ctx context.Context) error {
	<-ctx.Done()
	return ctx.Err()
}

type fakeStore struct {
	hook hook
	mu   struct {
		sync.Mutex
		kv     map[string][]byte
		index  uint64
		reads  []ReadOptions       // the options of every Get, in order
		puts   []map[string][]byte // the argument of every PutAll, in order
		writes []fakeWrite         // the arguments of every Write, in order
	}
}

// fakeWrongGroup is the fake's sharding: keys starting "wg-" belong to
// group 2, whose member is http://127.0.0.1:7002/, and keys starting
// "nobody-" to no group, in config 5.
func fakeWrongGroup(keys ...string) error {
	for _, k := range keys {
		switch {
		case strings.HasPrefix(k, "wg-"):
			return &WrongGroupError{Key: k, Bucket: 9, Version: 5, Owner: 2, Servers: []string{"http://127.0.0.1:7002/", "http://127.0.0.1:7003"}}
		case strings.HasPrefix(k, "nobody-"):
			return &WrongGroupError{Key: k, Bucket: 4, Version: 5}
		}
	}
	return nil
}

func newFakeStore(seed map[string]string) *fakeStore {
	s := &fakeStore{}
	s.mu.kv = map[string][]byte{}
	for k, v := range seed {
		s.mu.kv[k] = []byte(v)
	}
	s.mu.index = 10
	return s
}

func (s *fakeStore) Get(ctx context.Context, key string, opts ReadOptions) ([]byte, error) {
	s.mu.Lock()
	s.mu.reads = append(s.mu.reads, opts)
	s.mu.Unlock()
	if s.hook != nil {
		if err := s.hook(ctx); err != nil {
			return nil, err
		}
	}
	if err := fakeWrongGroup(key); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.mu.kv[key]
	if !ok {
		return nil, testErr("not-found")
	}
	return bytes.Clone(v), nil
}

func (s *fakeStore) Digest() Digest {
	s.mu.Lock()
	defer s.mu.Unlock()
	return Digest{AppliedIndex: s.mu.index, Keys: len(s.mu.kv), Hash: "fake"}
}

func (s *fakeStore) Put(ctx context.Context, key string, value []byte) (uint64, error) {
	if s.hook != nil {
		if err := s.hook(ctx); err != nil {
			return 0, err
		}
	}
	if err := fakeWrongGroup(key); err != nil {
		return 0, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.mu.index++
	s.mu.kv[key] = bytes.Clone(value)
	return s.mu.index, nil
}

func (s *fakeStore) PutAll(ctx context.Context, kvs map[string][]byte) (uint64, error) {
	if s.hook != nil {
		if err := s.hook(ctx); err != nil {
			return 0, err
		}
	}
	if err := fakeWrongGroup(slices.Sorted(maps.Keys(kvs))...); err != nil {
		return 0, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.mu.puts = append(s.mu.puts, maps.Clone(kvs))
	s.mu.index++
	for k, v := range kvs {
		s.mu.kv[k] = bytes.Clone(v)
	}
	return s.mu.index, nil
}

func (s *fakeStore) Delete(ctx context.Context, key string) (uint64, error) {
	if s.hook != nil {
		if err := s.hook(ctx); err != nil {
			return 0, err
		}
	}
	if err := fakeWrongGroup(key); err != nil {
		return 0, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.mu.index++
	delete(s.mu.kv, key)
	return s.mu.index, nil
}

func (s *fakeStore) Write(ctx context.Context, ops []Op, wo WriteOptions) (uint64, error) {
	if s.hook != nil {
		if err := s.hook(ctx); err != nil {
			return 0, err
		}
	}
	for _, op := range ops {
		if err := fakeWrongGroup(op.Key); err != nil {
			return 0, err
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.mu.writes = append(s.mu.writes, fakeWrite{ops: slices.Clone(ops), wo: wo})
	s.mu.index++
	for _, op := range ops {
		if op.Delete {
			delete(s.mu.kv, op.Key)
		} else {
			s.mu.kv[op.Key] = bytes.Clone(op.Value)
		}
	}
	return s.mu.index, nil
}

// fakeWrite is one call of Write.
type fakeWrite struct {
	ops []Op
	wo  WriteOptions
}

// writesCalled returns the arguments of every Write, in order.
func (s *fakeStore) writesCalled() []fakeWrite {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.mu.writes)
}

// calls returns the options of every Get and the argument of every PutAll.
func (s *fakeStore) calls() ([]ReadOptions, []map[string][]byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.mu.reads), slices.Clone(s.mu.puts)
}

func (s *fakeStore) snapshot() map[string]string {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := map[string]string{}
	for k, v := range s.mu.kv {
		m[k] = string(v)
	}
	return m
}

type fakeCluster struct {
	hook hook
	mu   struct {
		sync.Mutex
		members  map[uint64]string // id -> peer URL
		learners map[uint64]bool   // learner id -> caught up, so promotable
		health   error             // what Health returns
		progress map[string]Progress
	}
}

func newFakeCluster() *fakeCluster {
	c := &fakeCluster{}
	c.mu.members = map[uint64]string{1: "http://127.0.0.1:12379"}
	c.mu.learners = map[uint64]bool{}
	return c
}

func (c *fakeCluster) AddMember(ctx context.Context, id uint64, peerURL string) error {
	if c.hook != nil {
		if err := c.hook(ctx); err != nil {
			return err
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.mu.members[id]; ok {
		return testErr("conflict")
	}
	c.mu.members[id] = peerURL
	return nil
}

func (c *fakeCluster) RemoveMember(ctx context.Context, id uint64) error {
	if c.hook != nil {
		if err := c.hook(ctx); err != nil {
			return err
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.mu.members[id]; !ok {
		return testErr("not-found")
	}
	delete(c.mu.members, id)
	delete(c.mu.learners, id)
	return nil
}

func (c *fakeCluster) Status() Status {
	c.mu.Lock()
	defer c.mu.Unlock()
	st := Status{ID: 1, Leader: 1, Term: 2, CommitIndex: 7, AppliedIndex: 6, SnapshotIndex: 3}
	for _, id := range slices.Sorted(maps.Keys(c.mu.members)) {
		_, learner := c.mu.learners[id]
		st.Members = append(st.Members, Member{ID: id, PeerURLs: []string{c.mu.members[id]}, IsLearner: learner})
	}
	st.Progress = maps.Clone(c.mu.progress)
	return st
}

func (c *fakeCluster) Health() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.mu.health
}

func (c *fakeCluster) snapshot() map[uint64]string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return maps.Clone(c.mu.members)
}

type testEnv struct {
	store   *fakeStore
	cluster *fakeCluster
	h       http.Handler
}

// newEnv builds a handler over fresh fakes; edit may change the Config.
func newEnv(t *testing.T, seed map[string]string, edit func(*Config)) *testEnv {
	t.Helper()
	e := &testEnv{store: newFakeStore(seed), cluster: newFakeCluster()}
	cfg := Config{Store: e.store, Cluster: e.cluster, Logger: zaptest.NewLogger(t)}
	if edit != nil {
		edit(&cfg)
	}
	h, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	e.h = h
	return e
}

// do serves one request parsed as a server would parse the request line.
func (e *testEnv) do(t *testing.T, method, target, body string) *httptest.ResponseRecorder {
	t.Helper()
	return e.serve(t, httptest.NewRequest(method, target, strings.NewReader(body)))
}

func (e *testEnv) serve(t *testing.T, req *http.Request) *httptest.ResponseRecorder {
	t.Helper()
	rec := httptest.NewRecorder()
	e.h.ServeHTTP(rec, req)
	if rec.Code >= 400 && req.URL.Path != "/health" { // /health answers 503 in JSON
		checkErrorBody(t, req, rec.Header(), rec.Body.String())
	}
	return rec
}

// serveOther serves a request whose error body comes from another handler
// (pprof, Config.Metrics), so checkErrorBody does not apply.
func (e *testEnv) serveOther(t *testing.T, method, target, body string) *httptest.ResponseRecorder {
	t.Helper()
	rec := httptest.NewRecorder()
	e.h.ServeHTTP(rec, httptest.NewRequest(method, target, strings.NewReader(body)))
	return rec
}

// checkErrorBody checks the contract of every error response to req: one
// line of text, or of JSON {"error":...,"code":...} when req accepts JSON;
// the sentence without a package prefix, the code snake_case.
func checkErrorBody(t *testing.T, req *http.Request, hdr http.Header, body string) {
	t.Helper()
	if strings.Count(body, "\n") != 1 || !strings.HasSuffix(body, "\n") || len(body) < 2 {
		t.Errorf("error body %q is not exactly one non-empty line ending in \\n", body)
	}
	msg := strings.TrimSuffix(body, "\n")
	if wantsJSON(req) || hdr.Get("Content-Type") == "application/json" && strings.Contains(body, `"code":"wrong_group"`) {
		if ct := hdr.Get("Content-Type"); ct != "application/json" {
			t.Errorf("error Content-Type = %q, want application/json", ct)
		}
		var e struct {
			Error, Code string
			// A 421's (wrongGroupJSON).
			Version uint64
			Bucket  int
			Owner   uint64
			Servers []string
		}
		dec := json.NewDecoder(strings.NewReader(body))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&e); err != nil || e.Error == "" || !regexp.MustCompile(`^[a-z]+(_[a-z0-9]+)*$`).MatchString(e.Code) {
			t.Errorf("error body %q is not {\"error\":<sentence>,\"code\":<snake_case>} (%v)", body, err)
		}
		msg = e.Error
	} else if ct := hdr.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
		t.Errorf("error Content-Type = %q, want text/plain", ct)
	}
	if packagePrefix.MatchString(msg) {
		t.Errorf("error message %q starts with a package prefix", msg)
	}
}

func readAll(t *testing.T, r io.Reader) string {
	t.Helper()
	b, err := io.ReadAll(r)
	if err != nil {
		t.Fatalf("read body: %v", err)
	}
	return string(b)
}

// learnerNotReadyErr is what the leader answers a promotion of a learner
// that has not caught up.
type learnerNotReadyErr struct{ id uint64 }

func (e learnerNotReadyErr) Error() string       { return fmt.Sprintf("test: learner %d not ready", e.id) }
func (learnerNotReadyErr) Conflict() bool        { return true }
func (learnerNotReadyErr) LearnerNotReady() bool { return true }
func (e learnerNotReadyErr) HumanMessage() string {
	return fmt.Sprintf("learner %d is not caught up with the leader", e.id)
}

// transferTimeoutErr is a leadership transfer not completed in time.
type transferTimeoutErr struct{}

func (transferTimeoutErr) Error() string               { return "test: transfer timed out" }
func (transferTimeoutErr) Timeout() bool               { return true }
func (transferTimeoutErr) LeaderTransferTimeout() bool { return true }

func (c *fakeCluster) AddLearner(ctx context.Context, id uint64, peerURL string) error {
	if err := c.AddMember(ctx, id, peerURL); err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.mu.learners[id] = false
	return nil
}

func (c *fakeCluster) PromoteMember(ctx context.Context, id uint64) error {
	if c.hook != nil {
		if err := c.hook(ctx); err != nil {
			return err
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	ready, learner := c.mu.learners[id]
	switch _, member := c.mu.members[id]; {
	case !member:
		return testErr("not-found")
	case !learner:
		return testErr("conflict")
	case !ready:
		return learnerNotReadyErr{id}
	}
	delete(c.mu.learners, id)
	return nil
}

// TransferLeadership hands leadership to to, or with 0 to the lowest
// voter but 1, the fake's leader.
func (c *fakeCluster) TransferLeadership(ctx context.Context, to uint64) (uint64, error) {
	if c.hook != nil {
		if err := c.hook(ctx); err != nil {
			return 0, err
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if to == 0 {
		for _, id := range slices.Sorted(maps.Keys(c.mu.members)) {
			if _, learner := c.mu.learners[id]; id != 1 && !learner {
				return id, nil
			}
		}
		return 0, testErr("conflict")
	}
	_, member := c.mu.members[to]
	_, learner := c.mu.learners[to]
	if !member || learner {
		return 0, testErr("conflict")
	}
	return to, nil
}

// learnerIDs returns the ids of the learners, sorted.
func (c *fakeCluster) learnerIDs() []uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Sorted(maps.Keys(c.mu.learners))
}
