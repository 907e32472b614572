package client

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/raftkv/raftkv/shardmap"
	"github.com/raftkv/raftkv/testcluster"
)

// TestClusterQueryWithoutLeader: with two of a real config group's three
// members gone (no leader can be elected), a Client that never saw its
// configs still reads the published versions at the member left, since
// a config never changes once published; the latest config cannot be
// read that way, and is not.
func TestClusterQueryWithoutLeader(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("starts real raftkv processes")
	}
	s := testcluster.StartSharded(t, testcluster.ShardedOptions{Buckets: 4})
	admin := newTestClient(t, Config{ConfigEndpoints: s.ConfigURLs(), RequestTimeout: 20 * time.Second})
	ctx := context.Background()
	var want []shardmap.Config
	for gid := uint64(1); gid <= 2; gid++ {
		cfg, err := admin.Join(ctx, map[uint64][]string{gid: {fmt.Sprintf("http://127.0.0.1:%d", gid)}})
		if err != nil {
			t.Fatal(err)
		}
		want = append(want, cfg)
	}
	cfg, err := admin.Move(ctx, 0, 2)
	if err != nil {
		t.Fatal(err)
	}
	want = append(want, cfg)
	s.Config.WaitConverged(t, 20*time.Second)
	ids := s.Config.IDs()
	s.Config.Kill(ids[0])
	s.Config.Kill(ids[1])

	c := newTestClient(t, Config{ConfigEndpoints: s.ConfigURLs(), RequestTimeout: 5 * time.Second})
	for _, w := range want {
		qctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		q, err := c.Query(qctx, int64(w.Version))
		cancel()
		if err != nil || q.Version != w.Version || fmt.Sprint(q.Buckets) != fmt.Sprint(w.Buckets) {
			t.Fatalf("Query(%d) without a leader = version %d, buckets %v, %v; want buckets %v",
				w.Version, q.Version, q.Buckets, err, w.Buckets)
		}
	}
	if got, ok := c.CachedConfig(); !ok || got.Version != want[len(want)-1].Version {
		t.Fatalf("cached config %+v, %v; want version %d", got, ok, want[len(want)-1].Version)
	}
	// A version past the member's latest, and the latest itself, need
	// the leader.
	for _, v := range []int64{-1, int64(cfg.Version) + 1} {
		qctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		q, err := c.Query(qctx, v)
		cancel()
		if err == nil || !errors.Is(err, ErrUnavailable) && !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Query(%d) without a leader = version %d, %v; want unavailable", v, q.Version, err)
		}
	}
}
