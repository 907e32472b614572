// Package daemon runs one raftkv member: it builds a raftnode.Node, a
// kvstore.Store on it and the httpapi client server in front of them, and
// wires them together. cmd/raftkv is this package behind flags and
// signals; tests start members in process with it.
//
// It owns: the client and peer listeners (the raft node's peer server
// serves and closes the latter once started), the client HTTP server, the
// adapters from kvstore and raftnode to httpapi's Store and Cluster
// interfaces, the health policy (a member is healthy with a leader and an
// applied index within healthLag entries of the commit index), the
// forwarding of membership changes and leadership transfers to the
// leader's client URL, the leader's hand-off of leadership on Stop, the
// raftdb-style join request (Config.JoinAddr), each member's Prometheus
// registry, the mounting of package ui's dashboard at /ui, and the
// sharding modes: a config group member (ConfigGroup) mounts package
// configgroup's routes and serves no keys; a shard member (Group) mounts
// package shardgroup's migration endpoints and runs its driver. Each
// mode's data dir says what it was made for in a mode file (mode.go), and
// a member of another mode, group or bucket count refuses to start on it.
// TLS (tls.go): the client port serves https with Config.ClientTLS and
// the peer links use Config.PeerTLS (both etcd's TLSInfo, certificates
// re-read at each handshake); the member's calls to other members' client
// ports (forwarded membership changes, the join request, the config and
// shard groups' endpoints, the dashboard) present its peer certificate;
// and with AdminCAFile or AdminCNs, admin requests need an admin's
// certificate (or a member's, for those passed on to the leader and
// those the groups of a sharded deployment make of each other).
// kvadapter.go is the one place that converts kvstore's sharding types to
// those of httpapi, configgroup and shardgroup; cluster.go's store adapts
// kvstore's key API (GetKV, Write with TTLs) to httpapi.Store, and
// kvtxn.go, kvlist.go and kvwatch.go its Txn, List and Watch. Backups: with
// Config.SnapshotDownload (off by default: it hands out every key) a
// member serves GET /snapshot (snapshot.go), the store's state captured by
// raftnode at one applied index (after a ReadIndex wait, unless a stale
// one is asked for) and framed by package backup; Restore (restore.go)
// makes a member's data dir of a new cluster from such a file, whole or
// not at all, as `raftkv restore` runs it. It must not parse flags,
// install
// signal handlers, change process-wide settings (GC, the default logger)
// or exit the process: everything comes from Config, and failures end in
// Start's error or Err.
//
// # Lifecycle
//
// Start validates the Config, listens on the client and peer ports (both
// before the data dir is touched), checks the data dir's mode (a new shard
// member first asks the config group for the bucket count, within
// JoinTimeout), joins through JoinAddr if asked and the data dir holds no
// state, replays the data dir, starts raft, serves clients and, on a shard
// member, starts the driver. It returns a running Member or an error, and leaves nothing
// running on error. Its errors are one line that names what failed: the
// address of a busy port, the data dir (held by another process: wraps
// fileutil.ErrLocked), the join URL. The member runs until Stop, until it
// applies its own removal (Err wraps ErrRemoved), or until its raft node or
// client server fails (Err is that error). Done is closed once it has
// stopped, whatever the reason; Stop waits for that and may be called any
// number of times, before or after.
//
// # Goroutines
//
//   - the client HTTP server's, ended by its Shutdown;
//   - run: waits for Stop, the raft node's end or the client server's
//     failure, then shuts the member down;
//   - the raft node's and the store's own (see their package docs), ended by
//     their Stop;
//   - a shard member's driver's (see package shardgroup), ended by its Stop;
//   - monitorLevel (level.go) and monitorHashes (hashcheck.go): while the
//     member leads, the first asks every member for its level each second,
//     the second runs a hash check every Config.HashCheckInterval; both
//     end with the member, and run waits for them.
//
// # Shutdown order
//
//  1. A shard member's driver stops: its steps in flight are canceled and
//     it starts no new one, so it neither proposes nor calls other groups
//     while the member goes away.
//  2. The client HTTP server stops accepting and lets the requests in
//     flight finish, for at most RequestTimeout plus a second.
//  3. On Stop, a member that leads transfers leadership to the most
//     up-to-date voter first (handoff.go), waiting at most an election
//     timeout, so the others need not wait one out to elect a leader.
//  4. The store's proposer stops, so nothing new is proposed.
//  5. The raft node stops: its Ready loop, the transport and peer server,
//     then the WAL.
//  6. The store's apply loop ends once the node closed its commits.
package daemon
