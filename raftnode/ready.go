package raftnode

import (
	"fmt"
	"os"
	"runtime"
	"time"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
	"go.uber.org/zap"
	"google.golang.org/protobuf/proto"
)

// run is the Ready loop: the only goroutine that touches n.node's Ready
// channel, the WAL, the snapshot files and the MemoryStorage writes.
func (n *Node) run() {
	defer n.wg.Done()
	ticker := time.NewTicker(n.cfg.TickInterval)
	defer ticker.Stop()
	for {
		select {
		case <-ticker.C:
			n.node.Tick()
		case <-n.notices.timer.C:
			n.flushNotices()
		case rd := <-n.node.Ready():
			start := time.Now()
			err := n.handleReady(rd)
			n.met.readySeconds.Observe(since(start))
			if err != nil {
				n.answerConfChanges() // applied all the same; we stop now
				n.stop(err)
				return
			}
			n.node.Advance()
			n.answerConfChanges()
		case resc := <-n.captureC:
			resc <- n.capture() // buffered
		case res := <-n.snapDoneC:
			if err := n.finishSnapshot(res); err != nil {
				n.stop(err)
				return
			}
		case err := <-n.transport.ErrorC():
			// Above all: the other members told us we were removed.
			n.stop(err)
			return
		case <-n.stopc:
			return
		}
	}
}

// handleReady processes one Ready in the order raft's doc.go requires.
func (n *Node) handleReady(rd raft.Ready) error {
	if rd.SoftState != nil {
		// Before setLeader wakes the reads waiting for a leader.
		n.setReadFloor(rd)
		if old := n.setLeader(rd.SoftState.Lead); old != rd.SoftState.Lead {
			n.lg.Info("leader changed", zap.Uint64("from", old), zap.Uint64("to", rd.SoftState.Lead))
			n.reads.leaderChanged()
			if rd.SoftState.Lead != raft.None {
				n.met.leaderChanges.Inc()
				notify(n.newLeaderC)
			}
		}
		n.isLeader = rd.SoftState.RaftState == raft.StateLeader
		if !n.isLeader {
			n.dropNotices()
		}
		n.met.hasLeader.Set(boolGauge(rd.SoftState.Lead != raft.None))
		n.met.isLeader.Set(boolGauge(n.isLeader))
	}
	// A leader may send appends before its own fsync (raft thesis 10.2.1):
	// it counts itself toward the quorum only after Advance.
	var after []*raftpb.Message
	switch {
	case n.isLeader && rd.HardState.GetTerm() > n.termSaved:
		// A lone voter becomes candidate and leader in one step, with no
		// vote to send, so its term may not be saved yet: messages of
		// that term wait for the save, or a voter that died before it
		// could send other entries at the same indexes and term again.
		after = n.holdNotices(rd.Messages, rd.CommittedEntries)
	case n.isLeader:
		rd.Messages = n.holdNotices(rd.Messages, rd.CommittedEntries)
		n.send(rd.Messages)
		if len(rd.Messages) > 0 && len(rd.Entries) > 0 {
			// The transport's writers were just made runnable on this
			// goroutine's P, and the fsync below blocks its thread in
			// the kernel while they wait there for another thread to
			// take them. Yielding lets them write the appends first, so
			// the followers start their own fsyncs sooner.
			runtime.Gosched()
		}
	default:
		// A follower forwards proposals and read requests at once: they
		// carry no term and state nothing about this member's log, so
		// they need not wait for the fsync below (raft sends them as
		// local messages).
		var early []*raftpb.Message
		early, after = splitForwarded(rd.Messages)
		n.send(early)
	}
	// A snapshot from the leader: its .snap file and WAL record before
	// the entries and HardState that follow it.
	hasSnap := !raft.IsEmptySnap(rd.Snapshot)
	if hasSnap {
		if err := n.saveReceivedSnapshot(rd.Snapshot); err != nil {
			return err
		}
	}
	// Committed entries are durable on a quorum already, so applying them
	// may overlap this member's own fsync of new entries, as in etcd. No
	// snapshot covers entries this member has not persisted: maybeSnapshot
	// runs after the save below. (raft hands out no committed entries in a
	// Ready that carries a snapshot.)
	if err := n.publishEntries(rd.CommittedEntries); err != nil {
		return err
	}
	if err := n.disk.wal.Save(rd.HardState, rd.Entries); err != nil {
		return fmt.Errorf("raftnode: save wal: %w", err)
	}
	n.termSaved = max(n.termSaved, rd.HardState.GetTerm())
	if hasSnap {
		if err := n.installSnapshot(rd.Snapshot); err != nil {
			return err
		}
	}
	if err := n.disk.storage.Append(rd.Entries); err != nil {
		return fmt.Errorf("raftnode: append to storage: %w", err)
	}
	n.send(after)
	if len(rd.ReadStates) > 0 {
		n.reads.deliver(rd.ReadStates)
	}
	return n.maybeSnapshot()
}

// splitForwarded separates the proposals and read requests a follower
// forwards to its leader from the messages that must wait until this
// Ready is persisted.
func splitForwarded(ms []*raftpb.Message) (forwarded, rest []*raftpb.Message) {
	for _, m := range ms {
		switch m.GetType() {
		case raftpb.MsgProp, raftpb.MsgReadIndex:
			forwarded = append(forwarded, m)
		default:
			rest = append(rest, m)
		}
	}
	return forwarded, rest
}

// saveReceivedSnapshot saves a snapshot from the leader (its data file
// was saved by the transport before raft saw the message): its .snap file
// and WAL record.
func (n *Node) saveReceivedSnapshot(s *raftpb.Snapshot) error {
	if _, err := os.Stat(n.dataFile(s.GetMetadata().GetIndex())); err != nil {
		return fmt.Errorf("raftnode: snapshot from leader has no data file: %w", err)
	}
	if err := n.fail(fpSnapReceived); err != nil {
		return err
	}
	return n.saveSnapshot(s)
}

// installSnapshot completes a snapshot from the leader once the WAL holds
// the HardState that commits it: it syncs that HardState (wal.Save syncs
// only new entries, terms and votes), loads the snapshot into raft's
// storage, hands it to the application, and only then releases the older
// WAL segments and data files. Until that HardState is durable, a restart
// would start from the previous snapshot and need them (etcd issue 10219).
func (n *Node) installSnapshot(s *raftpb.Snapshot) error {
	if err := n.fail(fpSnapHardStateSaved); err != nil {
		return err
	}
	if err := n.disk.wal.Sync(); err != nil {
		return fmt.Errorf("raftnode: sync wal: %w", err)
	}
	if err := n.disk.storage.ApplySnapshot(s); err != nil {
		return fmt.Errorf("raftnode: apply snapshot to storage: %w", err)
	}
	if err := n.publishSnapshot(s); err != nil {
		return err
	}
	return n.releaseTo(s.GetMetadata().GetIndex())
}

func (n *Node) publishSnapshot(s *raftpb.Snapshot) error {
	md := s.GetMetadata()
	if md.GetIndex() <= n.appliedIndex {
		return fmt.Errorf("raftnode: snapshot index %d is not past applied index %d", md.GetIndex(), n.appliedIndex)
	}
	env, err := decodeEnvelope(s.GetData())
	if err != nil {
		return err
	}
	n.mu.Lock()
	// The level only rises, though a snapshot from a binary before
	// levels carries none.
	env.Membership.ClusterLevel = max(env.Membership.ClusterLevel, n.mu.members.ClusterLevel)
	old := n.mu.members
	n.mu.members = env.Membership
	// The transport follows the changes the snapshot stands for, as it
	// follows conf change entries: a member removed leaves it, and one
	// whose peer URL a change this member had not applied set (a higher
	// URLIndex) is built anew with the new one. A URL differing at the
	// same URLIndex is the leader's own view of the same member (the
	// first members' URLs come from each member's own --cluster, which
	// may name a proxy per link), and the one in use stays, also on a
	// member that joins and learns the list from this snapshot.
	for id := range n.peers {
		m, ok := env.Membership.Members[id]
		was, had := old.Members[id]
		switch {
		case !ok || env.Membership.Removed[id]:
			n.removePeer(id)
		case had && m.PeerURL != was.PeerURL && (m.URLIndex > was.URLIndex || m.URLIndex == 0):
			n.removePeer(id) // a change this member missed (or a snapshot that cannot tell)
		case had && m.PeerURL != was.PeerURL:
			m.PeerURL = was.PeerURL // this member's own view stays in its list
			env.Membership.Members[id] = m
		}
	}
	for _, m := range env.Membership.sorted() {
		n.addPeerLocked(m.ID, m.PeerURL)
	}
	n.mu.Unlock()
	if err := n.restoredLevel(env.Membership.ClusterLevel); err != nil {
		return err
	}
	n.confState = md.GetConfState()
	n.appliedIndex, n.snapshotIndex = md.GetIndex(), md.GetIndex()
	n.snapIndex.Store(md.GetIndex())
	n.lg.Info("applying snapshot from leader", zap.Uint64("snapshot-index", md.GetIndex()))
	n.met.snapshotsReceived.Inc()
	return n.publish(&Commit{SnapshotPath: n.dataFile(md.GetIndex()), Index: md.GetIndex()})
}

// entriesToApply drops the entries at or below applied, which the state
// machine already has (raft may hand them out again after a snapshot).
func entriesToApply(ents []*raftpb.Entry, applied uint64) ([]*raftpb.Entry, error) {
	if len(ents) == 0 {
		return nil, nil
	}
	first := ents[0].GetIndex()
	if first > applied+1 {
		return nil, fmt.Errorf("raftnode: first committed entry %d is past applied index %d + 1", first, applied)
	}
	if skip := applied - first + 1; skip < uint64(len(ents)) {
		return ents[skip:], nil
	}
	return nil, nil
}

// publishEntries applies conf changes and raftnode's own records, and
// hands the application entries to the application.
func (n *Node) publishEntries(committed []*raftpb.Entry) error {
	ents, err := entriesToApply(committed, n.appliedIndex)
	if err != nil || len(ents) == 0 {
		return err
	}
	var (
		out         []Entry
		removedSelf bool
	)
	for _, e := range ents {
		switch e.GetType() {
		case raftpb.EntryNormal:
			d := e.GetData()
			if len(d) == 0 {
				continue // a new leader's empty entry
			}
			switch d[0] {
			case entryApp:
				out = append(out, Entry{Index: e.GetIndex(), Data: d[1:]})
			case entryBatch:
				member, seq, payloads, err := decodeBatch(d[1:])
				if err != nil {
					n.lg.Warn("skipping undecodable batch entry", zap.Uint64("index", e.GetIndex()), zap.Error(err))
					continue
				}
				for _, p := range payloads {
					out = append(out, Entry{Index: e.GetIndex(), Data: p})
				}
				if member == n.cfg.ID {
					n.batch.committed(seq)
				}
			case entryAttributes:
				n.applyAttributes(d[1:])
			case entryClusterLevel:
				if err := n.applyClusterLevel(e.GetIndex(), d[1:]); err != nil {
					return err
				}
			default:
				n.lg.Warn("skipping entry of unknown kind", zap.Uint64("index", e.GetIndex()), zap.Uint8("kind", d[0]))
			}
		case raftpb.EntryConfChange:
			cc := &raftpb.ConfChange{}
			if err := proto.Unmarshal(e.GetData(), cc); err != nil {
				return fmt.Errorf("raftnode: decode conf change at index %d: %w", e.GetIndex(), err)
			}
			n.confState = n.node.ApplyConfChange(cc)
			if n.applyMembership(cc, e.GetIndex()) {
				removedSelf = true
			}
			n.ccApplied = append(n.ccApplied, cc.GetId())
		}
	}
	for _, e := range ents {
		n.appliedBytes += uint64(len(e.GetData()))
	}
	n.appliedIndex = ents[len(ents)-1].GetIndex()
	n.met.committedEntries.Add(float64(len(ents)))
	if err := n.publish(&Commit{Entries: out, Index: n.appliedIndex}); err != nil {
		return err
	}
	if removedSelf {
		return ErrRemoved
	}
	return nil
}

func (n *Node) publish(c *Commit) error {
	done := make(chan struct{})
	c.applyDone = done
	select {
	case n.commitC <- c:
	case <-n.stopc:
		return ErrStopped
	}
	n.lastApplyDone = done
	n.published.Store(c.Index)
	return nil
}
