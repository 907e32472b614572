package httpapi

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"
)

// sseMessage is one message of a stream: an event (id, event, data) or a
// comment.
type sseMessage struct {
	id, event, data, comment string
}

// sseStream reads a watch's stream.
type sseStream struct {
	resp *http.Response
	r    *bufio.Reader
}

// openWatch sends a watch to the server at addr and returns its answer;
// the stream, when the answer is 200.
func openWatch(t *testing.T, ctx context.Context, addr, target string, headers ...string) (*http.Response, *sseStream) {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, "GET", "http://"+addr+target, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range headers {
		name, value, _ := strings.Cut(h, ":")
		req.Header.Add(name, strings.TrimSpace(value))
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", target, err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	if resp.StatusCode != 200 {
		return resp, nil
	}
	return resp, &sseStream{resp: resp, r: bufio.NewReader(resp.Body)}
}

// next returns the next message; io.EOF when the stream ended.
func (s *sseStream) next() (sseMessage, error) {
	var m sseMessage
	seen := false
	for {
		line, err := s.r.ReadString('\n')
		if err != nil {
			return m, err
		}
		line = strings.TrimSuffix(line, "\n")
		if line == "" {
			if seen {
				return m, nil
			}
			continue
		}
		seen = true
		if c, ok := strings.CutPrefix(line, ":"); ok {
			m.comment = strings.TrimSpace(c)
			continue
		}
		name, value, _ := strings.Cut(line, ": ")
		switch name {
		case "id":
			m.id = value
		case "event":
			m.event = value
		case "data":
			m.data = value
		}
	}
}

// nextEvent skips comments and returns the next event.
func (s *sseStream) nextEvent(t *testing.T) sseMessage {
	t.Helper()
	for {
		m, err := s.next()
		if err != nil {
			t.Fatalf("reading the stream: %v", err)
		}
		if m.event != "" {
			return m
		}
	}
}

// put writes key through the store, as a client's write would.
func (e *testEnv) put(t *testing.T, key, value string) uint64 {
	t.Helper()
	w, err := e.store.Put(context.Background(), key, []byte(value))
	if err != nil {
		t.Fatal(err)
	}
	return w.Index
}

// eventData is an event's data, as a client reads it.
type eventData struct {
	Type        string  `json:"type"`
	Key         string  `json:"key"`
	KeyBase64   string  `json:"key_base64"`
	Value       *string `json:"value"`
	ValueBase64 *string `json:"value_base64"`
	CreateIndex uint64  `json:"create_index"`
	ModIndex    uint64  `json:"mod_index"`
	Bucket      *int    `json:"bucket"`
	Version     uint64  `json:"version"`
	Code        string  `json:"code"`
	Error       string  `json:"error"`
	OldestIndex uint64  `json:"oldest_index"`
}

func decodeData(t *testing.T, m sseMessage) eventData {
	t.Helper()
	var d eventData
	if err := json.Unmarshal([]byte(m.data), &d); err != nil {
		t.Fatalf("event data %q: %v", m.data, err)
	}
	return d
}

// TestWatch: a prefix watch from now streams the puts and deletes of its
// keys in order, with ids index.pos, and only those; a key watch only
// its key; from_index replays the past.
func TestWatch(t *testing.T) {
	e := newEnv(t, nil, nil)
	_, addr := serveFast(t, e.h)
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	resp, s := openWatch(t, ctx, addr, "/key?watch=true&prefix=p/")
	if s == nil || resp.Header.Get("Content-Type") != "text/event-stream" || resp.Header.Get("X-Raft-Index") != "10" {
		t.Fatalf("watch: %d %v", resp.StatusCode, resp.Header)
	}
	if m, err := s.next(); err != nil || m.comment != "progress 10" {
		t.Fatalf("first message %+v, %v; want the heartbeat progress 10", m, err)
	}
	_, ks := openWatch(t, ctx, addr, "/key/p/a?watch=1")
	_, rs := openWatch(t, ctx, addr, "/p/a?watch=true")
	e.put(t, "p/a", "1")                                                                    // 11
	e.put(t, "q/a", "no")                                                                   // 12
	e.store.PutAll(context.Background(), map[string][]byte{"p/b": []byte("2"), "p/c": nil}) // 13.0, 13.1
	e.store.Delete(context.Background(), "p/a")                                             // 14
	want := []struct{ id, event, key string }{{"11.0", "put", "p/a"}, {"13.0", "put", "p/b"}, {"13.1", "put", "p/c"}, {"14.0", "delete", "p/a"}}
	for _, w := range want {
		m := s.nextEvent(t)
		d := decodeData(t, m)
		if m.id != w.id || m.event != w.event || d.Type != w.event || d.Key != w.key {
			t.Errorf("event %+v %+v, want %+v", m, d, w)
		}
		if w.event == "delete" && (d.Value != nil || d.CreateIndex != 11) {
			t.Errorf("delete event %+v: want no value and create index 11", d)
		}
	}
	for _, ws := range []*sseStream{ks, rs} {
		if m := ws.nextEvent(t); m.id != "11.0" {
			t.Errorf("key watch: first event %+v", m)
		}
		if m := ws.nextEvent(t); m.id != "14.0" || m.event != "delete" {
			t.Errorf("key watch: second event %+v", m)
		}
	}
	// from_index replays from that index on.
	_, fs := openWatch(t, ctx, addr, "/key?watch=true&prefix=p/&from_index=13")
	if m := fs.nextEvent(t); m.id != "13.0" {
		t.Errorf("from_index=13: first event %s", m.id)
	}
}

// TestWatchResume: Last-Event-ID resumes after that event, in the middle
// of an index too, and wins over from_index.
func TestWatchResume(t *testing.T) {
	e := newEnv(t, nil, nil)
	_, addr := serveFast(t, e.h)
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	e.put(t, "a", "1")                                                                                            // 11
	e.store.PutAll(context.Background(), map[string][]byte{"b": []byte("2"), "c": []byte("3"), "d": []byte("4")}) // 12.0-12.2
	e.put(t, "e", "5")                                                                                            // 13
	for _, tc := range []struct {
		lastID string
		want   []string
	}{
		{"11.0", []string{"12.0", "12.1", "12.2", "13.0"}},
		{"12.0", []string{"12.1", "12.2", "13.0"}},
		{"12.2", []string{"13.0"}},
		{"12", []string{"13.0"}},
		{"10", []string{"11.0", "12.0"}},
	} {
		_, s := openWatch(t, ctx, addr, "/key?watch=true&from_index=11", "Last-Event-ID: "+tc.lastID)
		for _, w := range tc.want {
			if m := s.nextEvent(t); m.id != w {
				t.Errorf("Last-Event-ID %s: event %s, want %s", tc.lastID, m.id, w)
			}
		}
		s.resp.Body.Close()
	}
}

// TestWatchMarkerHeartbeat: a stream with markers (a router's) gets a
// heartbeat every second at most, whatever WatchProgressInterval says.
func TestWatchMarkerHeartbeat(t *testing.T) {
	if got := progressInterval(time.Minute, true); got != time.Second {
		t.Errorf("markers, 1m: %v, want 1s", got)
	}
	if got := progressInterval(10*time.Millisecond, true); got != 10*time.Millisecond {
		t.Errorf("markers, 10ms: %v", got)
	}
	if got := progressInterval(time.Minute, false); got != time.Minute {
		t.Errorf("no markers, 1m: %v", got)
	}
	e := newEnv(t, nil, func(c *Config) { c.WatchProgressInterval = time.Minute })
	_, addr := serveFast(t, e.h)
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	_, s := openWatch(t, ctx, addr, "/key?watch=true&markers=true")
	beats := 0
	for beats < 2 { // the first, at once, and one a second later
		m, err := s.next()
		if err != nil {
			t.Fatal(err)
		}
		if strings.HasPrefix(m.comment, "progress ") {
			beats++
		}
	}
}

// TestWatchHeartbeat: an idle watch gets ": progress <index>" every
// WatchProgressInterval, with the index the store caught up to, after
// the events up to it; the request deadline does not end it.
func TestWatchHeartbeat(t *testing.T) {
	e := newEnv(t, nil, func(c *Config) {
		c.WatchProgressInterval = 10 * time.Millisecond
		c.RequestTimeout = 20 * time.Millisecond
	})
	_, addr := serveFast(t, e.h)
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	_, s := openWatch(t, ctx, addr, "/key?watch=true&prefix=p")
	e.put(t, "x", "1") // 11, not watched
	e.put(t, "p", "2") // 12
	sawEvent := false
	for deadline := time.Now().Add(waitLimit); time.Now().Before(deadline); {
		m, err := s.next()
		if err != nil {
			t.Fatal(err)
		}
		if m.event == "put" {
			sawEvent = true
		}
		if m.comment == "progress 12" {
			if !sawEvent {
				t.Fatal("heartbeat of index 12 before the event of index 12")
			}
			break
		}
	}
	// Far past the request deadline, the watch still streams.
	time.Sleep(100 * time.Millisecond)
	e.put(t, "p", "3")
	if m := s.nextEvent(t); m.id != "13.0" {
		t.Errorf("event after the request deadline: %+v", m)
	}
}

// TestWatchErrors: bad parameters are 400s, a from_index older than the
// store keeps is 410 with oldest_index, and a watcher that ends streams
// an error event that says why.
func TestWatchErrors(t *testing.T) {
	e := newEnv(t, nil, nil)
	_, addr := serveFast(t, e.h)
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	for _, tc := range []struct {
		target  string
		headers []string
		status  int
	}{
		{"/key/a?watch=true&prefix=p", nil, 400},
		{"/key?watch=true&start=a", nil, 400},
		{"/key?watch=true&limit=3", nil, 400},
		{"/key?watch=true&from_index=x", nil, 400},
		{"/key?watch=true&from_index=1&from_index=2", nil, 400},
		{"/key?watch=true&markers=maybe", nil, 400},
		{"/key?watch=true", []string{"Last-Event-ID: x"}, 400},
		{"/key?watch=true", []string{"Last-Event-ID: 0.1"}, 400},
		{"/key?watch=true", []string{"Last-Event-ID: 12.-1"}, 400},
		{"/key?watch=true", []string{"Last-Event-ID: 12.4294967296"}, 400},
		{"/key?watch=true", []string{"Last-Event-ID: 12", "Last-Event-ID: 13"}, 400},
		{"/key?watch=maybe", nil, 400},
		{"/k?watch=maybe", nil, 400},
		{"/wg-a?watch=true", []string{"X-Raftkv-Route: client"}, 421},
		{"/key?watch=true&from_index=5", []string{"Accept: application/json"}, 410},
	} {
		resp, _ := openWatch(t, ctx, addr, tc.target, tc.headers...)
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != tc.status {
			t.Errorf("GET %s %v: %d %s, want %d", tc.target, tc.headers, resp.StatusCode, body, tc.status)
		}
		if tc.status == 410 {
			var b errorJSON
			if err := json.Unmarshal(body, &b); err != nil || b.Code != "compacted" || b.OldestIndex != 11 {
				t.Errorf("410 body %s: want code compacted and oldest_index 11", body)
			}
		}
	}
	// HEAD is no watch.
	if rec := e.do(t, "HEAD", "/k?watch=true", ""); rec.Code != 400 {
		t.Errorf("HEAD ?watch=true: %d, want 400", rec.Code)
	}
	// A watcher that ends says why, then the stream ends.
	_, s := openWatch(t, ctx, addr, "/key?watch=true")
	e.put(t, "a", "1")
	if m := s.nextEvent(t); m.event != "put" {
		t.Fatalf("event %+v", m)
	}
	e.store.endWatches(ErrWatcherTooSlow)
	m := s.nextEvent(t)
	if d := decodeData(t, m); m.event != "error" || d.Code != "too_slow" || d.Error == "" {
		t.Errorf("last event %+v, want an error event of code too_slow", m)
	}
	if _, err := s.next(); err != io.EOF {
		t.Errorf("after the error event: %v, want the end of the stream", err)
	}
	e2 := newEnv(t, nil, nil)
	_, addr2 := serveFast(t, e2.h)
	_, s = openWatch(t, ctx, addr2, "/key?watch=true")
	e2.store.endWatches(&CompactedError{Oldest: 77})
	if d := decodeData(t, s.nextEvent(t)); d.Code != "compacted" || d.OldestIndex != 77 {
		t.Errorf("compacted mid-stream: %+v", d)
	}
}

// TestWatchLimits: watches are counted apart from MaxInFlight, up to
// MaxWatchers (503 too_many_watchers beyond), and Shutdown ends them.
func TestWatchLimits(t *testing.T) {
	e := newEnv(t, map[string]string{"k": "v"}, func(c *Config) { c.MaxWatchers, c.MaxInFlight = 2, 1 })
	srv, addr := serveFast(t, e.h)
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	_, s1 := openWatch(t, ctx, addr, "/key?watch=true")
	_, s2 := openWatch(t, ctx, addr, "/k?watch=true")
	if s1 == nil || s2 == nil {
		t.Fatal("two watches refused")
	}
	resp, _ := openWatch(t, ctx, addr, "/key/k?watch=true", "Accept: application/json")
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 503 || resp.Header.Get("Retry-After") != "1" || !strings.Contains(string(body), `"code":"too_many_watchers"`) {
		t.Errorf("third watch: %d %s", resp.StatusCode, body)
	}
	// Two watches open and MaxInFlight 1: requests are still served.
	for range 3 {
		r, err := http.Get("http://" + addr + "/key/k")
		if err != nil {
			t.Fatal(err)
		}
		r.Body.Close()
		if r.StatusCode != 200 {
			t.Fatalf("GET with watches open: %d", r.StatusCode)
		}
	}
	done := make(chan error, 1)
	go func() {
		sctx, scancel := context.WithTimeout(context.Background(), waitLimit)
		defer scancel()
		done <- srv.Shutdown(sctx)
	}()
	for _, s := range []*sseStream{s1, s2} {
		for {
			if _, err := s.next(); err != nil {
				break // the stream ended
			}
		}
	}
	if err := <-done; err != nil {
		t.Errorf("Shutdown with watches open: %v", err)
	}
}

// TestWatchMarkers: a shard member's markers (bucket_out, bucket_in,
// group_left) go to routing clients (and with markers=true), never to
// others; group_left names no bucket.
func TestWatchMarkers(t *testing.T) {
	e := newEnv(t, nil, nil)
	_, addr := serveFast(t, e.h)
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	_, plain := openWatch(t, ctx, addr, "/key?watch=true")
	_, routed := openWatch(t, ctx, addr, "/key?watch=true", "X-Raftkv-Route: client")
	_, asked := openWatch(t, ctx, addr, "/key?watch=true&markers=true")
	e.store.marker(EventBucketOut, 3, 8)  // 11.0
	e.put(t, "a", "1")                    // 12.0
	e.store.marker(EventGroupLeft, -1, 9) // 13.0
	e.put(t, "b", "1")                    // 14.0
	if m := plain.nextEvent(t); m.id != "12.0" {
		t.Errorf("plain watcher got %+v first", m)
	}
	if m := plain.nextEvent(t); m.id != "14.0" {
		t.Errorf("plain watcher got %+v second", m)
	}
	for _, s := range []*sseStream{routed, asked} {
		m := s.nextEvent(t)
		d := decodeData(t, m)
		if m.id != "11.0" || m.event != "bucket_out" || d.Bucket == nil || *d.Bucket != 3 || d.Version != 8 || d.ModIndex != 11 {
			t.Errorf("marker %+v %+v", m, d)
		}
		if m := s.nextEvent(t); m.id != "12.0" {
			t.Errorf("after the marker: %+v", m)
		}
		m = s.nextEvent(t)
		d = decodeData(t, m)
		if m.id != "13.0" || m.event != "group_left" || d.Bucket != nil || d.Version != 9 || d.ModIndex != 13 || !strings.Contains(m.data, `"type":"group_left"`) {
			t.Errorf("group_left marker %+v %+v", m, d)
		}
		if m := s.nextEvent(t); m.id != "14.0" {
			t.Errorf("after group_left: %+v", m)
		}
	}
}

// TestWatchGroupHeader: a shard member names its group in
// X-Raftkv-Group on a stream with markers, and only there; other members
// name none.
func TestWatchGroupHeader(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	for _, tc := range []struct {
		group   uint64
		target  string
		headers []string
		want    string
	}{
		{7, "/key?watch=true&markers=true", nil, "7"},
		{7, "/key?watch=true", []string{"X-Raftkv-Route: client"}, "7"},
		{7, "/key?watch=true", nil, ""},
		{0, "/key?watch=true&markers=true", nil, ""},
	} {
		e := newEnv(t, nil, func(c *Config) { c.Group = tc.group })
		_, addr := serveFast(t, e.h)
		resp, s := openWatch(t, ctx, addr, tc.target, tc.headers...)
		if s == nil {
			t.Fatalf("group %d, %s %q: status %d", tc.group, tc.target, tc.headers, resp.StatusCode)
		}
		if got := resp.Header.Values(HeaderGroup); strings.Join(got, ",") != tc.want {
			t.Errorf("group %d, %s %q: %s %q, want %q", tc.group, tc.target, tc.headers, HeaderGroup, got, tc.want)
		}
		resp.Body.Close()
	}
}

// marker appends a bucket marker at the next index.
func (s *fakeStore) marker(t EventType, bucket int, version uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.mu.index++
	s.mu.events = append(s.mu.events, Event{Type: t, ModIndex: s.mu.index, Bucket: bucket, Version: version})
	close(s.mu.changed)
	s.mu.changed = make(chan struct{})
}

func TestParseEventID(t *testing.T) {
	for _, tc := range []struct {
		id    string
		from  uint64
		after int64
		ok    bool
	}{
		{"5.0", 5, 0, true},
		{" 5.3 ", 5, 3, true},
		{"5", 6, -1, true},
		{"0", 1, -1, true},
		{"5.4294967295", 5, 4294967295, true},
		{"18446744073709551615", 0, 0, false},
		{"0.0", 0, 0, false},
		{"5.", 0, 0, false},
		{".5", 0, 0, false},
		{"+5.1", 0, 0, false},
		{"5.+1", 0, 0, false},
		{"5.1.2", 0, 0, false},
		{"", 0, 0, false},
		{"1:5.0", 0, 0, false},
	} {
		from, after, err := ParseEventID(tc.id)
		if (err == nil) != tc.ok || tc.ok && (from != tc.from || after != tc.after) {
			t.Errorf("ParseEventID(%q) = %d, %d, %v; want %d, %d, ok %v", tc.id, from, after, err, tc.from, tc.after, tc.ok)
		}
		if tc.ok && !strings.Contains(tc.id, ".") {
			continue
		}
		if tc.ok && EventID(from, uint32(after)) != strings.TrimSpace(tc.id) {
			t.Errorf("EventID(%d, %d) = %s, want %s", from, after, EventID(from, uint32(after)), tc.id)
		}
	}
}

// TestWatchEventVersion: a put's event says the key's version as its
// mod_index (what a GET answers as its ETag), which after a bucket move
// can be past the raft index; its id keeps the raft index, which orders
// the stream. A delete's mod_index is its raft index.
func TestWatchEventVersion(t *testing.T) {
	s := &sseWriter{}
	s.event(Event{Type: EventPut, Key: "k", Value: []byte("v"), CreateIndex: 100, ModIndex: 4, Pos: 1, KeyMod: 121})
	s.event(Event{Type: EventDelete, Key: "k", CreateIndex: 100, ModIndex: 5})
	st := &sseStream{r: bufio.NewReader(strings.NewReader(s.buf.String()))}
	for _, want := range []struct {
		id  string
		mod uint64
	}{{"4.1", 121}, {"5.0", 5}} {
		m := st.nextEvent(t)
		if d := decodeData(t, m); m.id != want.id || d.ModIndex != want.mod || d.CreateIndex != 100 {
			t.Errorf("event %+v %+v: want id %s, mod_index %d, create_index 100", m, d, want.id, want.mod)
		}
	}
}

// TestWatchHeartbeatSaysConfig: a stream with markers (a router's) of a
// shard member says, in a comment line before each heartbeat, the config
// the member had applied as of the heartbeat's index; other streams do
// not.
func TestWatchHeartbeatSaysConfig(t *testing.T) {
	e := newEnv(t, nil, func(c *Config) { c.WatchProgressInterval = 10 * time.Millisecond })
	_, addr := serveFast(t, e.h)
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	for _, markers := range []bool{true, false} {
		target := "/key?watch=true&prefix=p"
		if markers {
			target += "&markers=true"
		}
		_, s := openWatch(t, ctx, addr, target)
		var lines []string
		for len(lines) < 6 {
			line, err := s.r.ReadString('\n')
			if err != nil {
				t.Fatal(err)
			}
			lines = append(lines, strings.TrimSuffix(line, "\n"))
		}
		s.resp.Body.Close()
		want := []string{": progress 10", ""}
		if markers {
			want = []string{fmt.Sprintf(": config %d", fakeConfigVersion), ": progress 10", ""}
		}
		if got := lines[:len(want)]; !slices.Equal(got, want) {
			t.Errorf("markers %v: the stream begins %q, want %q", markers, got, want)
		}
		if !markers && slices.ContainsFunc(lines, func(l string) bool { return strings.HasPrefix(l, ": config") }) {
			t.Errorf("a stream without markers says its config: %q", lines)
		}
	}
}
