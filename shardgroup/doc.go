// Package shardgroup moves a shard group of a sharded raftkv deployment
// from config to config, as MIT 6.824's shardkv does: its Driver takes
// each new shardmap.Config from the config group through the group's own
// raft log, pulls the buckets the group gains from their previous owners,
// and has those owners delete their copies; its Handler serves the other
// side of those pulls and deletes (/shard/pull, /shard/delete) and the
// group's state for other groups (/shard/state) on every shard member's
// client port.
//
// # What it owns
//
// The decisions (plan.go: which bucket needs what, from whom, when to take
// a config), the leader's loops that carry them out (driver.go), the HTTP
// calls to the config group and to other groups (remote.go), and the
// migration endpoints (handler.go). It must not decide anything from
// local, unreplicated state: every decision is a pure function of the
// replicated ShardState, and every change goes through the group's log
// (the Store's calls), so a crash or a leader change at any point resumes
// from where the log says the group is. It declares the small Store it
// needs (kvstore.Store in shard mode, through daemon's adapter) and never
// imports kvstore or raftnode.
//
// # The protocol, step by step
//
// Group A held bucket b in config V-1; config V gives b to group B. Every
// arrow that changes state is one entry of that group's log; every HTTP
// call is retried (on another member, after a backoff) until it succeeds.
//
//	config group        group A (old owner)               group B (new owner)
//	------------        -------------------               -------------------
//	1. Join/Leave/Move
//	   appends V
//	                    2. leader: GET /config?version=V  2. leader: GET /config?version=V
//	                       (long poll, only when settled)    (long poll, only when settled)
//	                    3. ProposeConfig(V): b Serving     3. ProposeConfig(V): b NotOwned
//	                       -> BePulling (frozen: no reads     -> Pulling (reads and writes
//	                       or writes; A takes no config       of b wait, then 503
//	                       until b is gone)                   bucket_moving)
//	                                                       4. GET A/shard/pull?bucket=b&version=V
//	                    5. ExportBucket(b, V): 409
//	                       not_ready until A applied V;
//	                       then b's keys and dedup table
//	                                                       6. InstallBucket(b, V, data):
//	                                                          Pulling -> GCing (B serves b)
//	                                                       7. POST A/shard/delete?bucket=b&version=V
//	                    8. DeleteBucket(b, V):
//	                       BePulling -> NotOwned; 204
//	                                                       9. FinishGC(b, V): GCing -> Serving
//	                    10. settled: polls for V+1         10. settled: polls for V+1
//
// A bucket that comes from nobody (group 0, or the first config) goes
// straight to Serving, empty, at step 3: there is no one to pull from.
// A group takes V+1 only when settled (every bucket Serving or NotOwned),
// so A cannot move past V while b is BePulling, and B pulls b at exactly
// the version A froze it at.
//
// The auto-join: the first time a group's leader finds the replicated
// Joined flag false, it asks the config group to Join{G: the client URLs
// its members published} (waiting up to JoinGrace for every member's)
// with X-Client-ID raftkv-group-G and one sequence number for all the
// retries of that request, then proposes MarkJoined. A leader that finds
// its group in the latest config with exactly those URLs already (the
// leader before it joined, then lost its leadership or crashed before
// MarkJoined) proposes MarkJoined without asking: its request would have a
// seq of its own and make a config version with the same layout. Leave
// is an operator's call, never the driver's.
//
// MarkJoined carries the last config before the one the join made (or
// found) that does not list the group, and the group, owning no bucket,
// takes it as its applied config at once; until then it takes no config
// that lists its id. A new group may have the id of a group that left
// (from empty data dirs: another log), and the configs that listed the
// group that left are not its own: taking them, it would serve that
// group's buckets empty, then give them away to groups long past that
// config, and never reach its join. The other way round, a group that
// left and still runs takes no config that lists its id with none of
// its members' URLs (takenID): that is a new group's, not its own.
//
// # Choices where the contract is silent
//
//   - Pulls and deletes go to the old owner's members as listed in the
//     previous config (Prev), not the current one, where a group that
//     left is absent. Each bucket's tries start at a different member
//     (bucket mod members) and move to the next on any failure.
//   - A GCing bucket whose old owner has left the config and has not
//     answered deletes for GCGiveUp (2 minutes) is finished without it,
//     so that a group shut down after leaving does not stop the new owner
//     from taking later configs. The old owner, started again with its
//     data, would then hold the bucket BePulling for ever and take no
//     config, so the leader of a group that holds buckets BePulling asks
//     the groups each bucket went to since (AskGroupState), every
//     ReleaseCheck (30 s), and deletes its own copy of a bucket one of
//     them installed: at the config that gave it the bucket with the
//     bucket no longer Pulling, or past that config (release.go). Any
//     group down the line will do, up to a move to or from no group,
//     since each pulled from the one before it, and the first from this
//     group. Past that config does not count when the group's id left
//     the config after it and a later config, up to the latest, lists it
//     again, and the group is at or past that gap: a new group of the
//     same id, which never held the bucket, would say the same. When an
//     answer shows a history other than the config group's (the config
//     group alone restored from a backup: a group past its latest, or
//     whose config of its version is not the config group's, by
//     ShardStatus.ConfigDigest or the buckets it holds),
//     or the config group's config of the group's own version differs
//     from the group's, nothing is judged. These checks are best effort:
//     a rewritten history is not always visible in them.
//   - A group takes config V+1 only while the config group's config V is
//     the one it applied (followsOwn), so that a config group restored
//     alone from an older backup, whose new configs reuse versions the
//     groups took with other layouts, moves no group past the restore
//     point onto a history it did not take. A group at or before that
//     point takes the new configs as any; a restored config group's first
//     start refuses while a group it can ask is past it or holds another
//     config of that version (CheckConfigRestored), and otherwise the
//     config group is restored only with the shard groups.
//   - The join's URLs are the members' published client URLs; a member
//     that never published one within JoinGrace is left out, and may be
//     added by an operator's Join with all of them.
//
// # Goroutines
//
// Start starts run, which checks leadership every PollInterval. While
// the member leads, run starts four loops and waits for them: joinLoop
// (ends once Joined), configLoop, migrateLoop, which starts one worker
// per bucket in Pulling or GCing, at most Parallel of them trying at
// once, and releaseLoop. When the member stops leading or Stop is called, run cancels
// their context and waits for every one to return; Stop then returns.
// The Handler has none: it runs in the HTTP server's goroutines.
//
// # Invariants
//
//  1. The driver proposes config V+1 only when the state it read is
//     settled at V, and only the config the config group answered for
//     V+1 with the group's bucket count; the Store applies it only if
//     that still holds when the entry applies.
//  2. Every Store call and HTTP request has a deadline (RequestTimeout,
//     PullTimeout, LongPoll plus RequestTimeout), and is canceled when the
//     member stops leading or the driver stops.
//  3. Every step names the config version it is fenced by; a step whose
//     version is no longer the applied one is dropped, not retried.
//  4. Every step is idempotent: repeating it, on any member, after any
//     crash, changes nothing that it has already changed.
//  5. A bucket is served by at most one group at any config version: B
//     serves b only after InstallBucket at V, and A stopped serving it
//     when it applied V (BePulling), before it could export it.
//
// # Trust
//
// The migration endpoints are unauthenticated, like the rest of the
// client port: anyone who can reach it can export a BePulling bucket or
// delete it once its version is applied. Run raftkv on a trusted network.
package shardgroup
