package main

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/raftkv/raftkv/internal/buildinfo"
	"github.com/raftkv/raftkv/testcluster"
)

// membersJSON is members list -w json.
type membersJSON struct {
	Leader  uint64       `json:"leader"`
	Members []memberJSON `json:"members"`
}

// statusJSON is status -w json.
type statusJSON struct {
	Leader  uint64         `json:"leader"`
	Members []memberStatus `json:"members"`
}

// TestMembersStatusLeader: members list, status and leader transfer in
// every format, adding, promoting and removing a learner, and status with
// a member down.
func TestMembersStatusLeader(t *testing.T) {
	t.Parallel()
	c, leader := startCluster(t, testcluster.Options{})
	ctl := newCtl(t, "RAFTKVCTL_ENDPOINTS="+endpoints(c))

	// members list: id, started, peer URLs, client URLs, learner.
	out := ctl.ok("members", "list")
	var want []string
	for _, id := range c.IDs() {
		want = append(want, fmt.Sprintf("%d, started, %s, %s, false", id, c.PeerURL(id), c.ClientURL(id)))
	}
	if got := strings.Split(strings.TrimSuffix(out, "\n"), "\n"); !slices.Equal(got, want) {
		t.Errorf("members list printed\n%s\nwant\n%s", out, strings.Join(want, "\n"))
	}
	var ml membersJSON
	decode(t, ctl.ok("-w", "json", "members", "list"), &ml)
	if ml.Leader != uint64(leader) || len(ml.Members) != 3 || ml.Members[0].ID != 1 || !ml.Members[0].Started ||
		ml.Members[0].PeerURLs[0] != c.PeerURL(1) || ml.Members[0].ClientURLs[0] != c.ClientURL(1) {
		t.Errorf("members list -w json = %+v; want the 3 members and leader %d", ml, leader)
	}
	out = ctl.ok("-w", "table", "members", "list")
	if !strings.Contains(out, "| ID | STATUS  | PEER URLS") || !strings.Contains(out, "| 2  | started | "+c.PeerURL(2)) {
		t.Errorf("members list -w table printed\n%s", out)
	}

	// status: one row per member, the leader marked, lag 0 once idle,
	// the one key's 58 bytes (1 + 1 + 56) of the default quota.
	ctl.ok("put", "k", "v")
	var st statusJSON
	testcluster.WaitFor(t, leaderTimeout, "every member to count the key's bytes", func() error {
		decode(t, ctl.ok("-w", "json", "status"), &st)
		for _, m := range st.Members {
			if m.DataBytes != 58 {
				return fmt.Errorf("member %d counts %d bytes", m.ID, m.DataBytes)
			}
		}
		return nil
	})
	if st.Leader != uint64(leader) || len(st.Members) != 3 {
		t.Fatalf("status -w json = %+v; want 3 members led by %d", st, leader)
	}
	for _, m := range st.Members {
		if m.Endpoint != c.ClientURL(int(m.ID)) || m.Term == 0 || m.AppliedIndex == 0 || m.Error != "" || m.IsLeader != (m.ID == uint64(leader)) ||
			m.Version == "" || m.Level != buildinfo.Level() || m.ClusterLevel != buildinfo.Level() || m.QuotaBytes != 2<<30 {
			t.Errorf("status -w json: member %+v", m)
		}
	}
	out = ctl.ok("-w", "table", "status")
	for _, col := range []string{"ENDPOINT", "IS LEADER", "TERM", "COMMIT INDEX", "APPLIED INDEX", "SNAPSHOT INDEX", "LAG", "VERSION", "LEVEL", "CLUSTER LEVEL", "DATA SIZE", "QUOTA", "2.0 GiB"} {
		if !strings.Contains(out, col) {
			t.Errorf("status -w table lacks %s:\n%s", col, out)
		}
	}
	if n := strings.Count(ctl.ok("status"), "\n"); n != 3 {
		t.Errorf("status printed %d lines; want 3", n)
	}

	// leader transfer to a follower, then to whoever is most caught up.
	to := 1
	if to == leader {
		to = 2
	}
	if out := ctl.ok("leader", "transfer", itoa(uint64(to))); out != fmt.Sprintf("Leadership transferred to member %d\n", to) {
		t.Errorf("leader transfer printed %q", out)
	}
	testcluster.WaitFor(t, leaderTimeout, fmt.Sprintf("status to show member %d leading", to), func() error {
		decode(t, ctl.ok("-w", "json", "status"), &st)
		if st.Leader != uint64(to) {
			return fmt.Errorf("leader %d", st.Leader)
		}
		return nil
	})
	var tr struct{ Leader uint64 }
	decode(t, ctl.ok("-w", "json", "leader", "transfer"), &tr)
	if tr.Leader == 0 || tr.Leader == uint64(to) {
		t.Errorf("leader transfer -w json = %+v; want another voter", tr)
	}
	ctl.fails(1, "there is no member 9", "leader", "transfer", "9")

	// A learner added but never started: unstarted, not ready to promote,
	// and a status row that says so.
	peer := deadURL(t)
	if out := ctl.ok("members", "add", "--learner", "4", peer); out != "Member 4 added to the cluster as a learner\n" {
		t.Errorf("members add --learner printed %q", out)
	}
	out = ctl.ok("members", "list")
	if !strings.Contains(out, fmt.Sprintf("4, unstarted, %s, , true\n", peer)) {
		t.Errorf("members list after adding learner 4 printed\n%s", out)
	}
	ctl.fails(1, "learner 4 is not caught up", "members", "promote", "4")
	ctl.fails(1, "409", "members", "add", "4", peer)
	r := ctl.fails(1, "1 of 4 members did not answer: member 4: not started", "-w", "table", "status")
	if !strings.Contains(r.stdout, "not started") || strings.Count(r.stdout, "| http://") != 3 {
		t.Errorf("status -w table with an unstarted member printed\n%s", r.stdout)
	}
	moved := deadURL(t)
	if out := ctl.ok("members", "update", "4", moved); out != fmt.Sprintf("Member 4 updated: peer URL %s\n", moved) {
		t.Errorf("members update printed %q", out)
	}
	if out := ctl.ok("members", "list"); !strings.Contains(out, fmt.Sprintf("4, unstarted, %s, , true\n", moved)) {
		t.Errorf("members list after updating member 4 printed\n%s", out)
	}
	ctl.fails(1, "there is no member 9", "members", "update", "9", deadURL(t))
	ctl.fails(1, "already used by member 1", "members", "update", "4", c.PeerURL(1))
	if out := ctl.ok("-w", "json", "members", "remove", "4"); out != `{"id":4,"change":"removed"}`+"\n" {
		t.Errorf("members remove -w json printed %q", out)
	}
	decode(t, ctl.ok("-w", "json", "members", "list"), &ml)
	if len(ml.Members) != 3 {
		t.Errorf("members after removing 4: %+v", ml.Members)
	}
	ctl.fails(1, "409", "members", "add", "4", peer) // ids are never reused
	ctl.fails(2, `member id "four"`, "members", "add", "four", peer)
	ctl.fails(2, "accepts 2 arg(s), received 1", "members", "add", "5")
	ctl.fails(2, `unknown command "rename"`, "members", "rename", "5")

	// A member down: its row says why, and the exit status is 1.
	var down int
	for _, id := range c.IDs() {
		if id != int(tr.Leader) {
			down = id
			break
		}
	}
	c.Kill(down)
	r = ctl.fails(1, fmt.Sprintf("1 of 3 members did not answer: member %d: status from %s", down, c.ClientURL(down)), "-w", "json", "status")
	decode(t, r.stdout, &st)
	for _, m := range st.Members {
		if (m.Error != "") != (m.ID == uint64(down)) {
			t.Errorf("status -w json with member %d down: %+v", down, m)
		}
	}
}
