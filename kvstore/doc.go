// Package kvstore is the replicated key-value state machine on top of
// raftnode: it encodes writes into raft entries (gob), applies committed
// entries to an in-memory B-tree, answers the writers waiting for them,
// serves reads at a stated consistency, and produces and restores
// snapshots.
//
// It must not touch disk or the network itself; raftnode owns both.
//
// # Writes
//
// Put, Delete and Apply register a waiter keyed by a request id, queue the
// request, and return when the request's entry is applied (or the context
// ends: ErrTimeout, outcome unknown). The propose loop packs every queued
// request into one entry (group commit), and keeps at most
// MaxUnappliedEntries (16) entries of its own on their way through raft:
// requests that arrive meanwhile wait and join the next entry, so entries
// grow with the load. On the leader, raftnode merges the entries of every
// member waiting there into one raft entry, one such entry committing at a
// time; each still applies as its own batch. The propose loop hands an
// entry to raftnode and goes on: raft's answer comes later (the leader's
// batcher gives it only once it proposes its next raft entry), and a
// refusal fails the entry's requests then. A request still unapplied after
// RetryInterval is proposed again, because raft may drop a forwarded
// proposal without telling anyone.
//
// Once an entry carrying a write is handed to raftnode, the write may be
// applied on every member whatever this one learns: raftnode may have
// appended it, or forwarded it to the leader. From then on only its apply
// (success) or raft's outright refusal says what became of it; a store that
// stops, a node that stops under it (this member removed, a fatal error),
// or a caller that goes away ends the wait with an unknown outcome
// (ErrOutcomeUnknown, 504), never with "not applied". Invariant 5 lists the
// answers.
//
// # Entries
//
// An entry is a self-contained gob stream of one batch, so any member
// decodes it alone. The propose loop keeps one gob encoder primed, and
// the apply loop one gob decoder per type preamble (one per writer
// binary), fed only each entry's value message. A hand-written decoder of
// this binary's own entries was measured against it and removed: at 64
// clients the end-to-end difference in throughput and member CPU per
// write was under 5% and within the noise (docs/design.md).
//
// # At most once
//
// Each entry carries this process's random session id and a watermark: the
// lowest request id the session still waits for. The state machine keeps,
// per session, the watermark and the ids applied at or above it; a request
// already applied, or below the watermark, is skipped. Every member sees the
// same entries, so every member skips the same requests.
//
// # Reads
//
// Get states its consistency in ReadOptions. By default it is
// linearizable: raftnode.ReadIndex (shared rounds, no disk write) then a
// wait until applied >= that index. Stale reads the local map. MinIndex
// first waits until this member applied that index (read-your-writes).
//
// # Snapshots
//
// The state is a copy-on-write B+ tree of its own (tree.go) whose items
// carry the first 8 bytes of their key as an integer, so a lookup compares
// mostly integers in the node, and whose nodes stay full under a load of
// ascending keys, where google/btree's stay half full. Snapshot clones
// the tree (O(1)) and returns a function that streams the clone in a
// checksummed binary format (snapshot.go) while applying goes on, letting
// go of each leaf once it is written. restore reads that format back from
// the data file raftnode names in a Commit.
//
// # Goroutines
//
// applyLoop consumes raftnode's Commits until raftnode closes it;
// proposeLoop runs until Stop.
//
// # Invariants
//
//  1. Entries are applied in log order, each request atomically.
//  2. A waiter is answered only after its request is applied on this member.
//  3. A request is applied at most once, however often it was proposed.
//  4. Snapshot encodes the state as of the last commit reported Applied.
//  5. A write ends in "not applied" (an error a client gets as 503 or
//     4xx: ErrStopped, a raftnode refusal, a cancellation, ErrEmptyRequest)
//     only if no entry carrying it reached any raft log, nor ever will: it
//     is finished, so the propose loop skips it. Any other end of a write
//     before its apply is an unknown outcome (ErrTimeout,
//     ErrOutcomeUnknown: 504), or its real result if that came meanwhile.
//
// The answers by path:
//
//   - queued, or its hand-off to raftnode not done, when the store stops
//     or its node does: ErrStopped;
//   - canceled by its caller before a hand-off: context.Canceled;
//   - refused outright by raftnode when first proposed (ErrNoLeader,
//     ErrProposalDropped; ErrStopped: still in the leader's batcher when
//     the node stopped): that error, unless proposed again since;
//   - handed to raftnode, then the store stops, its node stops (this
//     member removed, a fatal error) or its caller cancels:
//     ErrOutcomeUnknown;
//   - its deadline passes: ErrTimeout;
//   - raftnode answers a timeout or an unknown outcome (it gave up or
//     stopped after handing the entry to raft), or refuses a retry: the
//     write keeps waiting, since a copy may still commit.
package kvstore
