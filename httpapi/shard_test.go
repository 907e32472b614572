package httpapi

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
)

// TestWrongGroup: a key of another group (the fake's "wg-" and "nobody-"
// keys) is answered 421 with the contract's JSON to a routing client, and
// 307 to the owner's first member to anyone else, or 421 when the owner is
// not known.
func TestWrongGroup(t *testing.T) {
	const v5 = `"version":5`
	tests := []struct {
		name, method, target, body string
		route                      bool
		status                     int
		location                   string
		json                       string // the whole 421 body
	}{
		{"get redirected", "GET", "/wg-k", "", false, 307, "http://127.0.0.1:7002/wg-k", ""},
		{"query kept", "GET", "/wg-k?level=stale&min_index=3", "", false, 307, "http://127.0.0.1:7002/wg-k?level=stale&min_index=3", ""},
		{"raftdb read kept", "GET", "/key/wg-k?encoding=base64", "", false, 307, "http://127.0.0.1:7002/key/wg-k?encoding=base64", ""},
		{"escaped path kept", "GET", "/wg-a%2Fb", "", false, 307, "http://127.0.0.1:7002/wg-a%2Fb", ""},
		{"put redirected", "PUT", "/wg-k", "v", false, 307, "http://127.0.0.1:7002/wg-k", ""},
		{"delete redirected", "DELETE", "/key/wg-k", "", false, 307, "http://127.0.0.1:7002/key/wg-k", ""},
		{"head redirected", "HEAD", "/wg-k", "", false, 307, "http://127.0.0.1:7002/wg-k", ""},
		{"batch redirected", "POST", "/key", `{"a":"1","wg-b":"2"}`, false, 307, "http://127.0.0.1:7002/key", ""},
		{"routing client", "GET", "/wg-k", "", true, 421, "",
			`{"error":"bucket 9 of key \"wg-k\" is served by group 2 in config 5, not by this group","code":"wrong_group",` + v5 + `,"bucket":9,"owner":2,"servers":["http://127.0.0.1:7002/","http://127.0.0.1:7003"]}`},
		{"routing client's write", "PUT", "/wg-k", "v", true, 421, "",
			`{"error":"bucket 9 of key \"wg-k\" is served by group 2 in config 5, not by this group","code":"wrong_group",` + v5 + `,"bucket":9,"owner":2,"servers":["http://127.0.0.1:7002/","http://127.0.0.1:7003"]}`},
		{"owner unknown", "GET", "/nobody-k", "", false, 421, "",
			`{"error":"bucket 4 of key \"nobody-k\" is not served by this group, and config 1 gives it to no group","code":"wrong_group",` + v5 + `,"bucket":4}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, map[string]string{"a": "0"}, nil)
			req := httptest.NewRequest(tc.method, tc.target, strings.NewReader(tc.body))
			if tc.route {
				req.Header.Set(HeaderRoute, "client")
			}
			rec := e.serve(t, req)
			if rec.Code != tc.status {
				t.Fatalf("status %d, want %d: %q", rec.Code, tc.status, rec.Body.String())
			}
			if got := rec.Header().Get("Location"); got != tc.location {
				t.Errorf("Location %q, want %q", got, tc.location)
			}
			if got := rec.Header().Get(HeaderConfigVersion); got != "5" {
				t.Errorf("%s %q, want 5", HeaderConfigVersion, got)
			}
			if tc.json != "" {
				want := strings.Replace(tc.json, "config 1", "config 5", 1)
				if got := strings.TrimSuffix(rec.Body.String(), "\n"); got != want {
					t.Errorf("body\n%s\nwant\n%s", got, want)
				}
				if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
					t.Errorf("Content-Type %q", ct)
				}
			}
			if tc.method == "HEAD" && rec.Body.Len() != 0 {
				t.Errorf("HEAD answered a body %q", rec.Body.String())
			}
			if got := e.store.snapshot(); !reflect.DeepEqual(got, map[string]string{"a": "0"}) {
				t.Errorf("store changed: %v", got)
			}
		})
	}
}

// TestWriteOptions: X-Client-ID and X-Client-Seq are read on every write,
// passed to Store.Write, and refused with 400 when malformed; writes
// without them keep Put, PutAll and Delete, and reads ignore them.
func TestWriteOptions(t *testing.T) {
	type hdrs = map[string][]string
	ok := hdrs{HeaderClientID: {"client-7.A_b"}, HeaderClientSeq: {"42"}}
	wo := WriteOptions{ClientID: "client-7.A_b", Seq: 42}
	tests := []struct {
		name, method, target, body string
		headers                    hdrs
		status                     int
		want                       []fakeWrite // the Write calls
		msg                        string      // part of a 400's message
	}{
		{"put", "PUT", "/k", "v", ok, 204, []fakeWrite{{[]Op{{Key: "k", Value: []byte("v")}}, wo}}, ""},
		{"raftdb put", "PUT", "/key/k", "v", ok, 204, []fakeWrite{{[]Op{{Key: "k", Value: []byte("v")}}, wo}}, ""},
		{"delete", "DELETE", "/key/k", "", ok, 204, []fakeWrite{{[]Op{{Key: "k", Delete: true}}, wo}}, ""},
		{"batch in key order", "POST", "/key", `{"b":"2","a":"1"}`, ok, 204,
			[]fakeWrite{{[]Op{{Key: "a", Value: []byte("1")}, {Key: "b", Value: []byte("2")}}, wo}}, ""},
		{"max seq", "PUT", "/k", "v", hdrs{HeaderClientID: {"c"}, HeaderClientSeq: {"18446744073709551615"}}, 204,
			[]fakeWrite{{[]Op{{Key: "k", Value: []byte("v")}}, WriteOptions{"c", 1<<64 - 1}}}, ""},
		{"64-character id", "PUT", "/k", "v", hdrs{HeaderClientID: {strings.Repeat("x", 64)}, HeaderClientSeq: {"1"}}, 204,
			[]fakeWrite{{[]Op{{Key: "k", Value: []byte("v")}}, WriteOptions{strings.Repeat("x", 64), 1}}}, ""},
		{"none", "PUT", "/k", "v", nil, 204, nil, ""},
		{"read ignores them", "GET", "/k", "", hdrs{HeaderClientID: {"bad id!"}}, 200, nil, ""},
		{"id alone", "PUT", "/k", "v", hdrs{HeaderClientID: {"c"}}, 400, nil, "X-Client-ID needs X-Client-Seq"},
		{"seq alone", "DELETE", "/key/k", "", hdrs{HeaderClientSeq: {"1"}}, 400, nil, "X-Client-Seq needs X-Client-ID"},
		{"empty id", "PUT", "/k", "v", hdrs{HeaderClientID: {""}, HeaderClientSeq: {"1"}}, 400, nil, "X-Client-ID must be 1 to 64"},
		{"long id", "PUT", "/k", "v", hdrs{HeaderClientID: {strings.Repeat("x", 65)}, HeaderClientSeq: {"1"}}, 400, nil, "X-Client-ID must be"},
		{"id with a slash", "POST", "/key", `{"a":"1"}`, hdrs{HeaderClientID: {"a/b"}, HeaderClientSeq: {"1"}}, 400, nil, `got "a/b"`},
		{"seq zero", "PUT", "/k", "v", hdrs{HeaderClientID: {"c"}, HeaderClientSeq: {"0"}}, 400, nil, "X-Client-Seq must be a decimal integer"},
		{"seq negative", "PUT", "/k", "v", hdrs{HeaderClientID: {"c"}, HeaderClientSeq: {"-1"}}, 400, nil, "X-Client-Seq must be"},
		{"seq signed", "PUT", "/k", "v", hdrs{HeaderClientID: {"c"}, HeaderClientSeq: {"+1"}}, 400, nil, "X-Client-Seq must be"},
		{"seq over uint64", "PUT", "/k", "v", hdrs{HeaderClientID: {"c"}, HeaderClientSeq: {"18446744073709551616"}}, 400, nil, "X-Client-Seq must be"},
		{"seq hex", "PUT", "/k", "v", hdrs{HeaderClientID: {"c"}, HeaderClientSeq: {"0x10"}}, 400, nil, "X-Client-Seq must be"},
		{"two ids", "PUT", "/k", "v", hdrs{HeaderClientID: {"c", "d"}, HeaderClientSeq: {"1"}}, 400, nil, "given more than once"},
		{"two seqs", "PUT", "/k", "v", hdrs{HeaderClientID: {"c"}, HeaderClientSeq: {"1", "2"}}, 400, nil, "given more than once"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, map[string]string{"k": "old"}, nil)
			req := httptest.NewRequest(tc.method, tc.target, strings.NewReader(tc.body))
			for k, vs := range tc.headers {
				for _, v := range vs {
					req.Header.Add(k, v)
				}
			}
			rec := e.serve(t, req)
			if rec.Code != tc.status {
				t.Fatalf("status %d, want %d: %q", rec.Code, tc.status, rec.Body.String())
			}
			if !strings.Contains(rec.Body.String(), tc.msg) {
				t.Errorf("body %q does not say %q", rec.Body.String(), tc.msg)
			}
			if got := e.store.writesCalled(); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("Write calls %+v, want %+v", got, tc.want)
			}
			if tc.status == 400 {
				if got := e.store.snapshot(); got["k"] != "old" || len(got) != 1 {
					t.Errorf("a refused write changed the store: %v", got)
				}
			}
		})
	}
}

// TestRoutes: Config.Routes mounts handlers before every route of the
// package, exactly or by prefix, and answers their errors through the
// error table; a Config that would hide the client API is refused.
func TestRoutes(t *testing.T) {
	var served []string
	mount := func(name string) RouteFunc {
		return func(w http.ResponseWriter, r *http.Request) error {
			if r.URL.Query().Get("fail") != "" {
				return badRequest("mounted " + name + " refused it")
			}
			served = append(served, name+" "+r.URL.Path)
			w.WriteHeader(http.StatusAccepted)
			return nil
		}
	}
	e := newEnv(t, map[string]string{"configx": "key", "shard": "key"}, func(c *Config) {
		c.Routes = map[string]RouteFunc{"/config": mount("config"), "/config/": mount("config/"), "/shard/": mount("shard/"), "/shard/x/": mount("shard/x/")}
	})
	for _, tc := range []struct {
		target string
		status int
	}{
		{"/config", 202}, {"/config/join", 202}, {"/shard/pull", 202}, {"/shard/x/y", 202},
		{"/configx", 200}, {"/shard", 200}, {"/key/config", 404},
		{"/config?fail=1", 400},
	} {
		rec := e.do(t, "GET", tc.target, "")
		if rec.Code != tc.status {
			t.Errorf("GET %s: %d, want %d: %q", tc.target, rec.Code, tc.status, rec.Body.String())
		}
	}
	want := []string{"config /config", "config/ /config/join", "shard/ /shard/pull", "shard/x/ /shard/x/y"}
	if !reflect.DeepEqual(served, want) {
		t.Errorf("served %q, want %q", served, want)
	}
	for _, name := range []string{"", "/", "config", "/status", "/health", "/metrics", "/key", "/key/x"} {
		_, err := New(Config{Store: newFakeStore(nil), Cluster: newFakeCluster(), Routes: map[string]RouteFunc{name: mount("x")}})
		if !errors.Is(err, ErrInvalidConfig) {
			t.Errorf("route %q: New = %v, want ErrInvalidConfig", name, err)
		}
	}
	if _, err := New(Config{Store: newFakeStore(nil), Cluster: newFakeCluster(), Routes: map[string]RouteFunc{"/x": nil}}); !errors.Is(err, ErrInvalidConfig) {
		t.Errorf("nil route: New = %v, want ErrInvalidConfig", err)
	}
}

// TestStatusSections: the config and shard sections appear in GET /status
// as the sharding contract shows them, and only when the Cluster reports
// them.
func TestStatusSections(t *testing.T) {
	st := Status{ID: 1, Members: []Member{},
		Config: &ConfigStatus{Version: 6, Buckets: 256, Groups: map[string]int{"1": 128, "2": 128}},
		Shard: &ShardStatus{Group: 2, ConfigVersion: 6, Buckets: BucketStates{
			Serving: []int{0, 1}, Pulling: []int{}, BePulling: []int{5}, GCing: []int{}}},
	}
	b, err := json.Marshal(st)
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]json.RawMessage
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	if want := `{"version":6,"buckets":256,"groups":{"1":128,"2":128}}`; string(got["config"]) != want {
		t.Errorf("config section %s, want %s", got["config"], want)
	}
	if want := `{"group":2,"configVersion":6,"buckets":{"serving":[0,1],"pulling":[],"bePulling":[5],"gcing":[]}}`; string(got["shard"]) != want {
		t.Errorf("shard section %s, want %s", got["shard"], want)
	}
	e := newEnv(t, nil, nil)
	rec := e.do(t, "GET", "/status", "")
	if strings.Contains(rec.Body.String(), `"config"`) || strings.Contains(rec.Body.String(), `"shard"`) {
		t.Errorf("a plain member's status has sharding sections: %s", rec.Body.String())
	}
}
