package daemon

import (
	"context"

	"github.com/raftkv/raftkv/httpapi"
	"github.com/raftkv/raftkv/kvstore"
)

// This file adapts kvstore's Store.Txn to httpapi's Store.

// Txn applies t as one write, under the writer's identity wo. On a shard
// member kvstore refuses a key of a bucket the group does not serve
// (WrongGroupError: 421 or 307) before anything is applied.
func (s store) Txn(ctx context.Context, t httpapi.Txn, wo httpapi.WriteOptions) (httpapi.TxnResult, error) {
	if err := s.gate(ctx, levelDataModel, "conditional writes and transactions"); err != nil {
		return httpapi.TxnResult{}, err
	}
	kt := kvstore.Txn{
		Compares: make([]kvstore.Compare, len(t.Compares)),
		Success:  kvTxnOps(t.Success),
		Failure:  kvTxnOps(t.Failure),
	}
	for i, c := range t.Compares {
		kt.Compares[i] = kvstore.Compare{
			Key:    c.Key,
			Target: kvCompareTarget(c.Target),
			Op:     kvCompareOp(c.Op),
			Value:  c.Value,
			Index:  c.Index,
			Exists: c.Exists,
		}
	}
	r, err := s.Store.Txn(ctx, kt, kvstore.WriteOptions{ClientID: wo.ClientID, Seq: wo.Seq})
	if err != nil {
		return httpapi.TxnResult{}, wireError(err)
	}
	out := httpapi.TxnResult{Succeeded: r.Succeeded, Index: r.Index, ModIndex: r.ModIndex}
	if len(r.Gets) > 0 {
		out.Gets = make([]httpapi.GetResult, len(r.Gets))
		for i, g := range r.Gets {
			out.Gets[i] = httpapi.GetResult{KeyValue: wireKV(g.KeyValue), Found: g.Found}
		}
	}
	return out, nil
}

func kvTxnOps(ops []httpapi.TxnOp) []kvstore.TxnOp {
	if len(ops) == 0 {
		return nil
	}
	out := make([]kvstore.TxnOp, len(ops))
	for i, op := range ops {
		out[i] = kvstore.TxnOp{Type: kvTxnOpType(op.Type), Key: op.Key, Value: op.Value, TTL: op.TTL}
	}
	return out
}

// kvTxnOpType, kvCompareTarget and kvCompareOp map httpapi's constants to
// kvstore's by name, so that an order that differs cannot go unnoticed;
// httpapi checked the request, so an unknown one is a bug of httpapi and
// maps to 0, which kvstore refuses.
func kvTxnOpType(t httpapi.TxnOpType) kvstore.TxnOpType {
	switch t {
	case httpapi.TxnPut:
		return kvstore.TxnPut
	case httpapi.TxnDelete:
		return kvstore.TxnDelete
	case httpapi.TxnGet:
		return kvstore.TxnGet
	}
	return 0
}

func kvCompareTarget(t httpapi.CompareTarget) kvstore.CompareTarget {
	switch t {
	case httpapi.CompareValue:
		return kvstore.CompareValue
	case httpapi.CompareMod:
		return kvstore.CompareMod
	case httpapi.CompareCreate:
		return kvstore.CompareCreate
	case httpapi.CompareExists:
		return kvstore.CompareExists
	}
	return 0
}

func kvCompareOp(op httpapi.CompareOp) kvstore.CompareOp {
	switch op {
	case httpapi.CompareEqual:
		return kvstore.Equal
	case httpapi.CompareNotEqual:
		return kvstore.NotEqual
	case httpapi.CompareGreater:
		return kvstore.Greater
	case httpapi.CompareLess:
		return kvstore.Less
	}
	return 0
}
