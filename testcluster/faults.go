package testcluster

import (
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/raftkv/raftkv/faultproxy"
	"github.com/raftkv/raftkv/peerurl"
)

// link is a directed peer link: the connections node from dials to node to.
// rafthttp carries messages both ways over them, so faults act on the
// pair of directions together.
type link struct{ from, to int }

func (c *Cluster) startProxies(t testing.TB, n int) {
	t.Helper()
	proxies := make(map[link]*faultproxy.Proxy)
	t.Cleanup(func() {
		// Those of nodes added since too (addProxies).
		c.mu.Lock()
		all := slices.Collect(maps.Values(c.mu.proxies))
		all = append(all, slices.Collect(maps.Values(c.mu.inbound))...)
		c.mu.Unlock()
		for _, p := range all {
			p.Close()
		}
	})
	for from := 1; from <= n; from++ {
		for to := 1; to <= n; to++ {
			if from == to {
				continue
			}
			target := hostPort(c.node(to).peerURL)
			p, err := faultproxy.New("127.0.0.1:0", target)
			if err != nil {
				t.Fatalf("testcluster: proxy %d->%d: %v", from, to, err)
			}
			proxies[link{from, to}] = p
		}
	}
	c.mu.Lock()
	c.mu.proxies = proxies
	c.mu.inbound = map[int]*faultproxy.Proxy{}
	c.mu.Unlock()
}

// addProxies gives node id, being added to a proxied cluster, the proxies
// of its links, and returns the peer URL its conf change is to carry. Its
// own links to the other nodes get a proxy each, as startProxies makes
// them; but the other nodes reach it at the one URL its conf change
// carries, so that URL is one inbound proxy for all of them, which tells
// their connections apart by rafthttp's X-Server-From header (over TLS it
// cannot: see SetLinks).
func (c *Cluster) addProxies(t testing.TB, id int) string {
	t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	for to := 1; to < len(c.mu.nodes); to++ {
		if to == id {
			continue
		}
		p, err := faultproxy.New("127.0.0.1:0", hostPort(c.mu.nodes[to].peerURL))
		if err != nil {
			t.Fatalf("testcluster: proxy %d->%d: %v", id, to, err)
		}
		c.mu.proxies[link{id, to}] = p
	}
	n := c.mu.nodes[id]
	p, err := faultproxy.NewBySender("127.0.0.1:0", hostPort(n.peerURL), "X-Server-From")
	if err != nil {
		t.Fatalf("testcluster: inbound proxy of %d: %v", id, err)
	}
	c.mu.inbound[id] = p
	return peerurl.Scheme(n.peerURL) + "://" + p.Addr()
}

// senderOf is the X-Server-From header rafthttp sends for node id: its
// member id in hex.
func senderOf(id int) string { return strconv.FormatUint(uint64(id), 16) }

// peersFor is node id's --cluster list: through its proxies when proxied.
func (c *Cluster) peersFor(id int, peers []string) []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.mu.proxies == nil {
		return peers
	}
	out := append([]string(nil), peers...)
	for j := range out {
		if p := c.mu.proxies[link{id, j + 1}]; p != nil {
			// The proxy forwards bytes, so a TLS link stays one end to
			// end: the same scheme, and the same 127.0.0.1 the peer
			// certificate names.
			out[j] = peerurl.Scheme(out[j]) + "://" + p.Addr()
		}
	}
	return out
}

// hostPort is the host:port of the URL u (scheme://host:port).
func hostPort(u string) string {
	_, hp, _ := strings.Cut(u, "://")
	return hp
}

// SetLinks cuts every peer link between a and b for which cut(a, b) is
// true and restores the rest; any partition shape, such as a ring, fits.
// The links into a node added at runtime share its inbound proxy
// (addProxies); over TLS it cannot tell their senders apart, so there a
// shape must cut all of them or none.
func (c *Cluster) SetLinks(cut func(a, b int) bool) {
	c.t.Helper()
	c.setLinks(cut)
	var cuts []string
	for _, a := range c.IDs() {
		for _, b := range c.IDs() {
			if a >= b {
				continue
			}
			switch ab, ba := cut(a, b), cut(b, a); {
			case ab && ba:
				cuts = append(cuts, fmt.Sprintf("%d-%d", a, b))
			case ab:
				cuts = append(cuts, fmt.Sprintf("%d>%d", a, b))
			case ba:
				cuts = append(cuts, fmt.Sprintf("%d>%d", b, a))
			}
		}
	}
	if len(cuts) == 0 {
		cuts = []string{"none"}
	}
	c.markLogs("links cut: " + strings.Join(cuts, " "))
}

func (c *Cluster) setLinks(cut func(a, b int) bool) {
	c.t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.mu.proxies == nil {
		c.t.Fatal("testcluster: link faults need Options.Proxied")
	}
	for l, p := range c.mu.proxies {
		p.SetCut(cut(l.from, l.to))
	}
	for to, p := range c.mu.inbound {
		all, some := true, false
		for from := 1; from < len(c.mu.nodes); from++ {
			if from == to {
				continue
			}
			x := cut(from, to)
			p.SetCutFrom(senderOf(from), x)
			all, some = all && x, some || x
		}
		if c.opts.TLS != nil && some && !all {
			c.t.Fatalf("testcluster: node %d was added at runtime and its peer links are TLS: its inbound proxy cannot tell senders apart, so a partition must cut all its incoming links or none", to)
		}
		p.SetCutFrom("", all) // a connection whose sender it could not read
	}
}

// Isolate cuts every peer link of node id, in both directions.
func (c *Cluster) Isolate(id int) {
	c.SetLinks(func(a, b int) bool { return a == id || b == id })
}

// Partition lets links within each group pass and cuts links across
// groups; a node in no group is cut off from every other.
func (c *Cluster) Partition(groups ...[]int) {
	group := map[int]int{}
	for g, ids := range groups {
		for _, id := range ids {
			group[id] = g + 1
		}
	}
	c.SetLinks(func(a, b int) bool { return group[a] == 0 || group[a] != group[b] })
}

// Heal restores every peer link and stops random loss.
func (c *Cluster) Heal() {
	c.SetLinks(func(int, int) bool { return false })
	c.SetLoss(0)
}

// SetLoss cuts each live peer connection with probability p every 100ms,
// on every link (rafthttp redials, so this acts as message loss).
func (c *Cluster) SetLoss(p float64) {
	c.t.Helper()
	if p > 0 {
		c.markLogs(fmt.Sprintf("peer connections cut at random, p=%g", p))
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.mu.proxies == nil {
		c.t.Fatal("testcluster: link faults need Options.Proxied")
	}
	for l, px := range c.mu.proxies {
		px.SetLoss(p, uint64(l.from*100+l.to))
	}
	for to, px := range c.mu.inbound {
		px.SetLoss(p, uint64(to))
	}
}

// Pause stops node id with SIGSTOP; Resume continues it.
func (c *Cluster) Pause(id int) {
	c.t.Helper()
	c.needProcesses("Pause")
	p := c.mustRunning(id, "pause")
	c.markLogs(fmt.Sprintf("pause node %d", id))
	p.cmd.Process.Signal(syscall.SIGSTOP)
}

// Resume continues node id after Pause.
func (c *Cluster) Resume(id int) {
	c.t.Helper()
	c.needProcesses("Resume")
	c.mustRunning(id, "resume").cmd.Process.Signal(syscall.SIGCONT)
	c.markLogs(fmt.Sprintf("resume node %d", id))
}

// Digest is a node's GET /debug/state: members that applied the same index
// hold the same keys and hash.
type Digest struct {
	AppliedIndex uint64 `json:"appliedIndex"`
	Keys         int    `json:"keys"`
	Hash         string `json:"hash"`
}

// Digest fetches node id's state digest.
func (c *Cluster) Digest(id int) (Digest, error) {
	r, err := c.Do(id, http.MethodGet, "/debug/state", nil)
	if err != nil {
		return Digest{}, err
	}
	if r.Status != http.StatusOK {
		return Digest{}, fmt.Errorf("node %d: GET /debug/state: %d %s", id, r.Status, r.Body)
	}
	var d Digest
	if err := json.Unmarshal(r.Body, &d); err != nil {
		return Digest{}, fmt.Errorf("node %d: GET /debug/state: %w", id, err)
	}
	return d, nil
}

// DataDir is node id's --data-dir.
func (c *Cluster) DataDir(id int) string { return filepath.Join(c.node(id).dir, "data") }
