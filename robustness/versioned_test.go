package robustness_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"
	"github.com/raftkv/raftkv/robustness"
	"github.com/raftkv/raftkv/testcluster"
)

// The versioned histories: the CAS register and transaction workload
// (robustness.VersionedWorkload) under the short tier's faults, checked
// with CASModel and TxnModel.

// versionedTier sizes the versioned history of the default tier: five
// faults in one history, so the whole takes well under a minute.
var versionedTier = tier{nodes: 3, clients: 7, rate: 200, warmup: 2 * time.Second, hold: 3 * time.Second, after: 2 * time.Second}

// versionedFaults are the faults of the default tier's versioned history,
// one after the other: a leader killed, paused, isolated, every member
// killed, random loss on peer links.
var versionedFaults = []fault{killLeader, pauseLeader, isolateLeader, killAll, randomLoss}

// TestVersioned runs the CAS register and transaction workload while the
// leader is killed, paused and isolated, every member is killed, and peer
// links lose connections, and checks the history with CASModel and
// TxnModel.
func TestVersioned(t *testing.T) {
	startsProcesses(t)
	ops := runVersioned(t, versionedTier, versionedFaults, 1, "")
	if t.Failed() {
		return
	}
	// The same history, corrupted three ways, must be rejected.
	for _, m := range []struct {
		name   string
		mutate func([]robustness.Op) ([]robustness.Op, string)
		check  func([]robustness.Op, []robustness.Note, time.Duration, string) robustness.LinResult
	}{
		{"412 made success", preconditionMadeSuccess, robustness.CheckCAS},
		{"stale get", staleVersionedGet, robustness.CheckCAS},
		{"stale get in a transaction", staleTxnGet, robustness.CheckTxn},
	} {
		mutated, what := m.mutate(ops)
		if mutated == nil {
			t.Errorf("%s: %s", m.name, what)
			continue
		}
		if lin := m.check(mutated, nil, checkTimeout, ""); lin.Result != porcupine.Illegal {
			t.Errorf("%s (%s): the check says %s, want %s", m.name, what, lin, porcupine.Illegal)
		} else {
			t.Logf("%s (%s): rejected on %v", m.name, what, lin.BadKeys)
		}
	}
}

// preconditionMadeSuccess turns a 412 to an If-Match put, whose key was
// then at a version older than the 412's own index, into a success at
// that index.
func preconditionMadeSuccess(ops []robustness.Op) ([]robustness.Op, string) {
	for i, op := range ops {
		o := op.Output
		if op.Input.Op == robustness.OpPutIfMatch && o.Result == robustness.ResultPrecondition && o.Mod != 0 && o.Mod < o.Index {
			mutated := slices.Clone(ops)
			mutated[i].Output = robustness.Output{Result: robustness.ResultOK, Index: o.Index}
			return mutated, fmt.Sprintf("put(%q, if-match %d) at %d, whose key was at %d", op.Input.Key, op.Input.Mod, o.Index, o.Mod)
		}
	}
	return nil, "no 412 to an If-Match put in the history"
}

// acked reports whether op is a write of key acknowledged with its index
// (a put of value, or a delete when value is "").
func acked(op robustness.Op, key string) (value string, index uint64, ok bool) {
	in, o := op.Input, op.Output
	if in.Key != key || o.Result != robustness.ResultOK || o.Index == 0 {
		return "", 0, false
	}
	switch in.Op {
	case robustness.OpPut, robustness.OpPutIfMatch, robustness.OpPutIfAbsent:
		return in.Value, o.Index, true
	case robustness.OpDelete, robustness.OpDeleteIfMatch:
		return "", o.Index, true
	}
	return "", 0, false
}

// staleVersionedGet makes a get return a version that another
// acknowledged write had overwritten before the get began.
func staleVersionedGet(ops []robustness.Op) ([]robustness.Op, string) {
	for gi, g := range ops {
		if g.Input.Op != robustness.OpGet || g.Output.Result != robustness.ResultValue {
			continue
		}
		for _, w1 := range ops {
			v1, i1, ok1 := acked(w1, g.Input.Key)
			if !ok1 || v1 == "" || v1 == g.Output.Value {
				continue
			}
			for _, w2 := range ops {
				if _, _, ok2 := acked(w2, g.Input.Key); ok2 && w1.Return < w2.Call && w2.Return < g.Call {
					mutated := slices.Clone(ops)
					mutated[gi].Output.Value, mutated[gi].Output.Mod = v1, i1
					return mutated, fmt.Sprintf("get(%q) at %v made to return %q@%d, overwritten at %d", g.Input.Key, g.Call, v1, i1, w2.Output.Index)
				}
			}
		}
	}
	return nil, "no get to make stale in the history"
}

// txnWrote returns the value a succeeded transaction put in key ("" for
// a delete) and its index.
func txnWrote(op robustness.Op, key string) (value string, index uint64, ok bool) {
	if op.Input.Op != robustness.OpTxn || op.Output.Result != robustness.ResultOK {
		return "", 0, false
	}
	branch := op.Input.Txn.Failure
	if op.Output.Succeeded {
		branch = op.Input.Txn.Success
	}
	for _, o := range branch {
		if o.Key != key {
			continue
		}
		switch o.Op {
		case robustness.OpPut:
			value, ok = o.Value, true
		case robustness.OpDelete:
			value, ok = "", true
		}
	}
	return value, op.Output.Index, ok
}

// staleTxnGet makes a read-only transaction's get return a version that
// another transaction had overwritten before the read began.
func staleTxnGet(ops []robustness.Op) ([]robustness.Op, string) {
	for gi, g := range ops {
		if g.Input.Op != robustness.OpTxn || g.Output.Result != robustness.ResultOK || len(g.Input.Txn.Compares) > 0 ||
			g.Input.Txn.Success[0].Op != robustness.OpGet || len(g.Output.Gets) == 0 {
			continue
		}
		key := g.Input.Txn.Success[0].Key
		for _, w1 := range ops {
			v1, i1, ok1 := txnWrote(w1, key)
			if !ok1 || v1 == "" || v1 == g.Output.Gets[0].Value {
				continue
			}
			for _, w2 := range ops {
				if _, _, ok2 := txnWrote(w2, key); ok2 && w1.Return < w2.Call && w2.Return < g.Call {
					mutated := slices.Clone(ops)
					gets := slices.Clone(g.Output.Gets)
					gets[0] = robustness.TxnGet{Found: true, Value: v1, Mod: i1}
					mutated[gi].Output.Gets = gets
					return mutated, fmt.Sprintf("get %q of a transaction at %v made to return %q@%d, overwritten at %d", key, g.Call, v1, i1, w2.Output.Index)
				}
			}
		}
	}
	return nil, "no transaction read to make stale in the history"
}

// TestNegativeControlBrokenCAS: members built with -tags raftkv_broken_cas
// decide a transaction's compares (If-Match, If-None-Match too) on their
// local state before proposing; concurrent conditional writes through
// every member then both succeed on one version, and each model must
// reject the history.
func TestNegativeControlBrokenCAS(t *testing.T) {
	startsProcesses(t)
	negativeControlBrokenCAS(t, 5)
}

// negativeControlBrokenCAS runs the versioned workload with seed for 5 s
// on 3 members built with raftkv_broken_cas, and fails t unless both
// models reject the history, and so do both without raft indexes (the
// sharded histories' checks).
func negativeControlBrokenCAS(t *testing.T, seed uint64) {
	bin := testcluster.BuildBinaryTags(t, "raftkv_broken_cas")
	dir := keepOnFailure(t)
	c := testcluster.Start(t, testcluster.Options{Binary: bin, RequestTimeout: daemonTimeout})
	dir.cluster = c
	c.WaitLeader(t, leaderTimeout)
	var urls []string
	for _, id := range c.IDs() {
		urls = append(urls, c.ClientURL(id))
	}
	h := robustness.NewHistory()
	cl := robustness.NewClient(requestTimeout)
	defer cl.Close()
	w, err := robustness.NewVersionedWorkload(robustness.VersionedConfig{
		Targets:        func() []string { return urls },
		Seed:           seed,
		RequestTimeout: requestTimeout,
		Rate:           versionedTier.rate,
		Client:         cl,
	}, h)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	w.Run(ctx)
	ops := h.Ops()
	t.Logf("broken CAS: %s", versionedStats(ops))
	for _, m := range []struct {
		name  string
		check func([]robustness.Op, []robustness.Note, time.Duration, string) robustness.LinResult
	}{{"cas", robustness.CheckCAS}, {"txn", robustness.CheckTxn},
		{"cas-across-groups", robustness.CheckCASAcrossGroups}, {"txn-across-groups", robustness.CheckTxnAcrossGroups}} {
		lin := m.check(ops, h.Notes(), checkTimeout, filepath.Join(dir.path, m.name+".html"))
		t.Logf("%s model: %s", m.name, lin)
		if lin.Result != porcupine.Illegal {
			t.Errorf("negative control: the %s model says %s for members that decide compares before proposing; want %s",
				m.name, lin, porcupine.Illegal)
		}
	}
}

// runVersioned runs one versioned history: a cluster (built with tags,
// if not empty), the workload, the faults one after the other, then the
// checks. It returns the history's operations.
func runVersioned(t *testing.T, tr tier, faults []fault, seed uint64, tags string) []robustness.Op {
	dir := keepOnFailure(t)
	opts := testcluster.Options{N: tr.nodes, RequestTimeout: daemonTimeout, ExtraArgs: daemonHashChecks}
	var names []string
	for _, f := range faults {
		opts.Proxied = opts.Proxied || f.proxied
		if f.nodes > 0 {
			opts.N = f.nodes
		}
		if f.opts != nil {
			f.opts(&opts)
		}
		names = append(names, f.name)
	}
	if tags != "" {
		opts.Binary = testcluster.BuildBinaryTags(t, tags)
	}
	c := testcluster.Start(t, opts)
	dir.cluster = c
	cl := robustness.NewClient(requestTimeout)
	defer cl.Close()
	r := &run{t: t, tier: tr, c: c, h: robustness.NewHistory(), cl: cl, dir: dir.path,
		rng: rand.New(rand.NewPCG(seed, 0x5eed))}
	r.leader()
	casClients := tr.clients * 4 / 7
	w, err := robustness.NewVersionedWorkload(robustness.VersionedConfig{
		Targets:        func() []string { return r.urls(c.Live()) },
		CASClients:     casClients,
		TxnClients:     tr.clients - casClients,
		Seed:           seed,
		RequestTimeout: requestTimeout,
		Rate:           tr.rate,
		Client:         cl,
	}, r.h)
	if err != nil {
		t.Fatal(err)
	}
	// A watch of the workload's keys: conditional puts and transactions
	// through the faults.
	if r.watch, err = robustness.StartWatch(r.urls(c.IDs()), w.KeyPrefix(), nil); err != nil {
		t.Fatal(err)
	}
	defer r.watch.Stop()
	stop := runInBackground(w.Run)
	defer stop()
	hashes := robustness.StartHashChecks(cl, func() [][]string { return [][]string{r.urls(c.IDs())} }, hashCheckInterval, seed)
	defer hashes.Stop()

	r.hold(tr.warmup)
	for _, f := range faults {
		r.note("fault %s: start", f.name)
		f.inject(r)
		r.note("fault %s: healed", f.name)
	}
	r.hold(tr.after)
	stop()
	hr := hashes.Stop()
	hr.AddMemberChecks(cl, r.urls(c.Live()))
	r.hashes = &hr
	checkVersioned(t, r, strings.Join(names, "+"), r.h.Now())
	return r.h.Ops()
}

// checkVersioned checks r's history with both models, the members'
// convergence and logs, and that every fault bit.
func checkVersioned(t *testing.T, r *run, name string, workload time.Duration) {
	ops := r.h.Ops()
	var violations []string
	conv := robustness.CheckConvergence(r.cl, r.urls(r.c.Live()), convergeTimeout)
	if !conv.OK() {
		violations = append(violations, "convergence: "+conv.String())
	}
	if r.hashes != nil {
		t.Logf("hash checks: %s", r.hashes)
		if !r.hashes.OK() {
			violations = append(violations, "hash checks: "+r.hashes.String())
		}
	}
	var watch robustness.WatchResult
	if r.watch != nil {
		watch = robustness.CheckWatch(r.watch, r.cl, r.urls(r.c.Live()), ops, watchWait)
		keepWatch(t, r.dir, "watch", r.watch, watch)
		if !watch.OK() {
			violations = append(violations, "watch: "+watch.String())
		}
	}
	cas := robustness.CheckCAS(ops, r.h.Notes(), checkTimeout, filepath.Join(r.dir, "cas.html"))
	if !cas.OK() {
		violations = append(violations, "CAS register model: "+cas.String())
	}
	txn := robustness.CheckTxn(ops, r.h.Notes(), checkTimeout, filepath.Join(r.dir, "txn.html"))
	if !txn.OK() {
		violations = append(violations, "transaction model: "+txn.String())
	}
	for _, e := range []error{cas.Err, txn.Err} {
		if e != nil {
			t.Error(e)
		}
	}
	for _, op := range ops {
		if op.Input.Op != robustness.OpGet && op.Status >= 400 && op.Status < 500 && op.Status != 412 {
			violations = append(violations, fmt.Sprintf("a valid %s refused: %d %s", op.Input.Op, op.Status, op.Err))
			break
		}
	}
	for _, id := range r.c.IDs() {
		hits, err := robustness.ScanLog(r.c.LogPath(id), 5)
		if err != nil && !os.IsNotExist(err) {
			t.Errorf("node %d log: %v", id, err)
		}
		for _, h := range hits {
			violations = append(violations, fmt.Sprintf("node %d log: %s", id, h))
		}
	}
	r.mu.Lock()
	bits, extra := r.mu.bits, r.mu.extra
	r.mu.Unlock()
	violations = append(violations, extra...)
	if len(bits) == 0 {
		violations = append(violations, "the faults left no evidence that they bit")
	}
	t.Logf("%s: a %v workload made %s", name, workload.Round(time.Second), versionedStats(ops))
	t.Logf("CAS register model: %s; transaction model: %s; convergence: %s; watch: %s", cas, txn, conv, watch)
	if len(violations) > 0 {
		writeHistory(t, filepath.Join(r.dir, "history.json"), ops, r.h.Notes())
		for _, v := range violations {
			t.Error(v)
		}
	}
}

// versionedStats counts a versioned history's operations by kind and
// outcome.
func versionedStats(ops []robustness.Op) string {
	type count struct{ ok, precondition, unknown, failed, retried int }
	by := map[robustness.OpKind]*count{}
	var kinds []robustness.OpKind
	for _, op := range ops {
		c := by[op.Input.Op]
		if c == nil {
			c = &count{}
			by[op.Input.Op] = c
			kinds = append(kinds, op.Input.Op)
		}
		switch op.Output.Result {
		case robustness.ResultOK, robustness.ResultValue, robustness.ResultNotFound:
			c.ok++
			if op.Attempts > 1 {
				c.retried++
			}
		case robustness.ResultPrecondition:
			c.precondition++
			if op.Attempts > 1 {
				c.retried++
			}
		case robustness.ResultUnknown:
			c.unknown++
		default:
			c.failed++
		}
	}
	var parts []string
	for _, k := range kinds {
		c := by[k]
		parts = append(parts, fmt.Sprintf("%s %d ok, %d 412, %d unknown, %d failed (%d settled by a retry)",
			k, c.ok, c.precondition, c.unknown, c.failed, c.retried))
	}
	return fmt.Sprintf("%d operations: %s", len(ops), strings.Join(parts, "; "))
}

// longVersionedFaults are the faults of a long-tier versioned history,
// one after the other on 5 members. The member replaced comes last:
// testcluster proxies only the links of the members it started with, so
// the link faults cannot cut a member added later.
var longVersionedFaults = []fault{
	killFollower, killLeader, pauseLeader, isolateLeader, partitionLeaderKill,
	isolateFollowerSnapshot, randomLoss, killAll, replaceMember,
}

// TestLongVersioned runs, with each seed of the long tier, the versioned
// workload on 5 members through every fault of longVersionedFaults, and
// on one member killed repeatedly; then the negative control with that
// seed. Opt-in: RAFTKV_ROBUSTNESS_LONG=1.
func TestLongVersioned(t *testing.T) {
	if os.Getenv(LongEnv) != "1" {
		t.Skipf("robustness: long tier; set %s=1 (and go test -timeout 90m)", LongEnv)
	}
	for _, seed := range longSeeds(t) {
		t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) {
			if d, ok := t.Deadline(); ok && time.Until(d) < 5*time.Minute {
				t.Skip("robustness: too close to the test deadline; raise go test -timeout")
			}
			runVersioned(t, longTier, longVersionedFaults, seed, "")
		})
		t.Run(fmt.Sprintf("single-node-kills/seed=%d", seed), func(t *testing.T) {
			runVersioned(t, longTier, []fault{singleNodeKills}, seed, "")
		})
		t.Run(fmt.Sprintf("negative-control/seed=%d", seed), func(t *testing.T) {
			negativeControlBrokenCAS(t, seed)
		})
	}
}
