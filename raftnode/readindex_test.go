package raftnode

import (
	"bytes"
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"go.etcd.io/etcd/server/v3/etcdserver/api/snap"
	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"
)

// TestFollowerReadsJoinLeaderRounds: a follower's ReadIndex, which the
// leader answers from its own next round instead of a heartbeat round of
// its own, still covers every write acknowledged before it began, and
// the answers come in the leader's term.
func TestFollowerReadsJoinLeaderRounds(t *testing.T) {
	c := newTestCluster(t, 3, fastConfig())
	lead := c.waitLeader()
	for round := range 10 {
		index := c.put(fmt.Sprintf("v%d", round))
		for _, m := range c.running() {
			if m == lead {
				continue
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			got, err := m.node.ReadIndex(ctx)
			cancel()
			if err != nil {
				t.Fatalf("round %d: member %d's read: %v", round, m.id, err)
			}
			if got < index {
				t.Fatalf("round %d: member %d read at index %d, below the write acknowledged at %d", round, m.id, got, index)
			}
		}
	}
	if lead != c.waitLeader() {
		t.Skip("the leader changed during the test")
	}
	var d dto.Metric
	if err := lead.node.met.readIndexRemote.Write(&d); err != nil {
		t.Fatal(err)
	}
	if got := d.GetCounter().GetValue(); got < 20 {
		t.Errorf("the leader answered %v of the followers' 20 reads from its own rounds", got)
	}
	term := lead.node.leadTerm.Load()
	for _, m := range c.net.messages(func(m sentMsg) bool {
		return m.from == lead.id && m.typ == raftpb.MsgReadIndexResp
	}) {
		if m.term != term {
			t.Errorf("an answer to member %d in term %d, the leader's term is %d", m.to, m.term, term)
		}
	}
}

// TestFollowerReadsAcrossLeaderChange: with the leader cut off, the
// other members' reads wait for, or retry until, the new leader, and then
// cover the writes it acknowledged; the old leader's too, once back.
func TestFollowerReadsAcrossLeaderChange(t *testing.T) {
	c := newTestCluster(t, 3, fastConfig())
	old := c.waitLeader()
	before := c.put("before")
	c.net.isolate(old.id)
	// Reads begun before a new leader exists: each either fails (no
	// leader for a while) or covers the last write acknowledged before it.
	errc := make(chan error, 2)
	for _, m := range c.running() {
		if m == old {
			continue
		}
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			got, err := m.node.ReadIndex(ctx)
			switch {
			case err != nil:
				errc <- nil // refused, which is allowed while no leader is known
			case got < before:
				errc <- fmt.Errorf("member %d read at %d, below %d", m.id, got, before)
			default:
				errc <- nil
			}
		}()
	}
	for range 2 {
		if err := <-errc; err != nil {
			t.Error(err)
		}
	}
	c.eventually(15*time.Second, func() error {
		if l := old.node.Leader(); l == old.id {
			return fmt.Errorf("member %d still leads while cut off", old.id)
		}
		return nil
	})
	index := c.put("after")
	c.net.heal()
	for _, m := range c.running() {
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		got, err := m.node.ReadIndex(ctx)
		for err != nil && ctx.Err() == nil {
			got, err = m.node.ReadIndex(ctx)
		}
		cancel()
		if err != nil {
			t.Fatalf("member %d's read after the change: %v", m.id, err)
		}
		if got < index {
			t.Errorf("member %d read at %d, below the new leader's write at %d", m.id, got, index)
		}
	}
}

// A follower's read whose request went to a leader that was then cut off
// asks again as soon as the leader changes, not after readIndexRetry.
func TestReadAsksAgainWhenLeaderChanges(t *testing.T) {
	retry := readIndexRetry
	// Registered before the cluster's cleanup, so it runs after that.
	t.Cleanup(func() { readIndexRetry = retry })
	readIndexRetry = time.Hour
	c := newTestCluster(t, 3, fastConfig())
	old := c.waitLeader()
	before := c.put("before")
	var f *testMember
	for _, m := range c.running() {
		if m != old {
			f = m
		}
	}
	c.net.isolate(old.id)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	got, err := f.node.ReadIndex(ctx)
	for err != nil && ctx.Err() == nil {
		// No leader known for a while, which is allowed.
		got, err = f.node.ReadIndex(ctx)
	}
	if err != nil {
		t.Fatalf("member %d's read across the change: %v", f.id, err)
	}
	if got < before {
		t.Errorf("member %d read at %d, below %d", f.id, got, before)
	}
}

// TestRemoteReadsAnsweredInTheirTerm: the leader answers other members'
// requests with its round's index only while it still leads in the term
// the round began in, and never after a failed round.
func TestRemoteReadsAnsweredInTheirTerm(t *testing.T) {
	tr := &sendRecorder{}
	n := &Node{transport: tr, met: newMetrics(nil)}
	n.cfg.ID = 1
	n.reads = newReadIndexer(n)
	req := &raftpb.Message{Type: raftpb.MsgReadIndex.Enum(), From: proto.Uint64(2), To: proto.Uint64(1),
		Entries: []*raftpb.Entry{{Data: []byte("ctx-2")}}}

	if n.reads.joinRemote(req) {
		t.Fatal("a member that does not lead took another's read")
	}
	n.leadTerm.Store(5)
	if !n.reads.joinRemote(req) {
		t.Fatal("the leader did not take another member's read")
	}
	b := n.reads.cur
	if len(b.remote) != 1 {
		t.Fatalf("the next round holds %d remote reads, want 1", len(b.remote))
	}
	b.index = 42

	n.reads.answerRemote(b, 5)
	sent := tr.take()
	if len(sent) != 1 {
		t.Fatalf("%d answers sent, want 1", len(sent))
	}
	m := sent[0]
	if m.GetType() != raftpb.MsgReadIndexResp || m.GetTo() != 2 || m.GetFrom() != 1 || m.GetTerm() != 5 || m.GetIndex() != 42 ||
		len(m.GetEntries()) != 1 || !bytes.Equal(m.GetEntries()[0].GetData(), []byte("ctx-2")) {
		t.Fatalf("answer %v", m)
	}

	for _, tc := range []struct {
		name      string
		roundTerm uint64
		nowTerm   uint64
		err       error
	}{
		{"a new term since the round began", 5, 6, nil},
		{"no longer leader", 5, 0, nil},
		{"began while not leading", 0, 0, nil},
		{"the round failed", 5, 5, ErrReadTimeout},
	} {
		n.leadTerm.Store(tc.nowTerm)
		b.err = tc.err
		n.reads.answerRemote(b, tc.roundTerm)
		if sent := tr.take(); len(sent) != 0 {
			t.Errorf("%s: %d answers sent", tc.name, len(sent))
		}
	}

	bad := proto.Clone(req).(*raftpb.Message)
	bad.Entries = nil
	n.leadTerm.Store(5)
	if n.reads.joinRemote(bad) {
		t.Error("the leader took a request without its context, which raft refuses")
	}
}

// sendRecorder is a Transport that records what is sent.
type sendRecorder struct {
	mu   sync.Mutex
	sent []*raftpb.Message
}

func (s *sendRecorder) Send(ms []*raftpb.Message) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sent = append(s.sent, ms...)
}

func (s *sendRecorder) take() []*raftpb.Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := s.sent
	s.sent = nil
	return out
}

func (s *sendRecorder) SendSnapshot(m *snap.Message)      { m.CloseWithError(nil) }
func (s *sendRecorder) AddPeer(id uint64, peerURL string) {}
func (s *sendRecorder) RemovePeer(id uint64)              {}
func (s *sendRecorder) ErrorC() <-chan error              { return nil }
func (s *sendRecorder) Stop()                             {}
