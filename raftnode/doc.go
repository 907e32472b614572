// Package raftnode runs one member of a Raft group: the raft.Node and its
// Ready loop, the write-ahead log and snapshot files (etcd's wal and snap
// packages), the transport to the other members (etcd's rafthttp unless
// Config says otherwise), and the member list. It knows nothing about keys:
// application entries are opaque bytes.
//
// It must not interpret application data, read global state, or exit the
// process; everything comes from Config and fatal errors end in Err.
//
// # Data flow
//
// The application sends proposals on ProposeC (or calls Propose) and
// membership changes on ConfChangeC (or calls AddMember, AddLearner,
// PromoteMember, RemoveMember). It
// receives committed state on Commits, in log order, and calls
// Commit.Applied after applying each commit. Linearizable reads call
// ReadIndex and wait until the application applied the returned index.
//
// # Learners and leadership transfer
//
// A learner (AddLearner) receives the log and snapshots but does not vote
// and cannot lead; the member list records it (Member.IsLearner, as raft's
// ConfState has it after each change). PromoteMember makes it a voter by
// proposing ConfChangeAddNode of its id, and only the leader takes that:
// it alone knows the learner's progress, and refuses a learner whose log
// matches less than 90% of its own (etcd's rule). TransferLeadership asks
// raft, on the leader, to hand leadership to a voter (raft catches it up,
// then sends it MsgTimeoutNow, so it campaigns at once) and waits until
// this member sees it lead.
//
// # Batching
//
// A follower sends each of its proposals straight to the leader as a
// MsgProp, as raft would forward it. The leader does not append them one
// by one: Process hands their payloads, and serveChannels the leader's
// own, to the batcher, which proposes everything queued as one entry of
// kind entryBatch once its previous entry committed (or
// UncommittedBatchTimeout passed) and the queue holds 9/10 of that entry's
// bytes (or BatchGatherWait passed): the writes
// that entry carried come back as their clients' next ones a moment after
// it commits, and join the next entry instead of the one after. Under load
// one round of WAL fsyncs and append messages then carries the writes of
// every member. Each payload reaches the application as its own Entry, all with
// the entry's index. A payload lost with a leader change is lost as a
// dropped MsgProp is; the application proposes it again.
//
// # Snapshots
//
// A snapshot at index I is a small raft snapshot (etcd's .snap file, whose
// data is the member list) plus a data file <I>.snap.db holding the
// application's state, written by the function its SnapshotFunc returned.
// Taking one never stops the Ready loop: the state is captured there (the
// application must make that cheap), the file is written on another
// goroutine, and the snapshot is recorded and the log compacted when it is
// done. A snapshot is sent by streaming the data file after the message;
// the receiver's transport saves it as its own data file.
//
// The files of a snapshot are saved in this order: the data file, the
// .snap file, its WAL record (synced), and for a snapshot from the leader
// the HardState that commits it (synced). Only then are the older WAL
// segments (etcd's purger takes those the WAL no longer locks) and data
// files released: a restart starts from the newest snapshot that the WAL's
// last HardState commits, and until that HardState is durable, that is the
// previous one (etcd issue 10219).
//
// # Backups
//
// CaptureState hands out the application's state at one applied index for
// a backup taken while the member runs (GET /snapshot): the Ready loop
// takes it between two Readies, once the application reported every
// published commit applied, through the same SnapshotFunc as a snapshot
// (invariant 2), with the index and the term of its entry. Nothing is
// written to the data dir and no quorum is asked: a caller that wants every
// acknowledged write in it waits, after ReadIndex, until that index is
// applied. Bootstrap makes, from such a state, the data dir of a member of
// a new cluster (etcdutl snapshot restore): the state as the data file of
// a snapshot at the captured index, whose member list is the new peers
// (ids 1 to n, all voters), and a WAL holding that snapshot's record and a
// HardState at the captured term that commits it. Every member of the new
// cluster is made from the same state and peers; started without Join,
// they find a WAL, restart from the snapshot and elect a leader.
//
// # Transport
//
// Raft messages travel through a Transport: Send, SendSnapshot,
// AddPeer/RemovePeer, ErrorC and Stop. Start builds it with
// Config.NewTransport from a TransportParams: the member's id, the Node
// as the rafthttp.Raft that takes what arrives, and the snapshotter that
// saves an incoming snapshot's data file before its message goes to raft.
// A transport may also tell since when its connection to a peer is up
// (ActiveSince, as rafthttp's does), so that leadership goes to no member
// that is gone; one that cannot tell counts every peer connected.
// Nil means etcd's rafthttp, with its peer HTTP server on
// Config.PeerListenAddr, serving once the known peers were added: what the
// daemon runs. With Config.PeerTLS (TransportParams.TLSInfo) rafthttp
// dials https with it and the peer server serves TLS (ServerTLSConfig:
// the certificate re-read at each handshake). raftnode keeps its own record of the peers it added, and
// stops when ErrorC reports an error (one wrapping ErrRemoved when the
// others refuse this member as removed). raftnode's tests connect members
// in one process through a fake network (fakenet_test.go) that can cut
// links and records what is sent; the WAL and snapshot files stay real.
//
// # Goroutines
//
//   - run: the Ready loop; the only goroutine that handles Ready, writes the
//     WAL and snapshot files and appends to the MemoryStorage; it also
//     takes CaptureState's captures, between two Readies.
//   - serveChannels: feeds ProposeC into the batcher (leader), to the
//     leader (follower) or into raft, and ConfChangeC into raft; one
//     short-lived goroutine per membership change waits for it to apply.
//   - batcher.run: on the leader, merges the application proposals waiting
//     there (its own and those followers forward) into one raft entry,
//     with one such entry uncommitted at a time, and waits briefly for the
//     next one to fill up to most of the last.
//   - readIndexer.run: one ReadIndex round at a time, shared by every read
//     that arrived before it started.
//   - publishAttributes: proposes this member's client URL until applied.
//   - one snapshot writer at a time, while a data file is being written
//     (paced to SnapshotWriteRate, so the WAL keeps the disk).
//   - prune: removes old snapshot data files off the Ready loop.
//   - the transport's (rafthttp's streams and its peer HTTP server; with
//     the default transport also peerLinks.run, which replaces the
//     connections of a peer that stopped answering (peerlinks.go), so
//     that streams stuck in TCP's retransmission backoff after a silent
//     outage are dialed afresh), and etcd's file purgers.
//
// Stop (or a fatal error, or applying this member's own removal) closes the
// stop channel; teardownWhenStopped then waits for the goroutines above and
// stops, in order, raft, the transport (rafthttp, then its peer server)
// and the WAL, then closes Commits and Done.
//
// # Lifecycle
//
// New validates the Config and replays the data dir; Start hands the
// on-disk snapshot (if any) to the application as the first Commit, starts
// raft (bootstrapping from Config.Peers unless a WAL exists or Config.Join
// is set), then the transport and the goroutines; Stop ends it.
//
// # Invariants
//
//  1. Each Ready is handled in raft's order: snapshot file and WAL record,
//     WAL append of HardState and entries, MemoryStorage, messages (a
//     leader may send before its fsync, a follower forwards proposals and
//     read requests before it), Advance. Committed entries are handed to
//     the application before the WAL append, as etcd does: they are durable
//     on a quorum already, so applying them overlaps the fsync. A snapshot
//     from the leader is handed over only once its HardState is synced.
//  2. A snapshot covers exactly the entries up to its index: the state is
//     captured only after the application reported every published commit
//     applied, and recorded only once its data file is durable.
//  3. The member list lives in every snapshot (envelope) and is rebuilt from
//     conf-change entries after it, so a restarted member knows every peer.
//     Raft's in-memory log holds no application state beyond the entries.
//  4. Any error writing the WAL or a snapshot stops the node: nothing
//     published after it can be acknowledged.
//  5. Outgoing snapshots carry the current ConfState, so a member added
//     after the snapshot was taken accepts it.
//  6. Nothing a restart may need is released for purging: older WAL
//     segments and data files only once a newer snapshot and a HardState
//     that commits it are durable. etcd purges .snap files by number
//     alone, so at least two are kept (Config.MaxSnapshotFiles).
//
// # Files
//
//   - node.go: Node and its lifecycle (New, Start, Stop, teardown); the
//     Proposal, ConfChange and Commit types.
//   - config.go: Config, its defaults and Validate.
//   - ready.go: the Ready loop (run, handleReady), publishing commits and
//     installing snapshots from the leader.
//   - transport.go: the Transport seam, the default rafthttp transport
//     and its peer server, sending messages and snapshots, and the
//     rafthttp.Raft methods through which messages arrive.
//   - propose.go: serveChannels, proposals and their forwarding to the
//     leader, raft's answers mapped to errors.
//   - batcher.go: the leader's merging of proposals into batch entries.
//   - readindex.go: linearizable reads, one ReadIndex round at a time.
//   - confchange.go: proposing and applying membership changes, the
//     learner's readiness for promotion, and the members' published
//     client URLs.
//   - transfer.go: leadership transfer and the choice of the transferee.
//   - membership.go: the member list, the snapshot envelope and the kinds
//     of entry data.
//   - snapshot.go: taking snapshots (maybeSnapshot, finishSnapshot), log
//     compaction, pruning data files, the purgers, and the snapshot found
//     on disk at Start.
//   - snapfile.go, snapfile_linux.go, snapfile_other.go: snapshot data
//     files: written durably at a bounded rate, pruned.
//   - storage.go: the data dir: opening and replaying the WAL, saving a
//     snapshot's .snap file and WAL record, releasing older files.
//   - backup.go: CaptureState, for backups, and Bootstrap, which makes a
//     new cluster's data dir from a captured state.
//   - failpoint.go: the named steps of saving a snapshot, where tests stop
//     a member as a crash would.
//   - status.go, metrics.go, errors.go, zap_raft.go: Status, Prometheus
//     metrics, errors and their kinds, raft's logger on zap.
//
// Tests: fakenet_test.go is the fake network, harness_test.go a cluster of
// members on it with the smallest application; ready_order_test.go checks
// each message sent against the sender's WAL on disk, snapshot_crash_test.go
// crashes a member at each step of saving a snapshot, lifecycle_test.go
// restarts and removes members; raftnode_test.go holds the unit tables.
package raftnode
