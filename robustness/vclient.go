package robustness

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"time"
)

// headerUint reads a decimal header.
func headerUint(h http.Header, name string) (uint64, bool) {
	v := h.Get(name)
	if v == "" {
		return 0, false
	}
	n, err := strconv.ParseUint(v, 10, 64)
	return n, err == nil
}

// etagOf reads the ETag "<mod index>" of an answer; 0 when absent.
func etagOf(h http.Header) (uint64, bool) {
	v := h.Get("ETag")
	if len(v) >= 2 && v[0] == '"' && v[len(v)-1] == '"' {
		v = v[1 : len(v)-1]
	}
	if v == "" {
		return 0, false
	}
	n, err := strconv.ParseUint(v, 10, 64)
	return n, err == nil
}

// retryPause is how long DoVersioned waits before sending a write again
// under the same identity.
const retryPause = 100 * time.Millisecond

// DoVersioned performs op as Do does, for every kind of operation
// (conditional writes and transactions too), and records it in h. A
// write that carries an identity (op.ClientID, op.Seq) and gets no
// definite answer is sent again under the same identity, up to retries
// more times, each time to the member pick returns (the same one if it
// returns ""): raftkv applies it at most once and answers a retry with
// the first outcome, so the op is recorded once, from its first call to
// the return of the answer that settled it. Outcomes:
//
//	get:           200 value (Mod: the ETag), 404 not-found, both with
//	               Index: the X-Raft-Index they were served at; else failed
//	writes:        204 ok (Index: the X-Raft-Index; a put's Mod: its ETag); 412 precondition
//	               (Mod: the ETag, 0 if none); another 4xx, 503 or never
//	               dialed: failed, unless an earlier attempt was unknown;
//	               anything else unknown
//	txn:           200 ok with the answer (Mod: its mod_index); otherwise as a write
func (c *Client) DoVersioned(h *History, op Op, retries int, pick func() string) Op {
	op.Call = h.Now()
	uncertain := false
	for attempt := 0; ; attempt++ {
		r := c.exchange(op)
		op.Attempts = attempt + 1
		op.Status = r.status
		op.Err = ""
		if r.err != nil {
			op.Err = r.err.Error()
		} else if r.status >= 300 {
			op.Err = string(bytes.TrimSpace(clip(r.body, maxErrBody)))
		}
		op.Output = classifyVersioned(op.Input.Op, r)
		if op.Input.Op == OpGet {
			break
		}
		switch op.Output.Result {
		case ResultUnknown:
			uncertain = true
		case ResultFailed:
			if uncertain {
				op.Output = Output{Result: ResultUnknown}
			}
		}
		if op.Output.Result != ResultUnknown || op.ClientID == "" || attempt >= retries {
			break
		}
		time.Sleep(retryPause)
		if n := pick(); n != "" {
			op.Node = n
		}
	}
	op.Return = h.Now()
	if op.Attempts == 1 {
		op.Attempts = 0
	}
	h.Add(op)
	return op
}

// exchange sends op once to op.Node.
func (c *Client) exchange(op Op) response {
	in := op.Input
	hdr := http.Header{}
	if op.ClientID != "" {
		hdr["X-Client-ID"] = []string{op.ClientID}
		hdr["X-Client-Seq"] = []string{strconv.FormatUint(op.Seq, 10)}
	}
	method, prefix, key := http.MethodPut, "/", in.Key
	var body []byte
	switch in.Op {
	case OpGet:
		method = http.MethodGet
	case OpPut:
		body = []byte(in.Value)
	case OpPutIfMatch:
		body = []byte(in.Value)
		hdr["If-Match"] = []string{`"` + strconv.FormatUint(in.Mod, 10) + `"`}
	case OpPutIfAbsent:
		body = []byte(in.Value)
		hdr["If-None-Match"] = []string{"*"}
	case OpDelete:
		method, prefix = http.MethodDelete, "/key/"
	case OpDeleteIfMatch:
		method, prefix = http.MethodDelete, "/key/"
		hdr["If-Match"] = []string{`"` + strconv.FormatUint(in.Mod, 10) + `"`}
	case OpTxn:
		b, err := json.Marshal(txnBody(in.Txn))
		if err != nil {
			return response{err: err, notSent: true}
		}
		method, prefix, key, body = http.MethodPost, "/", "txn", b
		hdr["Content-Type"] = []string{"application/json"}
	default:
		return response{err: fmt.Errorf("robustness: no request for %s", in.Op), notSent: true}
	}
	u, err := keyURL(op.Node, prefix, key)
	if err != nil {
		return response{err: err, notSent: true}
	}
	return c.doHeader(method, u, body, hdr)
}

// doHeader is do with request headers.
func (c *Client) doHeader(method, rawURL string, body []byte, hdr http.Header) response {
	ctx, cancel := contextWithTimeout(c.timeout)
	defer cancel()
	return c.doCtx(ctx, method, rawURL, body, hdr)
}

func classifyVersioned(kind OpKind, r response) Output {
	switch kind {
	case OpGet:
		out := classify(OpGet, r)
		if out.Result != ResultFailed {
			out.Index, _ = headerUint(r.header, "X-Raft-Index")
			if out.Result == ResultValue {
				out.Mod, _ = etagOf(r.header)
			}
		}
		return out
	case OpTxn:
		if r.err == nil && r.status == http.StatusOK {
			var a txnAnswer
			if err := json.Unmarshal(r.body, &a); err != nil {
				return Output{Result: ResultUnknown}
			}
			out := Output{Result: ResultOK, Succeeded: a.Succeeded, Index: a.Index, Mod: a.ModIndex}
			for _, resp := range a.Responses {
				if g := resp.Get; g != nil {
					tg := TxnGet{Found: g.Found, Mod: g.ModIndex}
					if g.Value != nil {
						tg.Value = *g.Value
					}
					out.Gets = append(out.Gets, tg)
				}
			}
			return out
		}
	default:
		if r.err == nil && r.status == http.StatusPreconditionFailed {
			mod, _ := etagOf(r.header)
			index, _ := headerUint(r.header, "X-Raft-Index")
			return Output{Result: ResultPrecondition, Mod: mod, Index: index}
		}
	}
	out := classify(kind, r)
	if out.Result == ResultOK {
		out.Index, _ = headerUint(r.header, "X-Raft-Index")
		if kind != OpDelete && kind != OpDeleteIfMatch {
			out.Mod, _ = etagOf(r.header)
		}
	}
	return out
}

// txnAnswer is POST /txn's answer.
type txnAnswer struct {
	Succeeded bool   `json:"succeeded"`
	Index     uint64 `json:"index"`
	ModIndex  uint64 `json:"mod_index"`
	Responses []struct {
		Get *struct {
			Value    *string `json:"value"`
			ModIndex uint64  `json:"mod_index"`
			Found    bool    `json:"found"`
		} `json:"get"`
	} `json:"responses"`
}

// txnBody is t in POST /txn's JSON shape.
func txnBody(t *Txn) map[string]any {
	var cmp []map[string]any
	for _, c := range t.Compares {
		m := map[string]any{"key": c.Key, "target": c.Target, "result": "equal"}
		if c.NotEqual {
			m["result"] = "not_equal"
		}
		switch c.Target {
		case "value":
			m["value"] = c.Value
		case "mod":
			m["mod_index"] = c.Mod
		case "exists":
			m["exists"] = c.Exists
		}
		cmp = append(cmp, m)
	}
	branch := func(ops []TxnOp) []map[string]any {
		out := []map[string]any{}
		for _, o := range ops {
			switch o.Op {
			case OpPut:
				out = append(out, map[string]any{"put": map[string]any{"key": o.Key, "value": o.Value}})
			case OpDelete:
				out = append(out, map[string]any{"delete": map[string]any{"key": o.Key}})
			default:
				out = append(out, map[string]any{"get": map[string]any{"key": o.Key}})
			}
		}
		return out
	}
	if cmp == nil {
		cmp = []map[string]any{}
	}
	return map[string]any{"compare": cmp, "success": branch(t.Success), "failure": branch(t.Failure)}
}
