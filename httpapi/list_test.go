package httpapi

import (
	"encoding/json"
	"fmt"
	"net/url"
	"reflect"
	"strings"
	"testing"
)

// TestParseList: a listing's parameters become ListOptions; bad ones are
// 400s.
func TestParseList(t *testing.T) {
	tok := encodeContinue(continueToken{scope: scopeOf(ListOptions{Prefix: "p/"}), index: 42, after: "p/x"})
	tests := []struct {
		query string
		want  ListOptions
		bad   string
	}{
		{"", ListOptions{Limit: 1000}, ""},
		{"prefix=p/", ListOptions{Prefix: "p/", Limit: 1000}, ""},
		{"start=a&end=b&limit=3", ListOptions{Start: "a", End: "b", Limit: 3}, ""},
		{"start=a", ListOptions{Start: "a", Limit: 1000}, ""},
		{"end=b&keys_only=true&limit=10000", ListOptions{End: "b", Limit: 10000, KeysOnly: true}, ""},
		{"prefix=p&level=stale", ListOptions{Prefix: "p", Limit: 1000, Stale: true}, ""},
		{"prefix=p&min_index=9", ListOptions{Prefix: "p", Limit: 1000, Stale: true, MinIndex: 9}, ""},
		{"prefix=p&level=consistent&min_index=9", ListOptions{Prefix: "p", Limit: 1000, MinIndex: 9}, ""},
		{"config_version=7", ListOptions{Limit: 1000, ConfigVersion: 7}, ""},
		{"watch=false", ListOptions{Limit: 1000}, ""},
		{"prefix=p/&continue=" + tok, ListOptions{Prefix: "p/", Limit: 1000, After: "p/x", MinIndex: 42}, ""},
		{"prefix=p/&level=stale&min_index=50&continue=" + tok, ListOptions{Prefix: "p/", Limit: 1000, After: "p/x", Stale: true, MinIndex: 50}, ""},
		{"prefix=q/&continue=" + tok, ListOptions{}, "another range"},
		{"start=p/&continue=" + tok, ListOptions{}, "another range"},
		{"prefix=p/&continue=xyz", ListOptions{}, "not one a listing issued"},
		{"prefix=p/&continue=", ListOptions{}, "not one a listing issued"},
		{"prefix=a&start=b", ListOptions{}, "not both"},
		{"prefix=a&prefix=b", ListOptions{}, "more than once"},
		{"limit=0", ListOptions{}, "limit must be"},
		{"limit=10001", ListOptions{}, "limit must be"},
		{"limit=x", ListOptions{}, "limit must be"},
		{"keys_only=maybe", ListOptions{}, "keys_only must be"},
		{"config_version=-1", ListOptions{}, "config_version must be"},
		{"level=fast", ListOptions{}, "level must be"},
		{"min_index=x", ListOptions{}, "min_index must be"},
		{"watch=maybe", ListOptions{}, "watch must be"},
	}
	for _, tc := range tests {
		q, err := url.ParseQuery(tc.query)
		if err != nil {
			t.Fatal(err)
		}
		got, err := parseList(q)
		if tc.bad != "" {
			if err == nil || statusOf(err) != 400 || !strings.Contains(humanMessage(err), tc.bad) {
				t.Errorf("parseList(%s) = %v, want a 400 saying %q", tc.query, err, tc.bad)
			}
			continue
		}
		if err != nil || !reflect.DeepEqual(got.opts, tc.want) {
			t.Errorf("parseList(%s) = %+v, %v; want %+v", tc.query, got.opts, err, tc.want)
		}
	}
}

// listPage is the body of a listing, as a client reads it.
type listPage struct {
	Index uint64 `json:"index"`
	KVs   []struct {
		Key         string  `json:"key"`
		KeyBase64   string  `json:"key_base64"`
		Value       *string `json:"value"`
		ValueBase64 *string `json:"value_base64"`
		CreateIndex uint64  `json:"create_index"`
		ModIndex    uint64  `json:"mod_index"`
	} `json:"kvs"`
	More     bool   `json:"more"`
	Continue string `json:"continue"`
}

// TestListPaging: paging with continue tokens yields every key of the
// range once, in order, each page at most limit keys, and the last page
// says there is no more.
func TestListPaging(t *testing.T) {
	seed := map[string]string{"other": "x", "p": "not in p/"}
	var want []string
	for i := range 23 {
		k := fmt.Sprintf("p/%02d", i)
		seed[k] = "v" + k
		want = append(want, k)
	}
	e := newEnv(t, seed, nil)
	for _, limit := range []int{1, 5, 23, 100} {
		var got []string
		next, pages := "", 0
		for {
			target := fmt.Sprintf("/key?prefix=p/&limit=%d", limit)
			if next != "" {
				target += "&continue=" + next
			}
			rec := e.do(t, "GET", target, "")
			var page listPage
			if err := json.Unmarshal(rec.Body.Bytes(), &page); rec.Code != 200 || err != nil {
				t.Fatalf("GET %s: %d %s", target, rec.Code, rec.Body)
			}
			if len(page.KVs) > limit || page.Index != 10 || rec.Header().Get("X-Raft-Index") != "10" {
				t.Fatalf("page of %d keys at %d for limit %d", len(page.KVs), page.Index, limit)
			}
			for _, kv := range page.KVs {
				if kv.Value == nil || *kv.Value != "v"+kv.Key || kv.ModIndex != 7 || kv.CreateIndex != 3 {
					t.Errorf("kv %+v", kv)
				}
				got = append(got, kv.Key)
			}
			pages++
			if !page.More {
				if page.Continue != "" {
					t.Errorf("last page has a continue token")
				}
				break
			}
			next = page.Continue
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("limit %d: listed %v, want %v", limit, got, want)
		}
		if wantPages := (23 + limit - 1) / limit; pages < wantPages || pages > wantPages+1 {
			t.Errorf("limit %d: %d pages", limit, pages)
		}
	}
}

// TestList: ranges, keys_only, bytes that are not UTF-8 and the wrong
// config version.
func TestList(t *testing.T) {
	e := newEnv(t, map[string]string{"a": "1", "b": "2", "c": "3", "d\xff": "\xfe", "wg-x": "elsewhere"}, nil)
	body := func(target string, headers ...string) (int, string) {
		rec := e.serve(t, request("GET", target, "", headers...))
		return rec.Code, rec.Body.String()
	}
	tests := []struct {
		target string
		status int
		body   string
	}{
		{"/key?start=b&end=d", 200, `{"index":10,"kvs":[{"key":"b","value":"2","create_index":3,"mod_index":7},{"key":"c","value":"3","create_index":3,"mod_index":7}],"more":false}`},
		{"/key?start=c&keys_only=true", 200, `{"index":10,"kvs":[{"key":"c","create_index":3,"mod_index":7},{"key_base64":"ZP8=","create_index":3,"mod_index":7}],"more":false}`},
		{"/key?prefix=d", 200, `{"index":10,"kvs":[{"key_base64":"ZP8=","value_base64":"/g==","create_index":3,"mod_index":7}],"more":false}`},
		{"/key?prefix=zz", 200, `{"index":10,"kvs":[],"more":false}`},
		{"/key?start=c&end=a", 200, `{"index":10,"kvs":[],"more":false}`},
		{"/key?config_version=5&start=c&end=d", 200, `{"index":10,"kvs":[{"key":"c","value":"3","create_index":3,"mod_index":7}],"more":false}`},
		{"/key?limit=2", 200, `{"index":10,"kvs":[{"key":"a","value":"1","create_index":3,"mod_index":7},{"key":"b","value":"2","create_index":3,"mod_index":7}],"more":true,"continue":"` +
			encodeContinue(continueToken{scope: scopeOf(ListOptions{}), index: 10, after: "b"}) + `"}`},
		{"/key?config_version=4", 421, ""},
	}
	for _, tc := range tests {
		status, got := body(tc.target, "X-Raftkv-Route: client")
		if status != tc.status || tc.body != "" && got != tc.body+"\n" {
			t.Errorf("GET %s: %d %s, want %d %s", tc.target, status, got, tc.status, tc.body)
		}
	}
	if rec := e.do(t, "HEAD", "/key?prefix=a", ""); rec.Code != 200 || rec.Body.Len() != 0 || rec.Header().Get("Content-Length") == "0" {
		t.Errorf("HEAD /key: %d, body %q, length %q", rec.Code, rec.Body, rec.Header().Get("Content-Length"))
	}
}

// TestContinueToken: tokens round-trip, and what decodeContinue accepts
// it would have written.
func TestContinueToken(t *testing.T) {
	for _, tok := range []continueToken{
		{scope: 1, index: 0, after: "a"},
		{scope: 1<<64 - 1, index: 1<<64 - 1, after: "\x00\xff key/with/slashes"},
	} {
		got, err := decodeContinue(encodeContinue(tok))
		if err != nil || got != tok {
			t.Errorf("round trip of %+v: %+v, %v", tok, got, err)
		}
	}
	for _, bad := range []string{"", "AQ", "!!!!", encodeContinue(continueToken{after: "a"})[:12], "AgAAAAAAAAABAGE"} {
		if _, err := decodeContinue(bad); err == nil || statusOf(err) != 400 {
			t.Errorf("decodeContinue(%q) = %v, want a 400", bad, err)
		}
	}
}
