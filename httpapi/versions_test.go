package httpapi

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
	"time"
)

// request builds a request with headers, given as "Name: value" strings.
func request(method, target, body string, headers ...string) *http.Request {
	req := httptest.NewRequest(method, target, strings.NewReader(body))
	for _, h := range headers {
		name, value, _ := strings.Cut(h, ":")
		req.Header.Add(name, strings.TrimSpace(value))
	}
	return req
}

// TestReadVersions: GETs of both paths carry ETag, X-Raft-Index,
// X-Create-Index and, for a key with a TTL, X-TTL; a 404 still says the
// index it was read at.
func TestReadVersions(t *testing.T) {
	e := newEnv(t, map[string]string{"k": "v"}, nil) // seeded at create 3, mod 7; index 10
	for _, target := range []string{"/k", "/key/k", "/k?level=stale"} {
		rec := e.do(t, "GET", target, "")
		want := map[string]string{"Etag": `"7"`, "X-Create-Index": "3", "X-Raft-Index": "10", "X-Ttl": ""}
		for name, v := range want {
			if got := rec.Header().Get(name); got != v {
				t.Errorf("GET %s: %s = %q, want %q", target, name, got, v)
			}
		}
	}
	if rec := e.do(t, "GET", "/missing", ""); rec.Code != 404 || rec.Header().Get("X-Raft-Index") != "10" || rec.Header().Get("Etag") != "" {
		t.Errorf("GET /missing: %d, X-Raft-Index %q, ETag %q; want 404, 10, none", rec.Code, rec.Header().Get("X-Raft-Index"), rec.Header().Get("Etag"))
	}
	if rec := e.do(t, "PUT", "/t?ttl=90", "x"); rec.Code != 204 {
		t.Fatalf("PUT ?ttl=90: %d %s", rec.Code, rec.Body)
	}
	rec := e.do(t, "HEAD", "/key/t", "")
	if rec.Header().Get("X-Ttl") != "90" || rec.Header().Get("Etag") != `"11"` || rec.Header().Get("X-Create-Index") != "11" {
		t.Errorf("HEAD /key/t: headers %v", rec.Header())
	}
	// A put without TTL makes the key permanent again.
	e.do(t, "PUT", "/key/t", "y")
	if rec := e.do(t, "GET", "/t", ""); rec.Header().Get("X-Ttl") != "" || rec.Header().Get("Etag") != `"12"` || rec.Header().Get("X-Create-Index") != "11" {
		t.Errorf("GET /t after a put without ttl: headers %v", rec.Header())
	}
}

// TestTTL: ?ttl= takes a Go duration or whole seconds from 1s to a year,
// goes to Write (with or without the writer's ids), and anything else is
// a 400 that reaches no store.
func TestTTL(t *testing.T) {
	tests := []struct {
		query string
		want  time.Duration // 0: refused
	}{
		{"ttl=30s", 30 * time.Second},
		{"ttl=30", 30 * time.Second},
		{"ttl=1s", time.Second},
		{"ttl=1h30m", 90 * time.Minute},
		{"ttl=8760h", 8760 * time.Hour},
		{"ttl=31536000", 8760 * time.Hour},
		{"ttl=%2030s%20", 30 * time.Second},
		{"ttl=999ms", 0},
		{"ttl=0", 0},
		{"ttl=-5s", 0},
		{"ttl=8761h", 0},
		{"ttl=31536001", 0},
		{"ttl=99999999999999999999", 0},
		{"ttl=", 0},
		{"ttl=soon", 0},
		{"ttl=1.5", 0},
		{"ttl=30s&ttl=40s", 0},
		{"ttl=%zz", 0},
	}
	for _, tc := range tests {
		for _, path := range []string{"/k", "/key/k"} {
			e := newEnv(t, nil, nil)
			rec := e.do(t, "PUT", path+"?"+tc.query, "v")
			writes := e.store.writesCalled()
			if tc.want == 0 {
				if rec.Code != 400 || len(writes) != 0 || len(e.store.snapshot()) != 0 {
					t.Errorf("PUT %s?%s: %d, %d writes; want 400 and nothing written", path, tc.query, rec.Code, len(writes))
				}
				continue
			}
			if rec.Code != 204 || len(writes) != 1 || writes[0].ops[0].TTL != tc.want || writes[0].wo != (WriteOptions{}) {
				t.Errorf("PUT %s?%s: %d, writes %+v; want 204 and one Write with TTL %v", path, tc.query, rec.Code, writes, tc.want)
			}
		}
	}
	e := newEnv(t, nil, nil)
	rec := e.serve(t, request("PUT", "/k?ttl=5s", "v", "X-Client-ID: c1", "X-Client-Seq: 9"))
	if w := e.store.writesCalled(); rec.Code != 204 || len(w) != 1 || w[0].wo != (WriteOptions{ClientID: "c1", Seq: 9}) || w[0].ops[0].TTL != 5*time.Second {
		t.Errorf("PUT with ttl and ids: %d, writes %+v", rec.Code, w)
	}
}

// TestConditionalWrites: If-Match and If-None-Match make a write a Txn:
// applied at the version asked for, else 412 with the current ETag and
// nothing changed; malformed conditions are 400 before anything is read.
func TestConditionalWrites(t *testing.T) {
	const cur = `"7"` // the seeded key's version
	tests := []struct {
		name     string
		method   string
		target   string
		headers  []string
		status   int
		etag     string // the answer's ETag; "new" for the version a PUT wrote (its X-Raft-Index here)
		want     map[string]string
		wantCode string
	}{
		{"if-match current", "PUT", "/k", []string{"If-Match: " + cur}, 204, "new", map[string]string{"k": "new"}, ""},
		{"if-match bare number", "PUT", "/key/k", []string{"If-Match: 7"}, 204, "new", map[string]string{"k": "new"}, ""},
		{"if-match old", "PUT", "/k", []string{`If-Match: "6"`}, 412, cur, map[string]string{"k": "v"}, "precondition_failed"},
		{"if-match absent key", "PUT", "/n", []string{`If-Match: "7"`}, 412, "", map[string]string{"k": "v"}, "precondition_failed"},
		{"if-match 0 creates", "PUT", "/n", []string{`If-Match: "0"`}, 204, "new", map[string]string{"k": "v", "n": "new"}, ""},
		{"if-match star", "PUT", "/k", []string{"If-Match: *"}, 204, "new", map[string]string{"k": "new"}, ""},
		{"if-match star absent", "PUT", "/n", []string{"If-Match: *"}, 412, "", map[string]string{"k": "v"}, "precondition_failed"},
		{"if-none-match star absent", "PUT", "/n", []string{"If-None-Match: *"}, 204, "new", map[string]string{"k": "v", "n": "new"}, ""},
		{"if-none-match star present", "PUT", "/key/k", []string{"If-None-Match: *"}, 412, cur, map[string]string{"k": "v"}, "precondition_failed"},
		{"delete if-match current", "DELETE", "/key/k", []string{"If-Match: " + cur}, 204, "", map[string]string{}, ""},
		{"delete if-match old", "DELETE", "/key/k", []string{`If-Match: "8"`}, 412, cur, map[string]string{"k": "v"}, "precondition_failed"},
		{"delete if-match star absent", "DELETE", "/key/n", []string{"If-Match: *"}, 412, "", map[string]string{"k": "v"}, "precondition_failed"},
		{"with ttl", "PUT", "/k?ttl=10s", []string{"If-Match: " + cur}, 204, "new", map[string]string{"k": "new"}, ""},
		{"weak tag", "PUT", "/k", []string{`If-Match: W/"7"`}, 400, "", map[string]string{"k": "v"}, "bad_request"},
		{"list of tags", "PUT", "/k", []string{`If-Match: "7", "8"`}, 400, "", map[string]string{"k": "v"}, "bad_request"},
		{"two headers", "PUT", "/k", []string{`If-Match: "7"`, `If-Match: "7"`}, 400, "", map[string]string{"k": "v"}, "bad_request"},
		{"both kinds", "PUT", "/k", []string{`If-Match: "7"`, "If-None-Match: *"}, 400, "", map[string]string{"k": "v"}, "bad_request"},
		{"if-none-match tag", "PUT", "/k", []string{`If-None-Match: "7"`}, 400, "", map[string]string{"k": "v"}, "bad_request"},
		{"if-none-match on delete", "DELETE", "/key/k", []string{"If-None-Match: *"}, 400, "", map[string]string{"k": "v"}, "bad_request"},
		{"negative", "PUT", "/k", []string{`If-Match: "-1"`}, 400, "", map[string]string{"k": "v"}, "bad_request"},
		{"signed", "PUT", "/k", []string{`If-Match: "+7"`}, 400, "", map[string]string{"k": "v"}, "bad_request"},
		{"empty", "PUT", "/k", []string{`If-Match: ""`}, 400, "", map[string]string{"k": "v"}, "bad_request"},
		{"wrong group", "PUT", "/wg-x", []string{"If-Match: *", "X-Raftkv-Route: client"}, 421, "", map[string]string{"k": "v"}, "wrong_group"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, map[string]string{"k": "v"}, nil)
			rec := e.serve(t, request(tc.method, tc.target, "new", append(tc.headers, "Accept: application/json")...))
			if rec.Code != tc.status {
				t.Fatalf("status %d (%s), want %d", rec.Code, rec.Body, tc.status)
			}
			want := tc.etag
			if want == "new" {
				want = `"` + rec.Header().Get("X-Raft-Index") + `"`
			}
			if got := rec.Header().Get("Etag"); got != want {
				t.Errorf("ETag %q, want %q", got, want)
			}
			if got := e.store.snapshot(); !equalMaps(got, tc.want) {
				t.Errorf("store %v, want %v", got, tc.want)
			}
			if tc.wantCode != "" {
				var body errorJSON
				if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil || body.Code != tc.wantCode {
					t.Errorf("body %s, want code %s", rec.Body, tc.wantCode)
				}
			}
			txns := e.store.txnsCalled()
			switch {
			case tc.status == 400 && len(txns) != 0:
				t.Errorf("a refused condition reached the store: %+v", txns)
			case (tc.status == 204 || tc.status == 412) && len(txns) != 1:
				t.Errorf("%d Txn calls, want 1", len(txns))
			case tc.status == 412 && rec.Header().Get("X-Raft-Index") == "":
				t.Errorf("412 without X-Raft-Index")
			}
		})
	}
}

// TestConditionalWriteTxn: the Txn of a conditional write is the
// condition, the write on success and a get of the key on failure, under
// the writer's ids.
func TestConditionalWriteTxn(t *testing.T) {
	e := newEnv(t, map[string]string{"k": "v"}, nil)
	e.serve(t, request("PUT", "/k?ttl=1m", "new", `If-Match: "7"`, "X-Client-ID: c", "X-Client-Seq: 4"))
	e.serve(t, request("DELETE", "/key/k", "", "If-Match: *"))
	e.serve(t, request("PUT", "/n", "x", "If-None-Match: *"))
	want := []fakeTxn{
		{Txn{
			Compares: []Compare{{Key: "k", Target: CompareMod, Op: CompareEqual, Index: 7}},
			Success:  []TxnOp{{Type: TxnPut, Key: "k", Value: []byte("new"), TTL: time.Minute}},
			Failure:  []TxnOp{{Type: TxnGet, Key: "k"}},
		}, WriteOptions{ClientID: "c", Seq: 4}},
		{Txn{
			Compares: []Compare{{Key: "k", Target: CompareExists, Op: CompareEqual, Exists: true}},
			Success:  []TxnOp{{Type: TxnDelete, Key: "k"}},
			Failure:  []TxnOp{{Type: TxnGet, Key: "k"}},
		}, WriteOptions{}},
		{Txn{
			Compares: []Compare{{Key: "n", Target: CompareExists, Op: CompareEqual, Exists: false}},
			Success:  []TxnOp{{Type: TxnPut, Key: "n", Value: []byte("x")}},
			Failure:  []TxnOp{{Type: TxnGet, Key: "n"}},
		}, WriteOptions{}},
	}
	got := e.store.txnsCalled()
	if len(got) != len(want) {
		t.Fatalf("%d txns, want %d", len(got), len(want))
	}
	for i := range want {
		if !reflect.DeepEqual(got[i], want[i]) {
			t.Errorf("txn %d:\n got %+v\nwant %+v", i, got[i], want[i])
		}
	}
}
