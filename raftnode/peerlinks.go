package raftnode

import (
	"context"
	"net"
	"net/http"
	"path"
	"slices"
	"strings"
	"sync"
	"time"

	"go.etcd.io/etcd/client/pkg/v3/types"
	"go.etcd.io/etcd/server/v3/etcdserver/api/rafthttp"
	"go.etcd.io/raft/v3/raftpb"
	"go.uber.org/zap"
)

// Why peer links are watched: rafthttp carries each direction of a peer
// pair on a long-lived TCP stream that the sending side accepted and the
// receiving side dialed, and nothing on it notices a network that drops
// packets silently (rafthttp's read and write timeouts never reach the
// connections in etcd v3.7: http.Transport prefers the DialContext it
// also sets, over the timeout Dial). The sender's TCP retransmits with
// exponential backoff, so a few seconds into an outage its next try is
// seconds away, and once the network heals the stream stays silent until
// then: a leader cut off for 5 to 8 seconds answered its clients 2 to 6
// seconds after the heal.
//
// So raftnode replaces the connections of a silent peer itself. A peer is
// silent when this member has kept sending it appends or heartbeats,
// which a live follower answers at once, for an election timeout without
// a word back. The peer is removed from the transport and added again,
// after the streams it opened to this member are closed with a reset (so
// that the goroutines writing to them return at once, and its readers
// learn of it if the network carries the reset). The new readers dial
// with a short timeout and redial at once, so the first attempt after
// the heal connects within about peerDialTimeout. While the peer stays
// silent the replacements back off (an election timeout, then twice
// that, and so on): the new readers redial by themselves.
//
// The other side replaces its own connections the same way if it was
// sending appends or heartbeats. If it was not (a follower whose leader
// was cut off, say), it learns of the replacement when this member's new
// readers open streams to it while it still holds the ones they replace,
// and replaces its own in turn, so that no side is left reading a stream
// that will never carry anything again.

// peerDialTimeout bounds one dial to a peer, so that a dial whose SYN the
// network swallowed is abandoned and tried afresh instead of waiting for
// the kernel's SYN backoff (1, 2, 4... seconds). Three heartbeat
// intervals, at least 100ms: a connect takes one round trip, and the
// heartbeat interval is chosen near the round-trip time.
func (n *Node) peerDialTimeout() time.Duration {
	return max(3*time.Duration(n.cfg.HeartbeatTicks)*n.cfg.TickInterval, 100*time.Millisecond)
}

// peerLinks watches every peer of the default transport for silence and
// replaces the connections of a silent one (see above). Its run goroutine
// does the replacing.
type peerLinks struct {
	lg      *zap.Logger
	tick    time.Duration // how often silence is looked for
	silence time.Duration // how long a silent peer is waited for
	kick    chan uint64   // peers whose readers to replace soon
	// rh is the transport whose peers are replaced; nil in unit tests.
	rh *rafthttp.Transport

	mu struct {
		sync.Mutex
		peers map[uint64]*peerLink
	}
	// peersMu serializes adding, removing and replacing peers in rh, so
	// that a replacement never adds back a peer the node just removed,
	// and all of them with stopping rh: rafthttp panics when a peer is
	// added to a stopped transport, as a replacement under way when the
	// member stopped did.
	peersMu sync.Mutex
	stopped bool // rh stopped; guarded by peersMu
}

// peerLink is what is known of one peer. Guarded by peerLinks.mu.
type peerLink struct {
	url      string
	asked    time.Time // first unanswered ask since the peer was heard; zero if none
	lastAsk  time.Time // the latest ask
	replaced time.Time // last replacement of its connections
	// backoff is the least time between two replacements while the peer
	// stays silent: it doubles with each, so an outage that lasts, or a
	// peer that is down, does not cost a replacement every election
	// timeout. Hearing from the peer resets it.
	backoff time.Duration
	// streams are the streams it opened to this member, by stream type,
	// for as long as their handlers run.
	streams map[string]map[net.Conn]struct{}
}

// newPeerLinks watches the peers of rh: silence is an election timeout,
// looked for every tick.
func newPeerLinks(lg *zap.Logger, tick, silence time.Duration, rh *rafthttp.Transport) *peerLinks {
	l := &peerLinks{lg: lg, tick: tick, silence: silence, rh: rh, kick: make(chan uint64, 16)}
	l.mu.peers = make(map[uint64]*peerLink)
	return l
}

// linkLocked returns id's link, creating it. l.mu must be held.
func (l *peerLinks) linkLocked(id uint64) *peerLink {
	p := l.mu.peers[id]
	if p == nil {
		p = &peerLink{streams: make(map[string]map[net.Conn]struct{})}
		l.mu.peers[id] = p
	}
	return p
}

// addPeer adds id at url to the transport and records the URL.
func (l *peerLinks) addPeer(id uint64, url string) {
	l.peersMu.Lock()
	defer l.peersMu.Unlock()
	if l.stopped {
		return
	}
	l.rh.AddPeer(types.ID(id), []string{url})
	l.mu.Lock()
	l.linkLocked(id).url = url
	l.mu.Unlock()
}

// stop stops the transport; peers added, removed or replaced after it
// are ignored.
func (l *peerLinks) stop() {
	l.peersMu.Lock()
	defer l.peersMu.Unlock()
	if !l.stopped {
		l.stopped = true
		l.rh.Stop()
	}
}

// removePeer removes id from the transport and forgets it.
func (l *peerLinks) removePeer(id uint64) {
	l.peersMu.Lock()
	defer l.peersMu.Unlock()
	if l.stopped {
		return
	}
	l.rh.RemovePeer(types.ID(id))
	l.mu.Lock()
	delete(l.mu.peers, id)
	l.mu.Unlock()
}

// expectsAnswer reports whether a live receiver of a message of type t
// answers it at once: a follower answers every append and heartbeat of
// its leader. (Votes are not counted: a member that heard from its
// leader lately ignores them without an answer.)
func expectsAnswer(t raftpb.MessageType) bool {
	switch t {
	case raftpb.MsgApp, raftpb.MsgHeartbeat:
		return true
	}
	return false
}

// sent notes the messages sent at now that ask their receivers for an
// answer.
func (l *peerLinks) sent(ms []*raftpb.Message, now time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, m := range ms {
		if !expectsAnswer(m.GetType()) {
			continue
		}
		p := l.linkLocked(m.GetTo())
		if p.asked.IsZero() {
			p.asked = now
		}
		p.lastAsk = now
	}
}

// heard notes a message from id.
func (l *peerLinks) heard(id uint64) {
	l.mu.Lock()
	if p := l.mu.peers[id]; p != nil {
		p.asked, p.backoff = time.Time{}, 0
	}
	l.mu.Unlock()
}

// connKey is the request context key of the connection a peer request
// came on (set by the peer server's ConnContext).
type connKey struct{}

func withConn(ctx context.Context, c net.Conn) context.Context {
	return context.WithValue(ctx, connKey{}, c)
}

// tcpConn is the TCP connection under c, a TLS one's included.
func tcpConn(c net.Conn) (*net.TCPConn, bool) {
	if tc, ok := c.(interface{ NetConn() net.Conn }); ok {
		c = tc.NetConn()
	}
	tc, ok := c.(*net.TCPConn)
	return tc, ok
}

// handler wraps the transport's handler to keep track of the streams
// peers open to this member: a peer that opens a stream of a type it
// already has open here, established as far as this member can tell,
// dropped the old one without its FIN or reset getting through, and this
// member's readers from it are then likely stuck too (see above).
func (l *peerLinks) handler(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, _ := r.Context().Value(connKey{}).(net.Conn)
		if c == nil || !strings.HasPrefix(r.URL.Path, rafthttp.RaftStreamPrefix+"/") {
			h.ServeHTTP(w, r)
			return
		}
		from, err := types.IDFromString(path.Base(r.URL.Path))
		if err != nil {
			h.ServeHTTP(w, r)
			return
		}
		typ := path.Base(path.Dir(r.URL.Path))
		id := uint64(from)
		l.mu.Lock()
		p := l.linkLocked(id)
		var old []net.Conn
		for oc := range p.streams[typ] {
			old = append(old, oc)
		}
		if p.streams[typ] == nil {
			p.streams[typ] = make(map[net.Conn]struct{})
		}
		p.streams[typ][c] = struct{}{}
		l.mu.Unlock()
		defer func() {
			l.mu.Lock()
			delete(p.streams[typ], c)
			l.mu.Unlock()
		}()
		// rafthttp keeps a stream's handler until its writer fails, so an
		// old stream the peer closed may still be listed: only one that
		// is still established here was dropped without a word.
		if slices.ContainsFunc(old, stillEstablished) {
			select {
			case l.kick <- id:
			default: // a replacement is on its way already
			}
		}
		h.ServeHTTP(w, r)
	})
}

// run replaces the connections of silent peers, and of peers that
// reopened their streams, until stopc closes.
func (l *peerLinks) run(stopc <-chan struct{}) {
	t := time.NewTicker(l.tick)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			for _, id := range l.silent(time.Now()) {
				l.replaceSilent(id)
			}
		case id := <-l.kick:
			l.replace(id, "reopened its streams")
		case <-stopc:
			return
		}
	}
}

// replaceSilent replaces a silent peer's connections and doubles its
// backoff. The peer may be removed while it is replaced (removePeer waits
// for the transport, which can take long for a dead peer): then there is
// no backoff left to keep.
func (l *peerLinks) replaceSilent(id uint64) {
	l.replace(id, "silent")
	l.mu.Lock()
	defer l.mu.Unlock()
	if p := l.mu.peers[id]; p != nil {
		p.backoff = min(max(2*p.backoff, l.silence), 32*l.silence)
	}
}

// silent returns the peers still asked and waited for longer than
// l.silence, and not replaced within their backoff. A member that stopped
// asking (a leader that stepped down) waits for nothing.
func (l *peerLinks) silent(now time.Time) []uint64 {
	var ids []uint64
	l.mu.Lock()
	defer l.mu.Unlock()
	for id, p := range l.mu.peers {
		if !p.asked.IsZero() && now.Sub(p.asked) >= l.silence && now.Sub(p.lastAsk) < l.silence/2 &&
			now.Sub(p.replaced) >= max(l.silence, p.backoff) {
			ids = append(ids, id)
		}
	}
	return ids
}

// replace closes the streams id opened to this member and removes it
// from the transport and adds it again, unless it was replaced within
// l.silence or is no longer a peer.
func (l *peerLinks) replace(id uint64, why string) {
	now := time.Now()
	l.mu.Lock()
	p := l.linkLocked(id)
	if now.Sub(p.replaced) < l.silence || p.url == "" {
		l.mu.Unlock()
		return
	}
	p.replaced, p.asked = now, time.Time{}
	var conns []net.Conn
	for _, cs := range p.streams {
		for c := range cs {
			conns = append(conns, c)
		}
	}
	url := p.url
	l.mu.Unlock()

	l.lg.Warn("replacing the connections of a peer", zap.Uint64("peer-id", id), zap.String("reason", why))
	// A writer may be blocked on a full stream; closing it lets the
	// transport stop the peer at once. A reset, not a FIN queued behind
	// data the network is not carrying.
	for _, c := range conns {
		if tc, ok := tcpConn(c); ok {
			tc.SetLinger(0)
		}
		c.Close()
	}
	l.peersMu.Lock()
	defer l.peersMu.Unlock()
	if l.stopped || l.rh.Get(types.ID(id)) == nil {
		return // stopped or removed meanwhile
	}
	l.rh.RemovePeer(types.ID(id))
	l.rh.AddPeer(types.ID(id), []string{url})
}

// heardRaft is the Raft the default transport hands incoming messages to:
// the node's, noting whom it heard from.
type heardRaft struct {
	rafthttp.Raft
	links *peerLinks
}

func (r heardRaft) Process(ctx context.Context, m *raftpb.Message) error {
	r.links.heard(m.GetFrom())
	return r.Raft.Process(ctx, m)
}
