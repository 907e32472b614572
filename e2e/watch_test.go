package e2e

// Watches end to end, on real raftkv processes: under load while the
// watched member is killed and restarted, and merged across the groups of
// a sharded deployment by the router. TTL expiry is in ttl_test.go.

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/raftkv/raftkv/client"
	"github.com/raftkv/raftkv/internal/testutil"
	"github.com/raftkv/raftkv/testcluster"
)

// ackedWrite is a write a member acknowledged.
type ackedWrite struct {
	key, value string
	index      uint64
}

// seenEvent is an event a watch delivered, and the test's phase then.
type seenEvent struct {
	key, value, typ string
	index           uint64
	pos             uint32
	phase           string
}

// collector gathers a watch's events.
type collector struct {
	name  string
	phase *atomic.Value // a string: what the test is doing
	mu    sync.Mutex
	got   []seenEvent
	done  chan error
}

func collect(name string, phase *atomic.Value, events <-chan client.WatchEvent) *collector {
	c := &collector{name: name, phase: phase, done: make(chan error, 1)}
	go func() {
		for ev := range events {
			if ev.Err != nil {
				c.done <- ev.Err
				return
			}
			c.mu.Lock()
			c.got = append(c.got, seenEvent{ev.KV.Key, string(ev.KV.Value), ev.Type, ev.Index, ev.Pos, c.phase.Load().(string)})
			c.mu.Unlock()
		}
		c.done <- nil
	}()
	return c
}

// waitSeen waits until c saw every acknowledged write. Seeing an event
// of the last write's index is not enough: that index's later events may
// still be on their way.
func (c *collector) waitSeen(t *testing.T, acked []ackedWrite) {
	t.Helper()
	testcluster.WaitFor(t, convergeTimeout, c.name+" to see every acknowledged write", func() error {
		c.mu.Lock()
		defer c.mu.Unlock()
		if missed := c.missedLocked(acked); len(missed) > 0 {
			return fmt.Errorf("%d events; %d acknowledged writes not seen, such as %+v", len(c.got), len(missed), missed[0])
		}
		return nil
	})
}

// missedLocked is the acknowledged writes c saw no event of at their
// index. c.mu must be held.
func (c *collector) missedLocked(acked []ackedWrite) []ackedWrite {
	byIndex := map[uint64][]seenEvent{}
	for _, ev := range c.got {
		byIndex[ev.index] = append(byIndex[ev.index], ev)
	}
	var missed []ackedWrite
	for _, a := range acked {
		if !slices.ContainsFunc(byIndex[a.index], func(ev seenEvent) bool { return ev.key == a.key && ev.value == a.value }) {
			missed = append(missed, a)
		}
	}
	return missed
}

// near is what c saw of the indexes around index.
func (c *collector) near(index uint64) []seenEvent {
	c.mu.Lock()
	defer c.mu.Unlock()
	var near []seenEvent
	for _, ev := range c.got {
		if ev.index+2 >= index && ev.index <= index+2 {
			near = append(near, ev)
		}
	}
	return near
}

// check verifies that the events are in (index, pos) order without
// repetition, are puts, and include every acknowledged write at its index.
// On a miss it logs what every watch of all saw around it.
func (c *collector) check(t *testing.T, acked []ackedWrite, all []*collector) {
	t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
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
	}
	if missed := c.missedLocked(acked); len(missed) > 0 {
		a := missed[0]
		c.mu.Unlock()
		for _, o := range all {
			t.Logf("%s saw around %d: %+v", o.name, a.index, o.near(a.index))
		}
		c.mu.Lock()
		t.Fatalf("%s: missed %d acknowledged writes (%+v); the first, %s=%s at %d, is not among the events of its index",
			c.name, len(missed), missed[:min(len(missed), 5)], a.key, a.value, a.index)
	}
	t.Logf("%s: %d events for %d acknowledged writes", c.name, len(c.got), len(acked))
}

// TestWatchUnderLoadAndKill: watches from a follower, through the Go
// client, see every acknowledged write of a concurrent load, in index
// order, with no gap or duplicate, while that follower is killed and
// restarted: one watch resumes after its last event on another member
// at once, the other (given the follower alone) on the follower once it
// is back. Then a watch from index 1 of each member (the restarted one
// replayed its log) sees the same events in the same positions.
func TestWatchUnderLoadAndKill(t *testing.T) {
	t.Parallel()
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
	var phase atomic.Value
	phase.Store("before the kill")
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
		watches = append(watches, collect(w.name, &phase, events))
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
	phase.Store("follower down")
	before := ackCount()
	testcluster.WaitFor(t, valueTimeout, "writes while the follower is down", func() error {
		if n := ackCount(); n < before+200 {
			return fmt.Errorf("%d writes acknowledged since the kill", n-before)
		}
		return nil
	})
	c.Restart(follower)
	phase.Store("follower restarted")
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
		w.waitSeen(t, want)
	}
	cancel()
	for _, w := range watches {
		<-w.done
	}
	// Every member, the restarted one too, replays the same events from
	// its window: a watch from index 1 of each.
	var replays []*collector
	for _, id := range c.IDs() {
		wc, err := client.New(client.Config{Endpoints: []string{c.ClientURL(id)}, RequestTimeout: time.Minute})
		if err != nil {
			t.Fatal(err)
		}
		defer wc.Close()
		rctx, rcancel := context.WithTimeout(context.Background(), time.Minute)
		defer rcancel()
		events, err := wc.Watch(rctx, client.WatchOptions{Prefix: "load/", FromIndex: 1})
		if err != nil {
			t.Fatal(err)
		}
		var phase atomic.Value
		phase.Store("replay")
		r := collect(fmt.Sprintf("watch from index 1 of node %d", id), &phase, events)
		r.waitSeen(t, want)
		rcancel()
		<-r.done
		replays = append(replays, r)
	}
	all := append(watches, replays...)
	for _, w := range all {
		w.check(t, want, all)
	}
	// Below the last write's index (whose events may not all have come),
	// the replays are the same events in the same positions.
	below := func(evs []seenEvent) []seenEvent {
		if i := slices.IndexFunc(evs, func(ev seenEvent) bool { return ev.index >= last }); i >= 0 {
			return evs[:i]
		}
		return evs
	}
	first := below(replays[0].got)
	for _, r := range replays[1:] {
		other := below(r.got)
		for i := range max(len(first), len(other)) {
			if i >= len(first) || i >= len(other) || first[i].key != other[i].key || first[i].value != other[i].value ||
				first[i].index != other[i].index || first[i].pos != other[i].pos {
				t.Fatalf("%s and %s differ at event %d (of %d and %d below index %d)", replays[0].name, r.name, i, len(first), len(other), last)
			}
		}
	}
}

// TestRouterWatch: a watch of a prefix through the router of a sharded
// deployment gets the events of both groups, with ids that are cursors of
// both groups' positions. When group 1 leaves and is stopped, the watch
// goes on with group 2 alone, with no error, and its cursor names group
// 1 no more; a cursor from before the leave is answered 410.
func TestRouterWatch(t *testing.T) {
	t.Parallel()
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
	// The router opens a stream per group, each from now: write to both
	// groups until the watch has an event of each, so that both streams
	// are open before the writes the test checks.
	probed := map[string]bool{}
	testutil.WaitFor(t, 30*time.Second, "an event of each group through the router's watch", func() error {
		for _, k := range []string{k1, k2} {
			if probed[k] {
				continue
			}
			if r, body := sendHdr(t, http.MethodPut, srv.URL+"/"+k, "probe", nil); r.StatusCode != http.StatusNoContent {
				t.Fatalf("PUT %s: %d %q", k, r.StatusCode, body)
			}
		}
		for wait := time.After(200 * time.Millisecond); len(probed) < 2; {
			select {
			case ev := <-events:
				if ev.Err != nil {
					t.Fatal(ev.Err)
				}
				if string(ev.KV.Value) == "probe" {
					probed[ev.KV.Key] = true
				}
			case <-wait:
				return fmt.Errorf("events of %v only", probed)
			}
		}
		return nil
	})
	for _, k := range []string{k1, k2} {
		if r, body := sendHdr(t, http.MethodPut, srv.URL+"/"+k, "watched", nil); r.StatusCode != http.StatusNoContent {
			t.Fatalf("PUT %s: %d %q", k, r.StatusCode, body)
		}
	}
	seen := map[string]bool{}
	var before string // a cursor naming both groups
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
				before = ev.ID
			}
		case <-ctx.Done():
			t.Fatalf("watch through the router saw %v of %s and %s", seen, k1, k2)
		}
	}

	admin, err := client.New(client.Config{ConfigEndpoints: d.configURLs(), RequestTimeout: 30 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	if _, err := admin.Leave(ctx, 1); err != nil {
		t.Fatalf("leave 1: %v", err)
	}
	d.waitSettled(2) // group 1, still running, has applied the config without it
	g1 := d.groups[1]
	for _, id := range g1.Live() {
		g1.Stop(id)
	}
	delete(d.groups, 1)
	// Every key is group 2's now; the watch must go on, and soon name
	// only group 2 (group 1's group_left ended its part).
	deadline := time.Now().Add(20 * time.Second)
	for i := 0; ; i++ {
		v := fmt.Sprintf("after-leave-%d", i)
		if r, body := sendHdr(t, http.MethodPut, srv.URL+"/"+k1, v, nil); r.StatusCode != http.StatusNoContent {
			t.Fatalf("PUT %s after group 1 left: %d %q", k1, r.StatusCode, body)
		}
		var ev client.WatchEvent
		for string(ev.KV.Value) != v {
			select {
			case ev = <-events:
				if ev.Err != nil {
					t.Fatalf("watch after group 1 left and stopped: %v", ev.Err)
				}
			case <-ctx.Done():
				t.Fatalf("no event of %s=%s", k1, v)
			}
		}
		if !strings.Contains(ev.ID, "1=") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("event id %q still names group 1, which left and stopped", ev.ID)
		}
		time.Sleep(100 * time.Millisecond)
	}
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+"/key?watch=true&prefix=r/", nil)
	req.Header.Set("Last-Event-ID", before)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusGone {
		t.Fatalf("resume from %q, which names group 1 that left: %d %s, want 410", before, resp.StatusCode, body)
	}
}
