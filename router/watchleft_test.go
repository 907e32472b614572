package router

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/raftkv/raftkv/client"
	"github.com/raftkv/raftkv/shardmap"
)

// TestRouterWatchLeftOldOwnerEndsCompacted: a cursor that does not name
// group 3 (as after its group_left) and names group 2 before its
// bucket_in of a move from group 3, which left and is stopped. The router
// cannot place group 3's events and ends the watch as compacted; a Go
// client watching through it ends with ErrCompacted rather than resume
// into the same end again and again (it did, with no error).
func TestRouterWatchLeftOldOwnerEndsCompacted(t *testing.T) {
	srv, hist, g := dataRouter(t)
	cfg := hist.Latest()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	a := keyIn(cfg, 1, "pa")
	b := shardmap.BucketOf(a, 16)
	g3, _, to2 := joinAndMoveThrough(t, hist, b)
	hist.leave(t, 3)
	g3.stop()
	g[1].apply(putEvent("x", "x"))
	g[2].apply(putEvent("y", "y"))
	g[2].apply(markerEvent("bucket_in", b, to2.Version))
	g[2].apply(putEvent(a, "in-2"))
	c, err := client.New(client.Config{Endpoints: []string{srv.URL}, Backoff: time.Millisecond, MaxBackoff: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	wch, err := c.Watch(ctx, client.WatchOptions{Prefix: "p", LastEventID: "1=1,2=1"})
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.After(12 * time.Second)
	for {
		select {
		case ev, ok := <-wch:
			if !ok {
				t.Fatal("the watch ended without an error")
			}
			if ev.Err != nil {
				if !errors.Is(ev.Err, client.ErrCompacted) {
					t.Fatalf("the watch ended with %v, want ErrCompacted", ev.Err)
				}
				return
			}
			if ev.KV.Key == a {
				t.Fatalf("the moved key's put came before the end: %+v", ev)
			}
		case <-deadline:
			t.Fatal("no error within 12 s: the client resumes the router's failing watch again and again")
		}
	}
}
