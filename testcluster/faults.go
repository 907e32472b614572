package testcluster

import (
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
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
		for _, p := range proxies {
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
	c.mu.Unlock()
}

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
func (c *Cluster) SetLinks(cut func(a, b int) bool) {
	c.t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.mu.proxies == nil {
		c.t.Fatal("testcluster: link faults need Options.Proxied")
	}
	for l, p := range c.mu.proxies {
		p.SetCut(cut(l.from, l.to))
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
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.mu.proxies == nil {
		c.t.Fatal("testcluster: link faults need Options.Proxied")
	}
	for l, px := range c.mu.proxies {
		px.SetLoss(p, uint64(l.from*100+l.to))
	}
}

// Pause stops node id with SIGSTOP; Resume continues it.
func (c *Cluster) Pause(id int) {
	c.t.Helper()
	c.needProcesses("Pause")
	c.mustRunning(id, "pause").cmd.Process.Signal(syscall.SIGSTOP)
}

// Resume continues node id after Pause.
func (c *Cluster) Resume(id int) {
	c.t.Helper()
	c.needProcesses("Resume")
	c.mustRunning(id, "resume").cmd.Process.Signal(syscall.SIGCONT)
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
