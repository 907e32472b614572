package main

import (
	"context"
	"runtime/debug"
	"runtime/metrics"
	"time"
)

// Automatic GC pacing (--gc-percent 0). The state lives in the heap, so
// Go's GOGC=100 lets a member's memory reach twice its data between
// collections. tuneGC instead lets the heap grow past the live heap by
// gcHeadroomFraction of it, but by at least gcMinHeadroom: a small state
// is collected rarely (cheap in CPU), a large one closely (cheap in
// memory). Collection work per byte allocated grows as the headroom
// shrinks, which is why the floor exists.
const (
	gcHeadroomFraction = 0.15
	gcMinHeadroom      = 64 << 20
	gcTuneInterval     = 500 * time.Millisecond
	gcMinPercent       = 10
	gcMaxPercent       = 400
)

// gcPercentFor returns the GC percentage that gives a live heap of live
// bytes the headroom described above.
func gcPercentFor(live uint64) int {
	if live == 0 {
		return gcMaxPercent
	}
	headroom := max(float64(gcMinHeadroom), gcHeadroomFraction*float64(live))
	return min(max(int(100*headroom/float64(live)), gcMinPercent), gcMaxPercent)
}

// tuneGC adjusts the GC percentage to the live heap until ctx ends. It
// changes it only when the target moved by more than a tenth, since each
// change briefly stops the world.
func tuneGC(ctx context.Context) {
	sample := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
	current := 0
	t := time.NewTicker(gcTuneInterval)
	defer t.Stop()
	for {
		metrics.Read(sample)
		if sample[0].Value.Kind() == metrics.KindUint64 {
			p := gcPercentFor(sample[0].Value.Uint64())
			if current == 0 || p*10 < current*9 || p*10 > current*11 {
				debug.SetGCPercent(p)
				current = p
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
