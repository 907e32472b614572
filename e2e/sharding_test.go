package e2e

// A sharded deployment of real raftkv processes: a config group and shard
// groups that join by themselves, keys written through any member (curl -L
// style, following the 307s) and with the Go client (which routes by
// itself), a group joining and one leaving while writers run, and kill -9
// of the new owner's leader in the middle of a migration.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/raftkv/raftkv/client"
	"github.com/raftkv/raftkv/router"
	"github.com/raftkv/raftkv/shardmap"
	"github.com/raftkv/raftkv/testcluster"
	"go.uber.org/zap/zaptest"
)

// shardBuckets is the deployment's bucket count: enough for every group
// to own several, few enough that migrations are quick.
const shardBuckets = 16

// deployment is a config group and shard groups of real processes.
type deployment struct {
	t      *testing.T
	config *testcluster.Cluster
	groups map[uint64]*testcluster.Cluster
	// curl follows redirects, as curl -L does.
	curl *http.Client
}

func startDeployment(t *testing.T, configMembers int) *deployment {
	t.Helper()
	if testing.Short() {
		t.Skip("e2e: starts real raftkv processes")
	}
	d := &deployment{t: t, groups: map[uint64]*testcluster.Cluster{}, curl: &http.Client{Timeout: 30 * time.Second}}
	d.config = testcluster.Start(t, testcluster.Options{N: configMembers,
		ExtraArgs: []string{"--config-group", "--buckets", strconv.Itoa(shardBuckets)}})
	d.config.WaitLeader(t, leaderTimeout)
	return d
}

// configURLs are the config group members' client URLs.
func (d *deployment) configURLs() []string {
	var urls []string
	for _, id := range d.config.IDs() {
		urls = append(urls, d.config.ClientURL(id))
	}
	return urls
}

// startGroup starts shard group gid of n members; it joins by itself.
// extra is added to each member's command line.
func (d *deployment) startGroup(gid uint64, n int, extra ...string) *testcluster.Cluster {
	d.t.Helper()
	c := testcluster.Start(d.t, testcluster.Options{N: n, ExtraArgs: append([]string{
		"--group", strconv.FormatUint(gid, 10),
		"--config-endpoints", strings.Join(d.configURLs(), ","),
		"--config-poll-interval", "20ms",
	}, extra...)})
	d.groups[gid] = c
	c.WaitLeader(d.t, leaderTimeout)
	return c
}

// status is a member's GET /status with the sharding sections.
func status(c *testcluster.Cluster, id int) (client.Status, error) {
	r, err := c.Do(id, http.MethodGet, "/status", nil)
	if err != nil {
		return client.Status{}, err
	}
	var st client.Status
	if r.Status != http.StatusOK {
		return st, fmt.Errorf("GET /status: %d", r.Status)
	}
	return st, json.Unmarshal(r.Body, &st)
}

// latestConfig is the config group's latest config, read from any member.
func (d *deployment) latestConfig() (shardmap.Config, error) {
	var last error
	for _, id := range d.config.Live() {
		r, err := d.config.Do(id, http.MethodGet, "/config", nil)
		if err == nil && r.Status == http.StatusOK {
			var c shardmap.Config
			if err = json.Unmarshal(r.Body, &c); err == nil {
				return c, nil
			}
		}
		if err == nil {
			err = fmt.Errorf("GET /config: %d %s", r.Status, r.Body)
		}
		last = err
	}
	return shardmap.Config{}, last
}

// waitSettled waits until the config group's latest config lists exactly
// gids and every live member of every group has applied it, with no
// bucket in flight, and returns it.
func (d *deployment) waitSettled(gids ...uint64) shardmap.Config {
	d.t.Helper()
	gids = slices.Sorted(slices.Values(gids)) // a set: Config.GIDs is sorted
	var settled shardmap.Config
	testcluster.WaitFor(d.t, convergeTimeout, fmt.Sprintf("the groups to settle on a config of groups %v", gids), func() error {
		c, err := d.latestConfig()
		if err != nil {
			return err
		}
		if !slices.Equal(c.GIDs(), gids) {
			return fmt.Errorf("the latest config, %d, has groups %v", c.Version, c.GIDs())
		}
		var why string
		if !d.settledAt(c, &why) {
			return errors.New(why)
		}
		settled = c
		return nil
	})
	return settled
}

// settledAt reports whether every live member of every group applied c
// and has no bucket in flight; why says what is not yet.
func (d *deployment) settledAt(c shardmap.Config, why *string) bool {
	for gid, g := range d.groups {
		for _, id := range g.Live() {
			st, err := status(g, id)
			switch {
			case err != nil:
				*why = fmt.Sprintf("group %d member %d: %v", gid, id, err)
				return false
			case st.Shard == nil:
				*why = fmt.Sprintf("group %d member %d reports no shard section", gid, id)
				return false
			case st.Shard.ConfigVersion != c.Version || len(st.Shard.Buckets.Pulling)+len(st.Shard.Buckets.BePulling)+len(st.Shard.Buckets.GCing) > 0:
				*why = fmt.Sprintf("group %d member %d: config %d of %d, buckets %+v", gid, id, st.Shard.ConfigVersion, c.Version, st.Shard.Buckets)
				return false
			case !slices.Equal(st.Shard.Buckets.Serving, nonNil(c.BucketsOf(gid))):
				*why = fmt.Sprintf("group %d member %d serves %v, config %d gives it %v", gid, id, st.Shard.Buckets.Serving, c.Version, c.BucketsOf(gid))
				return false
			}
		}
	}
	return true
}

func nonNil(b []int) []int {
	if b == nil {
		return []int{}
	}
	return b
}

// curlPut writes key through member id of group gid, following redirects
// to the owning group, and retries 503 and 504 (the value is the same).
func (d *deployment) curlPut(gid uint64, id int, key, value string) error {
	u := d.groups[gid].ClientURL(id) + "/" + key
	deadline := time.Now().Add(valueTimeout)
	for {
		req, _ := http.NewRequest(http.MethodPut, u, strings.NewReader(value))
		resp, err := d.curl.Do(req)
		if err == nil {
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			switch {
			case resp.StatusCode == http.StatusNoContent:
				return nil
			case resp.StatusCode != http.StatusServiceUnavailable && resp.StatusCode != http.StatusGatewayTimeout:
				return fmt.Errorf("PUT %s: %d %s", u, resp.StatusCode, body)
			}
			err = fmt.Errorf("PUT %s: %d %s", u, resp.StatusCode, body)
		}
		if time.Now().After(deadline) {
			return err
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// curlGet reads key through member id of group gid, following redirects.
func (d *deployment) curlGet(gid uint64, id int, key string) (int, string, error) {
	resp, err := d.curl.Get(d.groups[gid].ClientURL(id) + "/" + key)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

// shardWriter writes its own keys with the Go client until stopped, and
// remembers, per key, the last value acknowledged and the last one
// attempted (a write whose outcome is unknown may have been applied).
type shardWriter struct {
	c            *client.Client
	keys         []string
	mu           sync.Mutex
	acked, tried map[string]int
	acks         int // writes acknowledged
	errs         []error
}

// ackCount is the number of writes w had acknowledged.
func (w *shardWriter) ackCount() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.acks
}

func (w *shardWriter) run(ctx context.Context, wg *sync.WaitGroup) {
	defer wg.Done()
	for n := 1; ctx.Err() == nil; n++ {
		for _, k := range w.keys {
			if ctx.Err() != nil {
				return
			}
			w.mu.Lock()
			w.tried[k] = n
			w.mu.Unlock()
			wctx, cancel := context.WithTimeout(ctx, 20*time.Second)
			_, err := w.c.Put(wctx, k, []byte(strconv.Itoa(n)))
			cancel()
			w.mu.Lock()
			switch {
			case err == nil:
				w.acked[k] = n
				w.acks++
			case ctx.Err() != nil:
			case errors.Is(err, client.ErrOutcomeUnknown) || errors.Is(err, client.ErrUnavailable) || errors.Is(err, client.ErrTimeout):
				// Allowed while members die; checked by the final values.
			default:
				w.errs = append(w.errs, fmt.Errorf("put %s=%d: %w", k, n, err))
			}
			w.mu.Unlock()
		}
	}
}

// TestShardedDeployment: the whole life of a sharded deployment, see the
// file comment.
func TestShardedDeployment(t *testing.T) {
	t.Parallel()
	d := startDeployment(t, 3)
	g1 := d.startGroup(1, 3)
	d.startGroup(2, 3)
	d.waitSettled(1, 2)

	// Keys through any member of any group, curl -L style.
	fixed := map[string]string{}
	for i := 0; i < 40; i++ {
		k, v := fmt.Sprintf("curl-%d", i), fmt.Sprintf("value-%d", i)
		gid := uint64(1 + i%2)
		if err := d.curlPut(gid, 1+i%3, k, v); err != nil {
			t.Fatal(err)
		}
		fixed[k] = v
	}
	for k, v := range fixed {
		if code, got, err := d.curlGet(1, 2, k); err != nil || code != http.StatusOK || got != v {
			t.Fatalf("GET %s through group 1: %d %q %v, want %q", k, code, got, err, v)
		}
	}

	// A routing client, and writers that run through what follows.
	c, err := client.New(client.Config{ConfigEndpoints: d.configURLs(), RequestTimeout: 20 * time.Second, Logger: zaptest.NewLogger(t).Named("client")})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, stopWriters := context.WithCancel(context.Background())
	defer stopWriters()
	var wg sync.WaitGroup
	var writers []*shardWriter
	for i := 0; i < 3; i++ {
		w := &shardWriter{c: c, acked: map[string]int{}, tried: map[string]int{}}
		for j := 0; j < 12; j++ {
			w.keys = append(w.keys, fmt.Sprintf("w%d-k%d", i, j))
		}
		writers = append(writers, w)
		wg.Add(1)
		go w.run(ctx, &wg)
	}
	// waitAcked waits until every writer had a round of its keys
	// acknowledged.
	waitAcked := func(what string) {
		t.Helper()
		starts := make([]int, len(writers))
		for i, w := range writers {
			starts[i] = w.ackCount()
		}
		testcluster.WaitFor(t, valueTimeout, "a round of every writer's keys acknowledged "+what, func() error {
			for i, w := range writers {
				if n := w.ackCount() - starts[i]; n < len(w.keys) {
					return fmt.Errorf("writer %d: %d of %d acknowledged", i, n, len(w.keys))
				}
			}
			return nil
		})
	}
	waitAcked("before group 3 joins")

	// Group 3 joins; group 1 is paused meanwhile, so that the buckets
	// group 3 takes from it stay Pulling: then group 3's leader is killed
	// with -9 in the middle of the migration, and group 1 resumed.
	for _, id := range g1.Live() {
		g1.Pause(id)
	}
	g3 := d.startGroup(3, 3)
	var victim int
	testcluster.WaitFor(t, convergeTimeout, "group 3 to start pulling from the paused group 1", func() error {
		for _, id := range g3.Live() {
			if st, err := status(g3, id); err == nil && st.Leader == st.ID && st.Shard != nil && len(st.Shard.Buckets.Pulling) > 0 {
				victim = id
				t.Logf("group 3 leader %d pulls buckets %v at config %d; killing it", id, st.Shard.Buckets.Pulling, st.Shard.ConfigVersion)
				return nil
			}
		}
		return errors.New("no leader of group 3 pulls a bucket")
	})
	g3.Kill(victim)
	for _, id := range g1.IDs() {
		g1.Resume(id)
	}
	g3.WaitLeader(t, leaderTimeout)
	d.waitSettled(1, 2, 3)
	g3.Restart(victim)
	waitAcked("after group 3 joined")

	// Group 2 leaves; its buckets go to 1 and 3. It is stopped once it
	// holds none.
	if _, err := c.Leave(context.Background(), 2); err != nil {
		t.Fatalf("leave 2: %v", err)
	}
	g2 := d.groups[2]
	d.waitSettled(1, 3) // group 2, still running, serves nothing
	waitAcked("after group 2 left")
	stopWriters()
	wg.Wait()
	for _, id := range g2.Live() {
		dg, err := g2.Digest(id)
		if err != nil || dg.Keys != 0 {
			t.Errorf("group 2 member %d after leaving: %+v %v, want no keys", id, dg, err)
		}
	}
	for _, id := range g2.Live() {
		g2.Stop(id)
	}
	delete(d.groups, 2)

	// Every acknowledged write is readable, through the client and curl
	// -L from any member, and every key is in exactly one group.
	rctx, cancel := context.WithTimeout(context.Background(), 2*valueTimeout)
	defer cancel()
	found := 0
	for k, v := range fixed {
		got, err := c.Get(rctx, k)
		if err != nil || string(got) != v {
			t.Errorf("client get %s: %q %v, want %q", k, got, err, v)
		}
		found++
		if code, body, err := d.curlGet(3, 1, k); err != nil || code != http.StatusOK || body != v {
			t.Errorf("curl -L get %s through group 3: %d %q %v", k, code, body, err)
		}
	}
	for _, w := range writers {
		for _, e := range w.errs {
			t.Errorf("writer: %v", e)
		}
		for _, k := range w.keys {
			got, err := c.Get(rctx, k)
			switch {
			case errors.Is(err, client.ErrNotFound) && w.acked[k] == 0:
				continue // never acknowledged, never applied
			case err != nil:
				t.Errorf("client get %s: %v (acked %d)", k, err, w.acked[k])
				continue
			}
			found++
			n, _ := strconv.Atoi(string(got))
			if n < w.acked[k] || n > w.tried[k] {
				t.Errorf("%s = %q: want the last acknowledged write %d or a later attempt up to %d", k, got, w.acked[k], w.tried[k])
			}
		}
	}
	keys := 0
	for gid, g := range d.groups {
		var counts []int
		for _, id := range g.Live() {
			g.WaitConverged(t, convergeTimeout)
			dg, err := g.Digest(id)
			if err != nil {
				t.Fatal(err)
			}
			counts = append(counts, dg.Keys)
		}
		t.Logf("group %d holds %v keys (per member)", gid, counts)
		keys += counts[0]
	}
	if keys != found {
		t.Errorf("the groups hold %d keys; %d were written: a key is in more than one group, or lost", keys, found)
	}
}

// inProcessRouter serves the router of d in this process, on a test
// server closed (its connections too) when the test ends.
func (d *deployment) inProcessRouter() *httptest.Server {
	t := d.t
	t.Helper()
	rc, err := client.New(client.Config{ConfigEndpoints: d.configURLs(), ClientID: "router", RequestTimeout: 30 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(rc.Close)
	h, err := router.New(router.Config{Client: rc, Logger: zaptest.NewLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	t.Cleanup(srv.CloseClientConnections)
	return srv
}
