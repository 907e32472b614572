package kvstore

import (
	"bytes"
	"encoding/gob"
	"fmt"

	"github.com/google/btree"
)

// OpType says what an Op does.
type OpType uint8

// The operations a request may carry.
const (
	OpPut    OpType = 1
	OpDelete OpType = 2
)

// Op is one key operation. Keys and values are arbitrary bytes.
type Op struct {
	Type  OpType
	Key   string
	Value []byte
}

// request is one client write: its ops are applied together, atomically.
type request struct {
	ID  uint64
	Ops []Op
}

// batch is the payload of one raft entry: requests from one proposer
// session, plus that session's watermark (see session).
type batch struct {
	Session   uint64
	Watermark uint64
	Reqs      []request
}

// session is what the state machine remembers of one proposer (one
// process lifetime of one member) to apply each request at most once,
// although a request may be proposed more than once. Requests with an id
// below Watermark are never applied: the proposer no longer waits for any
// of them. Applied holds the applied ids at or above Watermark.
type session struct {
	Watermark uint64
	Applied   map[uint64]bool
}

// item is one key and its value in the state's B-tree.
type item struct {
	key   string
	value []byte
}

func itemLess(a, b item) bool { return a.key < b.key }

// newTree returns an empty state. A B-tree rather than a map: its Clone is
// copy-on-write and O(1), so a snapshot captures the state without
// stopping writes, and it iterates in key order for snapshots and digests.
func newTree() *btree.BTreeG[item] { return btree.NewG(32, itemLess) }

func encodeBatch(b *batch) ([]byte, error) {
	var buf bytes.Buffer
	if err := gob.NewEncoder(&buf).Encode(b); err != nil {
		return nil, fmt.Errorf("kvstore: encode entry: %w", err)
	}
	return buf.Bytes(), nil
}

func decodeBatch(data []byte) (*batch, error) {
	var b batch
	if err := gob.NewDecoder(bytes.NewReader(data)).Decode(&b); err != nil {
		return nil, fmt.Errorf("kvstore: decode entry: %w", err)
	}
	return &b, nil
}
