// Package kvstore is the replicated key-value state machine on top of
// raftnode: it encodes writes into raft entries (gob), applies committed
// entries to in-memory B-trees, one per bucket of the key space, answers
// the writers waiting for them, serves reads at a stated consistency, and
// produces and restores snapshots. For sharding it is also the state
// machine of a shard group member (the buckets its group serves, and
// their migrations) and of a config group member (the list of configs).
//
// It must not touch disk or the network itself; raftnode owns both. It
// decides nothing by clock or map order at apply: every member that
// applies the same entries holds the same state.
//
// # Modes
//
// Config.Group and Config.ConfigGroup choose what a store is:
//
//   - a plain member (neither): today's single group; it serves every key;
//   - a shard group member (Group != 0): it serves the keys of the buckets
//     its applied config gives its group (see Shard groups);
//   - a config group member (ConfigGroup): its state is a
//     shardmap.History, changed by ConfigOp and read by QueryConfig; it
//     stores no keys and refuses key reads and writes (ErrNoKeys).
//
// # Buckets
//
// The key space is split into Config.Buckets buckets (shardmap.BucketOf:
// CRC32 of the key or its {tag}, modulo the count). Each bucket's keys
// live in a tree of their own, beside the bucket's dedup table, so that a
// bucket is exported, installed and dropped whole. A plain member has one
// bucket by default and computes no hash. Digest merges the buckets in
// key order, so it is the same for the same keys whatever the bucket
// count. Every member of a raft group must use the same bucket count,
// group and dedup bounds: a snapshot of another kind of store is refused
// (ErrSnapshotMismatch).
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
// proposal without telling anyone, and so is every waiting request as soon
// as raftnode learns of a new leader (a leader that is gone takes what was
// forwarded to it along).
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
// decodes it alone. A request is a write of keys, or a control operation
// (a shard group's config and bucket steps, a config group's operation)
// with no keys. Entry types hold no map: gob sizes a map by the count its
// input claims before reading it, so configs travel in a binary form
// whose counts are bounded by the entry's length (confcodec.go). The
// propose loop keeps one gob encoder primed, and the apply loop one gob
// decoder per type preamble (two per writer binary: a batch of plain
// writes is written as a plainBatch, whose preamble is a third of
// batch's), fed only each entry's value message. A hand-written decoder
// of this binary's own entries was measured against it and removed: at
// 64 clients the end-to-end difference in throughput and member CPU per
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
// # Exactly once across a client's retries
//
// The session guards against this member's own re-proposals. A client
// that retries a write (through another member, after a timeout) is
// another request; Write's WriteOptions{ClientID, Seq} make it the same
// one. At apply, in this order:
//
//  1. the session check above;
//  2. on a shard group member, the bucket fence (see Shard groups);
//  3. with a client id: (ClientID, Seq) is looked up in the dedup table of
//     every bucket the write touches. Found: the write is not applied and
//     is answered with the stored result (Result.Duplicate, the index of
//     its first apply). Below the floor of the client's window (a seq
//     that may have been applied and forgotten since): ErrSeqTooOld, an
//     unknown outcome, nothing applied now;
//  4. the write applies, and its result is recorded in the dedup table of
//     every bucket it touches.
//
// A bucket's table keeps, per client, the results of its DedupWindow
// (1024) highest seqs, and the floor below which it forgot some; at most
// DedupClients (10000) clients, the one with the lowest raft index of its
// last write (then the lowest id) evicted first. A client evicted is
// forgotten: a retry of one of its writes applies again. Tables are
// copy-on-write like the trees, move with their bucket, and are part of
// every snapshot. A refused write (fenced, too old) is recorded nowhere,
// so its retry is judged again. A write of this member's own that a
// snapshot covers (this member caught up past it by one) cannot tell
// which of these became of it unless it is a plain write on a plain
// member, which always applies: it is answered ErrCoveredBySnapshot (an
// unknown outcome), and its retry with the same seq learns the answer.
//
// # Transactions
//
// Txn is one request of one entry: its compares are decided at apply on
// the state before it (an absent key has CreateIndex and ModIndex 0, and
// no compare of its value holds, as in etcd), then the operations of the
// branch taken apply in order, each seeing those before it, at the
// entry's raft index. It is fenced like a write, on every key of its
// compares and of both branches (the branch not taken included), and is
// exactly-once the same way: the dedup table keeps its result (which
// branch, and its gets' versions; their values up to 512 bytes in all,
// else a retry reads them back while the keys are still at those
// versions, and is answered ErrTxnResultNotKept once one changed). At
// most MaxTxnCompares compares and MaxTxnOps operations per branch.
//
// # Shard groups
//
// A shard group member keeps beside its keys the config it applied, the
// one before it, and each bucket's status (6.824 shardkv's design):
//
//	NotOwned   the config gives the bucket to another group; no keys here
//	Serving    served here
//	Pulling    given to this group; its data is on its way from the old owner
//	BePulling  given away; its data is frozen here for the new owner
//	GCing      installed and served here; the old owner must still delete it
//
// The transitions, each an entry applied only at exactly its config
// version and in the status it needs; an entry whose step is done or past
// is answered nil and changes nothing, any other changes nothing and says
// why (ErrNotReady, ErrNotSettled, ErrBucketState), so a driver may repeat
// any step after a crash or a leader change:
//
//	ProposeConfig(c)  applies iff c.Version is the applied version + 1 and
//	                  every bucket is Serving or NotOwned (settled); then,
//	                  per bucket, owned before and after: Serving; newly
//	                  owned: Serving (empty) if nobody owned it, else
//	                  Pulling; given away: BePulling; else NotOwned
//	InstallBucket     Pulling -> GCing, the bucket's keys and dedup table
//	                  becoming those exported by the old owner
//	DeleteBucket      BePulling -> NotOwned, keys and table dropped
//	FinishGC          GCing -> Serving
//	MarkJoined(from)  Joined = true (the group asked to join once); and,
//	                  if the group owns no bucket, the applied config and
//	                  Prev become from (the last config before the join
//	                  that does not list the group) unless it is older
//
// ExportBucket is not an entry: after a ReadIndex wait it hands out a
// copy-on-write clone of a bucket that is BePulling at exactly the asked
// version (ErrNotReady before, ErrBucketGone otherwise). ShardChanged is
// closed at every change of this state.
//
// A write applies only if every key's bucket is Serving or GCing in the
// applied state; otherwise it is refused whole, not applied: a
// *WrongGroupError (the bucket, the config version, its owner and servers)
// or ErrBucketMoving for a bucket being pulled. Before proposing, a write
// checks the same against the local state: it returns the WrongGroupError
// at once and waits (bounded by its context) while a bucket is Pulling,
// answering ErrBucketMoving (nothing proposed) at the deadline. A read
// makes the same check after its ReadIndex wait, under the lock it reads
// under, and waits the same way.
//
// # Config group
//
// ConfigOp (exactly one of join, leave, move) is one entry, applied with
// shardmap's functions to the latest config and appended to the history;
// an operation shardmap refuses appends nothing and is answered with its
// reason (wrapping shardmap.ErrInvalid, a bad request). With a client id
// and seq it is exactly-once, from one dedup table: a retry is answered
// with the config it produced. QueryConfig reads a version, linearizably
// unless stale; WaitConfigVersion long-polls for one.
//
// # Reads
//
// Get states its consistency in ReadOptions. By default it is
// linearizable: raftnode.ReadIndex (shared rounds, no disk write) then a
// wait until applied >= that index. Stale reads the local map. MinIndex
// first waits until this member applied that index (read-your-writes).
//
// # Listing
//
// List reads a range of keys (a prefix, or [Start, End)) after the same
// barrier as Get, all of one applied state: a short page (a Limit of at
// most 1024) is collected under the read lock, a longer one from
// copy-on-write clones of the trees taken under the lock, so applying
// goes on while it is read. Values are shared with the state; the caller
// encodes them after the lock is released. The buckets are merged in key
// order. A shard group member lists only the buckets it serves, waits
// while one is Pulling, and refuses with a *WrongGroupError (Bucket -1,
// AskedVersion set) a listing whose ConfigVersion is not the applied one.
//
// DeleteRange deletes a range of keys in one entry (request.Range), with
// a delete event for each; on a shard group member it is fenced as a
// listing is, at apply too, and deletes only the buckets the group serves.
// It keeps no dedup entry: it is not exactly-once.
//
// # TTL
//
// A put with Op.TTL (or TxnOp.TTL) gives its key a time to live, kept
// with the key (KeyValue.TTL, in snapshots); a put without one makes the
// key permanent again. No member decides an expiry from its own clock at
// apply: every member queues each key with a TTL in memory, due TTL
// after the moment it applied the write (monotonic clock); only the
// leader acts on the queue (expireLoop, every Config.ExpiryTick), by
// proposing OpExpire{Key, IfModIndex} for keys past their deadline. The
// state machine deletes the key only if it is still at that ModIndex (a
// refresh or any other write since wins), as an EventExpire, on a shard
// group member only in a bucket it serves. A member that becomes leader
// re-bases every deadline to now + TTL first, as etcd's lessor extends
// its leases on promotion, so a leader change never expires a key early;
// it may live up to one TTL longer. An expiry whose entry is lost is
// proposed again after 2s. The queue is not in snapshots: a restore or
// an installed bucket queues its keys with a TTL from that moment. A
// queued entry is dropped when it comes due and its key changed since.
//
// # Watch
//
// The apply loop records each change it makes as an Event: a put, a
// delete of a key that was there, an expiry, and on a shard group member
// the bucket markers (EventBucketOut when a config takes a bucket away,
// EventBucketIn when one is installed, or given from nobody) and, after
// the last of them, EventGroupLeft when a config no longer lists the
// member's group; installing
// or dropping a bucket's keys makes no key events. An event's ModIndex is
// its raft index (after a bucket came from a group with a longer log, it
// can be below the key's version, invariant 10) and Pos its place among
// that index's events, so
// (ModIndex, Pos) is the same event on every member. The events of one
// raft index are added to the window together, after its state.
//
// The window holds the latest Config.WatchWindow events and
// WatchWindowBytes bytes. It is not in snapshots: it starts empty at a
// restored index (at boot, or when a snapshot from the leader is
// installed). A Watch from an index the window no longer covers gets a
// *CompactedError with the oldest index it does (HTTP 410). Each Watcher
// has a goroutine that reads the window from its position, filters, and
// sends to a channel of 128 events, so the window is its buffer: a
// watcher that falls out of it ends with ErrWatcherTooSlow, and one still
// owed events up to a snapshot installed meanwhile ends with the
// *CompactedError. Either way it delivered every event up to then in
// order, with no gap, and its client resumes with FromIndex and AfterPos
// from the last event it got, on any member. Progress is the index up to
// which it delivered everything, for heartbeats. A watcher ends with its
// context, or with ErrStopped when the store stops.
//
// # Snapshots
//
// Each bucket's keys are a copy-on-write B+ tree of its own (tree.go)
// whose items carry the first 8 bytes of their key as an integer, so a
// lookup compares mostly integers in the node, and whose nodes stay full
// under a load of ascending keys, where google/btree's stay half full.
// Snapshot clones every bucket's tree and dedup table (O(buckets)) and
// returns a function that streams the clones in a checksummed binary
// format (snapshot.go, format 3: mode, buckets, sessions, shard state or
// config history, and per bucket its keys with their CreateIndex,
// ModIndex and TTL, and its dedup table with transactions' results) while
// applying goes on, letting go of each leaf once it is written. restore
// reads that format back from the data file raftnode names in a Commit,
// and formats 1 and 2 of older releases, whose keys come back at version
// 0 (as their entries left them) with no TTL; a corrupt file, or one of
// another mode, group or bucket count, stops the member (the apply loop
// panics with what differs). Bucket data (an exported bucket) carries the
// same per key, in its form 2; form 1 is read the same way.
//
// A hash request (HashKV, hash.go) captures the state as Snapshot does
// when its entry applies, and hashes it in that format in the background:
// members that applied the same log answer HashAt(index) alike.
//
// # Goroutines
//
// applyLoop consumes raftnode's Commits until raftnode closes it;
// proposeLoop and expireLoop run until Stop; each Watcher's goroutine
// runs until its context ends, the store stops, or it cannot go on (see
// Watch); each hash request's goroutine until its hash is written, one
// at a time.
//
// # Invariants
//
//  1. Entries are applied in log order, each request atomically.
//  2. A waiter is answered only after its request is applied on this member.
//  3. A request is applied at most once, however often it was proposed.
//  4. Snapshot encodes the state as of the last commit reported Applied.
//  5. A write ends in "not applied" (an error a client gets as 503 or
//     4xx: ErrStopped, a raftnode refusal, a cancellation,
//     ErrEmptyRequest, ErrNoSpace) only if no entry carrying it reached
//     any raft log, nor ever will: it is finished, so the propose loop
//     skips it, or its entry applied and refused it (a WrongGroupError,
//     ErrBucketMoving, ErrNoKeys). Any other end of a write before its
//     apply is an unknown outcome (ErrTimeout, ErrOutcomeUnknown,
//     ErrCoveredBySnapshot, ErrSeqTooOld: 504), or its real result if
//     that came meanwhile.
//  6. A write with a client id is applied at most once per (client, seq)
//     while the client is among the DedupClients most recently written of
//     each bucket it touches; a retry is answered with the first result.
//  7. Every key is in the tree of its own bucket. On a shard group member a
//     write applies only if each of its keys' buckets is Serving or GCing
//     in the state it applies to, and a NotOwned bucket holds no keys.
//  8. A shard group's config moves one version at a time, only when every
//     bucket is Serving or NotOwned; a bucket's status changes only along
//     the transitions above, each at exactly one config version, so a
//     repeated or late step changes nothing.
//  9. Nothing at apply depends on a clock, map order, or the member: the
//     same entries give the same keys, versions, TTLs, dedup tables,
//     statuses, configs and events. (The expiry queue's deadlines are
//     of the member's clock, but only decide when the leader proposes an
//     OpExpire; its apply depends on the key's version alone.)
//  10. A key's ModIndex names one value of it: in entries of
//     batchFormatUniqueVersions each request gets versions of its own,
//     and a request that writes a key twice gets another for the second
//     write, so no write, answer, get or event gives one version to two
//     values of a key; a Txn or OpExpire conditional on a ModIndex applies
//     to that value or not at all. A key's versions only grow, across
//     bucket moves and deletes too: a request's first write to a bucket
//     gives the raft index, or one past the bucket's floor (the greatest
//     version it held, in this group or where it came from) when that is
//     not below it (versionLocked); the floor moves with the bucket and
//     is in snapshots. So a version seen once never names another value
//     later, and CreateIndex <= ModIndex. (Entries of the older format
//     gave every write of one index to one bucket one version; readers
//     still never saw the first of two such writes, as every write of
//     one raft index applies under one hold of the lock, but the first
//     one's answer named the second one's version.)
//  11. A Watcher delivers, from its start, every event it chooses that
//     this member applied, in (ModIndex, Pos) order, with no gap and no
//     duplicate, up to where it ends; (ModIndex, Pos) names the same
//     event on every member.
//  12. DataBytes is the sum of itemSize over the keys of every bucket
//     (each tree's bytes, added to the store's total by its sink; a
//     bucket replaced whole goes through setBucketLocked).
//     Config.QuotaBytes refuses, before proposing, a write whose puts
//     would pass it, except a retry the dedup table already answers;
//     nothing is checked at apply, so members may differ in it.
//
// The answers by path:
//
//   - while it waits for this member to learn the cluster level, before
//     anything is queued (awaitClusterLevel): raftnode's ErrNoLeader or
//     ErrStopped, ErrLevelUnconfirmed when a leader is known but no
//     quorum answered, ErrStopped when the store stops, or as below for
//     its deadline and a cancel;
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
//
// # Negative controls
//
// Two build tags make deliberately broken stores that the tests must
// catch: raftkv_brokenreads serves linearizable reads from local state
// without ReadIndex; raftkv_broken_fence skips the version and status
// checks of ExportBucket, InstallBucket and DeleteBucket and the bucket
// fence of writes at apply.
package kvstore
