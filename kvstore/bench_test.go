package kvstore

import (
	"bytes"
	"crypto/sha256"
	"encoding/gob"
	"fmt"
	"io"
	"math/rand/v2"
	"testing"

	"github.com/raftkv/raftkv/raftnode"
)

// Benchmarks of the hot paths: encoding a proposal, decoding and applying
// a committed entry, and capturing, writing and restoring a snapshot.
// Run with: go test -run '^$' -bench . -benchmem ./kvstore/

func benchBatch(reqs int) *batch {
	b := &batch{Session: 7, Watermark: 1}
	for i := range reqs {
		b.Reqs = append(b.Reqs, request{ID: uint64(i + 1), Ops: []Op{{Type: OpPut, Key: fmt.Sprintf("%08d", i), Value: bytes.Repeat([]byte{'v'}, 256)}}})
	}
	return b
}

func BenchmarkEncodeBatch(b *testing.B) {
	for _, reqs := range []int{1, 16} {
		in := benchBatch(reqs)
		b.Run(fmt.Sprintf("requests=%d/primed", reqs), func(b *testing.B) {
			var e entryEncoder
			b.ReportAllocs()
			for b.Loop() {
				if _, err := e.encode(in); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(fmt.Sprintf("requests=%d/fresh-gob-encoder", reqs), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := encodeBatch(in); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkDecodeEntry(b *testing.B) {
	data, err := encodeBatch(benchBatch(4))
	if err != nil {
		b.Fatal(err)
	}
	b.Run("own", func(b *testing.B) {
		d := newEntryDecoder()
		b.ReportAllocs()
		for b.Loop() {
			if _, err := d.decode(data); err != nil {
				b.Fatal(err)
			}
		}
	})
	// The same batch under another type name: the preamble is not this
	// binary's, so a primed gob decoder takes it, as another binary's.
	type otherBatch batch
	var other bytes.Buffer
	if err := gob.NewEncoder(&other).Encode((*otherBatch)(benchBatch(4))); err != nil {
		b.Fatal(err)
	}
	b.Run("primed-gob", func(b *testing.B) {
		d := newEntryDecoder()
		b.ReportAllocs()
		for b.Loop() {
			if _, err := d.decode(other.Bytes()); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("fresh-gob-decoder", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := decodeBatch(data); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func BenchmarkApplyEntry(b *testing.B) {
	s := newBareStore(b)
	var entries [][]byte
	for i := range 1024 {
		in := benchBatch(4)
		for j := range in.Reqs {
			in.Reqs[j].ID = uint64(i*4 + j + 1)
			in.Reqs[j].Ops[0].Key = fmt.Sprintf("%08d", (i*4+j)%100000)
		}
		in.Watermark = uint64(i * 4)
		data, err := encodeBatch(in)
		if err != nil {
			b.Fatal(err)
		}
		entries = append(entries, data)
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		// Past the first 1024, requests are duplicates: still a full decode
		// and session check per entry.
		s.applyEntry(rawEntry(uint64(i+1), entries[i%len(entries)]))
		i++
	}
}

func filledStore(b *testing.B, keys int) *Store {
	s := newBareStore(b)
	value := bytes.Repeat([]byte{'v'}, 256)
	for i := range keys {
		s.mu.buckets[0].data.ReplaceOrInsert(newItem(fmt.Sprintf("%08d", i), value))
	}
	return s
}

// BenchmarkPut is the state's share of applying a put: replacing the value
// of a random key among keys, as the bench tool's default workload does.
func BenchmarkPut(b *testing.B) {
	for _, keys := range []int{100_000, 1_000_000} {
		b.Run(fmt.Sprintf("keys=%d", keys), func(b *testing.B) {
			s := filledStore(b, keys)
			names := make([]string, 4096)
			r := rand.New(rand.NewPCG(1, 2))
			for i := range names {
				names[i] = fmt.Sprintf("%08d", r.IntN(keys))
			}
			value := bytes.Repeat([]byte{'w'}, 256)
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				key := names[i%len(names)]
				s.mu.buckets[s.bucketOf(key)].data.ReplaceOrInsert(newItem(key, value))
				i++
			}
		})
	}
}

// BenchmarkGet is a read's share in the state: looking up a random key
// among keys, as the bench tool's GET workload does.
func BenchmarkGet(b *testing.B) {
	for _, keys := range []int{100_000, 1_000_000} {
		b.Run(fmt.Sprintf("keys=%d", keys), func(b *testing.B) {
			s := filledStore(b, keys)
			names := make([]string, 1<<16)
			r := rand.New(rand.NewPCG(1, 2))
			for i := range names {
				names[i] = fmt.Sprintf("%08d", r.IntN(keys))
			}
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				if _, ok, _ := s.localKV(names[i%len(names)]); !ok {
					b.Fatal("a key is missing")
				}
				i++
			}
		})
	}
}

// BenchmarkDeleteRange is applying a range delete of 100k keys (of
// 256-byte values), every key of the state: the time is per key deleted.
func BenchmarkDeleteRange(b *testing.B) {
	const keys = 100_000
	value := bytes.Repeat([]byte{'v'}, 256)
	index := uint64(0)
	b.ReportAllocs()
	for b.Loop() {
		b.StopTimer()
		s := filledStore(b, 0)
		for i := range keys {
			s.mu.buckets[0].data.ReplaceOrInsert(newItem(fmt.Sprintf("%08d", i), value))
		}
		index++
		e := mustEntry(b, index, &batch{Session: 9, Watermark: 1, Reqs: []request{{ID: 1, Range: &rangeDelete{Start: "\x00"}}}})
		b.StartTimer()
		s.applyEntry(e)
		if s.Len() != 0 {
			b.Fatalf("%d keys left", s.Len())
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*keys), "ns/key")
}

func BenchmarkSnapshot(b *testing.B) {
	const keys = 100_000
	s := filledStore(b, keys)
	b.Run("capture", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := s.Snapshot(); err != nil {
				b.Fatal(err)
			}
			// The next write copies the path it touches, as under load.
			s.mu.buckets[0].data.ReplaceOrInsert(newItem("00000001", []byte("x")))
		}
	})
	write, err := s.Snapshot()
	if err != nil {
		b.Fatal(err)
	}
	var buf bytes.Buffer
	if err := write(&buf); err != nil {
		b.Fatal(err)
	}
	data := buf.Bytes()
	b.Run(fmt.Sprintf("write-keys=%d", keys), func(b *testing.B) {
		b.SetBytes(int64(len(data)))
		b.ReportAllocs()
		for b.Loop() {
			write, err := s.Snapshot()
			if err != nil {
				b.Fatal(err)
			}
			if err := write(io.Discard); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run(fmt.Sprintf("restore-keys=%d", keys), func(b *testing.B) {
		b.SetBytes(int64(len(data)))
		b.ReportAllocs()
		for b.Loop() {
			if _, err := readSnapshot(bytes.NewReader(data), int64(len(data))); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func rawEntry(index uint64, data []byte) raftnode.Entry {
	return raftnode.Entry{Index: index, Data: data}
}

// BenchmarkHash is a hash check's background pass over one member's
// state of 100k keys of 256-byte values; what applying the request costs
// is capturing the state, BenchmarkSnapshot's capture.
func BenchmarkHash(b *testing.B) {
	const keys = 100_000
	s := filledStore(b, keys)
	b.Run(fmt.Sprintf("keys=%d", keys), func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			s.mu.Lock()
			st := s.captureLocked()
			s.mu.Unlock()
			if err := writeSnapshot(sha256.New(), st); err != nil {
				b.Fatal(err)
			}
		}
	})
}
