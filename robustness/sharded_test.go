package robustness_test

// Sharded histories: the same workload, model and checkers as the
// single-group histories, with every client request sent through routers
// (`raftkv route`, which route with the client package) to a sharded
// deployment of real processes, while groups join and leave and buckets
// move under faults.

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"
	"github.com/raftkv/raftkv/internal/testutil"
	"github.com/raftkv/raftkv/robustness"
	"github.com/raftkv/raftkv/shardmap"
	"github.com/raftkv/raftkv/testcluster"
)

// shardTier sizes the sharded histories of one tier.
type shardTier struct {
	clients int
	rate    float64       // operations per second over all clients
	buckets int           // the deployment's bucket count
	warmup  time.Duration // workload before the first join
	hold    time.Duration // how long a stuck migration lasts, at least
	after   time.Duration // workload after the last step
	cycles  int           // join, stuck migration, leave: this many times
}

var (
	shardShortTier = shardTier{clients: 24, rate: 300, buckets: 16, warmup: time.Second, hold: 3 * time.Second, after: time.Second, cycles: 1}
	shardLongTier  = shardTier{clients: 32, rate: 400, buckets: 32, warmup: 3 * time.Second, hold: 8 * time.Second, after: 5 * time.Second, cycles: 4}
)

const (
	// settleTimeout bounds the wait for every group to take the latest
	// config and move every bucket, after a fault healed.
	settleTimeout = 45 * time.Second
	// shardGroupSize is the number of members of each shard group.
	shardGroupSize = 3
	// notReadyLogLine is in a new owner's log when the old owner refused a
	// pull because it had not applied the pull's config yet.
	notReadyLogLine = "(not_ready)"
)

// shardRun is one sharded history.
type shardRun struct {
	*run // its c is nil: the deployment is d
	tier shardTier
	d    *testcluster.Sharded
	arts *artifacts
	// control marks a negative control: the schedule stops after the first
	// stuck migration and its heal, without waiting for groups to settle,
	// which a broken build may never do.
	control bool
	// clusters are every group ever started, the config group first, with
	// their names, for the log scan.
	clusters []namedCluster
	// vh records the CAS register and transaction clients (vw), which
	// write and read through the routers beside the plain workload.
	vh *robustness.History
	vw *robustness.VersionedWorkload
	// vwatch watches vw's keys through the routers (run's watch, the
	// plain workload's).
	vwatch *robustness.WatchLog
}

// The versioned clients' keys in a sharded history: CAS register keys,
// and groups of transaction keys (each group one bucket, by its {tag}).
const (
	shardCASKeys   = 6
	shardTxnGroups = 2
)

type namedCluster struct {
	name string
	gid  uint64 // 0: the config group
	c    *testcluster.Cluster
}

// await polls cond until it returns nil, and records a violation if it
// does not within timeout; it reports whether cond came true. Waits of a
// schedule never fail the test at once, so the checkers always judge the
// history (a negative control needs their verdict): that is why it is not
// testutil.WaitFor, whose pace it keeps.
func (r *shardRun) await(what string, timeout time.Duration, cond func() error) bool {
	start := time.Now()
	for {
		err := cond()
		if err == nil {
			return true
		}
		var g giveUp
		if errors.As(err, &g) {
			r.violation("%s: %v", what, g.error)
			return false
		}
		if time.Since(start) > timeout {
			r.violation("%s: not within %v: %v", what, timeout, err)
			return false
		}
		time.Sleep(testutil.MaxPollInterval)
	}
}

// giveUp is an error of an await's condition that ends the wait at once:
// what it waits for can no longer happen.
type giveUp struct{ error }

// leaderOf waits for a leader of c other than not (0: any) that a majority
// of c's voters agree on, and returns it; 0 after a violation.
func (r *shardRun) leaderOf(name string, c *testcluster.Cluster, not int) int {
	var leader int
	r.await(fmt.Sprintf("a leader of %s other than %d", name, not), leaderTimeout, func() error {
		votes := map[uint64]int{}
		voters := 0
		for _, id := range c.Live() {
			st, err := c.Status(id)
			if err != nil {
				continue
			}
			voters = max(voters, st.Voters())
			if st.Leader != 0 && st.Leader != uint64(not) {
				votes[st.Leader]++
			}
		}
		for l, n := range votes {
			if n >= voters/2+1 && c.Running(int(l)) {
				leader = int(l)
				return nil
			}
		}
		return fmt.Errorf("votes %v of %d voters", votes, voters)
	})
	return leader
}

// startGroup starts shard group gid and keeps its logs (as group<gid>,
// or group<gid>-<n> for the nth group under that id).
func (r *shardRun) startGroup(gid uint64) *testcluster.Cluster {
	c := r.d.StartGroup(gid, shardGroupSize)
	name, n := fmt.Sprintf("group%d", gid), 0
	for _, nc := range r.clusters {
		if nc.gid == gid {
			n++
		}
	}
	if n > 0 {
		name = fmt.Sprintf("group%d-%d", gid, n+1)
	}
	r.clusters = append(r.clusters, namedCluster{name, gid, c})
	r.arts.add(name, c)
	return c
}

// settle waits until every group applied the latest config, which lists
// exactly gids, with no bucket in flight.
func (r *shardRun) settle(gids ...uint64) (testcluster.ShardConfig, bool) {
	var cfg testcluster.ShardConfig
	start := time.Now()
	ok := r.await(fmt.Sprintf("groups %v to settle", gids), settleTimeout, func() error {
		var err error
		cfg, err = r.d.Settled(gids...)
		return err
	})
	if ok {
		r.note("settled at config %d (groups %v) after %v", cfg.Version, gids, time.Since(start).Round(time.Millisecond))
	}
	return cfg, ok
}

// shardStatusWhere reports whether a live member of c has a shard section
// of which cond is true: nil, or the last error.
func shardStatusWhere(c *testcluster.Cluster, cond func(*testcluster.ShardStatus) error) error {
	err := fmt.Errorf("no live member")
	for _, id := range c.Live() {
		st, e := c.Status(id)
		switch {
		case e != nil:
			err = e
		case st.Shard == nil:
			err = fmt.Errorf("member %d reports no shard section", id)
		default:
			if err = cond(st.Shard); err == nil {
				return nil
			}
			err = fmt.Errorf("member %d: %w", id, err)
		}
	}
	return err
}

// logCount counts the lines of the logs of c's members that contain s.
func logCount(c *testcluster.Cluster, s string) int {
	n := 0
	for _, id := range c.IDs() {
		if b, err := readFile(c.LogPath(id)); err == nil {
			n += strings.Count(b, s)
		}
	}
	return n
}

// routerURLs are the URLs of the routers that run.
func (r *shardRun) routerURLs() []string {
	var urls []string
	for _, rt := range r.d.Routers() {
		if rt.Running() {
			urls = append(urls, rt.URL())
		}
	}
	return urls
}

// schedule runs the history's steps: cycles of a group joining, a stuck
// migration, and a group leaving; then a new group under the id of the
// group that left last. In every even cycle the group that joins takes
// the id of one that left before (a new group, from empty data dirs).
func (r *shardRun) schedule() {
	next := uint64(3)
	var freed []uint64 // the ids of groups that left
	for cycle := 1; cycle <= r.tier.cycles; cycle++ {
		gid := next
		if cycle%2 == 0 && len(freed) > 0 {
			gid, freed = freed[0], freed[1:]
		} else {
			next++
		}
		cfg, ok := r.join(gid)
		if !ok || !r.stuckMigration(cycle, cfg) || r.control {
			return
		}
		cfg, ok = r.settle(cfg.GIDs()...)
		if !ok {
			return
		}
		r.healed()
		gids := cfg.GIDs()
		leaver := gids[r.rng.IntN(len(gids))]
		if !r.leave(leaver, cfg) {
			return
		}
		freed = append(freed, leaver)
	}
	if len(freed) > 0 {
		r.join(freed[len(freed)-1])
	}
}

// join starts shard group gid, which joins the config by itself, and
// waits until every group settled on a config with it.
func (r *shardRun) join(gid uint64) (testcluster.ShardConfig, bool) {
	before, err := r.d.LatestConfig()
	if err != nil {
		r.violation("reading the config: %v", err)
		return before, false
	}
	again := slices.ContainsFunc(r.clusters, func(nc namedCluster) bool { return nc.gid == gid })
	if again {
		r.note("start a new group %d, under the id of a group that left; it joins the config by itself", gid)
	} else {
		r.note("start group %d; it joins the config by itself", gid)
	}
	r.startGroup(gid)
	gids := append(before.GIDs(), gid)
	slices.Sort(gids)
	cfg, ok := r.settle(gids...)
	if ok {
		r.bit("group %d joined (a new group under a reused id: %v): config %d gives it buckets %v", gid, again, cfg.Version, cfg.BucketsOf(gid))
	}
	return cfg, ok
}

// stuckMigration moves two buckets while the group that must give up the
// first one is partitioned, so that the second migration's old owner,
// which needs the first bucket, cannot take the second migration's config
// and its new owner's pulls are refused (not_ready): kill -9 of the config
// group's leader just after both moves, and of the first bucket's new
// owner's leader while it pulls (or its isolation, every second cycle),
// then heal. It reports whether every step could be taken.
func (r *shardRun) stuckMigration(cycle int, cfg testcluster.ShardConfig) bool {
	gids := cfg.GIDs()
	perm := r.rng.Perm(len(gids))
	src, puller, taker := gids[perm[0]], gids[perm[1]], gids[perm[2]]
	gs, ga, gb := r.d.Group(src), r.d.Group(puller), r.d.Group(taker)
	x := r.pickBucket(cfg.BucketsOf(src))
	y := r.pickBucket(cfg.BucketsOf(puller))
	// The buckets this migration moves get clients of their own until it
	// heals: the plain workload has one or two keys in a bucket, which see
	// a handful of operations while the migration is stuck.
	defer r.focus(cycle, x)()
	defer r.focus(cycle, y)()

	r.note("partition group %d: every member cut off from the others", src)
	gs.SetLinks(func(int, int) bool { return true })

	va, err := r.d.Move(x, puller)
	if err != nil {
		r.violation("move bucket %d to group %d: %v", x, puller, err)
		return false
	}
	r.note("config %d moves bucket %d from the partitioned group %d to group %d", va.Version, x, src, puller)
	if !r.await(fmt.Sprintf("group %d to pull bucket %d at config %d", puller, x, va.Version), settleTimeout, func() error {
		return shardStatusWhere(ga, func(s *testcluster.ShardStatus) error {
			if s.ConfigVersion != va.Version || !slices.Contains(s.Buckets.Pulling, x) {
				return fmt.Errorf("config %d, buckets %+v", s.ConfigVersion, s.Buckets)
			}
			return nil
		})
	}) {
		return false
	}
	r.bit("group %d pulls bucket %d at config %d from the partitioned group %d", puller, x, va.Version, src)

	notReady := logCount(gb, notReadyLogLine)
	vb, err := r.d.Move(y, taker)
	if err != nil {
		r.violation("move bucket %d to group %d: %v", y, taker, err)
		return false
	}
	r.note("config %d moves bucket %d from group %d, which is still pulling, to group %d", vb.Version, y, puller, taker)

	cl := r.leaderOf("the config group", r.d.Config, 0)
	if cl == 0 {
		return false
	}
	r.note("kill -9 the config group's leader %d", cl)
	r.d.Config.Kill(cl)
	if nl := r.leaderOf("the config group", r.d.Config, cl); nl != 0 {
		r.bit("config group leader %d killed with buckets %d and %d in flight; new leader %d", cl, x, y, nl)
	}

	if r.await(fmt.Sprintf("group %d to wait for bucket %d at config %d", taker, y, vb.Version), settleTimeout, func() error {
		return shardStatusWhere(gb, func(s *testcluster.ShardStatus) error {
			if s.ConfigVersion == vb.Version && (slices.Contains(s.Buckets.Serving, y) || slices.Contains(s.Buckets.GCing, y)) {
				// Its old owner cannot have frozen it: it is stuck at va.
				return giveUp{fmt.Errorf("group %d serves bucket %d at config %d while its old owner, group %d, cannot have applied that config: buckets %+v",
					taker, y, vb.Version, puller, s.Buckets)}
			}
			if s.ConfigVersion != vb.Version || !slices.Contains(s.Buckets.Pulling, y) {
				return fmt.Errorf("config %d, buckets %+v", s.ConfigVersion, s.Buckets)
			}
			return nil
		})
	}) {
		r.bit("group %d pulls bucket %d at config %d from group %d, which is at config %d", taker, y, vb.Version, puller, va.Version)
	}

	al := r.leaderOf(fmt.Sprintf("group %d", puller), ga, 0)
	if al == 0 {
		return false
	}
	isolate := cycle%2 == 0
	if isolate {
		r.note("isolate group %d's leader %d while it pulls bucket %d", puller, al, x)
		ga.Isolate(al)
	} else {
		r.note("kill -9 group %d's leader %d while it pulls bucket %d", puller, al, x)
		ga.Kill(al)
	}
	if nl := r.leaderOf(fmt.Sprintf("group %d", puller), ga, al); nl != 0 {
		r.bit("group %d's leader %d lost while pulling bucket %d; new leader %d", puller, al, x, nl)
	}

	routers := r.d.Routers()
	rt := routers[r.rng.IntN(len(routers))]
	r.note("kill -9 router %s", rt.URL())
	rt.Kill()
	r.hold(r.tier.hold / 2)
	r.note("restart router %s", rt.URL())
	rt.Restart()
	r.hold(r.tier.hold / 2)

	if n := logCount(gb, notReadyLogLine); n > notReady {
		r.bit("group %d's pulls of bucket %d refused %d times (not_ready) while group %d was at config %d", taker, y, n-notReady, puller, va.Version)
	}
	r.note("restart config member %d", cl)
	r.d.Config.Restart(cl)
	if isolate {
		r.note("heal group %d", puller)
		ga.Heal()
	} else {
		r.note("restart group %d member %d", puller, al)
		ga.Restart(al)
	}
	r.note("heal group %d", src)
	gs.Heal()
	return true
}

// leave has group gid leave the config, waits for its buckets to move,
// checks that it holds no key, and stops it.
func (r *shardRun) leave(gid uint64, cfg testcluster.ShardConfig) bool {
	rest := slices.DeleteFunc(cfg.GIDs(), func(g uint64) bool { return g == gid })
	r.note("group %d leaves", gid)
	if _, err := r.d.Leave(gid); err != nil {
		r.violation("leave %d: %v", gid, err)
		return false
	}
	cfg, ok := r.settle(rest...)
	if !ok {
		return false
	}
	g := r.d.Group(gid)
	for _, id := range g.Live() {
		dg, err := g.Digest(id)
		if err != nil || dg.Keys != 0 {
			r.violation("group %d member %d after leaving: %+v %v, want no keys", gid, id, dg, err)
			return false
		}
	}
	r.bit("group %d left: config %d gives its buckets to %v; it holds no keys", gid, cfg.Version, rest)
	r.note("stop group %d", gid)
	r.d.StopGroup(gid)
	return true
}

// healed checks that a write through a router succeeds within
// healWriteTimeout.
func (r *shardRun) healed() {
	start := time.Now()
	key := fmt.Sprintf("rk/probe/%d", r.rng.Uint32())
	for i := 0; time.Since(start) < healWriteTimeout; i++ {
		urls := r.routerURLs()
		if len(urls) == 0 {
			time.Sleep(25 * time.Millisecond)
			continue
		}
		op := r.cl.Do(r.h, robustness.Op{
			Client: r.h.NewClient(),
			Node:   urls[r.rng.IntN(len(urls))],
			Input:  robustness.Input{Op: robustness.OpPut, Key: key, Value: fmt.Sprintf("probe.%d", i)},
		})
		if op.Output.Result == robustness.ResultOK && time.Since(start) <= healWriteTimeout {
			r.note("first write after settling succeeded after %v (%d attempts)", time.Since(start).Round(time.Millisecond), i+1)
			return
		}
		if op.Status == 0 || op.Status == http.StatusServiceUnavailable {
			time.Sleep(25 * time.Millisecond)
		}
	}
	r.violation("no write succeeded within %v of settling", healWriteTimeout)
}

func readFile(path string) (string, error) {
	b, err := os.ReadFile(path)
	return string(b), err
}

// pickBucket picks one of buckets, one that holds keys of the workload's
// linearizability family, CAS register keys or transaction keys if there
// is one, so that a migration moves keys the clients read and write.
func (r *shardRun) pickBucket(buckets []int) int {
	var keys []string
	for i := range robustness.DefaultKeys {
		keys = append(keys, r.w.LinKey(i))
	}
	for i := range shardCASKeys {
		keys = append(keys, r.vw.CASKey(i))
	}
	for g := range shardTxnGroups {
		keys = append(keys, robustness.TxnKey(r.vw.TxnGroup(g), 0))
	}
	var busy []int
	for _, b := range buckets {
		for _, k := range keys {
			if shardmap.BucketOf(k, r.d.Buckets()) == b {
				busy = append(busy, b)
				break
			}
		}
	}
	if len(busy) > 0 {
		buckets = busy
	}
	return buckets[r.rng.IntN(len(buckets))]
}

// focus starts a workload of its own (focusClients clients, focusKeys
// keys) on bucket b, through the routers, recording into the run's
// history: every key's {tag} hashes to b. It returns the function that
// stops it.
func (r *shardRun) focus(cycle, b int) (stop func()) {
	var tag string
	for i := 0; tag == ""; i++ {
		if t := fmt.Sprintf("f%d", i); shardmap.BucketOf("{"+t+"}", r.d.Buckets()) == b {
			tag = t
		}
	}
	prefix := fmt.Sprintf("{%s}/c%d/", tag, cycle)
	w, err := robustness.NewWorkload(robustness.Config{
		Targets:        r.routerURLs,
		Clients:        focusClients,
		Keys:           focusKeys,
		KeyPrefix:      prefix,
		Seed:           r.rng.Uint64(),
		RequestTimeout: requestTimeout,
		Rate:           r.tier.rate / 4,
		Client:         r.cl,
	}, r.h)
	if err != nil {
		r.violation("a workload on bucket %d: %v", b, err)
		return func() {}
	}
	r.note("bucket %d: %d more clients on %d keys %s*", b, focusClients, focusKeys, prefix)
	return runInBackground(w.Run)
}

// The workload focus starts on each bucket a stuck migration moves.
const (
	focusClients = 4
	focusKeys    = 16
)

// startShardRun starts a deployment of groups 1 and 2 and two routers,
// and a workload through the routers, and returns the run and a function
// that stops the workload. The members of the default build run their
// own hash checks; those of a negative control's build (binary) do not,
// so the control runs as its catch rate was measured.
func startShardRun(t *testing.T, tr shardTier, seed uint64, binary string) (*shardRun, func()) {
	arts := keepOnFailure(t) // before the deployment: its cleanup runs after theirs
	var extra []string
	if binary == "" {
		extra = daemonHashChecks
	}
	d := testcluster.StartSharded(t, testcluster.ShardedOptions{
		Buckets:        tr.buckets,
		RequestTimeout: daemonTimeout,
		Binary:         binary,
		Proxied:        true,
		ExtraArgs:      extra,
	})
	cl := robustness.NewClient(requestTimeout)
	t.Cleanup(cl.Close)
	r := &shardRun{
		run: &run{t: t, h: robustness.NewHistory(), cl: cl, dir: arts.path,
			rng: rand.New(rand.NewPCG(seed, 0x5eed))},
		tier: tr, d: d, arts: arts,
	}
	r.clusters = append(r.clusters, namedCluster{"config", 0, d.Config})
	arts.add("config", d.Config)
	for gid := uint64(1); gid <= 2; gid++ {
		r.startGroup(gid)
	}
	for range 2 {
		rt := d.StartRouter()
		arts.addFile(fmt.Sprintf("router%d.log", len(d.Routers())), rt.LogPath())
	}
	if _, ok := r.settle(1, 2); !ok {
		t.Fatalf("the deployment did not start: %v", r.mu.extra)
	}
	for _, rt := range d.Routers() {
		rt.WaitReady(t, leaderTimeout)
	}
	w, err := robustness.NewWorkload(robustness.Config{
		Targets:        r.routerURLs,
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
	// CAS register and transaction clients through the routers too,
	// their own history.
	r.vh = r.h.Sibling()
	vw, err := robustness.NewVersionedWorkload(robustness.VersionedConfig{
		Targets:        r.routerURLs,
		CASClients:     4,
		TxnClients:     3,
		CASKeys:        shardCASKeys,
		TxnGroups:      shardTxnGroups,
		Seed:           seed,
		RequestTimeout: requestTimeout,
		Rate:           tr.rate / 5,
		Client:         cl,
	}, r.vh)
	if err != nil {
		t.Fatal(err)
	}
	r.vw = vw
	// Watches of both workloads' keys through the routers, merging the
	// groups' streams across every bucket move and router restart.
	if r.watch, err = robustness.StartRouterWatch(r.routerURLs(), robustness.DefaultKeyPrefix); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.watch.Stop() })
	if r.vwatch, err = robustness.StartRouterWatch(r.routerURLs(), vw.KeyPrefix()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.vwatch.Stop() })
	stopPlain, stopCAS := runInBackground(w.Run), runInBackground(vw.Run)
	stop := func() {
		stopPlain()
		stopCAS()
	}
	t.Cleanup(stop)
	return r, stop
}

// groupURLs are the client URLs of every raft group's members: the
// config group's, then each shard group's.
func (r *shardRun) groupURLs() [][]string {
	urls := func(c *testcluster.Cluster) []string {
		var out []string
		for _, id := range c.IDs() {
			out = append(out, c.ClientURL(id))
		}
		return out
	}
	out := [][]string{urls(r.d.Config)}
	for _, gid := range r.d.GIDs() {
		if g := r.d.Group(gid); g != nil {
			out = append(out, urls(g))
		}
	}
	return out
}

// runShardHistory runs one sharded history and every check.
func runShardHistory(t *testing.T, tr shardTier, seed uint64) {
	r, stop := startShardRun(t, tr, seed, "")
	var rd rangeDeleteStats
	stopRanges := runInBackground(func(ctx context.Context) { r.rangeDeletes(ctx, &rd) })
	t.Cleanup(stopRanges)
	hashes := robustness.StartHashChecks(r.cl, r.groupURLs, hashCheckInterval, seed)
	t.Cleanup(func() { hashes.Stop() })
	r.hold(tr.warmup)
	r.note("schedule: start")
	r.schedule()
	r.note("schedule: end")
	r.hold(tr.after)
	stop()
	stopRanges()
	hr := hashes.Stop()
	hr.AddMemberChecks(r.cl, slices.Concat(r.groupURLs()...))
	r.hashes = &hr
	r.clearRangeKeys()
	t.Logf("range deletes through the routers: %s", &rd)
	if rd.checked.Load() == 0 {
		r.violation("no range delete was checked")
	}
	rep := r.check(fmt.Sprintf("sharded/seed=%d", seed), r.h.Now())
	if !rep.OK() {
		for _, v := range rep.Violations() {
			t.Error(v)
		}
	}
}

// check runs every checker on r's history: linearizability of the history
// through the routers, durability of the write-once keys read through
// every router, each group's members converged, every key held by exactly
// one group, and the logs.
func (r *shardRun) check(name string, workload time.Duration) robustness.Report {
	t := r.t
	ops, vops := r.h.Ops(), r.vh.Ops()
	rep := robustness.Report{Name: name, Workload: workload, Stats: robustness.Summarize(ops), Hashes: r.hashes}
	for _, gid := range r.d.GIDs() {
		g := r.d.Group(gid)
		var urls []string
		for _, id := range g.Live() {
			urls = append(urls, g.ClientURL(id))
		}
		conv := robustness.CheckConvergence(r.cl, urls, convergeTimeout)
		t.Logf("group %d: convergence: %s", gid, conv)
		if !conv.OK() {
			rep.Extra = append(rep.Extra, fmt.Sprintf("group %d: convergence: %s", gid, conv))
		}
	}
	routers := r.routerURLs()
	dur := robustness.CheckDurability(r.cl, routers, ops, r.w.NeverWritten(2), durabilityWait)
	rep.Durability = &dur
	rep.Lin = robustness.CheckLinearizable(ops, r.h.Notes(), checkTimeout, filepath.Join(r.dir, "history.html"))
	if rep.Lin.Err != nil {
		t.Error(rep.Lin.Err)
	}
	// The CAS register keys and the transactions, ordered by real time
	// and their versions.
	cas := robustness.CheckCASAcrossGroups(vops, r.h.Notes(), checkTimeout, filepath.Join(r.dir, "cas.html"))
	txn := robustness.CheckTxnAcrossGroups(vops, r.h.Notes(), checkTimeout, filepath.Join(r.dir, "txn.html"))
	t.Logf("versioned clients: %s; CAS register model: %s; transaction model: %s", versionedStats(vops), cas, txn)
	above := 0
	for _, op := range vops {
		if o := op.Output; o.Result == robustness.ResultOK && o.Mod > o.Index && o.Index != 0 {
			above++
		}
	}
	t.Logf("versioned clients: %d writes answered a version above their raft index (keys that came from a group with a longer log)", above)
	for _, m := range []struct {
		name string
		res  robustness.LinResult
	}{{"CAS register", cas}, {"transaction", txn}} {
		if m.res.Err != nil {
			t.Error(m.res.Err)
		}
		if !m.res.OK() {
			rep.Extra = append(rep.Extra, m.name+" model: "+m.res.String())
		}
	}
	if !cas.OK() || !txn.OK() {
		writeHistory(t, filepath.Join(r.dir, "versioned-history.json"), vops, r.h.Notes())
	}
	for _, op := range vops {
		if op.Input.Op != robustness.OpGet && op.Status >= 400 && op.Status < 500 && op.Status != 412 {
			rep.Extra = append(rep.Extra, fmt.Sprintf("a valid %s refused: %d %s", op.Input.Op, op.Status, op.Err))
			break
		}
	}
	if v := r.placement(slices.Concat(ops, vops), routers); v != "" {
		rep.Extra = append(rep.Extra, v)
	}
	// After the placement check, which counts the keys the groups hold:
	// the watch's end markers are keys of their own.
	if markers, err := r.watchMarkers(robustness.DefaultKeyPrefix); err != nil {
		rep.Extra = append(rep.Extra, "watch: "+err.Error())
	} else {
		wr := robustness.CheckRoutedWatch(r.watch, r.cl, routers, ops, markers, watchWait)
		rep.Watch = &wr
		keepWatch(t, r.dir, "watch", r.watch, wr)
	}
	if markers, err := r.watchMarkers(r.vw.KeyPrefix()); err != nil {
		rep.Extra = append(rep.Extra, "versioned clients' watch: "+err.Error())
	} else {
		wr := robustness.CheckRoutedWatch(r.vwatch, r.cl, routers, vops, markers, watchWait)
		t.Logf("versioned clients' watch: %s", wr)
		keepWatch(t, r.dir, "versioned-watch", r.vwatch, wr)
		if !wr.OK() {
			rep.Extra = append(rep.Extra, "versioned clients' watch: "+wr.String())
		}
	}
	for _, nc := range r.clusters {
		for _, id := range nc.c.IDs() {
			hits, err := robustness.ScanLog(nc.c.LogPath(id), 5)
			if err != nil {
				t.Errorf("%s node %d log: %v", nc.name, id, err)
			}
			for _, h := range hits {
				rep.Extra = append(rep.Extra, fmt.Sprintf("%s node %d log: %s", nc.name, id, h))
			}
		}
	}
	for i, rt := range r.d.Routers() {
		hits, _ := robustness.ScanLog(rt.LogPath(), 5)
		for _, h := range hits {
			rep.Extra = append(rep.Extra, fmt.Sprintf("router %d log: %s", i+1, h))
		}
	}
	r.mu.Lock()
	bits, extra := r.mu.bits, r.mu.extra
	r.mu.Unlock()
	rep.Extra = append(rep.Extra, extra...)
	if len(bits) == 0 {
		rep.Extra = append(rep.Extra, "the faults left no evidence that they bit")
	}
	logReport(t, rep, dur, ops, r.h.Notes(), r.dir)
	return rep
}

// watchMarkers are keys of prefix, one in each group that serves buckets
// in the latest config, for CheckRoutedWatch.
func (r *shardRun) watchMarkers(prefix string) ([]string, error) {
	cfg, err := r.d.LatestConfig()
	if err != nil {
		return nil, err
	}
	var markers []string
	for _, gid := range cfg.GIDs() {
		if len(cfg.BucketsOf(gid)) == 0 {
			continue
		}
		for i := 0; ; i++ {
			k := fmt.Sprintf("%swatch-end/%d", prefix, i)
			if cfg.Buckets[shardmap.BucketOf(k, len(cfg.Buckets))] == gid {
				markers = append(markers, k)
				break
			}
		}
	}
	return markers, nil
}

// placement reads every key the histories wrote through the routers and
// compares the number present with the keys the groups hold (GET
// /debug/state of one member of each): a key held by two groups, or by a
// group that cannot serve it, makes them differ. It returns a violation,
// or "".
func (r *shardRun) placement(ops []robustness.Op, routers []string) string {
	if len(routers) == 0 {
		return "no router to read through"
	}
	keys := map[string]bool{}
	for _, op := range ops {
		switch op.Input.Op {
		case robustness.OpPut, robustness.OpPutIfMatch, robustness.OpPutIfAbsent:
			keys[op.Input.Key] = true
		case robustness.OpTxn:
			for _, o := range slices.Concat(op.Input.Txn.Success, op.Input.Txn.Failure) {
				if o.Op == robustness.OpPut {
					keys[o.Key] = true
				}
			}
		}
	}
	present := 0
	deadline := time.Now().Add(durabilityWait)
	for k := range keys {
		for {
			_, ok, err := r.cl.Read(routers[r.rng.IntN(len(routers))], k)
			if err == nil {
				if ok {
					present++
				}
				break
			}
			if time.Now().After(deadline) {
				return fmt.Sprintf("placement: reading %s: %v", k, err)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	held := 0
	var per []string
	for _, gid := range r.d.GIDs() {
		g := r.d.Group(gid)
		live := g.Live()
		if len(live) == 0 {
			return fmt.Sprintf("placement: group %d has no live member", gid)
		}
		dg, err := g.Digest(live[0])
		if err != nil {
			return fmt.Sprintf("placement: group %d: %v", gid, err)
		}
		held += dg.Keys
		per = append(per, fmt.Sprintf("group %d: %d", gid, dg.Keys))
	}
	r.note("placement: %d of %d keys written are present; the groups hold %s", present, len(keys), strings.Join(per, ", "))
	if held != present {
		return fmt.Sprintf("placement: the groups hold %d keys (%s), %d are readable through the routers: a key is held by more than one group, or where it cannot be read",
			held, strings.Join(per, ", "), present)
	}
	return ""
}

// TestShardedMigrations is the short tier's sharded history: groups 1 and
// 2 start, group 3 joins, a stuck migration with its faults (see
// stuckMigration), a group leaves, and a new group joins under its id;
// every operation through the routers.
func TestShardedMigrations(t *testing.T) {
	startsProcesses(t)
	runShardHistory(t, shardShortTier, 1)
}

// TestNegativeControlBrokenFence: with a daemon built with -tags
// raftkv_broken_fence (the old owner exports a bucket whatever config it
// applied and deletes it whatever its state, and writes skip the bucket
// fence at apply), the sharded history's stuck migration lets the new
// owner take the bucket while the old owner still serves it, and then
// wipe the old owner's copy: the same checkers must find it.
func TestNegativeControlBrokenFence(t *testing.T) {
	startsProcesses(t)
	brokenFenceCaught(t, shardShortTier, 1, 1)
}

// brokenFenceCaught runs the broken-fence control on tier tr with seed,
// then seed+step, and so on, until one history is caught, for at most
// brokenFenceTries histories; it fails the test when none is.
//
// Whether the broken build misbehaves in one history depends on timing:
// under load the new owner may still be pulling the bucket when the
// schedule heals, or the old owner's leader is killed before a client
// reaches it, and then there is nothing to find (design.md, "What the
// tests check"). Each history runs in a subtest, so that its deployment
// is stopped before the next starts.
func brokenFenceCaught(t *testing.T, tr shardTier, seed, step uint64) {
	for try := range uint64(brokenFenceTries) {
		s := seed + try*step
		var caught bool
		var why string
		t.Run(fmt.Sprintf("seed=%d", s), func(t *testing.T) {
			caught, why = runBrokenFence(t, tr, s)
		})
		if t.Failed() {
			return
		}
		if caught {
			t.Logf("negative control: seed %d %s", s, why)
			return
		}
		t.Logf("negative control: seed %d not caught: %s", s, why)
	}
	t.Fatalf("negative control: in %d histories the checkers found nothing wrong with a daemon that does not fence bucket migrations", brokenFenceTries)
}

// brokenFenceTries is how many histories brokenFenceCaught runs at most
// until one is caught.
const brokenFenceTries = 3

// runBrokenFence runs the sharded history's schedule up to the heal of its
// first stuck migration on a raftkv_broken_fence build, and reports
// whether the linearizability or the durability check found a violation,
// and what they found.
func runBrokenFence(t *testing.T, tr shardTier, seed uint64) (caught bool, why string) {
	bin := testcluster.BuildBinaryTags(t, "raftkv_broken_fence")
	r, stop := startShardRun(t, tr, seed, bin)
	r.control = true
	r.hold(tr.warmup)
	r.schedule()
	r.hold(tr.after)
	stop()
	ops := r.h.Ops()
	lin := robustness.CheckLinearizable(ops, r.h.Notes(), checkTimeout, filepath.Join(r.dir, "history.html"))
	t.Logf("broken fence: %s; linearizability: %s", robustness.Summarize(ops), lin)
	if lin.Result == porcupine.Illegal {
		return true, fmt.Sprintf("caught by the linearizability check on %d keys, e.g. %v", len(lin.BadKeys), lin.BadKeys[:min(3, len(lin.BadKeys))])
	}
	dur := robustness.CheckDurability(r.cl, r.routerURLs(), ops, r.w.NeverWritten(2), durabilityWait)
	t.Logf("broken fence: durability: %s", dur)
	if len(dur.Lost)+len(dur.Phantom) == 0 {
		return false, fmt.Sprintf("linearizability %s, durability %s", lin, dur)
	}
	return true, fmt.Sprintf("caught by the durability check: %d lost and %d phantom writes", len(dur.Lost), len(dur.Phantom))
}

// TestLongSharded runs the sharded history of the long tier (four cycles
// of join, stuck migration and leave on 32 buckets) with
// RAFTKV_ROBUSTNESS_SEEDS seeds, then the broken-fence negative control
// from as many seeds; each must be caught within brokenFenceTries
// histories. Opt-in, with the rest
// of the long tier: RAFTKV_ROBUSTNESS_LONG=1.
func TestLongSharded(t *testing.T) {
	if os.Getenv(LongEnv) != "1" {
		t.Skipf("robustness: long tier; set %s=1 (and go test -timeout 90m)", LongEnv)
	}
	seeds := longSeeds(t)
	for _, seed := range seeds {
		t.Run(fmt.Sprintf("history/seed=%d", seed), func(t *testing.T) {
			if d, ok := t.Deadline(); ok && time.Until(d) < 5*time.Minute {
				t.Skip("robustness: too close to the test deadline; raise go test -timeout")
			}
			runShardHistory(t, shardLongTier, seed)
		})
	}
	for _, seed := range seeds {
		// A history the checkers pass is followed by seed+1000's, as in
		// the short tier: two of about forty long-tier seeds (43 and 82)
		// went uncaught alone.
		t.Run(fmt.Sprintf("broken-fence/from-seed=%d", seed), func(t *testing.T) {
			if d, ok := t.Deadline(); ok && time.Until(d) < 3*brokenFenceTries*time.Minute {
				t.Skip("robustness: too close to the test deadline; raise go test -timeout")
			}
			brokenFenceCaught(t, shardLongTier, seed, 1000)
		})
	}
}
