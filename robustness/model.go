package robustness

import (
	"fmt"
	"slices"

	"github.com/anishathalye/porcupine"
)

// OpKind is the kind of a client operation.
type OpKind uint8

// The operations of the model: those of raftkv's raftexample API; then
// those of the versioned models (versioned.go): conditional writes and
// transactions.
const (
	OpGet           OpKind = iota + 1 // GET /<key>, linearizable
	OpPut                             // PUT /<key>
	OpDelete                          // DELETE /key/<key>
	OpPutIfMatch                      // PUT /<key> with If-Match: "<Input.Mod>"
	OpPutIfAbsent                     // PUT /<key> with If-None-Match: *
	OpDeleteIfMatch                   // DELETE /key/<key> with If-Match: "<Input.Mod>"
	OpTxn                             // POST /txn of Input.Txn
)

func (k OpKind) String() string {
	switch k {
	case OpGet:
		return "get"
	case OpPut:
		return "put"
	case OpDelete:
		return "delete"
	case OpPutIfMatch:
		return "put-if-match"
	case OpPutIfAbsent:
		return "put-if-absent"
	case OpDeleteIfMatch:
		return "delete-if-match"
	case OpTxn:
		return "txn"
	}
	return fmt.Sprintf("op(%d)", uint8(k))
}

// Input is what a client asked: an operation on one key, or a
// transaction on the keys of one group (Key is then the group's name).
type Input struct {
	Op    OpKind
	Key   string
	Value string // put only
	// Mod is the version an If-Match write asks for.
	Mod uint64 `json:",omitempty"`
	// Txn is the transaction of an OpTxn.
	Txn *Txn `json:",omitempty"`
	// ID names the operation within a checked history; the versioned
	// models use it to tie together what one write of unknown index did.
	ID int `json:"-"`
}

// Result classifies what a client learned from an operation.
type Result uint8

// Results. Only OK, Value, NotFound and Unknown enter the linearizability
// check; Failed operations had no effect and told nothing.
const (
	// ResultOK: a write was acknowledged (204).
	ResultOK Result = iota + 1
	// ResultValue: a read found the key (200); Output.Value holds it.
	ResultValue
	// ResultNotFound: a read found no key (404).
	ResultNotFound
	// ResultUnknown: a write whose outcome is unknown (504 or another 5xx
	// but 503, timeout, broken connection). It may take effect at any time
	// after it was invoked.
	ResultUnknown
	// ResultFailed: an operation known to have had no effect and to tell
	// nothing: a read that got no answer or an error, or a write that was
	// never sent (the connection could not be dialed) or was refused (4xx,
	// or 503, which raftkv answers only for a write it did not apply).
	ResultFailed
	// ResultPrecondition: a conditional write refused with 412: nothing
	// changed, and Output.Mod is the key's version then (0: absent).
	ResultPrecondition
)

func (r Result) String() string {
	switch r {
	case ResultOK:
		return "ok"
	case ResultValue:
		return "value"
	case ResultNotFound:
		return "not-found"
	case ResultUnknown:
		return "unknown"
	case ResultFailed:
		return "failed"
	case ResultPrecondition:
		return "precondition-failed"
	}
	return fmt.Sprintf("result(%d)", uint8(r))
}

// Output is what a client learned.
type Output struct {
	Result Result
	Value  string // ResultValue only
	// Index is the X-Raft-Index of the answer: a write's raft index, the
	// index a read was served at, the index a 412 or a transaction applied
	// at; 0 when not given.
	Index uint64 `json:",omitempty"`
	// Mod is a read's ETag, a 412's (0: the key is absent), or an
	// acknowledged put's: the version it wrote (see Written).
	Mod uint64 `json:",omitempty"`
	// Succeeded and Gets are a transaction's answer.
	Succeeded bool     `json:",omitempty"`
	Gets      []TxnGet `json:",omitempty"`
}

// Written is the version an acknowledged put wrote: its ETag (a
// transaction's mod_index); 0 when the answer does not say, as a
// transaction's does not when its puts got more than one version. Not its
// raft index: an index carries many requests, each with versions of its
// own, so a version may be above the index that wrote it.
func (o Output) Written() uint64 { return o.Mod }

// kvState is the model's state of one key: the model is partitioned per key.
type kvState struct {
	present bool
	value   string
}

// Model is the sequential specification of one raftkv key, partitioned per
// key, for porcupine. A put sets the value, a delete removes it, a get must
// return the current value or not-found. A write with an unknown outcome is
// checked as an operation that never returns (porcupine's convention for
// pending operations): it may be linearized at any point after its call,
// including after every other operation, which is the same as never
// happening.
var Model = porcupine.Model{
	Partition: partitionByKey,
	Init:      func() any { return kvState{} },
	Step:      step,
	Equal:     func(a, b any) bool { return a.(kvState) == b.(kvState) },
	DescribeOperation: func(in, out any) string {
		return describe(in.(Input), out.(Output))
	},
	DescribeState: func(s any) string {
		st := s.(kvState)
		if !st.present {
			return "<absent>"
		}
		return fmt.Sprintf("%q", st.value)
	},
	DescribeOperationMetadata: func(m any) string {
		if m == nil {
			return ""
		}
		return fmt.Sprint(m)
	},
}

func step(s, in, out any) (bool, any) {
	st, i, o := s.(kvState), in.(Input), out.(Output)
	switch i.Op {
	case OpPut:
		return true, kvState{present: true, value: i.Value}
	case OpDelete:
		return true, kvState{}
	case OpGet:
		switch o.Result {
		case ResultNotFound:
			return !st.present, st
		case ResultValue:
			return st.present && st.value == o.Value, st
		}
	}
	return false, st
}

func describe(in Input, out Output) string {
	switch in.Op {
	case OpPut:
		return fmt.Sprintf("put(%q, %q) -> %s", in.Key, in.Value, out.Result)
	case OpDelete:
		return fmt.Sprintf("delete(%q) -> %s", in.Key, out.Result)
	case OpGet:
		if out.Result == ResultValue {
			return fmt.Sprintf("get(%q) -> %q", in.Key, out.Value)
		}
		return fmt.Sprintf("get(%q) -> %s", in.Key, out.Result)
	}
	return fmt.Sprintf("%v -> %v", in, out)
}

// partitionByKey splits a history into one sub-history per key, in order of
// first appearance, so each key is checked independently.
func partitionByKey(history []porcupine.Operation) [][]porcupine.Operation {
	index := map[string]int{}
	var parts [][]porcupine.Operation
	for _, op := range history {
		k := op.Input.(Input).Key
		i, ok := index[k]
		if !ok {
			i = len(parts)
			index[k] = i
			parts = append(parts, nil)
		}
		parts[i] = append(parts[i], op)
	}
	return parts
}

// PorcupineOps turns a recorded history into porcupine operations.
//
// Failed operations are left out: they had no effect. A write with an
// unknown outcome returns at the end of the history (after every other
// operation), as porcupine expects of a pending operation; it is left out
// altogether when no read could have observed it, which is equivalent and
// keeps the search small: a put whose unique value no read returned, or a
// delete after whose call no read of its key returned not-found.
func PorcupineOps(ops []Op) []porcupine.Operation {
	var end int64
	seen := map[string]bool{}          // key + "\x00" + value returned by some read
	lastNotFound := map[string]int64{} // latest return time of a not-found read, per key
	for _, op := range ops {
		end = max(end, int64(op.Return), int64(op.Call))
		if op.Input.Op != OpGet {
			continue
		}
		switch op.Output.Result {
		case ResultValue:
			seen[op.Input.Key+"\x00"+op.Output.Value] = true
		case ResultNotFound:
			if r, ok := lastNotFound[op.Input.Key]; !ok || int64(op.Return) > r {
				lastNotFound[op.Input.Key] = int64(op.Return)
			}
		}
	}
	out := make([]porcupine.Operation, 0, len(ops))
	for _, op := range ops {
		ret := int64(op.Return)
		switch op.Output.Result {
		case ResultFailed:
			continue
		case ResultUnknown:
			switch op.Input.Op {
			case OpPut:
				if !seen[op.Input.Key+"\x00"+op.Input.Value] {
					continue
				}
			case OpDelete:
				if r, ok := lastNotFound[op.Input.Key]; !ok || r < int64(op.Call) {
					continue
				}
			default:
				continue
			}
			ret = end + 1
		}
		out = append(out, porcupine.Operation{
			ClientId: op.Client,
			Input:    op.Input,
			Call:     int64(op.Call),
			Output:   op.Output,
			Return:   ret,
			Metadata: op.Node,
		})
	}
	return out
}

// keysOf returns the sorted distinct keys of ops.
func keysOf(ops []porcupine.Operation) []string {
	set := map[string]bool{}
	for _, op := range ops {
		set[op.Input.(Input).Key] = true
	}
	keys := make([]string, 0, len(set))
	for k := range set {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
