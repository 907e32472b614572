package kvstore

import (
	"bytes"
	"encoding/gob"
	"fmt"
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

// snapshotData is the state machine's snapshot.
type snapshotData struct {
	Data     map[string][]byte
	Sessions map[uint64]*session
}

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

func encodeSnapshot(s *snapshotData) ([]byte, error) {
	var buf bytes.Buffer
	if err := gob.NewEncoder(&buf).Encode(s); err != nil {
		return nil, fmt.Errorf("kvstore: encode snapshot: %w", err)
	}
	return buf.Bytes(), nil
}

func decodeSnapshot(data []byte) (*snapshotData, error) {
	s := &snapshotData{}
	if err := gob.NewDecoder(bytes.NewReader(data)).Decode(s); err != nil {
		return nil, fmt.Errorf("kvstore: decode snapshot: %w", err)
	}
	if s.Data == nil {
		s.Data = map[string][]byte{}
	}
	if s.Sessions == nil {
		s.Sessions = map[uint64]*session{}
	}
	for _, ss := range s.Sessions {
		if ss.Applied == nil {
			ss.Applied = map[uint64]bool{}
		}
	}
	return s, nil
}
