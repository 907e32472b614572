package robustness

import (
	"testing"

	"github.com/anishathalye/porcupine"
)

// Hand-written histories for CASModel and TxnModel. Times are ms.

func cget(v string, mod, at uint64, call, ret int) Op {
	out := Output{Result: ResultValue, Value: v, Mod: mod, Index: at}
	if v == "" {
		out = Output{Result: ResultNotFound, Index: at}
	}
	return Op{Input: Input{Op: OpGet, Key: "k"}, Output: out, Call: ms(call), Return: ms(ret)}
}

// cw is a write of kind to key k: index > 0 acknowledged at that index,
// with that version, 0 unknown.
func cw(kind OpKind, v string, ifMod uint64, call, ret int, index uint64) Op {
	out := Output{Result: ResultOK, Index: index, Mod: index}
	if index == 0 {
		out = Output{Result: ResultUnknown}
	}
	return Op{Input: Input{Op: kind, Key: "k", Value: v, Mod: ifMod}, Output: out, Call: ms(call), Return: ms(ret)}
}

// cwv is cw with a version other than the index, as a write gets when
// its index gave one to its bucket already.
func cwv(kind OpKind, v string, ifMod uint64, call, ret int, index, mod uint64) Op {
	op := cw(kind, v, ifMod, call, ret, index)
	op.Output.Mod = mod
	return op
}

func c412(kind OpKind, v string, ifMod uint64, call, ret int, index, current uint64) Op {
	return Op{Input: Input{Op: kind, Key: "k", Value: v, Mod: ifMod},
		Output: Output{Result: ResultPrecondition, Index: index, Mod: current}, Call: ms(call), Return: ms(ret)}
}

func TestCASModel(t *testing.T) {
	for _, tc := range []struct {
		name string
		ops  []Op
		want porcupine.CheckResult
	}{
		{"empty", nil, porcupine.Ok},
		{"put then read its version", []Op{cw(OpPut, "a", 0, 0, 10, 5), cget("a", 5, 6, 20, 30)}, porcupine.Ok},
		{"read names the wrong version", []Op{cw(OpPut, "a", 0, 0, 10, 5), cget("a", 4, 6, 20, 30)}, porcupine.Illegal},
		{"cas on the current version", []Op{
			cw(OpPut, "a", 0, 0, 10, 5), cw(OpPutIfMatch, "b", 5, 20, 30, 8), cget("b", 8, 9, 40, 50),
		}, porcupine.Ok},
		{"two cas on one version both succeed", []Op{
			cw(OpPut, "a", 0, 0, 10, 5), cw(OpPutIfMatch, "b", 5, 20, 30, 8), cw(OpPutIfMatch, "c", 5, 20, 30, 9),
		}, porcupine.Illegal},
		{"concurrent cas: one wins, the other gets 412 with the winner's version", []Op{
			cw(OpPut, "a", 0, 0, 10, 5), cw(OpPutIfMatch, "b", 5, 20, 30, 8), c412(OpPutIfMatch, "c", 5, 20, 30, 9, 8),
		}, porcupine.Ok},
		{"412 although the version matched", []Op{
			cw(OpPut, "a", 0, 0, 10, 5), c412(OpPutIfMatch, "c", 5, 20, 30, 9, 5),
		}, porcupine.Illegal},
		{"412 naming a version that never was", []Op{
			cw(OpPut, "a", 0, 0, 10, 5), c412(OpPutIfMatch, "c", 4, 20, 30, 9, 7),
		}, porcupine.Illegal},
		{"cas applied although the version had moved on", []Op{
			cw(OpPut, "a", 0, 0, 10, 5), cw(OpPut, "b", 0, 20, 30, 7), cw(OpPutIfMatch, "c", 5, 40, 50, 9),
		}, porcupine.Illegal},
		{"put-if-absent twice", []Op{
			cw(OpPutIfAbsent, "a", 0, 0, 10, 5), cw(OpPutIfAbsent, "b", 0, 20, 30, 7),
		}, porcupine.Illegal},
		{"put-if-absent refused with the winner's version", []Op{
			cw(OpPutIfAbsent, "a", 0, 0, 30, 5), c412(OpPutIfAbsent, "b", 0, 0, 30, 6, 5),
		}, porcupine.Ok},
		{"put-if-absent refused on an absent key", []Op{c412(OpPutIfAbsent, "b", 0, 0, 30, 6, 0)}, porcupine.Illegal},
		{"conditional delete", []Op{
			cw(OpPut, "a", 0, 0, 10, 5), cw(OpDeleteIfMatch, "", 5, 20, 30, 6), cget("", 0, 6, 40, 50),
			cw(OpPutIfAbsent, "b", 0, 60, 70, 8),
		}, porcupine.Ok},
		{"value read after its conditional delete", []Op{
			cw(OpPut, "a", 0, 0, 10, 5), cw(OpDeleteIfMatch, "", 5, 20, 30, 6), cget("a", 5, 7, 40, 50),
		}, porcupine.Illegal},
		{"indexes out of real-time order", []Op{
			cw(OpPut, "a", 0, 0, 10, 7), cw(OpPut, "b", 0, 20, 30, 5),
		}, porcupine.Illegal},
		{"read served at an index before an earlier write", []Op{
			cw(OpPut, "a", 0, 0, 10, 7), cget("a", 7, 6, 20, 30),
		}, porcupine.Illegal},
		{"writes batched at one index, each with its version", []Op{
			cw(OpPut, "a", 0, 0, 10, 7), cwv(OpPut, "b", 0, 0, 10, 7, 8), cget("b", 8, 7, 20, 30),
		}, porcupine.Ok},
		{"two puts of one key answered one version", []Op{
			cw(OpPut, "a", 0, 0, 10, 7), cw(OpPut, "b", 0, 0, 10, 7), cget("b", 7, 7, 20, 30),
		}, porcupine.Illegal},
		{"a put answered a version below the key's", []Op{
			cw(OpPut, "a", 0, 0, 10, 7), cwv(OpPut, "b", 0, 20, 30, 9, 6),
		}, porcupine.Illegal},
		{"unknown put: its index learned from a later read", []Op{
			cw(OpPut, "a", 0, 0, 10, 5), cw(OpPut, "u", 0, 20, 30, 0), cget("u", 9, 10, 40, 50),
			cw(OpPutIfMatch, "v", 9, 60, 70, 12), cget("v", 12, 12, 80, 90),
		}, porcupine.Ok},
		{"unknown put: its index learned from a 412", []Op{
			cw(OpPut, "a", 0, 0, 10, 5), cw(OpPut, "u", 0, 20, 30, 0), c412(OpPutIfMatch, "x", 5, 40, 50, 11, 9),
			cw(OpPutIfMatch, "v", 9, 60, 70, 12),
		}, porcupine.Ok},
		{"unknown put: two reads disagree on its index", []Op{
			cw(OpPut, "u", 0, 20, 30, 0), cget("u", 9, 10, 40, 50), cget("u", 8, 10, 60, 70),
		}, porcupine.Illegal},
		{"unknown put: index below what came before it", []Op{
			cw(OpPut, "a", 0, 0, 10, 5), cget("a", 5, 6, 12, 14), cw(OpPut, "u", 0, 20, 30, 0), cget("u", 4, 10, 40, 50),
		}, porcupine.Illegal},
		{"unknown cas: applied or not, by the version it asked", []Op{
			cw(OpPut, "a", 0, 0, 10, 5), cw(OpPutIfMatch, "u", 5, 20, 30, 0), cget("u", 8, 8, 40, 50),
		}, porcupine.Ok},
		{"unknown cas applied on another version", []Op{
			cw(OpPut, "a", 0, 0, 10, 5), cw(OpPut, "b", 0, 12, 14, 6), cw(OpPutIfMatch, "u", 5, 20, 30, 0), cget("u", 8, 8, 40, 50),
		}, porcupine.Illegal},
		{"unknown cas on an unknown put's version", []Op{
			cw(OpPut, "u", 0, 0, 10, 0), cw(OpPutIfMatch, "w", 7, 20, 30, 0), cget("w", 9, 9, 40, 50), cget("w", 9, 10, 60, 70),
		}, porcupine.Ok},
		{"failed writes are ignored", []Op{
			cw(OpPut, "a", 0, 0, 10, 5),
			{Input: Input{Op: OpPutIfMatch, Key: "k", Value: "x", Mod: 5}, Output: Output{Result: ResultFailed}, Call: ms(20), Return: ms(30)},
			cget("a", 5, 6, 40, 50),
		}, porcupine.Ok},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := CheckCAS(tc.ops, nil, 0, "")
			if r.Result != tc.want {
				t.Errorf("got %s, want %s", r, tc.want)
			}
		})
	}
}

// txn builds a transaction op on group "g" (keys g/0, g/1, g/2).
func txnOp(tx Txn, call, ret int, out Output) Op {
	return Op{Input: Input{Op: OpTxn, Key: "g", Txn: &tx}, Output: out, Call: ms(call), Return: ms(ret)}
}

func tput(i int, v string) TxnOp { return TxnOp{Op: OpPut, Key: TxnKey("g", i), Value: v} }
func tdel(i int) TxnOp           { return TxnOp{Op: OpDelete, Key: TxnKey("g", i)} }
func tget(i int) TxnOp           { return TxnOp{Op: OpGet, Key: TxnKey("g", i)} }
func modIs(i int, m uint64) TxnCompare {
	return TxnCompare{Key: TxnKey("g", i), Target: "mod", Mod: m}
}
func valueIs(i int, v string) TxnCompare {
	return TxnCompare{Key: TxnKey("g", i), Target: "value", Value: v}
}
func exists(i int, e bool) TxnCompare {
	return TxnCompare{Key: TxnKey("g", i), Target: "exists", Exists: e}
}

// ok is a transaction's answer at index; its puts, if any, wrote that
// version.
func ok(succeeded bool, index uint64, gets ...TxnGet) Output {
	return Output{Result: ResultOK, Succeeded: succeeded, Index: index, Mod: index, Gets: gets}
}
func found(v string, mod uint64) TxnGet { return TxnGet{Found: true, Value: v, Mod: mod} }

var absent = TxnGet{}
var unknown = Output{Result: ResultUnknown}

func TestTxnModel(t *testing.T) {
	readAll := Txn{Success: []TxnOp{tget(0), tget(1), tget(2)}}
	for _, tc := range []struct {
		name string
		ops  []Op
		want porcupine.CheckResult
	}{
		{"empty", nil, porcupine.Ok},
		{"blind writes then read", []Op{
			txnOp(Txn{Success: []TxnOp{tput(0, "a"), tput(1, "b")}}, 0, 10, ok(true, 5)),
			txnOp(readAll, 20, 30, ok(true, 6, found("a", 5), found("b", 5), absent)),
		}, porcupine.Ok},
		{"torn transaction: one key's write missing", []Op{
			txnOp(Txn{Success: []TxnOp{tput(0, "a"), tput(1, "b")}}, 0, 10, ok(true, 5)),
			txnOp(readAll, 20, 30, ok(true, 6, found("a", 5), absent, absent)),
		}, porcupine.Illegal},
		{"compares hold: success branch", []Op{
			txnOp(Txn{Success: []TxnOp{tput(0, "a")}}, 0, 10, ok(true, 5)),
			txnOp(Txn{Compares: []TxnCompare{modIs(0, 5), valueIs(0, "a"), exists(1, false)},
				Success: []TxnOp{tput(1, "b"), tget(0)}, Failure: []TxnOp{tget(0)}}, 20, 30, ok(true, 7, found("a", 5))),
		}, porcupine.Ok},
		{"compares hold but the failure branch was taken", []Op{
			txnOp(Txn{Success: []TxnOp{tput(0, "a")}}, 0, 10, ok(true, 5)),
			txnOp(Txn{Compares: []TxnCompare{modIs(0, 5)}, Success: []TxnOp{tput(1, "b")}, Failure: []TxnOp{tget(0)}},
				20, 30, ok(false, 7, found("a", 5))),
		}, porcupine.Illegal},
		{"two transactions' puts of one key answered one version", []Op{
			txnOp(Txn{Success: []TxnOp{tput(0, "a")}}, 0, 10, ok(true, 5)),
			txnOp(Txn{Success: []TxnOp{tput(0, "b")}}, 0, 10, ok(true, 5)),
		}, porcupine.Illegal},
		{"two transactions succeed on one version", []Op{
			txnOp(Txn{Success: []TxnOp{tput(0, "a")}}, 0, 10, ok(true, 5)),
			txnOp(Txn{Compares: []TxnCompare{modIs(0, 5)}, Success: []TxnOp{tput(0, "b")}}, 20, 30, ok(true, 7)),
			txnOp(Txn{Compares: []TxnCompare{modIs(0, 5)}, Success: []TxnOp{tput(0, "c")}}, 20, 30, ok(true, 8)),
		}, porcupine.Illegal},
		{"the loser sees the winner", []Op{
			txnOp(Txn{Success: []TxnOp{tput(0, "a")}}, 0, 10, ok(true, 5)),
			txnOp(Txn{Compares: []TxnCompare{modIs(0, 5)}, Success: []TxnOp{tput(0, "b")}, Failure: []TxnOp{tget(0)}}, 20, 30, ok(true, 7)),
			txnOp(Txn{Compares: []TxnCompare{modIs(0, 5)}, Success: []TxnOp{tput(0, "c")}, Failure: []TxnOp{tget(0)}}, 20, 30, ok(false, 8, found("b", 7))),
		}, porcupine.Ok},
		{"a get sees the writes before it in its branch", []Op{
			txnOp(Txn{Success: []TxnOp{tput(0, "a"), tget(0), tdel(0), tget(0)}}, 0, 10, ok(true, 5, found("a", 5), absent)),
		}, porcupine.Ok},
		{"value compare on an absent key fails, even not-equal", []Op{
			txnOp(Txn{Compares: []TxnCompare{{Key: TxnKey("g", 0), Target: "value", NotEqual: true, Value: "x"}},
				Success: []TxnOp{tput(0, "a")}}, 0, 10, ok(true, 5)),
		}, porcupine.Illegal},
		{"unknown transaction: its index learned from a read", []Op{
			txnOp(Txn{Success: []TxnOp{tput(0, "a"), tput(1, "b")}}, 0, 10, unknown),
			txnOp(readAll, 20, 30, ok(true, 9, found("a", 6), found("b", 6), absent)),
		}, porcupine.Ok},
		{"unknown transaction: its keys read at different indexes", []Op{
			txnOp(Txn{Success: []TxnOp{tput(0, "a"), tput(1, "b")}}, 0, 10, unknown),
			txnOp(Txn{Success: []TxnOp{tget(0)}}, 20, 30, ok(true, 9, found("a", 6))),
			txnOp(Txn{Success: []TxnOp{tget(1)}}, 40, 50, ok(true, 10, found("b", 7))),
		}, porcupine.Illegal},
		{"unknown conditional transaction on an unknown version", []Op{
			txnOp(Txn{Success: []TxnOp{tput(0, "a")}}, 0, 10, unknown),
			txnOp(Txn{Compares: []TxnCompare{modIs(0, 6)}, Success: []TxnOp{tput(1, "b")}}, 20, 30, unknown),
			txnOp(readAll, 40, 50, ok(true, 9, found("a", 6), found("b", 8), absent)),
		}, porcupine.Ok},
		{"unknown conditional transaction applied although its compare failed", []Op{
			txnOp(Txn{Success: []TxnOp{tput(0, "a")}}, 0, 10, ok(true, 5)),
			txnOp(Txn{Compares: []TxnCompare{modIs(0, 4)}, Success: []TxnOp{tput(1, "b")}}, 20, 30, unknown),
			txnOp(readAll, 40, 50, ok(true, 9, found("a", 5), found("b", 8), absent)),
		}, porcupine.Illegal},
		{"stale read by index", []Op{
			txnOp(Txn{Success: []TxnOp{tput(0, "a")}}, 0, 10, ok(true, 5)),
			txnOp(Txn{Success: []TxnOp{tput(0, "b")}}, 20, 30, ok(true, 7)),
			txnOp(Txn{Success: []TxnOp{tget(0)}}, 40, 50, ok(true, 8, found("a", 5))),
		}, porcupine.Illegal},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := CheckTxn(tc.ops, nil, 0, "")
			if r.Result != tc.want {
				t.Errorf("got %s, want %s", r, tc.want)
			}
		})
	}
}
