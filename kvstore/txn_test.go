package kvstore

import (
	"bytes"
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/raftkv/raftkv/raftnode"
)

// TestCompareHolds: each target and operator on a present key (value "b",
// created at 3, modified at 5) and on an absent one, as etcd decides them:
// an absent key's versions are 0 and no comparison of its value holds.
func TestCompareHolds(t *testing.T) {
	present := newKV("k", []byte("b"), 3, 5, 0)
	tests := []struct {
		c                   Compare
		ifPresent, ifAbsent bool
	}{
		{Compare{Target: CompareValue, Op: Equal, Value: []byte("b")}, true, false},
		{Compare{Target: CompareValue, Op: Equal, Value: []byte("")}, false, false},
		{Compare{Target: CompareValue, Op: NotEqual, Value: []byte("a")}, true, false},
		{Compare{Target: CompareValue, Op: NotEqual, Value: []byte("b")}, false, false},
		{Compare{Target: CompareValue, Op: Greater, Value: []byte("a")}, true, false},
		{Compare{Target: CompareValue, Op: Greater, Value: []byte("b")}, false, false},
		{Compare{Target: CompareValue, Op: Greater, Value: []byte("b\x00")}, false, false},
		{Compare{Target: CompareValue, Op: Less, Value: []byte("b\x00")}, true, false},
		{Compare{Target: CompareValue, Op: Less, Value: []byte("\xff")}, true, false},
		{Compare{Target: CompareValue, Op: Less, Value: []byte("b")}, false, false},
		{Compare{Target: CompareMod, Op: Equal, Index: 5}, true, false},
		{Compare{Target: CompareMod, Op: Equal, Index: 0}, false, true},
		{Compare{Target: CompareMod, Op: NotEqual, Index: 5}, false, true},
		{Compare{Target: CompareMod, Op: Greater, Index: 4}, true, false},
		{Compare{Target: CompareMod, Op: Greater, Index: 5}, false, false},
		{Compare{Target: CompareMod, Op: Less, Index: 6}, true, true},
		{Compare{Target: CompareMod, Op: Less, Index: 5}, false, true},
		{Compare{Target: CompareCreate, Op: Equal, Index: 3}, true, false},
		{Compare{Target: CompareCreate, Op: Equal, Index: 5}, false, false},
		{Compare{Target: CompareCreate, Op: NotEqual, Index: 0}, true, false},
		{Compare{Target: CompareCreate, Op: Greater, Index: 2}, true, false},
		{Compare{Target: CompareCreate, Op: Less, Index: 3}, false, true},
		{Compare{Target: CompareExists, Op: Equal, Exists: true}, true, false},
		{Compare{Target: CompareExists, Op: Equal, Exists: false}, false, true},
		{Compare{Target: CompareExists, Op: NotEqual, Exists: true}, false, true},
		{Compare{Target: CompareExists, Op: NotEqual, Exists: false}, true, false},
	}
	for _, tt := range tests {
		if got := tt.c.holds(present, true); got != tt.ifPresent {
			t.Errorf("%+v on a present key: %v, want %v", tt.c, got, tt.ifPresent)
		}
		if got := tt.c.holds(item{}, false); got != tt.ifAbsent {
			t.Errorf("%+v on an absent key: %v, want %v", tt.c, got, tt.ifAbsent)
		}
	}
}

// TestTxnCheck: malformed transactions are refused before proposing (and
// at apply) with a bad request that says what is wrong.
func TestTxnCheck(t *testing.T) {
	get := TxnOp{Type: TxnGet, Key: "k"}
	tests := []struct {
		txn  Txn
		want string
	}{
		{Txn{}, "no compares and no operations"},
		{Txn{Compares: []Compare{{Target: CompareMod, Op: Equal}}}, "compare 0 has an empty key"},
		{Txn{Compares: []Compare{{Key: "k", Op: Equal}}}, "unknown target"},
		{Txn{Compares: []Compare{{Key: "k", Target: CompareMod, Op: 9}}}, "unknown operator"},
		{Txn{Compares: []Compare{{Key: "k", Target: CompareExists, Op: Greater}}}, "existence compares with equal or not equal only"},
		{Txn{Success: []TxnOp{get, {Type: TxnPut}}}, "success operation 1 has an empty key"},
		{Txn{Failure: []TxnOp{{Type: 7, Key: "k"}}}, "failure operation 0 has an unknown type"},
		{Txn{Success: []TxnOp{{Type: TxnDelete, Key: "k", TTL: time.Second}}}, "only a put has a TTL"},
		{Txn{Success: []TxnOp{{Type: TxnPut, Key: "k", TTL: -time.Second}}}, "TTL"},
		{Txn{Compares: make([]Compare, MaxTxnCompares+1)}, "more than 128 compares"},
		{Txn{Failure: make([]TxnOp, MaxTxnOps+1)}, "more than 128 failure operations"},
	}
	s := newBareStore(t)
	for i, tt := range tests {
		err := tt.txn.check()
		if !errors.Is(err, ErrBadTxn) && !errors.Is(err, ErrBadTTL) || !strings.Contains(err.(interface{ HumanMessage() string }).HumanMessage(), tt.want) {
			t.Errorf("%+v: %v, want a bad request saying %q", tt.txn, err, tt.want)
		}
		if status(err) != 400 {
			t.Errorf("%+v: status %d", tt.txn, status(err))
		}
		if r := applyOwn(t, s, uint64(i+1), request{Txn: &tt.txn}); r.err == nil || r.err.Error() != err.Error() {
			t.Errorf("%+v at apply: %v, want %v", tt.txn, r.err, err)
		}
	}
	if s.Len() != 0 {
		t.Fatalf("refused transactions wrote %d keys", s.Len())
	}
	if err := (&Txn{Success: []TxnOp{{Type: TxnPut, Key: "k", TTL: time.Second}}, Compares: []Compare{{Key: "k", Target: CompareExists, Op: NotEqual}}}).check(); err != nil {
		t.Fatal(err)
	}
}

// txnStep is one transaction of a script and what it must do.
type txnStep struct {
	name      string
	txn       Txn
	succeeded bool
	gets      []GetResult
	after     map[string]string // every key afterwards
}

func runTxnSteps(t *testing.T, s *Store, first uint64, steps []txnStep) uint64 {
	t.Helper()
	index := first
	for _, st := range steps {
		r := applyOwn(t, s, index, request{Txn: &st.txn})
		if r.err != nil {
			t.Fatalf("%s: %v", st.name, r.err)
		}
		want := &TxnResult{Succeeded: st.succeeded, Index: index, Gets: st.gets}
		branch := st.txn.Success
		if !st.succeeded {
			branch = st.txn.Failure
		}
		for _, op := range branch {
			if op.Type == TxnPut {
				want.ModIndex = index // the version its puts gave their keys
			}
		}
		if !reflect.DeepEqual(r.txn, want) || r.index != index || r.mod != want.ModIndex {
			t.Fatalf("%s: %+v, want %+v", st.name, r.txn, want)
		}
		if got := stateOf(s); !reflect.DeepEqual(got, st.after) {
			t.Fatalf("%s: state %q, want %q", st.name, got, st.after)
		}
		index++
	}
	return index
}

func found(key, value string, create, mod uint64) GetResult {
	return GetResult{KeyValue: KeyValue{Key: key, Value: []byte(value), CreateIndex: create, ModIndex: mod}, Found: true}
}

func absent(key string) GetResult { return GetResult{KeyValue: KeyValue{Key: key}} }

func cmpMod(key string, op CompareOp, index uint64) Compare {
	return Compare{Key: key, Target: CompareMod, Op: op, Index: index}
}

func tput(key, value string) TxnOp { return TxnOp{Type: TxnPut, Key: key, Value: []byte(value)} }
func tdel(key string) TxnOp        { return TxnOp{Type: TxnDelete, Key: key} }
func tget(key string) TxnOp        { return TxnOp{Type: TxnGet, Key: key} }

// TestTxnSemantics: a transaction takes one branch by all its compares,
// decided on the state before it; its operations apply in order, each
// seeing those before it, with the versions of the transaction's index;
// the conditional writes of the HTTP layer (If-Match, If-None-Match) are
// transactions of that shape.
func TestTxnSemantics(t *testing.T) {
	s := newBareStore(t)
	runTxnSteps(t, s, 1, []txnStep{
		{"create if absent", Txn{
			Compares: []Compare{{Key: "a", Target: CompareExists, Op: Equal, Exists: false}},
			Success:  []TxnOp{tput("a", "1"), tget("a")},
			Failure:  []TxnOp{tget("a")},
		}, true, []GetResult{found("a", "1", 1, 1)}, map[string]string{"a": "1"}},
		{"create if absent, present", Txn{
			Compares: []Compare{{Key: "a", Target: CompareExists, Op: Equal, Exists: false}},
			Success:  []TxnOp{tput("a", "2")},
			Failure:  []TxnOp{tget("a")},
		}, false, []GetResult{found("a", "1", 1, 1)}, map[string]string{"a": "1"}},
		{"if-match at the version", Txn{
			Compares: []Compare{cmpMod("a", Equal, 1)},
			Success:  []TxnOp{tput("a", "3")},
			Failure:  []TxnOp{tget("a")},
		}, true, nil, map[string]string{"a": "3"}},
		{"if-match at an old version", Txn{
			Compares: []Compare{cmpMod("a", Equal, 1)},
			Success:  []TxnOp{tdel("a")},
			Failure:  []TxnOp{tget("a")},
		}, false, []GetResult{found("a", "3", 1, 3)}, map[string]string{"a": "3"}},
		{"every compare must hold", Txn{
			Compares: []Compare{cmpMod("a", Equal, 3), {Key: "a", Target: CompareValue, Op: Equal, Value: []byte("x")}},
			Success:  []TxnOp{tput("b", "1")},
			Failure:  []TxnOp{tput("c", "1"), tget("c"), tget("nope")},
		}, false, []GetResult{found("c", "1", 5, 5), absent("nope")}, map[string]string{"a": "3", "c": "1"}},
		{"operations in order", Txn{
			Compares: []Compare{cmpMod("a", Equal, 3), {Key: "c", Target: CompareCreate, Op: Equal, Index: 5}},
			Success:  []TxnOp{tget("a"), tdel("a"), tget("a"), tput("a", "4"), tput("a", "5"), tget("a"), tdel("c"), tput("d", "1")},
		}, true, []GetResult{found("a", "3", 1, 3), absent("a"), found("a", "5", 6, 6)}, map[string]string{"a": "5", "d": "1"}},
		{"compares see the state before", Txn{
			Compares: []Compare{{Key: "d", Target: CompareValue, Op: Equal, Value: []byte("1")}},
			Success:  []TxnOp{tput("d", "2"), tget("d")},
		}, true, []GetResult{found("d", "2", 6, 7)}, map[string]string{"a": "5", "d": "2"}},
		{"a branch may be empty", Txn{
			Compares: []Compare{cmpMod("d", Less, 7)},
			Success:  []TxnOp{tput("d", "3")},
		}, false, nil, map[string]string{"a": "5", "d": "2"}},
		{"get only", Txn{Success: []TxnOp{tget("a"), tget("d")}}, true,
			[]GetResult{found("a", "5", 6, 6), found("d", "2", 6, 7)}, map[string]string{"a": "5", "d": "2"}},
	})
	kv, _ := getKV(t, s, "a")
	if kv.CreateIndex != 6 || kv.ModIndex != 6 {
		t.Fatalf("a after the transactions: %+v", kv)
	}
}

// TestTxnExactlyOnce: a retried transaction is not applied again and is
// answered with the first result, its gets included; when their values
// were too large to keep, a retry reads them back while the keys are at
// the same versions, and says they are gone once a key changed.
func TestTxnExactlyOnce(t *testing.T) {
	s := newBareStore(t)
	big := strings.Repeat("v", maxKeptValueBytes+1)
	applyOwn(t, s, 1, put("", 0, "small", "s", "big", big))
	txn := Txn{
		Compares: []Compare{cmpMod("small", Equal, 1)},
		Success:  []TxnOp{tput("n", "1"), tget("small"), tget("n")},
		Failure:  []TxnOp{tget("small")},
	}
	first := applyOwn(t, s, 2, request{Txn: &txn, ClientID: "c", Seq: 1})
	if first.err != nil || !first.txn.Succeeded {
		t.Fatalf("first: %+v", first)
	}
	applyOwn(t, s, 3, put("", 0, "small", "changed", "n", "2"))
	retry := applyOwn(t, s, 4, request{Txn: &txn, ClientID: "c", Seq: 1})
	want := *first.txn
	want.Duplicate = true
	if retry.err != nil || !retry.dup || retry.index != 2 || !reflect.DeepEqual(*retry.txn, want) {
		t.Fatalf("retry: %+v %+v, want %+v", retry, retry.txn, want)
	}
	if v, _ := s.local("n"); string(v) != "2" {
		t.Fatalf("the retry applied again: n = %q", v)
	}

	// Values over the bound are not kept.
	bigTxn := Txn{Success: []TxnOp{tget("big"), tget("small")}}
	first = applyOwn(t, s, 5, request{Txn: &bigTxn, ClientID: "c", Seq: 2})
	s.mu.RLock()
	e, ok, _ := s.mu.buckets[0].dedup.lookup("c", 2)
	s.mu.RUnlock()
	if !ok || e.txn.kept != keptVersions || e.txn.gets[0].value != nil {
		t.Fatalf("kept %+v", e.txn)
	}
	retry = applyOwn(t, s, 6, request{Txn: &bigTxn, ClientID: "c", Seq: 2})
	want = *first.txn
	want.Duplicate = true
	if retry.err != nil || !reflect.DeepEqual(*retry.txn, want) {
		t.Fatalf("retry with unchanged keys: %v %+v, want %+v", retry.err, retry.txn, want)
	}
	applyOwn(t, s, 7, put("", 0, "big", big+"!"))
	retry = applyOwn(t, s, 8, request{Txn: &bigTxn, ClientID: "c", Seq: 2})
	// It was applied: never a "not applied" answer (4xx, 503), but an
	// unknown outcome's 504 that says where it applied.
	if !errors.Is(retry.err, ErrTxnResultNotKept) || status(retry.err) != 504 || retry.txn == nil || !retry.txn.Succeeded || retry.txn.Index != 5 ||
		!strings.Contains(retry.err.Error(), "index 5") {
		t.Fatalf("retry after the key changed: %v %+v", retry.err, retry.txn)
	}

	// A seq used for a plain write, or for another transaction, is not
	// answered as this one.
	applyOwn(t, s, 9, put("c", 3, "p", "1"))
	if r := applyOwn(t, s, 10, request{Txn: &txn, ClientID: "c", Seq: 3}); !errors.Is(r.err, ErrBadSeq) {
		t.Fatalf("a transaction under a write's seq: %+v", r)
	}
	if r := applyOwn(t, s, 11, request{Txn: &Txn{Success: []TxnOp{tget("n")}}, ClientID: "c", Seq: 1}); !errors.Is(r.err, ErrBadSeq) {
		t.Fatalf("another transaction under a transaction's seq: %+v", r)
	}
	if r := applyOwn(t, s, 12, request{Txn: &txn, ClientID: "bad id", Seq: 3}); !errors.Is(r.err, ErrBadClientID) {
		t.Fatalf("a bad client id: %+v", r)
	}
}

// TestTxnFencedOnShardMembers: on a shard group member a transaction
// applies only if every one of its keys (compares and both branches, the
// branch not taken included) is in a bucket the group serves; otherwise
// nothing of it applies and it is not recorded as applied.
func TestTxnFencedOnShardMembers(t *testing.T) {
	const n = 4
	s := groupOneMember(t, []uint64{1, 1, 1, 2})
	own, other := keysIn(0, n, 1, "own")[0], keysIn(3, n, 1, "other")[0]
	for i, txn := range []Txn{
		{Compares: []Compare{cmpMod(other, Equal, 0)}, Success: []TxnOp{tput(own, "1")}},
		{Success: []TxnOp{tput(own, "1")}, Failure: []TxnOp{tget(other)}},
		{Success: []TxnOp{tput(own, "1"), tdel(other)}},
	} {
		r := applyOwn(t, s, uint64(2+i), request{Txn: &txn, ClientID: "c", Seq: uint64(1 + i)})
		var wg *WrongGroupError
		if !errors.As(r.err, &wg) || wg.Key != other || wg.Bucket != 3 || wg.Owner != 2 || r.txn != nil {
			t.Fatalf("transaction %d: %+v", i, r)
		}
		if s.Len() != 0 {
			t.Fatalf("transaction %d applied %d keys", i, s.Len())
		}
		if _, found, _ := s.mu.buckets[0].dedup.lookup("c", uint64(1+i)); found {
			t.Fatalf("transaction %d was recorded", i)
		}
		if err := s.awaitServing(t.Context(), txn.keys()); !errors.As(err, &wg) {
			t.Fatalf("transaction %d before proposing: %v", i, err)
		}
	}
	s.mu.shard.status[1] = Pulling
	moving := keysIn(1, n, 1, "moving")[0]
	r := applyOwn(t, s, 9, request{Txn: &Txn{Success: []TxnOp{tput(own, "1"), tput(moving, "1")}}})
	if r.err != ErrBucketMoving || s.Len() != 0 {
		t.Fatalf("a transaction with a key being pulled: %+v, %d keys", r, s.Len())
	}
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	if err := s.awaitServing(ctx, (&Txn{Success: []TxnOp{tget(moving)}}).keys()); err != ErrBucketMoving {
		t.Fatalf("waiting for a bucket being pulled: %v", err)
	}
}

// TestClusterTxn: transactions through a real 3-member cluster, from a
// follower, retried with the same client id and seq after the member
// that applied them stopped: every member holds the same state and the
// retry is answered as the first time.
func TestClusterTxn(t *testing.T) {
	c := newInprocCluster(t, 3, raftnode.Config{TickInterval: 20 * time.Millisecond})
	f := c.follower()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	idx := c.put(f, "a", []byte("1"))
	txn := Txn{Compares: []Compare{cmpMod("a", Equal, idx)}, Success: []TxnOp{tput("a", "2"), tget("a")}, Failure: []TxnOp{tget("a")}}
	r1, err := c.stors[f].Txn(ctx, txn, WriteOptions{ClientID: "cluster-client", Seq: 1})
	if err != nil || !r1.Succeeded || len(r1.Gets) != 1 || string(r1.Gets[0].Value) != "2" || r1.Gets[0].ModIndex != r1.Index {
		t.Fatalf("txn: %+v, %v", r1, err)
	}
	c.stop(f)
	other := (f + 1) % 3
	r2, err := c.stors[other].Txn(ctx, txn, WriteOptions{ClientID: "cluster-client", Seq: 1})
	if err != nil || !r2.Duplicate || r2.Index != r1.Index || !bytes.Equal(r2.Gets[0].Value, r1.Gets[0].Value) {
		t.Fatalf("retry at member %d: %+v, %v; first %+v", other+1, r2, err, r1)
	}
	r3, err := c.stors[other].Txn(ctx, txn, WriteOptions{})
	if err != nil || r3.Succeeded || r3.Gets[0].ModIndex != r1.Index {
		t.Fatalf("the same compare again: %+v, %v", r3, err)
	}
	for i := range c.stors {
		if c.stors[i] == nil {
			continue
		}
		if err := c.stors[i].WaitApplied(ctx, r3.Index); err != nil {
			t.Fatal(err)
		}
		kv, _, err := c.stors[i].GetKV(ctx, "a", ReadOptions{Stale: true})
		if err != nil || string(kv.Value) != "2" || kv.ModIndex != r1.Index || kv.CreateIndex != idx {
			t.Fatalf("member %d: %+v, %v", i+1, kv, err)
		}
	}
	if _, err := c.stors[other].Txn(ctx, Txn{}, WriteOptions{}); status(err) != 400 {
		t.Fatalf("an empty transaction: %v", err)
	}
}
