// Package robustness checks raftkv's guarantees from the outside: it drives a
// concurrent client workload against a cluster's members over HTTP, records
// every operation in a History, and checks the history.
//
// # What it owns
//
// The workload (Workload, Config), the HTTP client that classifies outcomes
// (Client), the recorded history (History, Op, Note), the sequential model
// of a key for porcupine (Model, PorcupineOps), and the checkers:
// CheckLinearizable (porcupine, per key, with a timeout that counts as a
// failure), CheckDurability (the write-once key family: nothing
// acknowledged lost, nothing never written present), CheckConvergence
// (every member reaches the same applied index and state hash on GET
// /debug/state), CheckWatch (a WatchLog, a watch of the workload's keys
// through the Go client opened before the workload, delivered every
// acknowledged put at its index, in order, each value once and none of
// a put answered as not applied, and its events give the state read at
// the end; CheckRoutedWatch, the same through routers, key by key in
// real-time order) and ScanLog (panics, fatal errors, data races). Report
// gathers them and writes a one-paragraph verdict.
//
// The versioned workload (VersionedWorkload, VersionedConfig) drives the
// data model's conditional writes and transactions; Client.DoVersioned
// sends them with their exactly-once identity and retries an unknown
// outcome under it; CASModel and TxnModel, with CheckCAS and CheckTxn,
// check what it recorded (see The versioned models).
//
// The fault-injecting tests live in this package's _test files and run
// real processes through package testcluster; cmd/raftkv-check runs the
// same workload and checkers against a cluster that is already running.
//
// # Running it
//
//	go test -race ./robustness/                       # short tier: one history per fault, 3 nodes
//	go test -race -run 'NegativeControl|Mutated' ./robustness/
//	RAFTKV_ROBUSTNESS_LONG=1 go test -race -timeout 90m -run TestLong ./robustness/
//	go run ./cmd/raftkv-check --endpoints http://127.0.0.1:12380,... --duration 30s
//
//	go test -race -run 'TestVersioned|BrokenCAS|CASModel|TxnModel' ./robustness/
//
// The short tier runs in every `go test ./...` (-short skips it). The long
// tier runs every fault with RAFTKV_ROBUSTNESS_SEEDS seeds (default 8,
// counted from RAFTKV_ROBUSTNESS_FIRST_SEED, default 1) on 5 nodes, the
// combined faults, and disk-full when it can mount a tmpfs.
// The sharded histories (sharded_test.go) send the same workload through
// routers to a sharded deployment while groups join and leave and buckets
// move under faults: one cycle in the short tier (TestShardedMigrations,
// and its negative control on a raftkv_broken_fence build), four cycles
// with each seed in the long tier (TestLongSharded); the last group that
// left is followed by a new group under its id (and so is every even
// cycle's join in the long tier). Beside that workload,
// the versioned workload's CAS register and transaction clients go
// through the same routers, checked by CheckCASAcrossGroups and
// CheckTxnAcrossGroups, and while a migration is stuck, each of the two
// buckets it moves gets a workload of its own (four clients, sixteen
// keys whose {tag} hashes to it). A failed history keeps porcupine's
// visualization (history.html), the recorded history (history.json),
// node logs and data dirs under $RAFTKV_ROBUSTNESS_ARTIFACTS (default
// <tmp>/raftkv-robustness/), and prints the folder.
//
// TestVersioned runs the versioned workload through five faults in one
// history (leader killed, paused, isolated, every member killed, random
// loss), TestNegativeControlBrokenCAS on members built with
// raftkv_broken_cas, and TestLongVersioned (long tier) nine faults on 5
// members and repeated kills of one member, with each seed.
//
// # The versioned models
//
// CASModel is a register per key whose state is (value, mod index) or
// absent; TxnModel is the state of a group of up to MaxTxnKeys keys
// (Input.Key names the group, its keys are TxnKey(group, i)), each
// (value, mod index) or absent. A put sets the key's mod index to the
// version its answer reported (a PUT's ETag, a transaction's "mod_index";
// an answer without one, its raft index: X-Raft-Index, a transaction's
// "index"); an If-Match write is legal iff
// the key is at that mod index (0: absent), a 412 iff it is not and the
// 412's ETag names the version it is at; a get must return the value and
// ETag of the state. Mod indexes are the cluster's, so the models take
// them as data, not as something they compute.
//
// Within one raft group, indexes also order operations: a write (or 412,
// or transaction) at index i sits at position 2i, a read served at index
// r (its X-Raft-Index) at 2r+1, after every write of index r; a key's
// operations must be linearized at positions that never go back (not
// across groups: CheckCASAcrossGroups and CheckTxnAcrossGroups clear the
// indexes, so real time alone orders them). Writes batched into one raft
// entry share an index and may be linearized in any order among
// themselves, which is the order the entry applied them in.
//
// A write of unknown outcome (porcupine's pending operation: it returns
// after everything, so it may take effect at any point after its call, or
// never) has no index the client learned. The models give the version it
// writes an unknown index, bounded below by the position where it was
// linearized, tagged with the write (Input.ID): the first operation that
// observes that version's index (a get's ETag, a 412's ETag, an If-Match
// write that succeeds on it, a transaction's get or mod compare) pins it,
// on every key the write wrote, and later observations must agree. Until
// pinned, a mod compare on it can go either way, so an If-Match write or
// transaction of unknown outcome on such a version has two successor
// states; the models are porcupine NondeterministicModels, checked through
// their power set, and the sets stay small because the workload retries
// unknown outcomes under the same X-Client-ID/X-Client-Seq and most are
// settled. Not recorded, so weaker than exact: an unknown index's upper
// bound (the next index linearized after it) and a failed compare's
// "not this index". CASOps and TxnOps leave out unknown writes nothing
// could observe (a put whose value no read returned on a key where every
// version seen is a known write's; a delete after whose call the key was
// never seen absent; a transaction that writes in neither branch).
//
// # What it must not do
//
// It must not import any raftkv package nor testcluster: it talks to members
// only over HTTP, as any client would, so it can check a cluster it did not
// start.
//
// # Goroutines
//
// Workload.Run starts Config.Clients goroutines, VersionedWorkload.Run one
// per CAS and transaction client, and each returns when they have all
// finished: after its context is done and each has completed the
// operation in flight (with its retries). CheckDurability runs a few readers and waits for
// them. Nothing else starts goroutines.
//
// # Invariants
//
//  1. Every write writes a value never written before (client number and
//     sequence), so a read names the one write it observed.
//  2. Every request has a deadline (Config.RequestTimeout), and it is not
//     cut short when the workload stops, so stopping creates no unknown
//     outcomes.
//  3. An operation is recorded only with what the client learned: a write
//     that got no definite answer (504, another 5xx but 503, no response)
//     is unknown (it may take effect at any time after its call); a write
//     never sent or refused with 4xx or 503 ("not applied, retry"), and a
//     read without an answer, are failed and take no part in the check, so
//     a read of a write answered 503 makes the history illegal. A 412 to
//     a conditional write is an answer (nothing changed, the key is at the
//     ETag's version) and is checked. A retry under the same identity
//     settles an unknown outcome only with a definite answer; a 503 or
//     4xx to a retry leaves it unknown.
//  4. A check that cannot decide (porcupine timed out) is a failure.
package robustness
