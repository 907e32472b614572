// Package testcluster runs a raftkv cluster for end-to-end tests: as real OS processes,
// or, with Options.InProcess, as daemon.Members inside the test process.
//
// It owns: building the raftkv binary (BuildBinary, once per test process), picking free
// ports, the per-node data directories and log files under t.TempDir(), the node
// processes (or members) themselves, and a small HTTP client with deadlines for the
// raftkv client API (Put, Get, Delete, Status, membership). It talks to process nodes
// only through their command line, signals and HTTP, as a user would; the only raftkv
// packages it imports are daemon, for in-process nodes, faultproxy, internal/testutil,
// whose FreePorts and WaitFor it re-exports for the end-to-end tests, and internal/testcerts
// for Options.TLS (a cluster whose nodes serve https on both ports).
//
// In-process mode keeps everything real but the process: each node is daemon.Start with
// the configuration its command line would give (Options.Configure adjusts it), with its
// real WAL and snapshot files under t.TempDir(), real HTTP and rafthttp on free ports, and
// its log in the same node log file. Use it where a process adds nothing, such as tests
// of the HTTP API's behaviour; it needs no build and no fork, and the race detector sees
// the members directly. Keep processes wherever crashes, kill -9, signals or exit codes
// matter. It supports Stop (the member's own clean shutdown; its "exit status" is 0 after
// Stop or its removal, 1 after a fatal error, as cmd/raftkv's), Restart (a new member on
// the same data dir and ports), Wait, AddNode and the link faults of Options.Proxied.
// Kill, Pause and Resume need a process and fail the test at once; ExtraArgs and Binary
// do too, at Start.
//
// Nodes are addressed by their raft id, 1-based, the same number as the daemon's --id;
// node i is the i-th entry of every --cluster list. Ids are never reused: AddNode picks
// max+1, and a removed node keeps its id and its slot in the --cluster list.
//
// Lifecycle: Start builds (or reuses) the binary, starts N processes and returns without
// waiting for an election; call WaitLeader. Kill, Stop, Restart and Wait act on one node
// and must be called from the test goroutine (they may call t.Fatal). Put, Get, Delete,
// Do and Status are safe for concurrent use by many goroutines. A t.Cleanup registered by
// Start stops every running node (SIGTERM, then SIGKILL after a deadline) and reports as
// test errors: a node that did not exit 0 on SIGTERM, a node that died unexpectedly, and
// any "WARNING: DATA RACE" in a node log. If the test failed, it prints with t.Log each
// node's status as the test gave up, the tail of each node log, and a timeline merged
// from all of them: elections, leaders, rafthttp's links coming and going, membership,
// and the faults the test injected (SetLinks, Partition, Isolate, Heal, SetLoss, Kill,
// Stop, Pause, Resume, Blackhole), which the cluster writes into every node log as
// "=== testcluster:" lines.
//
// Goroutines: one per started process, waiting for it to exit; it ends when the process
// does. The cleanup waits for all of them before t.TempDir() is removed.
//
// Invariants:
//  1. Every wait polls with a deadline (testutil.WaitFor: checks at most 25ms apart);
//     nothing sleeps to synchronize.
//  2. Every HTTP request has a deadline, so a hung node fails a test instead of hanging it.
//  3. A node process never outlives its test: the cleanup kills it, and on Linux the
//     process gets SIGKILL if the test binary dies first (Pdeathsig).
//
// Faults: a Proxied cluster routes each peer link through a faultproxy, which
// cuts links by refusing and closing connections (Isolate, Partition, SetLoss);
// it forwards bytes, so with Options.TLS each link's TLS runs end to end.
// A Blackholable cluster runs each node under a user id of its own so that
// Blackhole can drop its peer packets silently with iptables, as a dead
// network does (blackhole.go); it needs root and iptables, which
// RequireBlackhole checks, skipping the test, or failing it where CI is set.
//
// The binary is built with -race when the test binary is. Set RAFTKV_BINARY to use a
// prebuilt binary instead, and RAFTKV_TESTCLUSTER_LOGS=<dir> to keep every node log.
// A package that uses testcluster should call Main from its TestMain so the built
// binary is removed at exit.
package testcluster
