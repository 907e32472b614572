package httpapi

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"
)

// TestParseTxn: both spellings of etcd's shape decode to the same Txn;
// every malformed body is a 400 naming the part at fault.
func TestParseTxn(t *testing.T) {
	h := &handler{cfg: Config{}.withDefaults()}
	tests := []struct {
		name string
		body string
		want Txn
		bad  string // a part of the 400's sentence; "" when accepted
	}{
		{"raftkv spelling", `{"compare":[{"key":"a","target":"value","result":"equal","value":"x"},
			{"key":"b","target":"mod","result":"less","mod_index":5},{"key":"c","target":"create","result":">","create_index":3},
			{"key":"d","target":"exists","result":"=","exists":false}],
			"success":[{"put":{"key":"a","value":"y","ttl":"30s"}},{"delete":{"key":"b"}},{"get":{"key":"c"}}],
			"failure":[{"get":{"key":"a"}}]}`,
			Txn{
				Compares: []Compare{{Key: "a", Target: CompareValue, Op: CompareEqual, Value: []byte("x")},
					{Key: "b", Target: CompareMod, Op: CompareLess, Index: 5}, {Key: "c", Target: CompareCreate, Op: CompareGreater, Index: 3},
					{Key: "d", Target: CompareExists, Op: CompareEqual, Exists: false}},
				Success: []TxnOp{{Type: TxnPut, Key: "a", Value: []byte("y"), TTL: 30 * time.Second}, {Type: TxnDelete, Key: "b"}, {Type: TxnGet, Key: "c"}},
				Failure: []TxnOp{{Type: TxnGet, Key: "a"}},
			}, ""},
		{"etcd spelling", `{"compare":[{"key":"a","target":"MOD","result":"NOT_EQUAL","mod_revision":"5"},
			{"key_base64":"/w==","target":"CREATE","result":"EQUAL","create_revision":0}],
			"success":[{"request_put":{"key":"a","value_base64":"AP8=","ttl":60}},{"request_delete_range":{"key":"b"}},{"request_range":{"key":"c"}}]}`,
			Txn{
				Compares: []Compare{{Key: "a", Target: CompareMod, Op: CompareNotEqual, Index: 5}, {Key: "\xff", Target: CompareCreate, Op: CompareEqual}},
				Success:  []TxnOp{{Type: TxnPut, Key: "a", Value: []byte{0, 0xff}, TTL: time.Minute}, {Type: TxnDelete, Key: "b"}, {Type: TxnGet, Key: "c"}},
			}, ""},
		{"operators", `{"compare":[{"key":"a","target":"value","result":"!=","value":""},{"key":"a","target":"value","result":"<","value_base64":""},{"key":"a","target":"mod","result":"==","mod_index":1}]}`,
			Txn{Compares: []Compare{{Key: "a", Target: CompareValue, Op: CompareNotEqual, Value: []byte{}},
				{Key: "a", Target: CompareValue, Op: CompareLess, Value: []byte{}}, {Key: "a", Target: CompareMod, Op: CompareEqual, Index: 1}}}, ""},
		{"empty", `{}`, Txn{}, ""},
		{"empty put value", `{"success":[{"put":{"key":"a"}}]}`, Txn{Success: []TxnOp{{Type: TxnPut, Key: "a", Value: []byte{}}}}, ""},
		{"no body", ``, Txn{}, "the body is empty"},
		{"not an object", `[]`, Txn{}, "POST /txn takes"},
		{"misspelt branch", `{"sucess":[]}`, Txn{}, `unknown field "sucess"`},
		// A value of the wrong JSON type is named with the type wanted.
		{"exists as a string", `{"compare":[{"key":"a","target":"exists","result":"=","exists":"false"}]}`, Txn{}, "exists is a string, not a boolean"},
		{"compare as an object", `{"compare":{}}`, Txn{}, "compare is an object, not an array"},
		{"value as a number", `{"success":[{"put":{"key":"a","value":5}}]}`, Txn{}, "is a number, not a string"},
		{"trailing data", `{} {}`, Txn{}, "data after the object"},
		{"not utf-8", "{\"success\":[{\"put\":{\"key\":\"a\",\"value\":\"\xff\"}}]}", Txn{}, "not valid UTF-8"},
		{"lone surrogate", `{"success":[{"put":{"key":"a\ud83d","value":"v"}}]}`, Txn{}, `the escape \ud83d is half of a UTF-16 surrogate pair`},
		{"no key", `{"compare":[{"target":"mod","result":"=","mod_index":1}]}`, Txn{}, "compare 0: key is missing"},
		{"empty key", `{"success":[{"get":{"key":""}}]}`, Txn{}, "success 0: the key is empty"},
		{"two keys", `{"success":[{"get":{"key":"a","key_base64":"YQ=="}}]}`, Txn{}, "key or key_base64, not both"},
		{"bad key base64", `{"success":[{"get":{"key_base64":"%%"}}]}`, Txn{}, "key_base64 is not base64"},
		{"no target", `{"compare":[{"key":"a","result":"=","mod_index":1}]}`, Txn{}, "target is missing"},
		{"lease target", `{"compare":[{"key":"a","target":"lease","result":"=","lease":1}]}`, Txn{}, `unknown field "lease"`},
		{"version target", `{"compare":[{"key":"a","target":"version","result":"="}]}`, Txn{}, `target "version"`},
		{"no result", `{"compare":[{"key":"a","target":"mod","mod_index":1}]}`, Txn{}, "result is missing"},
		{"bad result", `{"compare":[{"key":"a","target":"mod","result":"~","mod_index":1}]}`, Txn{}, `result "~"`},
		{"operand missing", `{"compare":[{"key":"a","target":"mod","result":"="}]}`, Txn{}, "needs mod_index"},
		{"foreign operand", `{"compare":[{"key":"a","target":"mod","result":"=","mod_index":1,"value":"x"}]}`, Txn{}, "only its own operand"},
		{"both index names", `{"compare":[{"key":"a","target":"mod","result":"=","mod_index":1,"mod_revision":1}]}`, Txn{}, "not both"},
		{"negative index", `{"compare":[{"key":"a","target":"mod","result":"=","mod_index":-1}]}`, Txn{}, "whole number"},
		{"fraction index", `{"compare":[{"key":"a","target":"create","result":"=","create_index":1.5}]}`, Txn{}, "whole number"},
		{"exists greater", `{"compare":[{"key":"a","target":"exists","result":">","exists":true}]}`, Txn{}, "equal or not_equal only"},
		{"exists missing", `{"compare":[{"key":"a","target":"exists","result":"="}]}`, Txn{}, "needs exists"},
		{"value missing", `{"compare":[{"key":"a","target":"value","result":"="}]}`, Txn{}, "needs value"},
		{"two ops in one", `{"success":[{"put":{"key":"a"},"get":{"key":"a"}}]}`, Txn{}, "got 2"},
		{"empty op", `{"failure":[{}]}`, Txn{}, "failure 0: an operation is one object"},
		{"range", `{"success":[{"request_range":{"key":"a","range_end":"b"}}]}`, Txn{}, `unknown field "range_end"`},
		{"bad ttl", `{"success":[{"put":{"key":"a","ttl":"0s"}}]}`, Txn{}, "ttl must be"},
		{"ttl object", `{"success":[{"put":{"key":"a","ttl":{}}}]}`, Txn{}, "ttl must be"},
		{"too many compares", `{"compare":[` + strings.Repeat(`{"key":"a","target":"exists","result":"=","exists":true},`, 128) +
			`{"key":"a","target":"exists","result":"=","exists":true}]}`, Txn{}, "129 compares, over the limit of 128"},
		{"too many ops", `{"success":[` + strings.Repeat(`{"get":{"key":"a"}},`, 128) + `{"get":{"key":"a"}}]}`, Txn{}, "129 operations in success"},
		{"key too long", `{"success":[{"get":{"key":"` + strings.Repeat("k", 5000) + `"}}]}`, Txn{}, "the key is 5000 bytes"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := h.parseTxn([]byte(tc.body))
			if tc.bad != "" {
				if err == nil || statusOf(err) != 400 || !strings.Contains(humanMessage(err), tc.bad) {
					t.Fatalf("parseTxn = %v, want a 400 saying %q", err, tc.bad)
				}
				return
			}
			if err != nil {
				t.Fatalf("parseTxn: %v", err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("parseTxn =\n%+v\nwant\n%+v", got, tc.want)
			}
		})
	}
	// The limits themselves are accepted.
	body := `{"compare":[` + strings.TrimSuffix(strings.Repeat(`{"key":"a","target":"exists","result":"=","exists":true},`, 128), ",") +
		`],"success":[` + strings.TrimSuffix(strings.Repeat(`{"get":{"key":"a"}},`, 128), ",") + `]}`
	if _, err := h.parseTxn([]byte(body)); err != nil {
		t.Errorf("128 compares and 128 operations: %v", err)
	}
}

// TestTxn: POST /txn applies one Txn under the writer's ids and answers
// which branch ran, its index and one response per operation, values
// that are not UTF-8 in base64.
func TestTxn(t *testing.T) {
	e := newEnv(t, map[string]string{"a": "1", "bin": "\x00\xff"}, nil)
	body := `{"compare":[{"key":"a","target":"value","result":"equal","value":"1"}],
		"success":[{"put":{"key":"b","value":"2"}},{"get":{"key":"b"}},{"get":{"key":"bin"}},{"delete":{"key":"a"}},{"get":{"key":"none"}}],
		"failure":[{"get":{"key":"a"}}]}`
	rec := e.serve(t, request("POST", "/txn", body, "X-Client-ID: w1", "X-Client-Seq: 3"))
	if rec.Code != 200 || rec.Header().Get("X-Raft-Index") != "11" || rec.Header().Get("Content-Type") != "application/json" {
		t.Fatalf("POST /txn: %d %v %s", rec.Code, rec.Header(), rec.Body)
	}
	want := `{"succeeded":true,"index":11,"mod_index":11,"responses":[{"put":{}},{"get":{"key":"b","value":"2","create_index":11,"mod_index":11,"found":true}},` +
		`{"get":{"key":"bin","value_base64":"AP8=","create_index":3,"mod_index":7,"found":true}},{"delete":{}},{"get":{"key":"none","found":false}}]}` + "\n"
	if rec.Body.String() != want {
		t.Errorf("body\n%s\nwant\n%s", rec.Body, want)
	}
	if txns := e.store.txnsCalled(); len(txns) != 1 || txns[0].wo != (WriteOptions{ClientID: "w1", Seq: 3}) {
		t.Errorf("txns %+v, want one under w1/3", txns)
	}
	if got := e.store.snapshot(); !equalMaps(got, map[string]string{"b": "2", "bin": "\x00\xff"}) {
		t.Errorf("store %q", got)
	}
	// The same ids again: the store's first answer.
	rec = e.serve(t, request("POST", "/txn", body, "X-Client-ID: w1", "X-Client-Seq: 3"))
	if rec.Code != 200 || rec.Body.String() != want {
		t.Errorf("repeat: %d %s", rec.Code, rec.Body)
	}
	// The failure branch.
	rec = e.do(t, "POST", "/txn", `{"compare":[{"key":"b","target":"mod","result":"=","mod_index":1}],"failure":[{"get":{"key":"b"}}]}`)
	if want := `{"succeeded":false,"index":12,"responses":[{"get":{"key":"b","value":"2","create_index":11,"mod_index":11,"found":true}}]}` + "\n"; rec.Body.String() != want {
		t.Errorf("failure branch: %s, want %s", rec.Body, want)
	}
}

// TestTxnRefused: a bad body, bad ids, a key of another group and a
// store's error get their answers, and a refused body reaches no store.
func TestTxnRefused(t *testing.T) {
	tests := []struct {
		body    string
		headers []string
		status  int
	}{
		{`{"success":[{"put":{"key":"a"}}]`, nil, 400},
		{`{"success":[{"put":{"key":"a"}}]}`, []string{"X-Client-ID: a b", "X-Client-Seq: 1"}, 400},
		{`{"success":[{"put":{"key":"a"}}]}`, []string{"X-Client-Seq: 1"}, 400},
		{`{"success":[{"put":{"key":"wg-a"}}]}`, []string{"X-Raftkv-Route: client"}, 421},
		{`{"success":[{"put":{"key":"wg-a"}}]}`, nil, 307},
		{`{"success":[{"put":{"key":"a","value":"` + strings.Repeat("v", 200) + `"}}]}`, nil, 413},
	}
	for i, tc := range tests {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			e := newEnv(t, nil, func(c *Config) { c.MaxValueBytes = 100 })
			rec := e.serve(t, request("POST", "/txn", tc.body, tc.headers...))
			if rec.Code != tc.status {
				t.Errorf("status %d (%s), want %d", rec.Code, rec.Body, tc.status)
			}
			if tc.status == 400 || tc.status == 413 {
				if n := len(e.store.txnsCalled()); n != 0 {
					t.Errorf("%d Txn calls for a refused body", n)
				}
			}
		})
	}
	e := newEnv(t, nil, func(c *Config) { c.RequestTimeout = 20 * time.Millisecond })
	e.store.hook = blockUntilDone
	rec := e.serve(t, request("POST", "/txn", `{}`, "Accept: application/json"))
	var body errorJSON
	if err := json.Unmarshal(rec.Body.Bytes(), &body); rec.Code != 504 || err != nil || body.Code != "outcome_unknown" {
		t.Errorf("a store that never answers: %d %s, want 504 outcome_unknown", rec.Code, rec.Body)
	}
	if rec := e.do(t, "GET", "/txn", ""); rec.Code != 504 {
		t.Errorf("GET /txn reads the key txn: %d, want the store's 504", rec.Code)
	}
	if rec := e.do(t, "PUT", "/txn", "x"); rec.Code != 504 {
		t.Errorf("PUT /txn writes the key txn: %d, want the store's 504", rec.Code)
	}
}
