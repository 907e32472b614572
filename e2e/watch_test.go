package e2e

// Watches end to end, on real raftkv processes: under load while the
// watched member is killed and restarted, and merged across the groups of
// a sharded deployment by the router. TTL expiry is in ttl_test.go.

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/raftkv/raftkv/client"
	"github.com/raftkv/raftkv/testcluster"
)

// ackedWrite is a write a member acknowledged.
type ackedWrite struct {
	key, value string
	index      uint64
}

// seenEvent is an event a watch delivered.
type seenEvent struct {
	key, value, typ string
	index           uint64
	pos             uint32
}

// collector gathers a watch's events.
type collector struct {
	name string
	mu   sync.Mutex
	got  []seenEvent
	done chan error
}

func collect(name string, events <-chan client.WatchEvent) *collector {
	c := &collector{name: name, done: make(chan error, 1)}
	go func() {
		for ev := range events {
			if ev.Err != nil {
				c.done <- ev.Err
				return
			}
			c.mu.Lock()
			c.got = append(c.got, seenEvent{ev.KV.Key, string(ev.KV.Value), ev.Type, ev.KV.ModIndex, ev.Pos})
			c.mu.Unlock()
		}
		c.done <- nil
	}()
	return c
}

func (c *collector) last() (int, uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.got) == 0 {
		return 0, 0
	}
	return len(c.got), c.got[len(c.got)-1].index
}

// check verifies that the events are in (index, pos) order without
// repetition, are puts, and include every acknowledged write at its index.
func (c *collector) check(t *testing.T, acked []ackedWrite) {
	t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	// Writes batched into one raft entry share its index.
	byIndex := map[uint64][]seenEvent{}
	for i, ev := range c.got {
		if i > 0 {
			p := c.got[i-1]
			if ev.index < p.index || ev.index == p.index && ev.pos <= p.pos {
				t.Fatalf("%s: event %d (%d.%d) after (%d.%d): out of order or repeated", c.name, i, ev.index, ev.pos, p.index, p.pos)
			}
		}
		if ev.typ != client.EventPut {
			t.Fatalf("%s: event %d is a %s; the load only puts", c.name, i, ev.typ)
		}
		byIndex[ev.index] = append(byIndex[ev.index], ev)
	}
	for _, a := range acked {
		if !slices.ContainsFunc(byIndex[a.index], func(ev seenEvent) bool { return ev.key == a.key && ev.value == a.value }) {
			t.Fatalf("%s: acknowledged write %s=%s at %d: the watch saw %+v at that index", c.name, a.key, a.value, a.index, byIndex[a.index])
		}
	}
	t.Logf("%s: %d events for %d acknowledged writes", c.name, len(c.got), len(acked))
}

// TestWatchUnderLoadAndKill: watches from a follower, through the Go
// client, see every acknowledged write of a concurrent load, in index
// order, with no gap or duplicate, while that follower is killed and
// restarted: one watch resumes after its last event on another member
// at once, the other (given the follower alone) on the follower once it
// is back.
func TestWatchUnderLoadAndKill(t *testing.T) {
	c, leader := startCluster(t, testcluster.Options{N: 3})
	var follower int
	for _, id := range c.Live() {
		if id != leader {
			follower = id
			break
		}
	}
	urls := []string{c.ClientURL(follower)}
	for _, id := range c.Live() {
		if id != follower {
			urls = append(urls, c.ClientURL(id))
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	var watches []*collector
	// The second watch tries to reconnect only every 3s, so it is back
	// after the follower caught up with what it missed: it must resume
	// after its last event, not from the follower's present.
	for _, w := range []struct {
		name    string
		urls    []string
		backoff time.Duration
	}{{"watch moving across members", urls, 0}, {"watch of the follower alone", urls[:1], 3 * time.Second}} {
		wc, err := client.New(client.Config{Endpoints: w.urls, RequestTimeout: time.Minute, Backoff: w.backoff, MaxBackoff: w.backoff})
		if err != nil {
			t.Fatal(err)
		}
		defer wc.Close()
		events, err := wc.Watch(ctx, client.WatchOptions{Prefix: "load/", IdleTimeout: 10 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		watches = append(watches, collect(w.name, events))
	}

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
	for _, w := range watches {
		testcluster.WaitFor(t, convergeTimeout, w.name+" to reach the last acknowledged write", func() error {
			if n, index := w.last(); index < last {
				return fmt.Errorf("%d events, up to %d; the last acknowledged write is at %d", n, index, last)
			}
			return nil
		})
	}
	cancel()
	for _, w := range watches {
		<-w.done
		w.check(t, want)
	}
}

// TestRouterWatch: a watch of a prefix through the router of a sharded
// deployment gets the events of both groups, with ids that are cursors of
// both groups' positions.
func TestRouterWatch(t *testing.T) {
	d := startDeployment(t, 1)
	d.startGroup(1, 1)
	d.startGroup(2, 1)
	cfg := d.waitSettled(1, 2)
	srv := d.inProcessRouter()
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
		if r, body := sendHdr(t, http.MethodPut, srv.URL+"/"+k, "watched", nil); r.StatusCode != http.StatusNoContent {
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
