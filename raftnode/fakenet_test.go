package raftnode

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"go.etcd.io/etcd/server/v3/etcdserver/api/snap"
	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"
)

// network connects members in one process in place of rafthttp: each
// member's Transport (an endpoint) hands messages to the receiver's Raft
// through a queue per receiver, in order, as rafthttp's stream does, and
// streams a snapshot's data file into the receiver's Snapshotter before
// its message, as rafthttp's snapshot handler does. Only the network is
// fake: the members, their WAL and snapshot files are real.
//
// Links can be cut one way or both; a message on a cut link is dropped
// (and reported unreachable, as rafthttp reports a failed connection).
// Every message sent is recorded, and onSend, if set, sees each one on the
// sender's goroutine before it leaves: for a message from the Ready loop,
// the sender is stopped at that point of its Ready.
type network struct {
	onSend func(from uint64, m *raftpb.Message) // set before any member starts

	mu       sync.Mutex
	ends     map[uint64]*endpoint
	cut      map[link]bool
	isolated map[uint64]bool
	sent     []sentMsg
}

type link struct{ from, to uint64 }

// sentMsg is the record of one message handed to a transport.
type sentMsg struct {
	from, to    uint64
	typ         raftpb.MessageType
	term, index uint64
	commit      uint64
	entries     int
	reject      bool
	dropped     bool // on a cut link, or to a member the sender did not add
}

// errLinkDown is what a snapshot sent over a cut link fails with.
var errLinkDown = errors.New("fake network: link down")

func newNetwork() *network {
	return &network{ends: map[uint64]*endpoint{}, cut: map[link]bool{}, isolated: map[uint64]bool{}}
}

// transport is a Config.NewTransport: it registers the member's endpoint,
// in place of a previous one of the same id (a restarted member).
func (nw *network) transport(p TransportParams) (Transport, error) {
	e := &endpoint{
		nw:    nw,
		p:     p,
		inbox: make(chan *raftpb.Message, 4096),
		props: make(chan *raftpb.Message, 4096),
		errc:  make(chan error, 1),
		stopc: make(chan struct{}),
		peers: map[uint64]string{},
	}
	e.ctx, e.cancel = context.WithCancel(context.Background())
	nw.mu.Lock()
	nw.ends[p.ID] = e
	nw.mu.Unlock()
	e.wg.Add(2)
	go e.deliver(e.inbox)
	go e.deliver(e.props)
	return e, nil
}

// isolate cuts every link to and from id, running or not; heal mends
// every link.
func (nw *network) isolate(id uint64) {
	nw.mu.Lock()
	defer nw.mu.Unlock()
	nw.isolated[id] = true
}

func (nw *network) heal() {
	nw.mu.Lock()
	defer nw.mu.Unlock()
	clear(nw.cut)
	clear(nw.isolated)
}

// drop cuts the link from -> to (one way).
func (nw *network) drop(from, to uint64) {
	nw.mu.Lock()
	defer nw.mu.Unlock()
	nw.cut[link{from, to}] = true
}

// messages returns the record of the messages sent so far that match keep.
func (nw *network) messages(keep func(sentMsg) bool) []sentMsg {
	nw.mu.Lock()
	defer nw.mu.Unlock()
	var out []sentMsg
	for _, m := range nw.sent {
		if keep(m) {
			out = append(out, m)
		}
	}
	return out
}

// peersOf returns the members id's current transport has added.
func (nw *network) peersOf(id uint64) map[uint64]string {
	nw.mu.Lock()
	e := nw.ends[id]
	nw.mu.Unlock()
	if e == nil {
		return nil
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	out := make(map[uint64]string, len(e.peers))
	for id, u := range e.peers {
		out[id] = u
	}
	return out
}

// route records m and returns the endpoint it may be delivered to: nil if
// the sender did not add the receiver, the receiver runs no transport, or
// the link is cut (then cut is true).
func (nw *network) route(from *endpoint, m *raftpb.Message) (to *endpoint, cut bool) {
	from.mu.Lock()
	_, added := from.peers[m.GetTo()]
	from.mu.Unlock()
	nw.mu.Lock()
	defer nw.mu.Unlock()
	down := nw.downLocked(m.GetFrom(), m.GetTo())
	if added && !down {
		to = nw.ends[m.GetTo()]
	}
	nw.sent = append(nw.sent, sentMsg{
		from: m.GetFrom(), to: m.GetTo(), typ: m.GetType(),
		term: m.GetTerm(), index: m.GetIndex(), commit: m.GetCommit(), entries: len(m.GetEntries()),
		reject: m.GetReject(), dropped: to == nil,
	})
	return to, added && down
}

func (nw *network) downLocked(from, to uint64) bool {
	return nw.cut[link{from, to}] || nw.isolated[from] || nw.isolated[to]
}

// linkUp reports whether from -> to is not cut (checked again on delivery:
// a partition also drops what is in flight).
func (nw *network) linkUp(from, to uint64) bool {
	nw.mu.Lock()
	defer nw.mu.Unlock()
	return !nw.downLocked(from, to)
}

// endpoint is one member's Transport on a network.
type endpoint struct {
	nw *network
	p  TransportParams
	// inbox and props queue the messages for this member: proposals
	// apart, as rafthttp has them, since raft holds a proposal until
	// the member knows a leader and the messages that would tell it one
	// must not wait behind it.
	inbox  chan *raftpb.Message
	props  chan *raftpb.Message
	errc   chan error
	stopc  chan struct{}
	ctx    context.Context // cancelled by Stop
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu      sync.Mutex
	peers   map[uint64]string
	stopped bool
}

func (e *endpoint) Send(ms []*raftpb.Message) {
	for _, m := range ms {
		if m.GetTo() == 0 {
			continue
		}
		if e.nw.onSend != nil {
			e.nw.onSend(e.p.ID, m)
		}
		to, cut := e.nw.route(e, m)
		if to == nil {
			if cut {
				e.p.Raft.ReportUnreachable(m.GetTo())
			}
			continue
		}
		// The receiver gets its own copy, as it would from the wire.
		if !to.enqueue(proto.Clone(m).(*raftpb.Message)) {
			e.p.Raft.ReportUnreachable(m.GetTo())
		}
	}
}

func (e *endpoint) SendSnapshot(sm *snap.Message) {
	m := sm.Message
	if e.nw.onSend != nil {
		e.nw.onSend(e.p.ID, m)
	}
	fail := func(err error) {
		sm.CloseWithError(err)
		e.p.Raft.ReportUnreachable(m.GetTo())
		e.p.Raft.ReportSnapshot(m.GetTo(), raft.SnapshotFailure)
	}
	to, _ := e.nw.route(e, m)
	if to == nil {
		fail(errLinkDown)
		return
	}
	e.wg.Add(1)
	go func() {
		defer e.wg.Done()
		if err := to.receiveSnapshot(e.ctx, sm); err != nil {
			fail(err)
			return
		}
		sm.CloseWithError(nil)
		e.p.Raft.ReportSnapshot(m.GetTo(), raft.SnapshotFinish)
	}()
}

func (e *endpoint) AddPeer(id uint64, peerURL string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if _, ok := e.peers[id]; ok {
		panic(fmt.Sprintf("member %d added peer %d twice", e.p.ID, id))
	}
	e.peers[id] = peerURL
}

func (e *endpoint) RemovePeer(id uint64) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if _, ok := e.peers[id]; !ok {
		panic(fmt.Sprintf("member %d removed peer %d it never added", e.p.ID, id))
	}
	delete(e.peers, id)
}

func (e *endpoint) ErrorC() <-chan error { return e.errc }

func (e *endpoint) Stop() {
	e.mu.Lock()
	e.stopped = true
	e.mu.Unlock()
	e.nw.mu.Lock()
	if e.nw.ends[e.p.ID] == e {
		delete(e.nw.ends, e.p.ID)
	}
	e.nw.mu.Unlock()
	close(e.stopc)
	e.cancel()
	e.wg.Wait()
}

// enqueue queues m for this member, or reports false if its queue is full
// (rafthttp drops a message when its buffer is).
func (e *endpoint) enqueue(m *raftpb.Message) bool {
	q := e.inbox
	if m.GetType() == raftpb.MsgProp {
		q = e.props
	}
	select {
	case q <- m:
		return true
	default:
		return false
	}
}

// deliver hands the messages of queue q to this member's Raft in order.
func (e *endpoint) deliver(q chan *raftpb.Message) {
	defer e.wg.Done()
	for {
		select {
		case m := <-q:
			if e.refuse(m) || !e.nw.linkUp(m.GetFrom(), e.p.ID) {
				continue
			}
			_ = e.p.Raft.Process(e.ctx, m) // fails only once the member stops
		case <-e.stopc:
			return
		}
	}
}

// refuse reports whether this member refuses m because its sender was
// removed; the sender then learns it, as rafthttp's 410 Gone tells it.
func (e *endpoint) refuse(m *raftpb.Message) bool {
	if !e.p.Raft.IsIDRemoved(m.GetFrom()) {
		return false
	}
	e.nw.mu.Lock()
	from := e.nw.ends[m.GetFrom()]
	e.nw.mu.Unlock()
	if from != nil {
		select {
		case from.errc <- fmt.Errorf("%w: member %d refuses its messages", ErrRemoved, e.p.ID):
		default:
		}
	}
	return true
}

// receiveSnapshot saves the data file streamed behind a MsgSnap with this
// member's Snapshotter, then hands the message to its Raft, as rafthttp's
// snapshot handler does. Nothing reaches the member's files once it
// stopped.
func (e *endpoint) receiveSnapshot(senderCtx context.Context, sm *snap.Message) error {
	e.mu.Lock()
	if e.stopped {
		e.mu.Unlock()
		return ErrStopped
	}
	e.wg.Add(1)
	e.mu.Unlock()
	defer e.wg.Done()
	m := proto.Clone(sm.Message).(*raftpb.Message)
	if e.refuse(m) {
		return errLinkDown
	}
	if _, err := e.p.Snapshotter.SaveDBFrom(sm.ReadCloser, m.GetSnapshot().GetMetadata().GetIndex()); err != nil {
		return err
	}
	if !e.nw.linkUp(m.GetFrom(), e.p.ID) {
		return errLinkDown
	}
	ctx, cancel := context.WithCancel(e.ctx)
	defer cancel()
	go func() {
		select {
		case <-senderCtx.Done():
			cancel()
		case <-ctx.Done():
		}
	}()
	return e.p.Raft.Process(ctx, m)
}
