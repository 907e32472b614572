package router

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/raftkv/raftkv/shardmap"
)

// TestRouterWatchMoveFromUnwatchedGroup: group 3 joins while a merged
// watch is open; bucket b moves 1 -> 3, then 3 -> 2, before the watch's
// next look at the config. Group 2's bucket_in names group 3 as the old
// owner: the watch starts group 3 from its first index and holds group 2
// behind it, so the moved key's puts come in their order. (Before,
// nothing was held, and group 3's put came after group 2's, or never.)
func TestRouterWatchMoveFromUnwatchedGroup(t *testing.T) {
	srv, hist, g := dataRouter(t)
	cfg := hist.Latest()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ch := watchPrefixP(t, ctx, srv, g, 1, 2)
	a := keyIn(cfg, 1, "pa")
	g[1].apply(putEvent(a, "1"))
	if ev := next(t, ch); ev[3] != "1" {
		t.Fatalf("first event %v", ev)
	}
	b := shardmap.BucketOf(a, 16)
	g3, to3, to2 := joinAndMoveThrough(t, hist, b)
	g[1].apply(putEvent(a, "last-of-1"), markerEvent("bucket_out", b, to3.Version))
	g3.apply(markerEvent("bucket_in", b, to3.Version))
	g3.apply(putEvent(a, "in-3"))
	g3.apply(markerEvent("bucket_out", b, to2.Version))
	g[2].apply(markerEvent("bucket_in", b, to2.Version))
	g[2].apply(putEvent(a, "in-2"))
	var got []string
	deadline := time.After(12 * time.Second)
	for len(got) < 3 {
		select {
		case ev, ok := <-ch:
			if !ok {
				t.Fatalf("stream ended; got %q", got)
			}
			if ev[1] == "put" && ev[2] == a {
				got = append(got, ev[3])
			}
		case <-deadline:
			t.Fatalf("puts of %s: %q within 12 s; want [last-of-1 in-3 in-2]", a, got)
		}
	}
	if got[0] != "last-of-1" || got[1] != "in-3" || got[2] != "in-2" {
		t.Fatalf("puts of %s in the order %q; want [last-of-1 in-3 in-2]", a, got)
	}
}

// TestRouterWatchNewGroupCompacted: a group joins while a merged watch is
// open, and none of its members can serve it from its first index any
// more (each answers 410: they restored snapshots, or their windows moved
// on). The open watch ends with an error, as a resumed one is answered
// 410, rather than going on without the group's events. (Before, it
// retried the group at every heartbeat and went on without it, for
// good, with no error.)
func TestRouterWatchNewGroupCompacted(t *testing.T) {
	srv, hist, g := dataRouter(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ch := watchPrefixP(t, ctx, srv, g, 1, 2)

	g3 := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusGone)
		io.WriteString(w, `{"error":"events compacted","code":"compacted","oldest_index":500}`+"\n")
	}))
	defer g3.Close()
	joined, err := hist.Latest().Join(map[uint64][]string{3: {g3.URL}})
	if err != nil {
		t.Fatal(err)
	}
	if err := hist.Append(joined); err != nil {
		t.Fatal(err)
	}
	a := keyIn(joined, 1, "pa")
	moved := hist.move(t, shardmap.BucketOf(a, 16), 3)
	g[1].apply(markerEvent("bucket_out", shardmap.BucketOf(a, 16), moved.Version))

	// A resumed watch (which also refreshes the router's config) is 410.
	if st, body := refusedWatch(t, ctx, srv.URL+"/key?watch=true&prefix=p", "1=1"); st != http.StatusGone {
		t.Fatalf("resumed watch: %d %s, want 410", st, strings.TrimSpace(body))
	}

	// The open watch: two heartbeat ticks (5 s) later, no error came.
	deadline := time.After(11 * time.Second)
	for {
		select {
		case ev, ok := <-ch:
			if !ok {
				t.Fatal("the open watch ended without an error event")
			}
			if ev[1] == "error" {
				return
			}
		case <-deadline:
			t.Fatal("the open watch goes on without group 3 (which answers 410 from its first index), and no error")
		}
	}
}

// TestRouterWatchMoveFromAGroupThatLeft: as in
// TestRouterWatchMoveFromUnwatchedGroup, but group 3 left, still
// running, before the watch's next look at the config. The watch, which
// never saw group 3, starts it at the members of the config it had the
// bucket in, and its put comes in its place. (Before, it went on without
// it and a warning; TestRouterWatchLeftOldOwnerEndsCompacted is the
// resumed case, which cannot tell whether it passed group 3's events.)
func TestRouterWatchMoveFromAGroupThatLeft(t *testing.T) {
	srv, hist, g := dataRouter(t)
	cfg := hist.Latest()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ch := watchPrefixP(t, ctx, srv, g, 1, 2)
	a := keyIn(cfg, 1, "pa")
	g[1].apply(putEvent(a, "1"))
	if ev := next(t, ch); ev[3] != "1" {
		t.Fatalf("first event %v", ev)
	}
	b := shardmap.BucketOf(a, 16)
	g3, to3, to2 := joinAndMoveThrough(t, hist, b)
	hist.leave(t, 3)
	// The router's client learns the config without group 3: a resumed
	// watch refreshes it before it answers.
	rctx, rcancel := context.WithTimeout(ctx, 5*time.Second)
	req, _ := http.NewRequestWithContext(rctx, http.MethodGet, srv.URL+"/key?watch=true&prefix=p", nil)
	req.Header.Set("Last-Event-ID", "1=1")
	if resp, err := http.DefaultClient.Do(req); err == nil {
		resp.Body.Close()
	}
	rcancel()
	g[1].apply(putEvent(a, "last-of-1"), markerEvent("bucket_out", b, to3.Version))
	g3.apply(markerEvent("bucket_in", b, to3.Version))
	g3.apply(putEvent(a, "in-3"))
	g3.apply(markerEvent("bucket_out", b, to2.Version))
	g[2].apply(markerEvent("bucket_in", b, to2.Version))
	g[2].apply(putEvent(a, "in-2"))
	var got []string
	deadline := time.After(12 * time.Second)
	for len(got) < 3 {
		select {
		case ev, ok := <-ch:
			if !ok || ev[1] == "error" {
				t.Fatalf("stream ended (%v); got %q", ev, got)
			}
			if ev[1] == "put" && ev[2] == a {
				got = append(got, ev[3])
			}
		case <-deadline:
			t.Fatalf("puts of %s: %q within 12 s; want [last-of-1 in-3 in-2]", a, got)
		}
	}
	if !slices.Equal(got, []string{"last-of-1", "in-3", "in-2"}) {
		t.Fatalf("puts of %s in the order %q; want [last-of-1 in-3 in-2]", a, got)
	}
}

// joinAndMoveThrough has a group 3 of one new in-test member join, then
// moves bucket b to it and on to group 2; it returns group 3's member and
// the configs of the two moves.
func joinAndMoveThrough(t *testing.T, hist *configHistory, b int) (g3 *dmember, to3, to2 shardmap.Config) {
	t.Helper()
	g3 = newDMember(t)
	joined, err := hist.Latest().Join(map[uint64][]string{3: {g3.srv.URL}})
	if err != nil {
		t.Fatal(err)
	}
	if err := hist.Append(joined); err != nil {
		t.Fatal(err)
	}
	return g3, hist.move(t, b, 3), hist.move(t, b, 2)
}
