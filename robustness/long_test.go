package robustness_test

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/raftkv/raftkv/testcluster"
)

// Environment of the long tier.
const (
	// LongEnv set to 1 runs the long tier (about 45 minutes; give go test
	// -timeout 90m).
	LongEnv = "RAFTKV_ROBUSTNESS_LONG"
	// SeedsEnv is the number of seeds per fault in the long tier (default 8).
	SeedsEnv = "RAFTKV_ROBUSTNESS_SEEDS"
	// FirstSeedEnv is the first of those seeds (default 1): the next
	// run can try seeds no run before it did.
	FirstSeedEnv = "RAFTKV_ROBUSTNESS_FIRST_SEED"
)

// TestLong runs every fault with several seeds on 5 nodes, then the
// combined faults. Opt-in: RAFTKV_ROBUSTNESS_LONG=1.
func TestLong(t *testing.T) {
	if os.Getenv(LongEnv) != "1" {
		t.Skipf("robustness: long tier; set %s=1 (and go test -timeout 90m)", LongEnv)
	}
	seeds := longSeeds(t)
	faults := append(append([]fault(nil), shortFaults...), partitionLeaderKill, pauseMembership, majoritiesRing)
	for _, f := range faults {
		for _, seed := range seeds {
			t.Run(fmt.Sprintf("%s/seed=%d", f.name, seed), func(t *testing.T) {
				if d, ok := t.Deadline(); ok && time.Until(d) < 3*time.Minute {
					t.Skip("robustness: too close to the test deadline; raise go test -timeout")
				}
				if f.skip != nil {
					if reason := f.skip(); reason != "" {
						t.Skip(reason)
					}
				}
				runHistory(t, longTier, f, seed)
			})
		}
	}
	t.Run("disk-full", func(t *testing.T) {
		if reason := tmpfsUnavailable(); reason != "" {
			t.Skip(reason)
		}
		runHistory(t, longTier, diskFull, 1)
	})
}

// longSeeds is the seeds of each history of the long tier: SeedsEnv of
// them (8 by default), from FirstSeedEnv (1 by default) on.
func longSeeds(t *testing.T) []uint64 {
	n, first := positiveEnv(t, SeedsEnv, 8), positiveEnv(t, FirstSeedEnv, 1)
	seeds := make([]uint64, n)
	for i := range seeds {
		seeds[i] = uint64(first + i)
	}
	return seeds
}

// positiveEnv is the positive integer in the environment variable name,
// or def when it is unset.
func positiveEnv(t *testing.T, name string, def int) int {
	s := os.Getenv(name)
	if s == "" {
		return def
	}
	v, err := strconv.Atoi(s)
	if err != nil || v < 1 {
		t.Fatalf("%s=%q: want a positive integer", name, s)
	}
	return v
}

// partitionLeaderKill: partition the leader into a minority, kill the
// majority's new leader (no side has a quorum), heal, restart it.
var partitionLeaderKill = fault{name: "partition-leader-kill", proxied: true, inject: func(r *run) {
	leader := r.leader()
	minority := []int{leader, r.pick(r.others(leader))}
	majority := r.others(minority...)
	r.note("partition %v | %v", minority, majority)
	r.c.Partition(minority, majority)
	nl := r.waitNewLeader(leader, majority)
	r.bit("leader change %d -> %d in the majority", leader, nl)
	r.hold(r.tier.hold / 2)
	r.note("kill -9 the majority's leader %d", nl)
	r.c.Kill(nl)
	r.hold(2 * time.Second)
	r.note("heal")
	r.c.Heal()
	nl2 := r.waitNewLeader(nl, r.others(nl))
	r.bit("leader %d elected after healing", nl2)
	r.healed()
	r.note("restart %d", nl)
	r.c.Restart(nl)
	r.rejoined(nl)
	r.rejoined(leader)
}}

// pauseMembership: pause a follower, replace another member meanwhile,
// resume the paused one.
var pauseMembership = fault{name: "pause-membership", inject: func(r *run) {
	leader := r.leader()
	paused := r.pick(r.others(leader))
	r.note("SIGSTOP follower %d", paused)
	r.c.Pause(paused)
	victim := r.pick(r.others(leader, paused))
	r.note("remove member %d", victim)
	removeMember(r, victim, r.others(victim, paused))
	if code, err := r.c.Wait(victim, rejoinTimeout); err != nil || code != 0 {
		r.violation("removed member %d: exit status %d, %v; want status 0", victim, code, err)
	} else {
		r.bit("member %d removed and exited 0 while %d was paused", victim, paused)
	}
	id := r.c.AddNode(r.t)
	r.note("added member %d", id)
	r.hold(r.tier.hold / 2)
	r.note("SIGCONT %d", paused)
	r.c.Resume(paused)
	r.healed()
	r.rejoined(id)
	r.rejoined(paused)
}}

// linkCutter is a cluster that can cut any set of links; Partition cannot
// express a non-transitive ring.
type linkCutter interface {
	SetLinks(cut func(a, b int) bool)
}

// majoritiesRing: every node sees itself and its two ring neighbours, a
// majority, but no two see the same majority.
var majoritiesRing = fault{
	name:    "majorities-ring",
	proxied: true,
	skip: func() string {
		if _, ok := any(&testcluster.Cluster{}).(linkCutter); !ok {
			return "robustness: testcluster has no link-level SetLinks(func(a, b int) bool); Partition cannot express a ring"
		}
		return ""
	},
	inject: func(r *run) {
		lc := any(r.c).(linkCutter)
		n := len(r.c.IDs())
		adjacent := func(a, b int) bool { d := (a - b + n) % n; return d == 1 || d == n-1 }
		leader := r.leader()
		before := termOf(r, leader)
		r.note("majorities ring over %d nodes", n)
		lc.SetLinks(func(a, b int) bool { return !adjacent(a, b) })
		seen := map[string]bool{}
		deadline := time.Now().Add(r.tier.hold)
		for time.Now().Before(deadline) {
			view := ""
			for _, id := range r.c.Live() {
				if st, err := r.c.Status(id); err == nil {
					view += fmt.Sprintf("%d:%d@%d ", id, st.Leader, st.Term)
				}
			}
			seen[view] = true
			time.Sleep(200 * time.Millisecond)
		}
		r.note("heal")
		r.c.Heal()
		r.healed()
		if after := termOf(r, r.leader()); after > before || len(seen) > 1 {
			r.bit("ring views of leader@term: %d distinct, term %d -> %d", len(seen), before, after)
		}
		for _, id := range r.c.Live() {
			r.rejoined(id)
		}
	},
}

// diskFull: a follower's data dir moves to a small tmpfs that is then
// filled; it must stop or cope without losing acknowledged writes, and
// rejoin once space is back.
var diskFull = fault{
	name: "disk-full",
	opts: func(o *testcluster.Options) {
		o.SnapshotCount = smallSnapshotCount
		o.SnapshotCatchUpEntries = smallSnapshotCatchUp
	},
	inject: func(r *run) {
		leader := r.leader()
		f := r.pick(r.others(leader))
		data := r.c.DataDir(f)
		onDisk := data + ".ondisk"
		r.note("kill -9 %d to move its data dir to a tmpfs", f)
		r.c.Kill(f)
		size, err := treeSize(data)
		if err != nil {
			r.t.Fatal(err)
		}
		if err := os.Rename(data, onDisk); err != nil {
			r.t.Fatal(err)
		}
		if err := os.Mkdir(data, 0o755); err != nil {
			r.t.Fatal(err)
		}
		mountSize := size + 4<<20
		if out, err := exec.Command("mount", "-t", "tmpfs", "-o", fmt.Sprintf("size=%d", mountSize), "tmpfs", data).CombinedOutput(); err != nil {
			r.t.Fatalf("mount tmpfs: %v: %s", err, out)
		}
		mounted := true
		unmount := func() {
			if mounted {
				mounted = false
				if out, err := exec.Command("umount", "-l", data).CombinedOutput(); err != nil {
					r.t.Errorf("umount %s: %v: %s", data, err, out)
				}
			}
		}
		defer unmount()
		if err := copyTree(onDisk, data); err != nil {
			r.t.Fatal(err)
		}
		r.c.Restart(f)
		r.rejoined(f)
		filler := filepath.Join(data, "filler")
		n, err := fill(filler)
		r.note("filled the tmpfs of %d with %d bytes: %v", f, n, err)

		// Writes go on; the member runs out of space at its next snapshot.
		testcluster.WaitFor(r.t, 60*time.Second, fmt.Sprintf("node %d to hit ENOSPC", f), func() error {
			if !r.c.Running(f) || r.logCount(f, "no space left on device") > 0 {
				return nil
			}
			return errors.New("no ENOSPC yet")
		})
		// A member that cannot write stops through its fatal path; give it
		// time to, and accept one that copes and keeps running.
		if code, err := r.c.Wait(f, 10*time.Second); err == nil {
			r.bit("node %d stopped on a full disk with status %d", f, code)
		} else {
			r.bit("node %d logged ENOSPC and kept running", f)
			r.c.Kill(f)
		}
		os.Remove(filler)
		back := data + ".back"
		if err := copyTree(data, back); err != nil {
			r.t.Fatal(err)
		}
		unmount()
		if err := os.Remove(data); err != nil {
			r.t.Fatal(err)
		}
		if err := os.Rename(back, data); err != nil {
			r.t.Fatal(err)
		}
		os.RemoveAll(onDisk)
		r.note("restart %d with space", f)
		r.restart(f)
		r.healed()
		r.rejoined(f)
	},
}

// tmpfsUnavailable says why a tmpfs cannot be mounted here, or "".
func tmpfsUnavailable() string {
	if os.Geteuid() != 0 {
		return "robustness: disk-full needs root to mount a tmpfs"
	}
	dir, err := os.MkdirTemp("", "raftkv-tmpfs-probe-")
	if err != nil {
		return err.Error()
	}
	defer os.Remove(dir)
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", dir).CombinedOutput(); err != nil {
		return fmt.Sprintf("robustness: disk-full: mount -t tmpfs failed: %v: %s", err, out)
	}
	exec.Command("umount", dir).Run()
	return ""
}

// treeSize is the total size of the regular files under dir.
func treeSize(dir string) (int64, error) {
	var n int64
	err := filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		info, err := d.Info()
		if err == nil {
			n += info.Size()
		}
		return err
	})
	return n, err
}

// fill writes zeros to path until the file system is full.
func fill(path string) (int64, error) {
	f, err := os.Create(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	buf := make([]byte, 64<<10)
	var n int64
	for {
		m, err := f.Write(buf)
		n += int64(m)
		if err != nil {
			if errors.Is(err, syscall.ENOSPC) {
				return n, nil
			}
			return n, err
		}
	}
}
