package testcluster

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// A blackhole drops a node's peer packets without a word: no RST, no ICMP,
// as a pulled cable or a dead switch port does, unlike a refusing proxy.
// Every member listens on 127.0.0.1, so ports alone cannot tell the
// connections a node dials from those the others dial: each node of a
// Blackholable cluster runs under a user id of its own, iptables (mangle
// OUTPUT, where the sending socket's owner is known) marks every
// connection that user opens to a peer port, and filter INPUT drops the
// packets of marked connections and every packet to or from the node's
// own peer port, in both directions. Client traffic to the node's client
// port flows on.
//
// The drop is on the receiving path, so the sender's TCP sees its packets
// leave and be lost, as on a real network: it retransmits with its
// exponential backoff. A drop in OUTPUT would instead fail the send
// locally, which TCP handles differently (new data is tried at once).
//
// Marking starts before dropping: every connection the node opens from
// then on is marked from its SYN, and the connections it opened before
// are found in the kernel's socket tables (/proc/net/tcp, by uid) and
// dropped by their ports, so not one packet of a peer reaches it through
// a connection it dialed before. Each blackhole has its own chains
// (raftkv-bh-<random>) and mark, so concurrent test processes do not
// touch each other's rules, and a cleanup removes them.

// iptablesWait is how long iptables waits for the xtables lock another
// process holds, in seconds.
const iptablesWait = "10"

// RequireBlackhole skips t unless Blackhole works on this machine: Linux,
// root, and an iptables whose owner, CONNMARK and connmark matches load.
// Where the environment variable CI is set it fails t instead, so that CI
// never passes by skipping.
func RequireBlackhole(t testing.TB) {
	t.Helper()
	if err := blackholeSupport(); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("testcluster: CI is set, and blackholes cannot work here: %v", err)
		}
		t.Skipf("testcluster: skipping, blackholes cannot work here: %v", err)
	}
}

var support struct {
	once sync.Once
	err  error
}

func blackholeSupport() error {
	support.once.Do(func() { support.err = probeBlackhole() })
	return support.err
}

// probeBlackhole installs and removes a chain with the rules Blackhole uses.
func probeBlackhole() error {
	if runtime.GOOS != "linux" {
		return fmt.Errorf("needs Linux, this is %s", runtime.GOOS)
	}
	if os.Geteuid() != 0 {
		return fmt.Errorf("needs root to run iptables and nodes under other users, euid is %d", os.Geteuid())
	}
	if _, err := exec.LookPath("iptables"); err != nil {
		return fmt.Errorf("iptables is not installed: %w", err)
	}
	if _, err := exec.LookPath("iptables-restore"); err != nil {
		return fmt.Errorf("iptables-restore is not installed: %w", err)
	}
	// Rules of the kinds Blackhole uses, for a user and a mark nobody has.
	chain := fmt.Sprintf("raftkv-bh-%08x", rand.Uint32())
	uid, mark := strconv.Itoa(freeUID()), strconv.FormatUint(uint64(rand.Uint32N(1<<31-1)+1), 10)
	defer removeChain(chain)
	if err := addChain("mangle", "OUTPUT", chain, [][]string{{"-m", "owner", "--uid-owner", uid, "-p", "tcp", "--dport", "1",
		"-j", "CONNMARK", "--set-mark", mark}}); err != nil {
		return err
	}
	return addChain("filter", "INPUT", chain, [][]string{{"-m", "connmark", "--mark", mark, "-j", "DROP"}})
}

// blackhole is one node's blackhole in place.
type blackhole struct {
	chain string
}

// Blackhole silently drops every packet of node id's peer connections, in
// both directions, until Unblackhole or the end of the test; its client
// port keeps working. The cluster must be Blackholable.
func (c *Cluster) Blackhole(id int) {
	c.t.Helper()
	n := c.node(id)
	if n.uid == 0 {
		c.t.Fatal("testcluster: Blackhole needs Options.Blackholable")
	}
	c.mu.Lock()
	_, ok := c.mu.blackholes[id]
	c.mu.Unlock()
	if ok {
		return
	}
	// The ports node id dials for its peers are those of its --cluster list:
	// the members' peer ports, or the proxies' when proxied.
	var dports []int
	for _, p := range c.peersFor(id, c.peerURLs()) {
		dports = append(dports, urlPort(c.t, p))
	}
	uid := strconv.Itoa(n.uid)
	own := strconv.Itoa(urlPort(c.t, n.peerURL))
	chain := fmt.Sprintf("raftkv-bh-%08x", rand.Uint32())
	mark := strconv.FormatUint(uint64(rand.Uint32N(1<<31-1)+1), 10)
	c.t.Cleanup(func() { removeChain(chain) }) // a no-op once Unblackhole removed it
	fail := func(err error) {
		c.t.Helper()
		removeChain(chain)
		c.t.Fatalf("testcluster: blackhole node %d: %v", id, err)
	}
	// Marking starts first, so that every connection the node opens from
	// now on is marked from its SYN; those it opened before are found in
	// the kernel's socket table next and dropped by their ports.
	var mangle [][]string
	for _, p := range dports {
		mangle = append(mangle, []string{"-m", "owner", "--uid-owner", uid, "-p", "tcp", "--dport", strconv.Itoa(p),
			"-j", "CONNMARK", "--set-mark", mark})
	}
	if err := addChain("mangle", "OUTPUT", chain, mangle); err != nil {
		fail(err)
	}
	conns, err := dialedConns(n.uid, dports)
	if err != nil {
		fail(err)
	}
	filter := [][]string{
		{"-m", "connmark", "--mark", mark, "-j", "DROP"},
		{"-p", "tcp", "--dport", own, "-j", "DROP"},
		{"-p", "tcp", "--sport", own, "-j", "DROP"},
	}
	for _, cn := range conns {
		local, remote := strconv.Itoa(cn.local), strconv.Itoa(cn.remote)
		filter = append(filter,
			[]string{"-p", "tcp", "--sport", local, "--dport", remote, "-j", "DROP"},
			[]string{"-p", "tcp", "--sport", remote, "--dport", local, "-j", "DROP"})
	}
	if err := addChain("filter", "INPUT", chain, filter); err != nil {
		fail(err)
	}
	c.mu.Lock()
	if c.mu.blackholes == nil {
		c.mu.blackholes = make(map[int]blackhole)
	}
	c.mu.blackholes[id] = blackhole{chain: chain}
	c.mu.Unlock()
	c.markLogs(fmt.Sprintf("blackhole node %d", id))
}

// Unblackhole removes node id's blackhole; packets flow again at once.
func (c *Cluster) Unblackhole(id int) {
	c.t.Helper()
	c.mu.Lock()
	b, ok := c.mu.blackholes[id]
	delete(c.mu.blackholes, id)
	c.mu.Unlock()
	if !ok {
		return
	}
	if err := removeChain(b.chain); err != nil {
		c.t.Errorf("testcluster: unblackhole node %d: %v", id, err)
	}
	c.markLogs(fmt.Sprintf("unblackhole node %d", id))
}

// addChain creates chain in table with rules and jumps to it first thing
// in hook, all at once (iptables-restore applies a table atomically).
func addChain(table, hook, chain string, rules [][]string) error {
	var b strings.Builder
	fmt.Fprintf(&b, "*%s\n:%s - [0:0]\n", table, chain)
	for _, r := range rules {
		fmt.Fprintf(&b, "-A %s %s\n", chain, strings.Join(r, " "))
	}
	fmt.Fprintf(&b, "-I %s 1 -j %s\nCOMMIT\n", hook, chain)
	cmd := exec.Command("iptables-restore", "-w", iptablesWait, "--noflush")
	cmd.Stdin = strings.NewReader(b.String())
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("iptables-restore: %w: %s\ninput:\n%s", err, strings.TrimSpace(string(out)), b.String())
	}
	return nil
}

// removeChain removes the jumps to chain, the filter table's first so
// that packets flow at once, then chain itself, from the filter and
// mangle tables. It reports an error only if something it found stays.
func removeChain(chain string) error {
	var errs []error
	for _, th := range [][2]string{{"filter", "INPUT"}, {"mangle", "OUTPUT"}} {
		table := th[0]
		for iptables("-t", table, "-D", th[1], "-j", chain) == nil {
		}
		if iptables("-t", table, "-n", "-L", chain) != nil {
			continue // never created, or removed already
		}
		if err := iptables("-t", table, "-F", chain); err != nil {
			errs = append(errs, err)
		}
		if err := iptables("-t", table, "-X", chain); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func iptables(args ...string) error {
	out, err := exec.Command("iptables", append([]string{"-w", iptablesWait}, args...)...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("iptables %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

func urlPort(t testing.TB, rawURL string) int {
	t.Helper()
	u, err := url.Parse(rawURL)
	if err == nil {
		var p int
		if p, err = strconv.Atoi(u.Port()); err == nil {
			return p
		}
	}
	t.Fatalf("testcluster: no port in %q: %v", rawURL, err)
	return 0
}

// uids records the user ids this process has handed out to nodes.
var uids struct {
	sync.Mutex
	taken map[int]bool
}

// freeUID returns a user id for a node of a Blackholable cluster: random
// and high, far from any real user's, so that concurrent test processes
// practically never pick the same one.
func freeUID() int {
	uids.Lock()
	defer uids.Unlock()
	if uids.taken == nil {
		uids.taken = make(map[int]bool)
	}
	for {
		uid := 1<<24 + rand.IntN(1<<30)
		if !uids.taken[uid] {
			uids.taken[uid] = true
			return uid
		}
	}
}

// openDirs lets the users a Blackholable cluster's nodes run as reach
// their directories under the test's temporary directory, which
// testing.T.TempDir creates for its own user only.
func (c *Cluster) openDirs() {
	c.t.Helper()
	if err := blackholeSupport(); err != nil {
		c.t.Fatalf("testcluster: Options.Blackholable: %v (call RequireBlackhole first)", err)
	}
	for _, d := range []string{filepath.Dir(c.dir), c.dir} {
		if err := os.Chmod(d, 0o755); err != nil {
			c.t.Fatalf("testcluster: %v", err)
		}
	}
}

// conn is a TCP connection by its local and remote port on 127.0.0.1.
type conn struct{ local, remote int }

// dialedConns lists the TCP connections that sockets of user uid hold to
// any of the remote ports, from the kernel's socket tables.
func dialedConns(uid int, remotePorts []int) ([]conn, error) {
	want := make(map[int]bool, len(remotePorts))
	for _, p := range remotePorts {
		want[p] = true
	}
	var conns []conn
	for _, table := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		b, err := os.ReadFile(table)
		if err != nil {
			if errors.Is(err, os.ErrNotExist) {
				continue
			}
			return nil, err
		}
		for _, line := range strings.Split(string(b), "\n")[1:] {
			// sl local_address rem_address st tx:rx tr:when retrnsmt uid ...
			f := strings.Fields(line)
			if len(f) < 8 || f[7] != strconv.Itoa(uid) {
				continue
			}
			local, err1 := hexPort(f[1])
			remote, err2 := hexPort(f[2])
			if err1 != nil || err2 != nil {
				return nil, fmt.Errorf("%s: unexpected line %q", table, line)
			}
			if want[remote] {
				conns = append(conns, conn{local: local, remote: remote})
			}
		}
	}
	return conns, nil
}

// hexPort is the port of a /proc/net/tcp address such as 0100007F:1F90.
func hexPort(addr string) (int, error) {
	i := strings.LastIndexByte(addr, ':')
	p, err := strconv.ParseUint(addr[i+1:], 16, 16)
	return int(p), err
}
