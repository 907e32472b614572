package httpapi

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/raftkv/raftkv/internal/kvjson"
)

// This file holds POST /txn: a transaction in etcd's JSON shape, in
// raftkv's spelling and in that of etcd's JSON gateway.

// Limits of one transaction, as etcd's default --max-txn-ops.
const (
	maxTxnCompares = 128
	maxTxnOps      = 128
)

// txnRequest is POST /txn's body.
type txnRequest struct {
	Compare []txnCompare `json:"compare"`
	Success []txnOpJSON  `json:"success"`
	Failure []txnOpJSON  `json:"failure"`
}

// txnCompare is one compare: a key (key, or key_base64 for bytes), a
// target, a result (the operator) and the operand of the target.
type txnCompare struct {
	Key         *string `json:"key"`
	KeyBase64   *string `json:"key_base64"`
	Target      string  `json:"target"`
	Result      string  `json:"result"`
	Value       *string `json:"value"`
	ValueBase64 *string `json:"value_base64"`
	// The index operands, with etcd's names as well.
	ModIndex       *flexUint `json:"mod_index"`
	ModRevision    *flexUint `json:"mod_revision"`
	CreateIndex    *flexUint `json:"create_index"`
	CreateRevision *flexUint `json:"create_revision"`
	Exists         *bool     `json:"exists"`
}

// txnOpJSON is one operation, under raftkv's name or etcd's.
type txnOpJSON struct {
	Put                *txnPutJSON `json:"put"`
	RequestPut         *txnPutJSON `json:"request_put"`
	Delete             *txnKeyJSON `json:"delete"`
	RequestDeleteRange *txnKeyJSON `json:"request_delete_range"`
	Get                *txnKeyJSON `json:"get"`
	RequestRange       *txnKeyJSON `json:"request_range"`
}

type txnPutJSON struct {
	Key         *string         `json:"key"`
	KeyBase64   *string         `json:"key_base64"`
	Value       *string         `json:"value"`
	ValueBase64 *string         `json:"value_base64"`
	TTL         json.RawMessage `json:"ttl"` // "30s" or 30 (seconds)
}

type txnKeyJSON struct {
	Key       *string `json:"key"`
	KeyBase64 *string `json:"key_base64"`
}

// flexUint is an index as a JSON number or, as etcd's gateway writes
// 64-bit integers, a decimal string.
type flexUint uint64

func (f *flexUint) UnmarshalJSON(b []byte) error {
	s := string(b)
	if len(s) >= 2 && s[0] == '"' && s[len(s)-1] == '"' {
		s = s[1 : len(s)-1]
	}
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil || s == "" || s[0] == '+' {
		return fmt.Errorf("an index must be a whole number from 0 to 18446744073709551615, got %s", truncate(string(b), 40))
	}
	*f = flexUint(n)
	return nil
}

// txnResponseJSON is POST /txn's answer.
type txnResponseJSON struct {
	Succeeded bool   `json:"succeeded"`
	Index     uint64 `json:"index"`
	// ModIndex is the version the branch's puts gave their keys (absent
	// when it put none).
	ModIndex  uint64            `json:"mod_index,omitempty"`
	Responses []txnOpResultJSON `json:"responses"`
}

// txnOpResultJSON is one operation's result: {"get":{...}}, {"put":{}}
// or {"delete":{}}.
type txnOpResultJSON struct {
	Get    *txnGetJSON `json:"get,omitempty"`
	Put    *struct{}   `json:"put,omitempty"`
	Delete *struct{}   `json:"delete,omitempty"`
}

type txnGetJSON struct {
	kvJSON
	Found bool `json:"found"`
}

// kvJSON is a key and its versions in a JSON answer (kvjson.KV).
type kvJSON = kvjson.KV

// kvOf is kv in a JSON answer; withValue says whether to include the
// value (not for keys_only).
func kvOf(kv KeyValue, withValue bool) kvJSON {
	return kvjson.Of(kv.Key, kv.Value, kv.CreateIndex, kv.ModIndex, kv.TTL, withValue)
}

// txnNoConditionHeaders refuses If-Match and If-None-Match on POST /txn,
// which would otherwise be applied without them.
const txnNoConditionHeaders = `a transaction's conditions are its "compare" list, as {"key":"k","target":"mod","result":"=","mod_index":N}: POST /txn takes no If-Match or If-None-Match`

// txn serves POST /txn.
func (h *handler) txn(w http.ResponseWriter, r *http.Request) error {
	if err := noParams(r, "POST /txn"); err != nil {
		return err
	}
	if hasCondition(r.Header) {
		return withDetail(ErrBadPrecondition, txnNoConditionHeaders)
	}
	wo, err := WriteOptionsOf(r.Header)
	if err != nil {
		return err
	}
	body, err := readBody(w, r, h.cfg.MaxValueBytes)
	if err != nil {
		return err
	}
	t, err := h.parseTxn(body)
	if err != nil {
		return err
	}
	ctx, cancel := h.callContext(r.Context())
	defer cancel()
	res, err := h.cfg.Store.Txn(ctx, t, wo)
	if err != nil {
		return err
	}
	out, err := txnResponse(t, res)
	if err != nil {
		return err
	}
	w.Header()["X-Raft-Index"] = []string{strconv.FormatUint(res.Index, 10)}
	return writeJSON(w, r, http.StatusOK, out)
}

// txnResponse pairs res with the operations of the branch t took.
func txnResponse(t Txn, res TxnResult) (txnResponseJSON, error) {
	ops := t.Failure
	if res.Succeeded {
		ops = t.Success
	}
	out := txnResponseJSON{Succeeded: res.Succeeded, Index: res.Index, ModIndex: res.ModIndex, Responses: make([]txnOpResultJSON, 0, len(ops))}
	gets := res.Gets
	for _, op := range ops {
		switch op.Type {
		case TxnPut:
			out.Responses = append(out.Responses, txnOpResultJSON{Put: &struct{}{}})
		case TxnDelete:
			out.Responses = append(out.Responses, txnOpResultJSON{Delete: &struct{}{}})
		case TxnGet:
			if len(gets) == 0 {
				return out, fmt.Errorf("httpapi: the store answered %d gets for a branch of more", len(res.Gets))
			}
			g := txnGetJSON{kvJSON: kvJSON{Key: op.Key}, Found: gets[0].Found}
			if g.Found {
				g.kvJSON = kvOf(gets[0].KeyValue, true)
			} else if !utf8.ValidString(op.Key) {
				g.kvJSON = kvJSON{KeyBase64: base64.StdEncoding.EncodeToString([]byte(op.Key))}
			}
			gets = gets[1:]
			out.Responses = append(out.Responses, txnOpResultJSON{Get: &g})
		}
	}
	return out, nil
}

// parseTxn decodes and checks POST /txn's body. Unknown fields are
// refused, so that a misspelt "sucess" is not taken for an empty branch.
func (h *handler) parseTxn(body []byte) (Txn, error) {
	if !utf8.Valid(body) {
		return Txn{}, withMore(ErrBadTxn, "the body is not valid UTF-8, which JSON requires; send bytes as key_base64 and value_base64")
	}
	if esc, ok := kvjson.LoneSurrogate(body); ok {
		return Txn{}, withMore(ErrBadTxn, "the escape %s is half of a UTF-16 surrogate pair and stands for no character; send bytes as key_base64 and value_base64", esc)
	}
	var req txnRequest
	if trailing, err := decodeStrict(body, &req); err != nil {
		if errors.Is(err, io.EOF) {
			return Txn{}, withMore(ErrBadTxn, "the body is empty")
		}
		return Txn{}, withMore(ErrBadTxn, "%s", jsonProblem(err))
	} else if trailing {
		return Txn{}, withMore(ErrBadTxn, "data after the object")
	}
	switch {
	case len(req.Compare) > maxTxnCompares:
		return Txn{}, withMore(ErrBadTxn, "%d compares, over the limit of %d", len(req.Compare), maxTxnCompares)
	case len(req.Success) > maxTxnOps:
		return Txn{}, withMore(ErrBadTxn, "%d operations in success, over the limit of %d", len(req.Success), maxTxnOps)
	case len(req.Failure) > maxTxnOps:
		return Txn{}, withMore(ErrBadTxn, "%d operations in failure, over the limit of %d", len(req.Failure), maxTxnOps)
	}
	var t Txn
	for i, c := range req.Compare {
		cmp, err := h.parseCompare(c)
		if err != nil {
			return Txn{}, withMore(ErrBadTxn, "compare %d: %s", i, humanMessage(err))
		}
		t.Compares = append(t.Compares, cmp)
	}
	var err error
	if t.Success, err = h.parseTxnOps("success", req.Success); err != nil {
		return Txn{}, err
	}
	if t.Failure, err = h.parseTxnOps("failure", req.Failure); err != nil {
		return Txn{}, err
	}
	return t, nil
}

// problem is a reason a part of a transaction is refused; parseTxn puts
// it in ErrBadTxn's sentence.
type problem string

func (p problem) Error() string        { return string(p) }
func (p problem) HumanMessage() string { return string(p) }

func problemf(format string, args ...any) error { return problem(fmt.Sprintf(format, args...)) }

func (h *handler) parseCompare(c txnCompare) (Compare, error) {
	key, err := h.txnKey(c.Key, c.KeyBase64)
	if err != nil {
		return Compare{}, err
	}
	cmp := Compare{Key: key}
	switch strings.ToLower(strings.TrimSpace(c.Result)) {
	case "equal", "=", "==":
		cmp.Op = CompareEqual
	case "not_equal", "!=":
		cmp.Op = CompareNotEqual
	case "greater", ">":
		cmp.Op = CompareGreater
	case "less", "<":
		cmp.Op = CompareLess
	case "":
		return Compare{}, problemf(`result is missing: one of "equal", "not_equal", "greater", "less" (or "=", "!=", ">", "<")`)
	default:
		return Compare{}, problemf(`result %q: want one of "equal", "not_equal", "greater", "less" (or "=", "!=", ">", "<")`, truncate(c.Result, 40))
	}
	value := c.Value != nil || c.ValueBase64 != nil
	mod := c.ModIndex != nil || c.ModRevision != nil
	create := c.CreateIndex != nil || c.CreateRevision != nil
	// operands counts the operands given: a compare has exactly its
	// target's.
	operands := 0
	for _, given := range []bool{value, mod, create, c.Exists != nil} {
		if given {
			operands++
		}
	}
	target := strings.ToLower(strings.TrimSpace(c.Target))
	switch target {
	case "value":
		cmp.Target = CompareValue
		if !value {
			return Compare{}, problemf("target value needs value (or value_base64)")
		}
		if cmp.Value, err = txnValue(c.Value, c.ValueBase64); err != nil {
			return Compare{}, err
		}
	case "mod":
		cmp.Target = CompareMod
		if cmp.Index, err = oneIndex("mod_index", c.ModIndex, "mod_revision", c.ModRevision); err != nil {
			return Compare{}, err
		}
	case "create":
		cmp.Target = CompareCreate
		if cmp.Index, err = oneIndex("create_index", c.CreateIndex, "create_revision", c.CreateRevision); err != nil {
			return Compare{}, err
		}
	case "exists":
		cmp.Target = CompareExists
		if c.Exists == nil {
			return Compare{}, problemf("target exists needs exists (true or false)")
		}
		if cmp.Op != CompareEqual && cmp.Op != CompareNotEqual {
			return Compare{}, problemf("target exists compares with equal or not_equal only")
		}
		cmp.Exists = *c.Exists
	case "":
		return Compare{}, problemf(`target is missing: one of "value", "mod", "create", "exists"`)
	default:
		return Compare{}, problemf(`target %q: want one of "value", "mod", "create", "exists"`, truncate(c.Target, 40))
	}
	if operands != 1 {
		return Compare{}, problemf("target %s takes only its own operand (%s)", target, operandOf(target))
	}
	return cmp, nil
}

// operandOf names the operand field of a compare target.
func operandOf(target string) string {
	switch target {
	case "value":
		return "value or value_base64"
	case "mod":
		return "mod_index"
	case "create":
		return "create_index"
	}
	return "exists"
}

// oneIndex returns the index given under one of two names.
func oneIndex(name string, v *flexUint, alias string, w *flexUint) (uint64, error) {
	switch {
	case v != nil && w != nil:
		return 0, problemf("give %s or %s, not both", name, alias)
	case v != nil:
		return uint64(*v), nil
	case w != nil:
		return uint64(*w), nil
	}
	return 0, problemf("target needs %s", name)
}

// txnKey returns the key given as text or base64; exactly one is given,
// and the key has a key's limits.
func (h *handler) txnKey(text, b64 *string) (string, error) {
	var key string
	switch {
	case text != nil && b64 != nil:
		return "", problemf("give key or key_base64, not both")
	case text != nil:
		key = *text
	case b64 != nil:
		b, err := base64.StdEncoding.DecodeString(*b64)
		if err != nil {
			return "", problemf("key_base64 is not base64 (standard alphabet, padded)")
		}
		key = string(b)
	default:
		return "", problemf("key is missing")
	}
	if err := h.checkKey(key); err != nil {
		return "", problemf("%s", humanMessage(err))
	}
	return key, nil
}

// txnValue returns the value given as text or base64, at most one of
// them; neither is the empty value.
func txnValue(text, b64 *string) ([]byte, error) {
	switch {
	case text != nil && b64 != nil:
		return nil, problemf("give value or value_base64, not both")
	case b64 != nil:
		b, err := base64.StdEncoding.DecodeString(*b64)
		if err != nil {
			return nil, problemf("value_base64 is not base64 (standard alphabet, padded)")
		}
		return b, nil
	case text != nil:
		return []byte(*text), nil
	}
	return []byte{}, nil
}

// parseTxnOps checks one branch.
func (h *handler) parseTxnOps(branch string, in []txnOpJSON) ([]TxnOp, error) {
	var ops []TxnOp
	for i, o := range in {
		op, err := h.parseTxnOp(o)
		if err != nil {
			return nil, withMore(ErrBadTxn, "%s %d: %s", branch, i, humanMessage(err))
		}
		ops = append(ops, op)
	}
	return ops, nil
}

func (h *handler) parseTxnOp(o txnOpJSON) (TxnOp, error) {
	var (
		n   int
		put *txnPutJSON
		del *txnKeyJSON
		get *txnKeyJSON
	)
	for _, p := range []*txnPutJSON{o.Put, o.RequestPut} {
		if p != nil {
			n, put = n+1, p
		}
	}
	for _, k := range []*txnKeyJSON{o.Delete, o.RequestDeleteRange} {
		if k != nil {
			n, del = n+1, k
		}
	}
	for _, k := range []*txnKeyJSON{o.Get, o.RequestRange} {
		if k != nil {
			n, get = n+1, k
		}
	}
	if n != 1 {
		return TxnOp{}, problemf(`an operation is one object of "put", "delete" or "get" (or "request_put", "request_delete_range", "request_range"); got %d`, n)
	}
	switch {
	case put != nil:
		key, err := h.txnKey(put.Key, put.KeyBase64)
		if err != nil {
			return TxnOp{}, err
		}
		value, err := txnValue(put.Value, put.ValueBase64)
		if err != nil {
			return TxnOp{}, err
		}
		ttl, err := txnTTL(put.TTL)
		if err != nil {
			return TxnOp{}, err
		}
		return TxnOp{Type: TxnPut, Key: key, Value: value, TTL: ttl}, nil
	case del != nil:
		key, err := h.txnKey(del.Key, del.KeyBase64)
		return TxnOp{Type: TxnDelete, Key: key}, err
	}
	key, err := h.txnKey(get.Key, get.KeyBase64)
	return TxnOp{Type: TxnGet, Key: key}, err
}

// txnTTL reads a put's ttl: absent or null for none, a duration string
// ("30s") or a whole number of seconds.
func txnTTL(raw json.RawMessage) (time.Duration, error) {
	s := strings.TrimSpace(string(raw))
	if s == "" || s == "null" {
		return 0, nil
	}
	if s[0] == '"' {
		if err := json.Unmarshal(raw, &s); err != nil {
			return 0, problemf("ttl is not a JSON string")
		}
	}
	d, err := parseTTL(s)
	if err != nil {
		return 0, problemf("%s", humanMessage(err))
	}
	return d, nil
}
