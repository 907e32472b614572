package client

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/raftkv/raftkv/testcluster"
)

// TestSetEndpoints: SetEndpoints replaces the endpoints and keeps the
// current one first when it stays; bad input and a sharded Client are
// refused; Config checks AutoSyncInterval.
func TestSetEndpoints(t *testing.T) {
	c := newTestClient(t, Config{Endpoints: []string{"http://127.0.0.1:1", "http://127.0.0.1:2"}})
	c.endpoints.Load().failed(0) // calls go to :2 first
	if err := c.SetEndpoints("http://127.0.0.1:3", "http://127.0.0.1:2"); err != nil {
		t.Fatal(err)
	}
	if got := c.Endpoints(); !slices.Equal(got, []string{"http://127.0.0.1:3", "http://127.0.0.1:2"}) {
		t.Errorf("Endpoints() = %v", got)
	}
	if _, url := c.endpoints.Load().pick(); url != "http://127.0.0.1:2" {
		t.Errorf("first endpoint %s, want the current one, :2", url)
	}
	for _, urls := range [][]string{nil, {"ftp://x"}, {"http://127.0.0.1:3", ""}} {
		if err := c.SetEndpoints(urls...); !errors.Is(err, ErrBadRequest) {
			t.Errorf("SetEndpoints(%q) = %v, want ErrBadRequest", urls, err)
		}
	}
	if got := c.Endpoints(); len(got) != 2 {
		t.Errorf("a refused SetEndpoints changed them: %v", got)
	}
	sharded := newTestClient(t, Config{ConfigEndpoints: []string{"http://127.0.0.1:1"}})
	if err := sharded.SetEndpoints("http://127.0.0.1:2"); !errors.Is(err, ErrBadRequest) {
		t.Errorf("sharded SetEndpoints = %v", err)
	}
	if err := sharded.Sync(context.Background()); !errors.Is(err, ErrBadRequest) {
		t.Errorf("sharded Sync = %v", err)
	}
	if sharded.Endpoints() != nil {
		t.Errorf("sharded Endpoints() = %v", sharded.Endpoints())
	}
	for _, cfg := range []Config{
		{Endpoints: []string{"http://127.0.0.1:1"}, AutoSyncInterval: -time.Second},
		{ConfigEndpoints: []string{"http://127.0.0.1:1"}, AutoSyncInterval: time.Second},
	} {
		if err := cfg.Validate(); !errors.Is(err, ErrInvalidConfig) {
			t.Errorf("Validate(%+v) = %v", cfg, err)
		}
	}
}

// TestClusterAutoSync: a Client given one member of a real cluster, with
// AutoSyncInterval, learns the others and a member added later, and goes
// on when the member it was given is killed.
func TestClusterAutoSync(t *testing.T) {
	t.Parallel()
	tc, _ := startCluster(t, 3)
	c := newTestClient(t, Config{Endpoints: clientURLs(tc, 1), AutoSyncInterval: 20 * time.Millisecond, RequestTimeout: 20 * time.Second})
	ctx := context.Background()
	want := func(ids ...int) func() error {
		return func() error {
			got, urls := c.Endpoints(), clientURLs(tc, ids...)
			slices.Sort(got)
			slices.Sort(urls)
			if !slices.Equal(got, urls) {
				return fmt.Errorf("endpoints %v, want %v", got, urls)
			}
			return nil
		}
	}
	testcluster.WaitFor(t, leaderTimeout, "the client to learn the three members", want(1, 2, 3))
	id := tc.AddNode(t)
	testcluster.WaitFor(t, leaderTimeout, "the client to learn the added member", want(1, 2, 3, id))
	tc.Kill(1)
	if _, err := c.Put(ctx, "after", []byte("the kill")); err != nil {
		t.Fatalf("Put after the given member was killed: %v", err)
	}
	c.Close()
	n := c.Endpoints()
	if err := c.SetEndpoints(clientURLs(tc, 2)...); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond) // five intervals: a running auto-sync would have listed them all again
	if got := c.Endpoints(); len(got) != 1 {
		t.Errorf("after Close the endpoints changed from %v to %v: auto-sync still runs", n, got)
	}
}

// TestCloseWaitsForAutoSync: once Close returns, a Sync the auto-sync
// loop was running has ended, so the endpoints change no more. The
// status answer of that Sync is held until Close returns (or 300 ms pass,
// for a Close that waits), after which the Sync would set the two
// members it lists.
func TestCloseWaitsForAutoSync(t *testing.T) {
	var srvURL string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"id":1,"leader":1,"members":[{"id":1,"peerURLs":["http://127.0.0.1:1"],"clientURLs":[%q]},{"id":2,"peerURLs":["http://127.0.0.1:3"],"clientURLs":["http://127.0.0.1:2"]}]}`, srvURL)
	}))
	defer srv.Close()
	srvURL = srv.URL
	reading, closed := make(chan struct{}), make(chan struct{})
	var once sync.Once
	hc := &http.Client{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
		resp, err := http.DefaultTransport.RoundTrip(r)
		if err == nil {
			resp.Body = &heldBody{ReadCloser: resp.Body, first: func() {
				once.Do(func() { close(reading) })
				select {
				case <-closed:
				case <-time.After(300 * time.Millisecond):
				}
			}}
		}
		return resp, err
	})}
	c := newTestClient(t, Config{Endpoints: []string{srv.URL}, AutoSyncInterval: 10 * time.Millisecond, HTTPClient: hc})
	select {
	case <-reading:
	case <-time.After(10 * time.Second):
		t.Fatal("no auto-sync within 10s")
	}
	c.Close()
	close(closed)
	n := c.Endpoints()
	time.Sleep(100 * time.Millisecond) // the held Sync, had it outlived Close, sets them at once
	if got := c.Endpoints(); !slices.Equal(got, n) {
		t.Fatalf("the endpoints changed after Close returned, from %v to %v", n, got)
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// heldBody calls first before its first Read.
type heldBody struct {
	io.ReadCloser
	first func()
	done  bool
}

func (b *heldBody) Read(p []byte) (int, error) {
	if !b.done {
		b.done = true
		b.first()
	}
	return b.ReadCloser.Read(p)
}
