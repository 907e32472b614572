package bench

import (
	"bytes"
	"net/url"
	"testing"
)

func TestKey(t *testing.T) {
	for _, tc := range []struct {
		i    uint64
		size int
		want string
	}{
		{0, 1, "0"},
		{0, 8, "00000000"},
		{7, 8, "00000007"},
		{99999, 8, "00099999"},
		{12345678, 8, "12345678"},
		{123456789, 8, "23456789"}, // keeps the last digits; Validate rules this out
		{42, 2, "42"},
		{18446744073709551615, 22, "0018446744073709551615"},
	} {
		if got := Key(tc.i, tc.size); got != tc.want {
			t.Errorf("Key(%d, %d) = %q, want %q", tc.i, tc.size, got, tc.want)
		}
	}
	// Keys of any size are exactly that long and need no escaping in a path.
	for _, size := range []int{1, 3, 8, 64, MaxKeySize} {
		k := Key(123, size)
		if len(k) != size {
			t.Errorf("len(Key(123, %d)) = %d", size, len(k))
		}
		if url.PathEscape(k) != k {
			t.Errorf("Key(123, %d) needs escaping", size)
		}
	}
}

func TestMaxKeyspace(t *testing.T) {
	for _, tc := range []struct {
		size int
		want uint64
	}{{1, 10}, {2, 100}, {8, 100000000}, {18, 1e18}, {19, 1<<63 - 1}, {4096, 1<<63 - 1}} {
		if got := maxKeyspace(tc.size); got != tc.want {
			t.Errorf("maxKeyspace(%d) = %d, want %d", tc.size, got, tc.want)
		}
	}
}

func TestPartition(t *testing.T) {
	for _, tc := range []struct{ workers, keyspace int }{{1, 1}, {1, 10}, {3, 10}, {4, 4}, {7, 100}, {16, 1000}, {5, 3}} {
		seen := make([]int, tc.keyspace)
		for w := range tc.workers {
			p := newPartition(w, tc.workers, tc.keyspace)
			for j := range p.size {
				k := p.key(j)
				if k < 0 || k >= tc.keyspace {
					t.Fatalf("%+v: worker %d key %d out of the keyspace", tc, w, k)
				}
				if k%tc.workers != w {
					t.Fatalf("%+v: worker %d owns key %d", tc, w, k)
				}
				if p.slot(k) != j {
					t.Fatalf("%+v: slot(key(%d)) = %d", tc, j, p.slot(k))
				}
				seen[k]++
			}
		}
		for k, n := range seen {
			if n != 1 {
				t.Fatalf("%+v: key %d owned %d times, want once", tc, k, n)
			}
		}
	}
}

func TestValueGen(t *testing.T) {
	g := newValueGen(256)
	a, b, c := bytes.Clone(g.value(1)), bytes.Clone(g.value(2)), g.value(1) // value reuses its buffer
	if len(a) != 256 || !bytes.Equal(a, c) || bytes.Equal(a, b) {
		t.Fatalf("values of seeds 1, 2, 1 are not (256 bytes, same for the same seed, distinct): %x %x %x", a[:8], b[:8], c[:8])
	}
	if bytes.Count(a, []byte{0}) > 32 {
		t.Fatalf("value does not look random: %x", a)
	}
	if v := newValueGen(0).value(5); len(v) != 0 {
		t.Fatalf("zero-size value has %d bytes", len(v))
	}
}
