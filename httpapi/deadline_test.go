package httpapi

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestSharedDeadlines: calls that begin in one slot share a context,
// whose deadline is the timeout after the slot's end; the next slot has
// its own; and a shared context ends at its deadline by itself.
func TestSharedDeadlines(t *testing.T) {
	var d sharedDeadlines
	const timeout = 5 * time.Second
	start := time.Now().Truncate(deadlineSlot)
	a := d.context(start.Add(time.Millisecond), timeout)
	b := d.context(start.Add(deadlineSlot-time.Millisecond), timeout)
	if a != b {
		t.Error("two calls of one slot got different contexts")
	}
	dl, ok := a.Deadline()
	if want := start.Add(deadlineSlot + timeout); !ok || !dl.Equal(want) {
		t.Errorf("deadline %v (%v), want %v", dl, ok, want)
	}
	if c := d.context(start.Add(deadlineSlot), timeout); c == a {
		t.Error("a call of the next slot got the last slot's context")
	}

	short := d.context(time.Now(), time.Millisecond)
	select {
	case <-short.Done():
		if short.Err() != context.DeadlineExceeded {
			t.Errorf("a shared context ended with %v", short.Err())
		}
	case <-time.After(waitLimit):
		t.Fatal("a shared context did not end at its deadline")
	}
}

// TestFastPathCallDeadline: the fast path's calls take shared deadline
// contexts, and still end with RequestTimeout, answered 504.
func TestFastPathCallDeadline(t *testing.T) {
	const timeout = 200 * time.Millisecond
	e := newEnv(t, nil, func(c *Config) { c.RequestTimeout = timeout })
	var mu sync.Mutex
	var deadlines []time.Duration
	shared := 0
	e.store.hook = func(ctx context.Context) error {
		dl, ok := ctx.Deadline()
		if !ok {
			return nil
		}
		mu.Lock()
		deadlines = append(deadlines, time.Until(dl))
		if c := e.h.(*handler).deadlines.cur.Load(); c != nil && c.ctx == ctx {
			shared++
		}
		mu.Unlock()
		<-ctx.Done()
		return ctx.Err()
	}
	_, addr := serveFast(t, e.h)
	var wg sync.WaitGroup
	for _, req := range []string{get("/a"), get("/b"), put("/c", "v")} {
		wg.Go(func() {
			if got := exchange(t, addr, req+closing); !strings.HasPrefix(got, "HTTP/1.1 504 ") {
				t.Errorf("%q: %q, want 504", req, got)
			}
		})
	}
	wg.Wait()
	mu.Lock()
	defer mu.Unlock()
	if len(deadlines) != 3 {
		t.Fatalf("%d calls had a deadline, want 3", len(deadlines))
	}
	if shared == 0 {
		t.Error("no fast path call had a shared deadline context")
	}
	for _, d := range deadlines {
		if d <= 0 || d > timeout+deadlineSlot {
			t.Errorf("a call's deadline %v away, want within %v", d, timeout+deadlineSlot)
		}
	}
}
