package kvstore

// Decoding a batch by hand, without gob's reflection. Every member decodes
// every write, so this is on the apply loop's hot path. It covers only
// what this binary's own encoder writes: entries whose type definitions
// are byte for byte the ones it sends (so the type ids and field numbers
// are known), with every integer in its shortest form and nothing gob
// would refuse. Anything else, it declines, and gob itself decodes the
// entry and has the last word: members agree on every entry whichever
// path decoded it.

// ownWire is this binary's type preamble for a batch and the type id of
// the batch in its value messages.
type ownWire struct {
	preamble string
	batchID  uint64 // as written: the signed id, zig-zag encoded
}

// ownBatch is this binary's wire for a batch, computed as the package is
// initialized. gob numbers a process's types in the order it first meets
// them, and the numbers are part of every entry's preamble. Left to the
// first write, a member that had first decoded a snapshot header or
// raftnode's member attributes (as a restarted one does) numbered the
// batch types apart from the others, and it and they then decoded each
// other's entries through gob, at 2-3 times the cost. Defined at package
// initialization, before main runs, the batch types get the same numbers
// in every process of a binary.
var ownBatch = ownBatchWire()

// ownBatchWire defines the batch types with gob and returns their wire.
func ownBatchWire() ownWire {
	// Every type of the tree is defined on first use, whatever the values.
	data, err := encodeBatch(&batch{})
	if err != nil {
		return ownWire{}
	}
	split := gobValueOffset(data)
	if split < 0 {
		return ownWire{}
	}
	r := wireReader{b: data[split:]}
	id := r.header()
	if r.bad {
		return ownWire{}
	}
	return ownWire{preamble: string(data[:split]), batchID: id}
}

// decodeOwnBatch decodes msg, the value message of an entry whose preamble
// is ownBatch's (length prefix included). It reports false when it
// declines the message.
func decodeOwnBatch(msg []byte, batchID uint64) (*batch, bool) {
	r := wireReader{b: msg}
	if r.header() != batchID || r.bad {
		return nil, false
	}
	b := &batch{}
	for f := -1; r.field(&f, 3); {
		switch f {
		case 0:
			b.Session = r.uint()
		case 1:
			b.Watermark = r.uint()
		case 2:
			b.Reqs = make([]request, r.count())
			for i := range b.Reqs {
				r.request(&b.Reqs[i])
			}
		}
	}
	if r.bad || r.off != len(msg) {
		return nil, false
	}
	return b, true
}

// wireReader reads gob's encoding of the batch types from b, at off; bad
// records the first thing it declines, after which every read returns
// zero. It moves an offset rather than reslicing b: no pointer is written
// per read.
type wireReader struct {
	b   []byte
	off int
	bad bool
}

// uint reads a gob unsigned integer, declining any but its shortest form.
func (r *wireReader) uint() uint64 {
	if r.bad {
		return 0
	}
	v, w := gobUint(r.b[r.off:])
	if w == 0 || (w > 1 && (v < 0x80 || r.b[r.off+1] == 0)) {
		r.bad = true
		return 0
	}
	r.off += w
	return v
}

// header reads a value message's length, which must be that of the rest
// of b, and returns the message's type id.
func (r *wireReader) header() uint64 {
	if n := r.uint(); !r.bad && n != uint64(len(r.b)-r.off) {
		r.bad = true
	}
	return r.uint()
}

// count reads a slice length, declining one the rest of the message could
// not hold (each element takes at least a byte).
func (r *wireReader) count() int {
	n := r.uint()
	if n > uint64(len(r.b)-r.off) {
		r.bad = true
		return 0
	}
	return int(n)
}

// bytes reads a byte string; the result aliases the message.
func (r *wireReader) bytes() []byte {
	n := r.uint()
	if r.bad || n > uint64(len(r.b)-r.off) {
		r.bad = true
		return nil
	}
	out := r.b[r.off : r.off+int(n) : r.off+int(n)]
	r.off += int(n)
	return out
}

// field reads the next field number of a struct of n fields into *f (-1
// before the first): gob writes each present field as the delta from the
// previous one, and a zero delta after the last. It reports whether a
// field follows.
func (r *wireReader) field(f *int, n int) bool {
	d := r.uint()
	if r.bad || d == 0 {
		return false
	}
	if d > uint64(n-1-*f) {
		r.bad = true
		return false
	}
	*f += int(d)
	return true
}

func (r *wireReader) request(q *request) {
	for f := -1; r.field(&f, 2); {
		switch f {
		case 0:
			q.ID = r.uint()
		case 1:
			q.Ops = make([]Op, r.count())
			for i := range q.Ops {
				r.op(&q.Ops[i])
			}
		}
	}
}

func (r *wireReader) op(o *Op) {
	for f := -1; r.field(&f, 3); {
		switch f {
		case 0:
			t := r.uint()
			if t > 0xff {
				r.bad = true // gob refuses it as out of range
			}
			o.Type = OpType(t)
		case 1:
			o.Key = string(r.bytes())
		case 2:
			// The value stays in the entry's data: see Store.inLog.
			if v := r.bytes(); len(v) > 0 {
				o.Value = v
			}
		}
	}
}
