package main

import (
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/raftkv/raftkv/bench"
)

const (
	// progressEvery is how often the progress line is redrawn.
	progressEvery = 250 * time.Millisecond
	// barWidth is the number of cells of the progress bar.
	barWidth = 30
)

// startProgress redraws a progress line for r on w (a terminal) until the
// returned function is called; that function erases the line and returns
// once the drawing goroutine has ended.
func startProgress(w io.Writer, r *bench.Runner) (stop func()) {
	quit, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(progressEvery)
		defer t.Stop()
		for {
			select {
			case <-quit:
				fmt.Fprint(w, "\r\x1b[K")
				return
			case <-t.C:
				if p := r.Progress(); p.Phase != bench.PhaseIdle && p.Phase != bench.PhaseDone {
					fmt.Fprint(w, "\r"+renderProgress(p)+"\x1b[K")
				}
			}
		}
	}()
	return func() {
		close(quit)
		<-done
	}
}

// renderProgress returns the progress line of p, without line control.
func renderProgress(p bench.Progress) string {
	f := p.Fraction()
	full := int(f * barWidth)
	bar := strings.Repeat("=", full)
	if full < barWidth {
		bar += ">" + strings.Repeat(" ", barWidth-full-1)
	}
	var rate float64
	if s := p.Elapsed.Seconds(); s > 0 {
		rate = float64(p.Done) / s
	}
	return fmt.Sprintf("%-7s [%s] %3.0f%%  %d done  %.0f/s  %d errors  %s",
		p.Phase, bar, f*100, p.Done, rate, p.Errors, p.Elapsed.Truncate(100*time.Millisecond))
}
