package kvstore

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/raftkv/raftkv/internal/testutil"
	"github.com/raftkv/raftkv/raftnode"
	"github.com/raftkv/raftkv/shardmap"
	"go.uber.org/zap/zaptest"
)

func configOp(client string, seq uint64, op ConfigOp) request {
	return request{ClientID: client, Seq: seq, Ctl: &control{Kind: ctlConfigOp, Op: op.wire()}}
}

// TestConfigOpsApply runs config operations through the apply path of a
// config group member: each valid one appends shardmap's next config; an
// invalid one is refused with shardmap's reason and appends nothing; a
// retry of an applied one is answered with the version it produced.
func TestConfigOpsApply(t *testing.T) {
	s := bareStore(zaptest.NewLogger(t), Config{ConfigGroup: true, Buckets: 6})
	a, b := []string{"http://a"}, []string{"http://b"}
	steps := []struct {
		name        string
		req         request
		wantVersion uint64 // 0: refused
		wantReason  string
		wantDup     bool
	}{
		{"join 1", configOp("admin", 1, ConfigOp{Join: map[uint64][]string{1: a}}), 1, "", false},
		{"join 2", configOp("admin", 2, ConfigOp{Join: map[uint64][]string{2: b}}), 2, "", false},
		{"retry of join 1", configOp("admin", 1, ConfigOp{Join: map[uint64][]string{1: a}}), 1, "", true},
		{"move to a group not in the config", configOp("admin", 3, ConfigOp{Move: &MoveOp{Bucket: 0, GID: 7}}), 0, "group 7 is not in config 2", false},
		{"move out of range", configOp("admin", 3, ConfigOp{Move: &MoveOp{Bucket: 6, GID: 1}}), 0, "bucket 6 is not in 0-5", false},
		{"move", configOp("admin", 3, ConfigOp{Move: &MoveOp{Bucket: 5, GID: 1}}), 3, "", false},
		{"leave of an unknown group", configOp("", 0, ConfigOp{Leave: []uint64{9}}), 0, "group 9 is not in config 3", false},
		{"join of group 0", configOp("", 0, ConfigOp{Join: map[uint64][]string{0: a}}), 0, "group id 0 means nobody; use 1 or more", false},
		{"two operations", configOp("", 0, ConfigOp{Leave: []uint64{1}, Move: &MoveOp{}}), 0, "a config operation is exactly one of join, leave and move", false},
		{"no operation", configOp("", 0, ConfigOp{}), 0, "a config operation is exactly one of join, leave and move", false},
		{"leave 2", configOp("other", 1, ConfigOp{Leave: []uint64{2}}), 4, "", false},
		{"the last group cannot leave", configOp("other", 2, ConfigOp{Leave: []uint64{1}}), 0, "the last group cannot leave; its keys would have nowhere to go", false},
		{"retry of the move", configOp("admin", 3, ConfigOp{Move: &MoveOp{Bucket: 5, GID: 1}}), 3, "", true},
	}
	latest := uint64(0)
	for i, st := range steps {
		r := applyOwn(t, s, uint64(i+1), st.req)
		h := s.ConfigHistory()
		if st.wantVersion == 0 {
			var bad interface{ BadRequest() bool }
			var human interface{ HumanMessage() string }
			if !errors.As(r.err, &bad) || !bad.BadRequest() || !errors.As(r.err, &human) || human.HumanMessage() != st.wantReason {
				t.Fatalf("%s: %v, want a bad request saying %q", st.name, r.err, st.wantReason)
			}
			if h.Latest().Version != latest {
				t.Fatalf("%s: a refused operation appended config %d", st.name, h.Latest().Version)
			}
			continue
		}
		if r.err != nil || r.version != st.wantVersion || r.dup != st.wantDup {
			t.Fatalf("%s: %+v, want version %d (duplicate %v)", st.name, r, st.wantVersion, st.wantDup)
		}
		if !st.wantDup {
			latest = st.wantVersion
		}
		if h.Latest().Version != latest || len(h.Configs) != int(latest)+1 {
			t.Fatalf("%s: history ends at %d with %d configs, want %d", st.name, h.Latest().Version, len(h.Configs), latest)
		}
	}
	if err := applyOwn(t, s, 100, put("", 0, "k", "v")).err; !errors.Is(err, ErrNoKeys) {
		t.Fatalf("a key write applied to a config group member: %v", err)
	}
	want := s.ConfigHistory()
	r := bareStore(zaptest.NewLogger(t), s.cfg)
	restoreFrom(t, r, snapshotOf(t, s), s.AppliedIndex())
	if got := r.ConfigHistory(); !reflect.DeepEqual(got, want) {
		t.Fatalf("restored history %+v, want %+v", got, want)
	}
	if d, dr := digestOf(s), digestOf(r); d != dr {
		t.Fatalf("restored digest %+v, want %+v", dr, d)
	}
	if got := applyOwn(t, r, 101, configOp("admin", 3, ConfigOp{Move: &MoveOp{Bucket: 5, GID: 1}})); !got.dup || got.version != 3 {
		t.Fatalf("retry after restore: %+v, want a duplicate producing version 3", got)
	}
}

// TestClusterConfigGroup runs a config group of three real members: its
// operations go through raft from any member, a retry with the same
// client seq gives the same config, queries see every version, a long
// poll wakes when the version it waits for appears, and keys are refused.
func TestClusterConfigGroup(t *testing.T) {
	c := newInprocClusterWith(t, 3, raftnode.Config{TickInterval: 50 * time.Millisecond, SnapshotCount: 4, SnapshotCatchUpEntries: 2},
		Config{ConfigGroup: true, Buckets: 10})
	f := c.follower()
	op := func(i int, o ConfigOp, seq uint64) (shardmap.Config, error) {
		var cfg shardmap.Config
		err := retrying(t, "config op", func(ctx context.Context) (err error) {
			cfg, err = c.stors[i].ConfigOp(ctx, o, WriteOptions{ClientID: "admin", Seq: seq})
			return err
		})
		return cfg, err
	}

	// A long poll for version 2 wakes when the second join applies.
	var wg sync.WaitGroup
	woke := make(chan error, 1)
	wg.Add(1)
	go func() {
		defer wg.Done()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		woke <- c.stors[f].WaitConfigVersion(ctx, 2)
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	if err := c.stors[f].WaitConfigVersion(ctx, 1); !errors.Is(err, ErrConfigWaitTimeout) || status(err) != 504 {
		t.Fatalf("long poll past its deadline: %v", err)
	}
	cancel()

	c1, err := op(f, ConfigOp{Join: map[uint64][]string{1: {"http://g1a", "http://g1b"}}}, 1)
	if err != nil || c1.Version != 1 || !allServedBy(c1.Buckets, 1) {
		t.Fatalf("join 1: %+v, %v", c1, err)
	}
	select {
	case err := <-woke:
		t.Fatalf("the long poll for version 2 returned at version 1: %v", err)
	default:
	}
	lead := c.waitLeader()
	c2, err := op(lead, ConfigOp{Join: map[uint64][]string{2: {"http://g2"}}}, 2)
	if err != nil || c2.Version != 2 || len(c2.BucketsOf(2)) != 5 {
		t.Fatalf("join 2: %+v, %v", c2, err)
	}
	select {
	case err := <-woke:
		if err != nil {
			t.Fatalf("long poll: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the long poll did not wake when version 2 appeared")
	}
	wg.Wait()

	again, err := op((f+1)%3, ConfigOp{Join: map[uint64][]string{1: {"http://g1a", "http://g1b"}}}, 1)
	if err != nil || !reflect.DeepEqual(again, c1) {
		t.Fatalf("retry of join 1 through another member: %+v, %v; want config 1 again", again, err)
	}
	_, err = op(f, ConfigOp{Move: &MoveOp{Bucket: 3, GID: 9}}, 3)
	var human interface{ HumanMessage() string }
	if !errors.Is(err, shardmap.ErrInvalid) || status400(err) != 400 || !errors.As(err, &human) || !strings.Contains(human.HumanMessage(), "group 9") {
		t.Fatalf("move to an unknown group: %v", err)
	}
	c3, err := op(f, ConfigOp{Move: &MoveOp{Bucket: 3, GID: 2}}, 3)
	if err != nil || c3.Version != 3 || c3.Owner(3) != 2 {
		t.Fatalf("move: %+v, %v", c3, err)
	}
	c4, err := op(lead, ConfigOp{Leave: []uint64{2}}, 4)
	if err != nil || c4.Version != 4 || !allServedBy(c4.Buckets, 1) {
		t.Fatalf("leave: %+v, %v", c4, err)
	}

	for i := range c.stors {
		for v, want := range map[int64]shardmap.Config{0: c.stors[i].ConfigHistory().Configs[0], 1: c1, 2: c2, 3: c3, 4: c4, -1: c4, 99: c4} {
			got, err := c.stors[i].QueryConfig(context.Background(), v, ReadOptions{})
			if err != nil || !reflect.DeepEqual(got, want) {
				t.Fatalf("member %d, query %d: %+v, %v; want %+v", i+1, v, got, err, want)
			}
		}
		if got, err := c.stors[i].QueryConfig(context.Background(), -1, ReadOptions{Stale: true}); err != nil || got.Version != 4 {
			t.Fatalf("member %d, stale query: %+v, %v", i+1, got, err)
		}
		if _, err := c.stors[i].Put(context.Background(), "k", []byte("v")); !errors.Is(err, ErrNoKeys) || status400(err) != 400 {
			t.Fatalf("member %d took a key: %v", i+1, err)
		}
		if _, err := c.stors[i].Get(context.Background(), "k", ReadOptions{}); !errors.Is(err, ErrNoKeys) {
			t.Fatalf("member %d read a key: %v", i+1, err)
		}
	}

	// A member restarted from its snapshot and WAL has every config.
	c.stop(f)
	c.start(f, false)
	testutil.WaitFor(t, 15*time.Second, "the restarted member to have every config", func() error {
		got, err := c.stors[f].QueryConfig(context.Background(), -1, ReadOptions{})
		if err != nil || got.Version != 4 || len(c.stors[f].ConfigHistory().Configs) != 5 {
			return fmt.Errorf("latest %+v, %v", got, err)
		}
		return nil
	})
}

// allServedBy reports whether every bucket is served by gid.
func allServedBy(buckets []uint64, gid uint64) bool {
	for _, g := range buckets {
		if g != gid {
			return false
		}
	}
	return len(buckets) > 0
}

// status400 is 400 for an error a client gets as a bad request.
func status400(err error) int {
	var b interface{ BadRequest() bool }
	if errors.As(err, &b) && b.BadRequest() {
		return 400
	}
	return status(err)
}
