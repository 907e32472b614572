package robustness_test

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"
	"github.com/raftkv/raftkv/robustness"
	"github.com/raftkv/raftkv/testcluster"
)

// recordGood runs a fault-free workload for d against a fresh 3-node cluster
// and returns the cluster, the workload and its history.
func recordGood(t *testing.T, d time.Duration) (*testcluster.Cluster, *robustness.Workload, *robustness.History, []string) {
	c := testcluster.Start(t, testcluster.Options{RequestTimeout: daemonTimeout})
	c.WaitLeader(t, leaderTimeout)
	var urls []string
	for _, id := range c.IDs() {
		urls = append(urls, c.ClientURL(id))
	}
	h := robustness.NewHistory()
	w, err := robustness.NewWorkload(robustness.Config{
		Targets:        func() []string { return urls },
		Clients:        shortTier.clients,
		Seed:           7,
		RequestTimeout: requestTimeout,
		Rate:           shortTier.rate,
	}, h)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	w.Run(ctx)
	return c, w, h, urls
}

// TestCheckersRejectMutatedHistory: a history recorded from a healthy
// cluster passes every checker; the same history with one read made stale,
// or one acknowledged write dropped, fails them.
func TestCheckersRejectMutatedHistory(t *testing.T) {
	startsProcesses(t)
	dir := keepOnFailure(t)
	c, w, h, urls := recordGood(t, 4*time.Second)
	dir.cluster = c
	defer w.Client().Close()
	ops := h.Ops()
	t.Logf("recorded %s", robustness.Summarize(ops))

	lin := robustness.CheckLinearizable(ops, nil, checkTimeout, filepath.Join(dir.path, "good.html"))
	if !lin.OK() {
		t.Fatalf("the recorded history must pass: %s", lin)
	}
	probes := w.NeverWritten(2)
	dur := robustness.CheckDurability(w.Client(), urls, ops, probes, durabilityWait)
	if !dur.OK() {
		t.Fatalf("the recorded history must pass: %s", dur)
	}

	t.Run("stale read", func(t *testing.T) {
		mutated, what := staleRead(t, ops)
		lin := robustness.CheckLinearizable(mutated, nil, checkTimeout, filepath.Join(t.TempDir(), "stale.html"))
		if lin.Result != porcupine.Illegal {
			t.Fatalf("%s: the check says %s, want %s", what, lin, porcupine.Illegal)
		}
		t.Logf("%s: rejected: %s; visualization written", what, lin)
	})
	t.Run("acknowledged write dropped", func(t *testing.T) {
		mutated, what := dropObservedWrite(t, ops)
		lin := robustness.CheckLinearizable(mutated, nil, checkTimeout, "")
		if lin.Result != porcupine.Illegal {
			t.Fatalf("%s: the check says %s, want %s", what, lin, porcupine.Illegal)
		}
		t.Logf("%s: rejected: %s", what, lin)
	})
	t.Run("acknowledged write-once write dropped", func(t *testing.T) {
		// The member holds a value the history never wrote: a phantom.
		i := slices.IndexFunc(ops, func(op robustness.Op) bool { return op.Once && op.Output.Result == robustness.ResultOK })
		if i < 0 {
			t.Fatal("no acknowledged write-once write in the history")
		}
		mutated := slices.Delete(slices.Clone(ops), i, i+1)
		// Without the write, its key is one the workload never wrote, and
		// NeverWritten would list it among the keys to probe.
		dur := robustness.CheckDurability(w.Client(), urls, mutated, append(slices.Clone(probes), ops[i].Input.Key), durabilityWait)
		if len(dur.Phantom) != len(urls) || len(dur.Lost) != 0 {
			t.Fatalf("dropped %s: got %s, want %d phantoms (one per member)", ops[i].Input.Key, dur, len(urls))
		}
		t.Logf("dropped %s: rejected: %s", ops[i].Input.Key, dur)
	})
	t.Run("acknowledged write the cluster never got", func(t *testing.T) {
		// As if the cluster lost a write it acknowledged.
		fake := robustness.Op{Once: true, Node: urls[0], Status: 204,
			Input:  robustness.Input{Op: robustness.OpPut, Key: "rk/once/99/1", Value: "never sent"},
			Output: robustness.Output{Result: robustness.ResultOK}}
		dur := robustness.CheckDurability(w.Client(), urls, append(slices.Clone(ops), fake), nil, durabilityWait)
		if len(dur.Lost) != len(urls) || len(dur.Phantom) != 0 {
			t.Fatalf("got %s, want %d lost writes (one per member)", dur, len(urls))
		}
		t.Logf("rejected: %s", dur)
	})
}

// staleRead returns ops with one read made stale: a read that began after
// put(k, b) returned, which itself began after put(k, a) returned, now
// returns a.
func staleRead(t *testing.T, ops []robustness.Op) ([]robustness.Op, string) {
	for gi, g := range ops {
		if g.Input.Op != robustness.OpGet || (g.Output.Result != robustness.ResultValue && g.Output.Result != robustness.ResultNotFound) {
			continue
		}
		for _, p2 := range ops {
			if !ackedPut(p2, g.Input.Key) || p2.Return >= g.Call {
				continue
			}
			for _, p1 := range ops {
				if !ackedPut(p1, g.Input.Key) || p1.Return >= p2.Call || (g.Output.Result == robustness.ResultValue && g.Output.Value == p1.Input.Value) {
					continue
				}
				mutated := slices.Clone(ops)
				mutated[gi].Output = robustness.Output{Result: robustness.ResultValue, Value: p1.Input.Value}
				return mutated, fmt.Sprintf("get(%q) at %v made to return %q, overwritten by %q before it began",
					g.Input.Key, g.Call, p1.Input.Value, p2.Input.Value)
			}
		}
	}
	t.Fatal("no read to make stale in the history")
	return nil, ""
}

// dropObservedWrite returns ops without one acknowledged put whose value a
// read returned.
func dropObservedWrite(t *testing.T, ops []robustness.Op) ([]robustness.Op, string) {
	for _, g := range ops {
		if g.Input.Op != robustness.OpGet || g.Output.Result != robustness.ResultValue {
			continue
		}
		i := slices.IndexFunc(ops, func(p robustness.Op) bool {
			return ackedPut(p, g.Input.Key) && p.Input.Value == g.Output.Value
		})
		if i >= 0 {
			return slices.Delete(slices.Clone(ops), i, i+1),
				fmt.Sprintf("put(%q, %q) dropped, read at %v", g.Input.Key, g.Output.Value, g.Call)
		}
	}
	t.Fatal("no observed acknowledged write in the history")
	return nil, ""
}

func ackedPut(op robustness.Op, key string) bool {
	return op.Input.Op == robustness.OpPut && op.Input.Key == key && op.Output.Result == robustness.ResultOK
}

// TestNegativeControlBrokenReads: with a daemon built with -tags
// raftkv_brokenreads (linearizable reads skip ReadIndex and serve local
// state), a follower cut off from the majority serves stale reads while the
// majority keeps writing; the linearizability check must find it.
func TestNegativeControlBrokenReads(t *testing.T) {
	startsProcesses(t)
	bin := testcluster.BuildBinaryTags(t, "raftkv_brokenreads")
	dir := keepOnFailure(t)
	c := testcluster.Start(t, testcluster.Options{Binary: bin, Proxied: true, RequestTimeout: daemonTimeout})
	dir.cluster = c
	leader := c.WaitLeader(t, leaderTimeout)
	var majority []string
	f := 0
	for _, id := range c.IDs() {
		if id != leader && f == 0 {
			f = id
			continue
		}
		majority = append(majority, c.ClientURL(id))
	}
	h := robustness.NewHistory()
	cl := robustness.NewClient(requestTimeout)
	defer cl.Close()
	w, err := robustness.NewWorkload(robustness.Config{
		Targets:        func() []string { return majority },
		ReadTargets:    func() []string { return []string{c.ClientURL(f)} },
		Clients:        shortTier.clients,
		Seed:           3,
		RequestTimeout: requestTimeout,
		Rate:           shortTier.rate,
		Client:         cl,
	}, h)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); w.Run(ctx) }()
	time.Sleep(time.Second) // some history before the fault
	h.Notef("isolate follower %d; reads go to it, writes to the majority", f)
	c.Isolate(f)
	time.Sleep(4 * time.Second) // the fault's length
	cancel()
	<-done
	c.Heal()

	ops := h.Ops()
	lin := robustness.CheckLinearizable(ops, h.Notes(), checkTimeout, filepath.Join(dir.path, "history.html"))
	t.Logf("broken reads: %s; %s", robustness.Summarize(ops), lin)
	if lin.Result != porcupine.Illegal {
		t.Fatalf("negative control: the check says %s for a daemon that serves stale reads; want %s", lin, porcupine.Illegal)
	}
	t.Logf("negative control: violation found on %d keys, e.g. %v", len(lin.BadKeys), lin.BadKeys[:min(3, len(lin.BadKeys))])
}
