package raftnode

import (
	"context"
	"fmt"
	"slices"
	"time"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
	"go.uber.org/zap"
	"google.golang.org/protobuf/proto"
)

// answerConfChanges answers the proposers of the conf changes applied in
// the last Ready. Not before Advance: until then raft counts the last
// change as unapplied and drops the next one proposed (it becomes an empty
// entry), so a client answered earlier could send one that is lost and
// times out.
func (n *Node) answerConfChanges() {
	for _, id := range n.ccApplied {
		n.ccWait.Trigger(id, nil)
	}
	n.ccApplied = n.ccApplied[:0]
}

// applyMembership records a conf change that raft applied (n.confState is
// raft's configuration after it) and reports whether it removed this
// member.
func (n *Node) applyMembership(cc *raftpb.ConfChange, index uint64) bool {
	id := cc.GetNodeId()
	n.mu.Lock()
	defer n.mu.Unlock()
	switch cc.GetType() {
	case raftpb.ConfChangeAddNode, raftpb.ConfChangeAddLearnerNode:
		// A member's role is the one raft gave it: adding a learner as a
		// voter promotes it, and raft would demote a voter added as a
		// learner, so the list follows raft's configuration.
		learner := slices.Contains(n.confState.GetLearners(), id)
		if m, ok := n.mu.members.Members[id]; ok {
			if m.IsLearner != learner {
				m.IsLearner = learner
				n.mu.members.Members[id] = m
				if learner {
					n.lg.Warn("member demoted to learner", zap.Uint64("peer-id", id))
				} else {
					n.lg.Info("learner promoted to voting member", zap.Uint64("peer-id", id))
				}
				return false
			}
			// Two members proposed the same id at once; the first one
			// applied keeps its URL, on every member alike.
			n.lg.Warn("ignoring a second add of a member", zap.Uint64("peer-id", id),
				zap.String("peer-url", m.PeerURL), zap.String("ignored-url", string(cc.GetContext())))
			return false
		}
		m := Member{ID: id, PeerURL: string(cc.GetContext()), IsLearner: learner, URLIndex: index}
		n.mu.members.Members[id] = m
		n.addPeerLocked(id, m.PeerURL)
		n.lg.Info("member added", zap.Uint64("peer-id", id), zap.String("peer-url", m.PeerURL), zap.Bool("learner", learner))
	case raftpb.ConfChangeUpdateNode:
		m, ok := n.mu.members.Members[id]
		if !ok {
			n.lg.Warn("ignoring an update of a member that is not one", zap.Uint64("peer-id", id))
			return false
		}
		old := m.PeerURL
		m.PeerURL, m.URLIndex = string(cc.GetContext()), index
		n.mu.members.Members[id] = m
		if id != n.cfg.ID && old != m.PeerURL {
			// rafthttp's peer keeps its URLs; a new one is built.
			n.removePeer(id)
			n.addPeerLocked(id, m.PeerURL)
		}
		n.lg.Info("member updated", zap.Uint64("peer-id", id), zap.String("peer-url", m.PeerURL), zap.String("old-peer-url", old))
	case raftpb.ConfChangeRemoveNode:
		delete(n.mu.members.Members, id)
		n.mu.members.Removed[id] = true
		n.lg.Info("member removed", zap.Uint64("peer-id", id))
		if id == n.cfg.ID {
			return true
		}
		n.removePeer(id)
	}
	return false
}

func (n *Node) applyAttributes(data []byte) {
	a, err := decodeAttributes(data)
	if err != nil {
		n.lg.Warn("skipping undecodable member attributes", zap.Error(err))
		return
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if m, ok := n.mu.members.Members[a.ID]; ok {
		m.ClientURL = a.ClientURL
		n.mu.members.Members[a.ID] = m
	}
}

// publishAttributes proposes this member's client URL until the member
// list shows it, as etcd members publish theirs when they start.
func (n *Node) publishAttributes() {
	defer n.wg.Done()
	if n.cfg.ClientURL == "" {
		return
	}
	data, err := encodeAttributes(attributes{ID: n.cfg.ID, ClientURL: n.cfg.ClientURL})
	if err != nil {
		n.lg.Warn("cannot encode member attributes", zap.Error(err))
		return
	}
	t := time.NewTicker(500 * time.Millisecond)
	defer t.Stop()
	for {
		n.mu.RLock()
		m, ok := n.mu.members.Members[n.cfg.ID]
		n.mu.RUnlock()
		if ok && m.ClientURL == n.cfg.ClientURL {
			return
		}
		if ok && n.leader.Load() != raft.None {
			ctx, cancel := context.WithTimeout(n.stopCtx, time.Second)
			_ = n.node.Propose(ctx, data) // retried until applied
			cancel()
		}
		select {
		case <-t.C:
		case <-n.stopc:
			return
		}
	}
}

func (n *Node) proposeConfChange(req ConfChange) {
	peerURL, err := n.checkConfChange(req)
	if err != nil {
		req.Result <- err
		return
	}
	id := n.reqIDs.Next()
	appliedC := n.ccWait.Register(id)
	cc := &raftpb.ConfChange{Type: req.Type.Enum(), NodeId: proto.Uint64(req.NodeID), Id: proto.Uint64(id)}
	if req.Type != raftpb.ConfChangeRemoveNode {
		cc.Context = []byte(peerURL)
	}
	ctx, cancel := context.WithTimeout(req.Ctx, n.electionTimeout())
	err = n.node.ProposeConfChange(ctx, cc)
	cancel()
	if err != nil {
		n.ccWait.Trigger(id, n.proposeError(err))
	}
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		var res error
		select {
		case v := <-appliedC:
			res, _ = v.(error)
		case <-req.Ctx.Done():
			n.ccWait.Trigger(id, nil)
			res = ErrTimeout
		case <-n.stopc:
			// The change was proposed: unless its answer is in already
			// (applied, or refused), it may have reached the other
			// members' logs and be applied there.
			select {
			case v := <-appliedC:
				res, _ = v.(error)
			default:
				n.ccWait.Trigger(id, nil)
				res = ErrOutcomeUnknown
			}
		}
		n.mu.Lock()
		n.mu.ccPending = false
		n.mu.Unlock()
		req.Result <- res
	}()
}

// checkConfChange validates req against the member list (and, for a
// promotion, the learner's progress), marks a change pending and returns
// the peer URL the conf change carries: the new member's, or for a
// promotion the learner's.
func (n *Node) checkConfChange(req ConfChange) (string, error) {
	if req.Promote {
		if req.Type != raftpb.ConfChangeAddNode {
			return "", fmt.Errorf("%w: promotion by %v", ErrInvalidMember, req.Type)
		}
		// raft's status comes from raft's goroutine: not under n.mu.
		n.mu.RLock()
		err := n.mu.members.checkPromote(req.NodeID)
		n.mu.RUnlock()
		if err == nil {
			err = n.learnerReady(req.NodeID)
		}
		if err != nil {
			return "", err
		}
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	var err error
	peerURL := req.PeerURL
	switch {
	case n.mu.ccPending:
		err = ErrConfChangeInProgress
	case req.Promote:
		err = n.mu.members.checkPromote(req.NodeID)
		peerURL = n.mu.members.Members[req.NodeID].PeerURL
	case req.Type == raftpb.ConfChangeAddNode, req.Type == raftpb.ConfChangeAddLearnerNode:
		err = n.mu.members.checkAdd(req.NodeID, req.PeerURL)
	case req.Type == raftpb.ConfChangeRemoveNode:
		err = n.mu.members.checkRemove(req.NodeID)
	case req.Type == raftpb.ConfChangeUpdateNode:
		err = n.mu.members.checkUpdate(req.NodeID, req.PeerURL)
	default:
		err = fmt.Errorf("%w: unsupported change %v", ErrInvalidMember, req.Type)
	}
	if err == nil && n.leader.Load() == raft.None {
		err = ErrNoLeader
	}
	if err != nil {
		return "", err
	}
	n.mu.ccPending = true
	return peerURL, nil
}

// learnerReadyFraction is how much of the leader's log a learner must
// hold to be promoted, etcd's rule (its readyPercentThreshold): a voter
// far behind would hold up the commits of the quorum it joins, or, should
// a voter fail meanwhile, stop them.
const learnerReadyFraction = 0.9

// learnerReady reports whether learner id may be promoted: this member
// leads, and the learner's log matches the leader's up to at least
// learnerReadyFraction of the leader's own match index.
func (n *Node) learnerReady(id uint64) error {
	rs := n.node.Status()
	if rs.RaftState != raft.StateLeader {
		return withDetail(ErrNotLeader, "promote needs the leader",
			"only the leader knows how far a learner is, and this member is not the leader; retry shortly, or send the request to the leader")
	}
	leaderMatch := rs.Progress[rs.ID].Match
	pr, ok := rs.Progress[id]
	if !ok || float64(pr.Match) < float64(leaderMatch)*learnerReadyFraction {
		var match uint64
		if ok {
			match = pr.Match
		}
		return withDetail(ErrLearnerNotReady, fmt.Sprintf("learner %d matches index %d, the leader %d", id, match, leaderMatch),
			fmt.Sprintf("learner %d is not caught up with the leader: its log matches up to index %d of the leader's %d, and it needs %.0f%% of that to be promoted; retry once it has caught up",
				id, match, leaderMatch, learnerReadyFraction*100))
	}
	return nil
}

// AddMember adds a voting member and returns once the change is applied
// on this member.
func (n *Node) AddMember(ctx context.Context, id uint64, peerURL string) error {
	return n.changeMembership(ctx, ConfChange{Type: raftpb.ConfChangeAddNode, NodeID: id, PeerURL: peerURL})
}

// AddLearner adds a learner, a member that receives the log and snapshots
// but does not vote (so a new member that is far behind does not weigh on
// the quorum), and returns once the change is applied on this member.
// PromoteMember makes it a voter once it has caught up.
func (n *Node) AddLearner(ctx context.Context, id uint64, peerURL string) error {
	return n.changeMembership(ctx, ConfChange{Type: raftpb.ConfChangeAddLearnerNode, NodeID: id, PeerURL: peerURL})
}

// PromoteMember makes the learner id a voting member and returns once the
// change is applied on this member. Only the leader knows how far the
// learner is: elsewhere it fails with ErrNotLeader. The leader refuses with
// ErrLearnerNotReady a learner whose log matches less than 90% of its own,
// as etcd does; with ErrNotLearner a voter, with ErrMemberNotFound an
// unknown id.
func (n *Node) PromoteMember(ctx context.Context, id uint64) error {
	return n.changeMembership(ctx, ConfChange{Type: raftpb.ConfChangeAddNode, NodeID: id, Promote: true})
}

// UpdateMember gives member id a new peer URL, as etcd's member update
// does, and returns once the change is applied on this member. The
// members send to id at peerURL from then on; id itself must be started
// again listening there (its own --cluster entry), and every member whose
// command line names id's old URL should have it changed, since a
// member's command line comes first after a restart (see startTransport).
func (n *Node) UpdateMember(ctx context.Context, id uint64, peerURL string) error {
	return n.changeMembership(ctx, ConfChange{Type: raftpb.ConfChangeUpdateNode, NodeID: id, PeerURL: peerURL})
}

// RemoveMember removes a member and returns once the change is applied on
// this member. Removing this member stops it.
func (n *Node) RemoveMember(ctx context.Context, id uint64) error {
	return n.changeMembership(ctx, ConfChange{Type: raftpb.ConfChangeRemoveNode, NodeID: id})
}

func (n *Node) changeMembership(ctx context.Context, cc ConfChange) error {
	// Like a proposal, a change waits a while for a leader to be known
	// (leaderwait.go); checkConfChange refuses it if none is by then.
	n.awaitLeaderCtx(ctx)
	res := make(chan error, 1)
	cc.Ctx, cc.Result = ctx, res
	select {
	case n.confChangeC <- cc:
	case <-ctx.Done():
		return ErrTimeout
	case <-n.stopc:
		return ErrStopped
	}
	select {
	case err := <-res:
		return err
	case <-n.donec:
		// The node's goroutines have ended, so the answer is in, unless
		// the node stopped before it took the change.
		select {
		case err := <-res:
			return err
		default:
			return ErrOutcomeUnknown
		}
	}
}

// Members returns the current member list, sorted by id.
func (n *Node) Members() []Member {
	n.mu.RLock()
	defer n.mu.RUnlock()
	return n.mu.members.sorted()
}
