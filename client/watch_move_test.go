package client

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/raftkv/raftkv/shardmap"
)

// sseGroup is a shard group's member for watch tests: each stream gets
// its group header, a heartbeat, then script's messages, then
// heartbeats until the client goes, or until hangUp (if not nil) closes.
type sseGroup struct {
	srv    *httptest.Server
	gid    uint64
	script func(r *http.Request) (msgs []string, hangUp <-chan struct{})
}

func newSSEGroup(t *testing.T, gid uint64, script func(r *http.Request) ([]string, <-chan struct{})) *sseGroup {
	g := &sseGroup{gid: gid, script: script}
	g.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		msgs, hangUp := g.script(r)
		w.Header().Set("Content-Type", "text/event-stream")
		w.Header().Set(HeaderGroup, strconv.FormatUint(g.gid, 10))
		w.WriteHeader(http.StatusOK)
		fmt.Fprint(w, ": progress 5\n\n")
		for _, m := range msgs {
			fmt.Fprint(w, m)
		}
		w.(http.Flusher).Flush()
		for {
			select {
			case <-r.Context().Done():
				return
			case <-hangUp:
				return
			case <-time.After(20 * time.Millisecond):
				fmt.Fprint(w, ": progress 7\n\n")
				w.(http.Flusher).Flush()
			}
		}
	}))
	t.Cleanup(g.srv.Close)
	t.Cleanup(g.srv.CloseClientConnections)
	return g
}

func putMsg(id, key, value string) string {
	return fmt.Sprintf("id: %s\nevent: put\ndata: {\"type\":\"put\",\"key\":%q,\"value\":%q,\"mod_index\":6,\"create_index\":6}\n\n", id, key, value)
}

// nextWatchEvent waits up to 5 s for an event of ch.
func nextWatchEvent(t *testing.T, ch <-chan WatchEvent) WatchEvent {
	t.Helper()
	select {
	case ev, ok := <-ch:
		if !ok {
			t.Fatal("the watch ended without an error")
		}
		return ev
	case <-time.After(5 * time.Second):
		t.Fatal("no event within 5 s")
	}
	return WatchEvent{}
}

// TestKeyWatchEndsWhenItsBucketMoves: in a sharded deployment a Watch of
// a key whose group hands the key's bucket on ends, as compacted ones do
// (read again, watch from there), rather than stay open on a group that
// will never carry the key's changes again; and one whose stream broke
// does not resume in the key's new group from a position in the old
// group's log.
func TestKeyWatchEndsWhenItsBucketMoves(t *testing.T) {
	for _, breaks := range []bool{false, true} {
		t.Run(fmt.Sprintf("stream breaks=%v", breaks), func(t *testing.T) {
			cg := newConfigGroup(t, 8)
			var key string
			hangUp := make(chan struct{})
			g1 := newSSEGroup(t, 1, func(r *http.Request) ([]string, <-chan struct{}) {
				msgs := []string{putMsg("6.0", key, "v1")}
				if !breaks {
					b := shardmap.BucketOf(key, 8)
					msgs = append(msgs, fmt.Sprintf("id: 7.0\nevent: bucket_out\ndata: {\"type\":\"bucket_out\",\"bucket\":%d,\"version\":3}\n\n", b))
				}
				return msgs, hangUp
			})
			asked := make(chan string, 10)
			g2 := newSSEGroup(t, 2, func(r *http.Request) ([]string, <-chan struct{}) {
				asked <- r.Header.Get("Last-Event-ID")
				return nil, nil
			})
			cfg := cg.mustApply(t, func(c shardmap.Config) (shardmap.Config, error) {
				return c.Join(map[uint64][]string{1: {g1.srv.URL}, 2: {g2.srv.URL}})
			})
			for i := 0; key == ""; i++ {
				if k := fmt.Sprint("k", i); cfg.OwnerOfKey(k) == 1 {
					key = k
				}
			}
			c := newTestClient(t, Config{ConfigEndpoints: []string{cg.srv.URL}, RequestTimeout: 2 * time.Second})
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			ch, err := c.Watch(ctx, WatchOptions{Key: key, IdleTimeout: time.Second})
			if err != nil {
				t.Fatal(err)
			}
			if ev := nextWatchEvent(t, ch); ev.Err != nil || string(ev.KV.Value) != "v1" {
				t.Fatalf("first event %+v, want the put of v1", ev)
			}
			if breaks {
				// The bucket moves while the stream is down, and the
				// client learns it before it reconnects.
				cg.mustApply(t, func(c shardmap.Config) (shardmap.Config, error) { return c.Move(shardmap.BucketOf(key, 8), 2) })
				if _, err := c.Refresh(ctx, 0); err != nil {
					t.Fatal(err)
				}
				close(hangUp) // the stream breaks
			}
			ev := nextWatchEvent(t, ch)
			if !errors.Is(ev.Err, ErrCompacted) {
				t.Fatalf("after the move: %+v; want the watch ended with ErrCompacted", ev)
			}
			close(asked)
			for id := range asked {
				if id != "" {
					t.Fatalf("the key's new group was asked to resume after %q, a position in the old group's log", id)
				}
			}
		})
	}
}

// TestWatchProgressCarriesConfig: a heartbeat that a member's ": config
// N" comment precedes comes with SaysConfig and Version N (": config 0":
// the member cannot tell); one without, with neither.
func TestWatchProgressCarriesConfig(t *testing.T) {
	g := newSSEGroup(t, 1, func(r *http.Request) ([]string, <-chan struct{}) {
		return []string{": config 4\n: progress 6\n\n", ": progress 8\n\n", ": config 0\n: progress 9\n\n"}, nil
	})
	c := newTestClient(t, Config{Endpoints: []string{g.srv.URL}})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ch, err := c.Watch(ctx, WatchOptions{Prefix: "p", Progress: true, Markers: true})
	if err != nil {
		t.Fatal(err)
	}
	type says struct {
		version uint64
		says    bool
	}
	want := map[uint64]says{5: {0, false}, 6: {4, true}, 8: {0, false}, 9: {0, true}}
	for len(want) > 0 {
		ev := nextWatchEvent(t, ch)
		if ev.Type != EventProgress {
			t.Fatalf("event %+v", ev)
		}
		v, ok := want[ev.KV.ModIndex]
		if !ok {
			continue
		}
		if ev.Version != v.version || ev.SaysConfig != v.says {
			t.Errorf("heartbeat at %d: version %d, says %v; want %d, %v", ev.KV.ModIndex, ev.Version, ev.SaysConfig, v.version, v.says)
		}
		delete(want, ev.KV.ModIndex)
	}
}

// TestWatchEndsWhenEveryStreamEndsCompacted: a stream that ends with a
// compacted error event is resumed at the next member, but once every
// member (here a router, the only endpoint) ended one so in a row
// without moving the watch on, the Watch ends with ErrCompacted instead
// of resuming into it again and again.
func TestWatchEndsWhenEveryStreamEndsCompacted(t *testing.T) {
	var streams atomic.Int64
	g := newSSEGroup(t, 1, func(r *http.Request) ([]string, <-chan struct{}) {
		streams.Add(1)
		hangUp := make(chan struct{})
		close(hangUp)
		return []string{"event: error\ndata: {\"error\":\"events compacted\",\"code\":\"compacted\"}\n\n"}, hangUp
	})
	c := newTestClient(t, Config{Endpoints: []string{g.srv.URL}})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ch, err := c.Watch(ctx, WatchOptions{Prefix: "p"})
	if err != nil {
		t.Fatal(err)
	}
	for {
		ev := nextWatchEvent(t, ch)
		if ev.Err != nil {
			if !errors.Is(ev.Err, ErrCompacted) || streams.Load() > 3 {
				t.Fatalf("the watch ended with %v after %d streams, want ErrCompacted after a few", ev.Err, streams.Load())
			}
			return
		}
	}
}

// TestKeyWatchResumedAfterItsBucketMoved: in a sharded deployment a
// Watch of a key names, in its events' ids, the group whose log they are
// in. Given such an id as LastEventID after the key's bucket moved to
// another group, a new Watch ends as compacted (read again) instead of
// resuming at that index of the new group's log; with the key still in
// that group, it resumes there.
func TestKeyWatchResumedAfterItsBucketMoved(t *testing.T) {
	cg := newConfigGroup(t, 8)
	var key string
	g1 := newSSEGroup(t, 1, func(r *http.Request) ([]string, <-chan struct{}) {
		if r.Header.Get("Last-Event-ID") != "" {
			return nil, nil
		}
		return []string{putMsg("6.0", key, "v1")}, nil
	})
	asked := make(chan string, 10)
	g2 := newSSEGroup(t, 2, func(r *http.Request) ([]string, <-chan struct{}) {
		asked <- r.Header.Get("Last-Event-ID") + r.URL.Query().Get("from_index")
		return nil, nil
	})
	cfg := cg.mustApply(t, func(c shardmap.Config) (shardmap.Config, error) {
		return c.Join(map[uint64][]string{1: {g1.srv.URL}, 2: {g2.srv.URL}})
	})
	for i := 0; key == ""; i++ {
		if k := fmt.Sprint("k", i); cfg.OwnerOfKey(k) == 1 {
			key = k
		}
	}
	c := newTestClient(t, Config{ConfigEndpoints: []string{cg.srv.URL}, RequestTimeout: 2 * time.Second})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ch, err := c.Watch(ctx, WatchOptions{Key: key})
	if err != nil {
		t.Fatal(err)
	}
	ev := nextWatchEvent(t, ch)
	if ev.Err != nil || ev.ID != "1=6.0" || ev.Index != 6 {
		t.Fatalf("first event %+v, want id 1=6.0", ev)
	}
	// Resumed while the key is still in group 1: it goes on there.
	if _, err := c.Watch(ctx, WatchOptions{Key: key, LastEventID: ev.ID}); err != nil {
		t.Fatalf("resumed in the same group: %v", err)
	}
	cg.mustApply(t, func(c shardmap.Config) (shardmap.Config, error) { return c.Move(shardmap.BucketOf(key, 8), 2) })
	if _, err := c.Refresh(ctx, 0); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Watch(ctx, WatchOptions{Key: key, LastEventID: ev.ID}); !errors.Is(err, ErrCompacted) {
		t.Fatalf("resumed from group 1's %s after the key moved to group 2: %v, want ErrCompacted", ev.ID, err)
	}
	close(asked)
	for q := range asked {
		if q != "" {
			t.Fatalf("group 2 was asked to resume at %q, a position in group 1's log", q)
		}
	}
}

// TestKeyWatchThroughARouter: a router relays a sharded key watch with
// ids that name their group ("2=6.0") and no group header. A Client of
// the router (not sharded itself) delivers those ids as they are, with
// their index, and resumes a broken stream with the group in its
// Last-Event-ID, so that the router resumes in that group's log, or ends
// the watch if the key moved: the first time with the event's id, then,
// after a heartbeat, with the index it names.
func TestKeyWatchThroughARouter(t *testing.T) {
	var streams atomic.Int64
	asked := make(chan string, 10)
	router := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := streams.Add(1)
		asked <- r.Header.Get("Last-Event-ID") + "|" + r.URL.Query().Get("from_index")
		w.Header().Set("Content-Type", "text/event-stream")
		w.WriteHeader(http.StatusOK)
		switch n {
		case 1:
			fmt.Fprint(w, putMsg("2=6.0", "k", "v1"))
		case 2:
			fmt.Fprint(w, ": progress 9\n\n")
		default:
			fmt.Fprint(w, putMsg("2=10.0", "k", "v2"))
			w.(http.Flusher).Flush()
			<-r.Context().Done()
		}
	}))
	t.Cleanup(router.Close)
	t.Cleanup(router.CloseClientConnections)
	c := newTestClient(t, Config{Endpoints: []string{router.URL}})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ch, err := c.Watch(ctx, WatchOptions{Key: "k"})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []struct {
		id    string
		index uint64
	}{{"2=6.0", 6}, {"2=10.0", 10}} {
		ev := nextWatchEvent(t, ch)
		if ev.Err != nil || ev.ID != want.id || ev.Index != want.index {
			t.Fatalf("event %+v, want id %s at index %d", ev, want.id, want.index)
		}
	}
	for i, want := range []string{"|", "2=6.0|", "2=9|"} {
		if got := <-asked; got != want {
			t.Errorf("stream %d asked with Last-Event-ID|from_index %q, want %q", i+1, got, want)
		}
	}
}
