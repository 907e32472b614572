package router

import (
	"context"
	"testing"
	"time"

	"github.com/raftkv/raftkv/shardmap"
)

// TestRouterWatchResumeDuringHold: an id written while group 2 is held
// (behind group 1's bucket_out of a bucket that moved to it) names group
// 2 where it was before its bucket_in, so a watch resumed from it meets
// the bucket_in again and holds group 2 again: the moved key's puts come
// in their order. (Before, the id named group 2 past its bucket_in, and
// the resumed watch held nothing.)
func TestRouterWatchResumeDuringHold(t *testing.T) {
	srv, hist, g := dataRouterN(t, 3, nil)
	cfg := hist.Latest()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	a, c := keyIn(cfg, 1, "pa"), keyIn(cfg, 3, "pc")
	b := shardmap.BucketOf(a, 16)
	ch := watchPrefixP(t, ctx, srv, g, 1, 2, 3)
	g[1].apply(putEvent(a, "1"))
	g[2].apply(putEvent(keyIn(cfg, 2, "pd"), "d"))
	next(t, ch)
	next(t, ch)
	moved := hist.move(t, b, 2)
	g[1].stall(true)
	g[1].apply(putEvent(a, "last-of-1"), markerEvent("bucket_out", b, moved.Version))
	g[2].apply(markerEvent("bucket_in", b, moved.Version))
	g[2].apply(putEvent(a, "in-2"))
	time.Sleep(300 * time.Millisecond)
	g[3].apply(putEvent(c, "x"))
	ev := next(t, ch)
	ch2 := openWatch(t, ctx, srv.URL+"/key?watch=true&prefix=p", ev[0])
	time.Sleep(500 * time.Millisecond)
	g[1].stall(false)
	var got []string
	for len(got) < 2 {
		e := next(t, ch2)
		if e[1] == "put" && e[2] == a {
			got = append(got, e[3])
		}
	}
	if got[0] != "last-of-1" {
		t.Fatalf("resumed from %s: puts of %s in the order %q", ev[0], a, got)
	}
}
