package router

// Table tests of the router over members and a config group that follow
// the sharding contract's sections "Config group HTTP API" (GET /config)
// and "Shard member HTTP API" (the key paths and their answers; these
// members serve every bucket the test's config gives them and are never
// misdirected, which the client package's tests cover).

import (
	"bufio"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/raftkv/raftkv/client"
	"github.com/raftkv/raftkv/shardmap"
	"go.uber.org/zap/zaptest"
)

// member is an in-test shard member: a key map, and the last request.
type member struct {
	srv *httptest.Server
	mu  sync.Mutex
	kv  map[string]string
	n   uint64
	// last is "<method> <uri> id=<X-Client-ID> seq=<X-Client-Seq>".
	last string
	// fail, if set, answers every request with this status and body;
	// handle, if set, answers every request instead. Both under mu: set
	// them with setFail and setHandler while the server runs.
	fail struct {
		status int
		ct     string
		body   string
	}
	handle http.HandlerFunc
}

// setFail makes m answer every request with status, content type ct and
// body.
func (m *member) setFail(status int, ct, body string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.fail.status, m.fail.ct, m.fail.body = status, ct, body
}

// setHandler makes h answer every request m gets (called with m.mu held).
func (m *member) setHandler(h http.HandlerFunc) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.handle = h
}

func newMember(t *testing.T) *member {
	m := &member{kv: map[string]string{}}
	m.srv = httptest.NewServer(http.HandlerFunc(m.serve))
	t.Cleanup(m.srv.Close)
	return m
}

func (m *member) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	m.mu.Lock()
	defer m.mu.Unlock()
	m.last = r.Method + " " + r.URL.RequestURI() + " id=" + r.Header.Get(client.HeaderClientID) + " seq=" + r.Header.Get(client.HeaderClientSeq)
	if m.handle != nil {
		m.handle(w, r)
		return
	}
	if m.fail.status != 0 {
		w.Header().Set("Content-Type", m.fail.ct)
		w.Header().Set("Retry-After", "1")
		w.WriteHeader(m.fail.status)
		io.WriteString(w, m.fail.body)
		return
	}
	key, asJSON := strings.TrimPrefix(r.URL.Path, "/"), false
	if k, ok := strings.CutPrefix(r.URL.Path, "/key/"); ok {
		key, asJSON = k, true
	}
	switch r.Method {
	case http.MethodGet:
		v, ok := m.kv[key]
		if !ok {
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
			w.WriteHeader(http.StatusNotFound)
			io.WriteString(w, "kvstore: key not found\n")
			return
		}
		if asJSON {
			b, _ := json.Marshal(map[string]string{key: v})
			w.Write(b)
			return
		}
		io.WriteString(w, v)
		return
	case http.MethodPut:
		m.kv[key] = string(body)
	case http.MethodDelete:
		delete(m.kv, key)
	case http.MethodPost:
		var kvs map[string]string
		json.Unmarshal(body, &kvs)
		for k, v := range kvs {
			m.kv[k] = v
		}
	}
	m.n++
	w.Header().Set(client.HeaderRaftIndex, strconv.FormatUint(m.n, 10))
	w.WriteHeader(http.StatusNoContent)
}

func (m *member) lastRequest() string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.last
}

// configServer answers GET /config with cfg.
func configServer(t *testing.T, cfg shardmap.Config) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/config" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(cfg)
	}))
	t.Cleanup(srv.Close)
	return srv
}

// shardedRouter starts two members as groups 1 and 2 of a 16-bucket config
// and a router over them.
func shardedRouter(t *testing.T) (*httptest.Server, shardmap.Config, map[uint64]*member) {
	g := map[uint64]*member{1: newMember(t), 2: newMember(t)}
	cfg, _ := shardmap.Initial(16)
	cfg, err := cfg.Join(map[uint64][]string{1: {g[1].srv.URL}, 2: {g[2].srv.URL}})
	if err != nil {
		t.Fatal(err)
	}
	c, err := client.New(client.Config{ConfigEndpoints: []string{configServer(t, cfg).URL}, ClientID: "router",
		RequestTimeout: 300 * time.Millisecond, Backoff: time.Millisecond, MaxBackoff: 10 * time.Millisecond, Logger: zaptest.NewLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	h, err := New(Config{Client: c, Logger: zaptest.NewLogger(t), MaxValueBytes: 1024, MaxKeyBytes: 64})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv, cfg, g
}

// keyIn returns a key of group gid.
func keyIn(cfg shardmap.Config, gid uint64, prefix string) string {
	for i := 0; ; i++ {
		if k := prefix + strconv.Itoa(i); cfg.OwnerOfKey(k) == gid {
			return k
		}
	}
}

func TestRouterTable(t *testing.T) {
	srv, cfg, g := shardedRouter(t)
	a, b := keyIn(cfg, 1, "a"), keyIn(cfg, 2, "b")
	g[1].kv[a] = "va"
	g[2].kv[b] = "vb"
	g[2].kv["status"] = "reserved"
	if cfg.OwnerOfKey("status") != 2 {
		g[1].kv["status"] = "reserved"
	}
	tag1 := func() string { // two keys of one bucket
		for i := 0; ; i++ {
			tag := "u" + strconv.Itoa(i)
			if cfg.OwnerOfKey(tag) == 1 {
				return tag
			}
		}
	}()
	for _, tc := range []struct {
		name       string
		method     string
		path       string
		header     map[string]string
		body       string
		wantStatus int
		wantBody   string // prefix of the body
		wantHeader map[string]string
		group      uint64 // the group that must have seen the request
		wantSeen   string // its last request
	}{
		{name: "get raw", method: "GET", path: "/" + a, wantStatus: 200, wantBody: "va", group: 1, wantSeen: "GET /" + a + " id= seq="},
		{name: "get raw other group", method: "GET", path: "/" + b, wantStatus: 200, wantBody: "vb", group: 2},
		{name: "get json", method: "GET", path: "/key/" + a, wantStatus: 200, wantBody: `{"` + a + `":"va"}`},
		{name: "get reserved name", method: "GET", path: "/key/status", wantStatus: 200, wantBody: `{"status":"reserved"}`},
		{name: "head", method: "HEAD", path: "/" + a, wantStatus: 200, wantHeader: map[string]string{"Content-Length": "2"}},
		{name: "get missing", method: "GET", path: "/" + a + "x", wantStatus: 404, wantBody: "kvstore: key not found"},
		{name: "stale", method: "GET", path: "/" + a + "?level=stale", wantStatus: 200, group: 1, wantSeen: "GET /" + a + "?level=stale id= seq="},
		{name: "level any case", method: "GET", path: "/" + a + "?level=%20Consistent", wantStatus: 200},
		{name: "watch not a bool", method: "GET", path: "/" + a + "?watch=maybe", wantStatus: 400, wantBody: `router: watch must be true or false; got "maybe"`},
		{name: "watch false", method: "GET", path: "/" + a + "?watch=false", wantStatus: 200, wantBody: "va"},
		{name: "watch twice", method: "GET", path: "/" + a + "?watch=true&watch=true", wantStatus: 400, wantBody: "router: query parameter watch given more than once"},
		{name: "head watch", method: "HEAD", path: "/" + a + "?watch=true", wantStatus: 400},
		{name: "listing watch not a bool", method: "GET", path: "/key?prefix=p&watch=maybe", wantStatus: 400, wantBody: `router: watch must be true or false; got "maybe"`},
		{name: "level none", method: "GET", path: "/key/" + a + "?level=none", wantStatus: 200, wantBody: `{"` + a + `":"va"}`},
		{name: "min index", method: "GET", path: "/" + a + "?min_index=5", wantStatus: 200, group: 1, wantSeen: "GET /" + a + "?min_index=5 id= seq="},
		{name: "bad level", method: "GET", path: "/" + a + "?level=eventual", wantStatus: 400, wantBody: "router: level must be"},
		{name: "bad min index", method: "GET", path: "/" + a + "?min_index=x", wantStatus: 400, wantBody: "router: min_index"},
		{name: "twice", method: "GET", path: "/" + a + "?level=stale&level=stale", wantStatus: 400, wantBody: "router: query parameter level given more than once"},
		{name: "put", method: "PUT", path: "/" + b, body: "new", wantStatus: 204, wantHeader: map[string]string{"X-Raft-Index": "1"}, group: 2, wantSeen: "PUT /" + b + " id=router seq="},
		{name: "put passes ids", method: "PUT", path: "/key/" + a, body: "x", header: map[string]string{"X-Client-ID": "app-1", "X-Client-Seq": "77"},
			wantStatus: 204, group: 1, wantSeen: "PUT /" + a + " id=app-1 seq=77"},
		{name: "seq without id", method: "PUT", path: "/" + a, header: map[string]string{"X-Client-Seq": "1"}, wantStatus: 400, wantBody: "router: X-Client-ID"},
		{name: "bad seq", method: "PUT", path: "/" + a, header: map[string]string{"X-Client-ID": "x", "X-Client-Seq": "0"}, wantStatus: 400, wantBody: "router: X-Client-Seq"},
		{name: "too large", method: "PUT", path: "/" + a, body: strings.Repeat("x", 1025), wantStatus: 413},
		{name: "key too long", method: "PUT", path: "/" + strings.Repeat("k", 65), wantStatus: 400, wantBody: "router: key too long"},
		{name: "empty key", method: "GET", path: "/key/", wantStatus: 400, wantBody: "router: empty key"},
		{name: "delete", method: "DELETE", path: "/key/" + b, wantStatus: 204, group: 2, wantSeen: "DELETE /key/" + b + " id=router seq="},
		{name: "delete root key", method: "DELETE", path: "/" + b, wantStatus: 400, wantBody: "router: DELETE /<id> removes a raft member"},
		{name: "member removal", method: "DELETE", path: "/3", wantStatus: 400, wantBody: "router: membership changes are per raft group"},
		{name: "member add", method: "POST", path: "/4", body: "http://127.0.0.1:1", wantStatus: 400, wantBody: "router: membership"},
		{name: "join", method: "POST", path: "/join", body: "{}", wantStatus: 400, wantBody: "router: membership"},
		{name: "batch one group", method: "POST", path: "/key", body: `{"{` + tag1 + `}:x":"1","{` + tag1 + `}:y":"2"}`, wantStatus: 204, group: 1},
		{name: "batch across groups", method: "POST", path: "/key", body: `{"` + a + `":"1","` + b + `":"2"}`, wantStatus: 400, wantBody: "router: client: putall"},
		{name: "batch across groups json", method: "POST", path: "/key", body: `{"` + a + `":"1","` + b + `":"2"}`, header: map[string]string{"Accept": "application/json"},
			wantStatus: 400, wantBody: `{"code":"cross_group","error":"router: client: putall`},
		{name: "batch not strings", method: "POST", path: "/key", body: `{"a":1}`, wantStatus: 400, wantBody: "router: POST /key body must be"},
		{name: "batch twice", method: "POST", path: "/key", body: `{"a":"1","a":"2"}`, wantStatus: 400, wantBody: "router: POST /key body must be"},
		// encoding/json would pass on U+FFFD for each of these.
		{name: "batch not UTF-8", method: "POST", path: "/key", body: "{\"a\":\"\xff\"}", wantStatus: 400, wantBody: "router: POST /key body must be a non-empty JSON object of string values, e.g. {\"foo\":\"bar\"}: it is not valid UTF-8"},
		{name: "batch lone surrogate", method: "POST", path: "/key", body: `{"a":"\udfff"}`, wantStatus: 400,
			wantBody: `router: POST /key body must be a non-empty JSON object of string values, e.g. {"foo":"bar"}: the escape \udfff is half of a UTF-16 surrogate pair`},
		{name: "txn misspelt branch", method: "POST", path: "/txn", body: `{"sucess":[{"put":{"key":"a","value":"v"}}]}`, wantStatus: 400,
			wantBody: `router: POST /txn takes a JSON object {"compare":[...],"success":[...],"failure":[...]}; unknown field "sucess"`},
		{name: "txn misspelt op", method: "POST", path: "/txn", body: `{"success":[{"dlete":{"key":"a"}}]}`, wantStatus: 400,
			wantBody: `router: POST /txn takes a JSON object {"compare":[...],"success":[...],"failure":[...]}; unknown field "dlete"`},
		{name: "txn empty op", method: "POST", path: "/txn", body: `{"success":[{}]}`, wantStatus: 400,
			wantBody: `router: POST /txn takes a JSON object {"compare":[...],"success":[...],"failure":[...]}; success 0: an operation is one object of`},
		{name: "txn two ops in one", method: "POST", path: "/txn", body: `{"failure":[{"get":{"key":"a"},"delete":{"key":"a"}}]}`, wantStatus: 400,
			wantBody: `router: POST /txn takes a JSON object {"compare":[...],"success":[...],"failure":[...]}; failure 0: an operation is one object of`},
		{name: "txn not UTF-8", method: "POST", path: "/txn", body: "{\"success\":[{\"put\":{\"key\":\"a\xff\",\"value\":\"v\"}}]}", wantStatus: 400,
			wantBody: "router: POST /txn takes JSON, which is UTF-8: the body is not valid UTF-8"},
		{name: "txn lone surrogate", method: "POST", path: "/txn", body: `{"success":[{"put":{"key":"a\ud800","value":"v"}}]}`, wantStatus: 400,
			wantBody: `router: POST /txn: the escape \ud800 is half of a UTF-16 surrogate pair`},
		{name: "batch with a ttl", method: "POST", path: "/key?ttl=5s", body: `{"{` + tag1 + `}:x":"1"}`, wantStatus: 400, wantBody: "router: POST /key takes no ttl"},
		{name: "batch with if-match", method: "POST", path: "/key", body: `{"{` + tag1 + `}:x":"1"}`, header: map[string]string{"If-Match": `"3"`},
			wantStatus: 400, wantBody: "router: POST /key writes several keys unconditionally"},
		{name: "batch base64", method: "POST", path: "/key?encoding=base64", body: `{"{` + tag1 + `}:x":"aGk="}`, wantStatus: 204, group: 1},
		{name: "batch bad base64", method: "POST", path: "/key?encoding=base64", body: `{"{` + tag1 + `}:x":"*"}`, wantStatus: 400, wantBody: "router: with encoding=base64"},
		{name: "range delete with a limit", method: "DELETE", path: "/key?prefix=p&limit=1", wantStatus: 400, wantBody: `router: a range delete takes prefix, or start and end; not "limit"`},
		{name: "range delete with if-match", method: "DELETE", path: "/key?prefix=p", header: map[string]string{"If-Match": `"3"`}, wantStatus: 400, wantBody: "router: a range delete is unconditional: delete one key at a version with DELETE /key/<key>"},
		{name: "batch with an empty if-match", method: "POST", path: "/key", body: `{"{` + tag1 + `}:x":"1"}`, header: map[string]string{"If-Match": ""},
			wantStatus: 400, wantBody: "router: POST /key writes several keys unconditionally"},
		{name: "txn with an empty if-none-match", method: "POST", path: "/txn", body: `{"success":[{"put":{"key":"a","value":"v"}}]}`, header: map[string]string{"If-None-Match": ""},
			wantStatus: 400, wantBody: `router: a transaction's conditions are its "compare" list`},
		{name: "txn with if-match", method: "POST", path: "/txn", body: `{"success":[{"put":{"key":"a","value":"v"}}]}`, header: map[string]string{"If-Match": `"3"`},
			wantStatus: 400, wantBody: `router: a transaction's conditions are its "compare" list`},
		{name: "batch empty", method: "POST", path: "/key", body: `{}`, wantStatus: 400},
		{name: "batch trailing", method: "POST", path: "/key", body: `{"a":"1"} x`, wantStatus: 400},
		{name: "method", method: "PATCH", path: "/" + a, wantStatus: 405, wantHeader: map[string]string{"Allow": allowRoot}},
		{name: "method key", method: "POST", path: "/key/" + a, wantStatus: 405, wantHeader: map[string]string{"Allow": allowKey}},
		{name: "metrics", method: "GET", path: "/metrics", wantStatus: 404},
		// A member's backup, not the key "snapshot" (/key/snapshot is).
		{name: "snapshot", method: "GET", path: "/snapshot", wantStatus: 404, wantBody: "router: /snapshot is served by members"},
		{name: "snapshot put", method: "PUT", path: "/snapshot", body: "x", wantStatus: 404, wantBody: "router: /snapshot is served by members"},
		// A member's dashboard (a group's, which the key "ui" would pick).
		{name: "dashboard", method: "GET", path: "/ui", wantStatus: 404, wantBody: "router: /ui is served by members"},
		{name: "dashboard api", method: "GET", path: "/ui/api/cluster", wantStatus: 404, wantBody: "router: /ui/api/cluster is served by members"},
		{name: "debug state", method: "GET", path: "/debug/state", wantStatus: 404},
		{name: "status", method: "GET", path: "/status", wantStatus: 200, wantBody: `{"role":"router","clientID":"router","sharded":true,"configVersion":1,"buckets":16,"groups":{"1":{"servers":["` + g[1].srv.URL + `"],"buckets":8},"2":{"servers":["` + g[2].srv.URL + `"],"buckets":8}}`},
		{name: "health", method: "GET", path: "/health", wantStatus: 200, wantBody: `{"health":"true","reason":""}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, err := http.NewRequest(tc.method, srv.URL+tc.path, strings.NewReader(tc.body))
			if err != nil {
				t.Fatal(err)
			}
			for k, v := range tc.header {
				req.Header.Set(k, v)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tc.wantStatus || !strings.HasPrefix(string(body), tc.wantBody) {
				t.Fatalf("%s %s = %d %q; want %d %q...", tc.method, tc.path, resp.StatusCode, body, tc.wantStatus, tc.wantBody)
			}
			for k, v := range tc.wantHeader {
				if got := resp.Header.Get(k); got != v {
					t.Errorf("header %s = %q, want %q", k, got, v)
				}
			}
			if tc.group != 0 {
				seen := g[tc.group].lastRequest()
				if !strings.HasPrefix(seen, tc.method+" ") || (tc.wantSeen != "" && !strings.HasPrefix(seen, tc.wantSeen)) {
					t.Errorf("group %d last saw %q, want %q", tc.group, seen, tc.wantSeen)
				}
			}
		})
	}
}

// TestRouterBatchBase64: POST /key?encoding=base64 through the router
// writes the text the values encode, as a member does, not the base64
// (bytes that are not UTF-8: TestRouterSingleGroup, against a real member).
func TestRouterBatchBase64(t *testing.T) {
	srv, cfg, g := shardedRouter(t)
	k := keyIn(cfg, 1, "b64-")
	r, err := http.Post(srv.URL+"/key?encoding=base64", "application/json", strings.NewReader(`{"`+k+`":"aMOpIQ=="}`))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(r.Body)
	r.Body.Close()
	g[1].mu.Lock()
	got := g[1].kv[k]
	g[1].mu.Unlock()
	if r.StatusCode != http.StatusNoContent || got != "hé!" {
		t.Fatalf("POST /key?encoding=base64: %d %s, group 1 holds %q; want 204 and hé!", r.StatusCode, body, got)
	}
}

// TestRouterRelaysErrors: a member's error answer comes back as sent,
// except a write that may have been applied, which is a 504 whatever its
// last try was answered.
func TestRouterRelaysErrors(t *testing.T) {
	srv, cfg, g := shardedRouter(t)
	a := keyIn(cfg, 1, "a")
	g[1].setFail(409, "application/json", `{"error":"busy","code":"conflict"}`)
	// A caller that accepts JSON gets the member's body; one that does not,
	// its line of text, as from a member.
	for _, tc := range []struct{ accept, body, contentType string }{
		{"application/json", `{"error":"busy","code":"conflict"}`, "application/json"},
		{"", "busy\n", "text/plain; charset=utf-8"},
		{"*/*", "busy\n", "text/plain; charset=utf-8"},
	} {
		req, _ := http.NewRequest("POST", srv.URL+"/key", strings.NewReader(`{"`+a+`":"1"}`))
		if tc.accept != "" {
			req.Header.Set("Accept", tc.accept)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 409 || string(body) != tc.body || resp.Header.Get("Content-Type") != tc.contentType {
			t.Fatalf("409 relayed to Accept %q as %d %q %q; want %q %q", tc.accept, resp.StatusCode, body,
				resp.Header.Get("Content-Type"), tc.body, tc.contentType)
		}
	}

	g[1].setFail(503, "text/plain; charset=utf-8", "raftnode: no leader\n")
	req, _ := http.NewRequest("GET", srv.URL+"/"+a, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 503 || string(body) != "raftnode: no leader\n" || resp.Header.Get("Retry-After") != "1" {
		t.Fatalf("503 relayed as %d %q, Retry-After %q", resp.StatusCode, body, resp.Header.Get("Retry-After"))
	}

	// First try 504 (may apply), then 503s until the deadline: 504.
	tries := 0
	g[1].setHandler(func(w http.ResponseWriter, r *http.Request) {
		tries++
		if tries == 1 {
			w.WriteHeader(http.StatusGatewayTimeout)
			return
		}
		w.WriteHeader(http.StatusServiceUnavailable)
	})
	req, _ = http.NewRequest("PUT", srv.URL+"/"+a, strings.NewReader("v"))
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 504 || !strings.Contains(string(body), "may have been applied") {
		t.Fatalf("504-then-503 write answered %d %q; want 504, outcome unknown", resp.StatusCode, body)
	}
}

// TestHealthAfterFirstJoin: a router whose first config predates every
// group's join (a deployment started all at once) becomes healthy once a
// group joins, without a key request to make it look again.
func TestHealthAfterFirstJoin(t *testing.T) {
	empty, _ := shardmap.Initial(16)
	joined, err := empty.Join(map[uint64][]string{1: {newMember(t).srv.URL}})
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	cfg := empty
	cs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(cfg)
	}))
	t.Cleanup(cs.Close)
	c, err := client.New(client.Config{ConfigEndpoints: []string{cs.URL}, RequestTimeout: time.Second, Logger: zaptest.NewLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	h, err := New(Config{Client: c, Logger: zaptest.NewLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	health := func() (int, string) {
		resp, err := http.Get(srv.URL + "/health")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := health(); code != http.StatusServiceUnavailable {
		t.Fatalf("before any join: %d %s, want 503", code, body)
	}
	mu.Lock()
	cfg = joined
	mu.Unlock()
	if code, body := health(); code != http.StatusOK {
		t.Fatalf("after group 1 joined: %d %s, want 200", code, body)
	}
}

// TestRouterRefusesAnnouncedLargeBody: a write whose Content-Length is
// over the limit gets its 413 before its body arrives.
func TestRouterRefusesAnnouncedLargeBody(t *testing.T) {
	srv, _, _ := shardedRouter(t)
	for _, req := range []string{"PUT /k", "POST /key", "POST /txn"} {
		c, err := net.Dial("tcp", strings.TrimPrefix(srv.URL, "http://"))
		if err != nil {
			t.Fatal(err)
		}
		c.SetDeadline(time.Now().Add(10 * time.Second))
		// 1025 bytes announced (the limit is 1024), one sent.
		if _, err := io.WriteString(c, req+" HTTP/1.1\r\nHost: h\r\nContent-Length: 1025\r\n\r\nx"); err != nil {
			t.Fatal(err)
		}
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		c.Close()
		if err != nil {
			t.Fatalf("%s: no answer before the body: %v", req, err)
		}
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusRequestEntityTooLarge || !strings.Contains(string(body), "larger than 1024 bytes") {
			t.Errorf("%s: %s %q, want 413 naming the limit", req, resp.Status, body)
		}
	}
}
