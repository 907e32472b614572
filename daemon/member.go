package daemon

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/raftkv/raftkv/httpapi"
	"github.com/raftkv/raftkv/internal/buildinfo"
	"github.com/raftkv/raftkv/kvstore"
	"github.com/raftkv/raftkv/peerurl"
	"github.com/raftkv/raftkv/raftnode"
	"github.com/raftkv/raftkv/shardgroup"
	"go.etcd.io/etcd/client/pkg/v3/fileutil"
	"go.etcd.io/etcd/client/pkg/v3/transport"
	"go.uber.org/zap"
)

// ErrRemoved is what Err wraps when the member stopped because it applied
// its own removal from the cluster.
var ErrRemoved = raftnode.ErrRemoved

// Member is one running raftkv member: its raft node, its store and its
// client HTTP server. Start returns a running one; it runs until Stop, its
// removal from the cluster, or a fatal error.
type Member struct {
	cfg       Config
	lg        *zap.Logger
	node      *raftnode.Node
	kv        *kvstore.Store
	srv       *httpapi.Server
	clientLn  net.Listener
	peerLn    net.Listener // the raft node's peer server serves and closes it
	clientURL string
	// httpc calls other members' client ports (with TLS when they serve it).
	httpc *http.Client
	// driver is a shard member's migration driver; nil for other modes.
	driver *shardgroup.Driver

	serveErr chan error    // the client server's end; buffered
	stopOnce sync.Once     // closes stopc
	stopc    chan struct{} // closed by Stop
	donec    chan struct{} // closed once the member has stopped
	// levelDone is closed once monitorLevel returned, hashDone once
	// monitorHashes did.
	levelDone chan struct{}
	hashDone  chan struct{}
	err       error // why it stopped; written before donec closes
}

// Start validates cfg, listens on the client and peer ports, asks
// cfg.JoinAddr to add this member if it has no state yet, replays the data
// dir, starts raft and serves clients. ctx bounds the start-up only (the
// join request); once Start returns, Stop ends the member. On error nothing
// is left running, and the error is one line that names the port, data dir
// or URL at fault.
func Start(ctx context.Context, cfg Config) (*Member, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	lg := cfg.Logger
	// Certificates are read before anything listens, so a bad file leaves
	// nothing behind.
	tlsc, err := cfg.setupTLS()
	if err != nil {
		return nil, err
	}
	// Both ports are claimed before the data dir is touched: a member that
	// failed on a busy port after creating its WAL would take that empty
	// WAL for a restart next time and never bootstrap.
	clientLn, err := listen("clients", cfg.ClientListenAddr)
	if err != nil {
		return nil, err
	}
	if tlsc.server != nil {
		clientLn = tls.NewListener(clientLn, tlsc.server)
	}
	peerLn, err := listen("peers", cfg.PeerListenAddr)
	if err != nil {
		clientLn.Close()
		return nil, err
	}
	// Until the raft node has started, the listeners are this function's
	// to close on failure.
	closeListeners := func() {
		clientLn.Close()
		peerLn.Close()
	}
	m := &Member{
		cfg:       cfg,
		lg:        lg,
		clientLn:  clientLn,
		peerLn:    peerLn,
		clientURL: cfg.clientURL(clientLn.Addr()),
		httpc:     tlsc.client,
		serveErr:  make(chan error, 1),
		stopc:     make(chan struct{}),
		donec:     make(chan struct{}),
		levelDone: make(chan struct{}),
		hashDone:  make(chan struct{}),
	}
	// The data dir must have been made for this mode; a new shard member
	// asks the config group for its bucket count.
	buckets, err := resolveMode(ctx, lg, cfg, m.httpc)
	if err != nil {
		closeListeners()
		return nil, err
	}
	var clusterID uint64 // raftnode's default for a new cluster
	if cfg.JoinAddr != "" && !raftnode.HasState(cfg.DataDir) {
		// The member that adds this one names the cluster's id.
		jctx, cancel := context.WithTimeout(ctx, cfg.JoinTimeout)
		clusterID, err = joinVia(jctx, lg, m.httpc, cfg.JoinAddr, cfg.ID, cfg.Peers[cfg.ID-1], m.clientURL)
		cancel()
		if err != nil {
			closeListeners()
			return nil, fmt.Errorf("cannot join the cluster: %w", err)
		}
		if clusterID != 0 {
			lg.Info("the member that added this one named the cluster id", zap.String("cluster-id", strconv.FormatUint(clusterID, 16)))
		}
	}
	if cfg.Join && clusterID == 0 && !raftnode.HasState(cfg.DataDir) {
		// A cluster restored from a backup has an id of its own, which a
		// new member must tag its peer traffic with; the members tell it
		// only to a member they added.
		dctx, cancel := context.WithTimeout(ctx, cfg.JoinTimeout)
		var peerTLS transport.TLSInfo
		if cfg.PeerTLS != nil {
			peerTLS = *cfg.PeerTLS
		}
		clusterID, err = raftnode.DiscoverClusterID(dctx, cfg.Peers, int(cfg.ID-1), peerTLS)
		cancel()
		if err != nil {
			closeListeners()
			return nil, fmt.Errorf("cannot join the cluster: %w", err)
		}
		lg.Info("learned the cluster id from the other members", zap.String("cluster-id", strconv.FormatUint(clusterID, 16)))
	}
	registry := prometheus.NewRegistry()
	m.node, err = raftnode.New(raftnode.Config{
		ID:                     cfg.ID,
		Peers:                  cfg.Peers,
		Join:                   cfg.Join,
		ClusterID:              clusterID,
		DataDir:                cfg.DataDir,
		PeerListenAddr:         cfg.PeerListenAddr,
		PeerListener:           peerLn,
		PeerTLS:                cfg.PeerTLS,
		ClientURL:              m.clientURL,
		Level:                  buildinfo.Level(),
		SnapshotCount:          cfg.SnapshotCount,
		SnapshotCatchUpEntries: cfg.SnapshotCatchUpEntries,
		SnapshotBytes:          cfg.SnapshotBytes,
		SnapshotWriteRate:      cfg.SnapshotWriteRate,
		BatchGatherWait:        cfg.BatchGatherWait,
		CommitNoticeDelay:      cfg.CommitNoticeDelay,
		TickInterval:           cfg.TickInterval,
		ElectionTicks:          cfg.ElectionTicks,
		Logger:                 lg,
		Registerer:             registry,
	})
	if err != nil {
		closeListeners()
		if errors.Is(err, fileutil.ErrLocked) {
			return nil, fmt.Errorf("data dir %s is in use by another process (%w)", cfg.DataDir, fileutil.ErrLocked)
		}
		if om := (*raftnode.OtherMemberError)(nil); errors.As(err, &om) {
			return nil, fmt.Errorf("data dir %s holds member %d's state, not member %d's: start it with --id %d, or member %d from its own data dir",
				cfg.DataDir, om.Owner, om.ID, om.Owner, om.ID)
		}
		return nil, fmt.Errorf("data dir %s: %w", cfg.DataDir, err)
	}
	m.kv, err = kvstore.New(storeConfig(cfg, buckets, lg.Named("kvstore"), registry), m.node)
	if err == nil {
		err = m.node.Start(m.kv.Snapshot)
	}
	if err != nil {
		closeListeners()
		if m.kv != nil {
			m.kv.Stop()
		}
		m.node.Stop()
		if m.kv != nil {
			<-m.kv.Done()
		}
		return nil, fmt.Errorf("cannot start raft node: %w", err)
	}
	api, err := m.apiFor()
	if err != nil {
		clientLn.Close()
		m.kv.Stop()
		m.node.Stop()
		<-m.kv.Done()
		return nil, fmt.Errorf("cannot build http handler: %w", err)
	}
	var admin httpapi.AdminFunc
	if tlsc.admin != nil {
		tlsc.admin.members = m.node.Members
		tlsc.admin.servers = api.servers
		admin = tlsc.admin.admit
	}
	handler, err := httpapi.New(httpapi.Config{
		Store:  api.store,
		Routes: api.routes,
		Cluster: cluster{node: m.node, store: m.kv, extra: api.status,
			http: m.httpc, peerScheme: peerurl.Scheme(cfg.Peers[cfg.ID-1])},
		Logger:         lg.Named("http"),
		RequestTimeout: cfg.RequestTimeout,
		Dashboard:      dashboard(m.clientURL, m.tlsClient()),
		Admin:          admin,
		// etcd's wal, snap and rafthttp packages and the Go runtime
		// collectors use the default registry; raftkv's own metrics are
		// per member.
		Metrics:  promhttp.HandlerFor(prometheus.Gatherers{prometheus.DefaultGatherer, registry}, promhttp.HandlerOpts{}),
		Pprof:    cfg.Pprof,
		Snapshot: m.snapshotterFor(buckets),
		Group:    cfg.Group, // 0 unless a shard member
	})
	if err != nil {
		clientLn.Close()
		m.kv.Stop()
		m.node.Stop()
		<-m.kv.Done()
		return nil, fmt.Errorf("cannot build http handler: %w", err)
	}
	// A restored config group member checks that no group took configs
	// its backup lacks before it serves: a config change it served first
	// would fork the history.
	if err := m.checkConfigRestored(ctx); err != nil {
		clientLn.Close()
		m.kv.Stop()
		m.node.Stop()
		<-m.kv.Done()
		return nil, err
	}
	m.srv = httpapi.NewServer(clientLn.Addr().String(), handler, cfg.RequestTimeout)
	m.srv.ErrorLog = zap.NewStdLog(lg.Named("client-http"))
	go func() { m.serveErr <- m.srv.Serve(clientLn) }()
	// A restored shard member checks its state against the deployment's
	// while its client port answers GET /status and GET /shard/state
	// (other restored groups ask it) and refuses keys; the driver starts
	// once it passes.
	if err := m.checkRestored(ctx); err != nil {
		m.srv.Close()
		m.kv.Stop()
		m.node.Stop()
		<-m.kv.Done()
		return nil, err
	}
	if api.gate != nil {
		api.gate.open.Store(true)
	}
	if m.driver, err = m.startDriver(); err != nil {
		// Validate checked everything the driver's Config needs, so this
		// is a broken invariant; stop what runs, as run would.
		m.srv.Close()
		m.kv.Stop()
		m.node.Stop()
		<-m.kv.Done()
		return nil, fmt.Errorf("cannot start the shard group's driver: %w", err)
	}
	go m.monitorLevel()
	go m.monitorHashes(newHashCheckCounter(registry))
	go m.run()
	lg.Info("serving clients", zap.String("address", clientLn.Addr().String()), zap.String("data-dir", cfg.DataDir))
	m.logMode(buckets)
	return m, nil
}

// run waits for a reason to stop, then tears the member down in order:
// a shard member's driver first, so that it starts no step on a member
// going away; the client server, so no request is left waiting on what
// follows; on Stop, leadership handed to another voter
// (handOffLeadership); then the store's proposer; then the raft node (its
// loop, transport and WAL); last, once the raft node closed its commits,
// the store's apply loop.
func (m *Member) run() {
	var serveErr error
	graceful := false
	select {
	case <-m.stopc:
		graceful = true
	case <-m.node.Done():
	case serveErr = <-m.serveErr:
		m.lg.Error("client server failed", zap.Error(serveErr))
	}
	if m.driver != nil {
		m.driver.Stop()
	}
	ctx, cancel := context.WithTimeout(context.Background(), m.cfg.RequestTimeout+time.Second)
	if err := m.srv.Shutdown(ctx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		// Requests still in flight (a client sending its body slowly):
		// their connections are closed, not left to the process's exit.
		m.lg.Warn("client server shutdown; closing the connections left", zap.Error(err))
		m.srv.Close()
	}
	cancel()
	if graceful {
		m.handOffLeadership()
	}
	m.kv.Stop()
	m.node.Stop()
	<-m.kv.Done()
	<-m.levelDone
	<-m.hashDone
	if m.httpc != forwardClient {
		m.httpc.CloseIdleConnections() // the member's own TLS transport
	}
	m.err = m.node.Err()
	if m.err == nil && serveErr != nil {
		m.err = fmt.Errorf("client server on %s: %w", m.clientLn.Addr(), serveErr)
	}
	close(m.donec)
}

// Stop shuts the member down in the order run describes and waits until it
// has. It is idempotent and safe to call after the member stopped by itself.
func (m *Member) Stop() {
	m.stopOnce.Do(func() { close(m.stopc) })
	<-m.donec
}

// Done is closed once the member has stopped, by Stop or by itself.
func (m *Member) Done() <-chan struct{} { return m.donec }

// Err waits until the member has stopped and tells why: nil after Stop, an
// error wrapping ErrRemoved after it applied its own removal, otherwise the
// fatal error of its raft node or client server.
func (m *Member) Err() error {
	<-m.donec
	return m.err
}

// ID is the member's raft id.
func (m *Member) ID() uint64 { return m.cfg.ID }

// ClientAddr is the address the client HTTP server listens on, with the
// port picked when Config.ClientListenAddr asked for port 0.
func (m *Member) ClientAddr() net.Addr { return m.clientLn.Addr() }

// ClientURL is the client URL this member publishes to the others.
func (m *Member) ClientURL() string { return m.clientURL }

// PeerAddr is the address the peer (rafthttp) server listens on.
func (m *Member) PeerAddr() net.Addr { return m.peerLn.Addr() }

// listen listens on addr for what ("clients" or "peers") and names both in
// its error.
func listen(what, addr string) (net.Listener, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		// net's error repeats "listen tcp <addr>"; its cause is enough.
		var se *os.SyscallError
		if errors.As(err, &se) {
			err = se.Err
		}
		return nil, fmt.Errorf("cannot listen for %s on %s: %w", what, addr, err)
	}
	return ln, nil
}

// clientURL is the client URL published for a client server listening on
// addr: AdvertiseClientURL, or http://<host>:<port> with the host of
// ClientListenAddr, or of this member's peer URL when that is empty.
func (c Config) clientURL(addr net.Addr) string {
	if c.AdvertiseClientURL != "" {
		return strings.TrimSuffix(c.AdvertiseClientURL, "/")
	}
	host, _, _ := net.SplitHostPort(c.ClientListenAddr)
	if host == "" {
		if u, err := urlHost(c.Peers[c.ID-1]); err == nil {
			host = u
		}
	}
	port := 0
	if a, ok := addr.(*net.TCPAddr); ok {
		port = a.Port
	}
	scheme := "http://"
	if c.ClientTLS != nil {
		scheme = "https://"
	}
	return scheme + net.JoinHostPort(host, strconv.Itoa(port))
}

// tlsClient is the client to other members for the packages that have a
// default of their own (ui, shardgroup): nil, that default, unless the
// client port serves TLS.
func (m *Member) tlsClient() *http.Client {
	if m.cfg.ClientTLS == nil {
		return nil
	}
	return m.httpc
}
