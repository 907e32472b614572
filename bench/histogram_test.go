package bench

import (
	"math"
	"math/rand/v2"
	"testing"
	"time"
)

func TestBucketOfAndRange(t *testing.T) {
	limit := uint64(subBucketCount+subBucketCount-1) << maxShift // top of the last bucket
	vals := []uint64{0, 1, 127, 128, 255, 256, 257, 511, 512, 513, 1000, 1023, 1024, 1 << 20, 1<<20 + 1, 123456789, limit - 1}
	rng := rand.New(rand.NewPCG(1, 2))
	for range 10000 {
		vals = append(vals, rng.Uint64N(limit))
	}
	prev := -1
	for _, v := range []uint64{0, 1, 255, 256, 300, 511, 512, 1 << 30, limit - 1} {
		i := bucketOf(v)
		if i < prev {
			t.Errorf("bucketOf(%d) = %d, below bucketOf of a smaller value (%d)", v, i, prev)
		}
		prev = i
	}
	for _, v := range vals {
		i := bucketOf(v)
		if i < 0 || i >= numBuckets {
			t.Fatalf("bucketOf(%d) = %d, out of [0, %d)", v, i, numBuckets)
		}
		low, width := bucketRange(i)
		if v < low || v >= low+width {
			t.Fatalf("value %d in bucket %d = [%d, %d)", v, i, low, low+width)
		}
		if v < linearLimit && width != 1 {
			t.Fatalf("value %d below %d in a bucket of width %d", v, linearLimit, width)
		}
		if v >= linearLimit && float64(width)/float64(low) > 1.0/subBucketCount {
			t.Fatalf("bucket %d = [%d, +%d) is wider than 1/%d of its values", i, low, width, subBucketCount)
		}
	}
	if i := bucketOf(math.MaxUint64); i != numBuckets-1 {
		t.Errorf("bucketOf(max) = %d, want the last bucket %d", i, numBuckets-1)
	}
	// Buckets tile the range: each begins where the previous ends.
	for i := 1; i < numBuckets; i++ {
		pl, pw := bucketRange(i - 1)
		if l, _ := bucketRange(i); l != pl+pw {
			t.Fatalf("bucket %d starts at %d, bucket %d ends at %d", i, l, i-1, pl+pw)
		}
	}
}

func TestQuantile(t *testing.T) {
	seq := func(from, to, step time.Duration) []time.Duration {
		var d []time.Duration
		for v := from; v <= to; v += step {
			d = append(d, v)
		}
		return d
	}
	for _, tc := range []struct {
		name   string
		values []time.Duration
		q      float64
		want   time.Duration
		relErr float64 // 0: exact
	}{
		{"empty", nil, 0.5, 0, 0},
		{"one value p0", []time.Duration{1234567}, 0, 1234567, 0},
		{"one value p50", []time.Duration{1234567}, 0.5, 1234567, 0},
		{"one value p99.9", []time.Duration{1234567}, 0.999, 1234567, 0},
		{"exact region p50", seq(1, 100, 1), 0.5, 50, 0},
		{"exact region p90", seq(1, 100, 1), 0.9, 90, 0},
		{"exact region p99", seq(1, 100, 1), 0.99, 99, 0},
		{"exact region p100", seq(1, 100, 1), 1, 100, 0},
		{"exact region p0", seq(1, 100, 1), 0, 1, 0},
		{"nearest rank rounds up", seq(1, 10, 1), 0.55, 6, 0},
		{"ms p50", seq(time.Microsecond, 10*time.Millisecond, time.Microsecond), 0.5, 5 * time.Millisecond, 0.005},
		{"ms p90", seq(time.Microsecond, 10*time.Millisecond, time.Microsecond), 0.9, 9 * time.Millisecond, 0.005},
		{"ms p99", seq(time.Microsecond, 10*time.Millisecond, time.Microsecond), 0.99, 9900 * time.Microsecond, 0.005},
		{"ms p99.9", seq(time.Microsecond, 10*time.Millisecond, time.Microsecond), 0.999, 9990 * time.Microsecond, 0.005},
		{"ms max", seq(time.Microsecond, 10*time.Millisecond, time.Microsecond), 1, 10 * time.Millisecond, 0},
		{"1% slow: p99", append(repeat(time.Millisecond, 990), repeat(100*time.Millisecond, 10)...), 0.99, time.Millisecond, 0.005},
		{"1% slow: p99.9", append(repeat(time.Millisecond, 990), repeat(100*time.Millisecond, 10)...), 0.999, 100 * time.Millisecond, 0.005},
		{"one slow in 1000: p99.9", append(repeat(time.Millisecond, 999), 2*time.Second), 0.999, time.Millisecond, 0.005},
		{"one slow in 1000: max", append(repeat(time.Millisecond, 999), 2*time.Second), 1, 2 * time.Second, 0},
		{"negative is zero", []time.Duration{-5}, 0.5, 0, 0},
		{"beyond the last bucket", []time.Duration{time.Hour, 2 * time.Hour}, 1, 2 * time.Hour, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var h Histogram
			for _, v := range tc.values {
				h.Record(v)
			}
			got := h.Quantile(tc.q)
			if tc.relErr == 0 {
				if got != tc.want {
					t.Fatalf("Quantile(%v) = %v, want exactly %v", tc.q, got, tc.want)
				}
				return
			}
			if e := math.Abs(float64(got-tc.want)) / float64(tc.want); e > tc.relErr {
				t.Fatalf("Quantile(%v) = %v, want %v within %.1f%% (off by %.2f%%)", tc.q, got, tc.want, tc.relErr*100, e*100)
			}
		})
	}
}

// repeat returns n copies of d.
func repeat(d time.Duration, n int) []time.Duration {
	s := make([]time.Duration, n)
	for i := range s {
		s[i] = d
	}
	return s
}

func TestHistogramStats(t *testing.T) {
	var h Histogram
	if h.Count() != 0 || h.Min() != 0 || h.Max() != 0 || h.Mean() != 0 {
		t.Fatalf("empty histogram: count %d min %v max %v mean %v", h.Count(), h.Min(), h.Max(), h.Mean())
	}
	for _, v := range []time.Duration{3 * time.Millisecond, time.Millisecond, 2 * time.Millisecond, 10 * time.Millisecond} {
		h.Record(v)
	}
	if h.Count() != 4 || h.Min() != time.Millisecond || h.Max() != 10*time.Millisecond || h.Mean() != 4*time.Millisecond {
		t.Fatalf("count %d min %v max %v mean %v; want 4 1ms 10ms 4ms", h.Count(), h.Min(), h.Max(), h.Mean())
	}
}

func TestHistogramMerge(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	var a, b, all Histogram
	for i := range 20000 {
		v := time.Duration(rng.ExpFloat64() * float64(time.Millisecond))
		all.Record(v)
		if i%3 == 0 {
			a.Record(v)
		} else {
			b.Record(v)
		}
	}
	var m Histogram
	m.Merge(&a)
	m.Merge(nil)
	m.Merge(new(Histogram))
	m.Merge(&b)
	if m != all {
		t.Fatalf("merge of two halves differs from recording all: count %d/%d min %v/%v max %v/%v",
			m.Count(), all.Count(), m.Min(), all.Min(), m.Max(), all.Max())
	}
	// Merging into an empty histogram takes the other's minimum, not zero.
	var e Histogram
	e.Merge(&b)
	if e.Min() != b.Min() {
		t.Fatalf("min after merge into empty = %v, want %v", e.Min(), b.Min())
	}
}

func BenchmarkRecord(b *testing.B) {
	var h Histogram
	for i := range b.N {
		h.Record(time.Duration(i) * 997)
	}
}
