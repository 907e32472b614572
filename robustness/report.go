package robustness

import (
	"fmt"
	"strings"
	"time"
)

// Report gathers the checks of one history.
type Report struct {
	// Name says what ran, e.g. a fault or "raftkv-check".
	Name string
	// Workload is how long the workload ran.
	Workload time.Duration
	Stats    Stats
	Lin      LinResult
	// Durability and Convergence are nil when not checked.
	Durability  *DurabilityResult
	Convergence *ConvergenceResult
	// Watch is nil when no watch was checked.
	Watch *WatchResult
	// Hashes is nil when no hash checks ran.
	Hashes *HashCheckResult
	// Extra are further violations found by the caller (log markers, a
	// fault that did not bite, a write after healing that did not succeed).
	Extra []string
}

// Violations lists every failed check, one line each.
func (r Report) Violations() []string {
	var v []string
	if !r.Lin.OK() {
		v = append(v, "linearizability: "+r.Lin.String())
	}
	if r.Stats.Refused > 0 {
		v = append(v, fmt.Sprintf("%d valid writes refused with a 4xx", r.Stats.Refused))
	}
	if r.Durability != nil && !r.Durability.OK() {
		v = append(v, "durability: "+r.Durability.String())
	}
	if r.Convergence != nil && !r.Convergence.OK() {
		v = append(v, "convergence: "+r.Convergence.String())
	}
	if r.Watch != nil && !r.Watch.OK() {
		v = append(v, "watch: "+r.Watch.String())
	}
	if r.Hashes != nil && !r.Hashes.OK() {
		v = append(v, "hash checks: "+r.Hashes.String())
	}
	return append(v, r.Extra...)
}

// OK reports whether every check passed.
func (r Report) OK() bool { return len(r.Violations()) == 0 }

// Verdict is one paragraph saying what ran and what the checks found.
func (r Report) Verdict() string {
	var b strings.Builder
	if r.OK() {
		fmt.Fprintf(&b, "%s: PASS. ", r.Name)
	} else {
		fmt.Fprintf(&b, "%s: FAIL (%d violations). ", r.Name, len(r.Violations()))
	}
	fmt.Fprintf(&b, "A %v workload made %s. ", r.Workload.Round(time.Second), r.Stats)
	fmt.Fprintf(&b, "Linearizability: %s. ", r.Lin)
	if r.Durability != nil {
		fmt.Fprintf(&b, "Durability: %s. ", r.Durability)
	}
	if r.Convergence != nil {
		fmt.Fprintf(&b, "Convergence: %s. ", r.Convergence)
	}
	if r.Watch != nil {
		fmt.Fprintf(&b, "Watch: %s. ", r.Watch)
	}
	if r.Hashes != nil {
		fmt.Fprintf(&b, "Hash checks: %s. ", r.Hashes)
	}
	var other []string
	if r.Stats.Refused > 0 {
		other = append(other, fmt.Sprintf("%d valid writes refused with a 4xx", r.Stats.Refused))
	}
	if other = append(other, r.Extra...); len(other) > 0 {
		fmt.Fprintf(&b, "Also: %s.", strings.Join(other, "; "))
	}
	if r.Lin.Visualization != "" {
		fmt.Fprintf(&b, " History visualized in %s.", r.Lin.Visualization)
	}
	return strings.TrimSpace(b.String())
}
