package bench

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/raftkv/raftkv/client"
)

// Sentinel errors of Runner.
var (
	// ErrPreload is wrapped by Run's error when some preload writes failed.
	ErrPreload = errors.New("bench: preload failed")
	// ErrReused is returned by a second call of Run.
	ErrReused = errors.New("bench: a Runner runs once")
)

const (
	// attempts bounds the tries of each preload write and verify read: they
	// are set-up and checking, not measured, so a transient 503 (an election)
	// should not fail the run.
	attempts = 3
	// retryPause is the pause before the second try; it doubles each time.
	retryPause = 200 * time.Millisecond
	// maxErrorBody bounds how much of an error response is kept as a sample.
	maxErrorBody = 200
	// maxProblems bounds the verify problems a Result lists.
	maxProblems = 20
)

// op is the kind of one request.
type op int

const (
	opGet op = iota
	opPut
	opDelete
	numOps
)

func (o op) String() string { return [...]string{"get", "put", "delete"}[o] }

// ok reports whether status is the success answer of o.
func (o op) ok(status int) bool {
	if o == opGet {
		return status == http.StatusOK || status == http.StatusNotFound
	}
	return status == http.StatusNoContent
}

// Phase names the part of a run in progress.
type Phase string

// The phases, in the order a run goes through them.
const (
	PhaseIdle    Phase = "idle"
	PhasePreload Phase = "preload"
	PhaseRun     Phase = "run"
	PhaseVerify  Phase = "verify"
	PhaseDone    Phase = "done"
)

// Progress is a snapshot of the phase in progress, for a progress display.
type Progress struct {
	Phase Phase
	// Done counts the requests (or keys, in preload and verify) finished
	// in this phase, successful or not; Errors counts the failed ones.
	Done, Errors uint64
	// Target is the number of requests the phase ends after, 0 when it
	// ends after Duration instead.
	Target   uint64
	Duration time.Duration
	// Elapsed is the time since the phase began.
	Elapsed time.Duration
}

// Fraction returns how much of the phase is done, in [0, 1].
func (p Progress) Fraction() float64 {
	var f float64
	switch {
	case p.Target > 0:
		f = float64(p.Done) / float64(p.Target)
	case p.Duration > 0:
		f = float64(p.Elapsed) / float64(p.Duration)
	}
	return min(max(f, 0), 1)
}

type phaseState struct {
	phase     Phase
	start     time.Time
	target    uint64
	duration  time.Duration
	baseDone  uint64 // sum of the workers' counters when the phase began
	baseError uint64
}

// Runner runs one benchmark. Build it with New, call Run once, then Close.
// Progress may be called from any goroutine at any time.
//
// Run starts one goroutine per worker for each phase and waits for all of
// them before it moves to the next phase or returns.
type Runner struct {
	cfg     Config
	conns   []*conn        // nil in a sharded run
	shard   *sharding      // nil unless Config.ConfigEndpoints without ViaClient
	client  *client.Client // nil unless Config.ViaClient
	cpu     *cpuReader     // nil unless Config.CPUMetrics or CPUPids
	workers []*worker
	state   atomic.Pointer[phaseState]
	tickets atomic.Int64 // requests claimed in the measured phase
	used    atomic.Bool
}

// New validates cfg and builds a Runner with its connection pool; nothing
// is sent before Run.
func New(cfg Config) (*Runner, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	for cfg.Seed == 0 {
		cfg.Seed = rand.Uint64()
	}
	r := &Runner{cfg: cfg, cpu: newCPUReader(&cfg)}
	if cfg.ViaClient {
		c, err := newViaClient(&cfg)
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrInvalidConfig, err)
		}
		r.client = c
	} else if len(cfg.ConfigEndpoints) > 0 {
		s, err := newSharding(&cfg)
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrInvalidConfig, err)
		}
		r.shard = s
	}
	if r.shard == nil && r.client == nil {
		for i := range cfg.Conns {
			c, err := newConn(cfg.Endpoints[i%len(cfg.Endpoints)], cfg.Timeout, cfg.TLS)
			if err != nil {
				return nil, fmt.Errorf("%w: %w", ErrInvalidConfig, err)
			}
			r.conns = append(r.conns, c)
		}
	}
	for i := range cfg.Clients {
		r.workers = append(r.workers, newWorker(r, i))
	}
	r.state.Store(&phaseState{phase: PhaseIdle, start: time.Now()})
	return r, nil
}

// Config returns the configuration of r, with defaults and the seed filled in.
func (r *Runner) Config() Config { return r.cfg }

// Close closes the connections of r. A request still in flight fails; none
// is sent after.
func (r *Runner) Close() {
	for _, c := range r.conns {
		c.close()
	}
	if r.shard != nil {
		r.shard.close()
	}
	if r.client != nil {
		r.client.Close()
	}
}

// Progress returns a snapshot of the phase in progress.
func (r *Runner) Progress() Progress {
	st := r.state.Load()
	done, failed := r.counters()
	return Progress{
		Phase:    st.phase,
		Done:     done + failed - st.baseDone - st.baseError,
		Errors:   failed - st.baseError,
		Target:   st.target,
		Duration: st.duration,
		Elapsed:  time.Since(st.start),
	}
}

func (r *Runner) counters() (done, failed uint64) {
	for _, w := range r.workers {
		done += w.done.Load()
		failed += w.failed.Load()
	}
	return done, failed
}

// setPhase publishes a new phase. It is called only while no worker runs.
func (r *Runner) setPhase(p Phase, target uint64, d time.Duration) time.Time {
	done, failed := r.counters()
	now := time.Now()
	r.state.Store(&phaseState{phase: p, start: now, target: target, duration: d, baseDone: done, baseError: failed})
	return now
}

// each runs f on every worker in its own goroutine and waits for them all.
func (r *Runner) each(f func(*worker)) {
	var wg sync.WaitGroup
	for _, w := range r.workers {
		wg.Go(func() { f(w) })
	}
	wg.Wait()
}

// Run preloads the keyspace if asked, runs the measured phase, verifies if
// asked, and returns the result. If ctx is cancelled, Run stops sending,
// abandons the requests in flight (they are not counted) and returns what it
// measured so far with Result.Interrupted set, skipping verification. The
// only errors are ErrReused and a failed preload (ErrPreload).
func (r *Runner) Run(ctx context.Context) (*Result, error) {
	if r.used.Swap(true) {
		return nil, ErrReused
	}
	defer r.setPhase(PhaseDone, 0, 0)
	cfg := &r.cfg
	res := &Result{Config: *cfg}
	if r.shard != nil {
		if err := r.shard.route(ctx, cfg.Keyspace, cfg.KeySize, false); err != nil {
			return nil, err
		}
		defer func() {
			t := r.shard.table.Load()
			res.ConfigVersion, res.Groups = t.version, t.groups
		}()
	}
	if r.client != nil && r.client.Sharded() {
		defer func() {
			if c, ok := r.client.CachedConfig(); ok {
				res.ConfigVersion, res.Groups = c.Version, len(c.Groups)
			}
		}()
	}
	if cfg.Preload {
		if err := r.preload(ctx); err != nil {
			return nil, err
		}
		if ctx.Err() != nil {
			r.collect(res) // empty, but complete
			res.Interrupted = true
			return res, nil
		}
	}
	var cpu0 time.Duration
	var cpuErr error
	if r.cpu != nil {
		cpu0, cpuErr = r.cpu.read(ctx)
	}
	start := r.setPhase(PhaseRun, uint64(cfg.Total), cfg.Duration)
	r.each(func(w *worker) { w.measure(ctx, start) })
	res.Elapsed = time.Since(start)
	if r.cpu != nil {
		res.CPUSources = len(cfg.CPUMetrics) + len(cfg.CPUPids)
		if cpuErr == nil {
			var cpu1 time.Duration
			cpu1, cpuErr = r.cpu.read(ctx)
			res.CPU = cpu1 - cpu0
		}
		if cpuErr == nil && res.CPU < 0 { // a server restarted: its counter did too
			cpuErr = fmt.Errorf("%w: the servers' CPU time went down by %v", ErrCPU, -res.CPU)
		}
		if cpuErr != nil {
			res.CPU, res.CPUErr = 0, cpuErr.Error()
		}
	}
	r.collect(res)
	if ctx.Err() != nil {
		res.Interrupted = true
		return res, nil
	}
	if cfg.Verify {
		var n uint64
		for _, w := range r.workers {
			n += uint64(len(w.acked) - w.unacked())
		}
		r.setPhase(PhaseVerify, n, 0)
		r.each(func(w *worker) { w.verify(ctx) })
		res.Verify = r.collectVerify()
		if ctx.Err() != nil {
			res.Interrupted = true
		}
	}
	return res, nil
}

// preload writes every key of the keyspace once, each worker its own part.
func (r *Runner) preload(ctx context.Context) error {
	r.setPhase(PhasePreload, uint64(r.cfg.Keyspace), 0)
	r.each(func(w *worker) { w.preload(ctx) })
	var failed int
	var first string
	for _, w := range r.workers {
		failed += w.preloadFailed
		if first == "" {
			first = w.preloadFirst
		}
	}
	if failed > 0 {
		return fmt.Errorf("%w: %d of %d writes failed; first: %s", ErrPreload, failed, r.cfg.Keyspace, first)
	}
	return nil
}

// collect merges the workers' histograms and error counts into res.
func (r *Runner) collect(res *Result) {
	res.Latency = new(Histogram)
	res.Errors = make(map[string]uint64)
	res.ErrorSamples = make(map[string]string)
	if r.cfg.Mode == ModeMixed {
		res.Reads, res.Writes = new(Histogram), new(Histogram)
	}
	for _, w := range r.workers {
		for o, h := range w.hist {
			res.Latency.Merge(h)
			switch {
			case res.Reads != nil && op(o) == opGet:
				res.Reads.Merge(h)
			case res.Writes != nil && op(o) == opPut:
				res.Writes.Merge(h)
			}
		}
		for k, n := range w.errors {
			res.Errors[k] += n
			res.Failed += n
			if _, ok := res.ErrorSamples[k]; !ok {
				res.ErrorSamples[k] = w.samples[k]
			}
		}
	}
	res.Ops = res.Latency.Count()
}

func (r *Runner) collectVerify() *VerifyResult {
	v := &VerifyResult{}
	for _, w := range r.workers {
		v.Checked += w.vr.Checked
		v.Missing += w.vr.Missing
		v.Mismatched += w.vr.Mismatched
		v.ReadErrors += w.vr.ReadErrors
		v.Problems = append(v.Problems, w.vr.Problems...)
	}
	slices.SortFunc(v.Problems, func(a, b Problem) int { return strings.Compare(a.Key, b.Key) })
	if len(v.Problems) > maxProblems {
		v.Problems = v.Problems[:maxProblems]
	}
	return v
}

// worker sends requests one at a time. Everything but its two counters is
// owned by the goroutine running it, so recording takes no lock.
type worker struct {
	id    int
	r     *Runner
	conn  *conn
	rng   *rand.Rand
	vals  *valueGen
	path  []byte // target of the request being sent
	body  []byte // body of the last answer read with keep
	seeds uint64 // writes issued; a write's seed is id<<40 | seeds

	hist    [numOps]*Histogram // nil for the operations the mode never sends
	errors  map[string]uint64
	samples map[string]string

	// done and failed count finished requests for Progress.
	done, failed atomic.Uint64

	preloadFailed int
	preloadFirst  string

	// Verify only: the worker's keys, and for each the seed of the value
	// last acknowledged (0: none) and of the writes with unknown outcome.
	part  partition
	seq   int
	acked []uint64
	doubt map[int][]uint64
	vr    VerifyResult
}

func newWorker(r *Runner, id int) *worker {
	cfg := &r.cfg
	w := &worker{
		id:      id,
		r:       r,
		rng:     rand.New(rand.NewPCG(cfg.Seed, uint64(id))),
		vals:    newValueGen(cfg.ValueSize),
		path:    make([]byte, 0, len("/key/")+cfg.KeySize+len("?level=stale")),
		errors:  make(map[string]uint64),
		samples: make(map[string]string),
	}
	switch cfg.Mode {
	case ModePut:
		w.hist[opPut] = new(Histogram)
	case ModeGet:
		w.hist[opGet] = new(Histogram)
	case ModeMixed:
		w.hist[opGet], w.hist[opPut] = new(Histogram), new(Histogram)
	case ModeDelete:
		w.hist[opDelete] = new(Histogram)
	}
	if len(r.conns) > 0 {
		w.conn = r.conns[id%len(r.conns)]
	}
	if cfg.Verify {
		w.part = newPartition(id, cfg.Clients, cfg.Keyspace)
		w.acked = make([]uint64, w.part.size)
		w.doubt = make(map[int][]uint64)
	}
	return w
}

func (w *worker) unacked() int {
	n := 0
	for _, s := range w.acked {
		if s == 0 {
			n++
		}
	}
	return n
}

func (w *worker) nextSeed() uint64 {
	w.seeds++
	return uint64(w.id+1)<<40 | w.seeds
}

// keyPath returns the request target (path and query) of request o on key
// number k. It is valid until the next call.
func (w *worker) keyPath(o op, k int) []byte {
	p := append(w.path[:0], '/')
	if o == opDelete {
		p = append(p, "key/"...)
	}
	p = appendKey(p, uint64(k), w.r.cfg.KeySize)
	if o == opGet && w.r.cfg.Level == LevelStale {
		p = append(p, "?level=stale"...)
	}
	w.path = p
	return p
}

// connFor returns the connection for key number k: the worker's own, or
// in a sharded run the worker's connection to k's group.
func (w *worker) connFor(k int) *conn {
	if w.r.shard == nil {
		return w.conn
	}
	return w.r.shard.conn(w.id, k)
}

// do sends one request for key number k to path and reads its whole
// answer, into w.body if keep. errBody is the start of the body of an
// error answer (status >= 300). A 421 makes a sharded run fetch the
// config again.
func (w *worker) do(ctx context.Context, k int, method string, path, value []byte, keep bool) (status int, errBody string, err error) {
	if w.r.client != nil {
		return w.viaClient(ctx, k, method, value, keep)
	}
	var body *[]byte
	if keep {
		w.body = w.body[:0]
		body = &w.body
	}
	status, errBody, err = w.connFor(k).roundTrip(ctx, method, path, value, body)
	if status == http.StatusMisdirectedRequest && w.r.shard != nil {
		w.r.shard.reroute(ctx, w.r.cfg.Keyspace, w.r.cfg.KeySize)
	}
	return status, errBody, err
}

// measure sends requests until the run's total or duration is reached.
func (w *worker) measure(ctx context.Context, start time.Time) {
	cfg := &w.r.cfg
	end := start.Add(cfg.Duration)
	var timer *time.Timer
	for ctx.Err() == nil {
		n := w.r.tickets.Add(1) - 1
		if cfg.Total > 0 && n >= cfg.Total {
			return
		}
		var begin time.Time
		if cfg.Rate > 0 {
			// Request n is due at start + n/rate whoever sends it; latency
			// counts from then, so waiting for a slow server is charged.
			begin = start.Add(time.Duration(float64(n) * float64(time.Second) / cfg.Rate))
			if cfg.Duration > 0 && !begin.Before(end) {
				return
			}
			if d := time.Until(begin); d > 0 {
				if timer == nil {
					timer = time.NewTimer(d)
				} else {
					timer.Reset(d)
				}
				select {
				case <-ctx.Done():
					timer.Stop()
					return
				case <-timer.C:
				}
			}
		} else {
			begin = time.Now()
			if cfg.Duration > 0 && !begin.Before(end) {
				return
			}
		}
		w.one(ctx, n, begin)
	}
}

func (w *worker) pickOp() op {
	switch w.r.cfg.Mode {
	case ModeGet:
		return opGet
	case ModeDelete:
		return opDelete
	case ModeMixed:
		if w.rng.Float64() < w.r.cfg.ReadRatio {
			return opGet
		}
	}
	return opPut
}

// pickKey returns the key number of request n (counted over all workers).
func (w *worker) pickKey(n int64) int {
	cfg := &w.r.cfg
	if cfg.Verify {
		var j int
		if cfg.Sequential {
			j = w.seq % w.part.size
			w.seq++
		} else {
			j = w.rng.IntN(w.part.size)
		}
		return w.part.key(j)
	}
	if cfg.Sequential {
		return int(n % int64(cfg.Keyspace))
	}
	return w.rng.IntN(cfg.Keyspace)
}

// one sends request n, due at begin, and records its outcome.
func (w *worker) one(ctx context.Context, n int64, begin time.Time) {
	o := w.pickOp()
	k := w.pickKey(n)
	var (
		seed    uint64
		status  int
		errBody string
		err     error
	)
	if o == opPut {
		seed = w.nextSeed()
		status, errBody, err = w.do(ctx, k, http.MethodPut, w.keyPath(o, k), w.vals.value(seed), false)
	} else {
		method := http.MethodGet
		if o == opDelete {
			method = http.MethodDelete
		}
		status, errBody, err = w.do(ctx, k, method, w.keyPath(o, k), nil, false)
	}
	lat := time.Since(begin)
	if err == nil && o.ok(status) {
		w.hist[o].Record(lat)
		w.done.Add(1)
		if o == opPut && w.acked != nil {
			w.acked[w.part.slot(k)] = seed
		}
		return
	}
	if o == opPut && w.acked != nil {
		// Its outcome is unknown (a 504 may still be applied, even after
		// later writes): verify accepts its value too.
		w.doubt[k] = append(w.doubt[k], seed)
	}
	if ctx.Err() != nil {
		return // abandoned on interrupt: no fault of the server
	}
	w.fail(status, errBody, err)
}

func (w *worker) fail(status int, errBody string, err error) {
	class := classify(status, err)
	w.errors[class]++
	w.failed.Add(1)
	if _, ok := w.samples[class]; !ok {
		w.samples[class] = describe(status, errBody, err)
	}
}

func describe(status int, errBody string, err error) string {
	if err != nil {
		return err.Error()
	}
	if errBody == "" {
		return fmt.Sprintf("HTTP %d", status)
	}
	return fmt.Sprintf("HTTP %d: %s", status, errBody)
}

// retry runs try up to attempts times, pausing between tries, until it
// reports success or ctx ends; it returns the last outcome.
func retry(ctx context.Context, try func() (ok bool, why string)) (ok bool, why string) {
	pause := retryPause
	for i := range attempts {
		if ok, why = try(); ok || ctx.Err() != nil || i == attempts-1 {
			return ok, why
		}
		t := time.NewTimer(pause)
		select {
		case <-ctx.Done():
			t.Stop()
			return false, why
		case <-t.C:
		}
		pause *= 2
	}
	return ok, why
}

// preload writes the worker's share of the keyspace: keys equal to its index
// modulo the number of workers.
func (w *worker) preload(ctx context.Context) {
	p := newPartition(w.id, w.r.cfg.Clients, w.r.cfg.Keyspace)
	for j := range p.size {
		k := p.key(j)
		path := w.keyPath(opPut, k)
		ok, why := retry(ctx, func() (bool, string) {
			status, errBody, err := w.do(ctx, k, http.MethodPut, path, w.vals.value(w.nextSeed()), false)
			return err == nil && status == http.StatusNoContent, describe(status, errBody, err)
		})
		if ctx.Err() != nil {
			return
		}
		if ok {
			w.done.Add(1)
			continue
		}
		w.failed.Add(1)
		w.preloadFailed++
		if w.preloadFirst == "" {
			w.preloadFirst = fmt.Sprintf("PUT %s%s: %s", w.connFor(k).endpoint, path, why)
		}
	}
}

// verify reads back, linearizably, every key the worker wrote with a 204.
func (w *worker) verify(ctx context.Context) {
	want := make([]byte, w.r.cfg.ValueSize)
	for j, seed := range w.acked {
		if seed == 0 {
			continue
		}
		k := w.part.key(j)
		path := w.keyPath(opPut, k) // a GET of this path is linearizable: no level
		var status int
		ok, why := retry(ctx, func() (bool, string) {
			var errBody string
			var err error
			status, errBody, err = w.do(ctx, k, http.MethodGet, path, nil, true)
			return err == nil && (status == http.StatusOK || status == http.StatusNotFound), describe(status, errBody, err)
		})
		if ctx.Err() != nil {
			return
		}
		w.vr.Checked++
		key := Key(uint64(k), w.r.cfg.KeySize)
		switch {
		case !ok:
			w.vr.ReadErrors++
			w.problem(Problem{Key: key, Kind: ProblemReadError, Detail: why})
		case status == http.StatusNotFound:
			w.vr.Missing++
			w.problem(Problem{Key: key, Kind: ProblemMissing, Detail: "404 after a 204 to its PUT"})
		case !w.matches(w.body, want, seed, w.doubt[k]):
			w.vr.Mismatched++
			w.problem(Problem{Key: key, Kind: ProblemMismatch,
				Detail: fmt.Sprintf("%d-byte value is not the last acknowledged one nor one of %d writes of unknown outcome", len(w.body), len(w.doubt[k]))})
		default:
			w.done.Add(1)
		}
	}
}

func (w *worker) problem(p Problem) {
	w.failed.Add(1)
	if len(w.vr.Problems) < maxProblems {
		w.vr.Problems = append(w.vr.Problems, p)
	}
}

// matches reports whether got is the value of seed or of one of doubts;
// want is scratch space of the value size.
func (w *worker) matches(got, want []byte, seed uint64, doubts []uint64) bool {
	if len(got) != len(want) {
		return false
	}
	for _, s := range append([]uint64{seed}, doubts...) {
		w.vals.fill(want, s)
		if bytes.Equal(got, want) {
			return true
		}
	}
	return false
}
