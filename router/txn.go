package router

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strings"
	"unicode/utf8"

	"github.com/raftkv/raftkv/internal/kvjson"
)

// maxTxnOps is a member's limit of compares, and of operations per
// branch; the router counts them only to bound its own work.
const maxTxnOps = 128

// txnKeys are the parts of a POST /txn body that name keys, under
// raftkv's names and etcd's.
type (
	txnKeyRef struct {
		Key       *string `json:"key"`
		KeyBase64 *string `json:"key_base64"`
	}
	txnOpRef struct {
		Put                *txnKeyRef `json:"put"`
		RequestPut         *txnKeyRef `json:"request_put"`
		Delete             *txnKeyRef `json:"delete"`
		RequestDeleteRange *txnKeyRef `json:"request_delete_range"`
		Get                *txnKeyRef `json:"get"`
		RequestRange       *txnKeyRef `json:"request_range"`
	}
	txnRef struct {
		Compare []txnKeyRef `json:"compare"`
		Success []txnOpRef  `json:"success"`
		Failure []txnOpRef  `json:"failure"`
	}
)

// txn serves POST /txn: the body goes as is to the group of its keys,
// which must be one group (else 400 cross_group), and the member's answer
// comes back as is.
func (h *handler) txn(w http.ResponseWriter, r *http.Request) error {
	if _, err := writeParams(r, "POST /txn"); err != nil {
		return err
	}
	if hasCondition(r.Header) {
		return bad(`a transaction's conditions are its "compare" list, as {"key":"k","target":"mod","result":"=","mod_index":N}: POST /txn takes no If-Match or If-None-Match`)
	}
	opts, err := writeOptions(r)
	if err != nil {
		return err
	}
	body, err := h.readBody(w, r)
	if err != nil {
		return err
	}
	keys, err := txnKeys(body)
	if err != nil {
		return err
	}
	answer, err := h.c.TxnBody(r.Context(), body, keys, opts...)
	if err != nil {
		return err
	}
	writeBody(w, r, http.StatusOK, "application/json", answer)
	return nil
}

// txnKeys returns the keys body names, for routing; the member checks the
// rest.
func txnKeys(body []byte) ([]string, error) {
	// What the member refuses, refused here, before encoding/json makes
	// U+FFFD of it and the keys route elsewhere.
	if !utf8.Valid(body) {
		return nil, bad("POST /txn takes JSON, which is UTF-8: the body is not valid UTF-8; send bytes as key_base64 and value_base64")
	}
	if esc, ok := kvjson.LoneSurrogate(body); ok {
		return nil, bad("POST /txn: the escape %s is half of a UTF-16 surrogate pair and stands for no character; send bytes as key_base64 and value_base64", esc)
	}
	var t txnRef
	if err := json.Unmarshal(body, &t); err != nil {
		return nil, bad(`POST /txn takes a JSON object {"compare":[...],"success":[...],"failure":[...]}: %v`, err)
	}
	if len(t.Compare) > maxTxnOps || len(t.Success) > maxTxnOps || len(t.Failure) > maxTxnOps {
		return nil, bad("a transaction takes at most %d compares and %d operations per branch", maxTxnOps, maxTxnOps)
	}
	if err := checkTxnOps(body); err != nil {
		return nil, err
	}
	var keys []string
	add := func(ref *txnKeyRef) error {
		switch {
		case ref == nil:
			return nil
		case ref.Key != nil:
			keys = append(keys, *ref.Key)
		case ref.KeyBase64 != nil:
			k, err := base64.StdEncoding.DecodeString(*ref.KeyBase64)
			if err != nil {
				return bad("key_base64 %q is not base64 (standard alphabet, padded)", *ref.KeyBase64)
			}
			keys = append(keys, string(k))
		default:
			return bad("every compare and operation of a transaction names a key (key or key_base64)")
		}
		return nil
	}
	for i := range t.Compare {
		if err := add(&t.Compare[i]); err != nil {
			return nil, err
		}
	}
	for _, branch := range [][]txnOpRef{t.Success, t.Failure} {
		for _, op := range branch {
			for _, ref := range []*txnKeyRef{op.Put, op.RequestPut, op.Delete, op.RequestDeleteRange, op.Get, op.RequestRange} {
				if err := add(ref); err != nil {
					return nil, err
				}
			}
		}
	}
	if len(keys) == 0 {
		return nil, bad("a transaction names no key")
	}
	return keys, nil
}

// txnOpNames are the operations a member takes, under raftkv's names and
// etcd's.
var txnOpNames = []string{"put", "delete", "get", "request_put", "request_delete_range", "request_range"}

// jsonName is the one of names that encoding/json would decode field into
// (it matches names in any case), or "".
func jsonName(field string, names ...string) string {
	for _, n := range names {
		if strings.EqualFold(field, n) {
			return n
		}
	}
	return ""
}

// checkTxnOps refuses, with a member's words, an unknown field of the
// body or of an operation, and an operation that is not exactly one of
// txnOpNames. Those name no key for routing, so without this check a
// transaction made only of them would be refused as naming no key
// rather than for what is wrong.
func checkTxnOps(body []byte) error {
	const takes = `POST /txn takes a JSON object {"compare":[...],"success":[...],"failure":[...]}`
	var top map[string]json.RawMessage
	if err := json.Unmarshal(body, &top); err != nil {
		return bad("%s: %v", takes, err)
	}
	for field, raw := range top {
		branch := jsonName(field, "compare", "success", "failure")
		switch branch {
		case "":
			return bad("%s; unknown field %q", takes, field)
		case "compare":
			continue
		}
		var ops []map[string]json.RawMessage
		if err := json.Unmarshal(raw, &ops); err != nil {
			return bad("%s: %s: %v", takes, branch, err)
		}
		for i, op := range ops {
			for name := range op {
				if jsonName(name, txnOpNames...) == "" {
					return bad("%s; unknown field %q", takes, name)
				}
			}
			if len(op) != 1 {
				return bad(`%s; %s %d: an operation is one object of "put", "delete" or "get" (or "request_put", "request_delete_range", "request_range"); got %d`,
					takes, branch, i, len(op))
			}
		}
	}
	return nil
}
