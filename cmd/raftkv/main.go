// Command raftkv runs one member of a replicated key-value store. It is
// flag-compatible with etcd's raftexample:
//
//	raftkv --id 1 --cluster http://127.0.0.1:12379,http://127.0.0.1:22379,http://127.0.0.1:32379 --port 12380
//
// `raftkv route --config-endpoints URLs --port P` runs a router instead
// (package router); `raftkv restore --snapshot FILE --id N --cluster URLs`
// makes a member's data dir of a new cluster from a backup (restore.go).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/raftkv/raftkv/cmd/internal/cli"
	"github.com/raftkv/raftkv/daemon"
	"github.com/raftkv/raftkv/internal/clienturl"
	"github.com/raftkv/raftkv/peerurl"
	"github.com/raftkv/raftkv/raftnode"
	"github.com/raftkv/raftkv/router"
	"github.com/raftkv/raftkv/shardgroup"
	"github.com/raftkv/raftkv/shardmap"
	"go.etcd.io/etcd/client/pkg/v3/transport"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"golang.org/x/sys/unix"
)

// options are the parsed command line.
type options struct {
	id                     uint64
	cluster                []string
	port                   int
	join                   bool
	joinAddr               string
	dataDir                string
	snapshotCount          uint64
	snapshotCatchUpEntries uint64
	snapshotBytes          uint64
	quotaBytes             int64
	snapshotWriteMiBs      int
	batchGatherWait        time.Duration
	commitNoticeDelay      time.Duration
	listenHost             string
	peerListen             string
	advertiseClientURL     string
	tickMs                 int
	electionTicks          int
	requestTimeout         time.Duration
	hashCheckInterval      time.Duration
	logLevel               string
	logFormat              string
	gcPercent              int
	gomaxprocs             int
	enablePprof            bool
	enableSnapshot         bool
	skipRestoreCheck       bool
	configGroup            bool
	buckets                int
	bucketsSet             bool // --buckets was given
	group                  uint64
	configEndpoints        []string
	configPollInterval     time.Duration
	configPollSet          bool // --config-poll-interval was given
	tls                    tlsFlags
}

// tlsFlags are etcd's TLS flags: the client set (--cert-file, --key-file,
// --trusted-ca-file, --client-cert-auth), the --peer- set, and the admin
// restriction.
type tlsFlags struct {
	certFile, keyFile, trustedCAFile             string
	clientCertAuth                               bool
	peerCertFile, peerKeyFile, peerTrustedCAFile string
	peerClientCertAuth                           bool
	adminCAFile                                  string
	adminCNs                                     []string
}

// errVersion is parseFlags's answer to --version.
var errVersion = errors.New("version requested")

// usageHead is the top of --help, above the flags.
const usageHead = `raftkv runs one member of a replicated key-value store: etcd's Raft library
with etcd's WAL, snapshots and peer transport underneath, and an HTTP API on
--port (PUT /<key>, GET /<key>, DELETE /key/<key>, POST /<id> to add a
member, GET /status). A write is answered once a quorum committed it and this
member applied it, and reads are linearizable on every member. It takes etcd
raftexample's flags, Procfile and curl usage.

Examples:
  # member 1 of 3 on one machine (go tool goreman start runs all three
  # from the repository's Procfile), then a write through it
  raftkv --id 1 --cluster http://127.0.0.1:12379,http://127.0.0.1:22379,http://127.0.0.1:32379 --port 12380
  curl -L http://127.0.0.1:12380/my-key -XPUT -d hello

  # add member 4: tell the cluster, then start it with --join
  curl -L http://127.0.0.1:12380/4 -XPOST -d http://127.0.0.1:42379
  raftkv --id 4 --cluster http://127.0.0.1:12379,http://127.0.0.1:22379,http://127.0.0.1:32379,http://127.0.0.1:42379 --port 42380 --join

  # or let member 4 ask member 1 to add it, as raftdb's -join does
  raftkv --id 4 --cluster <the same 4 URLs> --port 42380 --join-addr 127.0.0.1:12380

  # TLS on both ports, client certificates required, and membership
  # changes only with a certificate of the admin CA (README "TLS")
  raftkv --id 1 --cluster https://127.0.0.1:12379,https://127.0.0.1:22379,https://127.0.0.1:32379 --port 12380 \
    --cert-file server.crt --key-file server.key --trusted-ca-file ca.crt --client-cert-auth \
    --peer-cert-file peer.crt --peer-key-file peer.key --peer-trusted-ca-file ca.crt --peer-client-cert-auth \
    --admin-ca-file admin-ca.crt

  # sharded: a config group (one member here), then shard groups, which
  # join the config by themselves; curl -L any shard member
  raftkv --config-group --id 1 --cluster http://127.0.0.1:6379 --port 6380
  raftkv --group 1 --config-endpoints http://127.0.0.1:6380 --id 1 --cluster http://127.0.0.1:7379 --port 7380
  raftkv --group 2 --config-endpoints http://127.0.0.1:6380 --id 1 --cluster http://127.0.0.1:8379 --port 8380

  # back up a member started with --enable-snapshot-download, and make
  # member 1 of a new cluster from it (raftkv restore --help)
  curl -s http://127.0.0.1:12380/snapshot -o raftkv.backup
  raftkv restore --snapshot raftkv.backup --id 1 --cluster <new URLs> --data-dir raftkv-new-1

Usage: raftkv --id N --cluster URL1,URL2,... --port P [flags]

Exit status: 0 once stopped by SIGINT or SIGTERM, or removed from the
cluster; 1 after a fatal error while running (such as a disk it cannot
write); 2 when the flags are wrong or the member cannot start, with one line
on stderr that says why (and, for a restored member whose check against the
deployment failed, a second line on how to go past it).

Flags:
`

func main() {
	if len(os.Args) > 1 && os.Args[1] == "restore" {
		os.Exit(restoreMain(os.Args[2:], os.Stdout, os.Stderr)) // makes a data dir, runs nothing
	}
	quietMonitor() // members and routers; returns when it did not restart
	// SIGINT and SIGTERM stop a member or a router cleanly (exit status 0)
	// from here on, start-up included: a member still starting (asking
	// the config group for its bucket count, joining) gives up and exits.
	// Both are caught before anything listens.
	sigc := make(chan os.Signal, 1)
	signal.Notify(sigc, os.Interrupt, syscall.SIGTERM)
	ctx := untilSignal(sigc)
	if len(os.Args) > 1 && os.Args[1] == "route" {
		os.Exit(router.Main(ctx, os.Args[2:], os.Stderr)) // a router, not a member
	}
	opts, err := parseFlags(os.Args[1:])
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(0)
		}
		if errors.Is(err, errVersion) {
			fmt.Print(cli.Version("raftkv"))
			os.Exit(0)
		}
		fmt.Fprintln(os.Stderr, "raftkv:", err)
		os.Exit(2)
	}
	os.Exit(run(ctx, opts))
}

// caughtSignal is the cause of untilSignal's context.
type caughtSignal struct{ os.Signal }

func (s caughtSignal) Error() string { return "caught " + s.Signal.String() }

// untilSignal returns a context that ends at the first signal on sigc,
// with it as the cause.
func untilSignal(sigc <-chan os.Signal) context.Context {
	ctx, cancel := context.WithCancelCause(context.Background())
	go func() { cancel(caughtSignal{<-sigc}) }()
	return ctx
}

// signalName names the signal that ended ctx (untilSignal's).
func signalName(ctx context.Context) string {
	var s caughtSignal
	if errors.As(context.Cause(ctx), &s) {
		return s.Signal.String()
	}
	return ""
}

func parseFlags(args []string) (*options, error) {
	fs := flag.NewFlagSet("raftkv", flag.ContinueOnError)
	o := &options{}
	var cluster string
	fs.Uint64Var(&o.id, "id", 1, "this member's id: member N listens for peers on the N-th --cluster URL")
	fs.StringVar(&cluster, "cluster", daemon.DefaultPeerURL, "comma-separated peer URLs of the cluster, in id order")
	fs.IntVar(&o.port, "port", daemon.DefaultClientPort, "client HTTP port")
	fs.BoolVar(&o.join, "join", false, "join an existing cluster (add this member with POST /<id> first)")
	fs.StringVar(&o.joinAddr, "join-addr", "", "client address (host:port) of a member to ask to add this one, as raftdb's -join; implies --join")
	fs.StringVar(&o.dataDir, "data-dir", "", "directory for the WAL and snapshots (default raftkv-<id>, raftkv-config-<id> or raftkv-group<G>-<id> in the working directory)")
	fs.Uint64Var(&o.snapshotCount, "snapshot-count", daemon.DefaultSnapshotCount, "applied entries between snapshots")
	fs.Uint64Var(&o.snapshotCatchUpEntries, "snapshot-catchup-entries", daemon.DefaultSnapshotCatchUpEntries, "entries kept after a snapshot for slow followers")
	fs.Uint64Var(&o.snapshotBytes, "snapshot-bytes", daemon.DefaultSnapshotBytes, "also snapshot once the entries applied since the last snapshot hold this many bytes")
	fs.Int64Var(&o.quotaBytes, "quota-bytes", daemon.DefaultQuotaBytes, "space quota: writes that put keys are refused (503, no_space) while the keys, counted as their bytes and 56 for each, would pass it; deletes always go through (0: none)")
	fs.IntVar(&o.snapshotWriteMiBs, "snapshot-write-rate", daemon.DefaultSnapshotWriteRate>>20, "MiB per second a snapshot's data file is written at most, so the WAL keeps the disk (0: no limit)")
	fs.DurationVar(&o.commitNoticeDelay, "commit-notice-delay", daemon.DefaultCommitNoticeDelay, "longest the leader holds a follower's commit-only append when none of that follower's writes committed, so that the next append carries it (0: send at once)")
	fs.DurationVar(&o.batchGatherWait, "batch-gather-wait", daemon.DefaultBatchGatherWait, "longest the leader waits for writes to add up to most of its previous entry before it proposes the next (0: never wait)")
	fs.StringVar(&o.listenHost, "listen-host", "", "host or IP the client HTTP server listens on (default: all interfaces, as raftexample)")
	fs.StringVar(&o.peerListen, "peer-listen", "", "host:port the peer server listens on (default: the host:port of this member's --cluster URL)")
	fs.StringVar(&o.advertiseClientURL, "advertise-client-url", "", "client URL other members show for this one (default http://<peer host>:<port>)")
	fs.IntVar(&o.tickMs, "tick-ms", int(daemon.DefaultTickInterval/time.Millisecond), "raft tick in milliseconds")
	fs.IntVar(&o.electionTicks, "election-ticks", daemon.DefaultElectionTicks, "election timeout in ticks (heartbeat is one tick)")
	fs.DurationVar(&o.requestTimeout, "request-timeout", daemon.DefaultRequestTimeout, "deadline of each client request")
	fs.DurationVar(&o.hashCheckInterval, "hash-check-interval", 0, "how often the group's leader checks that every member holds the same state (a hash check, as raftkvctl hashkv); a disagreement is logged as an error and counted in raftkv_hash_checks_total{result=\"mismatch\"} (0: never)")
	fs.StringVar(&o.logLevel, "log-level", "info", "log level: debug, info, warn or error")
	fs.StringVar(&o.logFormat, "log-format", "auto", "log format: json, console (for humans), or auto: console when stderr is a terminal, else json")
	fs.BoolVar(&o.enablePprof, "enable-pprof", false, "serve Go profiling under /debug/pprof/ on the client port; it shows the command line and lets any client run CPU profiles and traces, so only on a trusted network")
	fs.BoolVar(&o.enableSnapshot, "enable-snapshot-download", false, "serve GET /snapshot on the client port: a backup of the whole state, for raftkv restore; anyone who reaches the port can then read every key, so only on a trusted network")
	fs.BoolVar(&o.skipRestoreCheck, "unsafe-skip-restore-check", false, "start a member restored by raftkv restore without checking its backup against the deployment (the check refuses when a group moved on since the backup, or cannot tell in time); when the check would have refused, two groups may serve a bucket, so only when the groups it names are gone for good")
	fs.BoolVar(&o.configGroup, "config-group", false, "run a member of the config group of a sharded deployment: it keeps the list of configs (which group serves each bucket) and serves GET /config and POST /config/join|leave|move, but no keys")
	fs.IntVar(&o.buckets, "buckets", shardmap.DefaultBuckets, "number of buckets of the key space, fixed when the config group is made (--config-group only; shard members learn it from the config group)")
	fs.Uint64Var(&o.group, "group", 0, "run a member of shard group G: it serves the keys of the buckets the config group gives G, and joins the config by itself the first time its group starts (needs --config-endpoints)")
	var configEndpoints string
	fs.StringVar(&configEndpoints, "config-endpoints", "", "comma-separated client URLs of config group members (--group only)")
	fs.DurationVar(&o.configPollInterval, "config-poll-interval", shardgroup.DefaultPollInterval, "how often a shard group's leader asks the config group for the next config when the last poll found none (--group only)")
	fs.StringVar(&o.tls.certFile, "cert-file", "", "certificate of the client port, which then serves https (re-read at each handshake, so a renewed file needs no restart)")
	fs.StringVar(&o.tls.keyFile, "key-file", "", "key of --cert-file")
	fs.StringVar(&o.tls.trustedCAFile, "trusted-ca-file", "", "CA that verifies client certificates, and other members' client ports")
	fs.BoolVar(&o.tls.clientCertAuth, "client-cert-auth", false, "refuse clients without a certificate --trusted-ca-file verifies, at the TLS handshake")
	fs.StringVar(&o.tls.peerCertFile, "peer-cert-file", "", "certificate of the peer links, for both ends (server and client use); the --cluster URLs are then https")
	fs.StringVar(&o.tls.peerKeyFile, "peer-key-file", "", "key of --peer-cert-file")
	fs.StringVar(&o.tls.peerTrustedCAFile, "peer-trusted-ca-file", "", "CA that verifies the other members' peer certificates")
	fs.BoolVar(&o.tls.peerClientCertAuth, "peer-client-cert-auth", false, "refuse peers without a certificate --peer-trusted-ca-file verifies")
	fs.StringVar(&o.tls.adminCAFile, "admin-ca-file", "", "restrict admin requests (membership changes, leader transfer, snapshot download, hash checks, shard config changes and bucket moves) to clients with a certificate from this CA (needs --cert-file)")
	var adminCNs string
	fs.StringVar(&adminCNs, "admin-cn", "", "comma-separated common names whose verified client certificates may also make those requests (needs --cert-file)")
	version := fs.Bool("version", false, "print the version, VCS revision and Go version, and exit")
	fs.IntVar(&o.gomaxprocs, "gomaxprocs", 0, "threads running Go code at once, as GOMAXPROCS (which overrides it when set); 0: Go's default, divided among the members when every --cluster peer URL is a loopback address (they share this machine)")
	fs.IntVar(&o.gcPercent, "gc-percent", 0, "Go garbage collector target percentage, as GOGC (which overrides it when set); 0: let the heap exceed the live data by 15%, but by at least 64 MiB")
	// Errors are reported in one line by main; usage only on --help.
	fs.SetOutput(io.Discard)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fs.SetOutput(os.Stdout)
			fmt.Fprint(os.Stdout, usageHead)
			fs.PrintDefaults()
		}
		return nil, err
	}
	if *version {
		return nil, errVersion
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	for _, u := range strings.Split(cluster, ",") {
		if u = strings.TrimSpace(u); u != "" {
			o.cluster = append(o.cluster, u)
		}
	}
	for _, u := range strings.Split(configEndpoints, ",") {
		if u = strings.TrimSpace(u); u != "" {
			o.configEndpoints = append(o.configEndpoints, strings.TrimSuffix(u, "/"))
		}
	}
	for _, cn := range strings.Split(adminCNs, ",") {
		if cn = strings.TrimSpace(cn); cn != "" {
			o.tls.adminCNs = append(o.tls.adminCNs, cn)
		}
	}
	fs.Visit(func(f *flag.Flag) {
		switch f.Name {
		case "buckets":
			o.bucketsSet = true
		case "config-poll-interval":
			o.configPollSet = true
		}
	})
	if err := o.validate(); err != nil {
		return nil, err
	}
	return o, nil
}

// validate checks everything that can be checked before touching disk.
func (o *options) validate() error {
	if len(o.cluster) == 0 {
		return errors.New("--cluster lists no peer URLs")
	}
	if o.id == 0 || o.id > uint64(len(o.cluster)) {
		return fmt.Errorf("--id %d is outside the --cluster list of %d URLs", o.id, len(o.cluster))
	}
	for i, u := range o.cluster {
		if err := peerurl.Validate(u); err != nil {
			return fmt.Errorf("--cluster entry %d: %v", i+1, err)
		}
	}
	if o.port < 1 || o.port > 65535 {
		return fmt.Errorf("--port %d is not a TCP port", o.port)
	}
	if o.tickMs < 1 {
		return fmt.Errorf("--tick-ms %d must be positive", o.tickMs)
	}
	if o.electionTicks < 2 {
		return fmt.Errorf("--election-ticks %d must be at least 2", o.electionTicks)
	}
	if o.requestTimeout <= 0 {
		return fmt.Errorf("--request-timeout %v must be positive", o.requestTimeout)
	}
	if o.hashCheckInterval < 0 {
		return fmt.Errorf("--hash-check-interval %v must not be negative (0: never)", o.hashCheckInterval)
	}
	if o.snapshotBytes == 0 {
		return errors.New("--snapshot-bytes must be positive")
	}
	if o.quotaBytes < 0 {
		return fmt.Errorf("--quota-bytes %d must not be negative (0: no quota)", o.quotaBytes)
	}
	if o.snapshotCount == 0 {
		return errors.New("--snapshot-count must be positive")
	}
	if o.snapshotWriteMiBs < 0 {
		return fmt.Errorf("--snapshot-write-rate %d must be 0 (no limit) or positive", o.snapshotWriteMiBs)
	}
	if o.batchGatherWait < 0 || o.batchGatherWait > time.Second {
		return fmt.Errorf("--batch-gather-wait %v must be between 0 (never wait) and 1s", o.batchGatherWait)
	}
	if o.commitNoticeDelay < 0 || o.commitNoticeDelay > time.Second {
		return fmt.Errorf("--commit-notice-delay %v must be between 0 (send at once) and 1s", o.commitNoticeDelay)
	}
	if _, err := zapcore.ParseLevel(o.logLevel); err != nil {
		return fmt.Errorf("--log-level: %v", err)
	}
	if o.gomaxprocs < 0 {
		return fmt.Errorf("--gomaxprocs %d must be 0 (automatic) or positive", o.gomaxprocs)
	}
	if o.gcPercent != 0 && o.gcPercent < 10 {
		return fmt.Errorf("--gc-percent %d must be 0 (automatic) or at least 10", o.gcPercent)
	}
	if o.logFormat != "auto" && o.logFormat != "json" && o.logFormat != "console" {
		return fmt.Errorf("--log-format %q must be auto, json or console", o.logFormat)
	}
	if o.advertiseClientURL != "" {
		if err := clienturl.Check(o.advertiseClientURL); err != nil {
			return fmt.Errorf("--advertise-client-url %q is not an http(s)://host:port URL: it %v", o.advertiseClientURL, err)
		}
	}
	if err := o.validateSharding(); err != nil {
		return err
	}
	if err := o.validateTLS(); err != nil {
		return err
	}
	if o.joinAddr != "" {
		o.join = true
	}
	if o.dataDir == "" {
		// Members of different groups on one machine share a working
		// directory (Procfile.sharded), so their names say their group.
		o.dataDir = memberDataDir(o.configGroup, o.group, o.id)
	}
	abs, err := filepath.Abs(o.dataDir)
	if err != nil {
		return fmt.Errorf("--data-dir: %v", err)
	}
	o.dataDir = abs
	if err := checkDataDir(abs); err != nil {
		return err
	}
	return o.config(nil).Validate()
}

// memberDataDir is the default data dir of member id: of the config
// group, of shard group group, or a plain member.
func memberDataDir(configGroup bool, group, id uint64) string {
	switch {
	case configGroup:
		return "raftkv-config-" + strconv.FormatUint(id, 10)
	case group != 0:
		return fmt.Sprintf("raftkv-group%d-%d", group, id)
	}
	return "raftkv-" + strconv.FormatUint(id, 10)
}

// validateSharding checks the sharding flags: one mode, and what it needs.
func (o *options) validateSharding() error {
	switch {
	case o.configGroup && o.group != 0:
		return fmt.Errorf("--config-group and --group %d exclude each other: a member is in the config group or in one shard group", o.group)
	case o.bucketsSet && !o.configGroup:
		return errors.New("--buckets is for --config-group only; a shard member learns the bucket count from the config group")
	case o.configGroup && (o.buckets < 1 || o.buckets > shardmap.MaxBuckets):
		return fmt.Errorf("--buckets %d must be 1-%d", o.buckets, shardmap.MaxBuckets)
	case o.configGroup && len(o.configEndpoints) > 0:
		return errors.New("--config-endpoints is for --group members; a config group member is one of the config endpoints")
	case o.group != 0 && len(o.configEndpoints) == 0:
		return fmt.Errorf("--group %d needs --config-endpoints, the client URLs of config group members", o.group)
	case o.group == 0 && len(o.configEndpoints) > 0:
		return errors.New("--config-endpoints needs --group, this member's shard group id")
	case o.configPollSet && o.group == 0:
		return errors.New("--config-poll-interval is for --group members only")
	case o.configPollInterval < time.Millisecond:
		return fmt.Errorf("--config-poll-interval %v must be at least 1ms", o.configPollInterval)
	}
	for i, u := range o.configEndpoints {
		if err := clienturl.Check(u); err != nil {
			return fmt.Errorf("--config-endpoints entry %d %q is not an http(s)://host:port URL: it %v", i+1, u, err)
		}
	}
	return nil
}

// validateTLS checks the TLS flags go together, and with the URLs: https
// --cluster URLs need the --peer- set, https client URLs the client set.
func (o *options) validateTLS() error {
	t := o.tls
	if err := raftnode.CheckServerTLS("", transport.TLSInfo{CertFile: t.certFile, KeyFile: t.keyFile,
		TrustedCAFile: t.trustedCAFile, ClientCertAuth: t.clientCertAuth}); err != nil {
		return err
	}
	if err := raftnode.CheckServerTLS("peer-", transport.TLSInfo{CertFile: t.peerCertFile, KeyFile: t.peerKeyFile,
		TrustedCAFile: t.peerTrustedCAFile, ClientCertAuth: t.peerClientCertAuth}); err != nil {
		return err
	}
	switch {
	case (t.adminCAFile != "" || len(t.adminCNs) > 0) && t.certFile == "":
		return errors.New("--admin-ca-file and --admin-cn need TLS on the client port (--cert-file, --key-file)")
	case len(t.adminCNs) > 0 && t.trustedCAFile == "" && t.adminCAFile == "":
		return errors.New("--admin-cn needs --trusted-ca-file or --admin-ca-file to verify certificates with")
	}
	for i, u := range o.cluster {
		switch s := peerurl.Scheme(u); {
		case s == "https" && t.peerCertFile == "":
			return fmt.Errorf("--cluster entry %d %s is https, which needs --peer-cert-file and --peer-key-file", i+1, u)
		case s == "http" && t.peerCertFile != "":
			return fmt.Errorf("--cluster entry %d %s is http, but --peer-cert-file makes the peer links TLS; use https", i+1, u)
		}
	}
	if u, err := url.Parse(o.advertiseClientURL); err == nil && o.advertiseClientURL != "" {
		switch {
		case u.Scheme == "https" && t.certFile == "":
			return fmt.Errorf("--advertise-client-url %s is https, which needs --cert-file and --key-file", o.advertiseClientURL)
		case u.Scheme == "http" && t.certFile != "":
			return fmt.Errorf("--advertise-client-url %s is http, but --cert-file makes the client port TLS; use https", o.advertiseClientURL)
		}
	}
	return nil
}

// tlsInfo is an etcd TLSInfo of the given files; nil when certFile is empty.
func tlsInfo(certFile, keyFile, caFile string, certAuth bool) *transport.TLSInfo {
	if certFile == "" {
		return nil
	}
	return &transport.TLSInfo{CertFile: certFile, KeyFile: keyFile, TrustedCAFile: caFile, ClientCertAuth: certAuth}
}

// checkDataDir requires dir to be a usable directory, or creatable.
func checkDataDir(dir string) error {
	fi, err := os.Stat(dir)
	switch {
	case errors.Is(err, os.ErrNotExist):
		parent := filepath.Dir(dir)
		if pfi, perr := os.Stat(parent); perr != nil || !pfi.IsDir() {
			return fmt.Errorf("--data-dir %s: parent directory %s does not exist", dir, parent)
		}
		if unix.Access(parent, unix.W_OK|unix.X_OK) != nil {
			return fmt.Errorf("--data-dir %s: cannot create it in %s (permission denied)", dir, parent)
		}
		return nil
	case err != nil:
		return fmt.Errorf("--data-dir %s: %v", dir, err)
	case !fi.IsDir():
		return fmt.Errorf("--data-dir %s is not a directory", dir)
	}
	if unix.Access(dir, unix.R_OK|unix.W_OK|unix.X_OK) != nil {
		return fmt.Errorf("--data-dir %s is not readable and writable", dir)
	}
	return nil
}

// logEncoding is the zap encoding of --log-format: auto is console on a
// terminal, where a person reads, and JSON elsewhere (a file, a pipe, a
// log collector).
func logEncoding(format string, terminal bool) string {
	if format == "console" || (format == "auto" && terminal) {
		return "console"
	}
	return "json"
}

// newLogger builds the logger of o on stderr; terminal tells whether
// stderr is one.
func newLogger(o *options, terminal bool) (*zap.Logger, error) {
	level, _ := zapcore.ParseLevel(o.logLevel)
	cfg := zap.NewProductionConfig()
	if logEncoding(o.logFormat, terminal) == "console" {
		cfg.Encoding = "console"
		cfg.EncoderConfig = zap.NewDevelopmentEncoderConfig()
		if terminal {
			cfg.EncoderConfig.EncodeLevel = zapcore.CapitalColorLevelEncoder
		}
	}
	cfg.Level = zap.NewAtomicLevelAt(level)
	cfg.Sampling = nil
	cfg.OutputPaths = []string{"stderr"}
	return cfg.Build()
}

func run(ctx context.Context, o *options) int {
	lg, err := newLogger(o, cli.IsTerminal(os.Stderr))
	if err != nil {
		fmt.Fprintln(os.Stderr, "raftkv: logger:", err)
		return 2
	}
	defer lg.Sync()
	if n := setProcs(o.gomaxprocs, o.cluster, os.Getenv); n > 0 {
		lg.Info("GOMAXPROCS set", zap.Int("gomaxprocs", n), zap.Int("members", len(o.cluster)),
			zap.Bool("automatic", o.gomaxprocs == 0))
	}
	switch {
	case os.Getenv("GOGC") != "":
	case o.gcPercent == 0:
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		go tuneGC(ctx)
	default:
		debug.SetGCPercent(o.gcPercent)
	}

	m, err := daemon.Start(ctx, o.config(lg))
	switch {
	case err != nil && ctx.Err() != nil:
		// Stopped while it started: Start gave up where it waited (for
		// the config group, a join) or failed on its own; either way
		// nothing serves, as asked.
		lg.Info("stopped while starting", zap.String("signal", signalName(ctx)), zap.Error(err))
		return 0
	case err != nil:
		// A start-up error is the user's to fix (a busy port, a data dir in
		// use): one line that names the thing, as for a bad flag.
		fmt.Fprintln(os.Stderr, "raftkv:", err)
		if errors.Is(err, daemon.ErrRestoreCheck) {
			fmt.Fprintln(os.Stderr, "raftkv: the data dir stays as restored, and its next start checks again; if the groups the check needs are gone for good, --unsafe-skip-restore-check starts it unchecked (two groups may then serve a bucket)")
		}
		return 2
	}
	select {
	case <-ctx.Done():
		lg.Info("shutting down", zap.String("signal", signalName(ctx)))
	case <-m.Done():
	}
	m.Stop()

	switch err := m.Err(); {
	case err == nil:
		lg.Info("stopped")
		return 0
	case errors.Is(err, daemon.ErrRemoved):
		lg.Info("removed from the cluster; exiting")
		return 0
	default:
		lg.Error("stopped after a fatal error", zap.Error(err))
		return 1
	}
}

// config is the daemon's configuration for o.
func (o *options) config(lg *zap.Logger) daemon.Config {
	return daemon.Config{
		ID:                     o.id,
		Peers:                  o.cluster,
		Join:                   o.join,
		JoinAddr:               o.joinAddr,
		DataDir:                o.dataDir,
		ClientListenAddr:       net.JoinHostPort(o.listenHost, strconv.Itoa(o.port)),
		PeerListenAddr:         o.peerListen,
		AdvertiseClientURL:     o.advertiseClientURL,
		SnapshotCount:          o.snapshotCount,
		SnapshotCatchUpEntries: o.snapshotCatchUpEntries,
		SnapshotBytes:          o.snapshotBytes,
		SnapshotWriteRate:      o.snapshotWriteRate(),
		QuotaBytes:             offWhenZero(o.quotaBytes),
		BatchGatherWait:        offWhenZero(o.batchGatherWait),
		CommitNoticeDelay:      offWhenZero(o.commitNoticeDelay),
		TickInterval:           time.Duration(o.tickMs) * time.Millisecond,
		ElectionTicks:          o.electionTicks,
		RequestTimeout:         o.requestTimeout,
		HashCheckInterval:      o.hashCheckInterval,
		Pprof:                  o.enablePprof,
		SnapshotDownload:       o.enableSnapshot,
		UnsafeSkipRestoreCheck: o.skipRestoreCheck,
		ConfigGroup:            o.configGroup,
		Buckets:                o.bucketsConfig(),
		Group:                  o.group,
		ConfigEndpoints:        o.configEndpoints,
		ConfigPollInterval:     o.configPollInterval,
		ClientTLS:              tlsInfo(o.tls.certFile, o.tls.keyFile, o.tls.trustedCAFile, o.tls.clientCertAuth),
		PeerTLS:                tlsInfo(o.tls.peerCertFile, o.tls.peerKeyFile, o.tls.peerTrustedCAFile, o.tls.peerClientCertAuth),
		AdminCAFile:            o.tls.adminCAFile,
		AdminCNs:               o.tls.adminCNs,
		Logger:                 lg,
	}
}

// bucketsConfig is --buckets in daemon's terms: 0, the data dir's count
// or the default, unless given.
func (o *options) bucketsConfig() int {
	if !o.bucketsSet {
		return 0
	}
	return o.buckets
}

// snapshotWriteRate is --snapshot-write-rate in raftnode's terms.
func (o *options) snapshotWriteRate() int64 {
	if o.snapshotWriteMiBs == 0 {
		return -1 // no limit
	}
	return int64(o.snapshotWriteMiBs) << 20
}

// offWhenZero is a flag whose 0 turns its feature off (the batch gather
// wait, the commit notice delay, the space quota) in the terms of
// daemon's Config, where 0 means the default and a negative value off.
func offWhenZero[T int64 | time.Duration](v T) T {
	if v == 0 {
		return -1
	}
	return v
}
