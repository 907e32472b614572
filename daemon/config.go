package daemon

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"path/filepath"
	"strconv"
	"time"

	"github.com/raftkv/raftkv/httpapi"
	"github.com/raftkv/raftkv/internal/clienturl"
	"github.com/raftkv/raftkv/peerurl"
	"github.com/raftkv/raftkv/raftnode"
	"github.com/raftkv/raftkv/shardgroup"
	"github.com/raftkv/raftkv/shardmap"
	"go.etcd.io/etcd/client/pkg/v3/transport"
	"go.uber.org/zap"
)

// Defaults of the zero Config fields. The daemon's flags show them, so they
// are written here once.
const (
	// DefaultClientPort is the client HTTP port of an empty
	// ClientListenAddr, raftexample's --port default.
	DefaultClientPort = 9121
	// DefaultPeerURL is raftexample's --cluster default: one member.
	DefaultPeerURL = "http://127.0.0.1:9021"
	// DefaultJoinTimeout bounds the request JoinAddr sends, and a new
	// shard member's question of its bucket count to the config group,
	// retries included.
	DefaultJoinTimeout = 30 * time.Second
	// DefaultRequestTimeout is the deadline of each client request.
	DefaultRequestTimeout = httpapi.DefaultRequestTimeout

	// The raft node's defaults (see raftnode.Config).
	DefaultTickInterval           = raftnode.DefaultTickInterval
	DefaultElectionTicks          = raftnode.DefaultElectionTicks // the heartbeat is one tick
	DefaultBatchGatherWait        = raftnode.DefaultBatchGatherWait
	DefaultCommitNoticeDelay      = raftnode.DefaultCommitNoticeDelay
	DefaultSnapshotCount          = raftnode.DefaultSnapshotCount
	DefaultSnapshotCatchUpEntries = raftnode.DefaultSnapshotCatchUpEntries
	DefaultSnapshotBytes          = raftnode.DefaultSnapshotBytes
	DefaultSnapshotWriteRate      = raftnode.DefaultSnapshotWriteRate // bytes per second

	// DefaultQuotaBytes is the space quota: see Config.QuotaBytes.
	DefaultQuotaBytes = 2 << 30
)

// Config configures one member. The zero value of every field but ID, Peers
// and DataDir means its default; Validate checks a Config without touching
// the disk or the network, and Start calls it.
type Config struct {
	// ID is this member's raft id, 1-based: member N listens for peers on
	// Peers[N-1] (raftexample's --id). Zero is invalid.
	ID uint64
	// Peers are the peer URLs of the cluster in id order (raftexample's
	// --cluster); for a joining member, every member's, its own included.
	// Empty is invalid.
	Peers []string
	// Join makes a member whose DataDir holds no state join a running
	// cluster, which must have been told of it (POST /<id>), instead of
	// bootstrapping one from Peers. A member with state restarts from it
	// either way.
	Join bool
	// JoinAddr is the client address (host:port or URL) of a running member
	// to ask to add this one before it starts, as raftdb's -join; it implies
	// Join. It is asked only when DataDir holds no state yet. Empty means
	// ask nobody.
	JoinAddr string
	// JoinTimeout bounds the request to JoinAddr, and a new shard member's
	// question of its bucket count to the config group, retries included.
	// Zero means DefaultJoinTimeout.
	JoinTimeout time.Duration
	// DataDir holds the WAL (DataDir/wal) and snapshots (DataDir/snap). It
	// must be an absolute path; it is created if missing. Empty is invalid.
	DataDir string

	// ClientListenAddr is the host:port the client HTTP server listens on;
	// an empty host means every interface, and port 0 a free port, which
	// ClientAddr then tells. Empty means ":9121" (DefaultClientPort).
	ClientListenAddr string
	// PeerListenAddr is the host:port the peer (rafthttp) server listens
	// on. Empty means the host:port of Peers[ID-1].
	PeerListenAddr string
	// AdvertiseClientURL is the client URL this member publishes to the
	// others, which forward membership changes to the leader's. Empty means
	// http://<host>:<port> (https with ClientTLS) with the host of ClientListenAddr (the host of
	// Peers[ID-1] when that is empty) and the port listened on.
	AdvertiseClientURL string

	// SnapshotCount is the number of applied entries between snapshots.
	// Zero means DefaultSnapshotCount.
	SnapshotCount uint64
	// SnapshotCatchUpEntries is how many entries are kept behind a snapshot
	// for slow followers. Zero means DefaultSnapshotCatchUpEntries.
	SnapshotCatchUpEntries uint64
	// SnapshotBytes also starts a snapshot once the entries applied since
	// the last one hold this many bytes. Zero means DefaultSnapshotBytes.
	SnapshotBytes uint64
	// QuotaBytes is the space quota: a write that puts keys is refused
	// (503, code no_space) when the keys this member holds, counted as
	// their keys' and values' bytes and 56 bytes for each, would pass it.
	// Deletes always go through. Zero means DefaultQuotaBytes; negative
	// means none.
	QuotaBytes int64
	// SnapshotWriteRate bounds how fast a snapshot's data file is written,
	// in bytes per second. Zero means DefaultSnapshotWriteRate; negative
	// means no bound.
	SnapshotWriteRate int64
	// BatchGatherWait is the longest the leader waits, once its entry
	// committed, for the queued writes to fill most of the next. Zero means
	// DefaultBatchGatherWait; negative means it never waits.
	BatchGatherWait time.Duration
	// CommitNoticeDelay is the longest the leader holds a follower's
	// commit-only append when none of that follower's writes committed.
	// Zero means DefaultCommitNoticeDelay; negative means it sends them at
	// once.
	CommitNoticeDelay time.Duration
	// TickInterval is the duration of one raft tick. Zero means
	// DefaultTickInterval.
	TickInterval time.Duration
	// ElectionTicks is the election timeout in ticks (the heartbeat is one
	// tick). Zero means DefaultElectionTicks; otherwise at least 2.
	ElectionTicks int
	// HashCheckInterval, when positive, has the group's leader start a
	// hash check that often and compare every member's hash at its index:
	// a disagreement is logged as an error and counted in
	// raftkv_hash_checks_total{result="mismatch"}. Each check costs every
	// member a pass over its state. Zero means none.
	HashCheckInterval time.Duration
	// RequestTimeout is the deadline of each client request, and, plus a
	// second, how long Stop lets requests in flight finish. Zero means
	// DefaultRequestTimeout.
	RequestTimeout time.Duration

	// ConfigGroup makes the member one of the config group of a sharded
	// deployment: its replicated state is every shardmap.Config of Buckets
	// buckets, it serves GET /config and POST /config/join|leave|move, and
	// it serves no keys (key routes answer 400).
	ConfigGroup bool
	// Buckets is the config group's number of buckets, fixed when its data
	// dir is made. Zero means the count the data dir was made with, or
	// shardmap.DefaultBuckets for a new one. Only for ConfigGroup: a shard
	// member learns the count from the config group.
	Buckets int
	// Group, when non-zero, makes the member one of shard group Group: it
	// serves the keys of the buckets its applied config gives Group, runs
	// the group's migration driver (package shardgroup) and serves the
	// migration endpoints under /shard/. Zero means a plain member, which
	// serves every key.
	Group uint64
	// ConfigEndpoints are client URLs of config group members. Required
	// with Group, refused without.
	ConfigEndpoints []string
	// ConfigPollInterval is how often a shard group's leader asks the
	// config group for the next config when the last poll found none.
	// Zero means shardgroup.DefaultPollInterval.
	ConfigPollInterval time.Duration
	// UnsafeSkipRestoreCheck starts a member whose data dir Restore made
	// without its first start's check against the deployment
	// (ErrRestoreCheck), and clears the data dir's mark, so later starts
	// skip it too. It is for a deployment the check cannot vouch for but
	// the operator can: a group it refuses for is gone for good (not a
	// restore drill beside the live deployment, whose groups the restored
	// ones would still pull from and delete at). When the check would
	// have refused, two groups may serve a bucket (a shard group), or the
	// shard groups hold configs of another history (a config group).
	// False means the check runs.
	UnsafeSkipRestoreCheck bool
	// editDriver, when set, edits the shard group driver's config before
	// it starts: tests shorten its give-ups and checks.
	editDriver func(*shardgroup.Config)

	// ClientTLS, when set, serves the client port over TLS (https) with
	// etcd's TLSInfo: CertFile and KeyFile (required) are re-read at each
	// handshake; TrustedCAFile verifies client certificates; with
	// ClientCertAuth a client without such a certificate is refused at the
	// handshake, without it one may still show one (an admin does). The
	// published client URL is then https. Nil means plain http.
	ClientTLS *transport.TLSInfo
	// PeerTLS, when set, secures the peer links (raftnode.Config.PeerTLS):
	// every peer URL must then be https, and none may be without it. Nil
	// means http.
	PeerTLS *transport.TLSInfo
	// AdminCAFile and AdminCNs, when either is set, restrict admin requests
	// (membership changes, leader transfer, snapshot download, shard
	// config changes and bucket moves; httpapi's adminRequest) to clients
	// whose certificate the CA in AdminCAFile verifies, or whose verified
	// certificate's common name is one of AdminCNs; others get 403. Other
	// members passing such a request on, and other groups' members asking
	// to join or moving a bucket, are admitted by their peer certificate
	// (see adminRule). They need ClientTLS. Both empty means
	// no restriction.
	AdminCAFile string
	AdminCNs    []string

	// Pprof serves net/http/pprof under /debug/pprof/ on the client port.
	// It exposes the command line and lets any client run CPU profiles and
	// traces. False means /debug/pprof/ answers 404.
	Pprof bool
	// SnapshotDownload serves GET /snapshot on the client port: a backup
	// of the member's whole state, which `raftkv restore` turns into the
	// data dirs of a new cluster. Whoever reaches the client port can then
	// read every key at once and make the member stream its whole state,
	// so it is an admin operation, off unless asked for. False means
	// /snapshot answers 404.
	SnapshotDownload bool
	// Logger receives the member's logs. Nil means zap.NewNop().
	Logger *zap.Logger
}

// withDefaults returns c with every zero field set to its default.
func (c Config) withDefaults() Config {
	if c.JoinAddr != "" {
		c.Join = true
	}
	if c.JoinTimeout == 0 {
		c.JoinTimeout = DefaultJoinTimeout
	}
	if c.ClientListenAddr == "" {
		c.ClientListenAddr = ":" + strconv.Itoa(DefaultClientPort)
	}
	if c.PeerListenAddr == "" && c.ID >= 1 && c.ID <= uint64(len(c.Peers)) {
		if u, err := url.Parse(c.Peers[c.ID-1]); err == nil {
			c.PeerListenAddr = u.Host
		}
	}
	if c.SnapshotCount == 0 {
		c.SnapshotCount = DefaultSnapshotCount
	}
	if c.SnapshotCatchUpEntries == 0 {
		c.SnapshotCatchUpEntries = DefaultSnapshotCatchUpEntries
	}
	if c.SnapshotBytes == 0 {
		c.SnapshotBytes = DefaultSnapshotBytes
	}
	if c.SnapshotWriteRate == 0 {
		c.SnapshotWriteRate = DefaultSnapshotWriteRate
	}
	if c.QuotaBytes == 0 {
		c.QuotaBytes = DefaultQuotaBytes
	}
	if c.BatchGatherWait == 0 {
		c.BatchGatherWait = DefaultBatchGatherWait
	}
	if c.CommitNoticeDelay == 0 {
		c.CommitNoticeDelay = DefaultCommitNoticeDelay
	}
	if c.TickInterval == 0 {
		c.TickInterval = DefaultTickInterval
	}
	if c.ElectionTicks == 0 {
		c.ElectionTicks = DefaultElectionTicks
	}
	if c.RequestTimeout == 0 {
		c.RequestTimeout = DefaultRequestTimeout
	}
	if c.Logger == nil {
		c.Logger = zap.NewNop()
	}
	return c
}

// Validate reports the first problem with c, without touching the disk or
// the network.
func (c Config) Validate() error {
	if len(c.Peers) == 0 {
		return errors.New("daemon: the peer list is empty")
	}
	if c.ID == 0 || c.ID > uint64(len(c.Peers)) {
		return fmt.Errorf("daemon: id %d is outside the peer list of %d URLs", c.ID, len(c.Peers))
	}
	seen := make(map[string]bool, len(c.Peers))
	for i, p := range c.Peers {
		if err := peerurl.Validate(p); err != nil {
			return fmt.Errorf("daemon: peer %d: %w", i+1, err)
		}
		if seen[p] {
			return fmt.Errorf("daemon: peer URL %s is listed twice", p)
		}
		seen[p] = true
	}
	if c.DataDir == "" {
		return errors.New("daemon: data dir is required")
	}
	if !filepath.IsAbs(c.DataDir) {
		return fmt.Errorf("daemon: data dir %q must be an absolute path", c.DataDir)
	}
	if c.ClientListenAddr != "" {
		if err := checkListenAddr("client listen address", c.ClientListenAddr, true); err != nil {
			return err
		}
	}
	if c.PeerListenAddr != "" {
		// The other members dial the port in Peers, so it cannot be picked
		// at random.
		if err := checkListenAddr("peer listen address", c.PeerListenAddr, false); err != nil {
			return err
		}
	}
	if c.AdvertiseClientURL != "" {
		if err := clienturl.Check(c.AdvertiseClientURL); err != nil {
			return fmt.Errorf("daemon: advertise client URL %q is not an http(s)://host:port URL: it %v", c.AdvertiseClientURL, err)
		}
	}
	if err := c.checkTLS(); err != nil {
		return err
	}
	switch {
	case c.JoinTimeout < 0:
		return fmt.Errorf("daemon: join timeout %v is negative", c.JoinTimeout)
	case c.TickInterval < 0 || (c.TickInterval > 0 && c.TickInterval < time.Millisecond):
		return fmt.Errorf("daemon: tick interval %v must be at least 1ms", c.TickInterval)
	case c.ElectionTicks < 0 || c.ElectionTicks == 1:
		return fmt.Errorf("daemon: election ticks %d must be at least 2", c.ElectionTicks)
	case c.RequestTimeout < 0:
		return fmt.Errorf("daemon: request timeout %v is negative", c.RequestTimeout)
	case c.HashCheckInterval < 0:
		return fmt.Errorf("daemon: hash check interval %v is negative", c.HashCheckInterval)
	case c.BatchGatherWait > time.Second:
		return fmt.Errorf("daemon: batch gather wait %v is over 1s", c.BatchGatherWait)
	case c.CommitNoticeDelay > time.Second:
		return fmt.Errorf("daemon: commit notice delay %v is over 1s", c.CommitNoticeDelay)
	}
	return c.validateSharding()
}

// validateSharding checks the sharding fields: one mode, and what it needs.
func (c Config) validateSharding() error {
	switch {
	case c.ConfigGroup && c.Group != 0:
		return fmt.Errorf("daemon: a member is either in the config group or in shard group %d, not both", c.Group)
	case c.Buckets != 0 && !c.ConfigGroup:
		return errors.New("daemon: the bucket count is the config group's; a shard member learns it from the config group")
	case c.Buckets < 0 || c.Buckets > shardmap.MaxBuckets:
		return fmt.Errorf("daemon: bucket count %d must be 1-%d", c.Buckets, shardmap.MaxBuckets)
	case c.Group != 0 && len(c.ConfigEndpoints) == 0:
		return fmt.Errorf("daemon: shard group %d needs the config group's endpoints", c.Group)
	case c.Group == 0 && len(c.ConfigEndpoints) > 0:
		return errors.New("daemon: config endpoints are for a shard group member; give its group id")
	case c.ConfigPollInterval < 0 || (c.ConfigPollInterval > 0 && c.ConfigPollInterval < time.Millisecond):
		return fmt.Errorf("daemon: config poll interval %v must be at least 1ms", c.ConfigPollInterval)
	}
	for _, e := range c.ConfigEndpoints {
		if err := clienturl.Check(e); err != nil {
			return fmt.Errorf("daemon: config endpoint %q is not an http(s)://host:port URL: it %v", e, err)
		}
	}
	return nil
}

// checkListenAddr checks that addr is a host:port to listen on.
func checkListenAddr(what, addr string, portZeroOK bool) error {
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("daemon: %s %q: %v", what, addr, err)
	}
	p, err := strconv.ParseUint(port, 10, 16)
	switch {
	case err != nil:
		return fmt.Errorf("daemon: %s %q: port %q is not a TCP port", what, addr, port)
	case p == 0 && !portZeroOK:
		return fmt.Errorf("daemon: %s %q: port 0 is not allowed here", what, addr)
	}
	return nil
}
