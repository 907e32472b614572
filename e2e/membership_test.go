package e2e

import (
	"fmt"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/raftkv/raftkv/testcluster"
)

// removeTimeout bounds how long a removed node may take to apply its removal and exit.
const removeTimeout = 30 * time.Second

// remove sends DELETE /<victim> to node via, then checks that the victim exits with
// status 0 and logs its removal, and that the others list only each other.
func remove(t *testing.T, c *testcluster.Cluster, via, victim int) {
	t.Helper()
	r, err := c.Do(via, http.MethodDelete, fmt.Sprintf("/%d", victim), nil)
	if err != nil || r.Status != http.StatusNoContent {
		t.Fatalf("node %d: DELETE /%d: %d %q %v, want 204", via, victim, r.Status, r.Body, err)
	}
	code, err := c.Wait(victim, removeTimeout)
	if err != nil {
		t.Fatalf("removed node did not exit: %v", err)
	}
	if code != 0 {
		t.Errorf("removed node %d exited with status %d, want 0", victim, code)
	}
	if !c.LogContains(victim, "removed from the cluster") {
		t.Errorf("node %d log (%s) lacks %q", victim, c.LogPath(victim), "removed from the cluster")
	}
	var rest []uint64
	for _, id := range c.IDs() {
		if id != victim {
			rest = append(rest, uint64(id))
		}
	}
	for _, id := range c.Live() {
		checkMembers(t, c, id, rest...)
	}
}

// TestRemovedFollowerExits: DELETE /<id> of a follower on the leader; the follower exits
// 0 saying so, and the two remaining nodes keep taking writes.
func TestRemovedFollowerExits(t *testing.T) {
	t.Parallel()
	c, leader := startCluster(t, testcluster.Options{})
	victim := 3
	if leader == 3 {
		victim = 2
	}
	mustPut(t, c, leader, "before", []byte("1"))
	remove(t, c, leader, victim)

	leader = c.WaitLeader(t, leaderTimeout)
	if leader == victim {
		t.Fatalf("removed node %d is still the leader", victim)
	}
	for _, id := range c.Live() {
		mustPut(t, c, id, fmt.Sprintf("after-%d", id), []byte("2"))
	}
	c.WaitConverged(t, convergeTimeout)
	for _, id := range c.Live() {
		c.WaitValue(t, id, "before", []byte("1"), valueTimeout)
	}
}

// TestRemovedLeaderExits: DELETE /<leader> on the leader itself; the leader exits 0
// after applying it and the two remaining nodes elect a new leader and take writes.
func TestRemovedLeaderExits(t *testing.T) {
	t.Parallel()
	c, leader := startCluster(t, testcluster.Options{})
	mustPut(t, c, leader, "before", []byte("1"))
	remove(t, c, leader, leader)

	newLeader := c.WaitLeader(t, leaderTimeout)
	if newLeader == leader || !slices.Contains(c.Live(), newLeader) {
		t.Fatalf("new leader %d; removed %d, live %v", newLeader, leader, c.Live())
	}
	for _, id := range c.Live() {
		mustPut(t, c, id, fmt.Sprintf("after-%d", id), []byte("2"))
		c.WaitValue(t, id, "before", []byte("1"), valueTimeout)
	}
}

// TestMemberUpdate: POST /<id>/update moves member 3 to a new peer URL,
// as etcd's member update; restarted listening there, it catches up and
// takes writes, and a follower restarted afterwards reaches it too. An
// unknown id is 404, a URL another member has 409.
func TestMemberUpdate(t *testing.T) {
	t.Parallel()
	c, _ := startCluster(t, testcluster.Options{})
	mustPut(t, c, 1, "before", []byte("1"))
	via := 1
	if r, err := c.Do(via, http.MethodPost, "/9/update", []byte(c.PeerURL(3))); err != nil || r.Status != http.StatusNotFound {
		t.Fatalf("POST /9/update: %d %q %v, want 404", r.Status, r.Body, err)
	}
	if r, err := c.Do(via, http.MethodPost, "/3/update", []byte(c.PeerURL(2))); err != nil || r.Status != http.StatusConflict {
		t.Fatalf("POST /3/update to member 2's URL: %d %q %v, want 409", r.Status, r.Body, err)
	}

	c.Stop(3)
	moved := c.MovePeer(3)
	if r, err := c.Do(via, http.MethodPost, "/3/update", []byte(moved)); err != nil || r.Status != http.StatusNoContent {
		t.Fatalf("POST /3/update %s: %d %q %v, want 204", moved, r.Status, r.Body, err)
	}
	c.Restart(3)
	c.AwaitNodeListening(3)
	mustPut(t, c, 3, "after", []byte("2"))
	for _, id := range c.Live() {
		c.WaitValue(t, id, "before", []byte("1"), valueTimeout)
		c.WaitValue(t, id, "after", []byte("2"), valueTimeout)
		testcluster.WaitFor(t, valueTimeout, fmt.Sprintf("member %d to list member 3 at %s", id, moved), func() error {
			st, err := c.Status(id)
			if err != nil {
				return err
			}
			for _, m := range st.Members {
				if m.ID == 3 && slices.Equal(m.PeerURLs, []string{moved}) {
					return nil
				}
			}
			return fmt.Errorf("members %+v", st.Members)
		})
	}
	// A member restarted on its (edited) command line reaches member 3:
	// with the third one down, they are the quorum.
	other, third := 1, 2
	c.Stop(other)
	c.Restart(other)
	c.AwaitNodeListening(other)
	c.Stop(third)
	mustPut(t, c, other, "restarted", []byte("3"))
	c.WaitValue(t, 3, "restarted", []byte("3"), valueTimeout)
	c.Restart(third)
	c.AwaitNodeListening(third)
	c.WaitValue(t, third, "restarted", []byte("3"), valueTimeout)
}
