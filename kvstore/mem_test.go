package kvstore

import (
	"bytes"
	"fmt"
	"os"
	"runtime"
	"testing"

	"go.uber.org/zap"
)

// TestMemoryPerKey measures the heap a store holds per key once a million
// keys were written through the apply path, for a small and a larger
// value. Opt-in (it takes a while and a few hundred megabytes):
//
//	KVSTORE_MEMTEST=1 go test -run TestMemoryPerKey -v ./kvstore/
func TestMemoryPerKey(t *testing.T) {
	if os.Getenv("KVSTORE_MEMTEST") == "" {
		t.Skip("set KVSTORE_MEMTEST=1 to measure")
	}
	const keys = 1_000_000
	for _, size := range []int{16, 256} {
		t.Run(fmt.Sprintf("value=%dB", size), func(t *testing.T) {
			before := heapInUse()
			s := bareStore(zap.NewNop(), Config{})
			value := bytes.Repeat([]byte{'v'}, size)
			index := uint64(0)
			for i := 0; i < keys; i += 64 {
				b := &batch{Session: 1, Watermark: uint64(i + 1)}
				for j := i; j < i+64 && j < keys; j++ {
					b.Reqs = append(b.Reqs, request{ID: uint64(j + 1), Ops: []Op{{Type: OpPut, Key: fmt.Sprintf("key/%08d", j), Value: value}}})
				}
				index++
				s.applyEntry(mustEntry(t, index, b))
			}
			s.setApplied(index)
			after := heapInUse()
			if s.Len() != keys {
				t.Fatalf("%d keys", s.Len())
			}
			t.Logf("%d keys of 12 bytes with %d-byte values: %.1f heap bytes per key (%.1f over key and value)",
				keys, size, float64(after-before)/keys, float64(after-before)/keys-float64(12+size))
			runtime.KeepAlive(s)
		})
	}
}

func heapInUse() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}
