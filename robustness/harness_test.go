package robustness_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/raftkv/raftkv/client"
	"github.com/raftkv/raftkv/internal/testcerts"
	"github.com/raftkv/raftkv/robustness"
	"github.com/raftkv/raftkv/testcluster"
)

func TestMain(m *testing.M) { testcluster.Main(m) }

// Deadlines. The guarantees (convergeTimeout, healWriteTimeout) are the
// issue's; the others are generous because nodes built with -race on two
// cores are slow.
const (
	leaderTimeout    = 20 * time.Second
	rejoinTimeout    = 30 * time.Second
	convergeTimeout  = 10 * time.Second // every live member at the same applied index and hash
	healWriteTimeout = 5 * time.Second  // the first write after healing succeeds
	durabilityWait   = 30 * time.Second
	watchWait        = 30 * time.Second // the watch delivers the end marker (a stream may wait out its idle timeout)
	checkTimeout     = robustness.DefaultCheckTimeout
	requestTimeout   = 3 * time.Second // client side
	daemonTimeout    = 2 * time.Second // --request-timeout: answer 504 before the client gives up
	// hashCheckInterval is how often a hash check starts during a
	// history (robustness.StartHashChecks).
	hashCheckInterval = 500 * time.Millisecond
)

// daemonHashChecks has every member's leader run its own hash checks
// too (--hash-check-interval): a disagreement it finds is an error in
// its log, which the log scan fails on (robustness.ScanLog).
var daemonHashChecks = []string{"--hash-check-interval", "1s"}

// ArtifactsEnv names a directory under which failed histories keep their
// artifacts; the default is <os.TempDir()>/raftkv-robustness.
const ArtifactsEnv = "RAFTKV_ROBUSTNESS_ARTIFACTS"

// tier sizes the histories of one tier.
type tier struct {
	nodes   int
	clients int
	rate    float64       // operations per second over all clients
	warmup  time.Duration // workload before the fault
	hold    time.Duration // how long a fault lasts, at least
	after   time.Duration // workload after healing
	cycles  int           // remove+add cycles of replace-targeted-member
}

var (
	shortTier = tier{nodes: 3, clients: 12, rate: 300, warmup: 2 * time.Second, hold: 4 * time.Second, after: 3 * time.Second, cycles: 3}
	longTier  = tier{nodes: 5, clients: 16, rate: 400, warmup: 4 * time.Second, hold: 10 * time.Second, after: 6 * time.Second, cycles: 6}
)

// fault is one fault injected into one history.
type fault struct {
	name string
	// nodes overrides the tier's cluster size.
	nodes int
	// proxied routes peer links through fault proxies.
	proxied bool
	// opts adjusts the cluster options.
	opts func(*testcluster.Options)
	// tls runs the cluster with TLS on both ports, client and peer
	// certificates required, and the workload's client over https.
	tls bool
	// skip, when set and returning a reason, skips the history.
	skip func() string
	// inject runs while the workload runs: it injects the fault, proves it
	// bit (r.bit), heals, and checks the first write after healing
	// (r.healed).
	inject func(r *run)
}

// run is one history: a cluster, a workload and what the fault proved.
type run struct {
	t    *testing.T
	tier tier
	c    *testcluster.Cluster
	h    *robustness.History
	w    *robustness.Workload
	cl   *robustness.Client
	// watch follows the workload's keys through every fault.
	watch *robustness.WatchLog
	// hashes is what the hash checks during the history found; nil when
	// none ran.
	hashes *robustness.HashCheckResult
	rng    *rand.Rand
	dir    string // this history's files; kept on failure

	mu struct {
		sync.Mutex
		bits  []string // evidence that the fault bit
		extra []string // violations found by the fault itself
	}
}

// urls maps node ids to client URLs.
func (r *run) urls(ids []int) []string {
	out := make([]string, 0, len(ids))
	for _, id := range ids {
		out = append(out, r.c.ClientURL(id))
	}
	return out
}

// note records a fault event in the history and the test log.
func (r *run) note(format string, args ...any) {
	r.h.Notef(format, args...)
	r.t.Logf("%v: %s", r.h.Now().Round(time.Millisecond), fmt.Sprintf(format, args...))
}

// bit records evidence that the fault had its effect.
func (r *run) bit(format string, args ...any) {
	s := fmt.Sprintf(format, args...)
	r.note("bit: %s", s)
	r.mu.Lock()
	defer r.mu.Unlock()
	r.mu.bits = append(r.mu.bits, s)
}

// violation records a failed check without stopping the history.
func (r *run) violation(format string, args ...any) {
	s := fmt.Sprintf(format, args...)
	r.note("violation: %s", s)
	r.mu.Lock()
	defer r.mu.Unlock()
	r.mu.extra = append(r.mu.extra, s)
}

// hold lets the workload run for d: the length of a fault, not a
// synchronization.
func (r *run) hold(d time.Duration) { time.Sleep(d) }

// leader waits for a leader agreed on by a majority.
func (r *run) leader() int { return r.c.WaitLeader(r.t, leaderTimeout) }

// others returns the live nodes other than the given ones, in id order.
func (r *run) others(not ...int) []int {
	var out []int
	for _, id := range r.c.Live() {
		skip := false
		for _, n := range not {
			skip = skip || id == n
		}
		if !skip {
			out = append(out, id)
		}
	}
	return out
}

// pick returns a random element of ids.
func (r *run) pick(ids []int) int {
	if len(ids) == 0 {
		r.t.Fatal("robustness: no node to pick from")
	}
	return ids[r.rng.IntN(len(ids))]
}

// waitNewLeader waits until a majority of the nodes in among agree on a
// leader that is not old, and returns it.
func (r *run) waitNewLeader(old int, among []int) int {
	r.t.Helper()
	var leader int
	testcluster.WaitFor(r.t, leaderTimeout, fmt.Sprintf("a leader other than %d among %v", old, among), func() error {
		votes := map[uint64]int{}
		var voters int
		for _, id := range among {
			st, err := r.c.Status(id)
			if err != nil {
				continue
			}
			voters = max(voters, st.Voters())
			if st.Leader != 0 && st.Leader != uint64(old) {
				votes[st.Leader]++
			}
		}
		for l, n := range votes {
			if n >= voters/2+1 {
				leader = int(l)
				return nil
			}
		}
		return fmt.Errorf("votes %v of %d voters", votes, voters)
	})
	return leader
}

// rejoined waits until node id knows a leader and has applied everything
// the other live nodes had committed when it was called, and records it as
// evidence.
func (r *run) rejoined(id int) {
	r.t.Helper()
	start := time.Now()
	var target uint64
	for _, o := range r.others(id) {
		if st, err := r.c.Status(o); err == nil {
			target = max(target, st.CommitIndex)
		}
	}
	var last string
	for time.Since(start) < rejoinTimeout {
		st, err := r.c.Status(id)
		if err == nil && st.Leader != 0 && st.AppliedIndex >= target {
			r.bit("node %d rejoined: leader %d, applied %d >= %d, after %v",
				id, st.Leader, st.AppliedIndex, target, time.Since(start).Round(time.Millisecond))
			return
		}
		last = fmt.Sprintf("%+v %v", st, err)
		time.Sleep(25 * time.Millisecond)
	}
	r.violation("node %d did not rejoin within %v: %s", id, rejoinTimeout, last)
}

// restart starts the killed nodes ids again and waits until each accepts
// connections. Healing a kill is restarting its nodes, and healed's
// deadline counts from there: before a node listens, its runtime starts
// twice (again with the monitor setting, cmd/raftkv/monitor.go), about
// 0.3 s for a binary built with -race on a quiet machine and 3-4 s with
// two copies of the suite running at once. Everything raftkv does to
// recover, from reading its WAL to an election and a commit, comes after
// it listens.
func (r *run) restart(ids ...int) {
	start := time.Now()
	for _, id := range ids {
		r.c.Restart(id)
	}
	for _, id := range ids {
		r.c.AwaitNodeListening(id)
	}
	r.note("restarted %v: listening after %v", ids, time.Since(start).Round(time.Millisecond))
}

// healed checks that a write succeeds within healWriteTimeout of healing.
// It writes a probe key of its own through random live nodes, recording
// each attempt in the history.
func (r *run) healed() {
	start := time.Now()
	key := fmt.Sprintf("rk/probe/%d", r.rng.Uint32())
	for i := 0; time.Since(start) < healWriteTimeout; i++ {
		live := r.c.Live()
		if len(live) == 0 {
			time.Sleep(25 * time.Millisecond)
			continue
		}
		op := r.cl.Do(r.h, robustness.Op{
			Client: r.h.NewClient(),
			Node:   r.c.ClientURL(r.pick(live)),
			Input:  robustness.Input{Op: robustness.OpPut, Key: key, Value: fmt.Sprintf("probe.%d", i)},
		})
		if op.Output.Result == robustness.ResultOK && time.Since(start) <= healWriteTimeout {
			r.note("first write after healing succeeded after %v (%d attempts)", time.Since(start).Round(time.Millisecond), i+1)
			return
		}
		if op.Status == 0 || op.Status == http.StatusServiceUnavailable {
			time.Sleep(25 * time.Millisecond)
		}
	}
	r.violation("no write succeeded within %v of healing", healWriteTimeout)
}

// logCount counts the lines of node id's log that contain s.
func (r *run) logCount(id int, s string) int {
	b, err := os.ReadFile(r.c.LogPath(id))
	if err != nil {
		return 0
	}
	return strings.Count(string(b), s)
}

// startsProcesses begins every test that starts real raftkv processes:
// -short skips it, and it runs beside the package's other such tests (up
// to go test's -parallel, GOMAXPROCS by default). A history's length is
// set by its schedule, not by the CPU: run one at a time, the package's
// tests kept about 0.8 of two cores busy.
func startsProcesses(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("robustness: starts real raftkv processes")
	}
	t.Parallel()
}

// runHistory runs one history: cluster, workload, the fault, then every check.
func runHistory(t *testing.T, tr tier, f fault, seed uint64) {
	dir := keepOnFailure(t) // before Start: its cleanup must run after the nodes stopped
	opts := testcluster.Options{
		N:              tr.nodes,
		Proxied:        f.proxied,
		RequestTimeout: daemonTimeout,
	}
	if f.nodes > 0 {
		opts.N = f.nodes
	}
	if f.opts != nil {
		f.opts(&opts)
	}
	opts.ExtraArgs = append(opts.ExtraArgs, daemonHashChecks...)
	if f.tls {
		opts.TLS = testcerts.NewSet(t, t.TempDir())
	}
	c := testcluster.Start(t, opts)
	dir.cluster = c
	cl := robustness.NewClient(requestTimeout)
	defer cl.Close()
	if f.tls {
		cl.SetTLS(c.ClientTLS(opts.TLS.Client))
	}
	r := &run{t: t, tier: tr, c: c, h: robustness.NewHistory(), cl: cl, dir: dir.path,
		rng: rand.New(rand.NewPCG(seed, 0x5eed))}
	r.leader()

	w, err := robustness.NewWorkload(robustness.Config{
		Targets:        func() []string { return r.urls(c.Live()) },
		Clients:        tr.clients,
		Seed:           seed,
		RequestTimeout: requestTimeout,
		Rate:           tr.rate,
		Client:         cl,
	}, r.h)
	if err != nil {
		t.Fatal(err)
	}
	r.w = w
	var wtls *tls.Config
	if f.tls {
		wtls = c.ClientTLS(opts.TLS.Client)
	}
	if r.watch, err = robustness.StartWatch(r.urls(c.IDs()), robustness.DefaultKeyPrefix, wtls); err != nil {
		t.Fatal(err)
	}
	defer r.watch.Stop()
	stop := runInBackground(w.Run)
	defer stop()
	hashes := robustness.StartHashChecks(cl, func() [][]string { return [][]string{r.urls(c.IDs())} }, hashCheckInterval, seed)
	defer hashes.Stop()

	r.hold(tr.warmup)
	r.note("fault %s: start", f.name)
	f.inject(r)
	r.note("fault %s: healed", f.name)
	r.hold(tr.after)
	stop()
	workload := r.h.Now()
	hr := hashes.Stop()
	hr.AddMemberChecks(cl, r.urls(c.Live()))
	r.hashes = &hr
	check(t, r, f.name, workload)
}

// check runs every checker on r's history and fails t on a violation.
func check(t *testing.T, r *run, name string, workload time.Duration) {
	ops := r.h.Ops()
	live := r.urls(r.c.Live())
	rep := robustness.Report{Name: name, Workload: workload, Stats: robustness.Summarize(ops)}
	conv := robustness.CheckConvergence(r.cl, live, convergeTimeout)
	rep.Convergence = &conv
	rep.Hashes = r.hashes
	if r.watch != nil {
		wr := robustness.CheckWatch(r.watch, r.cl, live, ops, watchWait)
		rep.Watch = &wr
		keepWatch(t, r.dir, "watch", r.watch, wr)
	}
	dur := robustness.CheckDurability(r.cl, live, ops, r.w.NeverWritten(2), durabilityWait)
	rep.Durability = &dur
	rep.Lin = robustness.CheckLinearizable(ops, r.h.Notes(), checkTimeout, filepath.Join(r.dir, "history.html"))
	if rep.Lin.Err != nil {
		t.Error(rep.Lin.Err)
	}
	for _, id := range r.c.IDs() {
		hits, err := robustness.ScanLog(r.c.LogPath(id), 5)
		if err != nil && !os.IsNotExist(err) {
			t.Errorf("node %d log: %v", id, err)
		}
		for _, h := range hits {
			rep.Extra = append(rep.Extra, fmt.Sprintf("node %d log: %s", id, h))
		}
	}
	r.mu.Lock()
	bits, extra := r.mu.bits, r.mu.extra
	r.mu.Unlock()
	rep.Extra = append(rep.Extra, extra...)
	if len(bits) == 0 {
		rep.Extra = append(rep.Extra, "the fault left no evidence that it bit")
	}
	logReport(t, rep, dur, ops, r.h.Notes(), r.dir)
	if !rep.OK() {
		for _, v := range rep.Violations() {
			t.Error(v)
		}
	}
}

// logReport logs rep's verdict and its figures line and, when rep is not
// OK, keeps the history in dir: history.json, and history.html unless the
// linearizability check drew one already.
func logReport(t *testing.T, rep robustness.Report, dur robustness.DurabilityResult, ops []robustness.Op, notes []robustness.Note, dir string) {
	t.Helper()
	t.Log(rep.Verdict())
	t.Logf("figures: history=%s ops=%d checked=%d unknown=%d lost=%d phantom=%d violations=%d lin=%s check=%v",
		rep.Name, rep.Stats.Ops, rep.Lin.Checked, rep.Stats.UnknownWrites, len(dur.Lost), len(dur.Phantom),
		len(rep.Violations()), rep.Lin.Result, rep.Lin.Took.Round(time.Millisecond))
	if rep.OK() {
		return
	}
	writeHistory(t, filepath.Join(dir, "history.json"), ops, notes)
	if rep.Lin.Visualization == "" {
		if err := robustness.Visualize(ops, notes, checkTimeout, filepath.Join(dir, "history.html")); err != nil {
			t.Error(err)
		}
	}
}

// keepWatch saves, when res found violations, every one of them and the
// events w delivered as dir/name.json.
func keepWatch(t *testing.T, dir, name string, w *robustness.WatchLog, res robustness.WatchResult) {
	if res.OK() {
		return
	}
	b, err := json.MarshalIndent(struct {
		Violations []string
		Events     []client.WatchEvent
	}{res.Violations, w.Events()}, "", " ")
	if err == nil {
		err = os.WriteFile(filepath.Join(dir, name+".json"), b, 0o644)
	}
	if err != nil {
		t.Errorf("saving the watch: %v", err)
	}
}

// writeHistory saves ops and notes as JSON next to the visualization.
func writeHistory(t *testing.T, path string, ops []robustness.Op, notes []robustness.Note) {
	b, err := json.MarshalIndent(struct {
		Notes []robustness.Note
		Ops   []robustness.Op
	}{notes, ops}, "", " ")
	if err == nil {
		err = os.WriteFile(path, b, 0o644)
	}
	if err != nil {
		t.Errorf("saving the history: %v", err)
	}
}

// artifacts is a history's folder of files, copied with the node logs and
// data dirs to a lasting folder if the test fails.
type artifacts struct {
	path    string
	cluster *testcluster.Cluster
	// more are further clusters (a sharded deployment's), by name, and
	// files further logs (its routers'), by name.
	more  map[string]*testcluster.Cluster
	files map[string]string
}

// add keeps cluster c's logs and data dirs too, under name.
func (a *artifacts) add(name string, c *testcluster.Cluster) {
	if a.more == nil {
		a.more = map[string]*testcluster.Cluster{}
	}
	a.more[name] = c
}

// addFile keeps the file at path too, as name.
func (a *artifacts) addFile(name, path string) {
	if a.files == nil {
		a.files = map[string]string{}
	}
	a.files[name] = path
}

// keepOnFailure makes t's artifacts folder. Call it before
// testcluster.Start: its cleanup then runs after the cluster's (nodes
// stopped, data dirs quiet) and before t.TempDir() is removed.
func keepOnFailure(t *testing.T) *artifacts {
	a := &artifacts{path: t.TempDir()}
	t.Cleanup(func() {
		if !t.Failed() {
			return
		}
		base := os.Getenv(ArtifactsEnv)
		if base == "" {
			base = filepath.Join(os.TempDir(), "raftkv-robustness")
		}
		name := strings.NewReplacer("/", "_", " ", "_", "=", "-").Replace(t.Name())
		dst := filepath.Join(base, name+"-"+time.Now().Format("20060102-150405"))
		err := copyTree(a.path, dst)
		keep := func(prefix string, c *testcluster.Cluster) {
			for _, id := range c.IDs() {
				if e := copyFile(c.LogPath(id), filepath.Join(dst, fmt.Sprintf("%snode%d.log", prefix, id))); e != nil && !os.IsNotExist(e) {
					err = e
				}
				if e := copyTree(c.DataDir(id), filepath.Join(dst, fmt.Sprintf("%snode%d-data", prefix, id))); e != nil && !os.IsNotExist(e) {
					err = e
				}
			}
		}
		if a.cluster != nil && err == nil {
			keep("", a.cluster)
		}
		for name, c := range a.more {
			if err == nil {
				keep(name+"-", c)
			}
		}
		for name, path := range a.files {
			if e := copyFile(path, filepath.Join(dst, name)); e != nil && !os.IsNotExist(e) && err == nil {
				err = e
			}
		}
		if err != nil {
			t.Logf("robustness: keeping artifacts in %s: %v", dst, err)
		}
		t.Logf("robustness: history, visualization (history.html), node logs and data dirs kept in %s", dst)
		fmt.Fprintf(os.Stderr, "robustness: %s failed; artifacts in %s\n", t.Name(), dst)
	})
	return a
}

func copyTree(src, dst string) error {
	return filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, p)
		if err != nil {
			return err
		}
		if d.IsDir() {
			return os.MkdirAll(filepath.Join(dst, rel), 0o755)
		}
		if !d.Type().IsRegular() {
			return nil
		}
		return copyFile(p, filepath.Join(dst, rel))
	})
}

// copyFile copies src to dst, leaving runs of zeros as holes: raftkv's WAL
// files are preallocated (64 MiB each) and mostly zeros.
func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	out, err := os.Create(dst)
	if err != nil {
		return err
	}
	buf := make([]byte, 64<<10)
	var size int64
	for {
		n, rerr := io.ReadFull(in, buf)
		if n > 0 {
			chunk := buf[:n]
			if bytes.Count(chunk, []byte{0}) == n {
				_, err = out.Seek(int64(n), io.SeekCurrent)
			} else {
				_, err = out.Write(chunk)
			}
			if err != nil {
				out.Close()
				return err
			}
			size += int64(n)
		}
		if rerr == io.EOF || rerr == io.ErrUnexpectedEOF {
			break
		}
		if rerr != nil {
			out.Close()
			return rerr
		}
	}
	if err := out.Truncate(size); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// runInBackground calls run in a goroutine with a context of its own. The
// stop it returns cancels that context and waits for run to return; it
// may be called more than once (a deferred stop after an explicit one).
func runInBackground(run func(context.Context)) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); run(ctx) }()
	return sync.OnceFunc(func() {
		cancel()
		<-done
	})
}
