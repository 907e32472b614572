package raftnode

import (
	"bytes"
	"context"
	"encoding/binary"
	"sync"
	"time"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"
)

// readIndexRetry is how long one ReadIndex round may go unanswered before
// it is asked again under a new id (the leader may have dropped it). A
// change of leader asks again at once. A variable for tests.
var readIndexRetry = 500 * time.Millisecond

// readIndexer batches linearizable reads: every read that arrives while a
// ReadIndex round is in flight shares the next round, so a burst of reads
// costs one heartbeat round and no disk write. On the leader the next
// round also answers the ReadIndex requests of the other members that
// arrived meanwhile (joinRemote), which raft would otherwise answer with
// a heartbeat round each.
type readIndexer struct {
	n      *Node
	wakeC  chan struct{}
	stateC chan raft.ReadState
	// leaderC tells the read loop that the leader changed: a request
	// sent to the old one may never be answered.
	leaderC chan struct{}

	mu  sync.Mutex
	cur *readBatch
}

type readBatch struct {
	done  chan struct{}
	index uint64
	err   error
	// remote are other members' ReadIndex requests this leader answers
	// with the batch's index.
	remote []*raftpb.Message
}

func newReadIndexer(n *Node) *readIndexer {
	return &readIndexer{
		n:       n,
		wakeC:   make(chan struct{}, 1),
		stateC:  make(chan raft.ReadState, 16),
		leaderC: make(chan struct{}, 1),
		cur:     &readBatch{done: make(chan struct{})},
	}
}

// ReadIndex returns a commit index that is at least the commit index at
// the moment of the call, confirmed by a quorum (raft's ReadIndex with
// ReadOnlySafe). A read served once the state machine applied this index
// is linearizable.
func (n *Node) ReadIndex(ctx context.Context) (uint64, error) {
	r := n.reads
	r.mu.Lock()
	b := r.cur
	r.mu.Unlock()
	r.wake()
	select {
	case <-b.done:
		return b.index, b.err
	case <-ctx.Done():
		return 0, ErrReadTimeout
	case <-n.stopc:
		return 0, ErrStopped
	}
}

// setReadFloor records, as this member becomes leader (raft reports a
// SoftState only when it changes), the index of the first entry of its
// term (the empty entry raft appends then, in rd), and forgets it when
// the member stops leading.
//
// raft holds a leader's ReadIndex requests until it has committed an
// entry of its term, and so every entry an earlier leader may have
// committed, except when the leader is the only voter: that one it
// answers at once with its commit index. After a restart that index is
// the one last saved in the WAL's HardState, which a member saves
// without a sync, and often after it applied the entries (applying
// overlaps the save): a lone member killed there restarts with entries
// it had applied, and acknowledged, beyond its saved commit index, and a
// read answered at that index would miss them until the new term's first
// entry commits. Raising every read index to this floor waits for that.
func (n *Node) setReadFloor(rd raft.Ready) {
	if rd.SoftState.RaftState != raft.StateLeader {
		n.readFloor.Store(0)
		n.leadTerm.Store(0)
		return
	}
	// A candidate's term is saved before it can win, except a lone
	// voter's, which wins in the Ready that saves it.
	n.leadTerm.Store(max(n.termSaved, rd.HardState.GetTerm()))
	floor, err := n.disk.storage.LastIndex() // before rd.Entries are appended
	if err != nil {
		floor = 0
	}
	if k := len(rd.Entries); k > 0 {
		floor = max(floor, rd.Entries[k-1].GetIndex())
	}
	n.readFloor.Store(floor)
}

// deliver hands read states from a Ready to the read loop; stale ones are
// dropped there by request id.
func (r *readIndexer) deliver(states []raft.ReadState) {
	for _, rs := range states {
		select {
		case r.stateC <- rs:
		default:
		}
	}
}

func (r *readIndexer) run() {
	defer r.n.wg.Done()
	for {
		select {
		case <-r.wakeC:
		case <-r.n.stopc:
			return
		}
		r.mu.Lock()
		b := r.cur
		r.cur = &readBatch{done: make(chan struct{})}
		r.mu.Unlock()
		start := time.Now()
		term := r.n.leadTerm.Load()
		b.index, b.err = r.fetch()
		if b.err != nil {
			r.n.met.readIndexFailures.Inc()
		} else {
			r.n.met.readIndexSeconds.Observe(since(start))
		}
		close(b.done)
		r.answerRemote(b, term)
	}
}

// joinRemote takes another member's ReadIndex request into the next
// round, if this member leads, and reports whether it did. The round
// starts after the request arrived, so its index is at least this
// leader's commit index when the request arrived, as raft's own answer
// would be.
func (r *readIndexer) joinRemote(m *raftpb.Message) bool {
	if r.n.leadTerm.Load() == 0 || len(m.GetEntries()) != 1 || m.GetFrom() == raft.None {
		return false
	}
	r.mu.Lock()
	r.cur.remote = append(r.cur.remote, m)
	r.mu.Unlock()
	r.wake()
	r.n.met.readIndexRemote.Inc()
	return true
}

// leaderChanged tells the read loop that this member's leader changed.
func (r *readIndexer) leaderChanged() { notify(r.leaderC) }

// wake tells the read loop that the current batch has a read waiting.
func (r *readIndexer) wake() { notify(r.wakeC) }

// notify sends on c, a channel of capacity 1 that tells a loop to look
// again, without blocking: a signal still pending covers this one.
func notify(c chan<- struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

// answerRemote answers the batch's remote requests with its index, in the
// term this member led when the round began, if it still leads in that
// term: raft answered the round in that term then, since a leader that
// stepped down is not leader again in the same term. Otherwise, or when
// the round failed, the requests go unanswered, and their members ask
// again under new ids after readIndexRetry.
func (r *readIndexer) answerRemote(b *readBatch, term uint64) {
	if len(b.remote) == 0 || b.err != nil || term == 0 || r.n.leadTerm.Load() != term {
		return
	}
	ms := make([]*raftpb.Message, 0, len(b.remote))
	for _, m := range b.remote {
		ms = append(ms, &raftpb.Message{
			Type:    raftpb.MsgReadIndexResp.Enum(),
			To:      proto.Uint64(m.GetFrom()),
			From:    proto.Uint64(r.n.cfg.ID),
			Term:    proto.Uint64(term),
			Index:   proto.Uint64(b.index),
			Entries: m.GetEntries(),
		})
	}
	r.n.transport.Send(ms)
}

// fetch runs ReadIndex rounds, each under a fresh request id, until one is
// answered. It fails when no leader is known after waiting leaderWait for
// one, and gives up after an election timeout's worth of retries so a
// partitioned member answers with an error instead of hanging.
func (r *readIndexer) fetch() (uint64, error) {
	n := r.n
	giveUp := time.Now().Add(2 * time.Duration(n.cfg.ElectionTicks) * n.cfg.TickInterval)
	if giveUp.Before(time.Now().Add(2 * readIndexRetry)) {
		giveUp = time.Now().Add(2 * readIndexRetry)
	}
	for time.Now().Before(giveUp) {
		if !n.awaitLeader(min(n.leaderWait(), time.Until(giveUp))) {
			if n.stopCtx.Err() != nil {
				return 0, ErrStopped
			}
			return 0, ErrNoLeader
		}
		select { // a change before this request is not news to it
		case <-r.leaderC:
		default:
		}
		// A fresh buffer each round: the transport may still be encoding
		// the previous round's message, which holds the old one.
		rctx := binary.BigEndian.AppendUint64(nil, n.reqIDs.Next())
		if err := n.node.ReadIndex(n.stopCtx, rctx); err != nil {
			return 0, n.proposeError(err)
		}
		timer := time.NewTimer(readIndexRetry)
	wait:
		for {
			select {
			case rs := <-r.stateC:
				if bytes.Equal(rs.RequestCtx, rctx) {
					timer.Stop()
					return max(rs.Index, n.readFloor.Load()), nil
				}
			case <-timer.C:
				break wait
			case <-r.leaderC:
				// A leader that died or stepped down answers nothing
				// more: ask the new one now.
				timer.Stop()
				break wait
			case <-n.stopc:
				timer.Stop()
				return 0, ErrStopped
			}
		}
	}
	if n.Leader() == raft.None {
		return 0, ErrNoLeader
	}
	return 0, ErrReadTimeout
}
