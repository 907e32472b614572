package kvstore

import (
	"encoding/binary"
	"fmt"
	"time"
	"unsafe"
)

// item is one key of a bucket's tree: the key, its value and its
// versions. prefix holds the key's first 8 bytes, so that most comparisons
// in a lookup are of two integers already in the node, not of two strings
// each elsewhere in memory (a cache miss apiece in a large state). The
// value is held as a string, which is 8 bytes smaller than a slice, so the
// prefix costs no memory; it shares the bytes it was made from, which
// never change.
//
// A key with a TTL (rare) keeps it in front of its value rather than in a
// field of every item: create carries ttlFlag, and value starts with the
// TTL in nanoseconds (8 bytes, big endian). Items stay 56 bytes.
type item struct {
	prefix uint64
	key    string
	value  string
	// create is the key's CreateIndex, with ttlFlag set when it has a TTL.
	create uint64
	// mod is its ModIndex.
	mod uint64
}

// ttlFlag marks, in item.create, a key with a TTL. Raft indexes stay far
// below it (at a million entries a second, 2^63 is 292,000 years away).
const ttlFlag = 1 << 63

// ttlBytes is the size of the TTL in front of the value of a key with one.
const ttlBytes = 8

// newItem returns the item for key and value, with no versions and no
// TTL, taking value over: nothing may modify it afterwards. A lookup needs
// only the key.
func newItem(key string, value []byte) item {
	return item{prefix: keyPrefix(key), key: key, value: unsafe.String(unsafe.SliceData(value), len(value))}
}

// newKV returns the item of key at versions create and mod (below
// ttlFlag). With no TTL it takes value over, as newItem; with one it
// copies value behind the TTL.
func newKV(key string, value []byte, create, mod uint64, ttl time.Duration) item {
	if create&ttlFlag != 0 || mod&ttlFlag != 0 {
		panic(fmt.Sprintf("kvstore: index %d or %d is past 2^63", create, mod))
	}
	it := newItem(key, value)
	it.create, it.mod = create, mod
	if ttl > 0 {
		buf := make([]byte, ttlBytes+len(value))
		binary.BigEndian.PutUint64(buf, uint64(ttl))
		copy(buf[ttlBytes:], value)
		it.value = unsafe.String(unsafe.SliceData(buf), len(buf))
		it.create |= ttlFlag
	}
	return it
}

// valueBytes returns the item's value without copying it; the caller must
// not modify it.
func (it item) valueBytes() []byte {
	v := it.value
	if it.create&ttlFlag != 0 {
		v = v[ttlBytes:]
	}
	return unsafe.Slice(unsafe.StringData(v), len(v))
}

// createIndex is the key's CreateIndex.
func (it item) createIndex() uint64 { return it.create &^ ttlFlag }

// hasTTL says whether the key has a TTL.
func (it item) hasTTL() bool { return it.create&ttlFlag != 0 }

// ttl is the key's TTL, 0 for none.
func (it item) ttl() time.Duration {
	if it.create&ttlFlag == 0 {
		return 0
	}
	return time.Duration(binary.BigEndian.Uint64(unsafeBytes(it.value[:ttlBytes])))
}

// keyValue is the item as a KeyValue, its value shared (nil with
// keysOnly).
func (it item) keyValue(keysOnly bool) KeyValue {
	kv := KeyValue{Key: it.key, CreateIndex: it.createIndex(), ModIndex: it.mod, TTL: it.ttl()}
	if !keysOnly {
		kv.Value = it.valueBytes()
	}
	return kv
}

// keyPrefix is key's first 8 bytes as a big-endian integer, padded with
// zeros. It preserves order: keyPrefix(a) < keyPrefix(b) implies a < b,
// and equal prefixes leave the order to the whole keys.
func keyPrefix(key string) uint64 {
	var p uint64
	for i := range 8 {
		p <<= 8
		if i < len(key) {
			p |= uint64(key[i])
		}
	}
	return p
}

func itemLess(a, b item) bool {
	if a.prefix != b.prefix {
		return a.prefix < b.prefix
	}
	if len(a.key) <= 8 && len(b.key) <= 8 {
		// Both keys are whole in their prefixes, which agree: the
		// longer one is the shorter followed by zero bytes, and so
		// greater. Comparing lengths spares reading the keys' bytes,
		// elsewhere in memory, on the lookup's last comparisons.
		return len(a.key) < len(b.key)
	}
	return a.key < b.key
}
