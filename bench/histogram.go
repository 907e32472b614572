package bench

import (
	"fmt"
	"math"
	"math/bits"
	"time"
)

// The histogram is log-linear, as HdrHistogram: values below linearLimit
// nanoseconds have a bucket each; above, every power of two is split into
// subBucketCount equal buckets, so a bucket is at most 1/128 (0.78%) of the
// values it holds wide, and its midpoint is within 0.4% of any of them.
const (
	subBucketBits  = 7
	subBucketCount = 1 << subBucketBits // buckets per power of two
	linearLimit    = 2 * subBucketCount // values below are recorded exactly
	// maxShift bounds the bucket array: values of 2^(maxShift+8) ns (about 37
	// minutes) and more share the last bucket. Min, Max and Mean stay exact.
	maxShift   = 33
	numBuckets = linearLimit + maxShift*subBucketCount // 4480 buckets, 35 KiB
)

// Histogram records durations with about 1% precision in constant time and
// without allocating. It is not safe for concurrent use: each worker records
// into its own and they are merged once the workers are done. The zero value
// is an empty histogram.
type Histogram struct {
	counts [numBuckets]uint64
	n      uint64
	sum    uint64 // nanoseconds
	min    uint64
	max    uint64
}

// bucketOf returns the index of the bucket that holds v nanoseconds.
func bucketOf(v uint64) int {
	if v < linearLimit {
		return int(v)
	}
	shift := bits.Len64(v) - (subBucketBits + 1) // >= 1; v>>shift is in [128, 256)
	if shift > maxShift {
		return numBuckets - 1
	}
	top := v >> uint(shift)
	return linearLimit + (shift-1)*subBucketCount + int(top-subBucketCount)
}

// bucketRange returns the lowest value bucket i holds and its width, in
// nanoseconds.
func bucketRange(i int) (low, width uint64) {
	if i < linearLimit {
		return uint64(i), 1
	}
	k := i - linearLimit
	shift := uint(k/subBucketCount + 1)
	top := uint64(k%subBucketCount + subBucketCount)
	return top << shift, 1 << shift
}

// Record adds one duration; negative durations count as zero.
func (h *Histogram) Record(d time.Duration) {
	v := uint64(0)
	if d > 0 {
		v = uint64(d)
	}
	h.counts[bucketOf(v)]++
	if h.n == 0 || v < h.min {
		h.min = v
	}
	if v > h.max {
		h.max = v
	}
	h.n++
	h.sum += v
}

// Merge adds every value recorded in o to h.
func (h *Histogram) Merge(o *Histogram) {
	if o == nil || o.n == 0 {
		return
	}
	for i, c := range o.counts {
		h.counts[i] += c
	}
	if h.n == 0 || o.min < h.min {
		h.min = o.min
	}
	h.max = max(h.max, o.max)
	h.n += o.n
	h.sum += o.sum
}

// Count returns the number of recorded values.
func (h *Histogram) Count() uint64 { return h.n }

// Min returns the smallest recorded value exactly, 0 if there is none.
func (h *Histogram) Min() time.Duration { return time.Duration(h.min) }

// Max returns the largest recorded value exactly, 0 if there is none.
func (h *Histogram) Max() time.Duration { return time.Duration(h.max) }

// Mean returns the exact mean of the recorded values, 0 if there is none.
func (h *Histogram) Mean() time.Duration {
	if h.n == 0 {
		return 0
	}
	return time.Duration(h.sum / h.n)
}

// Quantile returns the q-quantile (0 <= q <= 1) by the nearest-rank method:
// the smallest recorded value v such that at least q of all values are <= v,
// within the bucket precision. It is exact below 256ns, for q = 0 (Min) and
// q = 1 (Max), and never outside [Min, Max]. It returns 0 if h is empty.
func (h *Histogram) Quantile(q float64) time.Duration {
	if h.n == 0 {
		return 0
	}
	if math.IsNaN(q) || q <= 0 {
		return h.Min()
	}
	if q >= 1 {
		return h.Max()
	}
	rank := uint64(math.Ceil(q * float64(h.n)))
	rank = min(max(rank, 1), h.n)
	var seen uint64
	for i, c := range h.counts {
		seen += c
		if seen < rank {
			continue
		}
		low, width := bucketRange(i)
		v := low + width/2 // width 1 means exact: width/2 is 0
		return time.Duration(min(max(v, h.min), h.max))
	}
	panic(fmt.Sprintf("bench: histogram buckets hold %d values, its total is %d", seen, h.n))
}
