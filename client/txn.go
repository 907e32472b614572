package client

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"time"
	"unicode/utf8"

	"github.com/raftkv/raftkv/internal/kvjson"
)

// CompareTarget is what a Compare looks at.
type CompareTarget string

// Compare targets, as POST /txn names them.
const (
	TargetValue  CompareTarget = "value"
	TargetMod    CompareTarget = "mod"
	TargetCreate CompareTarget = "create"
	TargetExists CompareTarget = "exists"
)

// CompareOp is how a Compare compares; Greater and Less compare indexes
// numerically and values bytewise.
type CompareOp string

// Compare operators, as POST /txn names them.
const (
	Equal    CompareOp = "equal"
	NotEqual CompareOp = "not_equal"
	Greater  CompareOp = "greater"
	Less     CompareOp = "less"
)

// Compare is one condition of a Txn. Build it with ValueIs, ModIs,
// CreateIs or Exists.
type Compare struct {
	Key    string
	Target CompareTarget
	Op     CompareOp
	Value  []byte // TargetValue
	Index  uint64 // TargetMod, TargetCreate; an absent key has 0 for both
	Exists bool   // TargetExists, with Equal or NotEqual
}

// ValueIs compares key's value with value (an absent key's value compares
// false whatever the operator, as in etcd).
func ValueIs(key string, op CompareOp, value []byte) Compare {
	return Compare{Key: key, Target: TargetValue, Op: op, Value: value}
}

// ModIs compares key's ModIndex with mod.
func ModIs(key string, op CompareOp, mod uint64) Compare {
	return Compare{Key: key, Target: TargetMod, Op: op, Index: mod}
}

// CreateIs compares key's CreateIndex with index.
func CreateIs(key string, op CompareOp, index uint64) Compare {
	return Compare{Key: key, Target: TargetCreate, Op: op, Index: index}
}

// Exists holds when key's existence is exists.
func Exists(key string, exists bool) Compare {
	return Compare{Key: key, Target: TargetExists, Op: Equal, Exists: exists}
}

// TxnOpType is what a TxnOp does.
type TxnOpType uint8

// Transaction operations.
const (
	TxnPut TxnOpType = iota + 1
	TxnDelete
	TxnGet
)

// TxnOp is one operation of a Txn branch: build it with OpPut, OpDelete
// or OpGet.
type TxnOp struct {
	Type  TxnOpType
	Key   string
	Value []byte        // TxnPut
	TTL   time.Duration // TxnPut; 0: permanent
}

// OpPut sets key to value (for ttl, if not 0).
func OpPut(key string, value []byte, ttl time.Duration) TxnOp {
	return TxnOp{Type: TxnPut, Key: key, Value: value, TTL: ttl}
}

// OpDelete removes key.
func OpDelete(key string) TxnOp { return TxnOp{Type: TxnDelete, Key: key} }

// OpGet reads key, as the transaction's operations before it left it.
func OpGet(key string) TxnOp { return TxnOp{Type: TxnGet, Key: key} }

// Txn is a transaction: if every Compare holds, Success is applied, else
// Failure; atomically, as one write of the keys' group. In a sharded
// deployment every key (of the compares and both branches) must be in
// buckets of one group ({tag} hash tags put keys together), else
// ErrCrossGroup before anything is sent.
type Txn struct {
	Compares         []Compare
	Success, Failure []TxnOp
}

// TxnResponse is what a Txn did.
type TxnResponse struct {
	// Succeeded reports that the compares held and Success was applied.
	Succeeded bool
	// Index is the raft index the transaction applied at.
	Index uint64
	// ModIndex is the version the branch taken gave the keys it put (0:
	// it put none, or an older member did not say): what a later
	// WithIfMatch or mod compare names. It is Index, or above it when
	// Index had already given a version in the key's bucket (group
	// commit puts several writes in one entry) or the bucket came from a
	// group with a longer log.
	ModIndex uint64
	// Responses has one entry per operation of the branch taken, in order.
	Responses []TxnOpResponse
}

// TxnOpResponse is one operation's result; for a TxnGet, the key and
// whether it was found.
type TxnOpResponse struct {
	Type  TxnOpType
	KV    KeyValue // TxnGet, when Found
	Found bool
}

// Txn applies t; see Txn. Like other writes, it carries the Client's id
// and a sequence number and is retried, a member with a dedup table
// applying it once.
func (c *Client) Txn(ctx context.Context, t Txn, opts ...WriteOption) (TxnResponse, error) {
	body, keys, err := t.encode()
	if err != nil {
		return TxnResponse{}, err
	}
	cl := &call{op: "txn", method: http.MethodPost, key: keys[0], keys: keys, path: "/txn", body: body, write: true, ok: []int{http.StatusOK}}
	for _, opt := range opts {
		opt(cl)
	}
	if cl.conds > 0 || cl.ttl != 0 {
		return TxnResponse{}, badInput("txn", keys[0], "a Txn states its conditions as Compares and TTLs in its puts")
	}
	if (cl.seq != 0 || cl.id != "") && (!ValidClientID(cl.id) || cl.seq == 0) {
		return TxnResponse{}, badInput("txn", keys[0], "WithSeq(%q, %d): want an id of 1 to 64 of [A-Za-z0-9._-] and a seq of at least 1", cl.id, cl.seq)
	}
	rep, err := c.do(ctx, cl)
	if err != nil {
		return TxnResponse{}, err
	}
	var out txnResponseJSON
	if err := json.Unmarshal(rep.body, &out); err != nil {
		// A success: the transaction was applied, whatever it answered.
		return TxnResponse{}, &Error{Op: "txn", Key: keys[0], Endpoint: rep.endpoint, Status: rep.status, Code: CodeInternal,
			Message: "unreadable POST /txn answer", Err: err, MaybeApplied: true}
	}
	res := TxnResponse{Succeeded: out.Succeeded, Index: out.Index, ModIndex: out.ModIndex}
	for _, r := range out.Responses {
		switch {
		case r.Get != nil:
			kv, err := r.Get.keyValue()
			if err != nil {
				return TxnResponse{}, &Error{Op: "txn", Key: keys[0], Endpoint: rep.endpoint, Status: rep.status, Code: CodeInternal,
					Message: "unreadable POST /txn answer", Err: err, MaybeApplied: true}
			}
			res.Responses = append(res.Responses, TxnOpResponse{Type: TxnGet, KV: kv, Found: r.Get.Found})
		case r.Put != nil:
			res.Responses = append(res.Responses, TxnOpResponse{Type: TxnPut})
		default:
			res.Responses = append(res.Responses, TxnOpResponse{Type: TxnDelete})
		}
	}
	return res, nil
}

// Wire forms of POST /txn (see the README).
type (
	txnJSON struct {
		Compare []compareJSON `json:"compare"`
		Success []txnOpJSON   `json:"success"`
		Failure []txnOpJSON   `json:"failure"`
	}
	compareJSON struct {
		keyJSON
		Target      string  `json:"target"`
		Result      string  `json:"result"`
		Value       *string `json:"value,omitempty"`
		ValueBase64 *string `json:"value_base64,omitempty"`
		ModIndex    *uint64 `json:"mod_index,omitempty"`
		CreateIndex *uint64 `json:"create_index,omitempty"`
		Exists      *bool   `json:"exists,omitempty"`
	}
	keyJSON struct {
		Key       *string `json:"key,omitempty"`
		KeyBase64 *string `json:"key_base64,omitempty"`
	}
	putJSON struct {
		keyJSON
		Value       *string `json:"value,omitempty"`
		ValueBase64 *string `json:"value_base64,omitempty"`
		TTL         string  `json:"ttl,omitempty"`
	}
	txnOpJSON struct {
		Put    *putJSON `json:"put,omitempty"`
		Delete *keyJSON `json:"delete,omitempty"`
		Get    *keyJSON `json:"get,omitempty"`
	}
	txnResponseJSON struct {
		Succeeded bool   `json:"succeeded"`
		Index     uint64 `json:"index"`
		ModIndex  uint64 `json:"mod_index"`
		Responses []struct {
			Get    *kvJSON   `json:"get"`
			Put    *struct{} `json:"put"`
			Delete *struct{} `json:"delete"`
		} `json:"responses"`
	}
	// kvJSON is a key in a JSON answer (txn gets, listings, watch
	// events), as members and routers write it; Found is a txn get's.
	kvJSON struct {
		kvjson.KV
		Found bool `json:"found"`
	}
)

// keyValue decodes j.
func (j *kvJSON) keyValue() (KeyValue, error) {
	kv := KeyValue{Key: j.Key, CreateIndex: j.CreateIndex, ModIndex: j.ModIndex}
	if j.KeyBase64 != "" {
		b, err := base64.StdEncoding.DecodeString(j.KeyBase64)
		if err != nil {
			return KeyValue{}, fmt.Errorf("key_base64: %w", err)
		}
		kv.Key = string(b)
	}
	switch {
	case j.ValueBase64 != nil:
		b, err := base64.StdEncoding.DecodeString(*j.ValueBase64)
		if err != nil {
			return KeyValue{}, fmt.Errorf("value_base64: %w", err)
		}
		kv.Value = b
	case j.Value != nil:
		kv.Value = []byte(*j.Value)
	}
	if j.TTL != nil && *j.TTL > 0 {
		kv.TTL = secondsDuration(*j.TTL)
	}
	return kv, nil
}

// wireKey is key as text, or base64 when it is not UTF-8.
func wireKey(key string) keyJSON {
	if utf8.ValidString(key) {
		return keyJSON{Key: &key}
	}
	b := base64.StdEncoding.EncodeToString([]byte(key))
	return keyJSON{KeyBase64: &b}
}

// wireValue is value as text, or base64 when it is not UTF-8.
func wireValue(value []byte) (text, b64 *string) {
	if utf8.Valid(value) {
		s := string(value)
		return &s, nil
	}
	s := base64.StdEncoding.EncodeToString(value)
	return nil, &s
}

// encode checks t and returns its body and its keys (sorted, distinct).
func (t Txn) encode() ([]byte, []string, error) {
	var keys []string
	addKey := func(k string) error {
		if k == "" {
			return badInput("txn", "", "empty key")
		}
		keys = append(keys, k)
		return nil
	}
	body := txnJSON{Compare: []compareJSON{}, Success: []txnOpJSON{}, Failure: []txnOpJSON{}}
	for _, cmp := range t.Compares {
		if err := addKey(cmp.Key); err != nil {
			return nil, nil, err
		}
		j := compareJSON{keyJSON: wireKey(cmp.Key), Target: string(cmp.Target), Result: string(cmp.Op)}
		switch cmp.Target {
		case TargetValue:
			j.Value, j.ValueBase64 = wireValue(cmp.Value)
		case TargetMod:
			j.ModIndex = &cmp.Index
		case TargetCreate:
			j.CreateIndex = &cmp.Index
		case TargetExists:
			j.Exists = &cmp.Exists
		default:
			return nil, nil, badInput("txn", cmp.Key, "compare target %q: want value, mod, create or exists", cmp.Target)
		}
		body.Compare = append(body.Compare, j)
	}
	for _, branch := range []struct {
		ops []TxnOp
		out *[]txnOpJSON
	}{{t.Success, &body.Success}, {t.Failure, &body.Failure}} {
		for _, op := range branch.ops {
			if err := addKey(op.Key); err != nil {
				return nil, nil, err
			}
			k := wireKey(op.Key)
			switch op.Type {
			case TxnPut:
				p := &putJSON{keyJSON: k}
				p.Value, p.ValueBase64 = wireValue(op.Value)
				if op.TTL != 0 {
					if op.TTL < MinTTL || op.TTL > MaxTTL {
						return nil, nil, badInput("txn", op.Key, "TTL %v: a TTL is from %v to %v", op.TTL, MinTTL, MaxTTL)
					}
					p.TTL = op.TTL.String()
				}
				*branch.out = append(*branch.out, txnOpJSON{Put: p})
			case TxnDelete:
				*branch.out = append(*branch.out, txnOpJSON{Delete: &k})
			case TxnGet:
				*branch.out = append(*branch.out, txnOpJSON{Get: &k})
			default:
				return nil, nil, badInput("txn", op.Key, "operation type %d: want TxnPut, TxnDelete or TxnGet", op.Type)
			}
		}
	}
	if len(keys) == 0 {
		return nil, nil, badInput("txn", "", "a transaction names no key")
	}
	slices.Sort(keys)
	keys = slices.Compact(keys)
	b, err := json.Marshal(body)
	if err != nil {
		return nil, nil, badInput("txn", keys[0], "%v", err)
	}
	return b, keys, nil
}

// TxnBody sends body, a POST /txn body as a caller wrote it, to the group
// serving keys (every key the body names; they must be in buckets of one
// group, else ErrCrossGroup before anything is sent), and returns the
// answer's body as the member sent it: for a proxy that relays
// transactions, such as the router. The member checks the body.
func (c *Client) TxnBody(ctx context.Context, body []byte, keys []string, opts ...WriteOption) ([]byte, error) {
	if len(keys) == 0 {
		return nil, badInput("txn", "", "a transaction names no key")
	}
	keys = slices.Clone(keys)
	slices.Sort(keys)
	keys = slices.Compact(keys)
	cl := &call{op: "txn", method: http.MethodPost, key: keys[0], keys: keys, path: "/txn", body: body, write: true, ok: []int{http.StatusOK}}
	for _, opt := range opts {
		opt(cl)
	}
	if cl.conds > 0 || cl.ttl != 0 {
		return nil, badInput("txn", keys[0], "a Txn states its conditions as Compares and TTLs in its puts")
	}
	if (cl.seq != 0 || cl.id != "") && (!ValidClientID(cl.id) || cl.seq == 0) {
		return nil, badInput("txn", keys[0], "WithSeq(%q, %d): want an id of 1 to 64 of [A-Za-z0-9._-] and a seq of at least 1", cl.id, cl.seq)
	}
	rep, err := c.do(ctx, cl)
	if err != nil {
		return nil, err
	}
	return rep.body, nil
}
