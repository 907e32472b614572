package main

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/raftkv/raftkv/client"
	"github.com/raftkv/raftkv/robustness"
	"github.com/spf13/cobra"
)

// checkOptions are check's flags.
type checkOptions struct {
	clients, keys int
	duration      time.Duration
	prefix        string
	checkTimeout  time.Duration
	out           string
}

// checkResult is check's verdict, as -w json prints it.
type checkResult struct {
	OK            bool     `json:"ok"`
	Result        string   `json:"result"` // porcupine's: Ok, Illegal, Unknown
	Operations    int      `json:"operations"`
	Checked       int      `json:"checked"`
	Reads         int      `json:"reads"`
	AckedWrites   int      `json:"ackedWrites"`
	UnknownWrites int      `json:"unknownWrites"`
	Failed        int      `json:"failed"`
	Keys          int      `json:"keys"`
	BadKeys       []string `json:"badKeys,omitempty"`
	Visualization string   `json:"visualization,omitempty"`
	Summary       string   `json:"summary"`
	// lin is porcupine's verdict alone, for the error line.
	lin string
}

func (a *app) checkCommand() *cobra.Command {
	var o checkOptions
	cmd := &cobra.Command{
		Use:   "check",
		Short: "Run a short linearizability self-check and print PASS or FAIL",
		Long: `Run a few concurrent clients that read, write and delete a few keys for
--duration, each starting at a different member of --endpoints, record every
operation and check the history with porcupine against the model of a key
that raftkv's robustness suite uses. It prints PASS when the history is
linearizable and exits 0; FAIL (exit status 1) when it is not, or when the
check cannot decide within --check-timeout, with porcupine's visualization of
the history written under --out. Writes go only to keys under --prefix, which
are deleted afterwards.`,
		Example: `  raftkvctl check
  raftkvctl check --duration 10s --clients 8 -w json`,
		Args: cobra.NoArgs,
	}
	f := cmd.Flags()
	f.IntVar(&o.clients, "clients", 4, "concurrent clients")
	f.IntVar(&o.keys, "keys", 4, "keys the clients share")
	f.DurationVar(&o.duration, "duration", 5*time.Second, "how long the clients run")
	f.StringVar(&o.prefix, "prefix", "", `prefix of the keys written; "" means raftkvctl-check/<random>/`)
	f.DurationVar(&o.checkTimeout, "check-timeout", robustness.DefaultCheckTimeout, "deadline of the porcupine check; reaching it is a failure")
	f.StringVar(&o.out, "out", "", `directory for the visualization of a failed history; "" means a new temporary directory`)
	cmd.RunE = a.op(func(cmd *cobra.Command, _ []string) error {
		switch {
		case o.clients <= 0 || o.keys <= 0:
			return usagef("--clients and --keys must be positive")
		case o.duration <= 0 || o.checkTimeout <= 0:
			return usagef("--duration and --check-timeout must be positive")
		}
		if o.prefix == "" {
			o.prefix = fmt.Sprintf("raftkvctl-check/%08x/", rand.Uint32())
		}
		r, err := a.runCheck(o)
		if err != nil {
			return err
		}
		if a.writeOut == formatJSON {
			if err := printJSON(a.stdout, r); err != nil {
				return err
			}
		} else {
			verdict := "PASS"
			if !r.OK {
				verdict = "FAIL"
			}
			fmt.Fprintf(a.stdout, "%s: %s\n", verdict, r.Summary)
		}
		if !r.OK {
			return errors.New("check failed: " + r.lin)
		}
		return nil
	})
	return cmd
}

// checkClients builds one Client per check client; without
// --config-endpoints each starts at a different endpoint, so that reads
// and writes reach every member.
func (a *app) checkClients(n int) ([]*client.Client, error) {
	var out []*client.Client
	cfgEps := splitList(a.configEndpoints)
	eps, err := a.endpointsList()
	if len(cfgEps) == 0 && err != nil {
		return nil, err
	}
	for i := range n {
		var cfg client.Config
		if len(cfgEps) > 0 {
			cfg.ConfigEndpoints = cfgEps
		} else {
			k := i % len(eps)
			cfg.Endpoints = append(append([]string(nil), eps[k:]...), eps[:k]...)
		}
		c, err := a.newClient(cfg)
		if err != nil {
			for _, c := range out {
				c.Close()
			}
			return nil, err
		}
		out = append(out, c)
	}
	return out, nil
}

// runCheck runs the clients for o.duration, deletes the keys and checks
// the history.
func (a *app) runCheck(o checkOptions) (checkResult, error) {
	clients, err := a.checkClients(o.clients)
	if err != nil {
		return checkResult{}, err
	}
	defer func() {
		for _, c := range clients {
			c.Close()
		}
	}()
	h := robustness.NewHistory()
	stopAt := time.Now().Add(o.duration)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var lastErr error
	for i, c := range clients {
		wg.Go(func() {
			if err := a.checkWorker(c, h, o, i, stopAt); err != nil {
				mu.Lock()
				lastErr = err
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if err := a.ctx.Err(); err != nil {
		return checkResult{}, err
	}
	ops := h.Ops()
	st := robustness.Summarize(ops)
	if st.Reads == 0 && st.AckedWrites == 0 {
		return checkResult{}, fmt.Errorf("no operation succeeded in %v: %v", o.duration, message(lastErr))
	}
	// Leave nothing behind; a key that cannot be deleted is not a verdict.
	for k := range o.keys {
		clients[0].Delete(a.ctx, o.prefix+strconv.Itoa(k))
	}

	viz := ""
	dir := o.out
	if dir == "" {
		if dir, err = os.MkdirTemp("", "raftkvctl-check-"); err != nil {
			return checkResult{}, err
		}
	} else if err := os.MkdirAll(dir, 0o755); err != nil {
		return checkResult{}, err
	}
	viz = filepath.Join(dir, "history.html")
	lin := robustness.CheckLinearizable(ops, h.Notes(), o.checkTimeout, viz)
	if lin.OK() && o.out == "" {
		os.Remove(dir)
	}
	r := checkResult{
		OK:            lin.OK(),
		Result:        string(lin.Result),
		Operations:    st.Ops,
		Checked:       lin.Checked,
		Reads:         st.Reads,
		AckedWrites:   st.AckedWrites,
		UnknownWrites: st.UnknownWrites,
		Failed:        st.FailedReads + st.FailedWrites,
		Keys:          st.Keys,
		BadKeys:       lin.BadKeys,
		Visualization: lin.Visualization,
	}
	r.lin = lin.String()
	r.Summary = fmt.Sprintf("%d operations by %d clients in %v (%d reads, %d acknowledged and %d unknown writes, %d failed): %s",
		st.Ops, o.clients, o.duration, st.Reads, st.AckedWrites, st.UnknownWrites, r.Failed, lin)
	if lin.Err != nil {
		r.Summary += "; " + lin.Err.Error()
	} else if lin.Visualization != "" {
		r.Summary += "; history: " + lin.Visualization
	}
	return r, nil
}

// checkWorker is one check client: it reads, writes and deletes random
// keys until stopAt, recording each operation in h. A write of unknown
// outcome stays pending in the history, so the client continues under a
// new porcupine id. Each write writes a value never written before.
func (a *app) checkWorker(c *client.Client, h *robustness.History, o checkOptions, n int, stopAt time.Time) error {
	rng := rand.New(rand.NewPCG(rand.Uint64(), uint64(n)))
	id := h.NewClient()
	var last error
	for seq := 1; time.Now().Before(stopAt) && a.ctx.Err() == nil; seq++ {
		key := o.prefix + strconv.Itoa(rng.IntN(o.keys))
		op := robustness.Op{Client: id}
		// The call keeps its own deadline past stopAt: cutting it short
		// would turn answers into unknown outcomes.
		ctx := context.WithoutCancel(a.ctx)
		var err error
		op.Call = h.Now()
		switch p := rng.Float64(); {
		case p < 0.5:
			op.Input = robustness.Input{Op: robustness.OpGet, Key: key}
			var v []byte
			v, err = c.Get(ctx, key)
			switch {
			case err == nil:
				op.Output = robustness.Output{Result: robustness.ResultValue, Value: string(v)}
			case errors.Is(err, client.ErrNotFound):
				op.Output = robustness.Output{Result: robustness.ResultNotFound}
				err = nil
			default:
				op.Output = robustness.Output{Result: robustness.ResultFailed}
			}
		case p < 0.9:
			op.Input = robustness.Input{Op: robustness.OpPut, Key: key, Value: fmt.Sprintf("c%d-%d", n, seq)}
			_, err = c.Put(ctx, key, []byte(op.Input.Value))
			op.Output = writeOutput(err)
		default:
			op.Input = robustness.Input{Op: robustness.OpDelete, Key: key}
			_, err = c.Delete(ctx, key)
			op.Output = writeOutput(err)
		}
		op.Return = h.Now()
		if err != nil {
			op.Err = message(err)
			last = err
		}
		h.Add(op)
		if op.Output.Result == robustness.ResultUnknown {
			id = h.NewClient()
		}
	}
	return last
}

// writeOutput classifies a write's outcome for the model: acknowledged,
// unknown (some try may have been applied), or failed (certainly not).
func writeOutput(err error) robustness.Output {
	switch {
	case err == nil:
		return robustness.Output{Result: robustness.ResultOK}
	case errors.Is(err, client.ErrOutcomeUnknown):
		return robustness.Output{Result: robustness.ResultUnknown}
	}
	return robustness.Output{Result: robustness.ResultFailed}
}
