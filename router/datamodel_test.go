package router

// The router's data model paths (versions, conditions, txn, listing,
// watch) over in-test members that follow the data model's wire, for
// what real members do not serve yet (kvstore's Txn, List and Watch are
// being built against the same contract).

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/raftkv/raftkv/client"
	"github.com/raftkv/raftkv/internal/testutil"
	"github.com/raftkv/raftkv/shardmap"
	"go.uber.org/zap/zaptest"
)

// sseEvent is one message of an in-test member's stream.
type sseEvent struct {
	index uint64
	pos   int
	name  string
	data  string
}

// dmember is an in-test member of one group.
type dmember struct {
	srv *httptest.Server
	mu  sync.Mutex
	n   uint64
	kv  map[string]string
	mod map[string]uint64
	log []sseEvent
	// changed is closed and replaced at each write.
	changed chan struct{}
	txns    int
	// stalled holds every stream back, as a slow network does.
	stalled bool
	// quiet: no heartbeat after a stream's first one.
	quiet bool
	// behind, when not 0, makes m's streams those of a member that has
	// applied only up to that index (a lagging or isolated follower):
	// later events are not sent, and heartbeats say behind.
	behind uint64
	// configAt, if set, is the config version m had applied as of an
	// index, which its heartbeats say, as members do: ": config V".
	configAt func(index uint64) uint64
	// opened counts the streams m has answered.
	opened int
	// firstBeat, if set, holds each stream's first heartbeat until it
	// is closed, as a member slow to answer does.
	firstBeat chan struct{}
}

func newDMember(t *testing.T) *dmember {
	m := &dmember{kv: map[string]string{}, mod: map[string]uint64{}, changed: make(chan struct{})}
	m.srv = httptest.NewServer(http.HandlerFunc(m.serve))
	t.Cleanup(m.srv.Close)
	t.Cleanup(m.srv.CloseClientConnections)
	return m
}

// stall holds m's streams back (true) or lets them go on.
func (m *dmember) stall(on bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.stalled = on
}

// streamCounts returns how many streams each member of g has answered.
func streamCounts(g map[uint64]*dmember) map[uint64]int {
	n := map[uint64]int{}
	for id, m := range g {
		m.mu.Lock()
		n[id] = m.opened
		m.mu.Unlock()
	}
	return n
}

// waitStreams waits until each of the groups ids has answered a stream
// since streamCounts gave before. A stream from now starts after the
// index its member had when it answered, so the events applied once
// this returns reach the watch that asked for it.
func waitStreams(t *testing.T, g map[uint64]*dmember, before map[uint64]int, ids ...uint64) {
	t.Helper()
	testutil.WaitFor(t, 10*time.Second, "the router's streams of the groups", func() error {
		now := streamCounts(g)
		for _, id := range ids {
			if now[id] == before[id] {
				return fmt.Errorf("group %d has answered no stream yet", id)
			}
		}
		return nil
	})
}

// watchPrefixP opens a merged watch of prefix "p" through srv and returns
// once the groups ids answered its streams.
func watchPrefixP(t *testing.T, ctx context.Context, srv *httptest.Server, g map[uint64]*dmember, ids ...uint64) chan [4]string {
	t.Helper()
	opened := streamCounts(g)
	ch := openWatch(t, ctx, srv.URL+"/key?watch=true&prefix=p", "")
	waitStreams(t, g, opened, ids...)
	return ch
}

// stop stops m as a killed process would be: no new connection, and
// the open ones cut. (Cutting them first would let a client reconnect
// before the listener closed, and httptest's Close then waits for that
// stream.)
func (m *dmember) stop() {
	m.srv.Listener.Close()
	m.srv.CloseClientConnections()
}

// apply appends events at the next index.
func (m *dmember) apply(evs ...sseEvent) uint64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.n++
	for i, ev := range evs {
		ev.index, ev.pos = m.n, i
		if ev.name == "put" {
			var d struct{ Key, Value string }
			json.Unmarshal([]byte(ev.data), &d)
			m.kv[d.Key], m.mod[d.Key] = d.Value, m.n
		}
		m.log = append(m.log, ev)
	}
	close(m.changed)
	m.changed = make(chan struct{})
	return m.n
}

func putEvent(key, value string) sseEvent {
	b, _ := json.Marshal(map[string]any{"type": "put", "key": key, "value": value})
	return sseEvent{name: "put", data: string(b)}
}

func markerEvent(name string, bucket int, version uint64) sseEvent {
	b, _ := json.Marshal(map[string]any{"type": name, "bucket": bucket, "version": version})
	return sseEvent{name: name, data: string(b)}
}

func (m *dmember) serve(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	switch {
	case q.Get("watch") == "true":
		m.watch(w, r)
		return
	case r.URL.Path == "/txn":
		m.mu.Lock()
		m.txns++
		m.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"succeeded":true,"index":7,"responses":[]}`)
		return
	case r.URL.Path == "/key" && r.Method == http.MethodGet:
		m.list(w, r)
		return
	}
	key := strings.TrimPrefix(r.URL.Path, "/")
	m.mu.Lock()
	defer m.mu.Unlock()
	switch r.Method {
	case http.MethodGet:
		v, ok := m.kv[key]
		if !ok {
			w.WriteHeader(http.StatusNotFound)
			return
		}
		w.Header().Set("ETag", fmt.Sprintf(`"%d"`, m.mod[key]))
		w.Header().Set("X-Create-Index", "1")
		w.Header().Set("X-TTL", "30")
		w.Header().Set("X-Raft-Index", strconv.FormatUint(m.n, 10))
		io.WriteString(w, v)
	case http.MethodPut:
		if im := r.Header.Get("If-Match"); im != "" && im != fmt.Sprintf(`"%d"`, m.mod[key]) {
			w.Header().Set("ETag", fmt.Sprintf(`"%d"`, m.mod[key]))
			w.Header().Set("X-Raft-Index", strconv.FormatUint(m.n, 10))
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusPreconditionFailed)
			io.WriteString(w, `{"error":"key is at another version","code":"precondition_failed"}`+"\n")
			return
		}
		b, _ := io.ReadAll(r.Body)
		m.n++
		// A version past the raft index, as a key whose bucket came
		// from a group with a longer log gets.
		m.kv[key], m.mod[key] = string(b), m.n+100
		w.Header().Set("ETag", fmt.Sprintf(`"%d"`, m.mod[key]))
		w.Header().Set("X-Raft-Index", strconv.FormatUint(m.n, 10))
		w.WriteHeader(http.StatusNoContent)
	}
}

// list serves a listing with start, limit and config_version.
func (m *dmember) list(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	m.mu.Lock()
	defer m.mu.Unlock()
	limit, _ := strconv.Atoi(q.Get("limit"))
	var keys []string
	for k := range m.kv {
		if strings.HasPrefix(k, q.Get("prefix")) && k >= q.Get("start") && (q.Get("end") == "" || k < q.Get("end")) {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	more := limit > 0 && len(keys) > limit
	if more {
		keys = keys[:limit]
	}
	var kvs []map[string]any
	for _, k := range keys {
		kvs = append(kvs, map[string]any{"key": k, "value": m.kv[k], "mod_index": m.mod[k]})
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(map[string]any{"index": m.n, "kvs": kvs, "more": more})
}

// watch streams the log from Last-Event-ID or from now.
func (m *dmember) watch(w http.ResponseWriter, r *http.Request) {
	from, after := uint64(0), -1
	if id := r.Header.Get("Last-Event-ID"); id != "" {
		i, p, dotted := strings.Cut(id, ".")
		from, _ = strconv.ParseUint(i, 10, 64)
		if dotted {
			after, _ = strconv.Atoi(p)
		} else {
			from++
		}
	}
	if v := r.URL.Query().Get("from_index"); v != "" {
		from, _ = strconv.ParseUint(v, 10, 64)
	}
	m.mu.Lock()
	if from == 0 {
		from = m.n + 1
	}
	firstBeat := m.firstBeat
	m.mu.Unlock()
	w.Header().Set("Content-Type", "text/event-stream")
	w.WriteHeader(http.StatusOK)
	if firstBeat != nil {
		w.(http.Flusher).Flush()
		select {
		case <-firstBeat:
		case <-r.Context().Done():
			return
		}
	}
	m.beat(w, from-1)
	w.(http.Flusher).Flush()
	m.mu.Lock()
	m.opened++
	m.mu.Unlock()
	next := 0
	for {
		m.mu.Lock()
		evs, ch, n := m.log[next:], m.changed, m.n
		if m.stalled {
			evs = nil
		} else {
			next = len(m.log)
		}
		stalled, quiet, behind := m.stalled, m.quiet, m.behind
		if behind > 0 {
			n = min(n, behind)
			next = 0 // send the rest once caught up; from/after skip what was sent
		}
		m.mu.Unlock()
		if stalled {
			select {
			case <-time.After(10 * time.Millisecond):
				continue
			case <-r.Context().Done():
				return
			}
		}
		for _, ev := range evs {
			if ev.index < from || ev.index == from && ev.pos <= after || behind > 0 && ev.index > behind {
				continue
			}
			from, after = ev.index, ev.pos
			fmt.Fprintf(w, "id: %d.%d\nevent: %s\ndata: %s\n\n", ev.index, ev.pos, ev.name, ev.data)
		}
		if !quiet {
			m.beat(w, n)
		}
		w.(http.Flusher).Flush()
		select {
		case <-ch:
		case <-time.After(50 * time.Millisecond):
		case <-r.Context().Done():
			return
		}
	}
}

// beat writes a heartbeat at index, with the config m had applied as of
// it when m says so (configAt).
func (m *dmember) beat(w io.Writer, index uint64) {
	m.mu.Lock()
	configAt := m.configAt
	m.mu.Unlock()
	if configAt != nil {
		fmt.Fprintf(w, ": config %d\n", configAt(index)) // 0: it cannot tell
	}
	fmt.Fprintf(w, ": progress %d\n\n", index)
}

// configHistory is the in-test config group's history, which tests
// append to while the router reads it.
type configHistory struct {
	mu sync.Mutex
	h  shardmap.History
}

func (c *configHistory) Latest() shardmap.Config {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.h.Latest()
}

func (c *configHistory) Append(next shardmap.Config) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.h.Append(next)
}

func (c *configHistory) Query(v int64) shardmap.Config {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.h.Query(v)
}

// leave appends the config in which group gid left, and returns it.
func (c *configHistory) leave(t *testing.T, gid uint64) shardmap.Config {
	t.Helper()
	left, err := c.Latest().Leave([]uint64{gid})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Append(left); err != nil {
		t.Fatal(err)
	}
	return left
}

// move appends the config that moves bucket b to group gid, and returns it.
func (c *configHistory) move(t *testing.T, b int, gid uint64) shardmap.Config {
	t.Helper()
	next, err := c.Latest().Move(b, gid)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Append(next); err != nil {
		t.Fatal(err)
	}
	return next
}

// bucketOuts are group gid's bucket_out markers of every bucket it has
// in cfg, at config version.
func bucketOuts(cfg shardmap.Config, gid, version uint64) []sseEvent {
	var outs []sseEvent
	for _, bk := range cfg.BucketsOf(gid) {
		outs = append(outs, markerEvent("bucket_out", bk, version))
	}
	return outs
}

// dataRouter starts groups 1 and 2 of a 16-bucket config, a config group
// answering every version of hist, and a router over them.
func dataRouter(t *testing.T) (*httptest.Server, *configHistory, map[uint64]*dmember) {
	return dataRouterN(t, 2, nil)
}

// dataRouterN is dataRouter with n groups; prepare, if set, is called
// with them before any is used.
func dataRouterN(t *testing.T, n int, prepare func(map[uint64]*dmember)) (*httptest.Server, *configHistory, map[uint64]*dmember) {
	g := map[uint64]*dmember{}
	urls := map[uint64][]string{}
	for i := uint64(1); i <= uint64(n); i++ {
		g[i] = newDMember(t)
		urls[i] = []string{g[i].srv.URL}
	}
	if prepare != nil {
		prepare(g)
	}
	h0, err := shardmap.NewHistory(16)
	if err != nil {
		t.Fatal(err)
	}
	hist := &configHistory{h: h0}
	cfg, err := hist.Latest().Join(urls)
	if err != nil {
		t.Fatal(err)
	}
	if err := hist.Append(cfg); err != nil {
		t.Fatal(err)
	}
	cs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		v, _ := strconv.ParseInt(r.URL.Query().Get("version"), 10, 64)
		if r.URL.Query().Get("version") == "" {
			v = -1
		}
		c := hist.Query(v)
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(c)
	}))
	t.Cleanup(cs.Close)
	c, err := client.New(client.Config{ConfigEndpoints: []string{cs.URL}, ClientID: "router", RequestTimeout: 2 * time.Second,
		Backoff: time.Millisecond, MaxBackoff: 10 * time.Millisecond, Logger: zaptest.NewLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	h, err := New(Config{Client: c, Logger: zaptest.NewLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	t.Cleanup(srv.CloseClientConnections)
	return srv, hist, g
}

func request(t *testing.T, method, url, body string, hdr map[string]string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

// TestRouterVersionsAndConditions: versions come back as a member sends
// them, and a 412 keeps its ETag.
func TestRouterVersionsAndConditions(t *testing.T) {
	srv, hist, g := dataRouter(t)
	cfg := hist.Latest()
	k := keyIn(cfg, 2, "k")
	mod := g[2].apply(putEvent(k, "v"))
	resp, body := request(t, http.MethodGet, srv.URL+"/"+k, "", nil)
	if resp.StatusCode != 200 || body != "v" || resp.Header.Get("ETag") != fmt.Sprintf(`"%d"`, mod) ||
		resp.Header.Get("X-Create-Index") != "1" || resp.Header.Get("X-TTL") != "30" || resp.Header.Get("X-Raft-Index") == "" {
		t.Fatalf("GET: %d %q %v", resp.StatusCode, body, resp.Header)
	}
	resp, body = request(t, http.MethodPut, srv.URL+"/"+k, "w", map[string]string{"If-Match": `"99"`, "Accept": "application/json"})
	if resp.StatusCode != http.StatusPreconditionFailed || resp.Header.Get("ETag") != fmt.Sprintf(`"%d"`, mod) || !strings.Contains(body, "precondition_failed") {
		t.Fatalf("PUT If-Match a wrong version: %d %q %v", resp.StatusCode, body, resp.Header)
	}
	resp, body = request(t, http.MethodPut, srv.URL+"/"+k, "w", map[string]string{"If-Match": `"99"`})
	if resp.StatusCode != http.StatusPreconditionFailed || resp.Header.Get("ETag") != fmt.Sprintf(`"%d"`, mod) || body != "key is at another version\n" {
		t.Fatalf("PUT If-Match a wrong version, without Accept: %d %q %v; want the member's message as text", resp.StatusCode, body, resp.Header)
	}
	resp, body = request(t, http.MethodPut, srv.URL+"/"+k+"?ttl=1ms", "w", nil)
	if resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("PUT ?ttl=1ms: %d %q", resp.StatusCode, body)
	}
	resp, body = request(t, http.MethodPut, srv.URL+"/"+k, "w", map[string]string{"If-Match": fmt.Sprintf(`"%d"`, mod)})
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("PUT If-Match the version: %d %q", resp.StatusCode, body)
	}
	// The new version is the member's ETag, not its raft index; the next
	// If-Match can name it.
	written := resp.Header.Get("ETag")
	if written == "" || written == `"`+resp.Header.Get("X-Raft-Index")+`"` {
		t.Fatalf("PUT's ETag %q with X-Raft-Index %s: want the member's version", written, resp.Header.Get("X-Raft-Index"))
	}
	if resp, _ = request(t, http.MethodGet, srv.URL+"/"+k, "", nil); resp.Header.Get("ETag") != written {
		t.Fatalf("GET after the PUT: ETag %q, the PUT answered %q", resp.Header.Get("ETag"), written)
	}
	resp, body = request(t, http.MethodPut, srv.URL+"/"+k, "x", map[string]string{"If-Match": written})
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("PUT If-Match the ETag a PUT answered: %d %q", resp.StatusCode, body)
	}
}

// TestRouterTxn: a txn goes to its keys' group; keys of two groups are a
// 400 cross_group, sent nowhere.
func TestRouterTxn(t *testing.T) {
	srv, hist, g := dataRouter(t)
	cfg := hist.Latest()
	a1, b1, a2 := keyIn(cfg, 1, "a"), keyIn(cfg, 1, "b"), keyIn(cfg, 2, "a")
	body := fmt.Sprintf(`{"compare":[{"key":%q,"target":"mod","result":"=","mod_index":0}],"success":[{"request_put":{"key":%q,"value":"x"}}]}`, a1, b1)
	resp, out := request(t, http.MethodPost, srv.URL+"/txn", body, nil)
	if resp.StatusCode != 200 || !strings.Contains(out, `"succeeded":true`) || g[1].txns != 1 || g[2].txns != 0 {
		t.Fatalf("txn in group 1: %d %q; txns %d %d", resp.StatusCode, out, g[1].txns, g[2].txns)
	}
	body = fmt.Sprintf(`{"success":[{"put":{"key":%q,"value":"x"}},{"get":{"key":%q}}]}`, a1, a2)
	resp, out = request(t, http.MethodPost, srv.URL+"/txn", body, map[string]string{"Accept": "application/json"})
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(out, `"code":"cross_group"`) || g[1].txns+g[2].txns != 1 {
		t.Fatalf("txn across groups: %d %q", resp.StatusCode, out)
	}
}

// TestRouterList: a listing through the router merges the groups in key
// order, honours the limit across them and continues with one token.
func TestRouterList(t *testing.T) {
	srv, hist, g := dataRouter(t)
	cfg := hist.Latest()
	var want []string
	for i := range 30 {
		k := fmt.Sprintf("k%02d", i)
		g[cfg.OwnerOfKey(k)].apply(putEvent(k, "v"))
		want = append(want, k)
	}
	var got []string
	cont := ""
	for pages := 0; ; pages++ {
		url := srv.URL + "/key?prefix=k&limit=8"
		if cont != "" {
			url += "&continue=" + cont
		}
		resp, body := request(t, http.MethodGet, url, "", nil)
		var page struct {
			KVs []struct {
				Key string `json:"key"`
			} `json:"kvs"`
			More     bool              `json:"more"`
			Continue string            `json:"continue"`
			Indexes  map[string]uint64 `json:"indexes"`
			Config   uint64            `json:"config"`
			Cursor   string            `json:"cursor"`
		}
		if resp.StatusCode != 200 || json.Unmarshal([]byte(body), &page) != nil || len(page.KVs) > 8 || len(page.Indexes) != 2 {
			t.Fatalf("page %d: %d %q", pages, resp.StatusCode, body)
		}
		if want := fmt.Sprintf("1=%d@%d,2=%d@%d", page.Indexes["1"], cfg.Version, page.Indexes["2"], cfg.Version); page.Config != cfg.Version || page.Cursor != want {
			t.Fatalf("page %d: config %d, cursor %q; want %d, %q", pages, page.Config, page.Cursor, cfg.Version, want)
		}
		for _, kv := range page.KVs {
			got = append(got, kv.Key)
		}
		if !page.More {
			break
		}
		cont = page.Continue
	}
	if !slices.Equal(got, want) {
		t.Fatalf("listing %q, want %q", got, want)
	}
	if resp, _ := request(t, http.MethodGet, srv.URL+"/key?prefix=k&min_index=3", "", nil); resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("listing with min_index: %d, want 400", resp.StatusCode)
	}
}

// readSSE reads a stream's events (id, name, key) into ch.
func readSSE(body io.Reader, ch chan<- [4]string) {
	sc := bufio.NewScanner(body)
	var id, name, key, value string
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "":
			if name != "" {
				ch <- [4]string{id, name, key, value}
			}
			id, name, key, value = "", "", "", ""
		case strings.HasPrefix(line, "id: "):
			id = line[4:]
		case strings.HasPrefix(line, "event: "):
			name = line[7:]
		case strings.HasPrefix(line, "data: "):
			var d struct{ Key, Value string }
			json.Unmarshal([]byte(line[6:]), &d)
			key, value = d.Key, d.Value
		}
	}
	close(ch)
}

func openWatch(t *testing.T, ctx context.Context, url, lastID string) chan [4]string {
	t.Helper()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if lastID != "" {
		req.Header.Set("Last-Event-ID", lastID)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("watch: %v %v", resp, err)
	}
	ch := make(chan [4]string, 100)
	go readSSE(resp.Body, ch)
	return ch
}

func next(t *testing.T, ch chan [4]string) [4]string {
	t.Helper()
	select {
	case ev, ok := <-ch:
		if !ok {
			t.Fatal("stream ended")
		}
		return ev
	case <-time.After(10 * time.Second):
		t.Fatal("no event within 10s")
	}
	return [4]string{}
}

// TestRouterWatchGroups: a watch of a prefix through the router gets the
// events of both groups, with cursor ids that resume every group; after
// a bucket_in the new owner's events wait for the old owner's bucket_out,
// with markers that name their config's version and with markers of
// older members that name none.
func TestRouterWatchGroups(t *testing.T) {
	t.Run("versioned", func(t *testing.T) { testRouterWatchGroups(t, true) })
	t.Run("version-less", func(t *testing.T) { testRouterWatchGroups(t, false) })
}

func testRouterWatchGroups(t *testing.T, versioned bool) {
	srv, hist, g := dataRouter(t)
	cfg := hist.Latest()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ch := watchPrefixP(t, ctx, srv, g, 1, 2)
	a, b := keyIn(cfg, 1, "pa"), keyIn(cfg, 2, "pb")
	g[1].apply(putEvent(a, "1"))
	ev := next(t, ch)
	if ev[2] != a || !strings.HasPrefix(ev[0], "1=") {
		t.Fatalf("first event %v", ev)
	}
	g[2].apply(putEvent(b, "1"))
	ev = next(t, ch)
	if ev[2] != b || !strings.Contains(ev[0], "2=") {
		t.Fatalf("second event %v", ev)
	}
	cursor := ev[0]

	// Resume from the cursor: the events after it, none before.
	g[1].apply(putEvent(a, "2"))
	ch2 := openWatch(t, ctx, srv.URL+"/key?watch=true&prefix=p", cursor)
	if ev := next(t, ch2); ev[2] != a || ev[3] != "2" {
		t.Fatalf("resumed watch: first event %v, want the put of %s after %s", ev, a, cursor)
	}

	// Bucket of a moves from group 1 to group 2 at version v.
	bucket := shardmap.BucketOf(a, 16)
	moved, err := hist.Latest().Move(bucket, 2)
	if err != nil {
		t.Fatal(err)
	}
	hist.Append(moved)
	next(t, ch) // the put of a, "2"
	// Group 1 applies the config (its last write of a before it) before
	// group 2 installs the bucket, but its stream is slow.
	g[1].stall(true)
	version := moved.Version
	if !versioned {
		version = 0
	}
	g[1].apply(putEvent(a, "last-of-1"), markerEvent("bucket_out", bucket, version))
	g[2].apply(markerEvent("bucket_in", bucket, version))
	g[2].apply(putEvent(a, "from-2"))
	time.Sleep(300 * time.Millisecond)
	g[1].stall(false)
	if ev := next(t, ch); ev[2] != a || ev[3] != "last-of-1" {
		t.Fatalf("after the move: %v, want the old owner's last put of %s first", ev, a)
	}
	if ev := next(t, ch); ev[2] != a || ev[3] != "from-2" {
		t.Fatalf("after the move: %v, want the new owner's put of %s", ev, a)
	}
}

// TestRouterWatchCursorWhileAGroupIsSlowToStart: while one group's stream
// has not said where it starts, the others' events wait, and so do their
// heartbeats: a heartbeat handled ahead of its group's waiting events
// moved the cursor past them, and a watch resumed from the id of another
// group's event, sent first, lost them.
func TestRouterWatchCursorWhileAGroupIsSlowToStart(t *testing.T) {
	slow := make(chan struct{})
	srv, hist, g := dataRouterN(t, 3, func(g map[uint64]*dmember) { g[3].firstBeat = slow })
	cfg := hist.Latest()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ch := watchPrefixP(t, ctx, srv, g, 1, 2)
	a, b := keyIn(cfg, 1, "pa"), keyIn(cfg, 2, "pb")
	g[1].apply(putEvent(a, "1"))
	time.Sleep(200 * time.Millisecond) // group 1's event reaches the router first
	g[2].apply(putEvent(b, "1"))
	time.Sleep(200 * time.Millisecond) // and group 2's, then its heartbeats
	close(slow)
	first := next(t, ch)
	if first[2] != a {
		t.Fatalf("first event %v, want the put of %s", first, a)
	}
	if ev := next(t, ch); ev[2] != b {
		t.Fatalf("second event %v, want the put of %s", ev, b)
	}
	resumed := openWatch(t, ctx, srv.URL+"/key?watch=true&prefix=p", first[0])
	if ev := next(t, resumed); ev[2] != b {
		t.Fatalf("resumed from %s: first event %v, want the put of %s", first[0], ev, b)
	}
}

// TestRouterWatchBucketBackAndForth: a bucket moves from group 1 to 2 and
// straight back while group 2's stream is late. Group 1's events after it
// took the bucket back wait for group 2's bucket_out of the second move,
// not only for group 1's own bucket_out of the first: the old owner of a
// move is read from the config before it, not from the order the
// markers came in.
func TestRouterWatchBucketBackAndForth(t *testing.T) {
	srv, hist, g := dataRouter(t)
	cfg := hist.Latest()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ch := watchPrefixP(t, ctx, srv, g, 1, 2)
	a := keyIn(cfg, 1, "pa")
	g[1].apply(putEvent(a, "1"))
	first := next(t, ch)
	if first[2] != a || first[3] != "1" {
		t.Fatalf("first event %v", first)
	}
	bucket := shardmap.BucketOf(a, 16)
	there := hist.move(t, bucket, 2)
	back := hist.move(t, bucket, 1)
	g[2].stall(true)
	g[1].apply(putEvent(a, "last-of-1"), markerEvent("bucket_out", bucket, there.Version))
	g[2].apply(markerEvent("bucket_in", bucket, there.Version))
	g[2].apply(putEvent(a, "from-2"))
	g[2].apply(markerEvent("bucket_out", bucket, back.Version))
	g[1].apply(markerEvent("bucket_in", bucket, back.Version))
	g[1].apply(putEvent(a, "back-in-1"))
	time.Sleep(300 * time.Millisecond) // group 1's events reach the router first
	g[2].stall(false)
	for _, want := range []string{"last-of-1", "from-2", "back-in-1"} {
		if ev := next(t, ch); ev[2] != a || ev[3] != want {
			t.Fatalf("after two moves: %v, want the put of %s = %s (order last-of-1, from-2, back-in-1)", ev, a, want)
		}
	}

	// Resumed from before the moves, group 2's stream late again: the
	// same order.
	g[2].stall(true)
	ch2 := openWatch(t, ctx, srv.URL+"/key?watch=true&prefix=p", first[0])
	time.Sleep(300 * time.Millisecond)
	g[2].stall(false)
	for _, want := range []string{"last-of-1", "from-2", "back-in-1"} {
		if ev := next(t, ch2); ev[2] != a || ev[3] != want {
			t.Fatalf("resumed from %s: %v, want the put of %s = %s (order last-of-1, from-2, back-in-1)", first[0], ev, a, want)
		}
	}
}

// TestRouterWatchHoldEndsAtLaterMarker: a watch resumed after the old
// owner's bucket_out holds the new owner's stream at its bucket_in; a
// marker of a later config from the old owner ends the hold (its stream
// is past that bucket_out), without waiting for its heartbeats, which
// here never come. Bucket b moves 1 -> 2 at v, then c 2 -> 1 at v+1.
func TestRouterWatchHoldEndsAtLaterMarker(t *testing.T) {
	srv, hist, g := dataRouter(t)
	cfg := hist.Latest()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	a, c := keyIn(cfg, 1, "pa"), keyIn(cfg, 2, "pc")
	b, bc := shardmap.BucketOf(a, 16), shardmap.BucketOf(c, 16)
	there := hist.move(t, b, 2)
	back := hist.move(t, bc, 1)
	g[1].apply(putEvent(a, "last-of-1"))
	out := g[1].apply(markerEvent("bucket_out", b, there.Version))
	g[2].mu.Lock()
	before2 := g[2].n
	g[2].mu.Unlock()
	g[2].apply(markerEvent("bucket_in", b, there.Version))
	g[2].apply(putEvent(a, "from-2"))
	g[1].mu.Lock()
	g[1].quiet = true
	g[1].mu.Unlock()
	cursor := fmt.Sprintf("1=%d,2=%d", out, max(before2, 1))
	if before2 == 0 {
		cursor = fmt.Sprintf("1=%d", out) // group 2 from its first index
	}
	ch := openWatch(t, ctx, srv.URL+"/key?watch=true&prefix=p", cursor)
	time.Sleep(300 * time.Millisecond) // group 2 is held: group 1 sends no heartbeat
	g[2].apply(markerEvent("bucket_out", bc, back.Version))
	g[1].apply(markerEvent("bucket_in", bc, back.Version))
	g[1].apply(putEvent(c, "to-1"))
	got := map[string]bool{}
	for range 2 {
		ev := next(t, ch)
		if ev[1] != "put" {
			t.Fatalf("resumed from %s: %v", cursor, ev)
		}
		got[ev[2]+"="+ev[3]] = true
	}
	if !got[a+"=from-2"] || !got[c+"=to-1"] {
		t.Fatalf("resumed from %s: got %v, want group 2's put of %s and group 1's of %s", cursor, got, a, c)
	}
}

// TestRouterWatchHeldGroupLeavesAndStops: a group held behind a bucket
// move leaves and is stopped before the old owner's stream lets it go.
// Its group_left waits in the hold with the rest of its events, and so
// does the end of its stream: once the hold ends the events come, the
// group is done with, and the watch goes on without an error.
func TestRouterWatchHeldGroupLeavesAndStops(t *testing.T) {
	srv, hist, g := dataRouter(t)
	cfg := hist.Latest()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	a := keyIn(cfg, 1, "pa")
	ch := watchPrefixP(t, ctx, srv, g, 1, 2)
	bucket := shardmap.BucketOf(a, 16)
	moved := hist.move(t, bucket, 2)
	g[1].stall(true)
	g[1].apply(putEvent(a, "last-of-1"), markerEvent("bucket_out", bucket, moved.Version))
	g[2].apply(markerEvent("bucket_in", bucket, moved.Version))
	g[2].apply(putEvent(a, "from-2"))
	left := hist.leave(t, 2)
	g[2].apply(append(bucketOuts(moved, 2, left.Version),
		sseEvent{name: "group_left", data: fmt.Sprintf(`{"type":"group_left","version":%d}`, left.Version)})...)
	time.Sleep(300 * time.Millisecond) // the router has group 2's events, held
	g[2].stop()
	time.Sleep(2500 * time.Millisecond) // its stream ends for good (the router's RequestTimeout is 2s)
	g[1].stall(false)
	for _, want := range []string{"last-of-1", "from-2"} {
		if ev := next(t, ch); ev[1] != "put" || ev[2] != a || ev[3] != want {
			t.Fatalf("after group 2 left and stopped: %v, want the put of %s = %s", ev, a, want)
		}
	}
	g[1].apply(putEvent(a, "after"))
	if ev := next(t, ch); ev[1] != "put" || ev[3] != "after" || strings.Contains(ev[0], "2=") {
		t.Fatalf("after group 2 was done with: %v, want group 1's put with a cursor of group 1 alone", ev)
	}
}

// TestRouterWatchResumeUnnamedGroup: a cursor that does not name a group
// (it joined since, or the stream had not delivered its events yet)
// resumes that group from its first index, not from now: its events are
// not skipped.
func TestRouterWatchResumeUnnamedGroup(t *testing.T) {
	srv, hist, g := dataRouter(t)
	cfg := hist.Latest()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	a, b := keyIn(cfg, 1, "pa"), keyIn(cfg, 2, "pb")
	ch := watchPrefixP(t, ctx, srv, g, 1, 2)
	g[1].apply(putEvent(a, "1"))
	ev := next(t, ch)
	if ev[2] != a {
		t.Fatalf("first event %v", ev)
	}
	var only1 string // the cursor's part of group 1
	for part := range strings.SplitSeq(ev[0], ",") {
		if strings.HasPrefix(part, "1=") {
			only1 = part
		}
	}
	g[2].apply(putEvent(b, "unseen"))
	ch2 := openWatch(t, ctx, srv.URL+"/key?watch=true&prefix=p", only1)
	if ev := next(t, ch2); ev[2] != b || ev[3] != "unseen" {
		t.Fatalf("resumed from %q: first event %v, want group 2's put of %s", only1, ev, b)
	}
}

// TestRouterKVJSONCarriesTTL: a key listed through the router shows its
// TTL, in seconds, as a member's listing does.
func TestRouterKVJSONCarriesTTL(t *testing.T) {
	for _, tc := range []struct {
		kv   client.KeyValue
		want string
	}{
		{client.KeyValue{Key: "a", Value: []byte("v"), CreateIndex: 3, ModIndex: 5, TTL: 90 * time.Second},
			`{"key":"a","value":"v","create_index":3,"mod_index":5,"ttl":90}`},
		{client.KeyValue{Key: "b", Value: []byte("v"), CreateIndex: 3, ModIndex: 3},
			`{"key":"b","value":"v","create_index":3,"mod_index":3}`},
	} {
		b, err := json.Marshal(kvOf(tc.kv, true))
		if err != nil || string(b) != tc.want {
			t.Errorf("kvOf(%+v) = %s, %v; want %s", tc.kv, b, err, tc.want)
		}
	}
}

// TestRouterWatchGroupLeft: a group's group_left marker ends its part of
// a merged watch: the cursor names it no more, and stopping the group
// then ends nothing. A cursor that still names a group that left (its
// stream had not reached the marker) is answered 410; one that names a
// group still in the config with no bucket left resumes it, so its last
// events are not skipped.
func TestRouterWatchGroupLeft(t *testing.T) {
	srv, hist, g := dataRouter(t)
	cfg := hist.Latest()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	a, b := keyIn(cfg, 1, "pa"), keyIn(cfg, 2, "pb")
	ch := watchPrefixP(t, ctx, srv, g, 1, 2)
	g[1].apply(putEvent(a, "1"))
	early := next(t, ch)[0] // names group 1 before it left
	if !strings.Contains(early, "1=") {
		t.Fatalf("cursor %q does not name group 1", early)
	}

	// Group 1's buckets move away; first without a leave: a cursor that
	// names it resumes it although it serves no bucket.
	moved := cfg
	for _, bk := range cfg.BucketsOf(1) {
		var err error
		if moved, err = moved.Move(bk, 2); err != nil {
			t.Fatal(err)
		}
		if err := hist.Append(moved); err != nil {
			t.Fatal(err)
		}
	}
	g[1].apply(append([]sseEvent{putEvent(a, "last-of-1")}, bucketOuts(cfg, 1, moved.Version)...)...)
	if ev := next(t, ch); ev[2] != a || ev[3] != "last-of-1" {
		t.Fatalf("after the moves: %v, want group 1's last put of %s", ev, a)
	}
	ch2 := openWatch(t, ctx, srv.URL+"/key?watch=true&prefix=p", early)
	if ev := next(t, ch2); ev[2] != a || ev[3] != "last-of-1" {
		t.Fatalf("resumed from %q with group 1 serving nothing: %v, want its last put of %s", early, ev, a)
	}

	// Then it leaves: its group_left ends its part of the stream.
	left := hist.leave(t, 1)
	g[1].apply(sseEvent{name: "group_left", data: fmt.Sprintf(`{"type":"group_left","version":%d}`, left.Version)})
	// Once the router has handled the marker, group 2's events carry a
	// cursor of group 2 alone.
	probeUntilGroup1Dropped(t, ch, g[2], b, "probe-", false)
	// The cursor from before the leave, resumed while group 1's member
	// still runs (no config lists the group any more): the rest of its
	// events come from that member, and once its group_left has come
	// the cursor names group 2 alone.
	ch4 := openWatch(t, ctx, srv.URL+"/key?watch=true&prefix=p", early)
	for {
		ev := next(t, ch4)
		if ev[1] == "error" {
			t.Fatalf("resumed from %q after group 1 left, while it runs: %v", early, ev)
		}
		if ev[2] == a && ev[3] == "last-of-1" {
			break
		}
	}
	probeUntilGroup1Dropped(t, ch4, g[2], b, "resumed-probe-", true)

	g[1].stop()
	g[2].apply(putEvent(b, "after"))
	ev := next(t, ch)
	for ev[3] != "after" && strings.HasPrefix(ev[3], "resumed-probe-") {
		ev = next(t, ch) // the probes of the resumed watch above
	}
	if ev[1] != "put" || ev[2] != b || ev[3] != "after" || strings.Contains(ev[0], "1=") {
		t.Fatalf("after group 1 left and stopped: %v, want group 2's put of %s, with a cursor of group 2 alone", ev, b)
	}
	ch3 := openWatch(t, ctx, srv.URL+"/key?watch=true&prefix=p", ev[0])
	g[2].apply(putEvent(b, "resumed"))
	if ev := next(t, ch3); ev[2] != b || ev[3] != "resumed" {
		t.Fatalf("resumed from %q: %v", ev[0], ev)
	}

	// The cursor from before the leave: group 1's events after it are
	// gone with it.
	if st, body := refusedWatch(t, ctx, srv.URL+"/key?watch=true&prefix=p", early); st != http.StatusGone ||
		!strings.Contains(body, `"code":"compacted"`) || !strings.Contains(body, "group 1") {
		t.Fatalf("resume naming a group that left: %d %s", st, body)
	}
}

// probeUntilGroup1Dropped puts probes (values prefix0, prefix1, ...) of
// key b in member m until ch delivers one whose cursor no longer names
// group 1, each probe's event next; replayed lets earlier puts of b come
// before it (a resumed stream delivers those again).
func probeUntilGroup1Dropped(t *testing.T, ch chan [4]string, m *dmember, b, prefix string, replayed bool) {
	t.Helper()
	for i := 0; ; i++ {
		v := prefix + strconv.Itoa(i)
		m.apply(putEvent(b, v))
		ev := next(t, ch)
		for replayed && ev[1] != "error" && ev[2] == b && ev[3] != v {
			ev = next(t, ch)
		}
		if ev[2] != b || ev[3] != v {
			t.Fatalf("after group 1's group_left: %v, want group 2's put of %s=%s", ev, b, v)
		}
		if !strings.Contains(ev[0], "1=") {
			return
		}
		if i == 200 {
			t.Fatalf("cursor %q still names group 1 after its group_left", ev[0])
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// refusedWatch opens a watch expected to be refused, resumed after
// lastID, and returns the answer's status and JSON body.
func refusedWatch(t *testing.T, ctx context.Context, url, lastID string) (int, string) {
	t.Helper()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	req.Header.Set("Last-Event-ID", lastID)
	req.Header.Set("Accept", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

// TestRouterWatchGroupStoppedEarly: a group that left and stopped before
// its stream reached group_left ends a watch through the router with
// ErrCompacted (its remaining events cannot be served), not with a
// silent resumption without it.
func TestRouterWatchGroupStoppedEarly(t *testing.T) {
	srv, hist, g := dataRouter(t)
	cfg := hist.Latest()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := client.New(client.Config{Endpoints: []string{srv.URL}, RequestTimeout: 5 * time.Second,
		Backoff: time.Millisecond, MaxBackoff: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	opened := streamCounts(g)
	events, err := c.Watch(ctx, client.WatchOptions{Prefix: "p"})
	if err != nil {
		t.Fatal(err)
	}
	waitStreams(t, g, opened, 1, 2)
	a := keyIn(cfg, 1, "pa")
	g[1].apply(putEvent(a, "1"))
	if ev := <-events; ev.Err != nil || ev.KV.Key != a {
		t.Fatalf("first event %+v", ev)
	}
	left := hist.leave(t, 1)
	// Group 1 applies the config, but stops before its stream sends
	// the last put and the markers.
	g[1].stall(true)
	g[1].apply(append([]sseEvent{putEvent(a, "lost")}, bucketOuts(cfg, 1, left.Version)...)...)
	g[1].stop()
	for ev := range events {
		if ev.Err != nil {
			if !errors.Is(ev.Err, client.ErrCompacted) || !strings.Contains(ev.Err.Error(), "group 1") {
				t.Fatalf("watch ended with %v, want ErrCompacted naming group 1", ev.Err)
			}
			return
		}
		if string(ev.KV.Value) == "lost" {
			t.Fatalf("got the put group 1's stream never sent: %+v", ev)
		}
	}
	t.Fatal("the watch ended with no error")
}

// TestRouterWatchStaleConfigGroupGone: a new watch through a router
// whose cached config still lists a group that has since left and
// stopped goes on with the groups that remain.
func TestRouterWatchStaleConfigGroupGone(t *testing.T) {
	srv, hist, g := dataRouter(t)
	cfg := hist.Latest()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	b := keyIn(cfg, 2, "pb")
	if r, body := request(t, http.MethodGet, srv.URL+"/"+b, "", nil); r.StatusCode != http.StatusNotFound {
		t.Fatalf("GET %s: %d %s", b, r.StatusCode, body) // the router caches config 1
	}
	hist.leave(t, 1)
	g[1].stop()
	ch := watchPrefixP(t, ctx, srv, g, 2)
	g[2].apply(putEvent(b, "after"))
	if ev := next(t, ch); ev[2] != b || ev[3] != "after" || strings.Contains(ev[0], "1=") {
		t.Fatalf("watch after group 1 left: %v, want group 2's put of %s with a cursor of group 2 only", ev, b)
	}
}

// TestRouterWatchResumeRejoinedGroup: a merged watch's cursor names each
// group with the config version its stream follows. Resumed after that
// group left and a new group took its id (a new log, whose indexes say
// nothing of the old one's), it is answered 410; it used to resume the
// new group at the old group's index. So is a listing's cursor. A cursor
// whose groups stayed through later configs resumes, and one without
// versions (a listing's indexes, as they were written before) is not
// checked.
func TestRouterWatchResumeRejoinedGroup(t *testing.T) {
	srv, hist, g := dataRouter(t)
	cfg := hist.Latest()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	a := keyIn(cfg, 1, "pa")
	url := srv.URL + "/key?watch=true&prefix=p"
	opened := streamCounts(g)
	ch := openWatch(t, ctx, url, "")
	waitStreams(t, g, opened, 1, 2)
	i := g[1].apply(putEvent(a, "1"))
	early := next(t, ch)[0]
	if want := fmt.Sprintf("1=%d.0@%d", i, cfg.Version); !slices.Contains(strings.Split(early, ","), want) {
		t.Fatalf("cursor %q, want group 1 as %q", early, want)
	}

	// A listing's cursor starts a watch right after it.
	resp, body := request(t, http.MethodGet, srv.URL+"/key?prefix=p", "", nil)
	var listing struct {
		Cursor string `json:"cursor"`
	}
	if resp.StatusCode != 200 || json.Unmarshal([]byte(body), &listing) != nil || !strings.Contains(listing.Cursor, fmt.Sprintf("1=%d@%d", i, cfg.Version)) {
		t.Fatalf("listing: %d %s; want a cursor naming group 1 at %d@%d", resp.StatusCode, body, i, cfg.Version)
	}

	// Group 1 gains a bucket: the same group, so the cursors resume.
	hist.move(t, cfg.BucketsOf(2)[0], 1)
	ch2 := openWatch(t, ctx, url, early)
	ch3 := openWatch(t, ctx, url, listing.Cursor)
	g[1].apply(putEvent(a, "2"))
	if ev := next(t, ch2); ev[2] != a || ev[3] != "2" {
		t.Fatalf("resumed from %q after a move: %v, want group 1's put of %s", early, ev, a)
	}
	if ev := next(t, ch3); ev[2] != a || ev[3] != "2" {
		t.Fatalf("started from the listing's cursor %q: %v, want group 1's put of %s", listing.Cursor, ev, a)
	}

	// Group 1 leaves and a new group 1 joins at another member.
	left := hist.leave(t, 1)
	fresh := newDMember(t)
	joined, err := hist.Latest().Join(map[uint64][]string{1: {fresh.srv.URL}})
	if err != nil {
		t.Fatal(err)
	}
	if err := hist.Append(joined); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{early, listing.Cursor} {
		st, body := refusedWatch(t, ctx, url, id)
		if st != http.StatusGone || !strings.Contains(body, `"code":"compacted"`) ||
			!strings.Contains(body, fmt.Sprintf("left the deployment (config %d)", left.Version)) ||
			!strings.Contains(body, fmt.Sprintf("group 1 joined again in config %d", joined.Version)) {
			t.Fatalf("resumed from %q after group 1 left and joined again: %d %s; want 410 compacted naming configs %d and %d",
				id, st, body, left.Version, joined.Version)
		}
	}

	// The same positions without versions are not checked.
	var plain []string
	for part := range strings.SplitSeq(early, ",") {
		p, _, _ := strings.Cut(part, "@")
		plain = append(plain, p)
	}
	openWatch(t, ctx, url, strings.Join(plain, ","))
}
