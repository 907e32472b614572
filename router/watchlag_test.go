package router

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/raftkv/raftkv/shardmap"
)

// TestRouterWatchHoldIgnoresLaggingHeartbeats: group 1's stream is
// served by a member that lags (an isolated follower): it keeps sending
// heartbeats at an index before its bucket_out, each saying the config
// it had applied then, the one before the move. They do not release the
// hold on group 2, whose put of the moved key comes after group 1's
// earlier put of it once the member catches up. (Before, any two
// heartbeats released the hold.) Nor do heartbeats of a member that
// cannot tell its config then (": config 0"). A member that does not say
// its config at all (an older binary) still releases it after two.
func TestRouterWatchHoldIgnoresLaggingHeartbeats(t *testing.T) {
	for _, tc := range []struct {
		name    string
		says    bool
		unknown bool // it says 0 while lagging
	}{{"member says its config", true, false}, {"member cannot tell", true, true}, {"older member", false, false}} {
		says := tc.says
		t.Run(tc.name, func(t *testing.T) {
			srv, hist, g := dataRouter(t)
			cfg := hist.Latest()
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			bucket := shardmap.BucketOf(keyIn(cfg, 1, "pa"), 16)
			var outAt atomic.Uint64 // group 1's bucket_out, once applied
			if says {
				g[1].mu.Lock()
				g[1].configAt = func(index uint64) uint64 {
					if at := outAt.Load(); at != 0 && index >= at {
						return cfg.Version + 1
					}
					if tc.unknown {
						return 0
					}
					return cfg.Version
				}
				g[1].mu.Unlock()
			}
			opened := streamCounts(g)
			ch := openWatch(t, ctx, srv.URL+"/key?watch=true&prefix=p", "")
			waitStreams(t, g, opened, 1, 2)
			a := keyIn(cfg, 1, "pa")
			g[1].apply(putEvent(a, "1"))
			if ev := next(t, ch); ev[2] != a || ev[3] != "1" {
				t.Fatalf("first event %v", ev)
			}
			moved := hist.move(t, bucket, 2)
			// Group 1's member serving the stream has applied up to here
			// only.
			g[1].mu.Lock()
			g[1].behind = g[1].n
			g[1].mu.Unlock()
			g[1].apply(putEvent(a, "last-of-1"), markerEvent("bucket_out", bucket, moved.Version))
			g[1].mu.Lock()
			outAt.Store(g[1].n)
			g[1].mu.Unlock()
			g[2].apply(markerEvent("bucket_in", bucket, moved.Version))
			g[2].apply(putEvent(a, "from-2"))
			if !says {
				// Two heartbeats of an older member release the hold,
				// lagging or not: that is all it tells.
				if ev := next(t, ch); ev[2] != a || ev[3] != "from-2" {
					t.Fatalf("after the move, an older member lagging: %v, want the put of %s = from-2", ev, a)
				}
				return
			}
			time.Sleep(time.Second) // heartbeats every 50 ms
			g[1].mu.Lock()
			g[1].behind = 0 // it catches up
			g[1].mu.Unlock()
			for _, want := range []string{"last-of-1", "from-2"} {
				if ev := next(t, ch); ev[2] != a || ev[3] != want {
					t.Fatalf("after the move: %v, want the put of %s = %s (order last-of-1, from-2)", ev, a, want)
				}
			}
		})
	}
}
