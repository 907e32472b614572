package ui

import (
	"fmt"
	"math"
	"testing"
	"time"
)

func TestRate(t *testing.T) {
	t0 := time.Unix(1000, 0)
	at := func(d time.Duration, writes float64) sample {
		return sample{at: t0.Add(d), counters: counters{Writes: writes}}
	}
	writes := func(c counters) float64 { return c.Writes }
	tests := []struct {
		name   string
		a, b   sample
		want   float64
		wantOK bool
	}{
		{"one second", at(0, 10), at(time.Second, 30), 20, true},
		{"half a second", at(0, 10), at(500*time.Millisecond, 30), 40, true},
		{"idle", at(0, 10), at(2*time.Second, 10), 0, true},
		{"span below minRateSpan", at(0, 10), at(minRateSpan-time.Millisecond, 30), 0, false},
		{"span of minRateSpan", at(0, 10), at(minRateSpan, 30), 100, true},
		{"same time", at(0, 10), at(0, 30), 0, false},
		{"out of order", at(time.Second, 10), at(0, 30), 0, false},
		{"counter went down (restart)", at(0, 30), at(time.Second, 5), 0, false},
		{"unknown before", at(0, math.NaN()), at(time.Second, 5), 0, false},
		{"unknown after", at(0, 5), at(time.Second, math.NaN()), 0, false},
	}
	for _, tc := range tests {
		got, ok := rate(tc.a, tc.b, writes)
		if ok != tc.wantOK || got != tc.want {
			t.Errorf("%s: rate = %v, %v; want %v, %v", tc.name, got, ok, tc.want, tc.wantOK)
		}
	}
}

func TestSeries(t *testing.T) {
	t0 := time.Unix(1000, 0)
	type step struct {
		at            time.Duration
		writes, reads float64
		wantW, wantR  float64 // -1: nil
		wantSamples   int
	}
	steps := []step{
		{at: 0, writes: 100, reads: 0, wantW: -1, wantR: -1, wantSamples: 1},
		{at: time.Second, writes: 110, reads: 50, wantW: 10, wantR: 50, wantSamples: 2},
		{at: 2 * time.Second, writes: 130, reads: 50, wantW: 15, wantR: 25, wantSamples: 3},
		// A second page 10 ms later: too close to the newest, but the
		// rate is taken from the oldest sample in the window.
		{at: 2*time.Second + 10*time.Millisecond, writes: 130, reads: 50, wantW: 30 / 2.01, wantR: 50 / 2.01, wantSamples: 4},
		// An answer that arrives late (taken before the newest): used, not kept.
		{at: 1500 * time.Millisecond, writes: 120, reads: 50, wantW: 20 / 1.5, wantR: 50 / 1.5, wantSamples: 4},
		// The sample at 0 falls out of the window; the rate is from 1 s.
		{at: 4 * time.Second, writes: 150, reads: 60, wantW: 40 / 3.0, wantR: 10 / 3.0, wantSamples: 4},
		// A restart: counters from zero; the series starts anew.
		{at: 5 * time.Second, writes: 3, reads: 1, wantW: -1, wantR: -1, wantSamples: 1},
		{at: 6 * time.Second, writes: 5, reads: 1, wantW: 2, wantR: 0, wantSamples: 2},
		// A long pause: only the new sample remains.
		{at: 60 * time.Second, writes: 500, reads: 1, wantW: -1, wantR: -1, wantSamples: 1},
	}
	var s series
	for i, st := range steps {
		w, r := s.add(sample{at: t0.Add(st.at), counters: counters{Writes: st.writes, Reads: st.reads}})
		if !near(w, st.wantW) || !near(r, st.wantR) {
			t.Errorf("step %d (%v): rates %s, %s; want %v, %v", i, st.at, show(w), show(r), st.wantW, st.wantR)
		}
		if len(s.samples) != st.wantSamples {
			t.Errorf("step %d (%v): %d samples kept, want %d", i, st.at, len(s.samples), st.wantSamples)
		}
	}
}

func TestSeriesBounded(t *testing.T) {
	var s series
	t0 := time.Unix(1000, 0)
	for i := range 10 * maxSamples {
		s.add(sample{at: t0.Add(time.Duration(i) * time.Millisecond), counters: counters{Writes: float64(i)}})
	}
	if len(s.samples) != maxSamples {
		t.Errorf("%d samples kept, want at most %d", len(s.samples), maxSamples)
	}
}

func near(got *float64, want float64) bool {
	if want < 0 {
		return got == nil
	}
	return got != nil && math.Abs(*got-want) < 1e-9
}

func show(v *float64) string {
	if v == nil {
		return "nil"
	}
	return fmt.Sprint(*v)
}
