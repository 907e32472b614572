package raftnode

import (
	"context"
	"encoding/binary"
	"errors"
	"slices"
	"sync"
	"time"

	"go.etcd.io/raft/v3/raftpb"
)

// errBadBatch marks a batch entry whose framing does not parse. Every
// member skips the same entry, so replicas stay equal.
var errBadBatch = errors.New("raftnode: malformed batch entry")

// batcher runs on every member but only fills up on the leader: it merges
// the application proposals that reach the leader, its own and the ones
// followers forward, into one raft entry, and keeps one such entry of its
// own uncommitted at a time. The payloads that arrive meanwhile wait and
// go together into the next entry, so under load one entry (one WAL write
// and fsync on each member, one append message to each follower) carries
// the writes of every member instead of one entry per member.
//
// A payload queued on a member that is leader no longer is proposed all the
// same and raft forwards it; one lost with a leader change is re-proposed by
// the application, as any dropped proposal is.
type batcher struct {
	n *Node

	mu struct {
		sync.Mutex
		queue []queuedProposal
		bytes int
		// stopped: run has ended and answered the queue; add takes
		// nothing more, since nothing would propose or answer it.
		stopped bool
		// forwarders maps the seq of each of our uncommitted batch
		// entries to the followers whose writes it carries: they get the
		// entry's commit notice at once (see notices.go).
		forwarders map[uint64][]uint64
	}
	wakeC      chan struct{} // a payload was queued
	committedC chan uint64   // seq of a batch entry of ours that committed
}

type queuedProposal struct {
	data   []byte // application payload, without raftnode's kind byte
	result chan<- error
	from   uint64 // the follower that forwarded it; 0 for our own
}

func newBatcher(n *Node) *batcher {
	return &batcher{n: n, wakeC: make(chan struct{}, 1), committedC: make(chan uint64, 64)}
}

// add queues one application payload, forwarded by member from (0 when it
// is this member's own); result, if non-nil, gets raft's answer once the
// entry carrying it is proposed. It reports false when the queue holds
// MaxBatchQueueBytes already, or the batcher has stopped; the caller then
// proposes on its own.
func (b *batcher) add(data []byte, result chan<- error, from uint64) bool {
	b.mu.Lock()
	if b.mu.stopped || b.mu.bytes > 0 && b.mu.bytes+len(data) > b.n.cfg.MaxBatchQueueBytes {
		b.mu.Unlock()
		return false
	}
	b.mu.queue = append(b.mu.queue, queuedProposal{data: data, result: result, from: from})
	b.mu.bytes += len(data)
	b.mu.Unlock()
	notify(b.wakeC)
	return true
}

// committed tells the batcher that its entry seq committed (called by the
// Ready loop, which must never block on it).
func (b *batcher) committed(seq uint64) {
	select {
	case b.committedC <- seq:
	default:
	}
}

// forwarders returns the followers whose writes the batch entry seq
// carries, and forgets them and those of every older entry (an entry
// lost with a leader change never commits).
func (b *batcher) forwarders(seq uint64) []uint64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	ids := b.mu.forwarders[seq]
	for s := range b.mu.forwarders {
		if s <= seq {
			delete(b.mu.forwarders, s)
		}
	}
	return ids
}

// take removes up to MaxSizePerMsg of payloads (at least one) from the
// queue if g says they are due, and records their size in g. It returns
// them, or none and how many payloads wait.
func (b *batcher) take(g *gatherPolicy, waited bool) (qs []queuedProposal, pending int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !g.due(len(b.mu.queue), b.mu.bytes, waited) {
		return nil, len(b.mu.queue)
	}
	n, size := 0, 0
	for n < len(b.mu.queue) && (n == 0 || size+len(b.mu.queue[n].data) <= int(b.n.cfg.MaxSizePerMsg)) {
		size += len(b.mu.queue[n].data)
		n++
	}
	out := make([]queuedProposal, n)
	copy(out, b.mu.queue)
	b.mu.queue = append(b.mu.queue[:0], b.mu.queue[n:]...)
	b.mu.bytes -= size
	g.proposed(size)
	return out, 0
}

// gatherNum/gatherDen is the part of the previous batch, in bytes, that the
// next one gathers before it is proposed without waiting: 9/10, so batches
// keep their size under steady load without waiting for the last writes.
const gatherNum, gatherDen = 9, 10

// gatherPolicy decides when the batcher proposes what is queued, once its
// window has room. Under load, the writes of the entry that just committed
// come back a moment later as their clients' next writes; proposing at once
// would leave them for the entry after, so every write would take two
// rounds and entries would carry a fraction of the load. Instead the
// batcher waits until the queue holds most of the previous entry's bytes,
// or Config.BatchGatherWait has passed. A lone client's entry is small, so
// its next write meets the target alone and waits not at all.
type gatherPolicy struct {
	wait   time.Duration // the longest to wait for the target; <= 0: never wait
	limit  int           // the largest batch (MaxSizePerMsg)
	target int           // bytes that end the wait
}

// due reports whether n queued payloads of size bytes are to be proposed
// now; waited says the wait began at least g.wait ago.
func (g *gatherPolicy) due(n, size int, waited bool) bool {
	return n > 0 && (g.wait <= 0 || waited || size >= g.target)
}

// proposed records that a batch of size bytes was proposed.
func (g *gatherPolicy) proposed(size int) {
	g.target = min(size*gatherNum/gatherDen, g.limit)
}

func (b *batcher) run() {
	defer b.n.wg.Done()
	var (
		seq      uint64
		inflight = map[uint64]time.Time{} // our uncommitted entries: seq -> proposed at
		expire   = time.NewTimer(time.Hour)
		gather   = gatherPolicy{wait: b.n.cfg.BatchGatherWait, limit: int(b.n.cfg.MaxSizePerMsg)}
		gatherT  = time.NewTimer(time.Hour)
		// waiting: the gather wait is running; waited: it ran out.
		waiting, waited bool
	)
	gatherT.Stop()
	defer expire.Stop()
	defer gatherT.Stop()
	defer b.failQueued()
	for {
		if len(inflight) < b.n.cfg.MaxUncommittedBatches {
			qs, pending := b.take(&gather, waited)
			if len(qs) > 0 {
				if waiting {
					gatherT.Stop()
				}
				waiting, waited = false, false
				seq++
				if b.propose(seq, qs) {
					inflight[seq] = time.Now()
					if len(inflight) == 1 {
						expire.Reset(b.n.cfg.UncommittedBatchTimeout)
					}
				}
				continue
			} else if pending > 0 && !waiting {
				waiting = true
				gatherT.Reset(gather.wait)
			}
		}
		select {
		case <-b.wakeC:
		case <-gatherT.C:
			waited = true
		case s := <-b.committedC:
			delete(inflight, s)
		case <-expire.C:
			// Lost with a leader, or just slow: go on without them.
			cutoff := time.Now().Add(-b.n.cfg.UncommittedBatchTimeout)
			next := time.Duration(0)
			for s, at := range inflight {
				if !at.After(cutoff) {
					delete(inflight, s)
				} else if d := at.Sub(cutoff); next == 0 || d < next {
					next = d
				}
			}
			if next > 0 {
				expire.Reset(next)
			}
		case <-b.n.stopc:
			return
		}
	}
}

// propose sends qs as one batch entry and answers each payload's result.
func (b *batcher) propose(seq uint64, qs []queuedProposal) bool {
	payloads := make([][]byte, len(qs))
	var from []uint64
	for i, q := range qs {
		payloads[i] = q.data
		if q.from != 0 && !slices.Contains(from, q.from) {
			from = append(from, q.from)
		}
	}
	if from != nil {
		b.mu.Lock()
		if b.mu.forwarders == nil {
			b.mu.forwarders = map[uint64][]uint64{}
		}
		b.mu.forwarders[seq] = from
		b.mu.Unlock()
	}
	err := b.n.proposeEntry(encodeBatch(b.n.cfg.ID, seq, payloads))
	b.n.met.batchPayloads.Observe(float64(len(qs)))
	for _, q := range qs {
		if q.result != nil {
			q.result <- err
		}
	}
	return err == nil
}

// failQueued answers the payloads still queued when the node stops with
// ErrStopped: they were never proposed, so they reached no log.
func (b *batcher) failQueued() {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, q := range b.mu.queue {
		if q.result != nil {
			q.result <- ErrStopped
		}
	}
	b.mu.queue = nil
	b.mu.stopped = true
}

// encodeBatch frames payloads as one entry: the kind byte, the proposing
// member and its sequence number, then each payload prefixed by its length
// (all uvarints).
func encodeBatch(member, seq uint64, payloads [][]byte) []byte {
	size := 1 + 3*binary.MaxVarintLen64
	for _, p := range payloads {
		size += binary.MaxVarintLen64 + len(p)
	}
	out := make([]byte, 0, size)
	out = append(out, entryBatch)
	out = binary.AppendUvarint(out, member)
	out = binary.AppendUvarint(out, seq)
	out = binary.AppendUvarint(out, uint64(len(payloads)))
	for _, p := range payloads {
		out = binary.AppendUvarint(out, uint64(len(p)))
		out = append(out, p...)
	}
	return out
}

// batchHeader parses the proposing member and its sequence number at the
// start of what encodeBatch wrote, after the kind byte, and returns the
// rest (the payloads' framing).
func batchHeader(data []byte) (member, seq uint64, rest []byte, ok bool) {
	member, k := binary.Uvarint(data)
	if k <= 0 {
		return 0, 0, nil, false
	}
	seq, j := binary.Uvarint(data[k:])
	if j <= 0 {
		return 0, 0, nil, false
	}
	return member, seq, data[k+j:], true
}

// decodeBatch parses what encodeBatch wrote, after the kind byte. The
// payloads alias data.
func decodeBatch(data []byte) (member, seq uint64, payloads [][]byte, err error) {
	member, seq, data, ok := batchHeader(data)
	if !ok {
		return 0, 0, nil, errBadBatch
	}
	next := func() (uint64, bool) {
		v, k := binary.Uvarint(data)
		if k <= 0 {
			return 0, false
		}
		data = data[k:]
		return v, true
	}
	var count uint64
	if count, ok = next(); !ok || count > uint64(len(data)) {
		return 0, 0, nil, errBadBatch
	}
	payloads = make([][]byte, 0, count)
	for range count {
		l, ok := next()
		if !ok || l > uint64(len(data)) {
			return 0, 0, nil, errBadBatch
		}
		payloads = append(payloads, data[:l:l])
		data = data[l:]
	}
	if len(data) != 0 {
		return 0, 0, nil, errBadBatch
	}
	return member, seq, payloads, nil
}

// stepForwarded hands a follower's forwarded proposal to the batcher,
// entry by entry; what is not application data goes to raft unchanged.
func (n *Node) stepForwarded(ctx context.Context, m *raftpb.Message) error {
	var rest []*raftpb.Entry
	for _, e := range m.GetEntries() {
		d := e.GetData()
		if e.GetType() == raftpb.EntryNormal && len(d) > 0 && d[0] == entryApp && n.batch.add(d[1:], nil, m.GetFrom()) {
			continue
		}
		rest = append(rest, e)
	}
	if len(rest) == 0 {
		return nil
	}
	m.Entries = rest
	return n.node.Step(ctx, m)
}
