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
	"sync/atomic"
	"testing"
	"time"

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

// fakeStore is an in-memory Store with the versions, transactions,
// listings and watches of the data model: every write call is one index,
// its operations events at positions 0, 1, ... of it.
type fakeStore struct {
	hook hook
	// watchBuffer is each watcher's buffer; a watcher whose client falls
	// further behind ends with ErrWatcherTooSlow. Zero means 1024.
	watchBuffer int
	mu          struct {
		sync.Mutex
		kv     map[string]fakeKV
		index  uint64
		reads  []ReadOptions        // the options of every GetKV, in order
		puts   []map[string][]byte  // the argument of every PutAll, in order
		writes []fakeWrite          // the arguments of every Write, in order
		txns   []fakeTxn            // the arguments of every Txn, in order
		lists  []ListOptions        // the options of every List, in order
		ranges []DeleteRangeOptions // the options of every DeleteRange, in order
		// events are every change since index 10, in order; those below
		// oldest are compacted away.
		events  []Event
		oldest  uint64
		changed chan struct{} // closed and replaced at every write
		dedup   map[WriteOptions]TxnResult
		// watchErr, once set, ends every watcher with it.
		watchErr error
		// hashes are the hashes HashKV took, by index.
		hashes map[uint64]HashResult
	}
}

// fakeKV is one key's state.
type fakeKV struct {
	value       []byte
	create, mod uint64
	ttl         time.Duration
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

// fakeConfigVersion is the config version the fake has applied.
const fakeConfigVersion = 5

func newFakeStore(seed map[string]string) *fakeStore {
	s := &fakeStore{}
	s.mu.kv = map[string]fakeKV{}
	for k, v := range seed {
		s.mu.kv[k] = fakeKV{value: []byte(v), create: 3, mod: 7}
	}
	s.mu.index = 10
	s.mu.oldest = 11
	s.mu.changed = make(chan struct{})
	s.mu.dedup = map[WriteOptions]TxnResult{}
	return s
}

func (s *fakeStore) run(ctx context.Context, keys ...string) error {
	if s.hook != nil {
		if err := s.hook(ctx); err != nil {
			return err
		}
	}
	return fakeWrongGroup(keys...)
}

func (s *fakeStore) GetKV(ctx context.Context, key string, opts ReadOptions) (KeyValue, uint64, error) {
	s.mu.Lock()
	s.mu.reads = append(s.mu.reads, opts)
	s.mu.Unlock()
	if err := s.run(ctx, key); err != nil {
		return KeyValue{}, 0, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	kv, ok := s.getLocked(key)
	if !ok {
		return KeyValue{}, s.mu.index, testErr("not-found")
	}
	kv.Value = bytes.Clone(kv.Value)
	return kv, s.mu.index, nil
}

func (s *fakeStore) getLocked(key string) (KeyValue, bool) {
	v, ok := s.mu.kv[key]
	return KeyValue{Key: key, Value: v.value, CreateIndex: v.create, ModIndex: v.mod, TTL: v.ttl}, ok
}

func (s *fakeStore) Digest() Digest {
	s.mu.Lock()
	defer s.mu.Unlock()
	return Digest{AppliedIndex: s.mu.index, Keys: len(s.mu.kv), Hash: "fake"}
}

// applyLocked applies ops as one write at the next index.
func (s *fakeStore) applyLocked(ops []Op) uint64 {
	s.mu.index++
	for i, op := range ops {
		ev := Event{Key: op.Key, ModIndex: s.mu.index, Pos: uint32(i), Bucket: -1}
		if op.Delete {
			ev.Type = EventDelete
			ev.CreateIndex = s.mu.kv[op.Key].create
			delete(s.mu.kv, op.Key)
		} else {
			kv, ok := s.mu.kv[op.Key]
			if !ok {
				kv.create = s.mu.index
			}
			kv.value, kv.mod, kv.ttl = bytes.Clone(op.Value), s.mu.index, op.TTL
			s.mu.kv[op.Key] = kv
			ev.Type, ev.Value, ev.CreateIndex = EventPut, kv.value, kv.create
		}
		s.mu.events = append(s.mu.events, ev)
	}
	close(s.mu.changed)
	s.mu.changed = make(chan struct{})
	return s.mu.index
}

func (s *fakeStore) Put(ctx context.Context, key string, value []byte) (Written, error) {
	if err := s.run(ctx, key); err != nil {
		return Written{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	index := s.applyLocked([]Op{{Key: key, Value: value}})
	return Written{Index: index, ModIndex: index}, nil
}

func (s *fakeStore) PutAll(ctx context.Context, kvs map[string][]byte) (uint64, error) {
	if err := s.run(ctx, slices.Sorted(maps.Keys(kvs))...); err != nil {
		return 0, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.mu.puts = append(s.mu.puts, maps.Clone(kvs))
	var ops []Op
	for _, k := range slices.Sorted(maps.Keys(kvs)) {
		ops = append(ops, Op{Key: k, Value: kvs[k]})
	}
	return s.applyLocked(ops), nil
}

func (s *fakeStore) Delete(ctx context.Context, key string) (uint64, error) {
	if err := s.run(ctx, key); err != nil {
		return 0, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.applyLocked([]Op{{Key: key, Delete: true}}), nil
}

func (s *fakeStore) Write(ctx context.Context, ops []Op, wo WriteOptions) (Written, error) {
	var keys []string
	puts := false
	for _, op := range ops {
		keys = append(keys, op.Key)
		puts = puts || !op.Delete
	}
	if err := s.run(ctx, keys...); err != nil {
		return Written{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.mu.writes = append(s.mu.writes, fakeWrite{ops: slices.Clone(ops), wo: wo})
	w := Written{Index: s.applyLocked(ops)}
	if puts {
		w.ModIndex = w.Index
	}
	return w, nil
}

// fakeTxn is one call of Txn.
type fakeTxn struct {
	txn Txn
	wo  WriteOptions
}

func (s *fakeStore) Txn(ctx context.Context, t Txn, wo WriteOptions) (TxnResult, error) {
	var keys []string
	for _, c := range t.Compares {
		keys = append(keys, c.Key)
	}
	for _, op := range append(slices.Clone(t.Success), t.Failure...) {
		keys = append(keys, op.Key)
	}
	if err := s.run(ctx, keys...); err != nil {
		return TxnResult{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.mu.txns = append(s.mu.txns, fakeTxn{txn: t, wo: wo})
	if res, ok := s.mu.dedup[wo]; ok && wo.ClientID != "" {
		return res, nil
	}
	res := TxnResult{Succeeded: true}
	for _, c := range t.Compares {
		if !s.holdsLocked(c) {
			res.Succeeded = false
		}
	}
	branch := t.Failure
	if res.Succeeded {
		branch = t.Success
	}
	var ops []Op
	for _, op := range branch {
		switch op.Type {
		case TxnGet:
			kv, ok := s.getLocked(op.Key)
			// A get sees the puts and deletes before it in the branch.
			for _, w := range ops {
				if w.Key != op.Key {
					continue
				}
				create := kv.CreateIndex
				if !ok {
					create = s.mu.index + 1
				}
				kv, ok = KeyValue{Key: w.Key, Value: w.Value, ModIndex: s.mu.index + 1, CreateIndex: create, TTL: w.TTL}, !w.Delete
			}
			res.Gets = append(res.Gets, GetResult{KeyValue: kv, Found: ok})
		case TxnPut:
			ops = append(ops, Op{Key: op.Key, Value: op.Value, TTL: op.TTL})
		case TxnDelete:
			ops = append(ops, Op{Key: op.Key, Delete: true})
		}
	}
	res.Index = s.applyLocked(ops)
	for _, op := range ops {
		if !op.Delete {
			res.ModIndex = res.Index
		}
	}
	if wo.ClientID != "" {
		s.mu.dedup[wo] = res
	}
	return res, nil
}

// holdsLocked judges one compare.
func (s *fakeStore) holdsLocked(c Compare) bool {
	kv, ok := s.mu.kv[c.Key]
	var cmp int
	switch c.Target {
	case CompareExists:
		if c.Op == CompareEqual {
			return ok == c.Exists
		}
		return ok != c.Exists
	case CompareValue:
		if !ok {
			return false
		}
		cmp = bytes.Compare(kv.value, c.Value)
	case CompareMod:
		cmp = cmpUint(kv.mod, c.Index)
	case CompareCreate:
		cmp = cmpUint(kv.create, c.Index)
	}
	switch c.Op {
	case CompareEqual:
		return cmp == 0
	case CompareNotEqual:
		return cmp != 0
	case CompareGreater:
		return cmp > 0
	}
	return cmp < 0
}

func cmpUint(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func (s *fakeStore) List(ctx context.Context, opts ListOptions) (ListResult, error) {
	s.mu.Lock()
	s.mu.lists = append(s.mu.lists, opts)
	s.mu.Unlock()
	if err := s.run(ctx); err != nil {
		return ListResult{}, err
	}
	if err := fakeStaleVersion(opts.ConfigVersion); err != nil {
		return ListResult{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	res := ListResult{Index: s.mu.index, KVs: []KeyValue{}}
	for _, k := range slices.Sorted(maps.Keys(s.mu.kv)) {
		switch {
		case !fakeInRange(k, opts.Prefix, opts.Start, opts.End),
			opts.After != "" && k <= opts.After,
			fakeWrongGroup(k) != nil:
			continue
		}
		if opts.Limit > 0 && len(res.KVs) == opts.Limit {
			res.More = true
			break
		}
		kv, _ := s.getLocked(k)
		if opts.KeysOnly {
			kv.Value = nil
		}
		res.KVs = append(res.KVs, kv)
	}
	return res, nil
}

// DeleteRange deletes the keys of opts' range as one write, as a plain
// member would, or refuses a config version other than the fake's.
func (s *fakeStore) DeleteRange(ctx context.Context, opts DeleteRangeOptions) (DeleteRangeResult, error) {
	s.mu.Lock()
	s.mu.ranges = append(s.mu.ranges, opts)
	s.mu.Unlock()
	if err := s.run(ctx); err != nil {
		return DeleteRangeResult{}, err
	}
	if err := fakeStaleVersion(opts.ConfigVersion); err != nil {
		return DeleteRangeResult{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var ops []Op
	for _, k := range slices.Sorted(maps.Keys(s.mu.kv)) {
		if fakeInRange(k, opts.Prefix, opts.Start, opts.End) {
			ops = append(ops, Op{Key: k, Delete: true})
		}
	}
	return DeleteRangeResult{Index: s.applyLocked(ops), Deleted: len(ops)}, nil
}

// HashKV takes a hash of the keys at a new index: their count and a
// sum of their values' lengths stand for the hash.
func (s *fakeStore) HashKV(ctx context.Context) (HashResult, error) {
	if err := s.run(ctx); err != nil {
		return HashResult{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	r := HashResult{Index: s.applyLocked(nil), Keys: len(s.mu.kv)}
	n := 0
	for _, kv := range s.mu.kv {
		n += len(kv.value)
	}
	r.Hash = fmt.Sprintf("fake-%d", n)
	if s.mu.hashes == nil {
		s.mu.hashes = map[uint64]HashResult{}
	}
	s.mu.hashes[r.Index] = r
	return r, nil
}

// HashAt answers a hash HashKV took, or testErr("not-found").
func (s *fakeStore) HashAt(ctx context.Context, index uint64) (HashResult, error) {
	if err := s.run(ctx); err != nil {
		return HashResult{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.mu.hashes[index]
	if !ok {
		return HashResult{}, testErr("not-found")
	}
	return r, nil
}

// fakeStaleVersion is the WrongGroupError a shard member answers a
// listing or range delete that names a config version (not 0) other than
// the fake's, else nil.
func fakeStaleVersion(v uint64) error {
	if v != 0 && v != fakeConfigVersion {
		return &WrongGroupError{Key: "", Bucket: -1, Version: fakeConfigVersion}
	}
	return nil
}

// fakeInRange says whether k is in the range a listing or range delete
// names: with prefix, or in [start, end) (end "": no end).
func fakeInRange(k, prefix, start, end string) bool {
	return (prefix == "" || strings.HasPrefix(k, prefix)) && k >= start && (end == "" || k < end)
}

// fakeWatcher is a watcher of fakeStore: a goroutine that copies the
// events it matches from the store's log to its channel.
type fakeWatcher struct {
	events   chan Event
	done     chan struct{}
	err      error
	progress atomic.Uint64
}

func (w *fakeWatcher) Events() <-chan Event  { return w.events }
func (w *fakeWatcher) Done() <-chan struct{} { return w.done }
func (w *fakeWatcher) Err() error            { <-w.done; return w.err }
func (w *fakeWatcher) Progress() uint64      { return w.progress.Load() }

// ConfigVersionAt makes fakeWatcher a ConfigWatcher of a member at
// fakeConfigVersion since index 1.
func (w *fakeWatcher) ConfigVersionAt(index uint64) uint64 {
	if index == 0 {
		return 0
	}
	return fakeConfigVersion
}

func (s *fakeStore) Watch(ctx context.Context, opts WatchOptions) (Watcher, error) {
	var keys []string
	if opts.Key != "" {
		keys = append(keys, opts.Key)
	}
	if err := s.run(ctx, keys...); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	from := opts.FromIndex
	if from == 0 {
		from = s.mu.index + 1
	}
	if from < s.mu.oldest {
		return nil, &CompactedError{Oldest: s.mu.oldest}
	}
	n := s.watchBuffer
	if n == 0 {
		n = 1024
	}
	w := &fakeWatcher{events: make(chan Event, n), done: make(chan struct{})}
	w.progress.Store(min(from-1, s.mu.index))
	go s.feed(ctx, w, opts, from)
	return w, nil
}

// matches reports whether ev is one opts watches.
func (opts WatchOptions) matches(ev Event) bool {
	if opts.Key != "" {
		return ev.Key == opts.Key
	}
	return strings.HasPrefix(ev.Key, opts.Prefix)
}

// feed sends w the events from index from on, until ctx ends, the
// buffer overflows or watchErr is set.
func (s *fakeStore) feed(ctx context.Context, w *fakeWatcher, opts WatchOptions, from uint64) {
	defer close(w.done)
	next := 0 // the next event of the log to look at
	for {
		s.mu.Lock()
		evs, index, changed, werr := s.mu.events[next:], s.mu.index, s.mu.changed, s.mu.watchErr
		next = len(s.mu.events)
		s.mu.Unlock()
		for _, ev := range evs {
			if ev.ModIndex < from || (ev.ModIndex == from && int64(ev.Pos) <= opts.AfterPos) || !opts.matches(ev) {
				continue
			}
			select {
			case w.events <- ev:
			default:
				w.err = ErrWatcherTooSlow
				return
			}
		}
		if werr != nil {
			w.err = werr
			return
		}
		w.progress.Store(max(w.progress.Load(), index))
		select {
		case <-changed:
		case <-ctx.Done():
			w.err = ctx.Err()
			return
		}
	}
}

// endWatches ends every watcher with err, and makes the events before
// oldest unavailable to new ones.
func (s *fakeStore) endWatches(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.mu.watchErr = err
	close(s.mu.changed)
	s.mu.changed = make(chan struct{})
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

// txnsCalled returns the arguments of every Txn, in order.
func (s *fakeStore) txnsCalled() []fakeTxn {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.mu.txns)
}

// calls returns the options of every GetKV and the argument of every PutAll.
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
		m[k] = string(v.value)
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

func (c *fakeCluster) UpdateMember(ctx context.Context, id uint64, peerURL string) error {
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
	for other, u := range c.mu.members {
		if other != id && u == peerURL {
			return testErr("conflict")
		}
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
	st := Status{ID: 1, Leader: 1, Term: 2, CommitIndex: 7, AppliedIndex: 6, SnapshotIndex: 3, ClusterLevel: 1}
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
			// A watch's 410 (errorJSON).
			OldestIndex uint64 `json:"oldest_index"`
		}
		dec := json.NewDecoder(strings.NewReader(body))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&e); err != nil || e.Error == "" || !regexp.MustCompile(`^[a-z]+(_[a-z0-9]+)*$`).MatchString(e.Code) {
			t.Errorf("error body %q is not {\"error\":<sentence>,\"code\":<snake_case>} (%v)", body, err)
		}
		if e.OldestIndex != 0 && e.Code != "compacted" {
			t.Errorf("error body %q names an oldest index but is not compacted", body)
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
