package bench

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// The data-model workloads (DataConfig, RunData): conditional writes,
// transactions, listings and watches. They speak net/http, not the lean
// conn of the put and get modes: their requests carry headers and bodies
// the lean client does not send, and they are measured for what they do
// (successes against conflicts, keys per page, events delivered in order),
// not for the last microsecond of the load generator's own cost.
const (
	// ModeCAS reads a key (its ETag) and writes it back with If-Match:
	// the read-modify-write of optimistic concurrency. A 204 is a success,
	// a 412 a conflict (another client wrote the key in between).
	ModeCAS Mode = "cas"
	// ModeTxn sends POST /txn: a compare of one key's mod index and two
	// puts on keys sharing its hash tag.
	ModeTxn Mode = "txn"
	// ModeList walks a preloaded prefix page by page with GET /key?prefix=.
	ModeList Mode = "list"
	// ModeWatch opens Watchers watches on a prefix and measures the
	// delivery of the events of a load of puts to all of them.
	ModeWatch Mode = "watch"
)

// IsData reports whether m is a data-model workload, run by RunData.
func (m Mode) IsData() bool {
	switch m {
	case ModeCAS, ModeTxn, ModeList, ModeWatch:
		return true
	}
	return false
}

// Defaults of DataConfig.
const (
	DefaultDataDuration = 10 * time.Second
	DefaultPageSize     = 100
	DefaultWatchers     = 1000
	DefaultListKeys     = 10000
	DefaultWatchRate    = 100
	// MaxPageSize is raftkv's largest listing page.
	MaxPageSize = 10000
)

// DataConfig describes a run of a data-model workload. Zero fields take
// the defaults documented with them.
type DataConfig struct {
	// Mode is ModeCAS, ModeTxn, ModeList or ModeWatch. Required.
	Mode Mode
	// Endpoints are the members' client URLs; requests (and watches) are
	// spread over them round-robin. Required.
	Endpoints []string
	// Clients is the number of concurrent workers (watch: writers), each
	// with one request in flight. Default DefaultClients.
	Clients int
	// Keyspace is the number of keys the workers pick from at random (cas,
	// txn: each key of txn is a hash tag with two keys), or the number of
	// keys preloaded and listed (list). Watch writes fresh keys. Default
	// DefaultKeyspace; list DefaultListKeys.
	Keyspace int
	// ValueSize is the size of list's preloaded values and watch's
	// written values. cas and txn write decimal counters (see RunData).
	ValueSize int
	// Duration is how long the measured phase sends. Default
	// DefaultDataDuration.
	Duration time.Duration
	// PageSize is the limit of each listing page (list). Default
	// DefaultPageSize, at most MaxPageSize.
	PageSize int
	// Watchers is the number of watches open at once (watch). Default
	// DefaultWatchers.
	Watchers int
	// Rate caps the writers' puts per second, over all writers (watch).
	// Default DefaultWatchRate; negative means unlimited.
	Rate float64
	// Prefix is the prefix of every key of the run. Default
	// "bench/<mode>/<start time in hex nanoseconds>/": each run its own
	// keys, which cas and txn need (their check counts from absent keys).
	Prefix string
	// Timeout bounds each request (watches excepted). Default
	// DefaultTimeout.
	Timeout time.Duration
	// Seed seeds the random key choices; zero picks one.
	Seed uint64
	// TLS is the client TLS configuration for https endpoints; nil uses
	// the system's roots.
	TLS *tls.Config
}

func (c DataConfig) withDefaults() DataConfig {
	if c.Clients == 0 {
		c.Clients = DefaultClients
	}
	if c.Keyspace == 0 {
		c.Keyspace = DefaultKeyspace
		if c.Mode == ModeList {
			c.Keyspace = DefaultListKeys
		}
	}
	if c.Duration == 0 {
		c.Duration = DefaultDataDuration
	}
	if c.PageSize == 0 {
		c.PageSize = DefaultPageSize
	}
	if c.Watchers == 0 {
		c.Watchers = DefaultWatchers
	}
	if c.Rate == 0 {
		c.Rate = DefaultWatchRate
	}
	if c.Timeout == 0 {
		c.Timeout = DefaultTimeout
	}
	for c.Seed == 0 {
		c.Seed = rand.Uint64()
	}
	if c.Prefix == "" {
		c.Prefix = fmt.Sprintf("bench/%s/%x/", c.Mode, time.Now().UnixNano())
	}
	c.Endpoints = slices.Clone(c.Endpoints)
	for i, e := range c.Endpoints {
		c.Endpoints[i] = strings.TrimRight(strings.TrimSpace(e), "/")
	}
	return c
}

// Validate reports whether c, with defaults applied, describes a run that
// can be done. Its errors wrap ErrInvalidConfig.
func (c DataConfig) Validate() error {
	if err := c.withDefaults().validate(); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidConfig, err)
	}
	return nil
}

func (c DataConfig) validate() error {
	if !c.Mode.IsData() {
		return fmt.Errorf("mode %q: want cas, txn, list or watch", c.Mode)
	}
	if len(c.Endpoints) == 0 {
		return errors.New("no endpoint")
	}
	for _, e := range c.Endpoints {
		if err := checkEndpoint(e); err != nil {
			return err
		}
	}
	switch {
	case c.Clients < 1:
		return fmt.Errorf("clients %d: want at least 1", c.Clients)
	case c.Keyspace < 1:
		return fmt.Errorf("keyspace %d: want at least 1", c.Keyspace)
	case c.ValueSize < 0:
		return fmt.Errorf("value size %d: want at least 0", c.ValueSize)
	case c.Duration < 0:
		return fmt.Errorf("duration %v: want more than 0", c.Duration)
	case c.PageSize < 1 || c.PageSize > MaxPageSize:
		return fmt.Errorf("page size %d: want 1 to %d", c.PageSize, MaxPageSize)
	case c.Watchers < 1:
		return fmt.Errorf("watchers %d: want at least 1", c.Watchers)
	case math.IsNaN(c.Rate) || math.IsInf(c.Rate, 0):
		return fmt.Errorf("rate %v: want a finite number", c.Rate)
	case c.Timeout < 0:
		return fmt.Errorf("timeout %v: want at least 0", c.Timeout)
	}
	return nil
}

// DataResult is the outcome of a data-model run.
type DataResult struct {
	// Config is the run's configuration, with defaults and seed filled in.
	Config DataConfig
	// Elapsed is the measured phase (watch: from the first write to the
	// last event delivered).
	Elapsed time.Duration
	// Ops counts the successes: CAS writes answered 204, transactions
	// that succeeded, listing pages, events delivered to watchers.
	Ops uint64
	// Conflicts counts CAS writes answered 412 and transactions that took
	// their failure branch: the key changed since the client read it.
	Conflicts uint64
	// Keys counts the keys listed (list).
	Keys uint64
	// Walks counts the complete walks of the prefix (list), each checked
	// to hold every key once, in order.
	Walks uint64
	// Writes counts the writers' acknowledged puts (watch).
	Writes uint64
	// Latency holds the latency of each success: the read and the
	// conditional write of a CAS, a transaction, a page; for a watch, from
	// a write's acknowledgement to each watcher's receipt of its event (0
	// when the event came first).
	Latency *Histogram
	// Errors counts failed requests by class, as Result.Errors.
	Errors       map[string]uint64
	ErrorSamples map[string]string
	// Problems lists what the run found wrong: a CAS counter or a
	// transaction's keys that do not add up, a walk that missed or
	// repeated keys, a watcher whose stream had a gap, a reordering or an
	// end. A run with problems failed.
	Problems []string
	// Interrupted reports that the run's context ended before it did.
	Interrupted bool
}

// Throughput returns the successes per second.
func (r *DataResult) Throughput() float64 {
	if r.Elapsed <= 0 {
		return 0
	}
	return float64(r.Ops) / r.Elapsed.Seconds()
}

// Failed returns the number of failed requests.
func (r *DataResult) Failed() uint64 {
	var n uint64
	for _, v := range r.Errors {
		n += v
	}
	return n
}

// OK reports whether the run found nothing wrong and had a success.
func (r *DataResult) OK() bool { return len(r.Problems) == 0 && r.Ops > 0 }

// DataSummary is the machine-readable form of a DataResult.
type DataSummary struct {
	Mode       Mode              `json:"mode"`
	Endpoints  []string          `json:"endpoints"`
	Clients    int               `json:"clients"`
	Keyspace   int               `json:"keyspace"`
	PageSize   int               `json:"page_size,omitempty"`
	Watchers   int               `json:"watchers,omitempty"`
	Rate       float64           `json:"rate,omitempty"`
	Seed       uint64            `json:"seed"`
	DurationS  float64           `json:"duration_s"`
	Ops        uint64            `json:"ops"`
	Throughput float64           `json:"throughput"`
	Conflicts  uint64            `json:"conflicts"`
	Keys       uint64            `json:"keys,omitempty"`
	KeysPerS   float64           `json:"keys_per_s,omitempty"`
	Walks      uint64            `json:"walks,omitempty"`
	Writes     uint64            `json:"writes,omitempty"`
	Latency    Latency           `json:"latency_ms"`
	Errors     map[string]uint64 `json:"errors"`
	Problems   []string          `json:"problems,omitempty"`
	Interrupt  bool              `json:"interrupted,omitempty"`
}

// Summary returns the machine-readable form of r.
func (r *DataResult) Summary() DataSummary {
	c := r.Config
	s := DataSummary{
		Mode: c.Mode, Endpoints: c.Endpoints, Clients: c.Clients, Keyspace: c.Keyspace, Seed: c.Seed,
		DurationS:  math.Round(r.Elapsed.Seconds()*1e3) / 1e3,
		Ops:        r.Ops,
		Throughput: math.Round(r.Throughput()*10) / 10,
		Conflicts:  r.Conflicts, Keys: r.Keys, Walks: r.Walks, Writes: r.Writes,
		Errors: maps.Clone(r.Errors), Problems: r.Problems, Interrupt: r.Interrupted,
	}
	switch c.Mode {
	case ModeList:
		s.PageSize = c.PageSize
		if r.Elapsed > 0 {
			s.KeysPerS = math.Round(float64(r.Keys)/r.Elapsed.Seconds()*10) / 10
		}
	case ModeWatch:
		s.Watchers, s.Rate = c.Watchers, c.Rate
	}
	if r.Latency != nil {
		s.Latency = summarize(r.Latency)
	}
	return s
}

// WriteJSON writes r's Summary as one line of JSON.
func (r *DataResult) WriteJSON(w io.Writer) error {
	b, err := json.Marshal(r.Summary())
	if err != nil {
		return err
	}
	_, err = w.Write(append(b, '\n'))
	return err
}

// WriteText writes r for a human.
func (r *DataResult) WriteText(w io.Writer) error {
	c := r.Config
	var b strings.Builder
	secs := r.Elapsed.Seconds()
	per := func(n uint64) float64 {
		if secs <= 0 {
			return 0
		}
		return float64(n) / secs
	}
	fmt.Fprintf(&b, "%s: %d clients to %s\n", c.Mode, c.Clients, plural(len(c.Endpoints), "endpoint"))
	fmt.Fprintf(&b, "  endpoints   %s\n", strings.Join(c.Endpoints, " "))
	if c.Mode == ModeWatch {
		fmt.Fprintf(&b, "  keys        prefix %q, a fresh key each write\n", c.Prefix)
	} else {
		fmt.Fprintf(&b, "  keys        prefix %q, keyspace %d\n", c.Prefix, c.Keyspace)
	}
	interrupted := ""
	if r.Interrupted {
		interrupted = " (interrupted)"
	}
	fmt.Fprintf(&b, "  elapsed     %.3fs%s\n", secs, interrupted)
	label := "latency ms"
	switch c.Mode {
	case ModeCAS:
		fmt.Fprintf(&b, "  cas         %d succeeded (%.1f/s), %d conflicts (412, %.1f/s)\n", r.Ops, per(r.Ops), r.Conflicts, per(r.Conflicts))
	case ModeTxn:
		fmt.Fprintf(&b, "  txn         %d succeeded (%.1f/s), %d took the failure branch (%.1f/s)\n", r.Ops, per(r.Ops), r.Conflicts, per(r.Conflicts))
	case ModeList:
		fmt.Fprintf(&b, "  list        %d pages of up to %d (%.1f pages/s), %d keys (%.1f keys/s), %d complete walks\n",
			r.Ops, c.PageSize, per(r.Ops), r.Keys, per(r.Keys), r.Walks)
	case ModeWatch:
		fmt.Fprintf(&b, "  watch       %d watchers, %d writes (asked %g/s), %d events delivered (%.1f events/s)\n",
			c.Watchers, r.Writes, c.Rate, r.Ops, per(r.Ops))
		label = "delivery ms"
	}
	fmt.Fprintf(&b, "  %-12s%9s%9s%9s%9s%9s%9s%9s\n", label, "min", "mean", "p50", "p90", "p99", "p99.9", "max")
	if r.Latency != nil {
		l := summarize(r.Latency)
		fmt.Fprintf(&b, "  %-12s%9.3f%9.3f%9.3f%9.3f%9.3f%9.3f%9.3f\n", c.Mode, l.Min, l.Mean, l.P50, l.P90, l.P99, l.P999, l.Max)
	}
	if len(r.Errors) == 0 {
		b.WriteString("  errors      none\n")
	} else {
		b.WriteString("  errors\n")
		for _, k := range slices.Sorted(maps.Keys(r.Errors)) {
			fmt.Fprintf(&b, "    %-8s %d  e.g. %s\n", k, r.Errors[k], r.ErrorSamples[k])
		}
	}
	if len(r.Problems) == 0 {
		b.WriteString("  problems    none\n")
	} else {
		fmt.Fprintf(&b, "  problems    %d\n", len(r.Problems))
		for _, p := range r.Problems {
			fmt.Fprintf(&b, "    %s\n", p)
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// RunData runs a data-model workload once: its set-up (list: the
// preload), the measured phase and its check. If ctx ends, it returns
// what it measured with Interrupted set. Its error is a Config error or a
// failed set-up; what the run finds wrong is in DataResult.Problems.
func RunData(ctx context.Context, cfg DataConfig) (*DataResult, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	d := newDataRun(cfg)
	defer d.hc.CloseIdleConnections()
	var err error
	switch cfg.Mode {
	case ModeCAS:
		err = d.cas(ctx)
	case ModeTxn:
		err = d.txn(ctx)
	case ModeList:
		err = d.list(ctx)
	case ModeWatch:
		err = d.watch(ctx)
	}
	if err != nil {
		return nil, err
	}
	d.res.Interrupted = ctx.Err() != nil
	if len(d.res.Problems) > maxProblems {
		n := len(d.res.Problems)
		d.res.Problems = append(d.res.Problems[:maxProblems], fmt.Sprintf("... and %d more", n-maxProblems))
	}
	return d.res, nil
}

// dataRun is one run of RunData.
type dataRun struct {
	cfg DataConfig
	hc  *http.Client
	res *DataResult

	mu       sync.Mutex // guards res.Errors, res.ErrorSamples, res.Problems
	ops      atomic.Uint64
	conflict atomic.Uint64
}

func newDataRun(cfg DataConfig) *dataRun {
	tr := &http.Transport{
		Proxy:               nil,
		DialContext:         (&net.Dialer{Timeout: cfg.Timeout, KeepAlive: 30 * time.Second}).DialContext,
		TLSClientConfig:     cfg.TLS,
		MaxIdleConns:        0,
		MaxIdleConnsPerHost: cfg.Clients + cfg.Watchers,
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true,
	}
	return &dataRun{
		cfg: cfg,
		hc:  &http.Client{Transport: tr, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }},
		res: &DataResult{Config: cfg, Latency: new(Histogram), Errors: map[string]uint64{}, ErrorSamples: map[string]string{}},
	}
}

// endpoint returns the endpoint of worker i.
func (d *dataRun) endpoint(i int) string { return d.cfg.Endpoints[i%len(d.cfg.Endpoints)] }

// answer is a request's answer: its status, headers and whole body.
type answer struct {
	status int
	header http.Header
	body   []byte
}

// do sends one request of the measured load, bounded by Config.Timeout,
// and reads its whole answer.
func (d *dataRun) do(ctx context.Context, method, url string, hdr map[string]string, body []byte) (answer, error) {
	ctx, cancel := context.WithTimeout(ctx, d.cfg.Timeout)
	defer cancel()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, url, rd)
	if err != nil {
		return answer{}, err
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := d.hc.Do(req)
	if err != nil {
		return answer{}, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return answer{}, err
	}
	return answer{status: resp.StatusCode, header: resp.Header, body: b}, nil
}

// fail counts a failed request, unless ctx has ended (abandoned, not a
// fault of the server).
func (d *dataRun) fail(ctx context.Context, a answer, err error) {
	if ctx.Err() != nil {
		return
	}
	class := classify(a.status, err)
	errBody := string(a.body)
	if len(errBody) > maxErrorBody {
		errBody = errBody[:maxErrorBody]
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	d.res.Errors[class]++
	if _, ok := d.res.ErrorSamples[class]; !ok {
		d.res.ErrorSamples[class] = describe(a.status, strings.TrimSpace(errBody), err)
	}
}

// problem records something the run found wrong.
func (d *dataRun) problem(format string, args ...any) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if len(d.res.Problems) <= maxProblems {
		d.res.Problems = append(d.res.Problems, fmt.Sprintf(format, args...))
	}
}

// measure runs f on Clients workers until Duration has passed or ctx
// ends, and sets Elapsed; each worker merges its histogram at the end.
func (d *dataRun) measure(ctx context.Context, f func(ctx context.Context, id int, rng *rand.Rand, h *Histogram)) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	start := time.Now()
	end := start.Add(d.cfg.Duration)
	var wg sync.WaitGroup
	for id := range d.cfg.Clients {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(d.cfg.Seed, uint64(id)))
			h := new(Histogram)
			for ctx.Err() == nil && time.Now().Before(end) {
				f(ctx, id, rng, h)
			}
			d.mu.Lock()
			d.res.Latency.Merge(h)
			d.mu.Unlock()
		})
	}
	wg.Wait()
	d.res.Elapsed = time.Since(start)
	d.res.Ops = d.ops.Load()
	d.res.Conflicts = d.conflict.Load()
}

// keyURL is the URL of key on endpoint e.
func keyURL(e, key string) string { return e + "/key/" + escapeKey(key) }

// escapeKey escapes the characters of key a URL path cannot hold as they
// are; '/' stays.
func escapeKey(key string) string {
	var b strings.Builder
	for i := 0; i < len(key); i++ {
		c := key[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("-._~/", c) >= 0 {
			b.WriteByte(c)
			continue
		}
		fmt.Fprintf(&b, "%%%02X", c)
	}
	return b.String()
}
