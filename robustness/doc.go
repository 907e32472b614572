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
// /debug/state) and ScanLog (panics, fatal errors, data races). Report
// gathers them and writes a one-paragraph verdict.
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
// The short tier runs in every `go test ./...` (-short skips it). The long
// tier runs every fault with RAFTKV_ROBUSTNESS_SEEDS seeds (default 8) on 5
// nodes, the combined faults, and disk-full when it can mount a tmpfs.
// The sharded histories (sharded_test.go) send the same workload through
// routers to a sharded deployment while groups join and leave and buckets
// move under faults: one cycle in the short tier (TestShardedMigrations,
// and its negative control on a raftkv_broken_fence build), four cycles
// with each seed in the long tier (TestLongSharded). A
// failed history keeps porcupine's visualization (history.html), the
// recorded history (history.json), node logs and data dirs under
// $RAFTKV_ROBUSTNESS_ARTIFACTS (default <tmp>/raftkv-robustness/), and
// prints the folder.
//
// # What it must not do
//
// It must not import any raftkv package nor testcluster: it talks to members
// only over HTTP, as any client would, so it can check a cluster it did not
// start.
//
// # Goroutines
//
// Workload.Run starts Config.Clients goroutines and returns when they have
// all finished: after its context is done and each has completed the
// operation in flight. CheckDurability runs a few readers and waits for
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
//     a read of a write answered 503 makes the history illegal.
//  4. A check that cannot decide (porcupine timed out) is a failure.
package robustness
