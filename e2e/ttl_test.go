package e2e

// TTL expiry end to end: the leader expires a key, a watch sees it, every
// member agrees.

import (
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/raftkv/raftkv/client"
	"github.com/raftkv/raftkv/testcluster"
)

// TestTTLExpiryWatched: a key written with a TTL expires, a watch of it
// gets an "expire" event, and a read finds it absent.
func TestTTLExpiryWatched(t *testing.T) {
	t.Parallel()
	c, leader := startCluster(t, testcluster.Options{N: 3})
	cl, err := client.New(client.Config{Endpoints: []string{c.ClientURL(leader)}, RequestTimeout: 30 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	// Long enough that the read below finds the key on a busy machine.
	index, err := cl.Put(ctx, "session", []byte("s"), client.WithTTL(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	kv, _, err := cl.GetKV(ctx, "session")
	if err != nil || kv.TTL != 5*time.Second || kv.ModIndex != index {
		t.Fatalf("GetKV = %+v, %v; want the TTL of 5s at %d", kv, err, index)
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
		t.Fatal("no expiry within a minute of a TTL of 5s")
	}
	for _, id := range c.Live() {
		testcluster.WaitFor(t, valueTimeout, fmt.Sprintf("member %d to find the key expired", id), func() error {
			if r, body := sendHdr(t, http.MethodGet, c.ClientURL(id)+"/session?level=stale", "", nil); r.StatusCode != http.StatusNotFound {
				return fmt.Errorf("GET: %d %q", r.StatusCode, body)
			}
			return nil
		})
	}
}
