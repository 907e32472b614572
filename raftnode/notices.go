package raftnode

import (
	"time"

	"go.etcd.io/raft/v3/raftpb"
)

// Commit notices.
//
// When an entry commits, raft's leader sends every follower an append
// with no entries, only to tell it the new commit index ("not strictly
// necessary", says raft: the next append and every heartbeat carry it
// too). With one client, that is two messages out and two answers back
// per write, about a sixth of the cluster's CPU per write, and on the
// leader they are written before the committed entry is applied.
//
// A follower needs the notice soon only when it waits for the entry: when
// a write it forwarded is in it (it answers its client once it applied
// the write). So the leader holds the notice to any other follower for up
// to Config.CommitNoticeDelay: an append with entries to that follower
// meanwhile carries a commit index at least as new, and the held notice
// is dropped; otherwise it is sent when the delay ends. Raft tolerates a
// dropped message, and this one is only ever superseded, never lost: a
// follower learns every commit index within the delay or with the next
// append, whichever comes first. Its stale reads and watches see a
// leader-served write up to the delay later; its linearizable reads
// still wait for the read index to be applied.

// heldNotices is the Ready loop's state of the notices it holds.
type heldNotices struct {
	byPeer map[uint64]*raftpb.Message
	timer  *time.Timer // stopped while nothing is held
	armed  bool
	// told is, per follower, the highest commit index a message sent to
	// it carried; waitFor is the commit index a follower waits to hear
	// of (a write it forwarded committed there), and waitAll the one
	// every follower does (an entry of unknown origin). Raft may send a
	// commit notice in a later Ready than the one with the committed
	// entries: when the follower's appends were paused then, or when a
	// heartbeat since (which carries only what the follower has
	// acknowledged) made raft send the commit index again once the
	// follower acknowledged the entries. Such a notice goes out at once
	// to a follower that waits for it, and is held for any other.
	told    map[uint64]uint64
	waitFor map[uint64]uint64
	waitAll uint64
}

func newHeldNotices() *heldNotices {
	t := time.NewTimer(time.Hour)
	t.Stop()
	return &heldNotices{byPeer: map[uint64]*raftpb.Message{}, timer: t,
		told: map[uint64]uint64{}, waitFor: map[uint64]uint64{}}
}

// waits reports whether follower id waits for a commit index no message
// has told it yet.
func (h *heldNotices) waits(id uint64) bool {
	told := h.told[id]
	return h.waitFor[id] > told || h.waitAll > told
}

// sent records the commit index m tells its receiver, if any, and forgets
// what the receiver waited for once it is told.
func (h *heldNotices) sent(m *raftpb.Message) {
	var commit uint64
	switch m.GetType() {
	case raftpb.MsgApp, raftpb.MsgHeartbeat:
		commit = m.GetCommit()
	case raftpb.MsgSnap:
		commit = m.GetSnapshot().GetMetadata().GetIndex()
	default:
		return
	}
	to := m.GetTo()
	if commit > h.told[to] {
		h.told[to] = commit
	}
	if w, ok := h.waitFor[to]; ok && w <= commit {
		delete(h.waitFor, to)
	}
}

// isNotice reports whether m is an append that carries no entries.
func isNotice(m *raftpb.Message) bool {
	return m.GetType() == raftpb.MsgApp && len(m.GetEntries()) == 0
}

// holdNotices takes from a leader's Ready messages the commit notices to
// the followers that wait for none of the committed entries, holds them,
// and returns the rest, to be sent now. An append with entries or a
// snapshot to a peer supersedes the notice held for it.
func (n *Node) holdNotices(ms []*raftpb.Message, committed []*raftpb.Entry) []*raftpb.Message {
	h := n.notices
	hold := n.cfg.CommitNoticeDelay > 0
	if hold && len(committed) > 0 {
		last := committed[len(committed)-1].GetIndex()
		waiting, all := n.noticeWaiters(committed)
		if all {
			h.waitAll = last
		}
		for _, id := range waiting {
			h.waitFor[id] = last
		}
	}
	kept := ms[:0]
	for _, m := range ms {
		if hold && isNotice(m) && !h.waits(m.GetTo()) {
			h.byPeer[m.GetTo()] = m
			n.met.noticesHeld.Inc()
			continue
		}
		n.supersedeNotice(m)
		h.sent(m)
		kept = append(kept, m)
	}
	if len(h.byPeer) > 0 && !h.armed {
		h.timer.Reset(n.cfg.CommitNoticeDelay)
		h.armed = true
	}
	return kept
}

// supersedeNotice drops the notice held for m's receiver when m is an
// append or a snapshot: it carries a commit index at least as new.
func (n *Node) supersedeNotice(m *raftpb.Message) {
	h := n.notices
	if t := m.GetType(); (t == raftpb.MsgApp || t == raftpb.MsgSnap) && h.byPeer[m.GetTo()] != nil {
		delete(h.byPeer, m.GetTo())
		n.met.noticesSuperseded.Inc()
	}
}

// flushNotices sends the notices still held, when their delay ended.
func (n *Node) flushNotices() {
	h := n.notices
	h.armed = false
	if len(h.byPeer) == 0 {
		return
	}
	ms := make([]*raftpb.Message, 0, len(h.byPeer))
	for _, m := range h.byPeer {
		ms = append(ms, m)
		h.sent(m)
	}
	clear(h.byPeer)
	if n.isLeader {
		n.send(ms)
	}
}

// dropNotices forgets the held notices of a member that is leader no
// longer: they carry its old term.
func (n *Node) dropNotices() {
	h := n.notices
	clear(h.byPeer)
	clear(h.told)
	clear(h.waitFor)
	h.waitAll = 0
}

// noticeWaiters returns the followers that forwarded a write in the
// committed entries, or all=true when an entry's origin is not known
// (one another leader proposed, a proposal raft took directly, a
// membership change): then every follower gets its notice at once.
func (n *Node) noticeWaiters(committed []*raftpb.Entry) (waiting []uint64, all bool) {
	for _, e := range committed {
		if e.GetIndex() <= n.appliedIndex {
			continue
		}
		d := e.GetData()
		switch {
		case e.GetType() != raftpb.EntryNormal:
			return nil, true
		case len(d) == 0:
			// A new leader's empty entry.
		case d[0] == entryBatch:
			member, seq, _, ok := batchHeader(d[1:])
			if !ok || member != n.cfg.ID {
				return nil, true
			}
			waiting = append(waiting, n.batch.forwarders(seq)...)
		default:
			return nil, true
		}
	}
	return waiting, false
}
