package ui_test

import (
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"testing"
	"time"

	"github.com/raftkv/raftkv/internal/buildinfo"
	"github.com/raftkv/raftkv/testcluster"
)

// chromium returns the path of Debian's Chromium, and skips the test
// without it, except under CI, where it fails: .ci/run installs it.
func chromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") != "" {
		t.Fatal("chromium is not installed, and CI is set: .ci/run installs it (apt-get install -y chromium)")
	}
	t.Skip("chromium is not installed (apt-get install -y chromium); skipping the test of the dashboard in a browser")
	return ""
}

// chromeFlags are the flags of a headless Chromium run, then extra. The
// page polls its view once a second; a few seconds of virtual time let it
// load and render.
func chromeFlags(t *testing.T, extra ...string) []string {
	return append([]string{"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
		"--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--user-data-dir=" + t.TempDir(), "--virtual-time-budget=2500"}, extra...)
}

// page is the dashboard as a browser rendered it.
type page struct {
	state   string      // #conn's data-state: ok once a view was rendered
	leader  int         // #leader's data-leader
	members map[int]row // the member rows, by id
	dom     string      // for failure messages
}

type row struct {
	role          string
	up            bool
	term, applied uint64
	version       string
	level         string // the binary's level / the cluster's
	space         string // the data size / the quota, in bytes
}

// load opens url in headless Chromium and reads the page it rendered.
func load(t *testing.T, chrome, url string) (page, error) {
	start := time.Now()
	els, dom, err := elements(t, chrome, url)
	if err != nil {
		return page{}, err
	}
	t.Logf("chromium loaded %s in %v", url, time.Since(start).Round(time.Millisecond))
	p := page{members: map[int]row{}, dom: dom}
	for _, a := range els {
		switch {
		case a["id"] == "conn":
			p.state = a["data-state"]
		case a["id"] == "leader":
			p.leader, _ = strconv.Atoi(a["data-leader"])
		case a["class"] == "member":
			id, _ := strconv.Atoi(a["data-id"])
			term, _ := strconv.ParseUint(a["data-term"], 10, 64)
			applied, _ := strconv.ParseUint(a["data-applied"], 10, 64)
			p.members[id] = row{role: a["data-role"], up: a["data-up"] == "true", term: term, applied: applied, version: a["data-version"],
				level: a["data-level"] + "/" + a["data-cluster-level"], space: a["data-bytes"] + "/" + a["data-quota"]}
		}
	}
	return p, nil
}

// TestDashboardInBrowser loads /ui from a follower of a real 3-process
// cluster in headless Chromium: the page shows the three members, the
// leader, their terms and applied indexes; once the leader is killed, the
// new leader and the old one down.
func TestDashboardInBrowser(t *testing.T) {
	if testing.Short() {
		t.Skip("starts real raftkv processes")
	}
	chrome := chromium(t)
	c := testcluster.Start(t, testcluster.Options{})
	lead := c.WaitLeader(t, waitLimit)
	follower := 1 + lead%3
	for i := range 3 {
		if code, err := c.Put(follower, fmt.Sprintf("k%d", i), []byte("v")); err != nil || code != http.StatusNoContent {
			t.Fatalf("put through %d: %d %v", follower, code, err)
		}
	}
	applied := c.WaitConverged(t, waitLimit)
	url := c.ClientURL(follower) + "/ui"

	testcluster.WaitFor(t, time.Minute, "the page to show the cluster", func() error {
		p, err := load(t, chrome, url)
		if err != nil {
			return err
		}
		if p.state != "ok" || p.leader != lead || len(p.members) != 3 {
			return fmt.Errorf("page state %q, leader %d, %d member rows; want ok, %d, 3\n%s", p.state, p.leader, len(p.members), lead, p.dom)
		}
		for id, r := range p.members {
			st, err := c.Status(id)
			if err != nil {
				return err
			}
			want := "follower"
			if id == lead {
				want = "leader"
			}
			if !r.up || r.role != want || r.term != st.Term || r.applied < applied || r.applied > st.AppliedIndex || r.version == "" || r.level != fmt.Sprintf("%d/%d", buildinfo.Level(), buildinfo.Level()) ||
				r.space != fmt.Sprintf("%d/%d", st.DataBytes, 2<<30) {
				return fmt.Errorf("member %d shown as %+v; want up, %s, term %d, applied in [%d, %d], a version, levels %d/%d, %d bytes of the 2 GiB quota",
					id, r, want, st.Term, applied, st.AppliedIndex, buildinfo.Level(), buildinfo.Level(), st.DataBytes)
			}
		}
		return nil
	})

	c.Kill(lead)
	newLead := c.WaitLeader(t, waitLimit)
	testcluster.WaitFor(t, time.Minute, "the page to show the new leader and the old one down", func() error {
		p, err := load(t, chrome, url)
		if err != nil {
			return err
		}
		old, nl := p.members[lead], p.members[newLead]
		if p.state != "ok" || p.leader != newLead || len(p.members) != 3 || old.up || old.role != "down" || nl.role != "leader" {
			return fmt.Errorf("page state %q, leader %d, %d rows, old leader %+v, new %+v; want ok, %d, 3, old down, new leader\n%s",
				p.state, p.leader, len(p.members), old, nl, newLead, p.dom)
		}
		return nil
	})
}
