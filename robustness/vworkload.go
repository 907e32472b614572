package robustness

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"time"
)

// VersionedConfig configures a VersionedWorkload. Zero fields take the
// defaults named.
type VersionedConfig struct {
	// Targets returns the base URLs of the members to spread requests
	// over; called before every request. Required.
	Targets func() []string
	// CASClients and TxnClients are the numbers of concurrent clients of
	// the CAS register and of transactions; 0 means 4 and 3, negative none.
	CASClients, TxnClients int
	// CASKeys is the number of CAS register keys; 0 means 6. Few keys
	// make clients contend for versions.
	CASKeys int
	// TxnGroups is the number of key groups transactions run on, and
	// TxnKeys the keys per group (at most MaxTxnKeys); 0 means 2 and 3.
	TxnGroups, TxnKeys int
	// KeyPrefix starts every key; "" means "rv/".
	KeyPrefix string
	// Seed seeds the choice of operations, keys and members.
	Seed uint64
	// RequestTimeout bounds each request; 0 means DefaultRequestTimeout.
	RequestTimeout time.Duration
	// Rate caps the operations per second over all clients; 0 means no cap.
	Rate float64
	// Retries is how many times a write of unknown outcome is sent again
	// under its identity; 0 means 3, negative none.
	Retries int
	// Client is the HTTP client to use; nil means NewClient(RequestTimeout).
	Client *Client
}

func (c VersionedConfig) withDefaults() VersionedConfig {
	def := func(v *int, d int) {
		switch {
		case *v == 0:
			*v = d
		case *v < 0:
			*v = 0
		}
	}
	def(&c.CASClients, 4)
	def(&c.TxnClients, 3)
	def(&c.CASKeys, 6)
	def(&c.TxnGroups, 2)
	def(&c.TxnKeys, 3)
	def(&c.Retries, 3)
	if c.KeyPrefix == "" {
		c.KeyPrefix = "rv/"
	}
	if c.RequestTimeout == 0 {
		c.RequestTimeout = DefaultRequestTimeout
	}
	if c.Client == nil {
		c.Client = NewClient(c.RequestTimeout)
	}
	return c
}

// Validate reports a configuration that cannot run.
func (c VersionedConfig) Validate() error {
	switch {
	case c.Targets == nil:
		return errors.New("robustness: VersionedConfig.Targets is required")
	case c.TxnKeys > MaxTxnKeys:
		return fmt.Errorf("robustness: VersionedConfig.TxnKeys %d > %d", c.TxnKeys, MaxTxnKeys)
	case c.RequestTimeout < 0, c.Rate < 0:
		return errors.New("robustness: RequestTimeout and Rate must not be negative")
	}
	return nil
}

// VersionedWorkload runs clients of the CAS register (gets, puts, If-Match
// puts and deletes, If-None-Match puts on a few keys) and of transactions
// (reads of a whole group, conditional transactions on the versions and
// values a client saw last, blind ones) against the members, recording
// every operation. Every write writes a value never written before and
// carries an exactly-once identity, and one of unknown outcome is retried
// under it (Client.DoVersioned). Check the history with CheckCAS and
// CheckTxn.
type VersionedWorkload struct {
	cfg   VersionedConfig
	hist  *History
	nonce uint32
}

// NewVersionedWorkload returns a workload recording into h.
func NewVersionedWorkload(cfg VersionedConfig, h *History) (*VersionedWorkload, error) {
	cfg = cfg.withDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &VersionedWorkload{cfg: cfg, hist: h, nonce: uint32(cfg.Seed) ^ uint32(time.Now().UnixNano())}, nil
}

// KeyPrefix starts every key the workload writes.
func (w *VersionedWorkload) KeyPrefix() string { return w.cfg.KeyPrefix }

// CASKey is the name of CAS register key i.
func (w *VersionedWorkload) CASKey(i int) string {
	return fmt.Sprintf("%scas/%02d", w.cfg.KeyPrefix, i)
}

// TxnGroup is the name of transaction group g; its keys are TxnKey(group,
// i). The name holds a {tag}, so that a group's keys share a bucket and a
// router takes its transactions.
func (w *VersionedWorkload) TxnGroup(g int) string {
	return fmt.Sprintf("%s{txn/%d}", w.cfg.KeyPrefix, g)
}

// Run runs the clients until ctx is done, then waits for the operations in
// flight (each bounded by the request timeout and its retries).
func (w *VersionedWorkload) Run(ctx context.Context) {
	var wg sync.WaitGroup
	n := w.cfg.CASClients + w.cfg.TxnClients
	for c := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			w.client(ctx, c, n, c >= w.cfg.CASClients)
		}()
	}
	wg.Wait()
}

// seen is what one client last saw of a key.
type seen struct {
	known   bool
	present bool
	value   string
	mod     uint64
}

func (w *VersionedWorkload) client(ctx context.Context, c, n int, txn bool) {
	rng := rand.New(rand.NewPCG(w.cfg.Seed, uint64(c)+101))
	var interval time.Duration
	if w.cfg.Rate > 0 {
		interval = time.Duration(float64(time.Second) * float64(n) / w.cfg.Rate)
	}
	pick := func() string {
		t := w.cfg.Targets()
		if len(t) == 0 {
			return ""
		}
		return t[rng.IntN(len(t))]
	}
	id := w.hist.NewClient()
	clientID := fmt.Sprintf("rv-%08x-%d", w.nonce, c)
	var seq uint64
	views := map[string]seen{}
	next := time.Now()
	for ctx.Err() == nil {
		node := pick()
		if node == "" {
			select {
			case <-ctx.Done():
			case <-time.After(50 * time.Millisecond):
			}
			continue
		}
		var op Op
		if txn {
			op = w.nextTxn(rng, c, &seq, views)
		} else {
			op = w.nextCAS(rng, c, &seq, views)
		}
		if op.Input.Op != OpGet && !(op.Input.Op == OpTxn && !op.Input.Txn.writes()) {
			op.ClientID, op.Seq = clientID, seq
		}
		op.Client, op.Node = id, node
		op = w.cfg.Client.DoVersioned(w.hist, op, w.cfg.Retries, pick)
		learn(views, op)
		if op.Output.Result == ResultUnknown {
			id = w.hist.NewClient() // the old id's operation is still pending
		}
		if op.Status == 0 && op.Return-op.Call < failFast {
			select {
			case <-ctx.Done():
			case <-time.After(failFast):
			}
		}
		if interval > 0 {
			next = next.Add(interval)
			if now := time.Now(); next.Before(now.Add(-interval)) {
				next = now
			}
			select {
			case <-ctx.Done():
			case <-time.After(time.Until(next)):
			}
		}
	}
}

// nextCAS draws a CAS register operation, using what the client saw last
// of the key for If-Match.
func (w *VersionedWorkload) nextCAS(rng *rand.Rand, c int, seq *uint64, views map[string]seen) Op {
	key := w.CASKey(rng.IntN(w.cfg.CASKeys))
	v := views[key]
	x := rng.Float64()
	value := func() string { *seq++; return fmt.Sprintf("c%d.%d", c, *seq) }
	switch {
	case x < 0.35 || !v.known && x < 0.85:
		return Op{Input: Input{Op: OpGet, Key: key}}
	case x < 0.65:
		if !v.present {
			return Op{Input: Input{Op: OpPutIfAbsent, Key: key, Value: value()}}
		}
		return Op{Input: Input{Op: OpPutIfMatch, Key: key, Value: value(), Mod: v.mod}}
	case x < 0.75:
		return Op{Input: Input{Op: OpPutIfAbsent, Key: key, Value: value()}}
	case x < 0.85 && v.present:
		*seq++
		return Op{Input: Input{Op: OpDeleteIfMatch, Key: key, Mod: v.mod}}
	}
	return Op{Input: Input{Op: OpPut, Key: key, Value: value()}}
}

// nextTxn draws a transaction on a random group: a read of the whole
// group, a conditional transaction on what the client saw last, or a
// blind one.
func (w *VersionedWorkload) nextTxn(rng *rand.Rand, c int, seq *uint64, views map[string]seen) Op {
	group := w.TxnGroup(rng.IntN(w.cfg.TxnGroups))
	n := w.cfg.TxnKeys
	key := func(i int) string { return TxnKey(group, i) }
	var readAll []TxnOp
	for i := range n {
		readAll = append(readAll, TxnOp{Op: OpGet, Key: key(i)})
	}
	x := rng.Float64()
	if x < 0.3 {
		return Op{Input: Input{Op: OpTxn, Key: group, Txn: &Txn{Success: readAll}}}
	}
	*seq++
	value := func(i int) string { return fmt.Sprintf("t%d.%d.%d", c, *seq, i) }
	a, b, d := rng.IntN(n), rng.IntN(n), rng.IntN(n)
	t := &Txn{}
	if x < 0.85 {
		va := views[key(a)]
		switch {
		case !va.known || !va.present:
			t.Compares = append(t.Compares, TxnCompare{Key: key(a), Target: "exists", Exists: false})
		default:
			t.Compares = append(t.Compares, TxnCompare{Key: key(a), Target: "mod", Mod: va.mod})
		}
		if vb := views[key(b)]; b != a && vb.present && rng.IntN(2) == 0 {
			t.Compares = append(t.Compares, TxnCompare{Key: key(b), Target: "value", Value: vb.value})
		}
		t.Success = append(t.Success, TxnOp{Op: OpPut, Key: key(a), Value: value(a)})
		if d != a {
			if rng.IntN(2) == 0 {
				t.Success = append(t.Success, TxnOp{Op: OpDelete, Key: key(d)})
			} else {
				t.Success = append(t.Success, TxnOp{Op: OpPut, Key: key(d), Value: value(d)})
			}
		}
		t.Success = append(t.Success, TxnOp{Op: OpGet, Key: key(b)})
		t.Failure = readAll
	} else {
		t.Success = []TxnOp{{Op: OpPut, Key: key(a), Value: value(a)}, {Op: OpGet, Key: key(b)}}
		if d != a {
			t.Success = append(t.Success, TxnOp{Op: OpDelete, Key: key(d)})
		}
	}
	return Op{Input: Input{Op: OpTxn, Key: group, Txn: t}}
}

// learn updates what the client saw from op's answer.
func learn(views map[string]seen, op Op) {
	in, out := op.Input, op.Output
	switch out.Result {
	case ResultValue:
		views[in.Key] = seen{known: true, present: true, value: out.Value, mod: out.Mod}
	case ResultNotFound:
		views[in.Key] = seen{known: true}
	case ResultPrecondition:
		views[in.Key] = seen{known: true, present: out.Mod != 0, mod: out.Mod}
	case ResultOK:
		switch in.Op {
		case OpTxn:
			ops := in.Txn.Failure
			if out.Succeeded {
				ops = in.Txn.Success
			}
			g := 0
			for _, o := range ops {
				switch o.Op {
				case OpPut:
					if out.Written() == 0 {
						delete(views, o.Key) // its version is not known
						break
					}
					views[o.Key] = seen{known: true, present: true, value: o.Value, mod: out.Written()}
				case OpDelete:
					views[o.Key] = seen{known: true}
				case OpGet:
					if g < len(out.Gets) {
						a := out.Gets[g]
						views[o.Key] = seen{known: true, present: a.Found, value: a.Value, mod: a.Mod}
					}
					g++
				}
			}
		case OpDelete, OpDeleteIfMatch:
			views[in.Key] = seen{known: true}
		default:
			views[in.Key] = seen{known: true, present: true, value: in.Value, mod: out.Written()}
		}
	case ResultUnknown:
		delete(views, in.Key)
		if in.Txn != nil {
			for _, o := range slices.Concat(in.Txn.Success, in.Txn.Failure) {
				delete(views, o.Key)
			}
		}
	}
}
