package raftnode

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"go.etcd.io/etcd/server/v3/storage/wal"
	"go.etcd.io/etcd/server/v3/storage/wal/walpb"
	"go.etcd.io/raft/v3/raftpb"
	"go.uber.org/zap"
	"google.golang.org/protobuf/proto"
)

// walOnDisk is what a member's WAL files hold at one moment: the last
// HardState and the index of the last entry (or of the snapshot, if no
// entry follows it). Bytes the WAL still buffers are not on disk yet.
type walOnDisk struct {
	hs   *raftpb.HardState
	last uint64
}

// readWAL reads dataDir's WAL as a restart would find it, from its newest
// valid snapshot record on, without taking the WAL's locks.
func readWAL(dataDir string) (walOnDisk, error) {
	lg := zap.NewNop()
	snaps, err := wal.ValidSnapshotEntries(lg, walDir(dataDir))
	if err != nil {
		return walOnDisk{}, err
	}
	start := &walpb.Snapshot{}
	if len(snaps) > 0 {
		start = snaps[len(snaps)-1]
	}
	w, err := wal.OpenForRead(lg, walDir(dataDir), start)
	if err != nil {
		return walOnDisk{}, err
	}
	defer w.Close()
	_, hs, ents, err := w.ReadAll()
	if err != nil {
		return walOnDisk{}, err
	}
	d := walOnDisk{hs: hs, last: start.GetIndex()}
	if len(ents) > 0 {
		d.last = ents[len(ents)-1].GetIndex()
	}
	return d, nil
}

// durableBeforeSend checks raft's rule for one outgoing message against
// the sender's WAL on disk at the moment it is sent: "no messages be sent
// until the latest HardState has been persisted to disk, and all Entries
// written by any previous Ready batch". A follower's append response must
// not leave before the entries it acknowledges are in its WAL, nor a vote
// (or a campaign) before the term and vote are. A leader's messages may
// leave before its own entries are saved (it counts itself toward the
// quorum only once they are), and a follower's forwarded proposals and
// read requests carry no term and promise nothing about its log.
func durableBeforeSend(m *raftpb.Message, d walOnDisk) error {
	switch m.GetType() {
	case raftpb.MsgProp, raftpb.MsgReadIndex, raftpb.MsgPreVote, raftpb.MsgPreVoteResp:
		return nil
	}
	hs := d.hs
	if m.GetTerm() > hs.GetTerm() {
		return fmt.Errorf("sent at term %d with term %d on disk", m.GetTerm(), hs.GetTerm())
	}
	switch {
	case m.GetType() == raftpb.MsgVote && (hs.GetTerm() != m.GetTerm() || hs.GetVote() != m.GetFrom()):
		return fmt.Errorf("campaigns at term %d with term %d, vote %d on disk", m.GetTerm(), hs.GetTerm(), hs.GetVote())
	case m.GetType() == raftpb.MsgVoteResp && !m.GetReject() && (hs.GetTerm() != m.GetTerm() || hs.GetVote() != m.GetTo()):
		return fmt.Errorf("grants its vote to %d at term %d with term %d, vote %d on disk", m.GetTo(), m.GetTerm(), hs.GetTerm(), hs.GetVote())
	case m.GetType() == raftpb.MsgAppResp && !m.GetReject() && m.GetIndex() > d.last:
		return fmt.Errorf("acknowledges index %d with entries up to %d on disk", m.GetIndex(), d.last)
	}
	return nil
}

// TestDurableBeforeSend: the checker itself, on the messages it must pass
// and those it must refuse.
func TestDurableBeforeSend(t *testing.T) {
	disk := walOnDisk{hs: &raftpb.HardState{}, last: 10}
	disk.hs.Term, disk.hs.Vote = proto.Uint64(3), proto.Uint64(2)
	msg := func(typ raftpb.MessageType, from, to, term, index uint64, reject bool) *raftpb.Message {
		return &raftpb.Message{Type: typ.Enum(), From: &from, To: &to, Term: &term, Index: &index, Reject: &reject}
	}
	tests := []struct {
		name string
		m    *raftpb.Message
		ok   bool
	}{
		{"append response for saved entries", msg(raftpb.MsgAppResp, 1, 2, 3, 10, false), true},
		{"append response ahead of the disk", msg(raftpb.MsgAppResp, 1, 2, 3, 11, false), false},
		{"rejection ahead of the disk", msg(raftpb.MsgAppResp, 1, 2, 3, 11, true), true},
		{"leader appends ahead of its disk", msg(raftpb.MsgApp, 2, 1, 3, 11, false), true},
		{"message of an unsaved term", msg(raftpb.MsgHeartbeatResp, 1, 2, 4, 0, false), false},
		{"vote saved", msg(raftpb.MsgVoteResp, 1, 2, 3, 0, false), true},
		{"vote for another than on disk", msg(raftpb.MsgVoteResp, 1, 3, 3, 0, false), false},
		{"vote refused", msg(raftpb.MsgVoteResp, 1, 3, 3, 0, true), true},
		{"campaign saved", msg(raftpb.MsgVote, 2, 1, 3, 0, false), true},
		{"campaign without its own vote on disk", msg(raftpb.MsgVote, 1, 2, 3, 0, false), false},
		{"pre-vote of a future term", msg(raftpb.MsgPreVote, 1, 2, 4, 0, false), true},
		{"forwarded proposal", msg(raftpb.MsgProp, 1, 2, 0, 0, false), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := durableBeforeSend(tt.m, disk); (err == nil) != tt.ok {
				t.Fatalf("durableBeforeSend = %v, want ok %v", err, tt.ok)
			}
		})
	}
}

// orderChecker checks every message a member sends against its WAL on
// disk at that moment (see durableBeforeSend), and counts what it saw.
type orderChecker struct {
	dirs func(id uint64) string

	mu         sync.Mutex
	violations []string
	checked    map[raftpb.MessageType]int
	// leaderEarly counts appends a leader sent before the entries they
	// carry were in its own WAL: proof that the checker sees the moment
	// before a save.
	leaderEarly int
}

func (oc *orderChecker) onSend(from uint64, m *raftpb.Message) {
	if m.GetType() == raftpb.MsgProp {
		return // sent off the Ready loop; nothing to check
	}
	d, err := readWAL(oc.dirs(from))
	oc.mu.Lock()
	defer oc.mu.Unlock()
	if err != nil {
		oc.violations = append(oc.violations, fmt.Sprintf("member %d: reading its wal: %v", from, err))
		return
	}
	if err := durableBeforeSend(m, d); err != nil {
		oc.violations = append(oc.violations, fmt.Sprintf("member %d sent %v to %d: %v", from, m.GetType(), m.GetTo(), err))
	}
	oc.checked[m.GetType()]++
	if ents := m.GetEntries(); m.GetType() == raftpb.MsgApp && len(ents) > 0 && ents[len(ents)-1].GetIndex() > d.last {
		oc.leaderEarly++
	}
}

// TestReadyOrder runs clusters whose every message is checked, when it is
// sent, against the sender's WAL on disk: responses and votes leave only
// after what they promise is saved. Moving the follower's send before its
// WAL save in handleReady makes it fail.
func TestReadyOrder(t *testing.T) {
	tests := []struct {
		name string
		run  func(t *testing.T, c *testCluster)
		// want lists message types the scenario must have checked.
		want []raftpb.MessageType
	}{
		{"writes through the leader", func(t *testing.T, c *testCluster) {
			c.waitConverged(c.putN("lead", 40))
		}, []raftpb.MessageType{raftpb.MsgApp, raftpb.MsgAppResp, raftpb.MsgHeartbeatResp}},
		{"writes and reads through followers", func(t *testing.T, c *testCluster) {
			var want []string
			for i := range 30 {
				lead := c.waitLeader()
				f := c.members[lead.id%3]
				v := fmt.Sprintf("fwd-%d", i)
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				err := f.node.Propose(ctx, []byte(v))
				if err == nil {
					want = append(want, v)
					_, err = f.node.ReadIndex(ctx)
				}
				cancel()
				if err != nil {
					t.Logf("member %d: %v", f.id, err)
				}
			}
			c.waitConverged(want)
			if props := c.net.messages(func(m sentMsg) bool { return m.typ == raftpb.MsgProp }); len(props) == 0 {
				t.Error("no follower forwarded a proposal")
			}
		}, []raftpb.MessageType{raftpb.MsgApp, raftpb.MsgAppResp, raftpb.MsgReadIndex, raftpb.MsgReadIndexResp}},
		{"leader changes", func(t *testing.T, c *testCluster) {
			var want []string
			for round := range 3 {
				want = append(want, c.putN(fmt.Sprintf("round%d", round), 5)...)
				lead := c.waitLeader()
				c.net.isolate(lead.id)
				c.eventually(10*time.Second, func() error {
					for _, m := range c.running() {
						if m.id != lead.id && m.node.Leader() != 0 && m.node.Leader() != lead.id {
							return nil
						}
					}
					return fmt.Errorf("no new leader besides %d", lead.id)
				})
				want = append(want, c.putN(fmt.Sprintf("round%d-new", round), 5)...)
				c.net.heal()
			}
			c.waitConverged(want)
		}, []raftpb.MessageType{raftpb.MsgVote, raftpb.MsgVoteResp, raftpb.MsgApp, raftpb.MsgAppResp}},
		{"a leader that cannot reach its followers", func(t *testing.T, c *testCluster) {
			want := c.putN("before", 5)
			lead := c.waitLeader()
			for _, m := range c.running() {
				if m.id != lead.id {
					c.net.drop(lead.id, m.id)
				}
			}
			c.eventually(10*time.Second, func() error {
				if l := c.waitLeader(); l.id == lead.id {
					return fmt.Errorf("member %d still leads", l.id)
				}
				return nil
			})
			want = append(want, c.putN("after", 5)...)
			c.net.heal()
			c.waitConverged(want)
			if lost := c.net.messages(func(m sentMsg) bool { return m.from == lead.id && m.dropped }); len(lost) == 0 {
				t.Errorf("nothing member %d sent was dropped", lead.id)
			}
		}, []raftpb.MessageType{raftpb.MsgVote, raftpb.MsgVoteResp, raftpb.MsgApp, raftpb.MsgAppResp}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			oc := &orderChecker{checked: map[raftpb.MessageType]int{}}
			c := newTestCluster(t, 3, fastConfig(), func(c *testCluster) {
				oc.dirs = func(id uint64) string { return c.dirs[id-1] }
				c.net.onSend = oc.onSend
			})
			tt.run(t, c)
			for id := range c.members {
				c.stop(uint64(id + 1))
			}
			oc.mu.Lock()
			defer oc.mu.Unlock()
			for _, v := range oc.violations {
				t.Error(v)
			}
			for _, typ := range tt.want {
				if oc.checked[typ] == 0 {
					t.Errorf("no %v was sent; checked %v", typ, oc.checked)
				}
			}
			if oc.leaderEarly == 0 {
				t.Errorf("no leader sent an append before saving its entries; checked %v", oc.checked)
			}
			t.Logf("checked %v; %d appends left a leader before its own save", oc.checked, oc.leaderEarly)
		})
	}
}

// TestReadyOrderLoneVoter: a lone voter becomes candidate and leader in
// one step when it restarts, with no vote to send, so its first Ready as
// leader carries the new term unsaved together with its messages to the
// learners. Those must wait for the save: a voter that died before it
// would campaign for the same term again and could send other entries at
// the same indexes and term, which a learner could not tell apart.
func TestReadyOrderLoneVoter(t *testing.T) {
	oc := &orderChecker{checked: map[raftpb.MessageType]int{}}
	c := newTestCluster(t, 1, fastConfig(), func(c *testCluster) {
		oc.dirs = func(id uint64) string { return c.dirs[id-1] }
		c.net.onSend = oc.onSend
	})
	c.waitLeader()
	want := c.putN("before", 5)
	learner := c.addLearner(1)
	c.waitConverged(want)
	// The learner forwards proposals all along, so that some reach the
	// voter as it becomes leader again, before that Ready is taken.
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := range 2 {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
				learner.node.Propose(ctx, []byte(fmt.Sprintf("l%d-%d", w, i)))
				cancel()
				time.Sleep(time.Millisecond) // a stream, not a flood
			}
		})
	}
	for round := range 10 {
		c.stop(1)
		c.start(1, false)
		c.waitLeader()
		want = append(want, c.putN(fmt.Sprintf("round%d", round), 2)...)
	}
	close(stop)
	wg.Wait()
	c.stop(1)
	c.stop(2)
	oc.mu.Lock()
	defer oc.mu.Unlock()
	for _, v := range oc.violations {
		t.Error(v)
	}
	if oc.checked[raftpb.MsgApp] == 0 {
		t.Errorf("no append was sent; checked %v", oc.checked)
	}
	t.Logf("checked %v", oc.checked)
}
