package testcluster

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/raftkv/raftkv/daemon"
	"github.com/raftkv/raftkv/faultproxy"
	"github.com/raftkv/raftkv/internal/testcerts"
	"github.com/raftkv/raftkv/internal/testutil"
	"github.com/raftkv/raftkv/peerurl"
)

// Timeouts of process control. They are generous because nodes built with -race on a
// small machine are slow.
const (
	// stopTimeout bounds how long a node may take to exit after SIGTERM.
	stopTimeout = 20 * time.Second
	// killTimeout bounds how long a node may take to exit after SIGKILL.
	killTimeout = 10 * time.Second
	// catchTimeout bounds how long a just-started node may take to listen
	// (and so to catch SIGTERM) before terminate sends it anyway.
	catchTimeout = 10 * time.Second
	// logTailLines is how many lines of each node log a failed test prints.
	logTailLines = 100
)

// LogsEnv names an environment variable that, when set to a directory, makes every
// cluster copy its node logs to <dir>/<test name>/node<id>.log when its test ends (the
// second cluster of one test to <dir>/<test name>-cluster2/, and so on).
const LogsEnv = "RAFTKV_TESTCLUSTER_LOGS"

// Options configures a test cluster. A zero field means the daemon's default.
type Options struct {
	// N is the number of nodes started by Start; 0 means 3.
	N int
	// SnapshotCount is --snapshot-count: applied entries between snapshots.
	SnapshotCount int
	// SnapshotCatchUpEntries is --snapshot-catchup-entries: entries kept after compaction.
	SnapshotCatchUpEntries int
	// TickMs is --tick-ms: the raft tick in milliseconds.
	TickMs int
	// RequestTimeout is --request-timeout. The client waits this long plus a margin.
	RequestTimeout time.Duration
	// ExtraArgs are appended to every node's command line.
	ExtraArgs []string
	// Binary is the raftkv binary to run; "" means BuildBinary(t).
	Binary string
	// Proxied routes every peer link through a fault-injecting proxy, so
	// Isolate, Partition and SetLoss work. Node i's --cluster entry for
	// node j is then the proxy of link i->j. A node added later (AddNode)
	// gets such proxies for its own links, and the others reach it through
	// one inbound proxy that tells them apart by rafthttp's X-Server-From
	// header (over TLS it cannot, see SetLinks).
	Proxied bool

	// InProcess runs each node as a daemon.Member in the test process
	// instead of a raftkv process (see the package doc for what it
	// supports). ExtraArgs and Binary do not apply; Configure does.
	InProcess bool
	// Configure, for an in-process cluster, adjusts node id's configuration
	// before each of its starts, as ExtraArgs does for processes.
	Configure func(id int, cfg *daemon.Config)
	// Prepare, when set, is called before each of the first N nodes first
	// starts, with its id, the --cluster peer URLs it gets and its
	// --data-dir (which does not exist yet): a test that starts a cluster
	// from made data dirs (`raftkv restore`) makes them there.
	Prepare func(id int, peers []string, dataDir string)
	// Blackholable runs every node under a user id of its own, so that
	// Blackhole can drop its peer traffic with iptables. It needs root and
	// iptables: call RequireBlackhole before Start.
	Blackholable bool
	// TLS, when set, runs every node with TLS on both ports and these
	// certificates: https URLs, --cert-file (TLS.Server),
	// --peer-cert-file (TLS.Peer), both trusted CAs TLS.CA, and
	// --client-cert-auth and --peer-client-cert-auth; the cluster's own
	// client shows TLS.Client. Processes only; with Proxied, each link's
	// TLS runs end to end through its proxy. Nil: http.
	TLS *testcerts.Set
}

// Cluster is a set of raftkv processes started by Start. Node ids are 1-based.
type Cluster struct {
	t      testing.TB
	bin    string
	opts   Options
	dir    string
	client *http.Client

	mu struct {
		sync.Mutex
		nodes      []*node // index is the raft id; nodes[0] is nil
		proxies    map[link]*faultproxy.Proxy
		inbound    map[int]*faultproxy.Proxy // of nodes added at runtime (addProxies)
		blackholes map[int]blackhole         // by node id
	}
}

// node is one raft member, across all its process incarnations.
type node struct {
	id        int
	peerURL   string
	clientURL string
	dir       string
	logPath   string
	args      []string
	bin       string     // the binary it runs, when not the cluster's (RestartWith)
	uid       int        // the user and group id it runs as; 0: the test's own
	procs     []*process // every incarnation; the last one is the current one
}

// process is one incarnation of a node: an OS process, or a member in
// this one (see inproc.go).
type process struct {
	cmd      *exec.Cmd      // nil for a member
	member   *daemon.Member // nil for an OS process
	code     int            // a member's exit status, once done is closed
	done     chan struct{}  // closed when the process has exited and been reaped
	state    *os.ProcessState
	waitErr  error
	signaled atomic.Bool // we signaled or awaited it, so its exit is expected
	url      string      // an OS process's client URL (terminate)
}

// AwaitListening waits, for at most 10 s (catchTimeout), until something
// accepts connections at clientURL's host:port or exited reports true.
// Call it before sending SIGTERM to a raftkv process a test started:
// raftkv catches SIGINT and SIGTERM before it listens. Before that (its
// runtime's start, and its start again with the monitor setting) either
// signal ends it by the signal's default action, which is not the clean
// stop a SIGTERM asks for.
func AwaitListening(clientURL string, exited func() bool) {
	addr := hostPort(clientURL)
	deadline := time.Now().Add(catchTimeout)
	for !exited() && time.Now().Before(deadline) {
		c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err == nil {
			c.Close()
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func (p *process) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Start starts an opts.N-node cluster (3 by default) and registers a cleanup that stops
// it. It returns once every node accepts connections on its client port (or has
// exited), at most 10 s each; it does not wait for a leader; call WaitLeader.
func Start(t testing.TB, opts Options) *Cluster {
	t.Helper()
	if opts.N == 0 {
		opts.N = 3
	}
	bin := opts.Binary
	switch {
	case opts.InProcess && (len(opts.ExtraArgs) > 0 || bin != ""):
		t.Fatalf("testcluster: an in-process cluster has no command line; use Options.Configure instead of ExtraArgs or Binary")
	case opts.TLS != nil && opts.InProcess:
		t.Fatalf("testcluster: a TLS cluster runs processes; it does not support InProcess")
	case opts.InProcess && opts.Blackholable:
		t.Fatalf("testcluster: Blackholable runs each node as a process of its own user; it needs processes, not InProcess")
	case bin == "" && !opts.InProcess:
		bin = BuildBinary(t)
	}
	reqTimeout := opts.RequestTimeout
	if reqTimeout == 0 {
		reqTimeout = 5 * time.Second
	}
	c := &Cluster{
		t:    t,
		bin:  bin,
		opts: opts,
		dir:  t.TempDir(),
		client: &http.Client{
			Transport: &http.Transport{
				DialContext:         (&net.Dialer{Timeout: 2 * time.Second}).DialContext,
				MaxIdleConns:        1024,
				MaxIdleConnsPerHost: 512,
				IdleConnTimeout:     30 * time.Second,
				DisableCompression:  true,
			},
			Timeout: reqTimeout + 10*time.Second,
			// raftkv serves every request on any node; a redirect is a bug to see.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
	}
	if opts.TLS != nil {
		c.client.Transport.(*http.Transport).TLSClientConfig = clientTLS(t, opts.TLS.CA.CertFile, opts.TLS.Client)
	}
	c.mu.nodes = []*node{nil}
	if opts.Blackholable {
		c.openDirs()
	}
	ports := testutil.FreePorts(t, 2*opts.N)
	for id := 1; id <= opts.N; id++ {
		c.mu.nodes = append(c.mu.nodes, c.newNode(id, ports[2*id-2], ports[2*id-1]))
	}
	peers := c.peerURLs()
	if opts.Proxied {
		c.startProxies(t, opts.N) // its cleanup runs after the nodes stop
	}
	t.Cleanup(c.cleanup)
	for id := 1; id <= opts.N; id++ {
		n := c.node(id)
		n.args = c.args(n, c.peersFor(id, peers), false)
		if opts.Prepare != nil {
			opts.Prepare(id, c.peersFor(id, peers), c.DataDir(id))
		}
		c.startProcess(n)
	}
	// A majority can elect a leader before the last process listens (a
	// member campaigns as soon as it reaches a quorum), and a test may
	// talk to any node once WaitLeader returns. (An in-process member
	// listens before startMember returns.)
	for id := 1; id <= opts.N; id++ {
		c.AwaitNodeListening(id)
	}
	return c
}

// AwaitNodeListening waits, for at most 10 s, until node id's current
// process accepts connections on its client port or has exited
// (AwaitListening). An in-process member listens before it is started, so
// for one it returns at once.
func (c *Cluster) AwaitNodeListening(id int) {
	if p := c.current(id); p != nil && p.member == nil {
		AwaitListening(p.url, p.exited)
	}
}

func (c *Cluster) newNode(id, peerPort, clientPort int) *node {
	dir := filepath.Join(c.dir, fmt.Sprintf("node%d", id))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		c.t.Fatalf("testcluster: %v", err)
	}
	scheme := "http"
	if c.opts.TLS != nil {
		scheme = "https"
	}
	n := &node{
		id:        id,
		peerURL:   fmt.Sprintf("%s://127.0.0.1:%d", scheme, peerPort),
		clientURL: fmt.Sprintf("%s://127.0.0.1:%d", scheme, clientPort),
		dir:       dir,
		logPath:   filepath.Join(dir, "node.log"),
	}
	if c.opts.Blackholable {
		n.uid = freeUID()
		if err := os.Chown(dir, n.uid, n.uid); err != nil {
			c.t.Fatalf("testcluster: node %d runs as uid %d: %v", id, n.uid, err)
		}
	}
	return n
}

// args is the raftexample-style command line of n.
func (c *Cluster) args(n *node, peers []string, join bool) []string {
	port := n.clientURL[strings.LastIndexByte(n.clientURL, ':')+1:]
	args := []string{
		"--id", strconv.Itoa(n.id),
		"--cluster", strings.Join(peers, ","),
		"--port", port,
		"--data-dir", filepath.Join(n.dir, "data"),
	}
	if join {
		args = append(args, "--join")
	}
	if c.opts.SnapshotCount > 0 {
		args = append(args, "--snapshot-count", strconv.Itoa(c.opts.SnapshotCount))
	}
	if c.opts.SnapshotCatchUpEntries > 0 {
		args = append(args, "--snapshot-catchup-entries", strconv.Itoa(c.opts.SnapshotCatchUpEntries))
	}
	if c.opts.TickMs > 0 {
		args = append(args, "--tick-ms", strconv.Itoa(c.opts.TickMs))
	}
	if c.opts.RequestTimeout > 0 {
		args = append(args, "--request-timeout", c.opts.RequestTimeout.String())
	}
	if s := c.opts.TLS; s != nil {
		args = append(args,
			"--cert-file", s.Server.CertFile, "--key-file", s.Server.KeyFile,
			"--trusted-ca-file", s.CA.CertFile, "--client-cert-auth",
			"--peer-cert-file", s.Peer.CertFile, "--peer-key-file", s.Peer.KeyFile,
			"--peer-trusted-ca-file", s.CA.CertFile, "--peer-client-cert-auth")
	}
	return append(args, c.opts.ExtraArgs...)
}

// clientTLS is the TLS of a client that trusts the CA in caFile and shows
// pair (no certificate when pair is empty).
func clientTLS(t testing.TB, caFile string, pair testcerts.Pair) *tls.Config {
	t.Helper()
	pem, err := os.ReadFile(caFile)
	if err != nil {
		t.Fatalf("testcluster: %v", err)
	}
	cfg := &tls.Config{RootCAs: x509.NewCertPool()}
	if !cfg.RootCAs.AppendCertsFromPEM(pem) {
		t.Fatalf("testcluster: %s holds no certificate", caFile)
	}
	if pair.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(pair.CertFile, pair.KeyFile)
		if err != nil {
			t.Fatalf("testcluster: %v", err)
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	return cfg
}

// ClientTLS is the TLS of a client of a TLS cluster that shows pair (none
// when it is empty), for tests that talk to it with a client of their own.
func (c *Cluster) ClientTLS(pair testcerts.Pair) *tls.Config {
	c.t.Helper()
	if c.opts.TLS == nil {
		c.t.Fatalf("testcluster: ClientTLS of a cluster without TLS")
	}
	return clientTLS(c.t, c.opts.TLS.CA.CertFile, pair)
}

// startProcess starts a new incarnation of n with n.args, appending to its log file.
func (c *Cluster) startProcess(n *node) {
	c.t.Helper()
	if c.opts.InProcess {
		c.startMember(n)
		return
	}
	logf, err := os.OpenFile(n.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		c.t.Fatalf("testcluster: %v", err)
	}
	defer logf.Close() // the child has its own descriptor
	bin := c.bin
	if n.bin != "" {
		bin = n.bin
	}
	fmt.Fprintf(logf, "=== testcluster: %s start node %d: %s %s\n",
		time.Now().Format(time.RFC3339Nano), n.id, bin, strings.Join(n.args, " "))
	cmd := exec.Command(bin, n.args...)
	cmd.Dir = n.dir
	cmd.Stdout = logf
	cmd.Stderr = logf
	cmd.SysProcAttr = sysProcAttr(n.uid)
	if err := cmd.Start(); err != nil {
		c.t.Fatalf("testcluster: start node %d: %v", n.id, err)
	}
	p := &process{cmd: cmd, url: n.clientURL, done: make(chan struct{})}
	go func() {
		err := cmd.Wait()
		p.state, p.waitErr = cmd.ProcessState, err
		close(p.done)
	}()
	c.mu.Lock()
	n.procs = append(n.procs, p)
	c.mu.Unlock()
}

// node returns node id or fails the test.
func (c *Cluster) node(id int) *node {
	c.t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	if id < 1 || id >= len(c.mu.nodes) {
		c.t.Fatalf("testcluster: no node %d (ids are 1..%d)", id, len(c.mu.nodes)-1)
	}
	return c.mu.nodes[id]
}

// current returns the current process of node id, or nil if it never started.
func (c *Cluster) current(id int) *process {
	n := c.node(id)
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(n.procs) == 0 {
		return nil
	}
	return n.procs[len(n.procs)-1]
}

func (c *Cluster) peerURLs() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	urls := make([]string, 0, len(c.mu.nodes)-1)
	for _, n := range c.mu.nodes[1:] {
		urls = append(urls, n.peerURL)
	}
	return urls
}

// IDs returns the id of every node ever started, removed ones included.
func (c *Cluster) IDs() []int {
	c.mu.Lock()
	defer c.mu.Unlock()
	ids := make([]int, 0, len(c.mu.nodes)-1)
	for _, n := range c.mu.nodes[1:] {
		ids = append(ids, n.id)
	}
	return ids
}

// Live returns the ids of the nodes whose process is running.
func (c *Cluster) Live() []int {
	var ids []int
	for _, id := range c.IDs() {
		if c.Running(id) {
			ids = append(ids, id)
		}
	}
	return ids
}

// Running reports whether node id has a process that has not exited.
func (c *Cluster) Running(id int) bool {
	p := c.current(id)
	return p != nil && !p.exited()
}

// ClientURL returns the client API base URL of node id, e.g. http://127.0.0.1:12380.
func (c *Cluster) ClientURL(id int) string { return c.node(id).clientURL }

// PeerURL returns the raft peer URL of node id, its entry in --cluster.
func (c *Cluster) PeerURL(id int) string { return c.node(id).peerURL }

// LogPath returns the path of node id's log file (stdout and stderr of every incarnation).
func (c *Cluster) LogPath(id int) string { return c.node(id).logPath }

// LogContains reports whether node id's log contains substr.
func (c *Cluster) LogContains(id int, substr string) bool {
	b, err := os.ReadFile(c.LogPath(id))
	return err == nil && bytes.Contains(b, []byte(substr))
}

// Kill sends SIGKILL to node id and waits for it to exit.
func (c *Cluster) Kill(id int) {
	c.t.Helper()
	c.needProcesses("Kill")
	p := c.mustRunning(id, "kill")
	c.markLogs(fmt.Sprintf("kill node %d", id))
	p.signaled.Store(true)
	p.cmd.Process.Signal(syscall.SIGKILL)
	select {
	case <-p.done:
	case <-time.After(killTimeout):
		c.t.Fatalf("testcluster: node %d did not exit within %v of SIGKILL", id, killTimeout)
	}
}

// Stop sends SIGTERM to node id, waits for it to exit and returns its exit code. If it
// does not exit within a deadline, Stop fails the test and kills it.
func (c *Cluster) Stop(id int) int {
	c.t.Helper()
	p := c.mustRunning(id, "stop")
	c.markLogs(fmt.Sprintf("stop node %d", id))
	p.signaled.Store(true)
	p.terminate()
	select {
	case <-p.done:
		return p.exitCode()
	case <-time.After(stopTimeout):
		c.t.Errorf("testcluster: node %d did not exit within %v of SIGTERM; killing it", id, stopTimeout)
		p.kill()
		<-p.done
		return p.exitCode()
	}
}

// Restart starts node id again with the same command line and data directory. The node
// must have exited (Kill, Stop, or on its own).
func (c *Cluster) Restart(id int) {
	c.t.Helper()
	if c.Running(id) {
		c.t.Fatalf("testcluster: restart node %d: it is still running", id)
	}
	c.startProcess(c.node(id))
}

// MovePeer gives node id a new peer URL, on a free port, in every node's
// command line (as an operator who moves a member edits the Procfile),
// and returns it. The members learn it from a member update (POST
// /<id>/update); node id listens there once restarted.
func (c *Cluster) MovePeer(id int) string {
	c.t.Helper()
	if c.opts.InProcess || c.opts.Proxied {
		c.t.Fatalf("testcluster: MovePeer needs a cluster of processes without proxies")
	}
	n := c.node(id)
	port := testutil.FreePorts(c.t, 1)[0]
	c.mu.Lock()
	defer c.mu.Unlock()
	old := n.peerURL
	n.peerURL = fmt.Sprintf("%s://127.0.0.1:%d", peerurl.Scheme(old), port)
	for _, other := range c.mu.nodes[1:] {
		for i := 1; i < len(other.args); i++ {
			if other.args[i-1] == "--cluster" {
				peers := strings.Split(other.args[i], ",")
				for j, p := range peers {
					if p == old {
						peers[j] = n.peerURL
					}
				}
				other.args[i] = strings.Join(peers, ",")
			}
		}
	}
	return n.peerURL
}

// RestartWith is Restart with another binary, bin, which node id runs
// from then on, as in a rolling upgrade.
func (c *Cluster) RestartWith(id int, bin string) {
	c.t.Helper()
	if c.opts.InProcess {
		c.t.Fatalf("testcluster: an in-process cluster runs no binary")
	}
	n := c.node(id)
	c.mu.Lock()
	n.bin = bin
	c.mu.Unlock()
	c.Restart(id)
}

// Wait waits up to timeout for node id to exit on its own and returns its exit code
// (-1 if a signal killed it). The error says the node did not exit in time.
func (c *Cluster) Wait(id int, timeout time.Duration) (int, error) {
	c.t.Helper()
	p := c.current(id)
	if p == nil {
		c.t.Fatalf("testcluster: wait node %d: never started", id)
	}
	select {
	case <-p.done:
		// Its exit is what the test waited for, not a crash to report in cleanup.
		p.signaled.Store(true)
		return p.exitCode(), nil
	case <-time.After(timeout):
		return 0, fmt.Errorf("testcluster: node %d still running after %v", id, timeout)
	}
}

func (c *Cluster) mustRunning(id int, op string) *process {
	c.t.Helper()
	p := c.current(id)
	if p == nil || p.exited() {
		c.t.Fatalf("testcluster: %s node %d: not running", op, id)
	}
	return p
}

// AddNode adds a node with id max+1: it allocates its ports, asks a live member to add
// it (POST /<id> with its peer URL, retried until 204 or a deadline) and starts it with
// --join and the full --cluster list. It does not wait for the node to catch up.
func (c *Cluster) AddNode(t testing.TB) int {
	t.Helper()
	return c.addNode(t, "")
}

// AddLearner is AddNode for a learner (POST /<id>?learner=true): it receives the log
// but does not vote until promoted (POST /<id>/promote).
func (c *Cluster) AddLearner(t testing.TB) int {
	t.Helper()
	return c.addNode(t, "?learner=true")
}

// addNode adds and starts a node, asking with query appended to POST /<id>.
func (c *Cluster) addNode(t testing.TB, query string) int {
	t.Helper()
	ports := testutil.FreePorts(t, 2)
	c.mu.Lock()
	id := len(c.mu.nodes)
	c.mu.Unlock()
	n := c.newNode(id, ports[0], ports[1])
	c.mu.Lock()
	c.mu.nodes = append(c.mu.nodes, n)
	c.mu.Unlock()

	peerURL, peers := n.peerURL, c.peerURLs()
	c.mu.Lock()
	proxied := c.mu.proxies != nil
	c.mu.Unlock()
	if proxied {
		peerURL = c.addProxies(t, id)
		peers = c.peersFor(id, peers)
	}
	path := "/" + strconv.Itoa(id) + query
	attempts := 0
	WaitFor(t, 30*time.Second, "POST "+path+" accepted by a live member", func() error {
		var errs []error
		for _, m := range c.Live() {
			if m == id {
				continue
			}
			attempts++
			r, err := c.Do(m, http.MethodPost, path, []byte(peerURL))
			switch {
			case err != nil:
				errs = append(errs, err)
			case r.Status == http.StatusNoContent:
				return nil
			case r.Status == http.StatusConflict && attempts > 1:
				// An earlier attempt that timed out was applied after all.
				return nil
			default:
				errs = append(errs, fmt.Errorf("node %d: %d %s", m, r.Status, bytes.TrimSpace(r.Body)))
			}
		}
		return errors.Join(errs...)
	})
	n.args = c.args(n, peers, true)
	c.startProcess(n)
	return id
}

// cleanup stops every running node, then reports unexpected exits and data races, and
// if the test failed prints the nodes' statuses, the log tails and the timeline.
func (c *Cluster) cleanup() {
	t := c.t
	if t.Failed() {
		// How the nodes stood when the test gave up, before they stop.
		st, errs := c.statuses()
		t.Logf("testcluster: at the failure: %s %s", summarize(st), strings.Join(errs, "; "))
	}
	var wg sync.WaitGroup
	for _, id := range c.IDs() {
		p := c.current(id)
		if p == nil || p.exited() {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			p.signaled.Store(true)
			p.resume() // in case a test paused it
			p.terminate()
			select {
			case <-p.done:
				if code := p.exitCode(); code != 0 {
					t.Errorf("testcluster: node %d exited with status %d on SIGTERM (want 0)", id, code)
				}
			case <-time.After(stopTimeout):
				t.Errorf("testcluster: node %d did not exit within %v of SIGTERM; killing it", id, stopTimeout)
				p.kill()
				<-p.done
			}
		}()
	}
	wg.Wait()
	c.client.CloseIdleConnections()

	for _, id := range c.IDs() {
		n := c.node(id)
		c.mu.Lock()
		procs := append([]*process(nil), n.procs...)
		c.mu.Unlock()
		for _, p := range procs {
			if !p.signaled.Load() && p.exitCode() != 0 {
				t.Errorf("testcluster: node %d died unexpectedly: %v", id, p.waitErr)
			}
		}
		if reports := raceReports(n.logPath); reports != "" {
			t.Errorf("testcluster: node %d log reports a data race (%s):\n%s", id, n.logPath, reports)
		}
	}
	if dir := os.Getenv(LogsEnv); dir != "" {
		c.keepLogs(dir)
	}
	if t.Failed() {
		logs := make(map[int]string)
		for _, id := range c.IDs() {
			logs[id] = c.LogPath(id)
			t.Logf("--- tail of node %d log (%s) ---\n%s", id, c.LogPath(id), tail(c.LogPath(id), logTailLines))
		}
		t.Logf("--- the last %d events of the node logs, oldest first ---\n%s", timelineLines, timeline(logs, timelineLines))
	}
}

// keepLogs copies every node log to dir/<test name>/node<id>.log, so they outlive
// t.TempDir().
func (c *Cluster) keepLogs(dir string) {
	name := strings.NewReplacer("/", "_", " ", "_").Replace(c.t.Name())
	dst := filepath.Join(dir, name)
	// A test that runs several clusters (a sharded deployment) keeps each
	// one's logs apart: the second in <name>-cluster2, and so on.
	for i := 2; ; i++ {
		if _, err := os.Stat(filepath.Join(dst, "node1.log")); err != nil {
			break
		}
		dst = filepath.Join(dir, fmt.Sprintf("%s-cluster%d", name, i))
	}
	if err := os.MkdirAll(dst, 0o755); err != nil {
		c.t.Errorf("testcluster: keeping logs: %v", err)
		return
	}
	for _, id := range c.IDs() {
		b, err := os.ReadFile(c.LogPath(id))
		if err == nil {
			err = os.WriteFile(filepath.Join(dst, fmt.Sprintf("node%d.log", id)), b, 0o644)
		}
		if err != nil {
			c.t.Errorf("testcluster: keeping logs: %v", err)
		}
	}
	c.t.Logf("testcluster: node logs kept in %s", dst)
}

// raceReports returns the first race detector reports in the log at path, or "".
// A report runs from a "WARNING: DATA RACE" line to the next "==================" line.
func raceReports(path string) string {
	const maxReports, maxLines = 2, 120
	b, err := os.ReadFile(path)
	if err != nil || !bytes.Contains(b, []byte("WARNING: DATA RACE")) {
		return ""
	}
	var out []string
	reports, in := 0, false
	for _, line := range strings.Split(string(b), "\n") {
		switch {
		case strings.Contains(line, "WARNING: DATA RACE"):
			if reports == maxReports {
				return strings.Join(out, "\n")
			}
			reports++
			in = true
		case in && strings.HasPrefix(line, "=================="):
			in = false
		}
		if in && len(out) < maxReports*maxLines {
			out = append(out, line)
		}
	}
	return strings.Join(out, "\n")
}

// tail returns the last n lines of the file at path.
func tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	lines := strings.SplitAfter(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "")
}
