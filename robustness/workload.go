package robustness

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"
)

// Config configures a Workload. Zero fields take the defaults named.
type Config struct {
	// Targets returns the base URLs (http://host:port) of the members to
	// spread requests over; it is called before every request, so the set
	// may change while the workload runs. Required.
	Targets func() []string
	// ReadTargets, when set, is where reads go instead of Targets.
	ReadTargets func() []string
	// Clients is the number of concurrent clients; 0 means 8.
	Clients int
	// Keys is the number of keys of the linearizability family; 0 means 64.
	// At least 50 keys keep each key's history short.
	Keys int
	// KeyPrefix starts every key; "" means "rk/". Use a fresh prefix per
	// run against a cluster that already holds data.
	KeyPrefix string
	// Seed seeds the choice of operations, keys and members.
	Seed uint64
	// RequestTimeout bounds each request; 0 means DefaultRequestTimeout.
	RequestTimeout time.Duration
	// Rate caps the operations per second over all clients; 0 means no cap.
	Rate float64
	// ReadRatio, DeleteRatio and OnceRatio are the shares of reads, deletes
	// and write-once puts among operations; the rest are puts. Zero means
	// 0.5, 0.1 and 0.1. A negative value means none.
	ReadRatio, DeleteRatio, OnceRatio float64
	// Client is the HTTP client to use; nil means NewClient(RequestTimeout).
	Client *Client
}

// Defaults of Config.
const (
	DefaultClients     = 8
	DefaultKeys        = 64
	DefaultKeyPrefix   = "rk/"
	defaultReadRatio   = 0.5
	defaultDeleteRatio = 0.1
	defaultOnceRatio   = 0.1
	// failFast: a request that fails without an answer faster than this
	// makes its client pause as long before the next one.
	failFast = 20 * time.Millisecond
)

// withDefaults returns c with zero fields set to their defaults.
func (c Config) withDefaults() Config {
	if c.Clients == 0 {
		c.Clients = DefaultClients
	}
	if c.Keys == 0 {
		c.Keys = DefaultKeys
	}
	if c.KeyPrefix == "" {
		c.KeyPrefix = DefaultKeyPrefix
	}
	if c.RequestTimeout == 0 {
		c.RequestTimeout = DefaultRequestTimeout
	}
	ratio := func(r *float64, def float64) {
		switch {
		case *r == 0:
			*r = def
		case *r < 0:
			*r = 0
		}
	}
	ratio(&c.ReadRatio, defaultReadRatio)
	ratio(&c.DeleteRatio, defaultDeleteRatio)
	ratio(&c.OnceRatio, defaultOnceRatio)
	if c.ReadTargets == nil {
		c.ReadTargets = c.Targets
	}
	if c.Client == nil {
		c.Client = NewClient(c.RequestTimeout)
	}
	return c
}

// Validate reports a configuration that cannot run.
func (c Config) Validate() error {
	switch {
	case c.Targets == nil:
		return errors.New("robustness: Config.Targets is required")
	case c.Clients < 0, c.Keys < 0, c.RequestTimeout < 0, c.Rate < 0:
		return errors.New("robustness: Clients, Keys, RequestTimeout and Rate must not be negative")
	case c.ReadRatio+c.DeleteRatio+c.OnceRatio > 1:
		return fmt.Errorf("robustness: ReadRatio+DeleteRatio+OnceRatio = %v > 1",
			c.ReadRatio+c.DeleteRatio+c.OnceRatio)
	}
	return nil
}

// Workload is a concurrent client workload that records every operation in
// a History. Values are unique per write (client number and sequence), so
// a read names the write it observed.
//
// Two key families: KeyPrefix+"lin/NN" (Keys keys, puts, deletes and reads,
// checked for linearizability) and KeyPrefix+"once/C/S" (each written once,
// by client C with sequence S, checked for durability).
type Workload struct {
	cfg  Config
	hist *History

	mu struct {
		sync.Mutex
		next []int          // per client: one more than its highest write sequence number
		once []map[int]bool // per client: the sequence numbers it used for write-once keys
	}
}

// NewWorkload returns a workload recording into h.
func NewWorkload(cfg Config, h *History) (*Workload, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	w := &Workload{cfg: cfg, hist: h}
	w.mu.next = make([]int, cfg.Clients)
	w.mu.once = make([]map[int]bool, cfg.Clients)
	for c := range w.mu.once {
		w.mu.once[c] = map[int]bool{}
	}
	return w, nil
}

// Client is the workload's HTTP client.
func (w *Workload) Client() *Client { return w.cfg.Client }

// History is where the workload records.
func (w *Workload) History() *History { return w.hist }

// LinKey is the name of key i of the linearizability family.
func (w *Workload) LinKey(i int) string { return fmt.Sprintf("%slin/%02d", w.cfg.KeyPrefix, i) }

// OnceKey is the name of write-once key seq of client c.
func (w *Workload) OnceKey(c, seq int) string {
	return fmt.Sprintf("%sonce/%d/%d", w.cfg.KeyPrefix, c, seq)
}

// NeverWritten returns, once Run has returned, write-once keys that no
// client wrote: per client, up to perClient sequence numbers it used for
// other keys, and the two after its last. A member that holds one of them
// holds a phantom.
func (w *Workload) NeverWritten(perClient int) []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	var keys []string
	for c, next := range w.mu.next {
		n := 0
		for seq := 1; seq < next && n < perClient; seq++ {
			if !w.mu.once[c][seq] {
				keys = append(keys, w.OnceKey(c, seq))
				n++
			}
		}
		keys = append(keys, w.OnceKey(c, next), w.OnceKey(c, next+1))
	}
	return keys
}

// Run runs the clients until ctx is done, then waits for the operations in
// flight (each bounded by the request timeout).
func (w *Workload) Run(ctx context.Context) {
	var wg sync.WaitGroup
	for c := range w.cfg.Clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			w.client(ctx, c)
		}()
	}
	wg.Wait()
}

// client is one client loop; c numbers it among the workload's clients.
func (w *Workload) client(ctx context.Context, c int) {
	rng := rand.New(rand.NewPCG(w.cfg.Seed, uint64(c)+1))
	var interval time.Duration
	if w.cfg.Rate > 0 {
		interval = time.Duration(float64(time.Second) * float64(w.cfg.Clients) / w.cfg.Rate)
	}
	id := w.hist.NewClient()
	seq := 0
	next := time.Now()
	for ctx.Err() == nil {
		in, once := w.nextInput(rng, c, &seq)
		targets := w.cfg.Targets()
		if in.Op == OpGet {
			targets = w.cfg.ReadTargets()
		}
		if len(targets) == 0 {
			// Nothing to talk to (every member down): wait, without spinning.
			select {
			case <-ctx.Done():
			case <-time.After(50 * time.Millisecond):
			}
			continue
		}
		if in.Op == OpPut {
			w.used(c, seq, once)
		}
		op := w.cfg.Client.Do(w.hist, Op{Client: id, Node: targets[rng.IntN(len(targets))], Input: in, Once: once})
		if op.Output.Result == ResultUnknown {
			id = w.hist.NewClient() // the old id's operation is still pending
		}
		if op.Status == 0 && op.Return-op.Call < failFast {
			// The member is not listening (it is restarting): do not spin.
			select {
			case <-ctx.Done():
			case <-time.After(failFast):
			}
		}
		if interval > 0 {
			next = next.Add(interval)
			if now := time.Now(); next.Before(now.Add(-interval)) {
				next = now // too far behind: do not burst to catch up
			}
			select {
			case <-ctx.Done():
			case <-time.After(time.Until(next)):
			}
		}
	}
}

// nextInput draws client c's next operation; seq is its write counter.
func (w *Workload) nextInput(rng *rand.Rand, c int, seq *int) (Input, bool) {
	x := rng.Float64()
	key := w.LinKey(rng.IntN(w.cfg.Keys))
	switch {
	case x < w.cfg.ReadRatio:
		return Input{Op: OpGet, Key: key}, false
	case x < w.cfg.ReadRatio+w.cfg.DeleteRatio:
		return Input{Op: OpDelete, Key: key}, false
	}
	*seq++
	value := fmt.Sprintf("c%d.%d", c, *seq)
	if x < w.cfg.ReadRatio+w.cfg.DeleteRatio+w.cfg.OnceRatio {
		return Input{Op: OpPut, Key: w.OnceKey(c, *seq), Value: value}, true
	}
	return Input{Op: OpPut, Key: key, Value: value}, false
}

// used notes that client c is about to write with sequence number seq.
func (w *Workload) used(c, seq int, once bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.mu.next[c] = max(w.mu.next[c], seq+1)
	if once {
		w.mu.once[c][seq] = true
	}
}
