//go:build kvstore_watch

package e2e

// Watches and TTL expiry end to end, on real raftkv processes. Built with
// the tag that builds the daemon's adapter of kvstore's Watch
// (daemon/kvwatch.go) and run on a binary built with it; the tag goes
// once kvstore has Watch.

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/raftkv/raftkv/client"
	"github.com/raftkv/raftkv/router"
	"github.com/raftkv/raftkv/testcluster"
	"go.uber.org/zap/zaptest"
)

// useWatchBinary makes testcluster start the binary with the daemon's
// watch adapter.
func useWatchBinary(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("e2e: starts real raftkv processes")
	}
	t.Setenv(testcluster.BinaryEnv, testcluster.BuildBinaryTags(t, "kvstore_watch"))
}

// ackedWrite is a write a member acknowledged.
type ackedWrite struct {
	key, value string
	index      uint64
}

// TestWatchUnderLoadAndKill: a watch from a follower, through the Go
// client (which resumes after the last event on another member when its
// member dies), sees every acknowledged write of a concurrent load, in
// index order, with no gap or duplicate, while the watched member is
// killed and restarted.
func TestWatchUnderLoadAndKill(t *testing.T) {
	useWatchBinary(t)
	c, leader := startCluster(t, testcluster.Options{N: 3})
	var follower int
	for _, id := range c.Live() {
		if id != leader {
			follower = id
			break
		}
	}
	// The watcher starts at the follower and moves on to the others.
	urls := []string{c.ClientURL(follower)}
	for _, id := range c.Live() {
		if id != follower {
			urls = append(urls, c.ClientURL(id))
		}
	}
	wc, err := client.New(client.Config{Endpoints: urls, RequestTimeout: 30 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer wc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	events, err := wc.Watch(ctx, client.WatchOptions{Prefix: "load/", IdleTimeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	type seen struct {
		key, value, typ string
		index           uint64
		pos             uint32
	}
	var (
		mu  sync.Mutex
		got []seen
	)
	done := make(chan error, 1)
	go func() {
		for ev := range events {
			if ev.Err != nil {
				done <- ev.Err
				return
			}
			mu.Lock()
			got = append(got, seen{ev.KV.Key, string(ev.KV.Value), ev.Type, ev.KV.ModIndex, ev.Pos})
			mu.Unlock()
		}
		done <- nil
	}()

	// Writers, each its own keys, through every member.
	var writeURLs []string
	for _, id := range c.IDs() {
		writeURLs = append(writeURLs, c.ClientURL(id))
	}
	var (
		amu   sync.Mutex
		acked []ackedWrite
	)
	wctx, stopWriters := context.WithCancel(ctx)
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			cl, err := client.New(client.Config{Endpoints: writeURLs, RequestTimeout: 10 * time.Second})
			if err != nil {
				t.Error(err)
				return
			}
			defer cl.Close()
			for i := 0; wctx.Err() == nil; i++ {
				k, v := fmt.Sprintf("load/w%d/%d", w, i%20), fmt.Sprintf("%d-%d", w, i)
				index, err := cl.Put(wctx, k, []byte(v))
				if err == nil {
					amu.Lock()
					acked = append(acked, ackedWrite{k, v, index})
					amu.Unlock()
				}
			}
		})
	}
	ackCount := func() int {
		amu.Lock()
		defer amu.Unlock()
		return len(acked)
	}
	testcluster.WaitFor(t, valueTimeout, "writes before the kill", func() error {
		if n := ackCount(); n < 200 {
			return fmt.Errorf("%d writes acknowledged", n)
		}
		return nil
	})
	c.Kill(follower)
	before := ackCount()
	testcluster.WaitFor(t, valueTimeout, "writes while the follower is down", func() error {
		if n := ackCount(); n < before+200 {
			return fmt.Errorf("%d writes acknowledged since the kill", n-before)
		}
		return nil
	})
	c.Restart(follower)
	before = ackCount()
	testcluster.WaitFor(t, valueTimeout, "writes after the restart", func() error {
		if n := ackCount(); n < before+200 {
			return fmt.Errorf("%d writes acknowledged since the restart", n-before)
		}
		return nil
	})
	stopWriters()
	wg.Wait()

	amu.Lock()
	want := slices.Clone(acked)
	amu.Unlock()
	last := uint64(0)
	for _, a := range want {
		last = max(last, a.index)
	}
	testcluster.WaitFor(t, convergeTimeout, "the watch to reach the last acknowledged write", func() error {
		mu.Lock()
		defer mu.Unlock()
		if len(got) == 0 || got[len(got)-1].index < last {
			return fmt.Errorf("%d events, the last acknowledged write is at %d", len(got), last)
		}
		return nil
	})
	cancel()
	<-done
	mu.Lock()
	defer mu.Unlock()
	byIndex := map[uint64]seen{}
	for i, ev := range got {
		if i > 0 {
			p := got[i-1]
			if ev.index < p.index || ev.index == p.index && ev.pos <= p.pos {
				t.Fatalf("event %d (%d.%d) after (%d.%d): out of order or repeated", i, ev.index, ev.pos, p.index, p.pos)
			}
		}
		if ev.typ != client.EventPut {
			t.Fatalf("event %d is a %s; the load only puts", i, ev.typ)
		}
		byIndex[ev.index] = ev
	}
	for _, a := range want {
		ev, ok := byIndex[a.index]
		if !ok || ev.key != a.key || ev.value != a.value {
			t.Fatalf("acknowledged write %s=%s at %d: the watch saw %+v (%v)", a.key, a.value, a.index, ev, ok)
		}
	}
	// Every event is a write that was sent: none is invented.
	sent := map[string]bool{}
	for _, a := range want {
		sent[a.key+"="+a.value] = true
	}
	unacked := 0
	for _, ev := range got {
		if !sent[ev.key+"="+ev.value] {
			unacked++ // a write whose answer was lost (outcome unknown) may be applied
		}
	}
	t.Logf("%d events, %d acknowledged writes, %d events of writes whose answer was lost", len(got), len(want), unacked)
}

// TestTTLExpiryWatched: a key written with a TTL expires, a watch of it
// gets an "expire" event, and a read finds it absent.
func TestTTLExpiryWatched(t *testing.T) {
	useWatchBinary(t)
	c, leader := startCluster(t, testcluster.Options{N: 3})
	cl, err := client.New(client.Config{Endpoints: []string{c.ClientURL(leader)}, RequestTimeout: 30 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	index, err := cl.Put(ctx, "session", []byte("s"), client.WithTTL(2*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	kv, _, err := cl.GetKV(ctx, "session")
	if err != nil || kv.TTL != 2*time.Second || kv.ModIndex != index {
		t.Fatalf("GetKV = %+v, %v; want the TTL of 2s at %d", kv, err, index)
	}
	events, err := cl.Watch(ctx, client.WatchOptions{Key: "session", FromIndex: index + 1})
	if err != nil {
		t.Fatal(err)
	}
	select {
	case ev := <-events:
		if ev.Err != nil || ev.Type != client.EventExpire || ev.KV.Key != "session" || ev.KV.ModIndex <= index {
			t.Fatalf("first event after the put: %+v, want the key's expiry", ev)
		}
	case <-ctx.Done():
		t.Fatal("no expiry within a minute of a TTL of 2s")
	}
	for _, id := range c.Live() {
		testcluster.WaitFor(t, valueTimeout, fmt.Sprintf("member %d to find the key expired", id), func() error {
			if r, body := send(t, http.MethodGet, c.ClientURL(id)+"/session?level=stale", "", nil); r.StatusCode != http.StatusNotFound {
				return fmt.Errorf("GET: %d %q", r.StatusCode, body)
			}
			return nil
		})
	}
}

// TestRouterWatch: a watch of a prefix through the router of a sharded
// deployment gets the events of both groups, with ids that are cursors of
// both groups' positions.
func TestRouterWatch(t *testing.T) {
	useWatchBinary(t)
	d := startDeployment(t, 1)
	d.startGroup(1, 1)
	d.startGroup(2, 1)
	cfg := d.waitSettled(1, 2)
	rc, err := client.New(client.Config{ConfigEndpoints: d.configURLs(), ClientID: "router", RequestTimeout: 30 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	h, err := router.New(router.Config{Client: rc, Logger: zaptest.NewLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	defer srv.Close()
	defer srv.CloseClientConnections()
	var k1, k2 string
	for i := 0; k1 == "" || k2 == ""; i++ {
		k := fmt.Sprintf("r/%d", i)
		if cfg.OwnerOfKey(k) == 1 && k1 == "" {
			k1 = k
		} else if cfg.OwnerOfKey(k) == 2 && k2 == "" {
			k2 = k
		}
	}
	wcl, err := client.New(client.Config{Endpoints: []string{srv.URL}, RequestTimeout: 30 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer wcl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	events, err := wcl.Watch(ctx, client.WatchOptions{Prefix: "r/"})
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Second) // the router opens a stream per group
	for _, k := range []string{k1, k2} {
		if r, body := send(t, http.MethodPut, srv.URL+"/"+k, "watched", nil); r.StatusCode != http.StatusNoContent {
			t.Fatalf("PUT %s: %d %q", k, r.StatusCode, body)
		}
	}
	seen := map[string]bool{}
	for len(seen) < 2 {
		select {
		case ev := <-events:
			if ev.Err != nil {
				t.Fatal(ev.Err)
			}
			if string(ev.KV.Value) == "watched" {
				seen[ev.KV.Key] = true
				if !strings.Contains(ev.ID, "1=") || !strings.Contains(ev.ID, "2=") {
					t.Errorf("event id %q is not a cursor of both groups", ev.ID)
				}
			}
		case <-ctx.Done():
			t.Fatalf("watch through the router saw %v of %s and %s", seen, k1, k2)
		}
	}
}
