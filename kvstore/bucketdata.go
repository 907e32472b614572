package kvstore

import (
	"bytes"
	"fmt"
	"time"

	"github.com/raftkv/raftkv/shardmap"
)

// BucketData is one bucket's keys, values and dedup table as of a config
// version: what its old owner exports and its new owner installs.
type BucketData struct {
	Bucket  int
	Version uint64
	// data holds the keys: a clone of the exporting store's tree, never
	// changed.
	data  *tree
	dedup *dedupTable
	// floor is the bucket's version floor at its old owner (see
	// bucket.floor): the new owner's versions of its keys go on past it.
	floor uint64
}

// Len is the number of keys.
func (d *BucketData) Len() int {
	if d.data == nil {
		return 0
	}
	return d.data.Len()
}

// bucketMagic starts the binary form of a BucketData:
//
//	magic "raftkv-bucket-2\n"
//	uvarint bucket, uvarint version
//	uvarint version floor (see bucket.floor), uvarint key count; per key,
//	  in key order: uvarint length, key, uvarint length, value, uvarints
//	  CreateIndex, ModIndex, TTL (ns)
//	the dedup table (see dedupTable.encode), transaction results included
//	CRC-32C (big endian) of everything before it
//
// Form 1 ("raftkv-bucket-1\n", from an old owner of an older release) has
// no versions, TTLs or transaction results; it is read with its keys at
// version 0, as that release left them.
const (
	bucketMagic   = "raftkv-bucket-2\n"
	bucketMagicV1 = "raftkv-bucket-1\n"
)

// MarshalBinary encodes d in a checksummed binary form.
func (d *BucketData) MarshalBinary() ([]byte, error) {
	var buf bytes.Buffer
	e := &binWriter{w: &buf}
	e.write([]byte(bucketMagic))
	e.uvarint(uint64(d.Bucket))
	e.uvarint(d.Version)
	encodeKeys(e, d.data, d.floor, false, true)
	d.dedup.encode(e, true)
	e.sum()
	if e.err != nil {
		return nil, fmt.Errorf("kvstore: encode bucket %d: %w", d.Bucket, e.err)
	}
	return buf.Bytes(), nil
}

// UnmarshalBinary decodes what MarshalBinary wrote, checking its checksum,
// lengths, order and dedup table; garbage gives an error that says what
// is wrong, never a panic or an allocation larger than data.
func (d *BucketData) UnmarshalBinary(data []byte) error {
	r := bytes.NewReader(data)
	dec := &binReader{r: r, limit: len(data)}
	var versioned bool
	switch string(dec.raw(len(bucketMagic))) {
	case bucketMagic:
		versioned = true
	case bucketMagicV1:
	default:
		return detailf(ErrBadShardOp, "bucket data: bad magic")
	}
	b := dec.uvarint("bucket")
	version := dec.uvarint("version")
	if dec.err == nil && b >= shardmap.MaxBuckets {
		dec.fail("bucket %d out of range", b)
	}
	keys, floor := decodeKeys(dec, versioned)
	dedup := decodeDedupTable(dec, versioned)
	dec.checkSum()
	if dec.err == nil && r.Len() != 0 {
		dec.fail("%d bytes after the checksum", r.Len())
	}
	if dec.err != nil {
		return detailf(ErrBadShardOp, "bucket data: %v", dec.err)
	}
	*d = BucketData{Bucket: int(b), Version: version, data: keys, dedup: dedup, floor: floor}
	return nil
}

// checkKeys checks that every key of d is in bucket d.Bucket of n.
func (d *BucketData) checkKeys(n int) error {
	var bad string
	d.data.Ascend(func(it item) bool {
		if shardmap.BucketOf(it.key, n) != d.Bucket {
			bad = it.key
			return false
		}
		return true
	})
	if bad != "" {
		return detailf(ErrBadShardOp, "bucket data of bucket %d holds key %q of bucket %d", d.Bucket, bad, shardmap.BucketOf(bad, n))
	}
	return nil
}

// encodeKeys writes, with versioned, the bucket's version floor, then t's
// key count, then each key and value in key order, with versioned each
// key's CreateIndex, ModIndex and TTL. With release it empties t, which
// must then be a clone no one else reads, letting go of each leaf once
// written (see tree.takeLeaves).
func encodeKeys(e *binWriter, t *tree, floor uint64, release, versioned bool) {
	if versioned {
		e.uvarint(floor)
	}
	e.uvarint(uint64(t.Len()))
	write := func(it item) bool {
		e.field(unsafeBytes(it.key))
		e.field(it.valueBytes())
		if versioned {
			e.uvarint(it.createIndex())
			e.uvarint(it.mod)
			e.uvarint(uint64(it.ttl()))
		}
		return e.err == nil
	}
	if release {
		ascendMerged([]*tree{t}, write)
	} else {
		t.Ascend(write)
	}
}

// decodeKeys reads what encodeKeys wrote; keys must ascend, and a key's
// versions be at most 2^63 with CreateIndex at most ModIndex. The floor
// returned is at least every key's ModIndex.
func decodeKeys(dec *binReader, versioned bool) (*tree, uint64) {
	t := newTree()
	var floor uint64
	if versioned {
		floor = dec.uvarint("version floor")
		if dec.err == nil && floor >= ttlFlag {
			dec.fail("version floor %d", floor)
		}
	}
	count := dec.count("key count")
	var last string
	for i := 0; i < count && dec.err == nil; i++ {
		k := dec.field("key", maxField)
		v := dec.field("value", maxField)
		var create, mod, ttl uint64
		if versioned {
			create, mod, ttl = dec.uvarint("create index"), dec.uvarint("mod index"), dec.uvarint("ttl")
		}
		if dec.err != nil {
			break
		}
		switch {
		case i > 0 && string(k) <= last:
			dec.fail("keys out of order at %d", i)
		case mod >= ttlFlag || create > mod:
			dec.fail("key %d: create index %d, mod index %d", i, create, mod)
		case ttl > uint64(MaxTTL):
			dec.fail("key %d: TTL of %d ns", i, ttl)
		}
		if dec.err != nil {
			break
		}
		last = string(k)
		floor = max(floor, mod)
		t.ReplaceOrInsert(newKV(last, v, create, mod, time.Duration(ttl)))
	}
	return t, floor
}
