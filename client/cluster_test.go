package client

// Tests against real raftkv processes: a plain member serves the whole
// client API for every key, so the single-group paths of the Client need
// no stand-in.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/raftkv/raftkv/shardmap"
	"github.com/raftkv/raftkv/testcluster"
)

func TestMain(m *testing.M) { testcluster.Main(m) }

const leaderTimeout = 20 * time.Second

// startCluster starts n real members and waits for a leader.
func startCluster(t *testing.T, n int) (*testcluster.Cluster, int) {
	t.Helper()
	if testing.Short() {
		t.Skip("starts real raftkv processes")
	}
	c := testcluster.Start(t, testcluster.Options{N: n})
	return c, c.WaitLeader(t, leaderTimeout)
}

func clientURLs(c *testcluster.Cluster, ids ...int) []string {
	var urls []string
	for _, id := range ids {
		urls = append(urls, c.ClientURL(id))
	}
	return urls
}

// TestClusterKeyCalls: every key call against a real 3-member cluster,
// with keys that need escaping or the /key/ form, and the read levels.
func TestClusterKeyCalls(t *testing.T) {
	t.Parallel()
	tc, _ := startCluster(t, 3)
	c := newTestClient(t, Config{Endpoints: clientURLs(tc, 1, 2, 3), RequestTimeout: 20 * time.Second})
	ctx := context.Background()
	values := map[string][]byte{
		"plain":       []byte("v"),
		"a/b c?d%e#f": []byte("escaped"),
		"status":      []byte("reserved name"),
		"key/x":       []byte("reserved prefix"),
		"snapshot":    []byte("reserved name too"),
		// Every other name the README's Keys section reserves.
		"key":       []byte("k"),
		"join":      []byte("j"),
		"health":    []byte("h"),
		"metrics":   []byte("m"),
		"debug":     []byte("d"),
		"debug/x":   []byte("dx"),
		"ui":        []byte("u"),
		"ui/app.js": []byte("ua"),
		"bin":       {0, 0xff, '\n', 0x80},
		"empty":     {},
	}
	var last uint64
	for k, v := range values {
		index, err := c.Put(ctx, k, v)
		if err != nil {
			t.Fatalf("Put(%q): %v", k, err)
		}
		if index <= last {
			t.Fatalf("Put(%q) index %d after %d", k, index, last)
		}
		last = index
	}
	for k, v := range values {
		got, err := c.Get(ctx, k)
		if err != nil || !bytes.Equal(got, v) {
			t.Fatalf("Get(%q) = %q, %v; want %q", k, got, err, v)
		}
	}
	if got, err := c.Get(ctx, "plain", WithMinIndex(last)); err != nil || string(got) != "v" {
		t.Fatalf("Get min_index = %q, %v", got, err)
	}
	// A stale read on a member that applied the write's index.
	testcluster.WaitFor(t, 10*time.Second, "a stale read of the write", func() error {
		if got, err := c.Get(ctx, "plain", WithStale()); err != nil || string(got) != "v" {
			return fmt.Errorf("stale Get = %q, %v", got, err)
		}
		return nil
	})
	// A level the options cannot say, to see a member's 400 come back.
	if _, err := c.do(ctx, &call{op: "get", method: http.MethodGet, path: "/plain?level=bogus", ok: []int{http.StatusOK}}); !errors.Is(err, ErrBadRequest) {
		t.Fatalf("bad level: %v", err)
	}
	if _, err := c.Delete(ctx, "plain"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Get(ctx, "plain"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Get after Delete: %v, want ErrNotFound", err)
	}
	if _, err := c.Delete(ctx, "never-written"); err != nil {
		t.Fatalf("Delete of an absent key: %v", err)
	}
	if _, err := c.PutAll(ctx, map[string]string{"x": "1", "y": "2", "status": "3"}); err != nil {
		t.Fatal(err)
	}
	for k, v := range map[string]string{"x": "1", "y": "2", "status": "3"} {
		if got, err := c.Get(ctx, k); err != nil || string(got) != v {
			t.Fatalf("Get(%q) after PutAll = %q, %v", k, got, err)
		}
	}
	// Values that are not UTF-8 go in base64, and arrive as sent.
	bin := map[string]string{"bin": "\x00\xff\n", "text": "é"}
	if _, err := c.PutAll(ctx, bin); err != nil {
		t.Fatalf("PutAll of bytes: %v", err)
	}
	for k, v := range bin {
		if got, err := c.Get(ctx, k); err != nil || string(got) != v {
			t.Fatalf("Get(%q) after PutAll = %q, %v; want %q", k, got, err, v)
		}
	}
	big := bytes.Repeat([]byte("x"), 2<<20)
	var e *Error
	if _, err := c.Put(ctx, "big", big); !errors.Is(err, ErrBadRequest) || !errors.As(err, &e) || e.Status != http.StatusRequestEntityTooLarge {
		t.Fatalf("Put of 2 MiB: %v, want 413 ErrBadRequest", err)
	}
	st, err := c.Status(ctx)
	if err != nil || len(st.Members) != 3 || st.Leader == 0 {
		t.Fatalf("Status = %+v, %v", st, err)
	}
}

// TestClusterMemberKilled: writers keep going while the member every call
// starts at is killed; the Client moves on and no call fails.
func TestClusterMemberKilled(t *testing.T) {
	t.Parallel()
	tc, leader := startCluster(t, 3)
	victim := 1
	if victim == leader {
		victim = 2
	}
	var others []int
	for _, id := range []int{1, 2, 3} {
		if id != victim {
			others = append(others, id)
		}
	}
	c := newTestClient(t, Config{Endpoints: clientURLs(tc, append([]int{victim}, others...)...), RequestTimeout: 20 * time.Second})
	ctx := context.Background()
	const writers, each = 4, 60
	var wg sync.WaitGroup
	var mu sync.Mutex
	var errs []error
	var done sync.WaitGroup
	done.Add(writers)
	progress := make(chan struct{}, writers*each)
	for w := range writers {
		wg.Go(func() {
			for i := range each {
				k := fmt.Sprintf("w%d-%d", w, i)
				if _, err := c.Put(ctx, k, []byte(k)); err != nil {
					mu.Lock()
					errs = append(errs, err)
					mu.Unlock()
				}
				progress <- struct{}{}
			}
		})
	}
	for range writers * each / 4 {
		<-progress
	}
	tc.Kill(victim)
	wg.Wait()
	if len(errs) > 0 {
		t.Fatalf("%d writes failed; first: %v", len(errs), errs[0])
	}
	for w := range writers {
		for i := range each {
			k := fmt.Sprintf("w%d-%d", w, i)
			if got, err := c.Get(ctx, k); err != nil || string(got) != k {
				t.Fatalf("Get(%q) = %q, %v", k, got, err)
			}
		}
	}
	if _, url := c.endpoints.Load().pick(); url == tc.ClientURL(victim) {
		t.Fatalf("calls still start at the killed member %s", url)
	}
}

// TestClusterShardedRouting routes keys by bucket over two real one-member
// groups (plain members serve every key, so a key's presence shows where it
// was sent), with the config served by the in-test config group of
// contract_test.go ("Config group HTTP API").
func TestClusterShardedRouting(t *testing.T) {
	t.Parallel()
	a, _ := startCluster(t, 1)
	b, _ := startCluster(t, 1)
	cg := newConfigGroup(t, 32)
	cfg := cg.mustApply(t, func(c shardmap.Config) (shardmap.Config, error) {
		return c.Join(map[uint64][]string{1: {a.ClientURL(1)}, 2: {b.ClientURL(1)}})
	})
	c := newTestClient(t, Config{ConfigEndpoints: []string{cg.srv.URL}, RequestTimeout: 20 * time.Second})
	ctx := context.Background()
	for i := range 30 {
		k := fmt.Sprintf("k%d", i)
		if _, err := c.Put(ctx, k, []byte(k)); err != nil {
			t.Fatal(err)
		}
		in, out := a, b
		if cfg.OwnerOfKey(k) == 2 {
			in, out = b, a
		}
		if v, st, err := in.Get(1, k); err != nil || st != http.StatusOK || string(v) != k {
			t.Fatalf("%s at its group: %q %d %v", k, v, st, err)
		}
		if _, st, err := out.Get(1, k); err != nil || st != http.StatusNotFound {
			t.Fatalf("%s at the other group: %d %v, want 404", k, st, err)
		}
	}
}
