package kvstore

import (
	"bytes"
	"context"
	"fmt"
	"iter"
	"time"
)

// CompareTarget is what a Compare looks at.
type CompareTarget uint8

// The targets of a Compare.
const (
	// CompareValue compares the key's value, bytewise. On an absent key
	// every comparison of its value is false, as in etcd.
	CompareValue CompareTarget = iota + 1
	// CompareMod compares the key's ModIndex (0 when absent).
	CompareMod
	// CompareCreate compares the key's CreateIndex (0 when absent).
	CompareCreate
	// CompareExists compares whether the key exists (Equal or NotEqual).
	CompareExists
)

// CompareOp is how a Compare compares.
type CompareOp uint8

// The operators of a Compare: the key's side is on the left.
const (
	Equal CompareOp = iota + 1
	NotEqual
	Greater
	Less
)

// Compare is one condition of a Txn, on the state before the Txn.
type Compare struct {
	Key    string
	Target CompareTarget
	Op     CompareOp
	// Value is compared with the key's value (CompareValue).
	Value []byte
	// Index is compared with the key's ModIndex (CompareMod) or
	// CreateIndex (CompareCreate).
	Index uint64
	// Exists is compared with whether the key exists (CompareExists).
	Exists bool
}

// TxnOpType says what a TxnOp does.
type TxnOpType uint8

// The operations of a Txn's branch.
const (
	TxnPut TxnOpType = iota + 1
	TxnDelete
	TxnGet
)

// TxnOp is one operation of a Txn's branch.
type TxnOp struct {
	Type  TxnOpType
	Key   string
	Value []byte        // TxnPut
	TTL   time.Duration // TxnPut; 0: none
}

// Txn is a transaction: if every Compare holds, the Success operations
// apply, else the Failure ones; in order, each seeing those before it,
// atomically, in one raft entry.
type Txn struct {
	Compares         []Compare
	Success, Failure []TxnOp
}

// TxnResult is what a Txn did.
type TxnResult struct {
	// Succeeded says every Compare held, so Success was applied.
	Succeeded bool
	// Index is the raft index the Txn applied at (for a duplicate: the
	// first time).
	Index uint64
	// ModIndex is the version the branch taken gave the keys it put, as
	// Result.ModIndex (0 when it put none).
	ModIndex uint64
	// Gets holds one result per TxnGet of the branch taken, in order.
	Gets []GetResult
	// Duplicate says the Txn was answered from the dedup table, not
	// applied again.
	Duplicate bool
}

// GetResult is the result of a TxnGet: the key as it was at that point of
// the Txn. An absent key has Found false and only its Key set.
type GetResult struct {
	KeyValue
	Found bool
}

// Txn applies t in one entry, atomically, decided in the state machine.
// With wo it is exactly-once: a retry of a Txn already applied is answered
// with the first result, kept in the dedup table (see storedTxn for the
// bound on the get results kept). On a shard group member every key of t
// (its compares and both branches) must be in a bucket the group serves:
// otherwise a *WrongGroupError or ErrBucketMoving, and nothing applied.
func (s *Store) Txn(ctx context.Context, t Txn, wo WriteOptions) (TxnResult, error) {
	r, err := s.txn(ctx, t, wo)
	s.met.countWrite(err)
	return r, err
}

func (s *Store) txn(ctx context.Context, t Txn, wo WriteOptions) (TxnResult, error) {
	if err := t.check(); err != nil {
		return TxnResult{}, err
	}
	if err := checkWriteOptions(wo); err != nil {
		return TxnResult{}, err
	}
	if s.mode == modeConfig {
		return TxnResult{}, ErrNoKeys
	}
	if s.mode == modeShard {
		if err := s.awaitServing(ctx, t.keys()); err != nil {
			return TxnResult{}, err
		}
	}
	if err := s.checkQuota(t.putSize(), t.keys(), wo); err != nil {
		return TxnResult{}, err
	}
	local := true
	if brokenCAS {
		t, local = s.decideLocally(t)
	}
	r := s.submit(ctx, request{Txn: &t, ClientID: wo.ClientID, Seq: wo.Seq}, t.size()+len(wo.ClientID))
	var res TxnResult
	if r.txn != nil {
		res = *r.txn
		res.Succeeded = res.Succeeded && local
	}
	if r.err != nil {
		return res, r.err
	}
	if r.txn == nil {
		// A duplicate of a plain write is refused at apply; this is a
		// broken invariant.
		panic(fmt.Sprintf("kvstore: transaction applied at %d without a result", r.index))
	}
	return res, nil
}

// decideLocally evaluates t's compares on this member's applied state and
// returns the branch they chose as a Txn without compares, and whether
// they held: the broken build's (brokenCAS) way, racing with every write
// applied between now and its entry.
func (s *Store) decideLocally(t Txn) (Txn, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	for i := range t.Compares {
		c := &t.Compares[i]
		if it, found := s.getLocked(c.Key); !c.holds(it, found) {
			return Txn{Success: t.Failure}, false
		}
	}
	return Txn{Success: t.Success}, true
}

// The most compares, and operations per branch, of a Txn (etcd's default
// --max-txn-ops is 128 too).
const (
	MaxTxnCompares = 128
	MaxTxnOps      = 128
)

// check reports the first problem with t, before it is proposed and again
// at apply.
func (t *Txn) check() error {
	switch {
	case len(t.Compares) == 0 && len(t.Success) == 0 && len(t.Failure) == 0:
		return detailf(ErrBadTxn, "the transaction has no compares and no operations")
	case len(t.Compares) > MaxTxnCompares:
		return detailf(ErrBadTxn, "the transaction has more than %d compares", MaxTxnCompares)
	case len(t.Success) > MaxTxnOps:
		return detailf(ErrBadTxn, "the transaction has more than %d success operations", MaxTxnOps)
	case len(t.Failure) > MaxTxnOps:
		return detailf(ErrBadTxn, "the transaction has more than %d failure operations", MaxTxnOps)
	}
	for i := range t.Compares {
		c := &t.Compares[i]
		switch {
		case c.Key == "":
			return detailf(ErrBadTxn, "compare %d has an empty key", i)
		case c.Target < CompareValue || c.Target > CompareExists:
			return detailf(ErrBadTxn, "compare %d has an unknown target %d", i, c.Target)
		case c.Op < Equal || c.Op > Less:
			return detailf(ErrBadTxn, "compare %d has an unknown operator %d", i, c.Op)
		case c.Target == CompareExists && c.Op != Equal && c.Op != NotEqual:
			return detailf(ErrBadTxn, "compare %d: existence compares with equal or not equal only", i)
		}
	}
	for _, branch := range []struct {
		name string
		ops  []TxnOp
	}{{"success", t.Success}, {"failure", t.Failure}} {
		for i := range branch.ops {
			op := &branch.ops[i]
			switch {
			case op.Key == "":
				return detailf(ErrBadTxn, "%s operation %d has an empty key", branch.name, i)
			case op.Type < TxnPut || op.Type > TxnGet:
				return detailf(ErrBadTxn, "%s operation %d has an unknown type %d", branch.name, i, op.Type)
			case op.TTL != 0 && op.Type != TxnPut:
				return detailf(ErrBadTxn, "%s operation %d: only a put has a TTL", branch.name, i)
			}
			if err := checkTTL(op.TTL); err != nil {
				return err
			}
		}
	}
	return nil
}

// keys yields every key of t: its compares' and both branches'.
func (t *Txn) keys() iter.Seq[string] {
	return func(yield func(string) bool) {
		for i := range t.Compares {
			if !yield(t.Compares[i].Key) {
				return
			}
		}
		for _, ops := range [][]TxnOp{t.Success, t.Failure} {
			for i := range ops {
				if !yield(ops[i].Key) {
					return
				}
			}
		}
	}
}

// size is t's approximate encoded size.
func (t *Txn) size() int {
	n := 16
	for i := range t.Compares {
		n += len(t.Compares[i].Key) + len(t.Compares[i].Value) + 16
	}
	for _, ops := range [][]TxnOp{t.Success, t.Failure} {
		for i := range ops {
			n += len(ops[i].Key) + len(ops[i].Value) + 16
		}
	}
	return n
}

// holds says whether c holds for the key's item it (found: present).
func (c *Compare) holds(it item, found bool) bool {
	var cmp int
	switch c.Target {
	case CompareValue:
		if !found {
			return false
		}
		cmp = bytes.Compare(it.valueBytes(), c.Value)
	case CompareMod, CompareCreate:
		var v uint64
		if found {
			v = it.mod
			if c.Target == CompareCreate {
				v = it.createIndex()
			}
		}
		switch {
		case v < c.Index:
			cmp = -1
		case v > c.Index:
			cmp = 1
		}
	case CompareExists:
		if found != c.Exists {
			cmp = 1
		}
	default:
		return false
	}
	switch c.Op {
	case Equal:
		return cmp == 0
	case NotEqual:
		return cmp != 0
	case Greater:
		return cmp > 0
	case Less:
		return cmp < 0
	}
	return false
}

// getLocked reads key from the state. s.mu must be held.
func (s *Store) getLocked(key string) (item, bool) {
	return s.mu.buckets[s.bucketOf(key)].data.Get(item{prefix: keyPrefix(key), key: key})
}

// applyTxnLocked applies r, a Txn request that the session check let
// through, at s.ap.index. s.mu must be held.
func (s *Store) applyTxnLocked(r *request) result {
	t := r.Txn
	index := s.ap.index
	if err := t.check(); err != nil {
		return result{err: err}
	}
	if s.mode == modeConfig {
		return result{err: ErrNoKeys}
	}
	if s.mode == modeShard && !brokenFence {
		if err := s.fenceLocked(t.keys()); err != nil {
			return result{err: err}
		}
	}
	var touched []int
	if r.ClientID != "" {
		if !validClientID(r.ClientID) || r.Seq == 0 {
			return result{err: ErrBadClientID}
		}
		touched = s.touchedBuckets(t.keys(), nil)
		if e, found, tooOld := s.lookupLocked(touched, r.ClientID, r.Seq); found {
			return s.txnDuplicateLocked(t, e)
		} else if tooOld {
			return result{err: ErrSeqTooOld}
		}
	}
	res := &TxnResult{Succeeded: true, Index: index}
	for i := range t.Compares {
		c := &t.Compares[i]
		it, found := s.getLocked(c.Key)
		if !c.holds(it, found) {
			res.Succeeded = false
			break
		}
	}
	ops := t.Success
	if !res.Succeeded {
		ops = t.Failure
	}
	var pv putVersion
	for i := range ops {
		op := &ops[i]
		switch op.Type {
		case TxnPut:
			pv.add(s.putLocked(op.Key, op.Value, op.TTL).mod)
		case TxnDelete:
			s.deleteLocked(op.Key, EventDelete)
		case TxnGet:
			g := GetResult{KeyValue: KeyValue{Key: op.Key}}
			if it, found := s.getLocked(op.Key); found {
				g = GetResult{KeyValue: it.keyValue(false), Found: true}
			}
			res.Gets = append(res.Gets, g)
		}
	}
	res.ModIndex = pv.v
	if r.ClientID != "" {
		kept := keepTxnResult(res)
		for _, b := range touched {
			s.recordLocked(b, r.ClientID, dedupEntry{seq: r.Seq, index: index, version: pv.v, txn: kept}, index)
		}
	}
	return result{index: index, mod: pv.v, txn: res}
}

// txnDuplicateLocked answers t, a retry of the Txn whose result e keeps.
// Get results whose values were not kept are read from the state when the
// key is still at the version the Txn saw (the same value, since a
// ModIndex names one version); otherwise the answer says they are gone.
// s.mu must be held.
func (s *Store) txnDuplicateLocked(t *Txn, e dedupEntry) result {
	if e.txn == nil {
		return result{err: detailf(ErrBadSeq, "sequence number %d of this client was applied at index %d as a write, not a transaction", e.seq, e.index)}
	}
	kept := e.txn
	res := &TxnResult{Succeeded: kept.succeeded, Index: e.index, ModIndex: e.version, Duplicate: true}
	ops := t.Success
	if !kept.succeeded {
		ops = t.Failure
	}
	var keys []string
	for i := range ops {
		if ops[i].Type == TxnGet {
			keys = append(keys, ops[i].Key)
		}
	}
	gone := kept.kept == keptNothing && len(keys) > 0
	if kept.kept != keptNothing {
		if len(keys) != len(kept.gets) {
			return result{err: detailf(ErrBadSeq, "sequence number %d of this client was another transaction", e.seq)}
		}
		for i, g := range kept.gets {
			r := GetResult{KeyValue: KeyValue{Key: keys[i]}, Found: g.found}
			if g.found {
				r.CreateIndex, r.ModIndex, r.TTL = g.create, g.mod, g.ttl
				switch cur, ok := s.getLocked(keys[i]); {
				case kept.kept == keptValues:
					r.Value = g.value
				case ok && g.mod != 0 && cur.mod == g.mod && cur.createIndex() == g.create:
					r.Value = cur.valueBytes()
				default:
					gone = true
				}
			}
			res.Gets = append(res.Gets, r)
		}
	}
	if gone {
		return result{index: e.index, dup: true, txn: res, err: detailf(ErrTxnResultNotKept,
			"the transaction was applied already at index %d (succeeded: %v); its get results were too large to keep for a retry and have changed since",
			e.index, kept.succeeded)}
	}
	return result{index: e.index, dup: true, txn: res}
}

// Bounds on a Txn result kept for its retries in the dedup table, one per
// (client, seq) and bucket: the versions of at most maxKeptGets gets, and
// their values when they come to at most maxKeptValueBytes. A retry of a
// Txn whose values were not kept reads them from the state if the keys
// are still at those versions.
const (
	maxKeptGets       = 128
	maxKeptValueBytes = 512
)

// What a storedTxn keeps of the get results.
const (
	keptNothing  = 0 // Succeeded only
	keptVersions = 1 // and each get's versions
	keptValues   = 2 // and each get's value
)

// storedTxn is a Txn's result as the dedup table keeps it.
type storedTxn struct {
	succeeded bool
	kept      uint8
	gets      []storedGet
}

type storedGet struct {
	found       bool
	create, mod uint64
	ttl         time.Duration
	value       []byte // shared with the state it was read from
}

// keepTxnResult is what the dedup table keeps of r.
func keepTxnResult(r *TxnResult) *storedTxn {
	st := &storedTxn{succeeded: r.Succeeded, kept: keptValues}
	if len(r.Gets) > maxKeptGets {
		st.kept = keptNothing
		return st
	}
	size := 0
	for i := range r.Gets {
		size += len(r.Gets[i].Value)
	}
	if size > maxKeptValueBytes {
		st.kept = keptVersions
	}
	for _, g := range r.Gets {
		sg := storedGet{found: g.Found, create: g.CreateIndex, mod: g.ModIndex, ttl: g.TTL}
		if st.kept == keptValues {
			sg.value = g.Value
		}
		st.gets = append(st.gets, sg)
	}
	return st
}

// encode writes st (nil: none) in the binary form of the dedup table:
// uvarint 0 for none, else 1 + kept; then succeeded, the get count, and
// per get found, CreateIndex, ModIndex, TTL (ns) and, when values are
// kept, the value.
func (st *storedTxn) encode(e *binWriter) {
	if st == nil {
		e.uvarint(0)
		return
	}
	e.uvarint(1 + uint64(st.kept))
	e.uvarint(boolUint(st.succeeded))
	e.uvarint(uint64(len(st.gets)))
	for _, g := range st.gets {
		e.uvarint(boolUint(g.found))
		e.uvarint(g.create)
		e.uvarint(g.mod)
		e.uvarint(uint64(g.ttl))
		if st.kept == keptValues {
			e.field(g.value)
		}
	}
}

// decodeStoredTxn reads what storedTxn.encode wrote.
func decodeStoredTxn(d *binReader) *storedTxn {
	k := d.uvarint("transaction result")
	if d.err != nil || k == 0 {
		return nil
	}
	if k > 1+keptValues {
		d.fail("transaction result of kind %d", k)
		return nil
	}
	st := &storedTxn{kept: uint8(k - 1), succeeded: d.uvarint("transaction succeeded") == 1}
	n := d.count("transaction get count")
	if d.err == nil && (n > MaxTxnOps || n > 0 && st.kept == keptNothing) {
		d.fail("transaction result of %d gets", n)
	}
	for i := 0; i < n && d.err == nil; i++ {
		g := storedGet{found: d.uvarint("get found") == 1, create: d.uvarint("get create index"), mod: d.uvarint("get mod index"),
			ttl: time.Duration(min(d.uvarint("get ttl"), uint64(MaxTTL)))}
		if st.kept == keptValues {
			g.value = d.field("get value", maxField)
			if !g.found {
				g.value = nil
			}
		}
		st.gets = append(st.gets, g)
	}
	if d.err != nil {
		return nil
	}
	return st
}
