// Package bench drives load against a raftkv cluster over its HTTP client
// API and measures it: throughput, a latency distribution and errors by
// class, and optionally that every acknowledged write can be read back.
//
// # What it owns
//
// The workload (modes put, get, mixed and delete; key choice, values, rate;
// and the data model's cas, txn, list and watch, below),
// a fixed pool of HTTP/1.1 keep-alive connections and the small client that
// speaks on them, the latency histogram, the preload and verify phases, and
// the report (text and one JSON line).
// cmd/raftkv-bench parses flags into a Config and prints the Result.
//
// # What it must not do
//
// It knows raftkv by its HTTP API (README.md, httpapi/doc.go), like any
// client, and imports only package client: a sharded run
// (Config.ConfigEndpoints) takes the config and each key's group from a
// client.Client, and still sends its requests over its own connections;
// a run with Config.ViaClient sends every request as a call of one
// client.Client instead (viaclient.go), to measure what a Go program
// using package client gets, its retries and net/http included.
// It parses no flags, never exits the process and writes nothing unless
// asked (Result.WriteText, WriteJSON).
//
// # Server CPU
//
// With Config.CPUMetrics (members' client URLs) or Config.CPUPids (local
// processes), Run reads the servers' user plus system CPU time just
// before and just after the measured phase (process_cpu_seconds_total of
// GET /metrics, or /proc/<pid>/stat), all servers at once, and the Result
// carries the sum of the differences (cpu.go); Result.CPUPerOp divides it
// by the successful requests. If any server cannot be read, or its
// counter went down (it restarted), the figure is unknown, never partial.
//
// # Sharded runs
//
// Before its first phase a sharded run fetches the config and builds a
// table from key number to group (client.Route of each key), and Conns
// connections per group spread over the group's members. Its requests
// carry X-Raftkv-Route: client, so a member that does not serve a key
// answers 421: the request counts as an error, and the run fetches the
// config again (at most once per 100 ms) and switches to the new table.
// Against routers (Config.Endpoints), a run needs none of this.
//
// # Requests
//
//	put     PUT /<key>, body the value; 204 is a success
//	get     GET /<key>, or GET /<key>?level=stale; 200 and 404 are successes
//	delete  DELETE /key/<key> (DELETE /<number> would remove a member); 204
//
// Key number i of the keyspace is i in decimal, zero-padded to the key size
// (Key). Each write sends fresh random bytes, a pure function of a seed that
// the verifier can regenerate, so values are never kept in memory.
//
// # Lifecycle and goroutines
//
// New validates the Config and builds the connection pool; Run runs once:
// preload (if asked, not measured), the measured phase, then verify (if
// asked). Each phase starts one goroutine per worker (Config.Clients) and
// waits for all of them before the next begins, so no goroutine outlives
// Run. Cancelling Run's context stops every phase; requests in flight are
// abandoned and not counted: each connection registers a context.AfterFunc
// that fails its request in flight, whose goroutine runs only when the
// context ends. Progress may be polled from another goroutine. Close closes
// the connections and unregisters those functions.
//
// # The client
//
// The load generator shares the CPU with the cluster it measures, so it
// spends as little per request as it can. Instead of net/http, each
// connection (client.go) writes its request head into a reused buffer and
// parses the answer's head in place from a bufio.Reader: no goroutine, no
// allocation per request. It speaks only what raftkv needs: one request at a
// time (no pipelining), answers framed by Content-Length, chunked encoding or
// the end of the connection, no redirects followed (a 3xx is an answer).
// Like net/http, it sends a request again on a new connection when a reused
// one broke before any byte of the answer: the server closed it while idle.
//
// # Data-model workloads
//
// RunData (data.go) runs the workloads of the data model, each in its
// own file, with its own DataConfig and DataResult, over net/http (their
// requests carry If-Match, JSON bodies and event streams the lean
// connection does not speak), and checks what they did:
//
//	cas    GET /<key> (value and ETag), then PUT /key/<key> with If-Match
//	       (If-None-Match: * when absent) of the value plus one: 204 a
//	       success, 412 a conflict; the counters must add up to the successes
//	txn    POST /txn: compare <p>{k}/a's mod index, put the counter plus one
//	       into <p>{k}/a and <p>{k}/b (one hash tag), get a on failure
//	list   walk a preloaded prefix in pages (GET /key?prefix=&limit=&continue=);
//	       each complete walk must return every key once, in order
//	watch  W watches (SSE) spread over the members, from the index of a write
//	       made before them, and a load of puts: every watcher must get every
//	       acknowledged write, in order, at its acknowledged index; latency is
//	       from a write's answer to each watcher's receipt
//
// A problem found fails the run (DataResult.Problems; exit 1).
//
// # Invariants
//
//  1. Nothing shared is locked on the hot path: each worker records latency
//     into its own Histogram and errors into its own map, merged after the
//     phase; Progress reads two atomic counters per worker.
//  2. At most Config.Conns connections are open at once (in a sharded run,
//     per group): there are exactly Conns conns, each bound to one endpoint
//     and holding at most one TCP connection (dialled again after an error), and worker i always uses
//     conn i mod Conns. Workers that share a conn queue for it in order, and
//     the wait is part of their latency, not of their Config.Timeout.
//  3. With Config.Rate, request n is due at start + n/Rate, whichever worker
//     sends it, and its latency counts from then: a stalled server is
//     charged for the requests it delayed (no coordinated omission).
//  4. Only successful requests enter the latency histogram; every other
//     request counts once in Result.Errors, by HTTP status or transport
//     error class.
//  5. With Config.Verify each worker writes only its own keys, one request at
//     a time, so the last acknowledged value of every key is known. A key
//     passes if a linearizable read returns that value or the value of a
//     write to it whose outcome is unknown (an error, which may still be
//     applied); a 404 for an acknowledged key is a lost write.
package bench
