package client

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/raftkv/raftkv/shardmap"
)

// TestClusterVersionsAndTTL: GetKV against real members reads the
// versions and the TTL each write left.
func TestClusterVersionsAndTTL(t *testing.T) {
	t.Parallel()
	tc, _ := startCluster(t, 3)
	c := newTestClient(t, Config{Endpoints: clientURLs(tc, 1, 2, 3), RequestTimeout: 20 * time.Second})
	ctx := context.Background()
	for _, key := range []string{"v", "status"} { // the raw and the JSON read
		created, err := c.Put(ctx, key, []byte("1"))
		if err != nil {
			t.Fatal(err)
		}
		modified, version, err := c.PutVersion(ctx, key, []byte("2"), WithTTL(90*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		if version != modified { // one group: the version is the raft index
			t.Errorf("PutVersion(%q) = index %d, version %d", key, modified, version)
		}
		kv, index, err := c.GetKV(ctx, key)
		if err != nil {
			t.Fatal(err)
		}
		want := KeyValue{Key: key, Value: []byte("2"), CreateIndex: created, ModIndex: modified, TTL: 90 * time.Second}
		if kv.Key != want.Key || string(kv.Value) != "2" || kv.CreateIndex != want.CreateIndex || kv.ModIndex != want.ModIndex || kv.TTL != want.TTL {
			t.Errorf("GetKV(%q) = %+v, want %+v", key, kv, want)
		}
		if index < modified {
			t.Errorf("GetKV(%q) read at %d, before the write at %d", key, index, modified)
		}
	}
	deleted, err := c.Delete(ctx, "v")
	if err != nil {
		t.Fatal(err)
	}
	_, _, err = c.GetKV(ctx, "v")
	var e *Error
	if !errors.As(err, &e) || !errors.Is(err, ErrNotFound) || e.Index < deleted {
		t.Errorf("GetKV of a deleted key: %v (index %d), want ErrNotFound read at %d or later", err, e.Index, deleted)
	}
	if _, err := c.Put(ctx, "v", nil, WithTTL(time.Millisecond)); !errors.Is(err, ErrBadRequest) {
		t.Errorf("Put WithTTL(1ms): %v, want ErrBadRequest", err)
	}
	if _, err := c.Delete(ctx, "v", WithTTL(time.Minute)); !errors.Is(err, ErrBadRequest) {
		t.Errorf("Delete WithTTL: %v, want ErrBadRequest", err)
	}
	if _, err := c.Delete(ctx, "v", WithIfAbsent()); !errors.Is(err, ErrBadRequest) {
		t.Errorf("Delete WithIfAbsent: %v, want ErrBadRequest", err)
	}
}

// TestConditionalWrites follows "Versions, conditional writes and TTLs":
// a write whose condition fails is ErrPreconditionFailed with the key's
// current version, and changes nothing.
func TestConditionalWrites(t *testing.T) {
	m := newDataMember(t)
	c := newTestClient(t, Config{Endpoints: []string{m.srv.URL}})
	ctx := context.Background()
	first, err := c.Put(ctx, "k", []byte("a"), WithIfAbsent())
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Put(ctx, "k", []byte("b"), WithIfAbsent())
	var e *Error
	if !errors.Is(err, ErrPreconditionFailed) || !errors.As(err, &e) || e.ModIndex != first || e.MaybeApplied {
		t.Fatalf("second Put WithIfAbsent: %v; want ErrPreconditionFailed at version %d", err, first)
	}
	if _, err := c.Put(ctx, "k", []byte("b"), WithIfMatch(first+7)); !errors.Is(err, ErrPreconditionFailed) {
		t.Fatalf("Put WithIfMatch(a wrong version): %v", err)
	}
	second, err := c.Put(ctx, "k", []byte("b"), WithIfMatch(first))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Delete(ctx, "k", WithIfMatch(first)); !errors.As(err, &e) || e.ModIndex != second {
		t.Fatalf("Delete WithIfMatch(an old version): %v; want the current version %d", err, second)
	}
	if _, err := c.Delete(ctx, "k", WithIfMatch(second)); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Delete(ctx, "k", WithIfMatch(second)); !errors.As(err, &e) || !errors.Is(err, ErrPreconditionFailed) || e.ModIndex != 0 {
		t.Fatalf("Delete WithIfMatch of an absent key: %v; want ErrPreconditionFailed, version 0", err)
	}
	if _, err := c.Put(ctx, "k", nil, WithIfMatch(1), WithIfAbsent()); !errors.Is(err, ErrBadRequest) {
		t.Fatalf("two conditions: %v, want ErrBadRequest", err)
	}
}

// TestTxn follows "Transactions": the branch taken, the gets' results.
func TestTxn(t *testing.T) {
	m := newDataMember(t)
	c := newTestClient(t, Config{Endpoints: []string{m.srv.URL}})
	ctx := context.Background()
	mod := m.put("a", "1")
	t1 := Txn{
		Compares: []Compare{ModIs("a", Equal, mod), Exists("b", false)},
		Success:  []TxnOp{OpPut("b", []byte("2"), 0), OpGet("a")},
		Failure:  []TxnOp{OpGet("b")},
	}
	res, err := c.Txn(ctx, t1)
	if err != nil {
		t.Fatal(err)
	}
	if !res.Succeeded || res.Index != mod+1 || len(res.Responses) != 2 || res.Responses[0].Type != TxnPut ||
		!res.Responses[1].Found || string(res.Responses[1].KV.Value) != "1" || res.Responses[1].KV.ModIndex != mod {
		t.Fatalf("Txn = %+v", res)
	}
	res, err = c.Txn(ctx, t1) // b exists now
	if err != nil {
		t.Fatal(err)
	}
	if res.Succeeded || len(res.Responses) != 1 || !res.Responses[0].Found || string(res.Responses[0].KV.Value) != "2" {
		t.Fatalf("Txn's second time = %+v, want the failure branch's get of b", res)
	}
	if _, err := c.Txn(ctx, Txn{}); !errors.Is(err, ErrBadRequest) {
		t.Fatalf("empty Txn: %v, want ErrBadRequest", err)
	}
}

// TestTxnCrossGroup: a sharded Client refuses a Txn whose keys two groups
// serve, before sending anything.
func TestTxnCrossGroup(t *testing.T) {
	cg, g1, g2 := shardedSetup(t, 16)
	c := newTestClient(t, Config{ConfigEndpoints: []string{cg.srv.URL}})
	cfg := cg.latest()
	a, b := keyOf(t, cfg, 1, "a"), keyOf(t, cfg, 2, "b")
	_, err := c.Txn(context.Background(), Txn{Success: []TxnOp{OpPut(a, nil, 0), OpPut(b, nil, 0)}})
	if !errors.Is(err, ErrCrossGroup) || !errors.Is(err, ErrBadRequest) {
		t.Fatalf("Txn across groups: %v", err)
	}
	if n := len(g1.attempts()) + len(g2.attempts()); n != 0 {
		t.Fatalf("%d requests sent", n)
	}
}

// TestListPages: ListAll walks every page of a range in key order.
func TestListPages(t *testing.T) {
	m := newDataMember(t)
	c := newTestClient(t, Config{Endpoints: []string{m.srv.URL}})
	var want []string
	for i := range 23 {
		k := fmt.Sprintf("p/%02d", i)
		m.put(k, "v")
		want = append(want, k)
	}
	m.put("q", "out of range")
	var got []string
	for kv, err := range c.ListAll(context.Background(), ListOptions{Prefix: "p/", Limit: 5}) {
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, kv.Key)
	}
	if !slices.Equal(got, want) {
		t.Fatalf("ListAll = %q, want %q", got, want)
	}
	if n := len(m.mu.lists); n != 5 {
		t.Fatalf("%d pages, want 5", n)
	}
}

// TestListGroups: a sharded Client gathers a page from every group,
// merged in key order and cut at the limit, continued by one token; a
// group at another config version makes it refresh and gather again.
func TestListGroups(t *testing.T) {
	cg, m1, m2, cfg, want := twoDataGroups(t, 40)
	c := newTestClient(t, Config{ConfigEndpoints: []string{cg.srv.URL}})
	ctx := context.Background()
	page, err := c.List(ctx, ListOptions{Limit: 7})
	if err != nil {
		t.Fatal(err)
	}
	if got := keysOf(page.KVs); !slices.Equal(got, want[:7]) || !page.More || page.Continue == "" || len(page.Indexes) != 2 || page.ConfigVersion != cfg.Version {
		t.Fatalf("first page: %q more %v indexes %v at config %d, want %q at %d", got, page.More, page.Indexes, page.ConfigVersion, want[:7], cfg.Version)
	}
	// The groups move on to a new config; the Client's map is stale.
	cfg = cg.mustApply(t, func(c shardmap.Config) (shardmap.Config, error) { return c.Move(0, 2) })
	m1.mu.Lock()
	m1.mu.version = cfg.Version
	m1.mu.Unlock()
	m2.mu.Lock()
	m2.mu.version = cfg.Version
	m2.mu.Unlock()
	got := keysOf(page.KVs)
	for page.More {
		if page, err = c.List(ctx, ListOptions{Limit: 7, Continue: page.Continue}); err != nil {
			t.Fatal(err)
		}
		got = append(got, keysOf(page.KVs)...)
		if page.ConfigVersion != cfg.Version {
			t.Fatalf("a page after the move at config %d, want %d", page.ConfigVersion, cfg.Version)
		}
	}
	if !slices.Equal(got, want) {
		t.Fatalf("pages = %q, want %q", got, want)
	}
	if v, _ := c.CachedConfig(); v.Version != cfg.Version {
		t.Fatalf("cached config %d, want %d", v.Version, cfg.Version)
	}
	if _, err := c.List(ctx, ListOptions{Prefix: "k", Continue: page.Continue + "x"}); !errors.Is(err, ErrBadRequest) {
		t.Fatalf("a token of another range: %v, want ErrBadRequest", err)
	}
}

// TestListGroupsKeysNotUTF8: a listing gathered from groups, one key a
// page, returns every key once, in order, when keys are not UTF-8: the
// continue token carries the last key as bytes (as JSON text it became
// U+FFFD, and the next page began after that, skipping keys).
func TestListGroupsKeysNotUTF8(t *testing.T) {
	cg, m1, m2, cfg, _ := twoDataGroups(t, 0)
	want := []string{"k\x80", "k\x81", "k\xc3\xa9", "k\xef\xbf\xbd", "k\xf0\x9f\x98\x80", "k\xff", "k\xff\x00"}
	for _, k := range want {
		if cfg.OwnerOfKey(k) == 1 {
			m1.put(k, "v")
		} else {
			m2.put(k, "v")
		}
	}
	c := newTestClient(t, Config{ConfigEndpoints: []string{cg.srv.URL}})
	for _, prefix := range []string{"k", "", "k\xff"} {
		var got []string
		page := ListPage{More: true}
		for page.More {
			if len(got) > 2*len(want) {
				t.Fatalf("prefix %q: pages without end: %q", prefix, got)
			}
			var err error
			if page, err = c.List(context.Background(), ListOptions{Prefix: prefix, Limit: 1, Continue: page.Continue}); err != nil {
				t.Fatalf("prefix %q after %q: %v", prefix, got, err)
			}
			got = append(got, keysOf(page.KVs)...)
		}
		var wantHere []string
		for _, k := range want {
			if strings.HasPrefix(k, prefix) {
				wantHere = append(wantHere, k)
			}
		}
		if !slices.Equal(got, wantHere) {
			t.Errorf("prefix %q: pages %q, want %q", prefix, got, wantHere)
		}
	}
}

// twoDataGroups is a config group of 16 buckets that groups 1 and 2
// joined, one data member each at the config's version, and keys k00,
// k01, ... (n of them, their values the keys) on the member of the group
// that serves each.
func twoDataGroups(t *testing.T, n int) (cg *configGroup, m1, m2 *dataMember, cfg shardmap.Config, keys []string) {
	cg = newConfigGroup(t, 16)
	m1, m2 = newDataMember(t), newDataMember(t)
	cfg = cg.mustApply(t, func(c shardmap.Config) (shardmap.Config, error) {
		return c.Join(map[uint64][]string{1: {m1.srv.URL}, 2: {m2.srv.URL}})
	})
	m1.mu.version, m2.mu.version = cfg.Version, cfg.Version
	for i := range n {
		k := fmt.Sprintf("k%02d", i)
		if cfg.OwnerOfKey(k) == 1 {
			m1.put(k, k)
		} else {
			m2.put(k, k)
		}
		keys = append(keys, k)
	}
	return cg, m1, m2, cfg, keys
}

func keysOf(kvs []KeyValue) []string {
	var keys []string
	for _, kv := range kvs {
		keys = append(keys, kv.Key)
	}
	return keys
}

// TestWatchResumes: a Watch whose member goes away mid-stream resumes at
// the next member after the last event it delivered: every event once,
// in order.
func TestWatchResumes(t *testing.T) {
	m := newDataMember(t)
	m.mu.cutAfter = 3
	c := newTestClient(t, Config{Endpoints: []string{m.srv.URL}})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	from := m.put("other", "x") + 1
	ch, err := c.Watch(ctx, WatchOptions{Prefix: "w/", FromIndex: from})
	if err != nil {
		t.Fatal(err)
	}
	m.mu.Lock()
	var want []string
	for i := range 10 {
		// Two events in one index, to resume in the middle of one.
		k1, k2 := fmt.Sprintf("w/%d", i), fmt.Sprintf("w/%d-b", i)
		m.applyLocked([]TxnOp{OpPut(k1, []byte("v"), 0), OpPut(k2, []byte("v"), 0)})
		m.applyLocked([]TxnOp{OpPut("other", nil, 0)})
		want = append(want, k1, k2)
	}
	m.mu.Unlock()
	var got []string
	for len(got) < len(want) {
		select {
		case ev, ok := <-ch:
			if !ok || ev.Err != nil {
				t.Fatalf("watch ended: %v after %q", ev.Err, got)
			}
			got = append(got, ev.KV.Key)
		case <-ctx.Done():
			t.Fatalf("got %q, want %q", got, want)
		}
	}
	if !slices.Equal(got, want) {
		t.Fatalf("got %q, want %q", got, want)
	}
}

// TestWatchCompacted: a Watch from an index no longer kept fails with
// ErrCompacted and the oldest index.
func TestWatchCompacted(t *testing.T) {
	m := newDataMember(t)
	m.mu.oldest = 50
	c := newTestClient(t, Config{Endpoints: []string{m.srv.URL}})
	_, err := c.Watch(context.Background(), WatchOptions{Key: "k", FromIndex: 3})
	var e *Error
	if !errors.Is(err, ErrCompacted) || !errors.As(err, &e) || e.OldestIndex != 50 {
		t.Fatalf("Watch: %v, want ErrCompacted from 50", err)
	}
	if !strings.Contains(err.Error(), "410") {
		t.Errorf("error %q does not name the 410", err)
	}
}

// TestClusterTxnAndList: conditional writes, a Txn and a paged listing
// against real members.
func TestClusterTxnAndList(t *testing.T) {
	t.Parallel()
	tc, _ := startCluster(t, 3)
	c := newTestClient(t, Config{Endpoints: clientURLs(tc, 1, 2, 3), RequestTimeout: 20 * time.Second})
	ctx := context.Background()
	first, err := c.Put(ctx, "cas", []byte("a"), WithIfAbsent())
	if err != nil {
		t.Fatal(err)
	}
	var e *Error
	if _, err := c.Put(ctx, "cas", []byte("b"), WithIfAbsent()); !errors.Is(err, ErrPreconditionFailed) || !errors.As(err, &e) || e.ModIndex != first {
		t.Fatalf("Put WithIfAbsent of a present key: %v; want ErrPreconditionFailed at %d", err, first)
	}
	if _, err := c.Put(ctx, "cas", []byte("b"), WithIfMatch(first)); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Delete(ctx, "cas", WithIfMatch(first)); !errors.Is(err, ErrPreconditionFailed) {
		t.Fatalf("Delete WithIfMatch of an old version: %v", err)
	}
	if _, err := c.Put(ctx, "cas", []byte("c"), WithIfExists()); err != nil {
		t.Fatal(err)
	}

	res, err := c.Txn(ctx, Txn{
		Compares: []Compare{ValueIs("cas", Equal, []byte("c")), Exists("other", false)},
		Success:  []TxnOp{OpPut("other", []byte{0xff, 0}, 0), OpGet("other"), OpDelete("cas")},
		Failure:  []TxnOp{OpGet("cas")},
	})
	if err != nil {
		t.Fatal(err)
	}
	if !res.Succeeded || len(res.Responses) != 3 || !res.Responses[1].Found || string(res.Responses[1].KV.Value) != "\xff\x00" ||
		res.Responses[1].KV.ModIndex != res.Index || res.ModIndex != res.Index {
		t.Fatalf("Txn = %+v", res)
	}
	if _, err := c.Get(ctx, "cas"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Get of the key the Txn deleted: %v", err)
	}

	var want []string
	for i := range 57 {
		k := fmt.Sprintf("l/%02d", i)
		if _, err := c.Put(ctx, k, []byte(k)); err != nil {
			t.Fatal(err)
		}
		want = append(want, k)
	}
	var got []string
	for kv, err := range c.ListAll(ctx, ListOptions{Prefix: "l/", Limit: 10}) {
		if err != nil {
			t.Fatal(err)
		}
		if string(kv.Value) != kv.Key || kv.ModIndex == 0 {
			t.Fatalf("listed %+v", kv)
		}
		got = append(got, kv.Key)
	}
	if !slices.Equal(got, want) {
		t.Fatalf("ListAll = %q, want %q", got, want)
	}
	page, err := c.List(ctx, ListOptions{Start: "l/50", End: "l/53", KeysOnly: true, Stale: true})
	if err != nil || !slices.Equal(keysOf(page.KVs), want[50:53]) || page.More || page.KVs[0].Value != nil {
		t.Fatalf("List of a range, keys only: %+v, %v", page, err)
	}
}

// TestWatchCutHeartbeat: a stream cut in the middle of a heartbeat's
// index (": progress 12" of ": progress 123") leaves the watch to resume
// after its last event, not after index 12, whose later events it has
// not seen.
func TestWatchCutHeartbeat(t *testing.T) {
	w := &watchStream{opts: WatchOptions{Prefix: "w/", IdleTimeout: time.Minute}, afterPos: -1, cancel: func() {}}
	stream := "id: 12.0\nevent: put\ndata: {\"key\":\"w/a\",\"mod_index\":12}\n\n: progress 12"
	ch := make(chan WatchEvent, 4)
	if err := w.read(context.Background(), strings.NewReader(stream), ch); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("read = %v, want io.ErrUnexpectedEOF", err)
	}
	if got := w.request().header.Get("Last-Event-ID"); got != "12.0" || w.fromIndex != 12 || w.afterPos != 0 {
		t.Fatalf("resumes with Last-Event-ID %q (from %d after %d), want 12.0", got, w.fromIndex, w.afterPos)
	}
}

// TestWatchCompactedOnOneMember: a member that restored a snapshot
// (its window starts past the events a watch needs) answers 410, or ends
// a stream with a compacted error; the watch goes on at another member,
// which still holds the events, and fails only when every member
// answers 410, with the oldest index any of them serves.
func TestWatchCompactedOnOneMember(t *testing.T) {
	restored, whole := newDataMember(t), newDataMember(t)
	both := func(key string) {
		for _, m := range []*dataMember{restored, whole} {
			m.put(key, "v")
		}
	}
	for i := range 4 {
		both(fmt.Sprintf("w/%d", i))
	}
	restored.mu.Lock()
	restored.mu.oldest = 50
	restored.mu.Unlock()
	c := newTestClient(t, Config{Endpoints: []string{restored.srv.URL, whole.srv.URL}, RequestTimeout: 10 * time.Second})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	next := func(ch <-chan WatchEvent) string {
		t.Helper()
		select {
		case ev, ok := <-ch:
			if !ok || ev.Err != nil {
				t.Fatalf("watch ended: %v", ev.Err)
			}
			return ev.KV.Key
		case <-ctx.Done():
			t.Fatal("no event")
		}
		return ""
	}

	// A 410 at connecting: the other member serves the watch.
	ch, err := c.Watch(ctx, WatchOptions{Prefix: "w/", FromIndex: 2})
	if err != nil {
		t.Fatalf("Watch from 2 with one member compacted past it: %v", err)
	}
	for i := 1; i < 4; i++ {
		if got, want := next(ch), fmt.Sprintf("w/%d", i); got != want {
			t.Fatalf("event %q, want %q", got, want)
		}
	}

	// A stream that ends compacted: the watch resumes at the other
	// member after its last event.
	restored.mu.Lock()
	restored.mu.oldest, restored.mu.compactAfter = 1, 2
	restored.mu.Unlock()
	wctx, wcancel := context.WithCancel(ctx)
	defer wcancel()
	c2 := newTestClient(t, Config{Endpoints: []string{restored.srv.URL, whole.srv.URL}, RequestTimeout: 10 * time.Second})
	ch, err = c2.Watch(wctx, WatchOptions{Prefix: "w/", FromIndex: 1})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for range 4 {
		got = append(got, next(ch))
	}
	if want := []string{"w/0", "w/1", "w/2", "w/3"}; !slices.Equal(got, want) {
		t.Fatalf("events %q, want %q", got, want)
	}
	wcancel()

	// Every member compacted: ErrCompacted, from the oldest index kept.
	restored.mu.Lock()
	restored.mu.oldest, restored.mu.compactAfter = 50, 0
	restored.mu.Unlock()
	whole.mu.Lock()
	whole.mu.oldest = 30
	whole.mu.Unlock()
	_, err = c.Watch(ctx, WatchOptions{Prefix: "w/", FromIndex: 2})
	var e *Error
	if !errors.Is(err, ErrCompacted) || !errors.As(err, &e) || e.OldestIndex != 30 {
		t.Fatalf("Watch with every member compacted: %v, want ErrCompacted from 30", err)
	}
}

// TestWatchServers: WatchOptions.Servers watch a group at the members
// given, not those of the Client's configuration (a router resuming a
// group that left), and go with Group only.
func TestWatchServers(t *testing.T) {
	m := newDataMember(t)
	for i := range 3 {
		m.put(fmt.Sprintf("w/%d", i), "v")
	}
	dead := httptest.NewServer(http.NotFoundHandler())
	dead.Close()
	c := newTestClient(t, Config{Endpoints: []string{dead.URL}, RequestTimeout: 5 * time.Second})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	ch, err := c.Watch(ctx, WatchOptions{Prefix: "w/", Group: 7, Servers: []string{m.srv.URL}, FromIndex: 1})
	if err != nil {
		t.Fatalf("Watch at Servers: %v", err)
	}
	for i := range 3 {
		select {
		case ev := <-ch:
			if want := fmt.Sprintf("w/%d", i); ev.Err != nil || ev.KV.Key != want {
				t.Fatalf("event %+v, want %s", ev, want)
			}
		case <-ctx.Done():
			t.Fatal("no event")
		}
	}
	for _, o := range []WatchOptions{
		{Prefix: "w/", Servers: []string{m.srv.URL}},
		{Prefix: "w/", Group: 7, Servers: []string{"::not a url"}},
	} {
		if _, err := c.Watch(ctx, o); !errors.Is(err, ErrBadRequest) {
			t.Errorf("Watch(%+v) = %v, want ErrBadRequest", o, err)
		}
	}
}

// TestDeleteRange: a range delete answers the number of keys deleted; one
// whose try may have been applied (504) is not sent again, since members
// keep no record of it, and fails as ErrOutcomeUnknown.
func TestDeleteRange(t *testing.T) {
	m := newDataMember(t)
	c := newTestClient(t, Config{Endpoints: []string{m.srv.URL}})
	ctx := context.Background()
	for _, k := range []string{"a/1", "a/2", "b"} {
		m.put(k, "v")
	}
	res, err := c.DeleteRange(ctx, DeleteRangeOptions{Prefix: "a/"})
	if err != nil || res.Deleted != 2 || res.Index != 4 {
		t.Fatalf("DeleteRange a/ = %+v, %v; want 2 deleted at 4", res, err)
	}
	for _, bad := range []DeleteRangeOptions{{}, {Prefix: "a", End: "b"}, {Start: "b", End: "a"}} {
		if _, err := c.DeleteRange(ctx, bad); !errors.Is(err, ErrBadRequest) {
			t.Errorf("DeleteRange(%+v): %v, want ErrBadRequest", bad, err)
		}
	}
	m.mu.Lock()
	m.mu.rangeTimeout = true
	m.mu.Unlock()
	_, err = c.DeleteRange(ctx, DeleteRangeOptions{Start: "\x00"})
	var e *Error
	if !errors.Is(err, ErrOutcomeUnknown) || !errors.As(err, &e) || e.Tries != 1 {
		t.Fatalf("DeleteRange answered 504: %v; want ErrOutcomeUnknown after one try", err)
	}
	if n := len(m.mu.ranges); n != 2 {
		t.Fatalf("%d range deletes sent, want 2", n)
	}
}

// TestDeleteRangeGroupsMaybeApplied: when one group has no leader (503,
// not applied) and another may have deleted (504), the range delete's
// answer is "outcome unknown", whichever group comes first: told "not
// applied", a caller would delete again, and a second delete also takes
// the keys written in between.
func TestDeleteRangeGroupsMaybeApplied(t *testing.T) {
	cg, m1, m2, _, _ := twoDataGroups(t, 20)
	for _, first := range []bool{true, false} {
		// first: the group without a leader is the first by id.
		down, unsure := m1, m2
		if !first {
			down, unsure = m2, m1
		}
		down.mu.Lock()
		down.mu.rangeNoLeader, down.mu.rangeTimeout = true, false
		down.mu.Unlock()
		unsure.mu.Lock()
		unsure.mu.rangeNoLeader, unsure.mu.rangeTimeout = false, true
		unsure.mu.Unlock()
		c := newTestClient(t, Config{ConfigEndpoints: []string{cg.srv.URL}, RequestTimeout: time.Second})
		_, err := c.DeleteRange(context.Background(), DeleteRangeOptions{Prefix: "k"})
		if !errors.Is(err, ErrOutcomeUnknown) || errors.Is(err, ErrUnavailable) {
			t.Errorf("no leader in group %d, 504 from the other: %v; want ErrOutcomeUnknown, not ErrUnavailable",
				map[bool]int{true: 1, false: 2}[first], err)
		}
	}
}

// TestDeleteRangeGroups: a sharded Client asks every group at its config
// version; when the groups moved on, it refreshes its config and asks
// every group again, and counts every key deleted.
func TestDeleteRangeGroups(t *testing.T) {
	cg, m1, m2, cfg, _ := twoDataGroups(t, 20)
	c := newTestClient(t, Config{ConfigEndpoints: []string{cg.srv.URL}})
	ctx := context.Background()
	if _, err := c.Refresh(ctx, 0); err != nil {
		t.Fatal(err)
	}
	cfg = cg.mustApply(t, func(c shardmap.Config) (shardmap.Config, error) { return c.Move(0, 2) })
	for _, m := range []*dataMember{m1, m2} {
		m.mu.Lock()
		m.mu.version = cfg.Version
		m.mu.Unlock()
	}
	res, err := c.DeleteRange(ctx, DeleteRangeOptions{Prefix: "k"})
	if err != nil || res.Deleted != 20 || len(res.Indexes) != 2 || res.ConfigVersion != cfg.Version {
		t.Fatalf("DeleteRange = %+v, %v; want 20 deleted by 2 groups at config %d", res, err, cfg.Version)
	}
	for i, m := range []*dataMember{m1, m2} {
		if n := len(m.mu.ranges); n != 2 || !strings.Contains(m.mu.ranges[1], fmt.Sprintf("config_version=%d", cfg.Version)) {
			t.Errorf("group %d was asked %q; want twice, the second time at config %d", i+1, m.mu.ranges, cfg.Version)
		}
	}
}

// TestGroupsTokenVersions: a gathered listing's continue token is of
// version 1, which routers not yet upgraded read, when its keys are
// UTF-8, and of version 2 (keys as bytes) only when they are not.
func TestGroupsTokenVersions(t *testing.T) {
	for _, tc := range []struct {
		tok  groupsToken
		want int
	}{
		{groupsToken{Prefix: "p/", After: "p/ké"}, 1},
		{groupsToken{Start: "a", End: "b", After: "a\x00"}, 1},
		{groupsToken{Prefix: "k", After: "k\x80"}, 2},
		{groupsToken{Prefix: "\xff", After: "\xff1"}, 2},
		{groupsToken{End: "\xc3", After: "\xa9zz"}, 2}, // each invalid, valid joined
	} {
		b, err := base64.RawURLEncoding.DecodeString(tc.tok.encode())
		var w tokenWire
		if err != nil || json.Unmarshal(b, &w) != nil || w.V != tc.want {
			t.Errorf("%+v: token %s, want version %d", tc.tok, b, tc.want)
		}
		got, err := decodeGroupsToken(tc.tok.encode(), ListOptions{Prefix: tc.tok.Prefix, Start: tc.tok.Start, End: tc.tok.End})
		if err != nil || got.After != tc.tok.After {
			t.Errorf("%+v: decoded %+v, %v", tc.tok, got, err)
		}
	}
}
