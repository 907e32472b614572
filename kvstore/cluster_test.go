package kvstore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/raftkv/raftkv/internal/testutil"
	"github.com/raftkv/raftkv/raftnode"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"
)

// inprocCluster runs raftnode+kvstore members in this process, talking
// over real rafthttp on loopback, with real WAL and snapshot files.
type inprocCluster struct {
	t     *testing.T
	peers []string
	dirs  []string
	nodes []*raftnode.Node
	stors []*Store
	regs  []*prometheus.Registry // each member's raftnode metrics
	cfg   raftnode.Config
	store Config // each member's store; zero RetryInterval means 300ms
}

func newInprocCluster(t *testing.T, n int, cfg raftnode.Config) *inprocCluster {
	return newInprocClusterWith(t, n, cfg, Config{})
}

// newInprocClusterWith is newInprocCluster whose members' stores take
// store (Logger aside).
func newInprocClusterWith(t *testing.T, n int, cfg raftnode.Config, store Config) *inprocCluster {
	if store.RetryInterval == 0 {
		store.RetryInterval = 300 * time.Millisecond
	}
	c := &inprocCluster{t: t, cfg: cfg, store: store}
	for i := 0; i < n; i++ {
		c.peers = append(c.peers, fmt.Sprintf("http://127.0.0.1:%d", testutil.FreePorts(t, 1)[0]))
		c.dirs = append(c.dirs, filepath.Join(t.TempDir(), fmt.Sprintf("node-%d", i+1)))
	}
	c.nodes = make([]*raftnode.Node, n)
	c.stors = make([]*Store, n)
	c.regs = make([]*prometheus.Registry, n)
	for i := 0; i < n; i++ {
		c.start(i, false)
	}
	t.Cleanup(func() {
		for i := range c.nodes {
			c.stop(i)
		}
	})
	return c
}

func (c *inprocCluster) start(i int, join bool) {
	c.t.Helper()
	c.open(i, join)
	if err := c.nodes[i].Start(c.stors[i].Snapshot); err != nil {
		c.t.Fatal(err)
	}
}

// open makes member i's node and store, replaying its data dir, and
// starts neither: the caller calls c.nodes[i].Start.
func (c *inprocCluster) open(i int, join bool) {
	c.t.Helper()
	cfg := c.cfg
	cfg.ID, cfg.Peers, cfg.DataDir, cfg.Join = uint64(i+1), c.peers, c.dirs[i], join
	// Info and above: a failing test's own message must not drown in
	// rafthttp's debug lines (CI shows only part of the output).
	cfg.Logger = zaptest.NewLogger(c.t, zaptest.Level(zap.InfoLevel)).Named(fmt.Sprintf("n%d", i+1))
	c.regs[i] = prometheus.NewRegistry()
	cfg.Registerer = c.regs[i]
	node, err := raftnode.New(cfg)
	if err != nil {
		c.t.Fatal(err)
	}
	scfg := c.store
	scfg.Logger = cfg.Logger
	store, err := New(scfg, node)
	if err != nil {
		c.t.Fatal(err)
	}
	c.nodes[i], c.stors[i] = node, store
}

func (c *inprocCluster) stop(i int) {
	if c.nodes[i] == nil {
		return
	}
	c.stors[i].Stop()
	c.nodes[i].Stop()
	<-c.stors[i].Done()
	c.nodes[i], c.stors[i] = nil, nil
}

// stopAll stops every member, as the cluster's cleanup does; a test that
// runs its scenario again on a new cluster stops the old one first.
func (c *inprocCluster) stopAll() {
	for i := range c.nodes {
		c.stop(i)
	}
}

// leaderChangeAttempts bounds how often a test that needs one leader
// throughout runs its scenario on a new cluster after a leader change,
// which the short ticks of these tests allow on a loaded machine.
const leaderChangeAttempts = 3

// addMember grows the cluster by one member that joins through member via.
func (c *inprocCluster) addMember(via int) int {
	c.t.Helper()
	i := len(c.peers)
	c.peers = append(c.peers, fmt.Sprintf("http://127.0.0.1:%d", testutil.FreePorts(c.t, 1)[0]))
	c.dirs = append(c.dirs, filepath.Join(c.t.TempDir(), fmt.Sprintf("node-%d", i+1)))
	c.nodes = append(c.nodes, nil)
	c.stors = append(c.stors, nil)
	c.regs = append(c.regs, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.nodes[via].AddMember(ctx, uint64(i+1), c.peers[i]); err != nil {
		c.t.Fatalf("add member %d: %v", i+1, err)
	}
	c.start(i, true)
	return i
}

// waitLeader returns the index of the leader all live members agree on.
func (c *inprocCluster) waitLeader() int {
	c.t.Helper()
	leader := -1
	testutil.WaitFor(c.t, 15*time.Second, "a leader all live members agree on", func() error {
		lead, agree := uint64(0), true
		views := map[int]uint64{} // member (1-based) -> the leader it knows
		for i, n := range c.nodes {
			if n == nil {
				continue
			}
			l := n.Leader()
			views[i+1] = l
			if lead == 0 {
				lead = l
			} else if l != lead {
				agree = false
			}
		}
		if lead != 0 && agree && c.nodes[lead-1] != nil {
			leader = int(lead - 1)
			return nil
		}
		return fmt.Errorf("leaders known (member: leader): %v", views)
	})
	return leader
}

func (c *inprocCluster) follower() int {
	lead := c.waitLeader()
	for i, n := range c.nodes {
		if n != nil && i != lead {
			return i
		}
	}
	c.t.Fatal("no live follower")
	return -1
}

// put writes through member i and returns the write's index, retrying
// while the cluster answers "no leader" (503 to a client): on a loaded
// machine the short test ticks can let an election start at any time.
func (c *inprocCluster) put(i int, key string, value []byte) (index uint64) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for {
		index, err := c.stors[i].Put(ctx, key, value)
		var u interface{ Unavailable() bool }
		switch {
		case err == nil:
			return index
		case errors.As(err, &u) && u.Unavailable() && ctx.Err() == nil:
			time.Sleep(20 * time.Millisecond)
		default:
			c.t.Fatalf("put %q on member %d: %v", key, i+1, err)
		}
	}
}

// waitValue polls a linearizable read on member i until it returns want.
func (c *inprocCluster) waitValue(i int, key string, want []byte) {
	c.t.Helper()
	testutil.WaitFor(c.t, 15*time.Second, fmt.Sprintf("member %d to read %q = %q", i+1, key, want), func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		got, err := c.stors[i].Get(ctx, key, ReadOptions{})
		cancel()
		if err != nil || !bytes.Equal(got, want) {
			return fmt.Errorf("%q, %v", got, err)
		}
		return nil
	})
}

func TestClusterWriteOnFollowerReadEverywhere(t *testing.T) {
	c := newInprocCluster(t, 3, raftnode.Config{TickInterval: 50 * time.Millisecond})
	f := c.follower()
	c.put(f, "k", []byte("v"))
	// The write was applied on f before Put returned.
	if v, err := c.stors[f].Get(context.Background(), "k", ReadOptions{Stale: true}); err != nil || string(v) != "v" {
		t.Fatalf("stale read on the writing follower: %q, %v", v, err)
	}
	for i := range c.nodes {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		v, err := c.stors[i].Get(ctx, "k", ReadOptions{})
		cancel()
		if err != nil || string(v) != "v" {
			t.Fatalf("linearizable read on member %d: %q, %v", i+1, v, err)
		}
	}
	if _, err := c.stors[f].Get(context.Background(), "absent", ReadOptions{}); !errors.Is(err, ErrNotFound) {
		t.Fatalf("absent key: %v", err)
	}
}

func TestClusterLeaderStopAndRestart(t *testing.T) {
	c := newInprocCluster(t, 3, raftnode.Config{TickInterval: 50 * time.Millisecond, SnapshotCount: 20, SnapshotCatchUpEntries: 5})
	lead := c.waitLeader()
	for i := 0; i < 10; i++ {
		c.put(lead, fmt.Sprintf("before-%d", i), []byte{byte(i), 0, 0xff})
	}
	c.stop(lead)
	f := c.follower()
	for i := 0; i < 50; i++ { // enough to snapshot and compact past the stopped member
		c.put(f, fmt.Sprintf("after-%d", i), []byte{byte(i)})
	}
	c.start(lead, false)
	c.waitValue(lead, "after-49", []byte{49})
	c.waitValue(lead, "before-3", []byte{3, 0, 0xff})
}

// A write a follower forwarded to a leader that then stopped is proposed
// again as soon as the follower learns of the new leader, not after the
// store's RetryInterval (an hour here), and is applied once.
func TestWriteProposedAgainWhenLeaderChanges(t *testing.T) {
	c := newInprocClusterWith(t, 3, raftnode.Config{TickInterval: 50 * time.Millisecond}, Config{RetryInterval: time.Hour})
	lead := c.waitLeader()
	c.put(lead, "warm", []byte("w"))
	f := (lead + 1) % 3
	// The follower still takes the stopped member for its leader until
	// an election timeout passes, so the write goes to it and is lost.
	c.stop(lead)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	index, err := c.stors[f].Put(ctx, "k", []byte("v"))
	if err != nil {
		t.Fatalf("put on member %d across the change: %v", f+1, err)
	}
	for _, i := range []int{f, (lead + 2) % 3} {
		c.waitValue(i, "k", []byte("v"))
		kv, _, err := c.stors[i].GetKV(ctx, "k", ReadOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if kv.CreateIndex != index || kv.ModIndex != index {
			t.Errorf("member %d: k created at %d, modified at %d; the write applied at %d", i+1, kv.CreateIndex, kv.ModIndex, index)
		}
	}
}

// TestRestartedMemberWritesAtTheClusterLevel: a member that restarts
// knows the cluster level only once it has replayed its log. Writes it
// takes before that wait for the level: written in the older entry
// format, two writes of one key at one raft index got one version, and
// the first writer's If-Match held against the second one's value. The
// writes here reach the member before its raft node starts; a daemon's
// client port opens just after, while the log replays.
func TestRestartedMemberWritesAtTheClusterLevel(t *testing.T) {
	c := newInprocCluster(t, 3, raftnode.Config{TickInterval: 50 * time.Millisecond, Level: LevelUniqueVersions})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	// A daemon's leader logs the level (see package daemon); here the
	// test does, so that the restarted member replays it.
	if err := c.nodes[c.waitLeader()].ProposeClusterLevel(ctx, LevelUniqueVersions); err != nil {
		t.Fatal(err)
	}
	f := c.follower()
	testutil.WaitFor(t, 10*time.Second, "the follower to apply the logged level", func() error {
		if !c.nodes[f].ClusterLevelLogged() {
			return errors.New("not applied yet")
		}
		return nil
	})
	c.put(f, "k", []byte("0"))
	c.stop(f)
	c.open(f, false)
	s := c.stors[f]
	type outcome struct {
		value string
		res   Result
		err   error
	}
	outc := make(chan outcome, 3)
	put := func(key, value string) {
		go func() {
			for {
				// "No leader" (a loaded machine may take longer than the
				// wait for one) means not applied: sent again.
				r, err := s.Write(ctx, []Op{putOp(key, value)}, WriteOptions{})
				var u interface{ Unavailable() bool }
				if errors.As(err, &u) && u.Unavailable() && ctx.Err() == nil {
					time.Sleep(20 * time.Millisecond)
					continue
				}
				outc <- outcome{value, r, err}
				return
			}
		}()
	}
	// held: n writes of key are handed to raft already, or all the
	// writes made (made of them) wait for the level.
	held := func(key string, n, made int) func() error {
		return func() error {
			handed := 0
			s.pmu.Lock()
			for _, p := range s.pmu.pending {
				if p.handed && p.req.Ops[0].Key == key {
					handed++
				}
			}
			s.pmu.Unlock()
			if waiting := int(s.levelWaiting.Load()); handed < n && waiting < made {
				return fmt.Errorf("%d writes of %q handed to raft, %d writes wait for the level", handed, key, waiting)
			}
			return nil
		}
	}
	put("other", "x")
	testutil.WaitFor(t, 5*time.Second, "the first write to be proposed or held", held("other", 1, 1))
	put("k", "A")
	put("k", "B")
	testutil.WaitFor(t, 5*time.Second, "the two writes of k to be proposed together or held", held("k", 2, 3))
	if err := c.nodes[f].Start(s.Snapshot); err != nil {
		t.Fatal(err)
	}
	got := map[string]Result{}
	for range 3 {
		o := <-outc
		if o.err != nil {
			t.Fatalf("put %s: %v", o.value, o.err)
		}
		got[o.value] = o.res
	}
	a, b := got["A"], got["B"]
	kv, _ := getKV(t, s, "k")
	if a.ModIndex == b.ModIndex {
		t.Fatalf("both writes of k were answered version %d (at indexes %d and %d); k holds %q", a.ModIndex, a.Index, b.Index, kv.Value)
	}
	if want := got[string(kv.Value)].ModIndex; kv.ModIndex != want {
		t.Fatalf("k holds %q at version %d; its writer was answered %d", kv.Value, kv.ModIndex, want)
	}
}

func TestClusterNewMemberCatchesUpBySnapshot(t *testing.T) {
	c := newInprocCluster(t, 3, raftnode.Config{TickInterval: 50 * time.Millisecond, SnapshotCount: 10, SnapshotCatchUpEntries: 2})
	lead := c.waitLeader()
	// 40 values of 8 KiB: the snapshot is far over rafthttp's 64 KiB
	// message limit, so it must travel as a streamed snapshot body.
	big := bytes.Repeat([]byte{0xab}, 8<<10)
	for i := 0; i < 40; i++ {
		c.put(lead, fmt.Sprintf("big%d", i), big)
		c.put(lead, fmt.Sprintf("k%d", i), []byte(fmt.Sprint(i)))
	}
	if st := c.nodes[lead].Status(); st.SnapshotIndex == 0 {
		t.Fatalf("leader took no snapshot: %+v", st)
	}
	n := c.addMember(lead)
	c.waitValue(n, "k39", []byte("39"))
	c.waitValue(n, "k0", []byte("0"))
	c.waitValue(n, "big7", big)
	if got := len(c.nodes[n].Members()); got != 4 {
		t.Fatalf("new member sees %d members, want 4", got)
	}
	// The new member also takes writes.
	c.put(n, "from-new", []byte("x"))
	c.waitValue(lead, "from-new", []byte("x"))
}

func TestClusterMembershipErrors(t *testing.T) {
	c := newInprocCluster(t, 3, raftnode.Config{TickInterval: 50 * time.Millisecond})
	lead := c.waitLeader()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := c.nodes[lead].AddMember(ctx, 2, "http://127.0.0.1:1"); !errors.Is(err, raftnode.ErrMemberExists) {
		t.Fatalf("add existing id: %v", err)
	}
	if err := c.nodes[lead].RemoveMember(ctx, 9); !errors.Is(err, raftnode.ErrMemberNotFound) {
		t.Fatalf("remove unknown id: %v", err)
	}
	victim := (lead + 1) % 3
	if err := c.nodes[lead].RemoveMember(ctx, uint64(victim+1)); err != nil {
		t.Fatalf("remove member %d: %v", victim+1, err)
	}
	select {
	case <-c.nodes[victim].Done():
		if err := c.nodes[victim].Err(); !errors.Is(err, raftnode.ErrRemoved) {
			t.Fatalf("removed member stopped with %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("removed member did not stop")
	}
	c.stop(victim)
	if err := c.nodes[lead].AddMember(ctx, uint64(victim+1), "http://127.0.0.1:1"); !errors.Is(err, raftnode.ErrMemberRemoved) {
		t.Fatalf("re-adding a removed id: %v", err)
	}
	c.put(c.waitLeader(), "still", []byte("works"))
}

// TestClusterMembershipChangesBackToBack: a membership change sent the
// moment the previous one was answered is applied too. raft silently drops
// a conf change proposed while the last one is unapplied in its view (it
// becomes an empty entry), so an answer given before raft counts the last
// change applied loses the next one, which then times out.
func TestClusterMembershipChangesBackToBack(t *testing.T) {
	c := newInprocCluster(t, 3, raftnode.Config{TickInterval: 50 * time.Millisecond})
	lead := c.waitLeader()
	for i := range 40 {
		id := uint64(10 + i) // never started: 3 of 4 voters are a quorum
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		if err := c.nodes[lead].AddMember(ctx, id, "http://127.0.0.1:1"); err != nil {
			cancel()
			t.Fatalf("change %d: add member %d: %v", 2*i, id, err)
		}
		if err := c.nodes[lead].RemoveMember(ctx, id); err != nil {
			cancel()
			t.Fatalf("change %d: remove member %d: %v", 2*i+1, id, err)
		}
		cancel()
	}
}

// putRetrying writes as a client would: each try has 5s, and a 503 (an
// election on a loaded machine) is tried again for up to 30s.
func putRetrying(s *Store, key string, value []byte) error {
	deadline := time.Now().Add(30 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_, err := s.Put(ctx, key, value)
		cancel()
		var u interface{ Unavailable() bool }
		if !errors.As(err, &u) || !u.Unavailable() || time.Now().After(deadline) {
			return err
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestClusterConcurrentWritesThroughFollower: many writers through one
// follower all get answered, none times out, and every write is applied.
func TestClusterConcurrentWritesThroughFollower(t *testing.T) {
	c := newInprocCluster(t, 3, raftnode.Config{TickInterval: 50 * time.Millisecond})
	f := c.follower()
	const writers, perWriter = 64, 40
	errc := make(chan error, writers)
	for w := 0; w < writers; w++ {
		go func() {
			for i := 0; i < perWriter; i++ {
				if err := putRetrying(c.stors[f], fmt.Sprintf("w%d-%d", w, i), []byte{byte(i)}); err != nil {
					errc <- fmt.Errorf("writer %d, write %d: %w", w, i, err)
					return
				}
			}
			errc <- nil
		}()
	}
	for w := 0; w < writers; w++ {
		if err := <-errc; err != nil {
			t.Fatal(err)
		}
	}
	lead := c.waitLeader()
	for w := 0; w < writers; w++ {
		c.waitValue(lead, fmt.Sprintf("w%d-%d", w, perWriter-1), []byte{perWriter - 1})
	}
	if n := c.stors[lead].Len(); n != writers*perWriter {
		t.Fatalf("leader holds %d keys, want %d", n, writers*perWriter)
	}
	// With the follower's entries in flight bounded, the writes queued
	// meanwhile share the next entry.
	entries, reqs := proposedEntries(t, c.stors[f])
	t.Logf("follower proposed %d writes in %d entries", int(reqs), entries)
	if float64(entries) >= reqs/2 {
		t.Errorf("%d entries for %d writes: writes were not grouped", entries, int(reqs))
	}
}

// TestClusterLeaderMergesProposals: writers on every member at once all
// get answered and applied everywhere, and the leader carried the entries
// of several members in one raft entry.
func TestClusterLeaderMergesProposals(t *testing.T) {
	testutil.Retry(t, leaderChangeAttempts, "merging on the leader", func(int) error { return leaderMergesProposals(t) })
}

// leaderMergesProposals is one attempt of TestClusterLeaderMergesProposals
// on a new cluster. It returns an error if the leader changed during it.
func leaderMergesProposals(t *testing.T) error {
	c := newInprocCluster(t, 3, raftnode.Config{TickInterval: 50 * time.Millisecond})
	defer c.stopAll()
	lead := c.waitLeader()
	const perMember, perWriter = 16, 30
	errc := make(chan error, 3*perMember)
	for m := range c.nodes {
		for w := 0; w < perMember; w++ {
			go func() {
				for i := 0; i < perWriter; i++ {
					if err := putRetrying(c.stors[m], fmt.Sprintf("m%d-w%d-%d", m, w, i), []byte{byte(m), byte(w), byte(i)}); err != nil {
						errc <- fmt.Errorf("member %d writer %d, write %d: %w", m+1, w, i, err)
						return
					}
				}
				errc <- nil
			}()
		}
	}
	for range 3 * perMember {
		if err := <-errc; err != nil {
			t.Fatal(err)
		}
	}
	for i := range c.nodes {
		c.waitValue(i, fmt.Sprintf("m2-w%d-%d", perMember-1, perWriter-1), []byte{2, perMember - 1, perWriter - 1})
		if n := c.stors[i].Len(); n != 3*perMember*perWriter {
			t.Fatalf("member %d holds %d keys, want %d", i+1, n, 3*perMember*perWriter)
		}
	}
	if l := c.waitLeader(); l != lead {
		return fmt.Errorf("leader changed from %d to %d during the load; merging is counted per leader", lead+1, l+1)
	}
	entries, payloads := histogram(t, c.regs[lead], "raftkv_raft_entry_payloads")
	t.Logf("leader proposed %d payloads in %d entries", int(payloads), entries)
	if entries == 0 || float64(entries) >= payloads {
		t.Errorf("%d entries for %d payloads: the leader merged none", entries, int(payloads))
	}
	return nil
}

// TestClusterLeaderWritesJoinTheGatheringEntry: writes arriving on the
// leader while its batcher waits for its next entry to fill all go into
// that entry. The leader's proposals used to wait for raft's answer, which
// its batcher gives only once it proposes, so all but the first waited in
// the store for the entry after.
func TestClusterLeaderWritesJoinTheGatheringEntry(t *testing.T) {
	testutil.Retry(t, leaderChangeAttempts, "writes joining the gathering entry", func(int) error {
		return leaderWritesJoinTheGatheringEntry(t)
	})
}

// leaderWritesJoinTheGatheringEntry is one attempt of
// TestClusterLeaderWritesJoinTheGatheringEntry on a new cluster. It returns
// an error if the leader changed during it.
func leaderWritesJoinTheGatheringEntry(t *testing.T) error {
	c := newInprocCluster(t, 3, raftnode.Config{TickInterval: 50 * time.Millisecond, BatchGatherWait: 200 * time.Millisecond})
	defer c.stopAll()
	lead := c.waitLeader()
	// A large entry first: the next one waits for most of its bytes, so
	// it waits the whole BatchGatherWait (below the store's RetryInterval
	// of 300ms, so nothing is proposed twice) for the small writes below.
	if err := putRetrying(c.stors[lead], "large", make([]byte, 32<<10)); err != nil {
		t.Fatal(err)
	}
	const writers = 8
	type answer struct {
		index uint64
		err   error
	}
	answers := make(chan answer, writers)
	write := func(w int) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		index, err := c.stors[lead].Put(ctx, fmt.Sprintf("w%d", w), []byte{byte(w)})
		answers <- answer{index, err}
	}
	// The first write alone, until the store has proposed it; then the
	// others, while the batcher holds it.
	before, _ := proposedEntries(t, c.stors[lead])
	go write(0)
	testutil.WaitFor(t, 5*time.Second, "the first write to be proposed", func() error {
		if n, _ := proposedEntries(t, c.stors[lead]); n == before {
			return fmt.Errorf("%d entries proposed, as before it", n)
		}
		return nil
	})
	for w := 1; w < writers; w++ {
		go write(w)
	}
	indexes := map[uint64]int{}
	for range writers {
		a := <-answers
		if a.err != nil {
			t.Fatal(a.err)
		}
		indexes[a.index]++
	}
	if l := c.waitLeader(); l != lead {
		return fmt.Errorf("leader changed from %d to %d; the test needs one leader throughout", lead+1, l+1)
	}
	if len(indexes) != 1 {
		t.Errorf("%d concurrent writes on the leader were applied at raft indexes %v (index: writes), want one entry", writers, indexes)
	}
	return nil
}

// proposedEntries reads how many entries s has proposed and how many
// writes they carried (its entry_requests histogram).
func proposedEntries(t *testing.T, s *Store) (entries uint64, writes float64) {
	t.Helper()
	m := &dto.Metric{}
	if err := s.met.batchRequests.Write(m); err != nil {
		t.Fatal(err)
	}
	return m.GetHistogram().GetSampleCount(), m.GetHistogram().GetSampleSum()
}

// histogram reads the sample count and sum of the named histogram.
func histogram(t *testing.T, reg *prometheus.Registry, name string) (uint64, float64) {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			h := mf.GetMetric()[0].GetHistogram()
			return h.GetSampleCount(), h.GetSampleSum()
		}
	}
	t.Fatalf("no metric %s", name)
	return 0, 0
}

// TestClusterDiskUseStaysBounded: under a steady write load, old snapshot
// files and their data files are purged down to MaxSnapshotFiles.
func TestClusterDiskUseStaysBounded(t *testing.T) {
	c := newInprocCluster(t, 3, raftnode.Config{
		TickInterval: 50 * time.Millisecond, SnapshotCount: 5, SnapshotCatchUpEntries: 2,
		MaxSnapshotFiles: 2, PurgeInterval: 50 * time.Millisecond,
	})
	lead := c.waitLeader()
	for i := 0; i < 120; i++ {
		c.put(lead, fmt.Sprintf("k%d", i%10), bytes.Repeat([]byte{byte(i)}, 1024))
	}
	count := func(dir, suffix string) int {
		ents, err := os.ReadDir(filepath.Join(dir, "snap"))
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, e := range ents {
			if strings.HasSuffix(e.Name(), suffix) {
				n++
			}
		}
		return n
	}
	testutil.WaitFor(t, 10*time.Second, "every member to keep 1 or 2 .snap and .snap.db files", func() error {
		for i, dir := range c.dirs {
			if snaps, data := count(dir, ".snap"), count(dir, ".snap.db"); snaps < 1 || snaps > 2 || data < 1 || data > 2 {
				return fmt.Errorf("member %d keeps %d .snap and %d .snap.db files", i+1, snaps, data)
			}
		}
		return nil
	})
	// The newest snapshot still restores: restart a member and read.
	f := c.follower()
	c.stop(f)
	c.start(f, false)
	c.waitValue(f, "k9", bytes.Repeat([]byte{119}, 1024))
}

// TestClusterSnapshotsBySize: entries carrying SnapshotBytes of data start
// a snapshot even when far fewer than SnapshotCount were applied.
func TestClusterSnapshotsBySize(t *testing.T) {
	c := newInprocCluster(t, 3, raftnode.Config{
		TickInterval: 50 * time.Millisecond, SnapshotCount: 1 << 30, SnapshotBytes: 32 << 10,
	})
	lead := c.waitLeader()
	for i := 0; i < 64; i++ {
		c.put(lead, fmt.Sprintf("k%d", i), bytes.Repeat([]byte{byte(i)}, 1024))
	}
	testutil.WaitFor(t, 10*time.Second, "every member to snapshot after 64 KiB of writes", func() error {
		for i, n := range c.nodes {
			if n.Status().SnapshotIndex == 0 {
				return fmt.Errorf("member %d took no snapshot", i+1)
			}
		}
		return nil
	})
}

// TestStopEndsTheWaitForTheLevel: a write that waits for the cluster
// level (its member's node has not started here) is answered ErrStopped,
// not applied, as soon as the store stops, not at its deadline.
func TestStopEndsTheWaitForTheLevel(t *testing.T) {
	lg := zaptest.NewLogger(t, zaptest.Level(zap.InfoLevel))
	node, err := raftnode.New(raftnode.Config{ID: 1, Peers: []string{fmt.Sprintf("http://127.0.0.1:%d", testutil.FreePorts(t, 1)[0])},
		DataDir: t.TempDir(), Level: LevelUniqueVersions, Logger: lg, Registerer: prometheus.NewRegistry()})
	if err != nil {
		t.Fatal(err)
	}
	s, err := New(Config{Logger: lg, Registerer: prometheus.NewRegistry()}, node)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { node.Stop(); <-s.Done() }()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	errc := make(chan error, 1)
	go func() {
		_, err := s.Put(ctx, "k", []byte("v"))
		errc <- err
	}()
	testutil.WaitFor(t, 10*time.Second, "the write to wait for the level", func() error {
		if s.levelWaiting.Load() != 1 {
			return errors.New("not waiting")
		}
		return nil
	})
	s.Stop()
	select {
	case err := <-errc:
		if !errors.Is(err, ErrStopped) {
			t.Fatalf("a write waiting for the level as the store stopped: %v, want ErrStopped", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("a write still waits for the level 20 s after the store stopped")
	}
}
