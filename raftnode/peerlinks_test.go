package raftnode

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/raftkv/raftkv/internal/testutil"
	"go.etcd.io/etcd/client/pkg/v3/types"
	"go.etcd.io/etcd/server/v3/etcdserver/api/rafthttp"
	stats "go.etcd.io/etcd/server/v3/etcdserver/api/v2stats"
	"go.etcd.io/raft/v3/raftpb"
	"go.uber.org/zap"
	"google.golang.org/protobuf/proto"
)

// TestPeerLinksSilent walks a peer through the events that make it silent
// or not: only appends and heartbeats sent for an election timeout
// without an answer, while still being sent, make it silent, and a
// replacement waits out its backoff.
func TestPeerLinksSilent(t *testing.T) {
	const timeout = time.Second // 10 ticks of 100ms
	msg := func(typ raftpb.MessageType) []*raftpb.Message {
		return []*raftpb.Message{{Type: typ.Enum(), From: proto.Uint64(1), To: proto.Uint64(2)}}
	}
	type step struct {
		at     time.Duration // since the start
		sent   raftpb.MessageType
		heard  bool
		silent bool // want peer 2 silent after the step
	}
	hb, app, vote := raftpb.MsgHeartbeat, raftpb.MsgApp, raftpb.MsgPreVote
	for _, tc := range []struct {
		name  string
		steps []step
	}{
		{"answered heartbeats", []step{
			{at: 0, sent: hb}, {at: 100 * time.Millisecond, heard: true},
			{at: 900 * time.Millisecond, sent: hb}, {at: 1500 * time.Millisecond, sent: hb},
			{at: 1800 * time.Millisecond, sent: hb},
		}},
		{"unanswered for an election timeout", []step{
			{at: 0, sent: hb}, {at: 500 * time.Millisecond, sent: app},
			{at: 900 * time.Millisecond, sent: hb}, {at: timeout, sent: hb, silent: true},
		}},
		{"answered just in time", []step{
			{at: 0, sent: hb}, {at: 900 * time.Millisecond, sent: hb},
			{at: 950 * time.Millisecond, heard: true}, {at: timeout, sent: hb},
		}},
		{"stopped asking (stepped down)", []step{
			{at: 0, sent: hb}, {at: 400 * time.Millisecond, sent: hb},
			{at: 1200 * time.Millisecond, sent: vote},
		}},
		{"votes go unanswered in a lease", []step{
			{at: 0, sent: vote}, {at: 1500 * time.Millisecond, sent: vote},
			{at: 3000 * time.Millisecond, sent: vote},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := newPeerLinks(zap.NewNop(), timeout/10, timeout, nil)
			start := time.Now()
			for i, s := range tc.steps {
				now := start.Add(s.at)
				if s.heard {
					l.heard(2)
				} else {
					l.sent(msg(s.sent), now)
				}
				got := slices.Contains(l.silent(now), uint64(2))
				if got != s.silent {
					t.Fatalf("after step %d (%+v): silent = %v, want %v", i, s, got, s.silent)
				}
			}
		})
	}
}

// TestPeerLinksBackoff: a replaced peer that stays silent is replaced
// again only after its backoff, which hearing from it resets.
func TestPeerLinksBackoff(t *testing.T) {
	const timeout = time.Second
	l := newPeerLinks(zap.NewNop(), timeout/10, timeout, nil)
	hb := []*raftpb.Message{{Type: raftpb.MsgHeartbeat.Enum(), From: proto.Uint64(1), To: proto.Uint64(2)}}
	start := time.Now()
	askUntil := func(from, to time.Duration) {
		for d := from; d <= to; d += 100 * time.Millisecond {
			l.sent(hb, start.Add(d))
		}
	}
	replaced := func(at, backoff time.Duration) {
		l.mu.Lock()
		p := l.mu.peers[2]
		p.replaced, p.asked, p.backoff = start.Add(at), time.Time{}, backoff
		l.mu.Unlock()
	}
	silentAt := func(d time.Duration) bool { return slices.Contains(l.silent(start.Add(d)), uint64(2)) }

	askUntil(0, timeout)
	if !silentAt(timeout) {
		t.Fatal("not silent after an election timeout of unanswered heartbeats")
	}
	replaced(timeout, 2*timeout) // as run does after the second replacement
	askUntil(timeout+100*time.Millisecond, 3*timeout)
	if silentAt(2500 * time.Millisecond) {
		t.Fatal("replaced again within its backoff")
	}
	if !silentAt(3 * timeout) {
		t.Fatal("not replaced again once its backoff passed")
	}
	l.heard(2)
	l.mu.Lock()
	backoff := l.mu.peers[2].backoff
	l.mu.Unlock()
	if backoff != 0 {
		t.Fatalf("backoff %v after hearing from the peer, want 0", backoff)
	}
}

// TestPeerLinksStopped: once the links have stopped the transport, adding,
// removing and replacing a peer do nothing (rafthttp panics when a peer is
// added to a stopped transport, which a replacement under way as the
// member stopped did).
func TestPeerLinksStopped(t *testing.T) {
	rh := startedTransport(t)
	l := newPeerLinks(zap.NewNop(), time.Millisecond, 0, rh)
	l.addPeer(2, "http://127.0.0.1:1")
	l.addPeer(3, "http://127.0.0.1:2")
	l.replace(2, "test") // a live transport: removed and added again
	if rh.Get(types.ID(2)) == nil {
		t.Fatal("peer 2 is gone after its replacement")
	}
	l.stop()
	l.replace(3, "test")
	l.addPeer(4, "http://127.0.0.1:3")
	l.removePeer(2)
	l.stop()
}

// TestPeerLinksRemovedWhileReplaced: a silent peer removed while its
// connections are being replaced (removePeer holds the transport while
// rafthttp stops the peer, which takes long for a dead one) is left
// removed, and the watcher does not touch the link that is gone. It
// dereferenced it, and the member panicked.
func TestPeerLinksRemovedWhileReplaced(t *testing.T) {
	rh := startedTransport(t)
	l := newPeerLinks(zap.NewNop(), time.Millisecond, time.Millisecond, rh)
	defer l.stop()
	l.addPeer(2, "http://127.0.0.1:1")

	// Hold the transport as removePeer does, and let the replacement
	// start: it marks the link replaced, then waits for the transport.
	l.peersMu.Lock()
	done := make(chan struct{})
	go func() {
		defer close(done)
		l.replaceSilent(2)
	}()
	testutil.WaitFor(t, 10*time.Second, "the replacement to start", func() error {
		l.mu.Lock()
		defer l.mu.Unlock()
		if l.mu.peers[2].replaced.IsZero() {
			return errors.New("peer 2 not marked replaced yet")
		}
		return nil
	})
	// The rest of removePeer, then the transport is free again.
	l.rh.RemovePeer(types.ID(2))
	l.mu.Lock()
	delete(l.mu.peers, 2)
	l.mu.Unlock()
	l.peersMu.Unlock()
	<-done

	if rh.Get(types.ID(2)) != nil {
		t.Fatal("the replacement added back a removed peer")
	}
}

// startedTransport is a started rafthttp transport of member 1 with no
// peers yet.
func startedTransport(t *testing.T) *rafthttp.Transport {
	t.Helper()
	rh := &rafthttp.Transport{
		Logger:      zap.NewNop(),
		ID:          types.ID(1),
		ClusterID:   types.ID(1),
		ServerStats: stats.NewServerStats("", "1"),
		LeaderStats: stats.NewLeaderStats(zap.NewNop(), "1"),
		ErrorC:      make(chan error, 1),
	}
	if err := rh.Start(); err != nil {
		t.Fatal(err)
	}
	return rh
}
