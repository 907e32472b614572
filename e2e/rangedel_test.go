package e2e

// Range deletes end to end: DELETE /key?prefix= on a member of a plain
// cluster, through a router, and with the Go client routing by itself.

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/raftkv/raftkv/client"
	"github.com/raftkv/raftkv/testcluster"
)

// TestRangeDelete: a range delete through a follower deletes exactly the
// keys of the prefix on every member, answers their number, and a watch
// of the prefix gets a delete event for each; a range delete that names
// no keys is refused.
func TestRangeDelete(t *testing.T) {
	t.Parallel()
	c, leader := startCluster(t, testcluster.Options{N: 3})
	f := followers(c, leader)[0]
	base := c.ClientURL(f)
	for i := range 5 {
		mustPut(t, c, f, fmt.Sprintf("user/%d", i), []byte("v"))
	}
	r, body := sendSettled(t, http.MethodPut, base+"/users", "kept")
	if r.StatusCode != http.StatusNoContent {
		t.Fatalf("PUT users: %d %q", r.StatusCode, body)
	}
	wcl, err := client.New(client.Config{Endpoints: []string{c.ClientURL(leader)}, RequestTimeout: 30 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer wcl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var from uint64
	fmt.Sscan(r.Header.Get("X-Raft-Index"), &from)
	events, err := wcl.Watch(ctx, client.WatchOptions{Prefix: "user/", FromIndex: from + 1})
	if err != nil {
		t.Fatal(err)
	}

	r, body = sendSettled(t, http.MethodDelete, base+"/key?prefix=user/", "")
	var out struct{ Index, Deleted uint64 }
	if r.StatusCode != http.StatusOK || json.Unmarshal([]byte(body), &out) != nil || out.Deleted != 5 || r.Header.Get("X-Raft-Index") != fmt.Sprint(out.Index) {
		t.Fatalf("DELETE /key?prefix=user/: %d %q; want 200 with 5 deleted", r.StatusCode, body)
	}
	for _, id := range c.Live() {
		for _, k := range []string{"user/0", "user/4"} {
			if r, body := sendSettled(t, http.MethodGet, fmt.Sprintf("%s/%s?min_index=%d&level=stale", c.ClientURL(id), k, out.Index), ""); r.StatusCode != http.StatusNotFound {
				t.Fatalf("member %d: GET %s after the range delete: %d %q", id, k, r.StatusCode, body)
			}
		}
		if r, body := sendSettled(t, http.MethodGet, c.ClientURL(id)+"/users", ""); r.StatusCode != http.StatusOK || body != "kept" {
			t.Fatalf("member %d: GET users, outside the prefix: %d %q", id, r.StatusCode, body)
		}
	}
	seen := map[string]bool{}
	for len(seen) < 5 {
		select {
		case ev := <-events:
			if ev.Err != nil || ev.Type != client.EventDelete || ev.KV.ModIndex != out.Index {
				t.Fatalf("watch event %+v; want deletes at %d", ev, out.Index)
			}
			seen[ev.KV.Key] = true
		case <-ctx.Done():
			t.Fatalf("the watch saw %d of the 5 deletes", len(seen))
		}
	}
	if r, body := sendSettled(t, http.MethodDelete, base+"/key", ""); r.StatusCode != http.StatusBadRequest || !strings.Contains(body, "must name it") {
		t.Fatalf("DELETE /key without a range: %d %q; want 400", r.StatusCode, body)
	}
}

// TestRouterRangeDelete: a range delete through a router deletes the
// prefix in both groups of a sharded deployment and says how many and
// each group's index; the Go client routing by itself does the same.
func TestRouterRangeDelete(t *testing.T) {
	t.Parallel()
	d := startDeployment(t, 1)
	d.startGroup(1, 1)
	d.startGroup(2, 1)
	d.waitSettled(1, 2)
	srv := d.inProcessRouter()
	put := func(n int) {
		for i := range n {
			if r, body := sendSettled(t, http.MethodPut, fmt.Sprintf("%s/r/%02d", srv.URL, i), "v"); r.StatusCode != http.StatusNoContent {
				t.Fatalf("PUT r/%02d through the router: %d %q", i, r.StatusCode, body)
			}
		}
	}
	put(40)
	r, body := sendSettled(t, http.MethodDelete, srv.URL+"/key?prefix=r/", "")
	var out struct {
		Deleted int
		Indexes map[string]uint64
		Config  uint64
	}
	if r.StatusCode != http.StatusOK || json.Unmarshal([]byte(body), &out) != nil || out.Deleted != 40 || len(out.Indexes) != 2 || out.Config == 0 {
		t.Fatalf("DELETE /key?prefix=r/ through the router: %d %q; want 40 deleted in 2 groups", r.StatusCode, body)
	}
	if r, body := sendSettled(t, http.MethodGet, srv.URL+"/key?prefix=r/", ""); r.StatusCode != http.StatusOK || !strings.Contains(body, `"kvs":[]`) {
		t.Fatalf("listing r/ after the range delete: %d %q", r.StatusCode, body)
	}

	put(10)
	cl, err := client.New(client.Config{ConfigEndpoints: d.configURLs(), RequestTimeout: 30 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	res, err := cl.DeleteRange(ctx, client.DeleteRangeOptions{Start: "r/05", End: "r/99"})
	if err != nil || res.Deleted != 5 || len(res.Indexes) != 2 {
		t.Fatalf("DeleteRange [r/05, r/99) by the routing client: %+v, %v; want 5 deleted in 2 groups", res, err)
	}
	page, err := cl.List(ctx, client.ListOptions{Prefix: "r/"})
	if err != nil || len(page.KVs) != 5 || page.KVs[4].Key != "r/04" {
		t.Fatalf("listing r/ after deleting from r/05: %+v, %v", page, err)
	}
}
