package raftnode

import (
	"bytes"
	"testing"
)

// batchPayloads is what a leader merges under load: a few members' entries
// of about 20 writes of 256-byte values each.
func batchPayloads() [][]byte {
	ps := make([][]byte, 3)
	for i := range ps {
		ps[i] = bytes.Repeat([]byte{byte(i)}, 20*300)
	}
	return ps
}

func BenchmarkEncodeBatch(b *testing.B) {
	ps := batchPayloads()
	b.SetBytes(int64(3 * len(ps[0])))
	b.ReportAllocs()
	for b.Loop() {
		encodeBatch(2, 12345, ps)
	}
}

func BenchmarkDecodeBatch(b *testing.B) {
	ps := batchPayloads()
	data := encodeBatch(2, 12345, ps)[1:]
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		if _, _, _, err := decodeBatch(data); err != nil {
			b.Fatal(err)
		}
	}
}
