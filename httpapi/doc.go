// Package httpapi is raftkv's client-facing HTTP wire layer.
//
// # What it owns
//
// Routing, request decoding and validation (keys, values, member ids, peer
// URLs), size limits, the per-call deadline, and the mapping from errors to
// HTTP status codes, for three dialects: etcd's raftexample (/<key>, /<id>),
// raftdb and hraftd (/key, /key/<key>, /join, read levels), and operator
// endpoints (/status, /health, /metrics, /debug/pprof/, /snapshot). Admin
// routes (Route.Admin: today GET /snapshot) hand out the whole state: they
// are served only when configured, each request is logged with its remote
// address, and Config.Admin restricts them to admins' TLS client
// certificates (see Admin requests). New builds the
// http.Handler; NewServer serves it with timeouts (see Server).
//
// # What it must not do
//
// It must not import raftnode or kvstore: it declares the small Store and
// Cluster interfaces it needs, and classifies their errors by behaviour
// (methods such as NotFound() bool), never by identity. The handler holds
// no state between requests but the count of requests in flight, starts no
// goroutines, never logs values and never redirects: paths are not cleaned,
// so "a//b" and "x/../y" are keys as written.
//
// # Serving
//
// NewServer's Server reads GET and PUT of /<k> on its own HTTP/1.1 loop,
// one goroutine per connection, and answers them through the handler's
// code: the same checks, limits, in-flight count and error answers, byte
// for byte, but without net/http's per-request goroutine, context and
// header map, which cost more CPU than the rest of serving such a request. It serves only
// the plainest form of those requests (see parseHead); the first request
// of a connection that is anything else, or whose head does not arrive
// whole in one read, hands the connection, with the bytes already read,
// to a net/http server for good. Of the headers it uses Content-Length,
// Accept (whether errors are to be answered in JSON), X-Raftkv-Route,
// X-Client-ID and X-Client-Seq, and checks the rest.
// One difference remains: a call on the fast path is not canceled when its
// client disconnects; it ends when the call does, within RequestTimeout.
//
// # Routes
//
// Config.Routes, other packages' endpoints mounted on the client port (a
// config group member's /config, a shard member's /shard/), are
// dispatched before anything else. Reserved paths are dispatched next; every other path is a raftexample
// key, its name being r.URL.Path (percent-decoded, so "/a%2Fb" and "/a/b"
// both name key "a/b") without the leading "/". Keys may contain "/" and
// any byte; values are arbitrary bytes.
//
//	GET|HEAD /status    200 JSON Status from Cluster.Status; "progress" only on the leader,
//	                    "config" only on a config group member, "shard" only on a
//	                    shard member
//	GET|HEAD /health    200 {"health":"true","reason":""} if Cluster.Health is nil,
//	                    else 503 {"health":"false","reason":"<error>"} (JSON, one line)
//	GET|HEAD /metrics   Config.Metrics; 404 "metrics are not enabled" when nil
//	GET|HEAD /debug/pprof/...
//	                    net/http/pprof (index, cmdline, profile, symbol, trace and
//	                    named profiles; symbol also takes POST) when Config.Pprof,
//	                    else 404
//	POST     /key       raftdb write: body {"k1":"v1","k2":"v2"}, applied atomically
//	                    by one Store.PutAll; 204 with X-Raft-Index. With
//	                    ?encoding=base64 each value is standard padded base64
//	                    and the bytes it encodes are written
//	GET|HEAD /key/<k>   200 JSON {"<k>":"<value>"} (raftdb form); with
//	                    ?encoding=base64 the value is standard padded base64;
//	                    404 if absent; 406 if the value is not UTF-8 and
//	                    base64 was not asked for, or if the key is not UTF-8
//	PUT      /key/<k>   body is the value; as PUT /<k>
//	DELETE   /key/<k>   204 with X-Raft-Index; an absent key is also 204
//	POST     /join      raftdb/hraftd join: {"id":4,"raftAddr":"host:port"} or
//	                    {"id":"4","addr":"host:port"}; as POST /<id>; with
//	                    "learner":true as POST /<id>?learner=true
//	GET|HEAD /debug/state
//	                    200 JSON Digest from Store.Digest: applied index, key count
//	                    and a hash of the state, for convergence checks
//	POST     /debug/hash
//	                    Store.HashKV: a hash check (an admin request); 200
//	                    {"index","keys","hash"}, this member's hash at its index
//	GET|HEAD /debug/hash?index=N
//	                    Store.HashAt: this member's hash at N once it applied N;
//	                    404 hash_not_kept when it keeps none there
//	/debug /debug/...   reserved: 404 (including /debug/pprof without the slash)
//	GET      /snapshot  Config.Snapshot: a backup of the whole state (an admin
//	                    route, SnapshotRoute), streamed as application/octet-stream
//	                    with X-Raft-Index and X-Raft-Term (chunked, unless small);
//	                    level and min_index as for reads (see Read levels; the
//	                    default holds every write acknowledged before the request).
//	                    404 "snapshot download is not enabled on this member" to
//	                    every method when nil. A failure once the body started
//	                    cuts the connection, so the client never sees a whole-
//	                    looking file
//	/ui /ui/...         Config.Dashboard, any method; 404 "the dashboard is not
//	                    enabled" when nil
//	GET|HEAD /<k>       200 with the raw value, application/octet-stream; 404 if absent
//	PUT      /<k>       body is the value; 204 with X-Raft-Index once applied, and
//	                    ETag: "<mod index>", the key's new version
//	POST     /<id>      body is the new member's peer URL; 204 once the conf change is applied;
//	                    ?learner=true adds it as a learner (Cluster.AddLearner)
//	POST     /<id>/promote
//	                    makes learner <id> a voter; 204 once applied; 409
//	                    learner_not_ready while it has not caught up
//	POST     /leader/transfer[?to=<id>]
//	                    moves leadership to voter <id> (absent: the most caught-up
//	                    one); 200 {"leader":<id>} once this member sees it lead
//	DELETE   /<id>      removes member <id>; 204 once applied
//
// /key/<k> reaches every key, including those whose names are reserved at the
// root (such as "status", "snapshot" or "key/x"). POST to the root never writes a key, so
// /<id>/promote and /leader/transfer take no key away: GET /leader/transfer
// reads the key "leader/transfer". learner takes strconv.ParseBool's
// spellings (true, false, 1, 0...), "learner" in /join a JSON boolean; to is
// a positive decimal uint64; anything else, or either given twice, is 400. <id> is a positive decimal uint64; a
// non-numeric DELETE /<x> gets 400 pointing to DELETE /key/<key>. The peer URL
// (surrounding whitespace trimmed) must be http or https with a host and an
// explicit port 1-65535, and no path, query, fragment or user info; the host
// must be an IP address (no IPv6 zone) or a DNS name (labels of letters,
// digits, '-' and '_'). It is passed on in one spelling, scheme://host:port
// with the host lower-cased, an IP in its shortest form and the port without
// leading zeros, so one address cannot be added twice under two spellings.
// etcd's rafthttp panics on a peer URL whose host:port does not split, so a
// conf change carrying one would crash every member that applies it. Any other method gets 405 with an Allow header,
// except on /metrics and /debug/pprof/ while disabled: those are 404 for
// every method.
//
// POST /key answers 400 for a body that is not one JSON object, is empty
// ({}), is not UTF-8, has a value that is not a string (numbers, null,
// objects, arrays) or, with encoding=base64, not base64, an empty or too
// long key, a key given twice, or anything after the object.
//
// JSON strings cannot carry bytes that are not UTF-8: encoding/json would
// replace each with U+FFFD, silently. So POST /key refuses a body that is
// not UTF-8 (400) and GET /key/<k> refuses to answer a value that is not
// (406, "add ?encoding=base64"), rather than mangle it; a curl user reads
// that sentence, where a value re-encoded behind a header would surprise.
// GET /key/<k> of a key that is not UTF-8 is 406 whatever the encoding: the
// object's name would be mangled; GET /<k> reads it. The encoding
// parameter takes one value, base64 (any case); any other, or two, is 400.
// GET and PUT of /<k> move raw bytes and ignore it.
//
// POST /join takes the id as a JSON number or a decimal string; raftdb's
// names such as "node02" get 400, since raftkv member ids are positive
// integers. The peer address is raftAddr, else addr (hraftd); host:port
// means http://host:port, a full http(s) URL is taken as is, and either is
// then checked as for POST /<id>. httpAddr is taken and ignored: members
// publish their own client URL. Any other field is refused (400 unknown
// field): a misspelt "learner" would add a voter. Membership changes,
// /join and POST /debug/hash take no query parameters but POST /<id>'s
// learner and POST /leader/transfer's to (see writeParams).
//
// # Admin requests
//
// Membership changes (POST and DELETE /<id>, POST /<id>/promote, POST
// /join), POST /leader/transfer, GET|HEAD /snapshot and POST /debug/hash
// are admin requests.
// With Config.Admin set, each is first shown to it with its connection's
// TLS state (adminRequest matches them by method and path before any
// route, so a mounted /snapshot is covered); a refusal is 403, code
// forbidden, "<what> needs an admin client certificate: <reason>", and
// reaches no Cluster call. The fast path never serves them. Server records
// the TLS state of the connections its own loop hands to net/http
// (withTLSState), which sets Request.TLS only for a *tls.Conn it accepted.
//
// # Versions, conditional writes, transactions, listing, watch
//
// versions.go, txn.go, list.go and watch.go serve the data model; the
// Store does the work (GetKV, Txn, List, Watch, Op.TTL):
//
//	GET /<k>, GET /key/<k>
//	                    also ETag: "<mod index>", X-Create-Index, X-Raft-Index
//	                    (the index read at) and X-TTL (the TTL set, in seconds)
//	PUT, DELETE with If-Match: "<mod>" (or the number alone; * = exists) or,
//	                    on PUT, If-None-Match: *: one Store.Txn (the compare,
//	                    the write, a get of the key on failure); 412 as above;
//	                    a PUT's 204 carries the new ETag.
//	                    At most one such header, once; a weak tag is 400
//	PUT /<k>?ttl=D      D a Go duration or whole seconds, 1s to 8760h, else 400
//	                    Writes refuse a query parameter they do not take
//	                    (ErrUnknownParam, 400): a key's PUT takes ttl, POST
//	                    /key encoding, POST /<id> learner, POST
//	                    /leader/transfer to; a key's DELETE and POST /txn none.
//	                    A misspelt ?tll=5 is not applied without its TTL.
//	POST /txn           etcd's JSON shape, raftkv's and etcd's names (put or
//	                    request_put, delete or request_delete_range, get or
//	                    request_range; mod_index or mod_revision...); key and
//	                    value as text or key_base64/value_base64; at most 128
//	                    compares and 128 operations per branch; 200 with
//	                    {"succeeded","index","mod_index","responses"} (mod_index:
//	                    the version the branch's puts gave, absent when none). GET /txn reads the
//	                    key "txn"
//	GET|HEAD /key?prefix=p | ?start=a&end=b, limit (1-10000, default 1000),
//	                    keys_only, continue, level, min_index, config_version:
//	                    200 {"index","kvs","more","continue"}; the continue token
//	                    names its range and index, so a later page is read at no
//	                    older index, and is refused with another range
//	DELETE /key?prefix=p | ?start=a&end=b, config_version
//	                    one Store.DeleteRange: 200 {"index","deleted"}; a query
//	                    that names no keys is 400 (?start=%00 reaches every
//	                    key); X-Client-ID is not read: it is not exactly-once
//	GET /key?watch=true[&prefix=p], GET /<k>?watch=true, GET /key/<k>?watch=true
//	                    Server-Sent Events: "id: <mod>.<pos>", "event: put|delete|
//	                    expire", "data: {...}"; ": progress <index>" first and every
//	                    Config.WatchProgressInterval; from_index=N or Last-Event-ID
//	                    (wins) to resume; markers=true (or X-Raftkv-Route: client)
//	                    adds a shard member's bucket_out, bucket_in and
//	                    group_left markers, and heartbeats every second at
//	                    most
//
// A watch is not counted in MaxInFlight (MaxWatchers bounds them), has no
// RequestTimeout, clears the server's read and write deadlines (each write
// is bounded by its own), and ends when its client goes, its Watcher ends
// (an "event: error" then says why) or the server shuts down. A heartbeat
// never passes an event: every event up to its index was written before it.
//
// # Sharding
//
// A write (PUT, DELETE, POST /key) may carry its exactly-once identity:
// X-Client-ID (1 to 64 characters of [A-Za-z0-9._-]) and X-Client-Seq (a
// decimal uint64 of at least 1), both or neither, each at most once; a
// malformed pair is a 400 before the body is read. A write that carries
// them goes to Store.Write with them (POST /key's pairs in key order);
// one without keeps Put, PutAll and Delete. Reads ignore them.
//
// A store's error that is Misdirected() (WrongGroupError: the key's
// bucket belongs to another shard group in the config this member
// applied) is answered, to a routing client (X-Raftkv-Route: client),
// 421 Misdirected Request with X-Config-Version and always the JSON body
// {"error","code":"wrong_group","version","bucket","owner","servers"}
// (owner and servers omitted when unknown). Anyone else gets 307
// Temporary Redirect, X-Config-Version and Location: the same escaped path
// and raw query on the owner's first server, with the sentence as a text
// body, so that curl -L lands on the owning group; or the 421 when the
// owner is not known.
//
// # Read levels
//
// GET and HEAD of /<k> and /key/<k> take raftdb's query parameters; others
// are ignored:
//
//	(absent), level=default, level=consistent, level=none
//	                    linearizable: ReadOptions{}
//	level=stale         this member's local state: ReadOptions{Stale: true}
//	min_index=N         read-your-writes without a quorum round: wait until this
//	                    member applied N, then serve locally:
//	                    ReadOptions{Stale: true, MinIndex: N}
//	level=L&min_index=N both: Stale as level L says, MinIndex N
//
// raftdb's default level could return stale data: it checks leadership
// locally, with no quorum round, so a deposed leader still answers. raftkv's
// default is linearizable, the same as consistent. level=none is how the
// README's table of levels names the absent level, so it is accepted as the
// same. N is the X-Raft-Index of an earlier write. Level names are compared
// as raftdb compares them, ignoring case and surrounding spaces. Any other
// level (raftdb silently used its default) gets 400 listing the four, as do
// a min_index that is not a decimal uint64, either parameter given twice,
// and a malformed query string. The MinIndex wait is bounded by the
// request deadline (504).
//
// # Limits
//
// Keys: 1 to Config.MaxKeyBytes bytes, else 400. A request line and headers
// over NewServer's 64 KiB (with net/http's 4 KiB of slack), such as a key of
// about 64 KiB or more in the URL, never reach the handler: net/http answers
// 431 with its own body ("431 Request Header Fields Too Large", no newline,
// never JSON) and closes the connection. PUT and POST /key bodies:
// at most Config.MaxValueBytes, else 413. POST /<id> and POST /join bodies:
// at most 4 KiB, else 413; the bodies of POST /<id>/promote and POST
// /leader/transfer are ignored. Each Store or Cluster call gets a deadline of
// Config.RequestTimeout.
//
// Requests in flight: at most Config.MaxInFlight (default 2048) at once,
// counted from the moment the handler is entered, so a slow upload holds
// its place while its body arrives. One more is answered at once with 503,
// Retry-After: 1 and code too_many_requests, before its body
// is read (with Connection: close if it has one, so the answer need not wait
// for the body) and without any Store or Cluster call. /health, /status and
// /metrics (any method) are exempt and not counted: they read local state
// and answer at once, and an overloaded member must stay observable and
// report its real health rather than fail its load balancer's probe.
// /debug/state hashes the whole state and pprof profiles run for seconds,
// so those are counted. Connections still sending their request headers are
// not requests yet: NewServer's ReadHeaderTimeout closes them.
//
// # Error answers
//
// errorTable, in errors.go, is the only place that chooses the status, code
// and sentence of an error answer. It looks through %w wrapping and
// errors.Join, classifying errors by behaviour (methods such as NotFound()
// bool), never by identity; the first row that matches wins:
//
//	status code               when
//	413    payload_too_large  *http.MaxBytesError
//	405    method_not_allowed method not served by the path; Allow header
//	421    wrong_group        Misdirected(): the key's bucket is another group's
//	                          (or 307; see Sharding)
//	406    not_utf8           NotAcceptable(): GET /key/<k> of a key or value
//	                          that JSON cannot carry
//	404    member_not_found   NotFound() from a membership call (add, remove, promote)
//	404    not_found          NotFound() of this package (reserved or disabled path)
//	404    key_not_found      any other NotFound() (the Store's); X-Raft-Index of
//	                          the read when the Store gave it
//	412    precondition_failed
//	                          PreconditionFailed(): If-Match or If-None-Match did not
//	                          hold; ETag of the current version (none when absent)
//	410    compacted          Gone(): a watch from an index no longer kept;
//	                          "oldest_index" in the JSON body
//	400    bad_request        BadRequest()
//	409    learner_not_ready  LearnerNotReady(): POST /<id>/promote of a learner not
//	                          caught up with the leader
//	409    conflict           Conflict()
//	503    too_many_requests  ErrTooManyRequests; Retry-After: 1
//	503    too_many_watchers  ErrTooManyWatchers (Config.MaxWatchers); Retry-After: 1
//	503    too_slow           TooSlow(): a watch fell behind (in its stream's final
//	                          event: error, as the stream has begun)
//	503    no_leader          NoLeader(); Retry-After: 1
//	503    unavailable        Unavailable(); Retry-After: 1
//	504    transfer_timeout   LeaderTransferTimeout(): leadership had not moved by
//	                          the deadline
//	504    outcome_unknown    Timeout() (context.DeadlineExceeded too) on a write:
//	                          any method but GET and HEAD
//	504    timeout            Timeout() on a read
//	503    canceled           context.Canceled (client gone or server
//	                          stopping); Retry-After: 1
//	500    internal           anything else
//
// An error that names its own code (a Code() string method, the first
// non-empty one in its chain) keeps it in every row but internal and
// wrong_group: a store's bucket_moving is a 503 unavailable (with
// Retry-After), seq_too_old a 504 outcome_unknown, not_ready, bucket_gone
// and not_settled 409 conflicts, each answered with its own code.
//
// The sentence is one line in plain words, without package prefixes or a
// chain of wrapped messages: Error() strings are for logs. It is the first
// non-empty HumanMessage() string found in the error's chain, outermost
// first, else the row's own sentence. An error that knows which key, member
// id or peer URL it is about, and why, says so through HumanMessage; this
// package's errors, raftnode's and kvstore's do. Three rows always use
// their own sentence: outcome_unknown ("the request timed out; the write
// may or may not have been applied", said once whatever the producer said),
// canceled, and internal, which never shows internals to clients.
//
// The body is that sentence and "\n" as text/plain; a request whose Accept
// header lists application/json (q not 0; */* does not count) gets instead
// {"error":"<sentence>","code":"<code>"} and "\n" as application/json. Every
// error answer carries Vary: Accept and X-Content-Type-Options: nosniff.
// Exceptions: pprof's and Config.Metrics' own errors, GET /health's 503
// (its own JSON), and what net/http answers before the handler runs
// (malformed requests, 431). Every 5xx is logged at warn with method,
// path, status, code and error, except GET /health's 503 (an answer that
// load balancers poll, not a failure) and the 503 of the in-flight limit,
// logged at most once a second with the number refused, so overload does
// not also flood the log.
//
// # Invariants
//
//  1. A 204 to a write means the Store or Cluster reported it applied; a 204
//     to a key write (PUT, DELETE, POST /key) carries its X-Raft-Index.
//  2. A handler writes nothing before it knows the outcome, so an error
//     always gets a complete error response. GET /snapshot knows it once
//     the state is captured; a failure while streaming it cuts the
//     connection instead (http.ErrAbortHandler), never ends the body.
//  3. No request reaches Store or Cluster without a deadline (Status and
//     Health take none: they read local state).
//  4. A POST /key is one Store.PutAll: all its pairs are applied or none.
//  5. Operator endpoints are served only when configured, and never through
//     http.DefaultServeMux.
//  6. At most Config.MaxInFlight requests other than /health, /status and
//     /metrics are inside the handler at once; a refused one reaches
//     neither Store nor Cluster.
//  7. A peer URL passed to Cluster.AddMember is canonical and its host:port
//     splits (net.SplitHostPort), so rafthttp can always dial it.
package httpapi
