package robustness

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/anishathalye/porcupine"
)

// This file holds the versioned models: a CAS register per key (CASModel:
// get with its version, put, If-Match put and delete, If-None-Match put)
// and a transaction model over the few keys of a group (TxnModel: POST
// /txn with compares on value, mod and existence, and branches of puts,
// deletes and gets). doc.go says how they treat mod indexes they never
// learned.

// Txn is a transaction as the workload sends it to POST /txn. Its keys are
// those of one group: group + "/" + a digit below MaxTxnKeys.
type Txn struct {
	Compares         []TxnCompare
	Success, Failure []TxnOp
}

// TxnCompare is one compare of a Txn.
type TxnCompare struct {
	Key string
	// Target is "value", "mod" or "exists".
	Target string
	// NotEqual compares with not_equal instead of equal.
	NotEqual bool   `json:",omitempty"`
	Value    string `json:",omitempty"`
	Mod      uint64 `json:",omitempty"`
	Exists   bool   `json:",omitempty"`
}

// TxnOp is one operation of a Txn branch: OpGet, OpPut or OpDelete.
type TxnOp struct {
	Op    OpKind
	Key   string
	Value string `json:",omitempty"`
}

// TxnGet is the answer of one get of the branch a Txn took.
type TxnGet struct {
	Found bool
	Value string `json:",omitempty"`
	Mod   uint64 `json:",omitempty"`
}

// MaxTxnKeys is the most keys a group of the transaction model has.
const MaxTxnKeys = 4

// TxnKey is key slot i of group.
func TxnKey(group string, i int) string { return fmt.Sprintf("%s/%d", group, i) }

// txnSlot is the slot of key in group, or -1.
func txnSlot(group, key string) int {
	if len(key) != len(group)+2 || !strings.HasPrefix(key, group+"/") {
		return -1
	}
	i := int(key[len(key)-1] - '0')
	if i < 0 || i >= MaxTxnKeys {
		return -1
	}
	return i
}

// version is a key's state in the versioned models: absent, or a value at
// a mod index. A value written by a write whose outcome is unknown has an
// unknown mod index, at least lo; pending names that write (Input.ID), so
// that the first observation of the index pins it on every key the write
// wrote.
type version struct {
	present bool
	value   string
	mod     uint64
	pending int
	lo      uint64
}

func (v version) String() string {
	switch {
	case !v.present:
		return "<absent>"
	case v.pending != 0:
		return fmt.Sprintf("%q@?(>=%d, write #%d)", v.value, v.lo, v.pending)
	}
	return fmt.Sprintf("%q@%d", v.value, v.mod)
}

// Positions order what the models linearize by raft index: a write (or a
// 412, or a transaction) at index i sits at 2i, a read served at index r
// at 2r+1, after every write of index r. Operations must be linearized at
// non-decreasing positions, so the models accept only orders that agree
// with the indexes the cluster reported.
func writePos(i uint64) uint64 { return 2 * i }
func readPos(r uint64) uint64  { return 2*r + 1 }

// lowest is the least index a write linearized after position pos can have.
func lowest(pos uint64) uint64 { return (pos + 1) / 2 }

// casState is the CAS register's state of one key.
type casState struct {
	v   version
	pos uint64 // position of the last operation with a known index
}

// hasMod reports whether v can be at mod index m (0: absent), and v with
// its unknown index pinned to m if that was needed.
func (v version) hasMod(m uint64) (version, bool) {
	switch {
	case m == 0:
		return v, !v.present
	case !v.present:
		return v, false
	case v.pending != 0:
		if m < v.lo {
			return v, false
		}
		v.mod, v.pending, v.lo = m, 0, 0
		return v, true
	}
	return v, v.mod == m
}

// mayNotHaveMod reports whether v can be at a mod index other than m.
func (v version) mayNotHaveMod(m uint64) bool {
	if v.present && v.pending != 0 {
		return true
	}
	_, ok := v.hasMod(m)
	return !ok
}

// at moves s to position p, if it is not behind; p 0 (no index given)
// leaves it.
func (s casState) at(p uint64, given bool) (casState, bool) {
	if !given {
		return s, true
	}
	if p < s.pos {
		return s, false
	}
	s.pos = p
	return s, true
}

// CASModel is the sequential specification of one versioned key,
// partitioned per key: OpGet (value and ETag, or not found, at a served
// index), OpPut, OpPutIfMatch, OpPutIfAbsent and OpDeleteIfMatch (applied
// at an index, or refused with 412 and the current version), and writes of
// unknown outcome. It is nondeterministic where an unknown write's index
// leaves a compare undecided; porcupine checks it through its power set.
var CASModel = (&porcupine.NondeterministicModel{
	Partition: partitionByKey,
	Init:      func() []any { return []any{casState{}} },
	Step: func(s, in, out any) []any {
		return casStep(s.(casState), in.(Input), out.(Output))
	},
	Equal: func(a, b any) bool { return a.(casState) == b.(casState) },
	DescribeOperation: func(in, out any) string {
		return describeVersioned(in.(Input), out.(Output))
	},
	DescribeState: func(s any) string {
		st := s.(casState)
		return fmt.Sprintf("%s (position %d)", st.v, st.pos)
	},
	DescribeOperationMetadata: describeMetadata,
}).ToModel()

func describeMetadata(m any) string {
	if m == nil {
		return ""
	}
	return fmt.Sprint(m)
}

func casStep(s casState, in Input, out Output) []any {
	one := func(st casState, ok bool) []any {
		if !ok {
			return nil
		}
		return []any{st}
	}
	known := out.Index != 0
	if out.Result == ResultUnknown {
		applied := s
		applied.v = version{present: true, value: in.Value, pending: in.ID, lo: lowest(s.pos)}
		switch in.Op {
		case OpPut:
			return []any{applied}
		case OpDelete:
			applied.v = version{}
			return []any{applied}
		case OpPutIfAbsent:
			if s.v.present {
				return []any{s}
			}
			return []any{applied}
		case OpPutIfMatch, OpDeleteIfMatch:
			if in.Op == OpDeleteIfMatch {
				applied.v = version{}
			}
			var next []any
			if _, ok := s.v.hasMod(in.Mod); ok {
				next = append(next, applied)
			}
			if s.v.mayNotHaveMod(in.Mod) {
				next = append(next, s)
			}
			return next
		}
		return nil
	}
	switch in.Op {
	case OpGet:
		st, ok := s.at(readPos(out.Index), known)
		if !ok {
			return nil
		}
		switch out.Result {
		case ResultNotFound:
			return one(st, !st.v.present)
		case ResultValue:
			if !st.v.present || st.v.value != out.Value {
				return nil
			}
			st.v, ok = st.v.hasMod(out.Mod)
			return one(st, ok)
		}
		return nil
	case OpPut, OpDelete, OpPutIfMatch, OpPutIfAbsent, OpDeleteIfMatch:
	default:
		return nil
	}
	st, ok := s.at(writePos(out.Index), known)
	if !ok {
		return nil
	}
	switch out.Result {
	case ResultOK:
		switch in.Op {
		case OpPutIfMatch, OpDeleteIfMatch:
			if _, ok := st.v.hasMod(in.Mod); !ok {
				return nil
			}
		case OpPutIfAbsent:
			if st.v.present {
				return nil
			}
		}
		if in.Op == OpDeleteIfMatch || in.Op == OpDelete {
			st.v = version{}
		} else {
			if m := out.Written(); m != 0 && st.v.present && st.v.pending == 0 && m <= st.v.mod {
				return nil // a version the key had: it would name two values
			}
			st.v = version{present: true, value: in.Value, mod: out.Written()}
			if st.v.mod == 0 {
				// An acknowledged write without its version: as unknown.
				st.v.pending, st.v.lo = in.ID, lowest(s.pos)
			}
		}
		return []any{st}
	case ResultPrecondition:
		if in.Op == OpPut || in.Op == OpDelete || out.Mod == in.Mod && in.Op != OpPutIfAbsent {
			return nil // a 412 saying the asked version is the current one
		}
		st.v, ok = st.v.hasMod(out.Mod)
		if !ok || in.Op == OpPutIfAbsent && !st.v.present {
			return nil
		}
		return []any{st}
	}
	return nil
}

// txnState is the transaction model's state of one group of keys.
type txnState struct {
	k   [MaxTxnKeys]version
	pos uint64
}

// pin sets the unknown index of write id to m on every key it wrote.
func (s txnState) pin(id int, m uint64) txnState {
	for i := range s.k {
		if s.k[i].present && s.k[i].pending == id {
			s.k[i].mod, s.k[i].pending, s.k[i].lo = m, 0, 0
		}
	}
	return s
}

// hasMod is version.hasMod on slot i, pinning the write's other keys too.
func (s txnState) hasMod(i int, m uint64) (txnState, bool) {
	v := s.k[i]
	if _, ok := v.hasMod(m); !ok {
		return s, false
	}
	if v.present && v.pending != 0 {
		s = s.pin(v.pending, m)
	}
	return s, true
}

// TxnModel is the sequential specification of a group of at most
// MaxTxnKeys keys under POST /txn, partitioned by group (Input.Key): the
// compares decide on the state before the transaction, the branch they
// choose applies in order, each get seeing the operations before it, and
// the transaction's answer (succeeded, index, the gets' values and
// versions) must match. A transaction of unknown outcome may apply at
// any point after its call, with an unknown index.
var TxnModel = (&porcupine.NondeterministicModel{
	Partition: partitionByKey,
	Init:      func() []any { return []any{txnState{}} },
	Step: func(s, in, out any) []any {
		return txnStep(s.(txnState), in.(Input), out.(Output))
	},
	Equal: func(a, b any) bool { return a.(txnState) == b.(txnState) },
	DescribeOperation: func(in, out any) string {
		return describeVersioned(in.(Input), out.(Output))
	},
	DescribeState: func(s any) string {
		st := s.(txnState)
		parts := make([]string, 0, MaxTxnKeys)
		for i, v := range st.k {
			parts = append(parts, fmt.Sprintf("%d: %s", i, v))
		}
		return fmt.Sprintf("{%s} (position %d)", strings.Join(parts, ", "), st.pos)
	},
	DescribeOperationMetadata: describeMetadata,
}).ToModel()

// decided is a state reached while evaluating compares, and their verdict.
type decided struct {
	s  txnState
	ok bool
}

// compares evaluates cs on s, in order, stopping at the first that fails
// (as kvstore does). A mod compare on a key of unknown index forks: the
// index is the one compared (pinned), or another.
func compares(s txnState, group string, cs []TxnCompare) ([]decided, bool) {
	todo := []decided{{s, true}}
	for _, c := range cs {
		i := txnSlot(group, c.Key)
		if i < 0 {
			return nil, false
		}
		var next []decided
		for _, d := range todo {
			if !d.ok {
				next = append(next, d)
				continue
			}
			v := d.s.k[i]
			var holds bool
			switch c.Target {
			case "exists":
				holds = v.present == c.Exists
			case "value":
				holds = v.present && (v.value == c.Value) != c.NotEqual
			case "mod":
				eq, eqOK := d.s.hasMod(i, c.Mod)
				neOK := v.mayNotHaveMod(c.Mod)
				if c.NotEqual {
					if neOK {
						next = append(next, decided{d.s, true})
					}
					if eqOK {
						next = append(next, decided{eq, false})
					}
				} else {
					if eqOK {
						next = append(next, decided{eq, true})
					}
					if neOK {
						next = append(next, decided{d.s, false})
					}
				}
				continue
			default:
				return nil, false
			}
			next = append(next, decided{d.s, holds})
		}
		todo = next
	}
	return todo, true
}

func txnStep(s txnState, in Input, out Output) []any {
	if in.Op != OpTxn || in.Txn == nil {
		return nil
	}
	known := out.Result == ResultOK
	if !known && out.Result != ResultUnknown {
		return nil
	}
	if known {
		if writePos(out.Index) < s.pos {
			return nil
		}
		s.pos = writePos(out.Index)
	}
	lo := lowest(s.pos)
	ds, ok := compares(s, in.Key, in.Txn.Compares)
	if !ok {
		return nil
	}
	var next []any
	for _, d := range ds {
		if known && d.ok != out.Succeeded {
			continue
		}
		ops := in.Txn.Failure
		if d.ok {
			ops = in.Txn.Success
		}
		st, ok := applyBranch(d.s, in, out, ops, known, lo)
		if ok {
			next = append(next, st)
		}
	}
	return next
}

// applyBranch applies ops to s; with a known outcome each get must match
// its answer in out.Gets.
func applyBranch(s txnState, in Input, out Output, ops []TxnOp, known bool, lo uint64) (txnState, bool) {
	g := 0
	for _, op := range ops {
		i := txnSlot(in.Key, op.Key)
		if i < 0 {
			return s, false
		}
		switch op.Op {
		case OpPut:
			if m := out.Written(); known && m != 0 {
				if v := s.k[i]; v.present && v.pending == 0 && m <= v.mod {
					return s, false // a version the key had: it would name two values
				}
				s.k[i] = version{present: true, value: op.Value, mod: m}
			} else {
				s.k[i] = version{present: true, value: op.Value, pending: in.ID, lo: lo}
			}
		case OpDelete:
			s.k[i] = version{}
		case OpGet:
			if !known {
				continue
			}
			if g >= len(out.Gets) {
				return s, false
			}
			a := out.Gets[g]
			g++
			v := s.k[i]
			if a.Found != v.present || a.Found && a.Value != v.value {
				return s, false
			}
			if a.Found {
				var ok bool
				if s, ok = s.hasMod(i, a.Mod); !ok {
					return s, false
				}
			}
		default:
			return s, false
		}
	}
	return s, !known || g == len(out.Gets)
}

func describeVersioned(in Input, out Output) string {
	var b strings.Builder
	switch in.Op {
	case OpGet:
		fmt.Fprintf(&b, "get(%q)", in.Key)
	case OpPut:
		fmt.Fprintf(&b, "put(%q, %q)", in.Key, in.Value)
	case OpPutIfMatch:
		fmt.Fprintf(&b, "put(%q, %q, if-match %d)", in.Key, in.Value, in.Mod)
	case OpPutIfAbsent:
		fmt.Fprintf(&b, "put(%q, %q, if-none-match *)", in.Key, in.Value)
	case OpDeleteIfMatch:
		fmt.Fprintf(&b, "delete(%q, if-match %d)", in.Key, in.Mod)
	case OpTxn:
		fmt.Fprintf(&b, "txn(%s: %s)", in.Key, describeTxn(in.Txn))
	default:
		fmt.Fprintf(&b, "%s(%q)", in.Op, in.Key)
	}
	switch out.Result {
	case ResultValue:
		fmt.Fprintf(&b, " -> %q@%d", out.Value, out.Mod)
	case ResultPrecondition:
		fmt.Fprintf(&b, " -> 412, current %d", out.Mod)
	case ResultOK:
		if in.Op == OpTxn {
			fmt.Fprintf(&b, " -> succeeded %v", out.Succeeded)
			for _, g := range out.Gets {
				if g.Found {
					fmt.Fprintf(&b, ", %q@%d", g.Value, g.Mod)
				} else {
					b.WriteString(", absent")
				}
			}
		} else {
			b.WriteString(" -> ok")
		}
	default:
		fmt.Fprintf(&b, " -> %s", out.Result)
	}
	if out.Index != 0 {
		fmt.Fprintf(&b, " at %d", out.Index)
	}
	return b.String()
}

func describeTxn(t *Txn) string {
	if t == nil {
		return "none"
	}
	var cs []string
	for _, c := range t.Compares {
		op := "="
		if c.NotEqual {
			op = "!="
		}
		switch c.Target {
		case "value":
			cs = append(cs, fmt.Sprintf("value(%s)%s%q", c.Key, op, c.Value))
		case "mod":
			cs = append(cs, fmt.Sprintf("mod(%s)%s%d", c.Key, op, c.Mod))
		default:
			cs = append(cs, fmt.Sprintf("exists(%s)%s%v", c.Key, op, c.Exists))
		}
	}
	branch := func(ops []TxnOp) string {
		var s []string
		for _, o := range ops {
			switch o.Op {
			case OpPut:
				s = append(s, fmt.Sprintf("put %s=%q", o.Key, o.Value))
			default:
				s = append(s, fmt.Sprintf("%s %s", o.Op, o.Key))
			}
		}
		return strings.Join(s, "; ")
	}
	return fmt.Sprintf("if %s then [%s] else [%s]", strings.Join(cs, " && "), branch(t.Success), branch(t.Failure))
}

// CASOps turns the recorded single-key operations of a history (every
// kind but OpTxn) into porcupine operations for CASModel. Failed
// operations are left out, and so are unknown writes nothing could have
// observed: a put whose value no read returned, on a key where every
// version anyone saw is that of a known write; a delete after whose call
// nothing saw the key absent. The others return after every operation, as
// porcupine expects of a pending one.
func CASOps(ops []Op) []porcupine.Operation {
	var end int64
	valueSeen := map[string]bool{} // key \x00 value
	known := map[string]map[uint64]bool{}
	foreign := map[string]bool{} // keys where a version was seen that no known write made
	lastAbsent := map[string]int64{}
	for _, op := range ops {
		end = max(end, int64(op.Return), int64(op.Call))
	}
	for _, op := range ops {
		k, o := op.Input.Key, op.Output
		if op.Input.Op == OpTxn {
			continue
		}
		if known[k] == nil {
			known[k] = map[uint64]bool{}
		}
		if o.Result == ResultOK && op.Input.Op != OpDeleteIfMatch && op.Input.Op != OpDelete && o.Written() != 0 {
			known[k][o.Written()] = true
		}
		absent := o.Result == ResultNotFound || o.Result == ResultPrecondition && o.Mod == 0 ||
			o.Result == ResultOK && op.Input.Op == OpPutIfAbsent
		if absent && int64(op.Return) > lastAbsent[k] {
			lastAbsent[k] = int64(op.Return)
		}
		if o.Result == ResultValue {
			valueSeen[k+"\x00"+o.Value] = true
		}
	}
	for _, op := range ops {
		k, o := op.Input.Key, op.Output
		var seen []uint64
		switch {
		case o.Result == ResultValue, o.Result == ResultPrecondition:
			seen = append(seen, o.Mod)
		case o.Result == ResultOK && op.Input.Op == OpPutIfMatch || o.Result == ResultOK && op.Input.Op == OpDeleteIfMatch:
			seen = append(seen, op.Input.Mod)
		}
		for _, m := range seen {
			if m != 0 && !known[k][m] {
				foreign[k] = true
			}
		}
	}
	out := make([]porcupine.Operation, 0, len(ops))
	for i, op := range ops {
		if op.Input.Op == OpTxn {
			continue
		}
		ret := int64(op.Return)
		switch op.Output.Result {
		case ResultFailed:
			continue
		case ResultUnknown:
			k := op.Input.Key
			switch op.Input.Op {
			case OpPut, OpPutIfMatch, OpPutIfAbsent:
				if !valueSeen[k+"\x00"+op.Input.Value] && !foreign[k] {
					continue
				}
			case OpDelete, OpDeleteIfMatch:
				if lastAbsent[k] < int64(op.Call) {
					continue
				}
			default:
				continue
			}
			ret = end + 1
		}
		in := op.Input
		in.ID = i + 1
		out = append(out, porcupine.Operation{
			ClientId: op.Client, Input: in, Call: int64(op.Call), Output: op.Output, Return: ret, Metadata: op.Node,
		})
	}
	return out
}

// TxnOps turns the transactions of a history into porcupine operations
// for TxnModel: failed ones are left out, and so are unknown ones that
// write nothing in either branch; the other unknown ones return after
// every operation.
func TxnOps(ops []Op) []porcupine.Operation {
	var end int64
	for _, op := range ops {
		end = max(end, int64(op.Return), int64(op.Call))
	}
	out := make([]porcupine.Operation, 0, len(ops))
	for i, op := range ops {
		if op.Input.Op != OpTxn || op.Input.Txn == nil {
			continue
		}
		ret := int64(op.Return)
		switch op.Output.Result {
		case ResultFailed:
			continue
		case ResultUnknown:
			if !op.Input.Txn.writes() {
				continue
			}
			ret = end + 1
		}
		in := op.Input
		in.ID = i + 1
		out = append(out, porcupine.Operation{
			ClientId: op.Client, Input: in, Call: int64(op.Call), Output: op.Output, Return: ret, Metadata: op.Node,
		})
	}
	return out
}

// writes reports whether a branch of t writes.
func (t *Txn) writes() bool {
	for _, ops := range [][]TxnOp{t.Success, t.Failure} {
		for _, o := range ops {
			if o.Op != OpGet {
				return true
			}
		}
	}
	return false
}

// CheckCAS checks the single-key operations of ops against CASModel, and
// CheckTxn the transactions against TxnModel, as CheckLinearizable does
// for Model.
func CheckCAS(ops []Op, notes []Note, timeout time.Duration, vizPath string) LinResult {
	return checkModel(CASModel, CASOps(ops), notes, timeout, vizPath)
}

// CheckTxn checks the transactions of ops against TxnModel; see CheckCAS.
func CheckTxn(ops []Op, notes []Note, timeout time.Duration, vizPath string) LinResult {
	return checkModel(TxnModel, TxnOps(ops), notes, timeout, vizPath)
}

func checkModel(m porcupine.Model, pops []porcupine.Operation, notes []Note, timeout time.Duration, vizPath string) LinResult {
	if timeout <= 0 {
		timeout = DefaultCheckTimeout
	}
	start := time.Now()
	res, info := porcupine.CheckOperationsVerbose(m, pops, timeout)
	r := LinResult{Result: res, Checked: len(pops), Keys: len(keysOf(pops)), Took: time.Since(start)}
	if res == porcupine.Illegal {
		for _, part := range partitionByKey(pops) {
			if porcupine.CheckOperationsTimeout(m, part, timeout) != porcupine.Ok {
				r.BadKeys = append(r.BadKeys, part[0].Input.(Input).Key)
			}
		}
		slices.Sort(r.BadKeys)
	}
	if res != porcupine.Ok && vizPath != "" {
		info.AddAnnotations(annotations(notes))
		if err := porcupine.VisualizePath(m, info, vizPath); err != nil {
			r.Err = fmt.Errorf("robustness: visualization: %w", err)
		} else {
			r.Visualization = vizPath
		}
	}
	return r
}

// CheckCASAcrossGroups is CheckCAS for a history whose keys lived in more
// than one raft group (through routers while buckets moved): one group's
// raft indexes do not order operations served by another, so the model
// gets none (Output.Index cleared) and orders by real time alone. The
// versions still name values: a key's versions go on across groups, and
// a put's is its answer's ETag (a transaction's, its mod_index).
func CheckCASAcrossGroups(ops []Op, notes []Note, timeout time.Duration, vizPath string) LinResult {
	return checkModel(CASModel, CASOps(withoutIndexes(ops)), notes, timeout, vizPath)
}

// CheckTxnAcrossGroups is CheckTxn for such a history; see
// CheckCASAcrossGroups.
func CheckTxnAcrossGroups(ops []Op, notes []Note, timeout time.Duration, vizPath string) LinResult {
	return checkModel(TxnModel, TxnOps(withoutIndexes(ops)), notes, timeout, vizPath)
}

// withoutIndexes is ops with every answer's raft index cleared.
func withoutIndexes(ops []Op) []Op {
	out := make([]Op, len(ops))
	for i, op := range ops {
		op.Output.Index = 0
		out[i] = op
	}
	return out
}
