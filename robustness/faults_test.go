package robustness_test

import (
	"fmt"
	"maps"
	"math/rand/v2"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/raftkv/raftkv/robustness"
	"github.com/raftkv/raftkv/testcluster"
)

// Log lines and options the faults rely on.
const (
	snapshotLogLine   = "applying snapshot from leader"
	lostStreamLogLine = "lost TCP streaming connection with remote peer"
	removedLogLine    = "removed from the cluster"
	// Small snapshots so that an isolated follower falls behind the
	// compacted log within seconds.
	smallSnapshotCount   = 100
	smallSnapshotCatchUp = 20
	lossProbability      = 0.2
	pauseLength          = 3 * time.Second // past the election timeout (10 ticks of 100ms)
)

// killFollower: kill -9 a follower, restart it.
var killFollower = fault{name: "kill-follower", inject: func(r *run) {
	leader := r.leader()
	f := r.pick(r.others(leader))
	r.note("kill -9 follower %d", f)
	r.c.Kill(f)
	r.bit("follower %d killed", f)
	r.hold(r.tier.hold)
	r.note("restart %d", f)
	r.restart(f)
	r.healed()
	r.rejoined(f)
}}

// killLeader: kill -9 the leader, wait for a new one, restart the old one.
var killLeader = fault{name: "kill-leader", inject: func(r *run) {
	leader := r.leader()
	r.note("kill -9 leader %d", leader)
	r.c.Kill(leader)
	start := time.Now()
	nl := r.waitNewLeader(leader, r.others(leader))
	r.bit("leader change %d -> %d after %v", leader, nl, time.Since(start).Round(time.Millisecond))
	r.hold(r.tier.hold)
	r.note("restart %d", leader)
	r.restart(leader)
	r.rejoined(leader)
	r.healed()
}}

// killAll: kill -9 every node at once, restart them all.
var killAll = fault{name: "kill-all", inject: func(r *run) {
	live := r.c.Live()
	before := termOf(r, r.leader())
	r.note("kill -9 all of %v", live)
	// Freeze them all first, so none makes progress between the kills.
	for _, id := range live {
		r.c.Pause(id)
	}
	for _, id := range live {
		r.c.Kill(id)
	}
	r.hold(time.Second)
	r.note("restart all")
	r.restart(live...)
	r.healed()
	l := r.leader()
	r.bit("all %d nodes killed and restarted; leader %d, term %d -> %d", len(live), l, before, termOf(r, l))
	for _, id := range live {
		r.rejoined(id)
	}
}}

// pauseLeader: SIGSTOP the leader past the election timeout, then SIGCONT.
var pauseLeader = fault{name: "pause-leader", inject: func(r *run) {
	leader := r.leader()
	r.note("SIGSTOP leader %d", leader)
	r.c.Pause(leader)
	start := time.Now()
	nl := r.waitNewLeader(leader, r.others(leader))
	r.bit("leader change %d -> %d while %d was paused, after %v", leader, nl, leader, time.Since(start).Round(time.Millisecond))
	r.hold(max(pauseLength-time.Since(start), 0))
	r.note("SIGCONT %d", leader)
	r.c.Resume(leader)
	r.healed()
	r.rejoined(leader)
}}

// isolateLeader: cut every peer link of the leader while clients keep
// talking to it, then heal.
var isolateLeader = fault{name: "isolate-leader", proxied: true, inject: func(r *run) {
	leader := r.leader()
	r.note("isolate leader %d", leader)
	from := r.h.Now()
	r.c.Isolate(leader)
	start := time.Now()
	nl := r.waitNewLeader(leader, r.others(leader))
	r.bit("leader change %d -> %d in the majority after %v", leader, nl, time.Since(start).Round(time.Millisecond))
	r.hold(r.tier.hold)
	r.note("heal")
	r.c.Heal()
	until := r.h.Now()
	r.healed()
	r.rejoined(leader)
	// Evidence that clients kept talking to the isolated node; what it
	// answered is for the linearizability check to judge.
	statuses := map[int]int{}
	url := r.c.ClientURL(leader)
	for _, op := range r.h.Ops() {
		if op.Node == url && op.Call >= from && op.Call <= until {
			statuses[op.Status]++
		}
	}
	r.note("answers of the isolated node by HTTP status (0 = none): %v", statuses)
}}

// isolateFollowerSnapshot: isolate a follower until the leader compacted
// past it, heal, and see it install a snapshot.
var isolateFollowerSnapshot = fault{
	name:    "isolate-follower-snapshot",
	proxied: true,
	opts: func(o *testcluster.Options) {
		o.SnapshotCount = smallSnapshotCount
		o.SnapshotCatchUpEntries = smallSnapshotCatchUp
	},
	inject: func(r *run) {
		leader := r.leader()
		f := r.pick(r.others(leader))
		before := r.logCount(f, snapshotLogLine)
		r.note("isolate follower %d", f)
		r.c.Isolate(f)
		st, err := r.c.Status(f)
		if err != nil {
			r.t.Fatalf("status of the isolated follower: %v", err)
		}
		applied := st.AppliedIndex
		testcluster.WaitFor(r.t, 60*time.Second, "the majority to compact its log past the isolated follower", func() error {
			var errs []string
			for _, id := range r.others(f) {
				s, err := r.c.Status(id)
				if err != nil {
					errs = append(errs, err.Error())
					continue
				}
				if s.Leader == uint64(id) && s.SnapshotIndex > applied+smallSnapshotCatchUp+1 {
					r.note("leader %d snapshot index %d, isolated follower applied %d", id, s.SnapshotIndex, applied)
					return nil
				}
			}
			return fmt.Errorf("follower applied %d; errors %v", applied, errs)
		})
		r.hold(time.Second)
		r.note("heal")
		r.c.Heal()
		r.healed()
		testcluster.WaitFor(r.t, rejoinTimeout, fmt.Sprintf("node %d to log %q", f, snapshotLogLine), func() error {
			if n := r.logCount(f, snapshotLogLine); n <= before {
				return fmt.Errorf("%d times, %d before isolation", n, before)
			}
			return nil
		})
		r.bit("follower %d installed a snapshot from the leader", f)
		r.rejoined(f)
	},
}

// replaceMember: remove a follower (DELETE /<id>), wait for it to exit,
// add a new member under a new id.
var replaceMember = fault{name: "replace-member", inject: func(r *run) {
	leader := r.leader()
	victim := r.pick(r.others(leader))
	r.note("remove member %d", victim)
	removeMember(r, victim, r.others(victim))
	code, err := r.c.Wait(victim, rejoinTimeout)
	switch {
	case err != nil:
		r.t.Fatalf("removed member did not exit: %v", err)
	case code != 0:
		r.violation("removed member %d exited with status %d, want 0", victim, code)
	case r.logCount(victim, removedLogLine) == 0:
		r.violation("removed member %d did not log %q", victim, removedLogLine)
	default:
		r.bit("member %d removed and exited 0", victim)
	}
	r.hold(r.tier.hold / 2)
	id := r.c.AddNode(r.t)
	r.note("added member %d", id)
	r.healed()
	r.rejoined(id)
}}

// replaceThenIsolateLeader: replace a follower with a new member, then
// isolate the leader. The majority that elects the next leader holds the
// new member, which the others reach at the one peer URL its conf change
// carries: the isolation must cut the old leader's connections to it and
// no others' (testcluster tells them apart by their X-Server-From).
var replaceThenIsolateLeader = fault{name: "replace-then-isolate-leader", proxied: true, inject: func(r *run) {
	replaceMember.inject(r)
	isolateLeader.inject(r)
}}

// replaceTargetedMember: remove a member while clients of the fault's own
// write through it, wait for it to exit, add a new member, and again:
// r.tier.cycles times in one history, the leader every second time and a
// follower otherwise. Each of those clients writes only to the member being
// removed, to a key of its own, and reads every write back at once through
// another member; once the member exited it reads its key once more. A
// write the removed member answered 503 ("not applied") although it was
// applied then shows as a read of a value no write wrote, and porcupine
// rejects the history.
var replaceTargetedMember = fault{name: "replace-targeted-member", inject: func(r *run) {
	for cycle := 1; cycle <= r.tier.cycles; cycle++ {
		leader := r.leader()
		victim := r.pick(r.others(leader))
		if cycle%2 == 0 {
			victim = leader // its batcher holds the other members' writes
		}
		tw := startTargetedWriters(r, cycle, victim)
		// Let them write a while before the removal, and through it.
		r.hold(500 * time.Millisecond)
		r.note("remove member %d (cycle %d of %d) while %d clients write through it", victim, cycle, r.tier.cycles, targetedWriters)
		removeMember(r, victim, r.others(victim))
		code, err := r.c.Wait(victim, rejoinTimeout)
		statuses := tw.stop()
		switch {
		case err != nil:
			r.t.Fatalf("removed member did not exit: %v", err)
		case code != 0:
			r.violation("removed member %d exited with status %d, want 0", victim, code)
		default:
			r.bit("member %d removed and exited 0; its answers to the targeted writes by HTTP status (0 = none): %v", victim, statuses)
		}
		id := r.c.AddNode(r.t)
		r.note("added member %d", id)
		r.healed()
		r.rejoined(id)
	}
}}

// targetedWriters is the number of clients that write through the member
// replace-targeted-member removes.
const targetedWriters = 8

// targetedWrites are the clients of one cycle of replace-targeted-member.
type targetedWrites struct {
	r      *run
	victim int
	keys   []string
	stopc  chan struct{}
	wg     sync.WaitGroup

	mu struct {
		sync.Mutex
		statuses map[int]int // the victim's answers to the writes, by HTTP status
	}
}

// startTargetedWriters starts targetedWriters clients that put unique
// values to keys of their own through victim alone, each write followed by
// a read of its key through another live member.
func startTargetedWriters(r *run, cycle, victim int) *targetedWrites {
	tw := &targetedWrites{r: r, victim: victim, stopc: make(chan struct{})}
	tw.mu.statuses = map[int]int{}
	for c := range targetedWriters {
		key := fmt.Sprintf("rk/targeted/%d/%d", cycle, c)
		tw.keys = append(tw.keys, key)
		rng := rand.New(rand.NewPCG(uint64(cycle), uint64(c)))
		tw.wg.Add(1)
		go func() {
			defer tw.wg.Done()
			tw.write(rng, key, fmt.Sprintf("t%d.%d", cycle, c))
		}()
	}
	return tw
}

func (tw *targetedWrites) write(rng *rand.Rand, key, prefix string) {
	client := tw.r.h.NewClient()
	url := tw.r.c.ClientURL(tw.victim)
	for seq := 1; ; seq++ {
		select {
		case <-tw.stopc:
			return
		default:
		}
		op := tw.r.cl.Do(tw.r.h, robustness.Op{Client: client, Node: url,
			Input: robustness.Input{Op: robustness.OpPut, Key: key, Value: fmt.Sprintf("%s.%d", prefix, seq)}})
		tw.mu.Lock()
		tw.mu.statuses[op.Status]++
		tw.mu.Unlock()
		if op.Output.Result == robustness.ResultUnknown {
			client = tw.r.h.NewClient() // the write is still pending
		}
		if op.Status == 0 && op.Return-op.Call < 20*time.Millisecond {
			time.Sleep(20 * time.Millisecond) // the victim is gone: do not spin
		}
		tw.read(rng, client, key)
	}
}

// read reads key as client through a random live member other than the
// victim, and reports whether it got an answer.
func (tw *targetedWrites) read(rng *rand.Rand, client int, key string) bool {
	others := tw.r.others(tw.victim)
	if len(others) == 0 {
		return false
	}
	op := tw.r.cl.Do(tw.r.h, robustness.Op{Client: client,
		Node: tw.r.c.ClientURL(others[rng.IntN(len(others))]), Input: robustness.Input{Op: robustness.OpGet, Key: key}})
	return op.Output.Result != robustness.ResultFailed
}

// stop stops the clients, reads every key once more through the remaining
// members, and returns the victim's answers by HTTP status.
func (tw *targetedWrites) stop() map[int]int {
	close(tw.stopc)
	tw.wg.Wait()
	rng := rand.New(rand.NewPCG(uint64(tw.victim), 0))
	client := tw.r.h.NewClient()
	for _, key := range tw.keys {
		deadline := time.Now().Add(healWriteTimeout)
		for !tw.read(rng, client, key) && time.Now().Before(deadline) {
			time.Sleep(25 * time.Millisecond)
		}
	}
	tw.mu.Lock()
	defer tw.mu.Unlock()
	return maps.Clone(tw.mu.statuses)
}

// removeMember sends DELETE /<victim> to the nodes in via until one
// answers 204 (or 404: an earlier attempt that timed out was applied).
func removeMember(r *run, victim int, via []int) {
	r.t.Helper()
	path := "/" + strconv.Itoa(victim)
	testcluster.WaitFor(r.t, rejoinTimeout, "DELETE "+path, func() error {
		id := r.pick(via)
		resp, err := r.c.Do(id, http.MethodDelete, path, nil)
		switch {
		case err != nil:
			return err
		case resp.Status == http.StatusNoContent, resp.Status == http.StatusNotFound:
			return nil
		}
		return fmt.Errorf("node %d: %d %s", id, resp.Status, resp.Body)
	})
}

// randomLoss: peer connections are cut at random, then healed.
var randomLoss = fault{name: "random-loss", proxied: true, inject: func(r *run) {
	live := r.c.Live()
	before := 0
	for _, id := range live {
		before += r.logCount(id, lostStreamLogLine)
	}
	r.note("loss %.0f%% per connection per 100ms on every peer link", 100*lossProbability)
	r.c.SetLoss(lossProbability)
	r.hold(r.tier.hold + 2*time.Second)
	r.note("heal")
	r.c.Heal()
	r.healed()
	after := 0
	for _, id := range live {
		after += r.logCount(id, lostStreamLogLine)
	}
	if after > before {
		r.bit("%d peer stream connections lost", after-before)
	}
	for _, id := range live {
		r.rejoined(id)
	}
}}

// singleNodeKills: a one-node cluster killed -9 and restarted repeatedly
// under load.
var singleNodeKills = fault{name: "single-node-kills", nodes: 1, inject: func(r *run) {
	const kills = 4
	for i := range kills {
		r.note("kill -9 node 1 (%d of %d)", i+1, kills)
		r.c.Kill(1)
		r.hold(200 * time.Millisecond)
		r.restart(1)
		r.healed()
		r.rejoined(1)
		r.hold(r.tier.hold / kills)
	}
}}

// termOf is node id's current term, or 0.
func termOf(r *run, id int) uint64 {
	st, err := r.c.Status(id)
	if err != nil {
		return 0
	}
	return st.Term
}

// shortFaults are the faults of the short tier, one history each.
var shortFaults = []fault{
	killFollower, killLeader, killAll, pauseLeader, isolateLeader,
	isolateFollowerSnapshot, replaceMember, replaceThenIsolateLeader, replaceTargetedMember, randomLoss, singleNodeKills,
}
