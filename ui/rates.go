package ui

import (
	"math"
	"time"
)

// Rates come from successive samples of each member's counters, taken
// whenever the dashboard aggregates (once a second per open page).
const (
	// rateWindow is how far back the oldest sample a rate is computed
	// from may be: rates are averages over about this long.
	rateWindow = 3 * time.Second
	// minRateSpan is the shortest span a rate is computed over; two pages
	// polling at once may take samples a few milliseconds apart.
	minRateSpan = 200 * time.Millisecond
	// maxSamples bounds each member's samples, however many pages poll.
	maxSamples = 32
	// forgetAfter drops the samples of a member not sampled for this long.
	forgetAfter = time.Minute
)

// sample is a member's counters at one time.
type sample struct {
	at time.Time
	counters
}

// rate is the per-second increase of a counter from a to b, and false when
// it cannot be told: the samples are less than minRateSpan apart or out of
// order, a value is unknown (NaN), or the counter went down (the member
// restarted and counts from zero again).
func rate(a, b sample, value func(counters) float64) (float64, bool) {
	span := b.at.Sub(a.at)
	va, vb := value(a.counters), value(b.counters)
	if span < minRateSpan || math.IsNaN(va) || math.IsNaN(vb) || vb < va {
		return 0, false
	}
	return (vb - va) / span.Seconds(), true
}

// series is one member's recent samples, oldest first.
type series struct {
	samples []sample
}

// add records s and returns the write and read rates from the oldest
// sample within rateWindow to s; nil where rate cannot tell. A sample
// whose counters went down (a restart) starts the series anew; one older
// than the newest (two aggregations at once) is used but not kept.
func (r *series) add(s sample) (writes, reads *float64) {
	keep := r.samples[:0]
	for _, old := range r.samples {
		if s.at.Sub(old.at) <= rateWindow {
			keep = append(keep, old)
		}
	}
	r.samples = keep
	if n := len(r.samples); n > 0 {
		last := r.samples[n-1]
		switch {
		case !s.at.After(last.at):
			return r.rates(s)
		case s.Writes < last.Writes || s.Reads < last.Reads || s.LeaderChanges < last.LeaderChanges:
			r.samples = r.samples[:0]
		}
	}
	r.samples = append(r.samples, s)
	if n := len(r.samples); n > maxSamples {
		r.samples = append(r.samples[:0], r.samples[n-maxSamples:]...)
	}
	return r.rates(s)
}

// rates are the write and read rates from the oldest sample to s.
func (r *series) rates(s sample) (writes, reads *float64) {
	if len(r.samples) == 0 {
		return nil, nil
	}
	first := r.samples[0]
	if w, ok := rate(first, s, func(c counters) float64 { return c.Writes }); ok {
		writes = &w
	}
	if rd, ok := rate(first, s, func(c counters) float64 { return c.Reads }); ok {
		reads = &rd
	}
	return writes, reads
}

// last is when the newest sample was taken.
func (r *series) last() time.Time {
	if len(r.samples) == 0 {
		return time.Time{}
	}
	return r.samples[len(r.samples)-1].at
}
