package kvstore

import (
	"bytes"
	"encoding/gob"
	"errors"
	"fmt"
	"sync/atomic"
	"time"
)

// OpType says what an Op does.
type OpType uint8

// The operations a request may carry.
const (
	OpPut    OpType = 1
	OpDelete OpType = 2
	// OpExpire is internal: the leader's conditional delete of a key whose
	// TTL ran out, applied only if the key is still at IfModIndex. Write
	// refuses it.
	OpExpire OpType = 3
)

// Op is one key operation. Keys and values are arbitrary bytes.
type Op struct {
	Type  OpType
	Key   string
	Value []byte
	// TTL, on an OpPut, makes the key expire TTL after the write (see
	// Store's doc); 0 makes it permanent.
	TTL time.Duration
	// IfModIndex is the version an OpExpire deletes.
	IfModIndex uint64
}

// request is one client write: its ops are applied together, atomically.
// ClientID and Seq, when set, make it exactly-once across the client's
// retries (see WriteOptions).
type request struct {
	ID       uint64
	Ops      []Op
	ClientID string
	Seq      uint64
	// Ctl, when set, makes the request a control operation of a shard
	// group instead of a write of keys; Ops is then empty.
	Ctl *control
	// Txn, when set, makes the request a transaction; Ops is then empty.
	Txn *Txn
	// Range, when set, makes the request a range delete (DeleteRange);
	// Ops is then empty. Binaries of cluster level 1 and below apply such
	// a request as nothing, so the daemon proposes none before level 2.
	Range *rangeDelete
	// Hash, when set, makes the request a hash request (HashKV), which
	// changes nothing; Ops is then empty. Binaries before it apply it as
	// nothing too, and keep no hash.
	Hash bool
}

// batch is the payload of one raft entry: requests from one proposer
// session, plus that session's watermark (see session).
type batch struct {
	Session   uint64
	Watermark uint64
	Reqs      []request
	// Format is what the writer's state machine keeps; encodeBatch sets
	// it. Binaries from before versions leave it 0 (gob omits it).
	Format uint8
}

// batchFormatVersions is the Format of a writer that keeps versions:
// CreateIndex and ModIndex of the keys its writes touch are their raft
// index (see applyState.versioned).
const batchFormatVersions = 1

// batchFormatUniqueVersions is the Format of a writer that gives every
// write its own version, also two writes of one bucket at one raft index
// (see versionLocked). A proposer writes it only once the cluster level is
// LevelUniqueVersions, so that every member applies it alike.
const batchFormatUniqueVersions = 2

// LevelUniqueVersions is the cluster level (see package raftnode) from
// which a store's entries give each write its own version.
const LevelUniqueVersions = 3

// session is what the state machine remembers of one proposer (one
// process lifetime of one member) to apply each request at most once,
// although a request may be proposed more than once. Requests with an id
// below Watermark are never applied: the proposer no longer waits for any
// of them. Applied holds the applied ids at or above Watermark.
type session struct {
	Watermark uint64
	Applied   map[uint64]bool
}

// plainBatch is how a batch of plain writes (no control operation,
// transaction, range delete or hash request) is written. gob matches
// struct fields by name, so every binary decodes it into a batch, older
// ones included; its type preamble defines three types where batch's
// defines a dozen (about 300 bytes against 900), and under load a
// member's entry carries only a few writes, so the preamble was most of
// its bytes.
type plainBatch struct {
	Session   uint64
	Watermark uint64
	Reqs      []plainRequest
	Format    uint8
}

// plainRequest is a request with only the fields of a plain write.
type plainRequest struct {
	ID       uint64
	Ops      []Op
	ClientID string
	Seq      uint64
}

// asPlain fills p with b as a plainBatch, its requests in p.Reqs'
// storage, and reports false when one of b's requests is more than a
// plain write (p's requests are then cleared).
func asPlain(b *batch, p *plainBatch) bool {
	reqs := p.Reqs[:0]
	for i := range b.Reqs {
		r := &b.Reqs[i]
		if r.Ctl != nil || r.Txn != nil || r.Range != nil || r.Hash {
			clear(reqs)
			return false
		}
		reqs = append(reqs, plainRequest{ID: r.ID, Ops: r.Ops, ClientID: r.ClientID, Seq: r.Seq})
	}
	*p = plainBatch{Session: b.Session, Watermark: b.Watermark, Reqs: reqs, Format: b.Format}
	return true
}

// encodeBatch encodes b as a self-contained gob stream, as a plainBatch
// when it can be one, in Format batchFormatVersions unless b names one.
func encodeBatch(b *batch) ([]byte, error) {
	if b.Format == 0 {
		b.Format = batchFormatVersions
	}
	var p plainBatch
	if asPlain(b, &p) {
		return encodeStream(&p)
	}
	return encodeStream(b)
}

// encodeStream encodes v with a fresh gob encoder: type definitions, then
// the value.
func encodeStream(v any) ([]byte, error) {
	var buf bytes.Buffer
	if err := gob.NewEncoder(&buf).Encode(v); err != nil {
		return nil, fmt.Errorf("kvstore: encode entry: %w", err)
	}
	return buf.Bytes(), nil
}

// entryEncoder encodes proposals byte for byte as encodeBatch does,
// without compiling and sending the type definitions anew for every entry.
// Not safe for concurrent use: the propose loop owns it.
type entryEncoder struct {
	full, plain streamEncoder
	pb          plainBatch // reused, so that its Reqs keep their storage
}

// encode encodes b, in Format batchFormatVersions unless b names one.
func (e *entryEncoder) encode(b *batch) ([]byte, error) {
	if b.Format == 0 {
		b.Format = batchFormatVersions
	}
	if !asPlain(b, &e.pb) {
		return e.full.encode(b)
	}
	out, err := e.plain.encode(&e.pb)
	clear(e.pb.Reqs) // let go of the values
	return out, err
}

// streamEncoder writes self-contained gob streams of one type: one
// Encoder is kept, which after its first value writes only value
// messages, and the type definitions it wrote then are prepended to each.
type streamEncoder struct {
	buf      bytes.Buffer
	enc      *gob.Encoder
	preamble []byte
}

func (e *streamEncoder) encode(v any) ([]byte, error) {
	e.buf.Reset()
	if e.enc == nil {
		enc := gob.NewEncoder(&e.buf)
		if err := enc.Encode(v); err != nil {
			return nil, fmt.Errorf("kvstore: encode entry: %w", err)
		}
		out := bytes.Clone(e.buf.Bytes())
		split := gobValueOffset(out)
		if split < 0 {
			return nil, errors.New("kvstore: encode entry: unexpected gob framing")
		}
		e.enc, e.preamble = enc, out[:split:split]
		return out, nil
	}
	if err := e.enc.Encode(v); err != nil {
		// The encoder's stream state is unknown now: start afresh.
		e.enc = nil
		return nil, fmt.Errorf("kvstore: encode entry: %w", err)
	}
	out := make([]byte, 0, len(e.preamble)+e.buf.Len())
	return append(append(out, e.preamble...), e.buf.Bytes()...), nil
}

func decodeBatch(data []byte) (*batch, error) {
	var b batch
	if err := gob.NewDecoder(bytes.NewReader(data)).Decode(&b); err != nil {
		return nil, fmt.Errorf("kvstore: decode entry: %w", err)
	}
	return &b, nil
}

// entryDecoder decodes committed entries. Each entry is a self-contained
// gob stream (type definitions, then the value), so any member can decode
// any entry alone, after a restart or a snapshot. A fresh gob.Decoder per
// entry would compile the type anew each time, the apply loop's largest
// cost; instead one primed Decoder is kept per distinct type preamble (in
// practice two per writer binary, batch's and plainBatch's, since
// entryTypes fixes this binary's numbering) and fed only each entry's
// value message. Not safe for concurrent use: the apply loop owns it.
type entryDecoder struct {
	primed map[string]*primedDecoder
	// byPrimed and byFresh count the entries decoded by a primed decoder
	// and by a fresh one (the first entry of a preamble, or one not framed
	// as expected); the metrics read them.
	byPrimed, byFresh atomic.Uint64
}

type primedDecoder struct {
	dec *gob.Decoder
	src *swapReader
}

// maxPrimedDecoders bounds the cache; preambles differ only across
// binaries and between the two entry types, so more would mean something
// odd is being fed in.
const maxPrimedDecoders = 16

func newEntryDecoder() *entryDecoder {
	return &entryDecoder{primed: map[string]*primedDecoder{}}
}

func (d *entryDecoder) decode(data []byte) (*batch, error) {
	split := gobValueOffset(data)
	if split < 0 {
		// Not the framing we expect: let gob itself say what is wrong.
		d.byFresh.Add(1)
		return decodeBatch(data)
	}
	var b batch
	// Indexing with the conversion inline looks up without allocating.
	pd := d.primed[string(data[:split])]
	if pd == nil {
		d.byFresh.Add(1)
		pd = &primedDecoder{src: &swapReader{}}
		pd.dec = gob.NewDecoder(pd.src)
		pd.src.Reset(data) // the first entry primes it with its types
		if err := pd.dec.Decode(&b); err != nil {
			return nil, fmt.Errorf("kvstore: decode entry: %w", err)
		}
		if pd.src.Len() == 0 {
			if len(d.primed) >= maxPrimedDecoders {
				clear(d.primed)
			}
			d.primed[string(data[:split])] = pd
		}
		return &b, nil
	}
	d.byPrimed.Add(1)
	pd.src.Reset(data[split:])
	if err := pd.dec.Decode(&b); err != nil || pd.src.Len() != 0 {
		delete(d.primed, string(data[:split])) // its stream state is unknown now
		if err == nil {
			err = errors.New("trailing bytes")
		}
		return nil, fmt.Errorf("kvstore: decode entry: %w", err)
	}
	return &b, nil
}

// entryTypes is this binary's type preamble of an entry, fixed as the
// package is initialized. gob numbers a process's types in the order it
// first meets them, and the numbers are part of every entry's preamble.
// Left to the first write, a member that had first decoded a snapshot
// header or raftnode's member attributes (as a restarted one does)
// numbered the batch types apart from the others, and every member then
// kept a primed decoder for each numbering. Defined here, before main
// runs, the batch types get the same numbers in every process of a binary.
var entryTypes = func() string {
	data, err := encodeStream(&batch{}) // every type of the tree is defined on first use
	if err != nil {
		return ""
	}
	// The plain types next: batch's keep the numbers older binaries gave
	// them, so that their entries and this binary's share a preamble.
	if _, err := encodeStream(&plainBatch{}); err != nil {
		return ""
	}
	if split := gobValueOffset(data); split >= 0 {
		return string(data[:split])
	}
	return ""
}()

// swapReader is a bytes.Reader whose contents can be replaced between
// gob messages. It implements io.ByteReader, so gob reads from it without
// a read-ahead buffer.
type swapReader struct{ bytes.Reader }

// gobValueOffset returns where the last message of a gob stream starts,
// provided every message before it is a type definition and the stream
// is well framed; otherwise -1. A gob stream is a sequence of messages,
// each a gob unsigned length followed by that many bytes, the first of
// which is a gob signed type id: negative for a type definition.
func gobValueOffset(data []byte) int {
	pos, last := 0, -1
	for pos < len(data) {
		n, w := gobUint(data[pos:])
		if w == 0 || n == 0 || n > uint64(len(data)-pos-w) {
			return -1
		}
		body := data[pos+w : pos+w+int(n)]
		id, iw := gobUint(body)
		if iw == 0 {
			return -1
		}
		if last >= 0 {
			return -1 // a message after the value message
		}
		if id&1 == 0 { // non-negative type id: the value
			last = pos
		}
		pos += w + int(n)
	}
	return last
}

// gobUint decodes gob's unsigned integer: one byte below 128, else a byte
// holding the negated count of the big-endian bytes that follow. It
// returns the value and the bytes used, 0 when malformed.
func gobUint(b []byte) (uint64, int) {
	if len(b) == 0 {
		return 0, 0
	}
	if b[0] < 0x80 {
		return uint64(b[0]), 1
	}
	n := 256 - int(b[0]) // the byte is the count negated: 0xff is 1 byte, 0xf8 is 8
	if n > 8 || len(b) < 1+n {
		return 0, 0
	}
	var v uint64
	for _, c := range b[1 : 1+n] {
		v = v<<8 | uint64(c)
	}
	return v, 1 + n
}
