package httpapi

import (
	"bytes"
	"encoding/base64"
	"maps"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestReadOptions(t *testing.T) {
	const max = "18446744073709551615"
	const badLevel = "level must be one of default, consistent, none, stale"
	const badMinIndex = "min_index must be a raft index"
	tests := []struct {
		name     string
		method   string // GET when empty
		target   string
		wantCode int
		wantOpts ReadOptions // what the Store received, when wantCode is not 400
		wantIn   string
	}{
		{name: "no level", target: "/k", wantCode: 200},
		{name: "stale", target: "/k?level=stale", wantCode: 200, wantOpts: ReadOptions{Stale: true}},
		{name: "default is linearizable", target: "/k?level=default", wantCode: 200},
		{name: "consistent", target: "/k?level=consistent", wantCode: 200},
		// The README's table of levels names the absent level "none".
		{name: "none is linearizable", target: "/k?level=none", wantCode: 200},
		{name: "key none", target: "/key/k?level=None", wantCode: 200},
		{name: "none and min_index", target: "/k?level=none&min_index=7", wantCode: 200, wantOpts: ReadOptions{MinIndex: 7}},
		{name: "min_index alone", target: "/k?min_index=7", wantCode: 200, wantOpts: ReadOptions{Stale: true, MinIndex: 7}},
		{name: "min_index zero", target: "/k?min_index=0", wantCode: 200, wantOpts: ReadOptions{Stale: true}},
		{name: "min_index max", target: "/k?min_index=" + max, wantCode: 200, wantOpts: ReadOptions{Stale: true, MinIndex: 1<<64 - 1}},
		{name: "default and min_index", target: "/k?level=default&min_index=7", wantCode: 200, wantOpts: ReadOptions{MinIndex: 7}},
		{name: "consistent and min_index", target: "/k?min_index=7&level=consistent", wantCode: 200, wantOpts: ReadOptions{MinIndex: 7}},
		{name: "stale and min_index", target: "/k?level=stale&min_index=7", wantCode: 200, wantOpts: ReadOptions{Stale: true, MinIndex: 7}},
		{name: "unknown parameters ignored", target: "/k?foo=bar&level=stale&x", wantCode: 200, wantOpts: ReadOptions{Stale: true}},
		{name: "only unknown parameters", target: "/k?pretty", wantCode: 200},
		{name: "encoded level", target: "/k?level=%73tale", wantCode: 200, wantOpts: ReadOptions{Stale: true}},
		{name: "head stale", method: "HEAD", target: "/k?level=stale", wantCode: 200, wantOpts: ReadOptions{Stale: true}},
		{name: "key stale", target: "/key/k?level=stale", wantCode: 200, wantOpts: ReadOptions{Stale: true}},
		{name: "key consistent", target: "/key/k?level=consistent", wantCode: 200},
		{name: "key min_index", target: "/key/k?min_index=5", wantCode: 200, wantOpts: ReadOptions{Stale: true, MinIndex: 5}},
		{name: "key default and min_index", target: "/key/k?level=default&min_index=5", wantCode: 200, wantOpts: ReadOptions{MinIndex: 5}},
		{name: "head key min_index", method: "HEAD", target: "/key/k?min_index=5", wantCode: 200, wantOpts: ReadOptions{Stale: true, MinIndex: 5}},
		{name: "absent key stale", target: "/key/nope?level=stale", wantCode: 404, wantOpts: ReadOptions{Stale: true}},

		{name: "unknown level", target: "/k?level=bogus", wantCode: 400, wantIn: `unknown level "bogus"; ` + badLevel},
		{name: "rqlite level", target: "/key/k?level=strong", wantCode: 400, wantIn: badLevel},
		{name: "empty level", target: "/k?level=", wantCode: 400, wantIn: badLevel},
		{name: "level case as raftdb", target: "/k?level=Stale", wantCode: 200, wantOpts: ReadOptions{Stale: true}},
		{name: "level spaces as raftdb", target: "/k?level=%20CONSISTENT%20&min_index=2", wantCode: 200, wantOpts: ReadOptions{MinIndex: 2}},
		{name: "level repeated", target: "/k?level=stale&level=stale", wantCode: 400, wantIn: "level given more than once"},
		{name: "min_index negative", target: "/k?min_index=-1", wantCode: 400, wantIn: badMinIndex},
		{name: "min_index word", target: "/key/k?min_index=abc", wantCode: 400, wantIn: badMinIndex},
		{name: "min_index fraction", target: "/k?min_index=1.5", wantCode: 400, wantIn: badMinIndex},
		{name: "min_index hex", target: "/k?min_index=0x10", wantCode: 400, wantIn: badMinIndex},
		{name: "min_index overflow", target: "/k?min_index=18446744073709551616", wantCode: 400, wantIn: badMinIndex},
		{name: "min_index empty", target: "/k?min_index=", wantCode: 400, wantIn: badMinIndex},
		{name: "min_index repeated", target: "/k?min_index=1&min_index=2", wantCode: 400, wantIn: "min_index given more than once"},
		{name: "bad level with good min_index", target: "/k?level=x&min_index=1", wantCode: 400, wantIn: badLevel},
		{name: "malformed query", target: "/k?level=stale&x=%zz", wantCode: 400, wantIn: "the query string is not valid URL encoding"},
		{name: "head bad level", method: "HEAD", target: "/k?level=bogus", wantCode: 400},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			method := tc.method
			if method == "" {
				method = "GET"
			}
			e := newEnv(t, map[string]string{"k": "v"}, nil)
			rec := e.do(t, method, tc.target, "")
			if rec.Code != tc.wantCode {
				t.Fatalf("code = %d, want %d; body %q", rec.Code, tc.wantCode, rec.Body)
			}
			if !strings.Contains(rec.Body.String(), tc.wantIn) {
				t.Errorf("body %q does not contain %q", rec.Body, tc.wantIn)
			}
			reads, _ := e.store.calls()
			switch {
			case tc.wantCode == 400 && len(reads) != 0:
				t.Errorf("Store.Get called with %+v despite the 400", reads)
			case tc.wantCode != 400 && (len(reads) != 1 || reads[0] != tc.wantOpts):
				t.Errorf("Store.Get received %+v, want [%+v]", reads, tc.wantOpts)
			}
		})
	}
}

func TestPutAll(t *testing.T) {
	const badObject = "POST /key takes a non-empty JSON object of string values"
	tests := []struct {
		name     string
		target   string // "/key" when empty
		body     string
		maxValue int64 // Config.MaxValueBytes; 0 for the default
		maxKey   int   // Config.MaxKeyBytes; 0 for the default
		wantCode int
		wantPut  map[string]string // the one PutAll argument, when wantCode is 204
		wantIn   string
	}{
		{name: "raftdb example", body: `{"foo": "bar"}`, wantCode: 204, wantPut: map[string]string{"foo": "bar"}},
		{name: "several pairs in one call", body: `{"foo":"bar","k2":"v2","a/b":"c"}`, wantCode: 204,
			wantPut: map[string]string{"foo": "bar", "k2": "v2", "a/b": "c"}},
		{name: "whitespace", body: " \n{ \"a\" : \"b\" }\n ", wantCode: 204, wantPut: map[string]string{"a": "b"}},
		{name: "escapes", body: `{"\u00e9":"line\nbreak \"q\""}`, wantCode: 204, wantPut: map[string]string{"é": "line\nbreak \"q\""}},
		{name: "empty value", body: `{"e":""}`, wantCode: 204, wantPut: map[string]string{"e": ""}},
		{name: "reserved names are keys", body: `{"status":"s","key/x":"y"}`, wantCode: 204,
			wantPut: map[string]string{"status": "s", "key/x": "y"}},
		{name: "key at set limit", body: `{"abc":"v"}`, maxKey: 3, wantCode: 204, wantPut: map[string]string{"abc": "v"}},
		{name: "body at set limit", body: `{"a":"012345"}`, maxValue: 14, wantCode: 204, wantPut: map[string]string{"a": "012345"}},
		{name: "unknown parameters refused", target: "/key?pretty&x=1", body: `{"a":"b"}`, wantCode: 400},
		{name: "misspelt encoding refused", target: "/key?encodng=base64", body: `{"a":"YQ=="}`, wantCode: 400},
		{name: "ttl refused", target: "/key?ttl=30s", body: `{"a":"b"}`, wantCode: 400, wantIn: "POST /key takes no ttl"},
		{name: "base64", target: "/key?encoding=base64", body: `{"bin":"AP8K","t":"aGk=","e":""}`, wantCode: 204,
			wantPut: map[string]string{"bin": "\x00\xff\n", "t": "hi", "e": ""}},
		{name: "base64 any case", target: "/key?encoding=%20Base64", body: `{"t":"aGk="}`, wantCode: 204, wantPut: map[string]string{"t": "hi"}},
		{name: "base64 of invalid UTF-8", target: "/key?encoding=base64", body: `{"k":"/w=="}`, wantCode: 204, wantPut: map[string]string{"k": "\xff"}},

		{name: "empty body", body: "", wantCode: 400, wantIn: "empty body"},
		{name: "not JSON", body: "foo=bar", wantCode: 400, wantIn: badObject},
		{name: "truncated", body: `{"a":"b"`, wantCode: 400, wantIn: "the body ends inside the object"},
		{name: "truncated after key", body: `{"a":`, wantCode: 400, wantIn: "the body ends inside the object"},
		{name: "trailing comma", body: `{"a":"b",}`, wantCode: 400, wantIn: badObject},
		{name: "unquoted key", body: `{a:"b"}`, wantCode: 400, wantIn: badObject},
		{name: "number key", body: `{1:"b"}`, wantCode: 400, wantIn: badObject},
		{name: "array", body: `[{"a":"b"}]`, wantCode: 400, wantIn: "got an array"},
		{name: "string", body: `"a"`, wantCode: 400, wantIn: "got a string"},
		{name: "number", body: `1`, wantCode: 400, wantIn: "got a number"},
		{name: "null", body: `null`, wantCode: 400, wantIn: "got null"},
		{name: "empty object", body: `{}`, wantCode: 400, wantIn: "empty object"},
		{name: "number value", body: `{"a":"b","n":1}`, wantCode: 400, wantIn: `the value of "n" is a number`},
		{name: "null value", body: `{"a":null}`, wantCode: 400, wantIn: `the value of "a" is null`},
		{name: "bool value", body: `{"a":true}`, wantCode: 400, wantIn: "a boolean"},
		{name: "nested object", body: `{"a":{"b":"c"}}`, wantCode: 400, wantIn: "an object"},
		{name: "nested array", body: `{"a":["b"]}`, wantCode: 400, wantIn: "an array"},
		{name: "empty key", body: `{"a":"b","":"v"}`, wantCode: 400, wantIn: "the key is empty"},
		{name: "key over set limit", body: `{"abcd":"v"}`, maxKey: 3, wantCode: 400, wantIn: "bytes, over the limit of"},
		{name: "key over default limit", body: `{"` + strings.Repeat("k", 4097) + `":"v"}`, wantCode: 400, wantIn: "bytes, over the limit of"},
		{name: "repeated key", body: `{"a":"1","a":"2"}`, wantCode: 400, wantIn: `key "a" given twice`},
		{name: "trailing garbage", body: `{"a":"b"} x`, wantCode: 400, wantIn: "data after the object"},
		{name: "second object", body: `{"a":"b"}{"c":"d"}`, wantCode: 400, wantIn: "data after the object"},
		{name: "body over set limit", body: `{"a":"0123456"}`, maxValue: 14, wantCode: 413},
		// encoding/json would store U+FFFD for each invalid byte.
		{name: "body not UTF-8", body: "{\"a\":\"\xff\"}", wantCode: 400, wantIn: "the body is not valid UTF-8, which JSON requires; send binary values base64-encoded with POST /key?encoding=base64"},
		{name: "key not UTF-8", body: "{\"\xfe\":\"v\"}", wantCode: 400, wantIn: "not valid UTF-8"},
		// ... and U+FFFD for a lone surrogate escape.
		{name: "lone surrogate in a value", body: `{"a":"\ud800"}`, wantCode: 400,
			wantIn: `the escape \ud800 is half of a UTF-16 surrogate pair and stands for no character; send such a value base64-encoded with POST /key?encoding=base64, or such a key with PUT /<key>`},
		{name: "lone surrogate in a key", body: `{"a\uDC00":"v"}`, wantCode: 400, wantIn: `the escape \uDC00 is half of a UTF-16 surrogate pair`},
		{name: "base64 body not UTF-8", target: "/key?encoding=base64", body: "{\"a\":\"\xff\"}", wantCode: 400, wantIn: "not valid UTF-8"},
		{name: "base64 unpadded", target: "/key?encoding=base64", body: `{"ok":"aGk=","t":"aGk"}`, wantCode: 400,
			wantIn: `the value of "t" is not base64 (standard alphabet, padded), as encoding=base64 asks`},
		{name: "base64 URL alphabet", target: "/key?encoding=base64", body: `{"t":"_-8="}`, wantCode: 400, wantIn: `the value of "t" is not base64`},
		{name: "base64 not base64", target: "/key?encoding=base64", body: `{"t":"hello world"}`, wantCode: 400, wantIn: `the value of "t" is not base64`},
		{name: "unknown encoding", target: "/key?encoding=hex", body: `{"t":"00"}`, wantCode: 400, wantIn: `unknown encoding "hex"; encoding must be base64`},
		{name: "empty encoding", target: "/key?encoding=", body: `{"t":"aGk="}`, wantCode: 400, wantIn: "encoding must be base64"},
		{name: "encoding repeated", target: "/key?encoding=base64&encoding=base64", body: `{"t":"aGk="}`, wantCode: 400, wantIn: "encoding given more than once"},
		{name: "malformed query", target: "/key?encoding=%zz", body: `{"t":"aGk="}`, wantCode: 400, wantIn: "the query string is not valid URL encoding"},
		{name: "body over default limit", body: `{"a":"` + strings.Repeat("v", 1572864) + `"}`, wantCode: 413},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, nil, func(c *Config) { c.MaxValueBytes, c.MaxKeyBytes = tc.maxValue, tc.maxKey })
			target := tc.target
			if target == "" {
				target = "/key"
			}
			rec := e.do(t, "POST", target, tc.body)
			if rec.Code != tc.wantCode {
				t.Fatalf("code = %d, want %d; body %q", rec.Code, tc.wantCode, rec.Body)
			}
			if !strings.Contains(rec.Body.String(), tc.wantIn) {
				t.Errorf("body %q does not contain %q", rec.Body, tc.wantIn)
			}
			_, puts := e.store.calls()
			if tc.wantCode != 204 {
				if len(puts) != 0 || len(e.store.snapshot()) != 0 {
					t.Errorf("store written despite %d: %q", rec.Code, puts)
				}
				return
			}
			if got := rec.Header().Get("X-Raft-Index"); got != "11" {
				t.Errorf("X-Raft-Index = %q, want 11", got)
			}
			if len(puts) != 1 {
				t.Fatalf("PutAll called %d times, want once", len(puts))
			}
			got := map[string]string{}
			for k, v := range puts[0] {
				got[k] = string(v)
			}
			if !maps.Equal(got, tc.wantPut) {
				t.Errorf("PutAll(%q), want %q", got, tc.wantPut)
			}
		})
	}
}

func TestJoin(t *testing.T) {
	const badID = "raftkv member ids are positive integers"
	const one = "http://127.0.0.1:12379"
	tests := []struct {
		name        string
		body        string
		wantCode    int
		wantMembers map[uint64]string // after, when wantCode is 204
		wantIn      string
	}{
		{"raftdb, id string", `{"id":"4","httpAddr":"127.0.0.1:42380","raftAddr":"127.0.0.1:42379"}`, 204,
			map[uint64]string{1: one, 4: "http://127.0.0.1:42379"}, ""},
		{"raftdb, id number", `{"id":4,"httpAddr":"127.0.0.1:42380","raftAddr":"127.0.0.1:42379"}`, 204,
			map[uint64]string{1: one, 4: "http://127.0.0.1:42379"}, ""},
		{"hraftd, id string", `{"id":"4","addr":"127.0.0.1:42379"}`, 204,
			map[uint64]string{1: one, 4: "http://127.0.0.1:42379"}, ""},
		{"hraftd, id number", `{"addr":"node4:42379","id":4}`, 204,
			map[uint64]string{1: one, 4: "http://node4:42379"}, ""},
		{"raftAddr wins over addr", `{"id":4,"raftAddr":"a:1","addr":"b:2"}`, 204,
			map[uint64]string{1: one, 4: "http://a:1"}, ""},
		{"empty raftAddr falls back to addr", `{"id":4,"raftAddr":"","addr":"b:2"}`, 204,
			map[uint64]string{1: one, 4: "http://b:2"}, ""},
		{"full URL", `{"id":4,"raftAddr":"http://node4.example:42379/"}`, 204,
			map[uint64]string{1: one, 4: "http://node4.example:42379"}, ""},
		{"full http URL in addr", `{"id":4,"addr":"http://127.0.0.1:42379"}`, 204,
			map[uint64]string{1: one, 4: "http://127.0.0.1:42379"}, ""},
		{"ipv6", `{"id":4,"raftAddr":"[::1]:42379"}`, 204,
			map[uint64]string{1: one, 4: "http://[::1]:42379"}, ""},
		{"spaces trimmed", `{"id":4,"raftAddr":" 127.0.0.1:42379 "}`, 204,
			map[uint64]string{1: one, 4: "http://127.0.0.1:42379"}, ""},
		{"unknown field refused", `{"id":4,"raftAddr":"h:1","voter":true}`, 400, nil, `unknown field "voter"`},
		{"misspelt learner refused", `{"id":4,"raftAddr":"h:1","lerner":true}`, 400, nil, `unknown field "lerner"`},
		{"httpAddr of any type ignored", `{"id":4,"raftAddr":"h:1","httpAddr":5}`, 204,
			map[uint64]string{1: one, 4: "http://h:1"}, ""},
		{"max id", `{"id":18446744073709551615,"raftAddr":"h:1"}`, 204,
			map[uint64]string{1: one, 1<<64 - 1: "http://h:1"}, ""},
		{"existing id", `{"id":1,"raftAddr":"127.0.0.1:42379"}`, 409, nil, "conflict"},

		{"raftdb name", `{"id":"node02","httpAddr":"h:8091","raftAddr":"h:8089"}`, 400, nil, badID},
		{"raftdb name quoted in reply", `{"id":"node02","raftAddr":"h:8089"}`, 400, nil, `got "node02"`},
		{"id zero", `{"id":0,"raftAddr":"h:1"}`, 400, nil, badID},
		{"id zero string", `{"id":"0","raftAddr":"h:1"}`, 400, nil, badID},
		{"id negative", `{"id":-1,"raftAddr":"h:1"}`, 400, nil, badID},
		{"id fraction", `{"id":4.5,"raftAddr":"h:1"}`, 400, nil, badID},
		{"id exponent", `{"id":4e0,"raftAddr":"h:1"}`, 400, nil, badID},
		{"id overflow", `{"id":18446744073709551616,"raftAddr":"h:1"}`, 400, nil, badID},
		{"id empty string", `{"id":"","raftAddr":"h:1"}`, 400, nil, badID},
		{"id bool", `{"id":true,"raftAddr":"h:1"}`, 400, nil, badID},
		{"id null", `{"id":null,"raftAddr":"h:1"}`, 400, nil, "no id given"},
		{"id missing", `{"raftAddr":"h:1"}`, 400, nil, "no id given"},
		{"address missing", `{"id":4,"httpAddr":"h:8091"}`, 400, nil, "raftAddr (or addr), the new member's peer address, is missing"},
		{"addresses empty", `{"id":4,"raftAddr":" ","addr":""}`, 400, nil, "raftAddr (or addr), the new member's peer address, is missing"},
		{"address without port", `{"id":4,"raftAddr":"127.0.0.1"}`, 400, nil, "no port"},
		{"address port zero", `{"id":4,"raftAddr":"h:0"}`, 400, nil, "port"},
		{"address with path", `{"id":4,"raftAddr":"h:1/raft"}`, 400, nil, "path"},
		{"address ftp", `{"id":4,"raftAddr":"ftp://h:1"}`, 400, nil, "http://"},
		{"address with user", `{"id":4,"addr":"u@h:1"}`, 400, nil, "user"},
		{"address not a string", `{"id":4,"raftAddr":42379}`, 400, nil, "raftAddr is a number, not a string"},
		{"empty body", ``, 400, nil, "POST /join takes a JSON object like"},
		{"not JSON", `id=4&addr=h:1`, 400, nil, "POST /join takes a JSON object like"},
		{"array", `[{"id":4,"raftAddr":"h:1"}]`, 400, nil, "the body is an array, not an object"},
		{"trailing garbage", `{"id":4,"raftAddr":"h:1"} x`, 400, nil, "POST /join takes a JSON object like"},
		{"body too large", `{"id":4,"raftAddr":"h:1"}` + strings.Repeat(" ", 4096), 413, nil, "larger than the limit of 4096 bytes"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, nil, nil)
			before := e.cluster.snapshot()
			rec := e.do(t, "POST", "/join", tc.body)
			if rec.Code != tc.wantCode {
				t.Fatalf("code = %d, want %d; body %q", rec.Code, tc.wantCode, rec.Body)
			}
			if !strings.Contains(rec.Body.String(), tc.wantIn) {
				t.Errorf("body %q does not contain %q", rec.Body, tc.wantIn)
			}
			got := e.cluster.snapshot()
			switch {
			case tc.wantCode == 204 && !maps.Equal(got, tc.wantMembers):
				t.Errorf("members = %v, want %v", got, tc.wantMembers)
			case tc.wantCode != 204 && !maps.Equal(got, before):
				t.Errorf("members changed by a failed join: %v", got)
			}
			if len(e.store.snapshot()) != 0 {
				t.Errorf("join touched the store")
			}
		})
	}
}

// TestGetKeyEncoding: GET /key/<k> answers a value that is not UTF-8, which
// a JSON string cannot carry, with 406 unless ?encoding=base64 asks for it
// in base64; what POST /key?encoding=base64 wrote reads back the same.
func TestGetKeyEncoding(t *testing.T) {
	seed := map[string]string{"bin": "\x00\xff\n", "txt": "h\u00e9llo", "\xffkey": "v", "empty": ""}
	const valueNotUTF8 = "the value is not valid UTF-8, which a JSON string cannot carry; add ?encoding=base64, or read the raw bytes with GET /<key>"
	tests := []struct {
		name     string
		method   string // GET when empty
		target   string
		json     bool // Accept: application/json
		wantCode int
		wantBody string // exact
		wantRead bool   // whether the Store was read
	}{
		{name: "text", target: "/key/txt", wantCode: 200, wantBody: "{\"txt\":\"h\u00e9llo\"}", wantRead: true},
		{name: "text base64", target: "/key/txt?encoding=base64", wantCode: 200, wantBody: `{"txt":"aMOpbGxv"}`, wantRead: true},
		{name: "empty base64", target: "/key/empty?encoding=base64", wantCode: 200, wantBody: `{"empty":""}`, wantRead: true},
		{name: "binary base64", target: "/key/bin?encoding=base64", wantCode: 200, wantBody: `{"bin":"AP8K"}`, wantRead: true},
		{name: "binary base64 any case, stale", target: "/key/bin?level=stale&encoding=BASE64", wantCode: 200, wantBody: `{"bin":"AP8K"}`, wantRead: true},
		{name: "binary refused", target: "/key/bin", wantCode: 406, wantBody: valueNotUTF8 + "\n", wantRead: true},
		{name: "binary refused json", target: "/key/bin", json: true, wantCode: 406,
			wantBody: `{"error":"` + valueNotUTF8 + `","code":"not_utf8"}` + "\n", wantRead: true},
		{name: "binary refused head", method: "HEAD", target: "/key/bin", wantCode: 406, wantRead: true},
		{name: "binary raw", target: "/bin", wantCode: 200, wantBody: "\x00\xff\n", wantRead: true},
		{name: "raw ignores encoding", target: "/bin?encoding=base64", wantCode: 200, wantBody: "\x00\xff\n", wantRead: true},
		{name: "key not UTF-8", target: "/key/%FFkey", wantCode: 406,
			wantBody: "the key is not valid UTF-8, which a JSON object cannot carry; read it with GET /<key>\n"},
		{name: "key not UTF-8 base64", target: "/key/%FFkey?encoding=base64", wantCode: 406,
			wantBody: "the key is not valid UTF-8, which a JSON object cannot carry; read it with GET /<key>\n"},
		{name: "key not UTF-8 raw", target: "/%FFkey", wantCode: 200, wantBody: "v", wantRead: true},
		{name: "absent base64", target: "/key/nope?encoding=base64", wantCode: 404, wantBody: "key not found\n", wantRead: true},
		{name: "unknown encoding", target: "/key/bin?encoding=hex", wantCode: 400,
			wantBody: `unknown encoding "hex"; encoding must be base64` + "\n"},
		{name: "encoding repeated", target: "/key/bin?encoding=base64&encoding=base64", wantCode: 400,
			wantBody: "query parameter encoding given more than once\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			method := tc.method
			if method == "" {
				method = "GET"
			}
			e := newEnv(t, seed, nil)
			req := httptest.NewRequest(method, tc.target, nil)
			if tc.json {
				req.Header.Set("Accept", "application/json")
			}
			rec := e.serve(t, req)
			if rec.Code != tc.wantCode {
				t.Fatalf("code = %d, want %d; body %q", rec.Code, tc.wantCode, rec.Body)
			}
			if method != "HEAD" && rec.Body.String() != tc.wantBody { // net/http drops a HEAD's body
				t.Errorf("body %q, want %q", rec.Body, tc.wantBody)
			}
			if reads, _ := e.store.calls(); (len(reads) > 0) != tc.wantRead {
				t.Errorf("Store.Get calls %v, want read %v", reads, tc.wantRead)
			}
		})
	}

	// A round trip: bytes that are not UTF-8 written through POST /key in
	// base64 read back the same, in base64 and raw.
	e := newEnv(t, nil, nil)
	value := []byte{0, 0xff, 0xfe, '"', '\\', '\n', 0xc3}
	b64 := base64.StdEncoding.EncodeToString(value)
	if rec := e.do(t, "POST", "/key?encoding=base64", `{"k/bin":"`+b64+`"}`); rec.Code != 204 {
		t.Fatalf("POST /key?encoding=base64: %d %q", rec.Code, rec.Body)
	}
	if rec := e.do(t, "GET", "/key/k/bin?encoding=base64", ""); rec.Code != 200 || rec.Body.String() != `{"k/bin":"`+b64+`"}` {
		t.Errorf("GET /key/k/bin?encoding=base64: %d %q, want %q", rec.Code, rec.Body, `{"k/bin":"`+b64+`"}`)
	}
	if rec := e.do(t, "GET", "/k/bin", ""); rec.Code != 200 || !bytes.Equal(rec.Body.Bytes(), value) {
		t.Errorf("GET /k/bin: %d %q, want %q", rec.Code, rec.Body, value)
	}
}

// TestLevelOnlyAgrees: the queries levelOnly reads without url.Values
// read as readOptions reads them, and it leaves every other query to
// readOptions.
func TestLevelOnlyAgrees(t *testing.T) {
	for _, raw := range []string{"level=stale", "level=default", "level=consistent", "level=none"} {
		got, ok := levelOnly(raw)
		if !ok {
			t.Fatalf("%q: not read", raw)
		}
		q, err := parseQuery(raw)
		if err != nil {
			t.Fatal(err)
		}
		want, err := readOptions(q)
		if err != nil || got != want {
			t.Errorf("%q: %+v, readOptions %+v (%v)", raw, got, want, err)
		}
	}
	for _, raw := range []string{"", "level=Stale", "level=stale&min_index=1", "level=stale&level=stale",
		"level=%73tale", "level=stale&watch=true", "level=", "level=bogus", "level=stale ", "levelstale"} {
		if _, ok := levelOnly(raw); ok {
			t.Errorf("%q read by levelOnly", raw)
		}
	}
}
