package raftnode

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/raftkv/raftkv/peerurl"
	"go.etcd.io/etcd/client/pkg/v3/transport"
	"go.etcd.io/etcd/client/pkg/v3/types"
	"go.etcd.io/etcd/server/v3/etcdserver/api/rafthttp"
	"go.etcd.io/etcd/server/v3/etcdserver/api/snap"
	stats "go.etcd.io/etcd/server/v3/etcdserver/api/v2stats"
	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
	"go.uber.org/zap"
	"google.golang.org/protobuf/proto"
)

// Transport carries raft messages between this member and the others. The
// default, used when Config.NewTransport is nil, is etcd's rafthttp with a
// peer HTTP server on Config.PeerListenAddr; tests connect members in one
// process through another.
type Transport interface {
	// Send sends each message to the member in its To field if that member
	// was added, and drops it otherwise. It must not block on the network;
	// it may drop messages (raft sends again). The Ready loop and the
	// read loop (a leader's answers to other members' reads) may call it
	// at once.
	Send(ms []*raftpb.Message)
	// SendSnapshot sends a MsgSnap with the snapshot's data file streamed
	// behind it. The receiving side saves the data with its Snapshotter's
	// SaveDBFrom before it hands the message to its Raft. The transport
	// reports the outcome with Raft.ReportSnapshot and closes m with
	// CloseWithError, as rafthttp does.
	SendSnapshot(m *snap.Message)
	// AddPeer lets messages go to member id at peerURL; RemovePeer stops
	// them. raftnode calls each once per member.
	AddPeer(id uint64, peerURL string)
	RemovePeer(id uint64)
	// ErrorC delivers errors that stop the node: one that wraps ErrRemoved
	// when the other members refuse this one as removed, or any error
	// after which the transport cannot work.
	ErrorC() <-chan error
	// Stop stops the transport and waits for its goroutines. The node
	// calls it once, after raft stopped.
	Stop()
}

// TransportParams is what Config.NewTransport gets from the node.
type TransportParams struct {
	// ID is this member's raft id.
	ID uint64
	// Raft takes the messages that arrive for this member and the
	// transport's reports about its sends (it is the Node).
	Raft rafthttp.Raft
	// Snapshotter saves the data file of an incoming snapshot (SaveDBFrom)
	// in the node's snapshot dir, before its message goes to Raft.
	Snapshotter *snap.Snapshotter
	// Logger is the node's logger.
	Logger *zap.Logger
	// TLSInfo is Config.PeerTLS, or empty (TLSInfo.Empty) for plain http:
	// rafthttp takes it as is, and the peer server serves TLS with it.
	TLSInfo transport.TLSInfo
}

// startTransport builds the transport and adds the known peers to it.
func (n *Node) startTransport() error {
	p := TransportParams{ID: n.cfg.ID, Raft: n, Snapshotter: n.disk.snapshotter, Logger: n.lg}
	if n.cfg.PeerTLS != nil {
		p.TLSInfo = *n.cfg.PeerTLS
		p.TLSInfo.Logger = n.lg.Named("peer-tls")
	}
	var serve func()
	if n.cfg.NewTransport != nil {
		t, err := n.cfg.NewTransport(p)
		if err != nil {
			return err
		}
		n.transport = t
	} else {
		t, err := n.newHTTPTransport(p)
		if err != nil {
			return err
		}
		n.transport, serve = t, t.serve
	}
	// Peers come from the command line first (so a member reaches each
	// peer the way its own --cluster says, even through a proxy), then
	// from the snapshot's membership; conf changes applied later add and
	// remove the rest.
	n.mu.RLock()
	for i, u := range n.cfg.Peers {
		n.addPeerLocked(uint64(i+1), u)
	}
	for _, m := range n.mu.members.sorted() {
		if m.ID != n.cfg.ID && m.ID <= uint64(len(n.cfg.Peers)) && m.PeerURL != n.cfg.Peers[m.ID-1] {
			// As after a member update the command line was not edited
			// for: say which URL is used.
			n.lg.Warn("--cluster names a member at another peer URL than the member list does; sending to the command line's",
				zap.Uint64("peer-id", m.ID), zap.String("cluster-flag-url", n.cfg.Peers[m.ID-1]), zap.String("member-list-url", m.PeerURL))
		}
		n.addPeerLocked(m.ID, m.PeerURL)
	}
	n.mu.RUnlock()
	if serve != nil {
		// Only now: rafthttp refuses a stream from a peer it does not
		// know yet.
		serve()
	}
	return nil
}

// addPeerLocked adds id to the transport unless it is this member, was
// removed, is already there, or has an unusable URL (rafthttp panics on
// those). n.mu must be held; n.peers belongs to the Ready loop (and to
// Start, before that loop runs).
func (n *Node) addPeerLocked(id uint64, peerURL string) {
	if id == n.cfg.ID || n.mu.members.Removed[id] || n.peers[id] {
		return
	}
	if err := peerurl.Validate(peerURL); err != nil {
		n.lg.Warn("ignoring member with unusable peer URL", zap.Uint64("peer-id", id), zap.Error(err))
		return
	}
	n.transport.AddPeer(id, peerURL)
	n.peers[id] = true
}

// removePeer takes id off the transport, if it was added.
func (n *Node) removePeer(id uint64) {
	if n.peers[id] {
		n.transport.RemovePeer(id)
		delete(n.peers, id)
	}
}

// send hands messages to the transport. A snapshot message carries the
// small raft snapshot; the state follows it as a body streamed from the
// data file, which the receiver saves as its own data file.
func (n *Node) send(ms []*raftpb.Message) {
	ms = n.processMessages(ms)
	regular := ms[:0]
	for _, m := range ms {
		if m.GetType() != raftpb.MsgSnap {
			regular = append(regular, m)
			continue
		}
		index := m.GetSnapshot().GetMetadata().GetIndex()
		f, err := os.Open(n.dataFile(index))
		var fi os.FileInfo
		if err == nil {
			fi, err = f.Stat()
		}
		if err != nil {
			n.lg.Error("cannot send snapshot", zap.Uint64("to", m.GetTo()), zap.Uint64("snapshot-index", index), zap.Error(err))
			if f != nil {
				f.Close()
			}
			n.node.ReportSnapshot(m.GetTo(), raft.SnapshotFailure)
			continue
		}
		n.lg.Info("sending snapshot", zap.Uint64("to", m.GetTo()),
			zap.Uint64("snapshot-index", index), zap.Int64("bytes", fi.Size()))
		n.transport.SendSnapshot(snap.NewMessage(m, f, fi.Size()))
	}
	n.transport.Send(regular)
}

// processMessages prepares outgoing messages. A snapshot message carries
// the snapshot's stored ConfState, which predates members added since;
// the receiver would reject a snapshot that does not list it, so the
// current ConfState is patched in.
func (n *Node) processMessages(ms []*raftpb.Message) []*raftpb.Message {
	for _, m := range ms {
		if m.GetType() == raftpb.MsgReadIndexResp {
			// A lone voter answers a learner's ReadIndex at once with its
			// commit index, which after a restart may be below writes it
			// applied and acknowledged (see setReadFloor): the learner
			// waits for the floor too, as this member's own reads do.
			// Elsewhere raft answers only once an entry of this term
			// committed, at or past the floor, so this changes nothing.
			if floor := n.readFloor.Load(); m.GetIndex() < floor {
				m.Index = proto.Uint64(floor)
			}
		}
		if m.GetType() == raftpb.MsgSnap && m.Snapshot != nil {
			s := m.Snapshot
			m.Snapshot = &raftpb.Snapshot{
				Data: s.GetData(),
				Metadata: &raftpb.SnapshotMetadata{
					Index:     proto.Uint64(s.GetMetadata().GetIndex()),
					Term:      proto.Uint64(s.GetMetadata().GetTerm()),
					ConfState: n.confState,
				},
			}
		}
	}
	return ms
}

// Process implements rafthttp.Raft. A message that arrives once raft has
// stopped (the peer port serves on for a moment while the member stops)
// is answered 503 (errPeerStopped).
func (n *Node) Process(ctx context.Context, m *raftpb.Message) error {
	var err error
	switch {
	case m.GetType() == raftpb.MsgProp && n.leader.Load() == n.cfg.ID:
		err = n.stepForwarded(ctx, m)
	case m.GetType() == raftpb.MsgReadIndex && n.reads.joinRemote(m):
	default:
		err = n.node.Step(ctx, m)
	}
	if errors.Is(err, raft.ErrStopped) {
		return errPeerStopped{}
	}
	return err
}

// errPeerStopped is raft.ErrStopped for rafthttp's handlers. Its pipeline
// handler panics with any error that cannot write its own answer, to drop
// the connection, and net/http logs the panic with its stack; this one
// answers 503, which the sending member takes as a failed send, as it
// would a dropped connection.
type errPeerStopped struct{}

func (errPeerStopped) Error() string { return "raftnode: raft stopped; this member is stopping" }
func (errPeerStopped) Unwrap() error { return raft.ErrStopped }

// WriteTo answers the message's request: rafthttp calls it instead of
// panicking.
func (e errPeerStopped) WriteTo(w http.ResponseWriter) {
	http.Error(w, e.Error(), http.StatusServiceUnavailable)
}

// IsIDRemoved implements rafthttp.Raft.
func (n *Node) IsIDRemoved(id uint64) bool {
	n.mu.RLock()
	defer n.mu.RUnlock()
	return n.mu.members.Removed[id]
}

// ReportUnreachable implements rafthttp.Raft.
func (n *Node) ReportUnreachable(id uint64) { n.node.ReportUnreachable(id) }

// ReportSnapshot implements rafthttp.Raft.
func (n *Node) ReportSnapshot(id uint64, status raft.SnapshotStatus) {
	n.node.ReportSnapshot(id, status)
}

// httpTransport is the default Transport: etcd's rafthttp, and the peer
// HTTP server that hands it the other members' requests.
type httpTransport struct {
	rh     *rafthttp.Transport
	links  *peerLinks // replaces the connections of silent peers
	ln     net.Listener
	server *http.Server
	errc   chan error
	stopc  chan struct{}
	wg     sync.WaitGroup
}

// newHTTPTransport listens on Config.PeerListenAddr and starts rafthttp;
// serve starts the peer server.
func (n *Node) newHTTPTransport(p TransportParams) (*httpTransport, error) {
	ln, own := n.cfg.PeerListener, false
	if ln == nil {
		var err error
		if ln, err = net.Listen("tcp", n.cfg.PeerListenAddr); err != nil {
			return nil, fmt.Errorf("raftnode: listen for peers on %s: %w", n.cfg.PeerListenAddr, err)
		}
		own = true
	}
	if !p.TLSInfo.Empty() {
		cfg, err := ServerTLSConfig(p.TLSInfo)
		if err != nil {
			if own {
				ln.Close()
			}
			return nil, fmt.Errorf("raftnode: peer TLS: %w", err)
		}
		ln = tls.NewListener(ln, cfg)
	}
	id := strconv.FormatUint(p.ID, 10)
	rh := &rafthttp.Transport{
		Logger:      p.Logger.Named("rafthttp"),
		TLSInfo:     p.TLSInfo,
		DialTimeout: n.peerDialTimeout(),
		ID:          types.ID(p.ID),
		ClusterID:   types.ID(n.disk.clusterID),
		Snapshotter: p.Snapshotter,
		ServerStats: stats.NewServerStats("", id),
		LeaderStats: stats.NewLeaderStats(p.Logger, id),
		ErrorC:      make(chan error, 1),
	}
	t := &httpTransport{
		rh:    rh,
		links: newPeerLinks(p.Logger, n.cfg.TickInterval, n.electionTimeout(), rh),
		ln:    ln,
		errc:  make(chan error, 2),
		stopc: make(chan struct{}),
	}
	rh.Raft = heardRaft{Raft: p.Raft, links: t.links}
	if err := t.rh.Start(); err != nil {
		if own {
			ln.Close() // a PeerListener is the caller's to close until Start succeeded
		}
		return nil, fmt.Errorf("raftnode: start transport: %w", err)
	}
	t.server = &http.Server{
		Handler:           clusterIDHandler(n.disk.clusterID, n.isMember, t.links.handler(t.rh.Handler())),
		ConnContext:       withConn,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          zap.NewStdLog(p.Logger.Named("peer-http")),
	}
	t.wg.Add(1)
	go func() {
		// rafthttp reports on its ErrorC only that a peer answered
		// "removed".
		defer t.wg.Done()
		select {
		case err := <-t.rh.ErrorC:
			t.errc <- fmt.Errorf("%w (%v)", ErrRemoved, err)
		case <-t.stopc:
		}
	}()
	return t, nil
}

// CheckServerTLS checks one etcd-style set of server TLS flags, named
// with prefix ("" for --cert-file and the rest, "peer-" for
// --peer-cert-file and the rest): the certificate and its key go
// together, a trusted CA and client certificate checks need them, and
// checking client certificates needs the CA that verifies them.
func CheckServerTLS(prefix string, info transport.TLSInfo) error {
	flag := func(name string) string { return "--" + prefix + name }
	switch {
	case (info.CertFile == "") != (info.KeyFile == ""):
		return fmt.Errorf("%s and %s go together", flag("cert-file"), flag("key-file"))
	case info.CertFile == "" && (info.TrustedCAFile != "" || info.ClientCertAuth):
		return fmt.Errorf("%s and %s need %s and %s", flag("trusted-ca-file"), flag("client-cert-auth"), flag("cert-file"), flag("key-file"))
	case info.ClientCertAuth && info.TrustedCAFile == "":
		return fmt.Errorf("%s needs %s, the CA that verifies the certificates it asks for", flag("client-cert-auth"), flag("trusted-ca-file"))
	}
	return nil
}

// CheckCAFile checks that the file path holds trusted CA certificates in
// PEM, and only those, and says what is wrong with it, naming it. etcd's
// TLSInfo takes a file without a certificate (empty, or text) as an empty
// pool, which refuses every client certificate at its handshake without
// a word at start, and a key file with a bare x509 error.
func CheckCAFile(path string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("CA file: %w", err)
	}
	n := 0
	for {
		var block *pem.Block
		if block, b = pem.Decode(b); block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			return fmt.Errorf("CA file %s holds a %s, not only certificates", path, block.Type)
		}
		if _, err := x509.ParseCertificate(block.Bytes); err != nil {
			return fmt.Errorf("CA file %s: certificate %d: %w", path, n+1, err)
		}
		n++
	}
	if n == 0 {
		return fmt.Errorf("CA file %s holds no PEM certificate", path)
	}
	return nil
}

// ServerTLSConfig is the TLS configuration of a server with info's
// certificate, as etcd's TLSInfo.ServerConfig builds it (the certificate
// re-read from its files at each handshake), but with raftkv's meaning of
// the flags: a client certificate is required only with ClientCertAuth;
// without it one is verified if given (against TrustedCAFile), so that a
// client can still show one. HTTP/1.1 only: both of raftkv's servers read
// requests as HTTP/1.1.
func ServerTLSConfig(info transport.TLSInfo) (*tls.Config, error) {
	if info.TrustedCAFile != "" {
		if err := CheckCAFile(info.TrustedCAFile); err != nil {
			return nil, err
		}
	}
	cfg, err := info.ServerConfig()
	if err != nil {
		return nil, err
	}
	switch {
	case info.ClientCertAuth:
		cfg.ClientAuth = tls.RequireAndVerifyClientCert
	case cfg.ClientCAs != nil:
		cfg.ClientAuth = tls.VerifyClientCertIfGiven
	default:
		cfg.ClientAuth = tls.NoClientCert
	}
	cfg.NextProtos = []string{"http/1.1"}
	return cfg, nil
}

func (t *httpTransport) serve() {
	t.wg.Add(2)
	go func() {
		defer t.wg.Done()
		t.links.run(t.stopc)
	}()
	go func() {
		defer t.wg.Done()
		if err := t.server.Serve(t.ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			t.errc <- fmt.Errorf("raftnode: peer server: %w", err)
		}
	}()
}

func (t *httpTransport) Send(ms []*raftpb.Message) {
	t.links.sent(ms, time.Now())
	t.rh.Send(ms)
}
func (t *httpTransport) SendSnapshot(m *snap.Message)      { t.rh.SendSnapshot(m) }
func (t *httpTransport) AddPeer(id uint64, peerURL string) { t.links.addPeer(id, peerURL) }
func (t *httpTransport) RemovePeer(id uint64)              { t.links.removePeer(id) }
func (t *httpTransport) ErrorC() <-chan error              { return t.errc }

// ActiveSince is since when rafthttp's connection to peer id is up; zero
// while it is down (see peerConnected).
func (t *httpTransport) ActiveSince(id uint64) time.Time { return t.rh.ActiveSince(types.ID(id)) }

// Stop stops rafthttp (through the links, so that no replacement of a
// peer's connections is half done), then the peer server.
func (t *httpTransport) Stop() {
	close(t.stopc)
	t.links.stop()
	t.server.Close()
	t.ln.Close() // in case it was never served
	t.wg.Wait()
}
