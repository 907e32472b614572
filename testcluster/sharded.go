package testcluster

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/raftkv/raftkv/internal/testutil"
)

// This file holds sharded deployments: a config group, shard groups and
// routers, each a set of real raftkv processes (see the package doc).

// Defaults of ShardedOptions.
const (
	// DefaultShardBuckets is the bucket count of a test deployment: enough
	// for every group to own several, few enough that migrations are quick.
	DefaultShardBuckets = 16
	// DefaultShardPollInterval is the shard members' --config-poll-interval.
	DefaultShardPollInterval = 20 * time.Millisecond
	// configOpTimeout bounds a config operation, its retries included.
	configOpTimeout = 30 * time.Second
)

// ShardedOptions configures a sharded deployment. A zero field means the
// default named.
type ShardedOptions struct {
	// ConfigMembers is the size of the config group; 0 means 3.
	ConfigMembers int
	// Buckets is the config group's --buckets; 0 means DefaultShardBuckets.
	Buckets int
	// PollInterval is every shard member's --config-poll-interval; 0 means
	// DefaultShardPollInterval.
	PollInterval time.Duration
	// RequestTimeout is the --request-timeout of every member and router;
	// 0 means theirs.
	RequestTimeout time.Duration
	// Binary is the raftkv binary of every process; "" means BuildBinary.
	Binary string
	// Proxied routes the peer links of every shard group through fault
	// proxies (Options.Proxied), so a group can be partitioned.
	Proxied bool
	// ExtraArgs are appended to every member's command line.
	ExtraArgs []string
}

// Sharded is a sharded deployment of real processes started by
// StartSharded: the config group (Config) and the shard groups and routers
// started since. Its cleanup is that of each of its clusters and routers.
type Sharded struct {
	t      testing.TB
	opts   ShardedOptions
	bin    string
	client *http.Client
	// clientID identifies the config operations of this deployment's
	// helpers, so that their retries apply once.
	clientID string
	seq      uint64

	// Config is the config group.
	Config *Cluster

	mu struct {
		sync.Mutex
		groups  map[uint64]*Cluster
		routers []*Router
	}
}

// StartSharded starts the config group of a sharded deployment and waits
// for its leader. Start shard groups with StartGroup and routers with
// StartRouter.
func StartSharded(t testing.TB, opts ShardedOptions) *Sharded {
	t.Helper()
	if opts.ConfigMembers == 0 {
		opts.ConfigMembers = 3
	}
	if opts.Buckets == 0 {
		opts.Buckets = DefaultShardBuckets
	}
	if opts.PollInterval == 0 {
		opts.PollInterval = DefaultShardPollInterval
	}
	bin := opts.Binary
	if bin == "" {
		bin = BuildBinary(t)
	}
	s := &Sharded{
		t:        t,
		opts:     opts,
		bin:      bin,
		client:   &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }},
		clientID: fmt.Sprintf("testcluster-%08x", rand.Uint32()),
	}
	s.mu.groups = map[uint64]*Cluster{}
	s.Config = Start(t, Options{
		N:              opts.ConfigMembers,
		Binary:         bin,
		RequestTimeout: opts.RequestTimeout,
		ExtraArgs:      append([]string{"--config-group", "--buckets", strconv.Itoa(opts.Buckets)}, opts.ExtraArgs...),
	})
	s.Config.WaitLeader(t, 30*time.Second)
	return s
}

// ConfigURLs are the client URLs of the config group's members.
func (s *Sharded) ConfigURLs() []string {
	var urls []string
	for _, id := range s.Config.IDs() {
		urls = append(urls, s.Config.ClientURL(id))
	}
	return urls
}

// Buckets is the deployment's bucket count.
func (s *Sharded) Buckets() int { return s.opts.Buckets }

// StartGroup starts shard group gid of n members. It does not wait: the
// group elects a leader and joins the config by itself.
func (s *Sharded) StartGroup(gid uint64, n int) *Cluster {
	s.t.Helper()
	s.mu.Lock()
	_, dup := s.mu.groups[gid]
	s.mu.Unlock()
	if dup {
		s.t.Fatalf("testcluster: shard group %d started twice", gid)
	}
	c := Start(s.t, Options{
		N:              n,
		Binary:         s.bin,
		RequestTimeout: s.opts.RequestTimeout,
		Proxied:        s.opts.Proxied,
		ExtraArgs: append([]string{
			"--group", strconv.FormatUint(gid, 10),
			"--config-endpoints", strings.Join(s.ConfigURLs(), ","),
			"--config-poll-interval", s.opts.PollInterval.String(),
		}, s.opts.ExtraArgs...),
	})
	s.mu.Lock()
	s.mu.groups[gid] = c
	s.mu.Unlock()
	return c
}

// Group returns shard group gid, or nil if it was never started or was
// forgotten.
func (s *Sharded) Group(gid uint64) *Cluster {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.mu.groups[gid]
}

// GIDs are the ids of the groups started and not forgotten, ascending.
func (s *Sharded) GIDs() []uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	gids := make([]uint64, 0, len(s.mu.groups))
	for g := range s.mu.groups {
		gids = append(gids, g)
	}
	slices.Sort(gids)
	return gids
}

// StopGroup stops every live member of group gid (SIGTERM; each must exit
// 0) and forgets the group: Settled and GIDs no longer see it. Its files
// stay until the test ends.
func (s *Sharded) StopGroup(gid uint64) {
	s.t.Helper()
	c := s.Forget(gid)
	for _, id := range c.Live() {
		if code := c.Stop(id); code != 0 {
			s.t.Errorf("testcluster: group %d member %d exited with status %d on SIGTERM, want 0", gid, id, code)
		}
	}
}

// Forget forgets group gid without stopping it: Settled and GIDs no
// longer see it, and a new group may start under its id. Its members
// run until the test ends (or the caller stops them through the
// returned Cluster).
func (s *Sharded) Forget(gid uint64) *Cluster {
	s.t.Helper()
	c := s.Group(gid)
	if c == nil {
		s.t.Fatalf("testcluster: no shard group %d", gid)
	}
	s.mu.Lock()
	delete(s.mu.groups, gid)
	s.mu.Unlock()
	return c
}

// ShardConfig is a config as the config group serves it (GET /config), in
// eraft's form: bucket i is served by group Buckets[i] (0: nobody).
type ShardConfig struct {
	Version uint64
	Buckets []uint64
	Groups  map[uint64][]string
}

// GIDs are the config's groups, ascending.
func (c ShardConfig) GIDs() []uint64 {
	gids := make([]uint64, 0, len(c.Groups))
	for g := range c.Groups {
		gids = append(gids, g)
	}
	slices.Sort(gids)
	return gids
}

// BucketsOf are the buckets the config gives gid, ascending; never nil.
func (c ShardConfig) BucketsOf(gid uint64) []int {
	out := []int{}
	for b, g := range c.Buckets {
		if g == gid {
			out = append(out, b)
		}
	}
	return out
}

// LatestConfig is the config group's latest config (GET /config,
// linearizable), from the first live member that answers.
func (s *Sharded) LatestConfig() (ShardConfig, error) {
	var errs []error
	for _, id := range s.Config.Live() {
		ctx, cancel := context.WithTimeout(context.Background(), statusTimeout)
		r, err := s.Config.do(ctx, http.MethodGet, s.Config.ClientURL(id)+"/config", nil)
		cancel()
		if err == nil && r.Status != http.StatusOK {
			err = fmt.Errorf("GET /config: %d %s", r.Status, bytes.TrimSpace(r.Body))
		}
		if err == nil {
			var c ShardConfig
			if err = json.Unmarshal(r.Body, &c); err == nil {
				return c, nil
			}
		}
		errs = append(errs, fmt.Errorf("config member %d: %w", id, err))
	}
	if len(errs) == 0 {
		return ShardConfig{}, errors.New("testcluster: no live config group member")
	}
	return ShardConfig{}, errors.Join(errs...)
}

// Move asks the config group to give bucket to gid (POST /config/move) and
// returns the config it made.
func (s *Sharded) Move(bucket int, gid uint64) (ShardConfig, error) {
	return s.configOp("/config/move", map[string]any{"bucket": bucket, "gid": gid})
}

// Leave asks the config group to remove gids (POST /config/leave) and
// returns the config it made.
func (s *Sharded) Leave(gids ...uint64) (ShardConfig, error) {
	return s.configOp("/config/leave", map[string]any{"gids": gids})
}

// configOp posts body to path on the config group's live members in turn
// until one answers 200, as one writer (X-Client-ID, X-Client-Seq) whose
// retries apply once, or configOpTimeout passes.
func (s *Sharded) configOp(path string, body any) (ShardConfig, error) {
	b, err := json.Marshal(body)
	if err != nil {
		return ShardConfig{}, err
	}
	s.mu.Lock()
	s.seq++
	seq := s.seq
	s.mu.Unlock()
	deadline := time.Now().Add(configOpTimeout)
	var last error
	for time.Now().Before(deadline) {
		for _, id := range s.Config.Live() {
			req, err := http.NewRequest(http.MethodPost, s.Config.ClientURL(id)+path, bytes.NewReader(b))
			if err != nil {
				return ShardConfig{}, err
			}
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("X-Client-ID", s.clientID)
			req.Header.Set("X-Client-Seq", strconv.FormatUint(seq, 10))
			resp, err := s.Config.client.Do(req)
			if err != nil {
				last = err
				continue
			}
			rb, err := readAll(resp)
			switch {
			case err != nil:
				last = err
			case resp.StatusCode == http.StatusOK:
				var c ShardConfig
				return c, json.Unmarshal(rb, &c)
			case resp.StatusCode >= 400 && resp.StatusCode < 500:
				return ShardConfig{}, fmt.Errorf("POST %s %s: %d %s", path, b, resp.StatusCode, bytes.TrimSpace(rb))
			default:
				last = fmt.Errorf("POST %s %s to config member %d: %d %s", path, b, id, resp.StatusCode, bytes.TrimSpace(rb))
			}
		}
		time.Sleep(testutil.MaxPollInterval)
	}
	return ShardConfig{}, fmt.Errorf("testcluster: POST %s %s: no success within %v: %v", path, b, configOpTimeout, last)
}

func readAll(resp *http.Response) ([]byte, error) {
	defer resp.Body.Close()
	var buf bytes.Buffer
	_, err := buf.ReadFrom(resp.Body)
	return buf.Bytes(), err
}

// Settled checks that the config group's latest config lists exactly gids
// (all the deployment's groups, GIDs, if none are given) and that every
// live member of every group of the deployment applied it and serves
// exactly the buckets it gives its group, none in flight: a group that
// left serves none. It returns that config, or an error that says what is
// not so yet.
func (s *Sharded) Settled(gids ...uint64) (ShardConfig, error) {
	if len(gids) == 0 {
		gids = s.GIDs()
	}
	c, err := s.LatestConfig()
	if err != nil {
		return c, err
	}
	if !slices.Equal(c.GIDs(), gids) {
		return c, fmt.Errorf("config %d has groups %v, want %v", c.Version, c.GIDs(), gids)
	}
	for _, gid := range s.GIDs() {
		g := s.Group(gid)
		if g == nil {
			continue
		}
		for _, id := range g.Live() {
			st, err := g.Status(id)
			switch {
			case err != nil:
				return c, fmt.Errorf("group %d member %d: %w", gid, id, err)
			case st.Shard == nil:
				return c, fmt.Errorf("group %d member %d reports no shard section", gid, id)
			case st.Shard.ConfigVersion != c.Version || st.Shard.Buckets.Moving() > 0:
				return c, fmt.Errorf("group %d member %d at config %d of %d, buckets %+v", gid, id, st.Shard.ConfigVersion, c.Version, st.Shard.Buckets)
			case !slices.Equal(nonNil(st.Shard.Buckets.Serving), c.BucketsOf(gid)):
				return c, fmt.Errorf("group %d member %d serves %v, config %d gives it %v", gid, id, st.Shard.Buckets.Serving, c.Version, c.BucketsOf(gid))
			}
		}
	}
	return c, nil
}

// WaitSettled polls Settled(gids...) until it holds and returns the
// config, or fails t after timeout.
func (s *Sharded) WaitSettled(t testing.TB, timeout time.Duration, gids ...uint64) ShardConfig {
	t.Helper()
	var c ShardConfig
	WaitFor(t, timeout, fmt.Sprintf("the shard groups to settle on a config of groups %v", gids), func() error {
		var err error
		c, err = s.Settled(gids...)
		return err
	})
	return c
}

func nonNil(b []int) []int {
	if b == nil {
		return []int{}
	}
	return b
}

// Router is a `raftkv route` process, of a sharded deployment
// (Sharded.StartRouter) or over config group members started otherwise
// (StartRouterOver).
type Router struct {
	t       testing.TB
	bin     string
	id      int
	url     string
	logPath string
	args    []string

	mu struct {
		sync.Mutex
		procs []*process
	}
}

// StartRouter starts a router over the deployment's config group on a
// free port. It does not wait for it to listen.
func (s *Sharded) StartRouter() *Router {
	s.t.Helper()
	s.mu.Lock()
	id := len(s.mu.routers) + 1
	s.mu.Unlock()
	var extra []string
	if s.opts.RequestTimeout > 0 {
		extra = append(extra, "--request-timeout", s.opts.RequestTimeout.String())
	}
	r := startRouter(s.t, s.bin, id, s.ConfigURLs(), extra)
	s.mu.Lock()
	s.mu.routers = append(s.mu.routers, r)
	s.mu.Unlock()
	return r
}

// StartRouterOver starts `raftkv route` (BuildBinary's) over the config
// group members at configURLs, with extraArgs (TLS flags, say), on a free
// port of 127.0.0.1. It does not wait for it to listen. When the test
// ends it is stopped, as Sharded's routers are, and must exit 0.
func StartRouterOver(t testing.TB, configURLs []string, extraArgs ...string) *Router {
	t.Helper()
	return startRouter(t, BuildBinary(t), 1, configURLs, extraArgs)
}

func startRouter(t testing.TB, bin string, id int, configURLs, extraArgs []string) *Router {
	t.Helper()
	dir := filepath.Join(t.TempDir(), fmt.Sprintf("router%d", id))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatalf("testcluster: %v", err)
	}
	port := testutil.FreePorts(t, 1)[0]
	r := &Router{t: t, bin: bin, id: id, url: fmt.Sprintf("http://127.0.0.1:%d", port), logPath: filepath.Join(dir, "router.log")}
	r.args = append([]string{"route", "--config-endpoints", strings.Join(configURLs, ","),
		"--port", strconv.Itoa(port), "--listen-host", "127.0.0.1"}, extraArgs...)
	t.Cleanup(r.cleanup)
	r.start()
	return r
}

// Routers are the routers started, in order.
func (s *Sharded) Routers() []*Router {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.mu.routers)
}

// URL is the router's base URL, e.g. http://127.0.0.1:21345.
func (r *Router) URL() string { return r.url }

// LogPath is the path of the router's log (every incarnation's).
func (r *Router) LogPath() string { return r.logPath }

func (r *Router) start() {
	t := r.t
	t.Helper()
	logf, err := os.OpenFile(r.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatalf("testcluster: %v", err)
	}
	defer logf.Close()
	fmt.Fprintf(logf, "=== testcluster: %s start router %d: %s %s\n",
		time.Now().Format(time.RFC3339Nano), r.id, r.bin, strings.Join(r.args, " "))
	cmd := exec.Command(r.bin, r.args...)
	cmd.Dir = filepath.Dir(r.logPath)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = sysProcAttr(0)
	if err := cmd.Start(); err != nil {
		t.Fatalf("testcluster: start router %d: %v", r.id, err)
	}
	p := &process{cmd: cmd, url: r.url, done: make(chan struct{})}
	go func() {
		err := cmd.Wait()
		p.state, p.waitErr = cmd.ProcessState, err
		close(p.done)
	}()
	r.mu.Lock()
	r.mu.procs = append(r.mu.procs, p)
	r.mu.Unlock()
}

func (r *Router) current() *process {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.mu.procs[len(r.mu.procs)-1]
}

// Running reports whether the router's process has not exited.
func (r *Router) Running() bool { return !r.current().exited() }

// Kill sends SIGKILL to the router and waits for it to exit.
func (r *Router) Kill() {
	r.t.Helper()
	p := r.current()
	if p.exited() {
		r.t.Fatalf("testcluster: kill router %d: not running", r.id)
	}
	p.signaled.Store(true)
	p.kill()
	select {
	case <-p.done:
	case <-time.After(killTimeout):
		r.t.Fatalf("testcluster: router %d did not exit within %v of SIGKILL", r.id, killTimeout)
	}
}

// Restart starts the router again on the same port; it must have exited.
func (r *Router) Restart() {
	r.t.Helper()
	if r.Running() {
		r.t.Fatalf("testcluster: restart router %d: it is still running", r.id)
	}
	r.start()
}

// WaitReady polls GET /health until the router answers 200: it has a
// config that gives buckets to a group.
func (r *Router) WaitReady(t testing.TB, timeout time.Duration) {
	t.Helper()
	r.waitOK(t, timeout, "be ready", "/health")
}

// WaitListening polls GET /status until the router answers 200, which it
// does once it listens, with a config or without.
func (r *Router) WaitListening(t testing.TB, timeout time.Duration) {
	t.Helper()
	r.waitOK(t, timeout, "listen", "/status")
}

func (r *Router) waitOK(t testing.TB, timeout time.Duration, what, path string) {
	t.Helper()
	hc := &http.Client{Timeout: statusTimeout}
	defer hc.CloseIdleConnections()
	WaitFor(t, timeout, fmt.Sprintf("router %d to %s", r.id, what), func() error {
		resp, err := hc.Get(r.url + path)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("GET %s: %d %s", path, resp.StatusCode, bytes.TrimSpace(b))
		}
		return nil
	})
}

// cleanup stops the router (SIGTERM; it must exit 0) and reports a death
// nobody asked for and data races in its log.
func (r *Router) cleanup() {
	t := r.t
	p := r.current()
	if !p.exited() {
		p.signaled.Store(true)
		p.terminate()
		select {
		case <-p.done:
			if code := p.exitCode(); code != 0 {
				t.Errorf("testcluster: router %d exited with status %d on SIGTERM (want 0)", r.id, code)
			}
		case <-time.After(stopTimeout):
			t.Errorf("testcluster: router %d did not exit within %v of SIGTERM; killing it", r.id, stopTimeout)
			p.kill()
			<-p.done
		}
	}
	r.mu.Lock()
	procs := slices.Clone(r.mu.procs)
	r.mu.Unlock()
	for _, p := range procs {
		if !p.signaled.Load() && p.exitCode() != 0 {
			t.Errorf("testcluster: router %d died unexpectedly: %v", r.id, p.waitErr)
		}
	}
	if reports := raceReports(r.logPath); reports != "" {
		t.Errorf("testcluster: router %d log reports a data race (%s):\n%s", r.id, r.logPath, reports)
	}
	if t.Failed() {
		t.Logf("--- tail of router %d log (%s) ---\n%s", r.id, r.logPath, tail(r.logPath, logTailLines))
	}
}
