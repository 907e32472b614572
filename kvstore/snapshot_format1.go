package kvstore

import (
	"bufio"
	"bytes"
	"encoding/gob"

	"github.com/raftkv/raftkv/shardmap"
)

// format1Header is the gob header of a format 1 snapshot. The releases
// that wrote format 1 set Keys and Sessions; development builds between
// them and format 2 wrote the other fields too, which this binary does
// not read: a snapshot that has them is refused.
type format1Header struct {
	Keys     int
	Sessions map[uint64]*session
	Dedup    [][]byte
	Shard    *struct{ Joined bool }
	History  *struct{ Configs []struct{ Version uint64 } }
}

// readFormat1 reads the rest of a format 1 stream after its magic: a
// plain member's keys, all in one bucket, to be spread over the
// restoring store's buckets. Nothing of the header reaches gob before the
// checksum over the whole stream matched.
func readFormat1(d *binReader) *snapState {
	br, ok := d.r.(*bufio.Reader)
	if !ok {
		panic("kvstore: readFormat1 needs a buffered reader")
	}
	hdr := d.field("format 1 header", maxField)
	t := newTree()
	var last string
	for i := 0; d.err == nil; i++ {
		// Key and value pairs up to the 4-byte checksum at the end.
		if p, _ := br.Peek(5); len(p) < 5 {
			break
		}
		k := d.field("key", maxField)
		v := d.field("value", maxField)
		if d.err != nil {
			break
		}
		if i > 0 && string(k) <= last {
			d.fail("keys out of order at %d", i)
			break
		}
		last = string(k)
		t.ReplaceOrInsert(newItem(last, v))
	}
	d.checkSum()
	if d.err != nil {
		return nil
	}
	var h format1Header
	if err := gob.NewDecoder(bytes.NewReader(hdr)).Decode(&h); err != nil {
		d.fail("format 1 header: %v", err)
		return nil
	}
	switch {
	case h.Keys != t.Len():
		d.fail("format 1 header counts %d keys; the snapshot holds %d", h.Keys, t.Len())
		return nil
	case len(h.Dedup) > 0 || h.Shard != nil || h.History != nil:
		d.fail("format 1 with dedup tables or a shard or config state, written by a development build; this binary does not read it")
		return nil
	}
	sessions := map[uint64]*session{}
	for id, ss := range h.Sessions {
		if ss == nil {
			ss = &session{}
		}
		if ss.Applied == nil {
			ss.Applied = map[uint64]bool{}
		}
		sessions[id] = ss
	}
	return &snapState{mode: modePlain, nbuckets: 1, buckets: []bucket{{data: t}}, sessions: sessions, format1: true}
}

// spread moves the keys of a format 1 state, all in buckets[0], to the
// buckets of a plain store of n buckets.
func (st *snapState) spread(n int) {
	st.nbuckets = n
	if n == 1 {
		return
	}
	all := st.buckets[0].data
	st.buckets = make([]bucket, n)
	for i := range st.buckets {
		st.buckets[i].data = newTree()
	}
	all.Ascend(func(it item) bool {
		st.buckets[shardmap.BucketOf(it.key, n)].data.ReplaceOrInsert(it)
		return true
	})
}
