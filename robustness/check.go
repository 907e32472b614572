package robustness

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/anishathalye/porcupine"
)

// DefaultCheckTimeout bounds a linearizability check; a check that times
// out is a failure.
const DefaultCheckTimeout = 30 * time.Second

// LinResult is the outcome of a linearizability check.
type LinResult struct {
	// Result is porcupine's: Ok, Illegal, or Unknown (timed out, a failure).
	Result porcupine.CheckResult
	// Checked is the number of operations given to porcupine (after
	// dropping failed operations and unobservable unknown writes).
	Checked int
	// Keys is the number of keys (partitions) checked.
	Keys int
	// BadKeys are the keys whose history alone is not linearizable.
	BadKeys []string
	// Took is how long the check ran.
	Took time.Duration
	// Visualization is the path of the HTML visualization, if one was written.
	Visualization string
	// Err is an error writing the visualization.
	Err error
}

// OK reports whether the history was proven linearizable.
func (r LinResult) OK() bool { return r.Result == porcupine.Ok }

func (r LinResult) String() string {
	s := fmt.Sprintf("%s (porcupine, %d operations on %d keys, %v)", r.Result, r.Checked, r.Keys, r.Took.Round(time.Millisecond))
	if len(r.BadKeys) > 0 {
		s += fmt.Sprintf(", not linearizable: keys %s", strings.Join(clipList(r.BadKeys, 5), ", "))
	}
	if r.Result == porcupine.Unknown {
		s += ", the check timed out"
	}
	return s
}

// CheckLinearizable checks ops against Model with porcupine, within timeout
// (DefaultCheckTimeout if zero). If the history is not proven linearizable
// and vizPath is not empty, it writes porcupine's HTML visualization there,
// with notes as annotations.
func CheckLinearizable(ops []Op, notes []Note, timeout time.Duration, vizPath string) LinResult {
	if timeout <= 0 {
		timeout = DefaultCheckTimeout
	}
	pops := PorcupineOps(ops)
	start := time.Now()
	res, info := porcupine.CheckOperationsVerbose(Model, pops, timeout)
	r := LinResult{Result: res, Checked: len(pops), Keys: len(keysOf(pops)), Took: time.Since(start)}
	if res == porcupine.Illegal {
		r.BadKeys = badKeys(pops, timeout)
	}
	if res != porcupine.Ok && vizPath != "" {
		info.AddAnnotations(annotations(notes))
		if err := porcupine.VisualizePath(Model, info, vizPath); err != nil {
			r.Err = fmt.Errorf("robustness: visualization: %w", err)
		} else {
			r.Visualization = vizPath
		}
	}
	return r
}

// Visualize writes porcupine's HTML visualization of ops, with notes as
// annotations, to path, whatever the outcome of the check; for histories
// that failed another check.
func Visualize(ops []Op, notes []Note, timeout time.Duration, path string) error {
	if timeout <= 0 {
		timeout = DefaultCheckTimeout
	}
	_, info := porcupine.CheckOperationsVerbose(Model, PorcupineOps(ops), timeout)
	info.AddAnnotations(annotations(notes))
	if err := porcupine.VisualizePath(Model, info, path); err != nil {
		return fmt.Errorf("robustness: visualization: %w", err)
	}
	return nil
}

// badKeys checks each key alone and returns those that fail.
func badKeys(pops []porcupine.Operation, timeout time.Duration) []string {
	var bad []string
	for _, part := range partitionByKey(pops) {
		if porcupine.CheckOperationsTimeout(Model, part, timeout) != porcupine.Ok {
			bad = append(bad, part[0].Input.(Input).Key)
		}
	}
	slices.Sort(bad)
	return bad
}

func annotations(notes []Note) []porcupine.Annotation {
	out := make([]porcupine.Annotation, 0, len(notes))
	for _, n := range notes {
		out = append(out, porcupine.Annotation{
			Tag:             "test",
			Start:           int64(n.At),
			Description:     n.Text,
			BackgroundColor: "#ffd7a8",
		})
	}
	return out
}

// DurabilityResult is the outcome of a durability check of the write-once
// key family.
type DurabilityResult struct {
	Nodes   int // members read
	Keys    int // write-once keys written
	Acked   int // of which acknowledged
	Unknown int // of which with an unknown outcome
	Probes  int // keys never written, read to find phantoms
	// Lost lists acknowledged writes a member does not hold.
	Lost []string
	// Phantom lists values a member holds that no write wrote.
	Phantom []string
	// Unreadable lists reads that got no 200 or 404 before the deadline.
	Unreadable []string
	// Present counts unknown-outcome writes found applied.
	Present int
	Took    time.Duration
}

// OK reports whether nothing was lost, nothing phantom, and every read answered.
func (r DurabilityResult) OK() bool {
	return len(r.Lost) == 0 && len(r.Phantom) == 0 && len(r.Unreadable) == 0
}

func (r DurabilityResult) String() string {
	s := fmt.Sprintf("%d write-once keys (%d acknowledged, %d unknown outcome, %d of those applied) and %d never-written keys read on %d members: %d lost, %d phantom",
		r.Keys, r.Acked, r.Unknown, r.Present, r.Probes, r.Nodes, len(r.Lost), len(r.Phantom))
	if len(r.Unreadable) > 0 {
		s += fmt.Sprintf(", %d unreadable", len(r.Unreadable))
	}
	for _, l := range [][]string{r.Lost, r.Phantom, r.Unreadable} {
		if len(l) > 0 {
			s += "; " + strings.Join(clipList(l, 3), "; ")
		}
	}
	return s
}

// durabilityReaders is how many reads of the durability check run at once.
const durabilityReaders = 8

// CheckDurability reads every write-once key of ops, and the never-written
// keys probes, on every member in nodes with linearizable reads, retrying
// reads that get no answer until deadline. Every acknowledged write must be
// there with its value (else lost), a key must hold no value that its
// write did not write and a never-written key must be absent (else
// phantom); a write with an unknown outcome may be there or not.
func CheckDurability(c *Client, nodes []string, ops []Op, probes []string, deadline time.Duration) DurabilityResult {
	start := time.Now()
	type write struct {
		value string
		acked bool
	}
	writes := map[string]write{}
	var keys []string
	for _, op := range ops {
		if !op.Once || op.Input.Op != OpPut {
			continue
		}
		switch op.Output.Result {
		case ResultOK, ResultUnknown:
			writes[op.Input.Key] = write{value: op.Input.Value, acked: op.Output.Result == ResultOK}
			keys = append(keys, op.Input.Key)
		case ResultFailed:
			probes = append(probes, op.Input.Key) // never applied
		}
	}
	slices.Sort(keys)
	r := DurabilityResult{Nodes: len(nodes), Keys: len(keys), Probes: len(probes)}
	for _, w := range writes {
		if w.acked {
			r.Acked++
		} else {
			r.Unknown++
		}
	}

	type job struct{ node, key string }
	jobs := make(chan job)
	var mu sync.Mutex
	present := map[string]bool{}
	var wg sync.WaitGroup
	until := start.Add(deadline)
	for range durabilityReaders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range jobs {
				val, ok, err := readUntil(c, j.node, j.key, until)
				w, written := writes[j.key]
				var lost, phantom, unreadable string
				switch {
				case err != nil:
					unreadable = fmt.Sprintf("%s on %s: %v", j.key, j.node, err)
				case ok && !written:
					phantom = fmt.Sprintf("%s on %s holds %q, never written", j.key, j.node, val)
				case ok && string(val) != w.value:
					phantom = fmt.Sprintf("%s on %s holds %q, written %q", j.key, j.node, val, w.value)
				case !ok && written && w.acked:
					lost = fmt.Sprintf("%s on %s: acknowledged %q, absent", j.key, j.node, w.value)
				}
				mu.Lock()
				if ok && written && !w.acked && string(val) == w.value {
					present[j.key] = true
				}
				for _, x := range []struct {
					s string
					l *[]string
				}{{lost, &r.Lost}, {phantom, &r.Phantom}, {unreadable, &r.Unreadable}} {
					if x.s != "" {
						*x.l = append(*x.l, x.s)
					}
				}
				mu.Unlock()
			}
		}()
	}
	for _, n := range nodes {
		for _, k := range append(slices.Clone(keys), probes...) {
			jobs <- job{n, k}
		}
	}
	close(jobs)
	wg.Wait()
	r.Present = len(present)
	slices.Sort(r.Lost)
	slices.Sort(r.Phantom)
	slices.Sort(r.Unreadable)
	r.Took = time.Since(start)
	return r
}

// readUntil retries a linearizable read until it gets 200 or 404 or the
// deadline passes.
func readUntil(c *Client, node, key string, until time.Time) ([]byte, bool, error) {
	for {
		val, ok, err := c.Read(node, key)
		if err == nil || time.Now().After(until) {
			return val, ok, err
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// ConvergenceResult is the outcome of a convergence check.
type ConvergenceResult struct {
	Converged bool
	// Digests are the last digests read, by member base URL.
	Digests map[string]Digest
	// Errs are the last errors reading digests, by member.
	Errs map[string]string
	Took time.Duration
}

// OK reports whether the members converged.
func (r ConvergenceResult) OK() bool { return r.Converged }

func (r ConvergenceResult) String() string {
	if r.Converged {
		for _, d := range r.Digests {
			return fmt.Sprintf("%d members at applied index %d, %d keys, hash %.12s, after %v",
				len(r.Digests), d.AppliedIndex, d.Keys, d.Hash, r.Took.Round(time.Millisecond))
		}
		return "no members"
	}
	nodes := make([]string, 0, len(r.Digests)+len(r.Errs))
	for n := range r.Digests {
		nodes = append(nodes, n)
	}
	for n := range r.Errs {
		nodes = append(nodes, n)
	}
	slices.Sort(nodes)
	var b strings.Builder
	fmt.Fprintf(&b, "not converged after %v:", r.Took.Round(time.Millisecond))
	for _, n := range nodes {
		if e, ok := r.Errs[n]; ok {
			fmt.Fprintf(&b, " [%s: %s]", n, e)
		} else {
			d := r.Digests[n]
			fmt.Fprintf(&b, " [%s: applied %d, %d keys, hash %.12s]", n, d.AppliedIndex, d.Keys, d.Hash)
		}
	}
	return b.String()
}

// CheckConvergence polls GET /debug/state on every member in nodes until
// all report the same applied index and hash, or timeout passes.
func CheckConvergence(c *Client, nodes []string, timeout time.Duration) ConvergenceResult {
	start := time.Now()
	for {
		r := ConvergenceResult{Digests: map[string]Digest{}, Errs: map[string]string{}}
		var first *Digest
		same := true
		for _, n := range nodes {
			d, err := c.Digest(n)
			if err != nil {
				r.Errs[n] = err.Error()
				same = false
				continue
			}
			r.Digests[n] = d
			if first == nil {
				first = &d
			} else if d.AppliedIndex != first.AppliedIndex || d.Hash != first.Hash {
				same = false
			}
		}
		r.Took = time.Since(start)
		r.Converged = same && len(nodes) > 0
		if r.Converged || r.Took > timeout {
			return r
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// logMarkers are what reveal a crash, a race or a corrupt state in a
// member log: a Go panic (also one recovered by net/http), a runtime fatal
// error, a race report, a leader's hash check that found two members'
// states differ (raftkv --hash-check-interval).
var logMarkers = []string{"panic:", "panic serving", "fatal error:", "DATA RACE", "members' states differ"}

// ScanLog returns the lines of the log at path that reveal a panic, a
// fatal error or a data race, at most max of them.
func ScanLog(path string, max int) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var hits []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64*1024), 16*1024*1024)
	for sc.Scan() && len(hits) < max {
		line := sc.Bytes()
		for _, m := range logMarkers {
			if bytes.Contains(line, []byte(m)) {
				hits = append(hits, string(clip(line, 300)))
				break
			}
		}
	}
	return hits, sc.Err()
}

func clipList(l []string, n int) []string {
	if len(l) > n {
		return append(slices.Clone(l[:n]), fmt.Sprintf("and %d more", len(l)-n))
	}
	return l
}
