package bench

import (
	"encoding/binary"
	"math"
	"math/rand/v2"
	"strconv"
)

// maxKeyspace returns how many distinct keys of size decimal digits exist.
func maxKeyspace(size int) uint64 {
	if size >= 19 { // 10^19 overflows int64; every int keyspace fits
		return math.MaxInt64
	}
	n := uint64(1)
	for range size {
		n *= 10
	}
	return n
}

// Key returns key number i as a key of size bytes: i in decimal, zero-padded
// on the left. Keys are digits only, so they need no escaping in a URL path,
// and none is one of raftkv's reserved paths. A number with more than size
// digits keeps its last size digits; Config.Validate rules that out.
func Key(i uint64, size int) string {
	return string(appendKey(make([]byte, 0, size), i, size))
}

func appendKey(dst []byte, i uint64, size int) []byte {
	var digits [20]byte
	d := strconv.AppendUint(digits[:0], i, 10)
	if len(d) > size {
		d = d[len(d)-size:]
	}
	for range size - len(d) {
		dst = append(dst, '0')
	}
	return append(dst, d...)
}

// partition describes the keys a worker owns when workers must write
// disjoint keys (Config.Verify): those equal to its index mod the number of
// workers.
type partition struct {
	first  int // the worker's index
	stride int // number of workers
	size   int // number of keys owned
}

func newPartition(worker, workers, keyspace int) partition {
	p := partition{first: worker, stride: workers}
	if worker < keyspace {
		p.size = (keyspace - worker + workers - 1) / workers
	}
	return p
}

// key returns the j-th key number of p, 0 <= j < p.size.
func (p partition) key(j int) int { return p.first + j*p.stride }

// slot returns j such that p.key(j) == k; k must be in p.
func (p partition) slot(k int) int { return (k - p.first) / p.stride }

// valueGen produces the random value of each write. A value is a pure
// function of its seed, so a verifier can regenerate the value it expects
// from the seed alone and nothing keeps values in memory.
type valueGen struct {
	buf []byte // the last value returned
	rng *rand.ChaCha8
}

func newValueGen(size int) *valueGen {
	return &valueGen{buf: make([]byte, size), rng: rand.NewChaCha8([32]byte{})}
}

// value returns the value of seed, in a buffer that the next call reuses: a
// request has sent all of its body by the time it returns.
func (g *valueGen) value(seed uint64) []byte {
	g.fill(g.buf, seed)
	return g.buf
}

func (g *valueGen) fill(b []byte, seed uint64) {
	var s [32]byte
	binary.LittleEndian.PutUint64(s[:], seed)
	g.rng.Seed(s)
	g.rng.Read(b) // never fails
}
