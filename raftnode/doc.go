// Package raftnode runs one member of a Raft group: the raft.Node and its
// Ready loop, the write-ahead log and snapshot files (etcd's wal and snap
// packages), the rafthttp transport to the other members, and the member
// list. It knows nothing about keys: application entries are opaque bytes.
//
// It must not interpret application data, read global state, or exit the
// process; everything comes from Config and fatal errors end in Err.
//
// # Data flow
//
// The application sends proposals on ProposeC (or calls Propose) and
// membership changes on ConfChangeC (or calls AddMember/RemoveMember). It
// receives committed state on Commits, in log order, and calls
// Commit.Applied after applying each commit. Linearizable reads call
// ReadIndex and wait until the application applied the returned index.
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
// the receiver's rafthttp saves it as its own data file.
//
// # Goroutines
//
//   - run: the Ready loop; the only goroutine that handles Ready, writes the
//     WAL and snapshot files and appends to the MemoryStorage.
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
//   - peerLinks.run: replaces the transport connections of a peer that
//     stopped answering (peerlinks.go), so that streams stuck in TCP's
//     retransmission backoff after a silent outage are dialed afresh.
//   - the peer HTTP server, and etcd's file purgers.
//
// Stop (or a fatal error, or applying this member's own removal) closes the
// stop channel; teardownWhenStopped then waits for the goroutines above and
// stops, in order, raft, the transport, the peer server and the WAL, then
// closes Commits and Done.
//
// # Lifecycle
//
// New validates the Config and replays the data dir; Start hands the
// on-disk snapshot (if any) to the application as the first Commit, starts
// the transport and raft (bootstrapping from Config.Peers unless a WAL
// exists or Config.Join is set) and the goroutines; Stop ends it.
//
// # Invariants
//
//  1. Each Ready is handled in raft's order: snapshot file and WAL record,
//     WAL append of HardState and entries, MemoryStorage, messages (a
//     leader may send before its fsync), Advance. Committed entries are
//     handed to the application before the WAL append, as etcd does: they
//     are durable on a quorum already, so applying them overlaps the fsync.
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
package raftnode
