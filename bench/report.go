package bench

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"math"
	"slices"
	"strings"
	"time"
)

// Result is the outcome of a run.
type Result struct {
	// Config is the run's configuration, with defaults and the seed filled in.
	Config Config
	// Elapsed is the measured phase, from its start to its last answer.
	Elapsed time.Duration
	// Ops counts the successful requests of the measured phase; Failed the
	// others (requests abandoned on interrupt are in neither).
	Ops, Failed uint64
	// Latency holds the latency of every successful request: from the moment
	// it was due (Config.Rate) or sent until its whole answer was read.
	Latency *Histogram
	// Reads and Writes split Latency by operation in ModeMixed; nil otherwise.
	Reads, Writes *Histogram
	// Errors counts failed requests by class: an unexpected HTTP status as
	// its number ("503"), or a transport error class (ErrClassTimeout...).
	Errors map[string]uint64
	// ErrorSamples holds the first error message seen of each class.
	ErrorSamples map[string]string
	// Interrupted reports that the run's context ended before it did.
	Interrupted bool
	// Verify is the read-back check, nil unless Config.Verify.
	Verify *VerifyResult
	// ConfigVersion and Groups are the version of the config a sharded
	// run routed by at its end, and its number of groups; zero otherwise.
	ConfigVersion uint64
	Groups        int
}

// Throughput returns the successful requests per second of the measured phase.
func (r *Result) Throughput() float64 {
	if r.Elapsed <= 0 {
		return 0
	}
	return float64(r.Ops) / r.Elapsed.Seconds()
}

// VerifyResult counts the outcome of reading back every acknowledged key.
type VerifyResult struct {
	// Checked counts the keys read back: those with a 204 to a write.
	Checked uint64
	// Missing counts keys answered 404: an acknowledged write was lost.
	Missing uint64
	// Mismatched counts keys holding neither the last acknowledged value nor
	// the value of a later or earlier write whose outcome is unknown.
	Mismatched uint64
	// ReadErrors counts keys whose read failed after retries: not checked.
	ReadErrors uint64
	// Problems lists up to 20 failed keys, sorted by key.
	Problems []Problem
}

// OK reports whether every checked key was read back with a right value.
func (v *VerifyResult) OK() bool { return v.Missing == 0 && v.Mismatched == 0 && v.ReadErrors == 0 }

// ProblemKind says how the check of one key failed.
type ProblemKind string

// The kinds of Problem.
const (
	ProblemMissing   ProblemKind = "missing"
	ProblemMismatch  ProblemKind = "mismatch"
	ProblemReadError ProblemKind = "read-error"
)

// Problem is one key that failed verification.
type Problem struct {
	Key    string      `json:"key"`
	Kind   ProblemKind `json:"kind"`
	Detail string      `json:"detail"`
}

// Latency is a latency summary in milliseconds, rounded to the microsecond.
type Latency struct {
	Min  float64 `json:"min"`
	Mean float64 `json:"mean"`
	P50  float64 `json:"p50"`
	P90  float64 `json:"p90"`
	P99  float64 `json:"p99"`
	P999 float64 `json:"p99.9"`
	Max  float64 `json:"max"`
}

// summarize returns the Latency of h.
func summarize(h *Histogram) Latency {
	ms := func(d time.Duration) float64 { return math.Round(float64(d)/1e3) / 1e3 }
	return Latency{
		Min:  ms(h.Min()),
		Mean: ms(h.Mean()),
		P50:  ms(h.Quantile(0.50)),
		P90:  ms(h.Quantile(0.90)),
		P99:  ms(h.Quantile(0.99)),
		P999: ms(h.Quantile(0.999)),
		Max:  ms(h.Max()),
	}
}

// Summary is the machine-readable form of a Result, one JSON object.
type Summary struct {
	Mode      Mode     `json:"mode"`
	Endpoints []string `json:"endpoints"`
	// ConfigEndpoints, ConfigVersion and Groups describe a sharded run.
	ConfigEndpoints []string `json:"config_endpoints,omitempty"`
	ConfigVersion   uint64   `json:"config_version,omitempty"`
	Groups          int      `json:"groups,omitempty"`
	// ViaClient: every request went through a client.Client.
	ViaClient  bool     `json:"via_client,omitempty"`
	Clients    int      `json:"clients"`
	Conns      int      `json:"conns"`
	KeySize    int      `json:"key_size"`
	ValueSize  int      `json:"value_size"`
	Keyspace   int      `json:"keyspace"`
	Sequential bool     `json:"sequential"`
	Level      string   `json:"level,omitempty"`      // get and mixed
	ReadRatio  *float64 `json:"read_ratio,omitempty"` // mixed
	Preload    bool     `json:"preload"`
	Rate       float64  `json:"rate"` // requests/s asked for; 0: unlimited
	Seed       uint64   `json:"seed"`
	// DurationS is the measured phase in seconds.
	DurationS float64 `json:"duration_s"`
	Ops       uint64  `json:"ops"`
	Failed    uint64  `json:"failed"`
	// Throughput is in successful requests per second.
	Throughput   float64           `json:"throughput"`
	Latency      Latency           `json:"latency_ms"`
	ReadLatency  *Latency          `json:"read_latency_ms,omitempty"`
	WriteLatency *Latency          `json:"write_latency_ms,omitempty"`
	Errors       map[string]uint64 `json:"errors"`
	Interrupted  bool              `json:"interrupted,omitempty"`
	Verify       *VerifySummary    `json:"verify,omitempty"`
}

// VerifySummary is the machine-readable form of a VerifyResult.
type VerifySummary struct {
	Checked    uint64 `json:"checked"`
	Missing    uint64 `json:"missing"`
	Mismatched uint64 `json:"mismatched"`
	ReadErrors uint64 `json:"read_errors"`
}

// Summary returns the machine-readable form of r.
func (r *Result) Summary() Summary {
	c := r.Config
	s := Summary{
		Mode:            c.Mode,
		Endpoints:       c.Endpoints,
		ConfigEndpoints: c.ConfigEndpoints,
		ConfigVersion:   r.ConfigVersion,
		Groups:          r.Groups,
		ViaClient:       c.ViaClient,
		Clients:         c.Clients,
		Conns:           c.Conns,
		KeySize:         c.KeySize,
		ValueSize:       c.ValueSize,
		Keyspace:        c.Keyspace,
		Sequential:      c.Sequential,
		Preload:         c.Preload,
		Rate:            c.Rate,
		Seed:            c.Seed,
		DurationS:       math.Round(r.Elapsed.Seconds()*1e3) / 1e3,
		Ops:             r.Ops,
		Failed:          r.Failed,
		Throughput:      math.Round(r.Throughput()*10) / 10,
		Errors:          map[string]uint64{},
		Latency:         Latency{},
	}
	if c.Mode == ModeGet || c.Mode == ModeMixed {
		s.Level = c.Level
	}
	if c.Mode == ModeMixed {
		ratio := c.ReadRatio
		s.ReadRatio = &ratio
	}
	if r.Latency != nil {
		s.Latency = summarize(r.Latency)
	}
	if r.Reads != nil {
		l := summarize(r.Reads)
		s.ReadLatency = &l
	}
	if r.Writes != nil {
		l := summarize(r.Writes)
		s.WriteLatency = &l
	}
	for k, n := range r.Errors {
		s.Errors[k] = n
	}
	s.Interrupted = r.Interrupted
	if v := r.Verify; v != nil {
		s.Verify = &VerifySummary{Checked: v.Checked, Missing: v.Missing, Mismatched: v.Mismatched, ReadErrors: v.ReadErrors}
	}
	return s
}

// WriteJSON writes r's Summary as one line of JSON.
func (r *Result) WriteJSON(w io.Writer) error {
	b, err := json.Marshal(r.Summary())
	if err != nil {
		return err
	}
	_, err = w.Write(append(b, '\n'))
	return err
}

// WriteText writes r for a human: the setup, throughput, a latency table,
// errors by class and, if any, the verification with its problems.
func (r *Result) WriteText(w io.Writer) error {
	c := r.Config
	var b strings.Builder
	switch {
	case c.ViaClient && len(c.ConfigEndpoints) > 0:
		fmt.Fprintf(&b, "%s: %d clients through one client.Client routing to %s\n", c.Mode, c.Clients, plural(r.Groups, "group"))
		fmt.Fprintf(&b, "  config      %s, version %d\n", strings.Join(c.ConfigEndpoints, " "), r.ConfigVersion)
	case c.ViaClient:
		fmt.Fprintf(&b, "%s: %d clients through one client.Client to %s\n", c.Mode, c.Clients, plural(len(c.Endpoints), "endpoint"))
		fmt.Fprintf(&b, "  endpoints   %s\n", strings.Join(c.Endpoints, " "))
	case len(c.ConfigEndpoints) > 0:
		fmt.Fprintf(&b, "%s: %d clients on %d conns to each of %s\n", c.Mode, c.Clients, c.Conns, plural(r.Groups, "group"))
		fmt.Fprintf(&b, "  config      %s, version %d\n", strings.Join(c.ConfigEndpoints, " "), r.ConfigVersion)
	default:
		fmt.Fprintf(&b, "%s: %d clients on %d conns to %s\n", c.Mode, c.Clients, c.Conns, plural(len(c.Endpoints), "endpoint"))
		fmt.Fprintf(&b, "  endpoints   %s\n", strings.Join(c.Endpoints, " "))
	}
	order := "random"
	if c.Sequential {
		order = "sequential"
	}
	preloaded := ""
	if c.Preload {
		preloaded = ", preloaded"
	}
	fmt.Fprintf(&b, "  keys        %s, %d B, keyspace %d%s\n", order, c.KeySize, c.Keyspace, preloaded)
	if c.Mode == ModePut || c.Mode == ModeMixed {
		fmt.Fprintf(&b, "  values      %d B\n", c.ValueSize)
	}
	if c.Mode == ModeGet || c.Mode == ModeMixed {
		fmt.Fprintf(&b, "  reads       level %s", c.Level)
		if c.Mode == ModeMixed {
			fmt.Fprintf(&b, ", %g%% of requests", c.ReadRatio*100)
		}
		b.WriteString("\n")
	}
	if c.Rate > 0 {
		fmt.Fprintf(&b, "  rate        %g req/s asked; latency counts from each request's due time\n", c.Rate)
	}
	interrupted := ""
	if r.Interrupted {
		interrupted = " (interrupted)"
	}
	fmt.Fprintf(&b, "  elapsed     %.3fs%s\n", r.Elapsed.Seconds(), interrupted)
	fmt.Fprintf(&b, "  requests    %d ok, %d failed", r.Ops, r.Failed)
	if r.Reads != nil && r.Writes != nil {
		fmt.Fprintf(&b, " (ok: %d get, %d put)", r.Reads.Count(), r.Writes.Count())
	}
	b.WriteString("\n")
	fmt.Fprintf(&b, "  throughput  %.1f ops/s\n", r.Throughput())

	fmt.Fprintf(&b, "  %-12s%9s%9s%9s%9s%9s%9s%9s\n", "latency ms", "min", "mean", "p50", "p90", "p99", "p99.9", "max")
	row := func(name string, h *Histogram) {
		l := summarize(h)
		fmt.Fprintf(&b, "  %-12s%9.3f%9.3f%9.3f%9.3f%9.3f%9.3f%9.3f\n", name, l.Min, l.Mean, l.P50, l.P90, l.P99, l.P999, l.Max)
	}
	if r.Latency != nil {
		row(string(c.Mode), r.Latency)
	}
	if r.Reads != nil && r.Writes != nil {
		row("  get", r.Reads)
		row("  put", r.Writes)
	}
	if len(r.Errors) == 0 {
		b.WriteString("  errors      none\n")
	} else {
		b.WriteString("  errors\n")
		for _, k := range slices.Sorted(maps.Keys(r.Errors)) {
			fmt.Fprintf(&b, "    %-8s %d  e.g. %s\n", k, r.Errors[k], r.ErrorSamples[k])
		}
	}
	if _, err := io.WriteString(w, b.String()); err != nil {
		return err
	}
	return r.WriteVerify(w)
}

// WriteVerify writes the verification summary and its problems, if r has one.
func (r *Result) WriteVerify(w io.Writer) error {
	v := r.Verify
	if v == nil {
		return nil
	}
	var b strings.Builder
	fmt.Fprintf(&b, "  verify      %d keys read back: %d missing, %d mismatched, %d read errors\n",
		v.Checked, v.Missing, v.Mismatched, v.ReadErrors)
	for _, p := range v.Problems {
		fmt.Fprintf(&b, "    %-10s %s: %s\n", p.Kind, p.Key, p.Detail)
	}
	if bad := v.Missing + v.Mismatched + v.ReadErrors; bad > uint64(len(v.Problems)) {
		fmt.Fprintf(&b, "    ... and %d more\n", bad-uint64(len(v.Problems)))
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func plural(n int, word string) string {
	if n == 1 {
		return "1 " + word
	}
	return fmt.Sprintf("%d %ss", n, word)
}
