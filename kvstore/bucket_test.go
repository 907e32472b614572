package kvstore

import (
	"bytes"
	"fmt"
	"testing"

	"github.com/raftkv/raftkv/shardmap"
	"go.uber.org/zap/zaptest"
)

// TestBucketsKeepKeysApart: with several buckets each key lives in the
// tree of its bucket, and the digest, the key count and a snapshot round
// trip are those of a one-bucket store holding the same keys.
func TestBucketsKeepKeysApart(t *testing.T) {
	for _, n := range []int{1, 2, 7, 256} {
		t.Run(fmt.Sprint("buckets=", n), func(t *testing.T) {
			one := newBareStore(t)
			many := bareStore(zaptest.NewLogger(t), Config{Buckets: n})
			for i := uint64(1); i <= 300; i++ {
				ops := []Op{{Type: OpPut, Key: fmt.Sprintf("k%03d", i), Value: []byte(fmt.Sprint(i))}}
				if i%5 == 0 {
					ops = append(ops, Op{Type: OpDelete, Key: fmt.Sprintf("k%03d", i-3)})
				}
				for _, s := range []*Store{one, many} {
					s.applyEntry(mustEntry(t, i, &batch{Session: 3, Watermark: i, Reqs: []request{{ID: i, Ops: ops}}}))
					s.setApplied(i)
				}
			}
			for b, bk := range many.mu.buckets {
				bk.data.Ascend(func(it item) bool {
					if got := shardmap.BucketOf(it.key, n); got != b {
						t.Fatalf("key %q is in bucket %d, its bucket is %d", it.key, b, got)
					}
					return true
				})
			}
			if d1, dn := digestOf(one), digestOf(many); d1 != dn || one.Len() != many.Len() || many.Len() != 240 {
				t.Fatalf("one bucket: %+v (%d keys); %d buckets: %+v (%d keys)", d1, one.Len(), n, dn, many.Len())
			}
			var buf bytes.Buffer
			write, err := many.Snapshot()
			if err != nil {
				t.Fatal(err)
			}
			if err := write(&buf); err != nil {
				t.Fatal(err)
			}
			st, err := readSnapshot(&buf, 0)
			if err != nil {
				t.Fatal(err)
			}
			r := bareStore(zaptest.NewLogger(t), Config{Buckets: n})
			r.install(st, 300)
			r.setApplied(300)
			if got, want := digestOf(r), digestOf(many); got != want {
				t.Fatalf("restored digest %+v, want %+v", got, want)
			}
			if v, err := r.local("k299"); err != nil || string(v) != "299" {
				t.Fatalf("restored k299 = %q, %v", v, err)
			}
		})
	}
}
