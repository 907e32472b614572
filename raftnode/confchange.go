package raftnode

import (
	"context"
	"fmt"
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

// applyMembership records an applied conf change and reports whether it
// removed this member.
func (n *Node) applyMembership(cc *raftpb.ConfChange) bool {
	id := cc.GetNodeId()
	n.mu.Lock()
	defer n.mu.Unlock()
	switch cc.GetType() {
	case raftpb.ConfChangeAddNode, raftpb.ConfChangeAddLearnerNode:
		if m, ok := n.mu.members.Members[id]; ok {
			// Two members proposed the same id at once; the first one
			// applied keeps its URL, on every member alike.
			n.lg.Warn("ignoring a second add of a member", zap.Uint64("peer-id", id),
				zap.String("peer-url", m.PeerURL), zap.String("ignored-url", string(cc.GetContext())))
			return false
		}
		m := Member{ID: id, PeerURL: string(cc.GetContext())}
		n.mu.members.Members[id] = m
		n.addPeerLocked(id, m.PeerURL)
		n.lg.Info("member added", zap.Uint64("peer-id", id), zap.String("peer-url", m.PeerURL))
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
	n.mu.Lock()
	var err error
	switch {
	case n.mu.ccPending:
		err = ErrConfChangeInProgress
	case req.Type == raftpb.ConfChangeAddNode:
		err = n.mu.members.checkAdd(req.NodeID, req.PeerURL)
	case req.Type == raftpb.ConfChangeRemoveNode:
		err = n.mu.members.checkRemove(req.NodeID)
	default:
		err = fmt.Errorf("%w: unsupported change %v", ErrInvalidMember, req.Type)
	}
	if err == nil && n.leader.Load() == raft.None {
		err = ErrNoLeader
	}
	if err != nil {
		n.mu.Unlock()
		req.Result <- err
		return
	}
	n.mu.ccPending = true
	n.mu.Unlock()

	id := n.reqIDs.Next()
	appliedC := n.ccWait.Register(id)
	cc := &raftpb.ConfChange{Type: req.Type.Enum(), NodeId: proto.Uint64(req.NodeID), Id: proto.Uint64(id)}
	if req.Type == raftpb.ConfChangeAddNode {
		cc.Context = []byte(req.PeerURL)
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

// AddMember adds a voting member and returns once the change is applied
// on this member.
func (n *Node) AddMember(ctx context.Context, id uint64, peerURL string) error {
	return n.changeMembership(ctx, ConfChange{Type: raftpb.ConfChangeAddNode, NodeID: id, PeerURL: peerURL})
}

// RemoveMember removes a member and returns once the change is applied on
// this member. Removing this member stops it.
func (n *Node) RemoveMember(ctx context.Context, id uint64) error {
	return n.changeMembership(ctx, ConfChange{Type: raftpb.ConfChangeRemoveNode, NodeID: id})
}

func (n *Node) changeMembership(ctx context.Context, cc ConfChange) error {
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
