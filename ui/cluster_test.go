package ui_test

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/raftkv/raftkv/internal/buildinfo"
	"github.com/raftkv/raftkv/testcluster"
	"github.com/raftkv/raftkv/ui"
)

func TestMain(m *testing.M) { testcluster.Main(m) }

const waitLimit = 20 * time.Second

// view reads node id's GET /ui/api/cluster.
func view(c *testcluster.Cluster, id int) (ui.Cluster, error) {
	r, err := c.Do(id, http.MethodGet, ui.APIPath, nil)
	if err != nil {
		return ui.Cluster{}, err
	}
	if r.Status != http.StatusOK {
		return ui.Cluster{}, fmt.Errorf("GET %s: %d %s", ui.APIPath, r.Status, r.Body)
	}
	var v ui.Cluster
	if err := json.Unmarshal(r.Body, &v); err != nil {
		return ui.Cluster{}, fmt.Errorf("GET %s: %v: %s", ui.APIPath, err, r.Body)
	}
	return v, nil
}

func jsonDecode(resp *http.Response, v any) error {
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s", resp.Status)
	}
	return json.NewDecoder(resp.Body).Decode(v)
}

func member(v ui.Cluster, id int) (ui.Member, bool) {
	for _, m := range v.Members {
		if m.ID == uint64(id) {
			return m, true
		}
	}
	return ui.Member{}, false
}

// TestClusterView: a follower's view of a real 3-member cluster shows
// every member as its own /status and /metrics do, the leader's progress,
// rates once writes flow, and, after the leader stops, the new leader, the
// change and the old leader down.
func TestClusterView(t *testing.T) {
	c := testcluster.Start(t, testcluster.Options{InProcess: true})
	lead := c.WaitLeader(t, waitLimit)
	follower := 1 + lead%3
	for i := range 5 {
		if code, err := c.Put(follower, fmt.Sprintf("k%d", i), []byte("v")); err != nil || code != http.StatusNoContent {
			t.Fatalf("put through %d: %d %v", follower, code, err)
		}
	}
	if _, code, err := c.Get(follower, "k1"); err != nil || code != http.StatusOK {
		t.Fatalf("get through %d: %d %v", follower, code, err)
	}
	applied := c.WaitConverged(t, waitLimit)

	testcluster.WaitFor(t, waitLimit, "the view of a converged cluster", func() error {
		v, err := view(c, follower)
		if err != nil {
			return err
		}
		if v.Self != uint64(follower) || v.Leader != uint64(lead) || len(v.Members) != 3 || v.Error != "" {
			return fmt.Errorf("self %d leader %d, %d members, error %q; want self %d leader %d, 3 members",
				v.Self, v.Leader, len(v.Members), v.Error, follower, lead)
		}
		lm, _ := member(v, lead)
		for _, id := range c.IDs() {
			m, _ := member(v, id)
			// Its status read after the view: the view's indexes are at
			// most these (members keep applying their own entries).
			st, err := c.Status(id)
			if err != nil {
				return err
			}
			wantRole := "follower"
			if id == lead {
				wantRole = "leader"
			}
			switch {
			case !m.Up || m.Role != wantRole || m.ClientURL != c.ClientURL(id):
				return fmt.Errorf("member %d: up %v role %q url %q (%s); want up, %s, %s", id, m.Up, m.Role, m.ClientURL, m.Error, wantRole, c.ClientURL(id))
			case m.Term != st.Term || m.Term != v.Term:
				return fmt.Errorf("member %d: term %d, cluster term %d; its status: term %d", id, m.Term, v.Term, st.Term)
			case m.AppliedIndex < applied || m.AppliedIndex > st.AppliedIndex || m.CommitIndex > st.CommitIndex || m.ApplyLag != m.CommitIndex-m.AppliedIndex:
				return fmt.Errorf("member %d: applied %d commit %d lag %d; want applied in [%d, %d], commit at most %d",
					id, m.AppliedIndex, m.CommitIndex, m.ApplyLag, applied, st.AppliedIndex, st.CommitIndex)
			case m.Version == "" || m.Level != buildinfo.Level() || m.ClusterLevel != buildinfo.Level():
				return fmt.Errorf("member %d: version %q, level %d, cluster level %d; want a version and levels 1", id, m.Version, m.Level, m.ClusterLevel)
			case m.Writes == nil || m.Reads == nil || m.LeaderChanges == nil || *m.LeaderChanges < 1:
				return fmt.Errorf("member %d: counters %v %v %v, want all known", id, m.Writes, m.Reads, m.LeaderChanges)
			case id == lead && (m.Match != nil || m.MatchLag != nil):
				return fmt.Errorf("leader %d has a match index", id)
			case id != lead && (m.Match == nil || *m.Match < applied || *m.MatchLag != lm.CommitIndex-min(lm.CommitIndex, *m.Match) || m.State != "replicate"):
				return fmt.Errorf("member %d: match %v lag %v state %q; want at least %d, the leader's commit %d - match, replicate",
					id, m.Match, m.MatchLag, m.State, applied, lm.CommitIndex)
			}
		}
		if m, _ := member(v, follower); *m.Writes != 5 || *m.Reads != 1 {
			return fmt.Errorf("member %d: writes %v reads %v; want 5 and 1", follower, *m.Writes, *m.Reads)
		}
		return nil
	})

	// Rates: writes through the follower while the view is polled.
	i := 0
	testcluster.WaitFor(t, waitLimit, "a write rate on the member written through", func() error {
		i++
		if code, err := c.Put(follower, "rate", []byte(fmt.Sprint(i))); err != nil || code != http.StatusNoContent {
			return fmt.Errorf("put: %d %v", code, err)
		}
		v, err := view(c, follower)
		if err != nil {
			return err
		}
		m, _ := member(v, follower)
		l, _ := member(v, lead)
		switch {
		case m.WritesPerSec == nil || *m.WritesPerSec <= 0:
			return fmt.Errorf("member %d: writes/s %v", follower, m.WritesPerSec)
		case l.WritesPerSec == nil || *l.WritesPerSec != 0:
			return fmt.Errorf("leader %d, written through by nobody: writes/s %v, want 0", lead, l.WritesPerSec)
		case v.WritesPerSec == nil || *v.WritesPerSec != *m.WritesPerSec:
			return fmt.Errorf("cluster writes/s %v, want the follower's %v", v.WritesPerSec, *m.WritesPerSec)
		}
		return nil
	})

	c.Stop(lead)
	newLead := c.WaitLeader(t, waitLimit)
	testcluster.WaitFor(t, waitLimit, "the view after the leader stopped", func() error {
		v, err := view(c, follower)
		if err != nil {
			return err
		}
		old, _ := member(v, lead)
		nl, _ := member(v, newLead)
		switch {
		case v.Leader != uint64(newLead) || nl.Role != "leader":
			return fmt.Errorf("leader %d (member %d's role %q), want %d", v.Leader, newLead, nl.Role, newLead)
		case old.Up || old.Role != "down" || !strings.Contains(old.Error, "cannot connect"):
			return fmt.Errorf("old leader %d: up %v role %q error %q; want down, cannot connect", lead, old.Up, old.Role, old.Error)
		case len(v.Members) != 3:
			return fmt.Errorf("%d members, want 3 (the stopped one is still a member)", len(v.Members))
		case v.LastLeaderChange == nil || v.LastLeaderChange.From != uint64(lead) || v.LastLeaderChange.To != uint64(newLead) || v.LastLeaderChange.Term != v.Term:
			return fmt.Errorf("last leader change %+v, want %d -> %d in term %d", v.LastLeaderChange, lead, newLead, v.Term)
		}
		return nil
	})
}

// TestPages: the page and its assets are served from the binary; other
// paths and methods are refused with a sentence.
func TestPages(t *testing.T) {
	c := testcluster.Start(t, testcluster.Options{N: 1, InProcess: true})
	c.WaitLeader(t, waitLimit)
	tests := []struct {
		method, path string
		code         int
		contentType  string
		bodyHas      string
	}{
		{"GET", "/ui", 200, "text/html; charset=utf-8", "<title>raftkv dashboard</title>"},
		{"GET", "/ui/", 200, "text/html; charset=utf-8", "<title>raftkv dashboard</title>"},
		{"GET", "/ui/app.js", 200, "text/javascript; charset=utf-8", "/ui/api/cluster"},
		{"GET", "/ui/style.css", 200, "text/css; charset=utf-8", ".bucket"},
		{"GET", "/ui/api/cluster", 200, "application/json", `"self":1`},
		{"HEAD", "/ui/api/cluster", 200, "application/json", ""},
		{"GET", "/ui/index.html", 404, "text/plain; charset=utf-8", "no dashboard page at /ui/index.html"},
		{"POST", "/ui", 405, "text/plain; charset=utf-8", "method POST is not allowed"},
		{"DELETE", "/ui/api/cluster", 405, "text/plain; charset=utf-8", "use GET"},
	}
	for _, tc := range tests {
		r, err := c.Do(1, tc.method, tc.path, nil)
		if err != nil {
			t.Fatal(err)
		}
		if r.Status != tc.code || r.Header.Get("Content-Type") != tc.contentType || !strings.Contains(string(r.Body), tc.bodyHas) {
			t.Errorf("%s %s: %d %q %.80q; want %d %q containing %q", tc.method, tc.path, r.Status, r.Header.Get("Content-Type"), r.Body, tc.code, tc.contentType, tc.bodyHas)
		}
		if r.Header.Get("X-Content-Type-Options") != "nosniff" || r.Header.Get("Content-Security-Policy") == "" {
			t.Errorf("%s %s: headers %v lack nosniff or a content security policy", tc.method, tc.path, r.Header)
		}
		if r.Status == 405 && r.Header.Get("Allow") != "GET, HEAD" {
			t.Errorf("%s %s: Allow %q", tc.method, tc.path, r.Header.Get("Allow"))
		}
	}
}

// TestHungMember: a member that accepts connections but never answers
// costs the view MemberTimeout, and the view says so.
func TestHungMember(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		var conns []net.Conn
		defer func() {
			for _, c := range conns {
				c.Close()
			}
		}()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			conns = append(conns, c) // held open, never answered
		}
	}()
	h, err := ui.New(ui.Config{Self: "http://" + ln.Addr().String(), MemberTimeout: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", ui.APIPath, nil))
	var v ui.Cluster
	if err := json.Unmarshal(rec.Body.Bytes(), &v); err != nil || rec.Code != 200 {
		t.Fatalf("%d %v: %s", rec.Code, err, rec.Body)
	}
	if v.Self != 0 || len(v.Members) != 0 || !strings.Contains(v.Error, "no answer in time") {
		t.Errorf("view %+v, want no members and an error saying no answer in time", v)
	}
}

func TestConfigValidate(t *testing.T) {
	for _, cfg := range []ui.Config{
		{},
		{Self: "127.0.0.1:2380"},
		{Self: "ftp://h:1"},
		{Self: "http://h:1", MemberTimeout: -time.Second},
	} {
		if _, err := ui.New(cfg); err == nil {
			t.Errorf("New(%+v) accepted", cfg)
		}
	}
}
