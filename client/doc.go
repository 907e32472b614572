// Package client is the Go client of raftkv: it sends reads and writes to
// one raft group, to routers, or to the groups of a sharded deployment,
// and retries them across members and config changes.
//
// # Usage
//
//	c, err := client.New(client.Config{
//		Endpoints: []string{"http://127.0.0.1:12380", "http://127.0.0.1:22380", "http://127.0.0.1:32380"},
//	})
//	if err != nil { ... }
//	defer c.Close()
//	index, err := c.Put(ctx, "greeting", []byte("hello"))
//	v, err := c.Get(ctx, "greeting")                          // linearizable
//	v, err = c.Get(ctx, "greeting", client.WithStale())       // local state of one member
//	v, err = c.Get(ctx, "greeting", client.WithMinIndex(index)) // read-your-writes, no quorum round
//	if errors.Is(err, client.ErrNotFound) { ... }
//
// Members that serve https (raftkv's --cert-file) are reached with
// Config.TLS: the CAs to trust, and the client certificate they require
// with --client-cert-auth.
//
// A sharded deployment is reached through its config group instead:
//
//	c, err := client.New(client.Config{ConfigEndpoints: []string{"http://127.0.0.1:6080"}})
//	cfg, err := c.Join(ctx, map[uint64][]string{1: {"http://127.0.0.1:6088"}})
//
// The Client fetches the config (shardmap.Config) on its first key call,
// caches it, and sends each key's calls to a member of the group that
// serves shardmap.BucketOf(key, len(config.Buckets)).
//
// # What it owns
//
// The wire of the client API as a caller sees it (README "HTTP API"; for
// sharding, the contract in the design of sharding): paths, headers, the
// reading of answers and error bodies into *Error; the retry policy; the
// cached config and its refresh; the choice of member. It must not know a
// server's internals: it imports only shardmap, for the bucket map both
// sides share, and backup, for the backup file format that SnapshotSave
// checks.
//
// # Requests
//
//	Get       GET /<key> (GET /key/<key> for reserved names), ?level=stale, ?min_index=N
//	GetKV     as Get; the versions from ETag, X-Create-Index, X-TTL, X-Raft-Index
//	Put       PUT /<key> (PUT /key/<key> for reserved names), body the value;
//	          WithTTL: ?ttl=<duration>; WithIfMatch: If-Match: "<mod>";
//	          WithIfAbsent: If-None-Match: *
//	PutVersion as Put; also the key's new version, from the answer's ETag
//	Delete    DELETE /key/<key>; WithIfMatch as Put's
//	PutAll    POST /key, body {"k":"v",...}: one atomic write, keys of one group;
//	          values that are not UTF-8 make it ?encoding=base64, all in base64
//	Txn       POST /txn, etcd's JSON shape: keys of one group
//	List      GET /key?prefix=|start=&end=, limit, keys_only, continue; sharded:
//	          one GET per group with config_version, merged (see List)
//	DeleteRange DELETE /key?prefix=|start=&end=: one write; sharded: one DELETE
//	          per group with config_version, all again after a move (see DeleteRange)
//	Watch     GET /key?watch=true&prefix=p or /key/<key>?watch=true, from_index or
//	          Last-Event-ID: a Server-Sent Events stream, resumed (see Watch)
//	Status    GET /status
//	StartHash POST /debug/hash: a hash check in the group (admin); HashOf GET
//	          /debug/hash?index=N on one member; CheckHashes both, every member
//	SnapshotSave GET /snapshot[?level=stale|min_index=N], the backup streamed to
//	          an io.Writer and checked as it goes (only with Endpoints)
//	Query     GET /config[?version=N] on the config group
//	Join      POST /config/join  {"groups":{"1":["http://h:p"]}}
//	Leave     POST /config/leave {"gids":[1]}
//	Move      POST /config/move  {"bucket":3,"gid":2}
//
// Every request carries X-Raftkv-Route: client (a shard member then
// answers a key of another group with 421 and its config version, not a
// 307) and Accept: application/json (error bodies as
// {"error","code",...}; a text body is read as the message, and the code
// is then the one the status implies). Every write (Put, Delete, PutAll
// and the config operations) carries X-Client-ID, the Client's id, and
// X-Client-Seq, a number taken from a counter once per call and sent
// again unchanged by each of its retries, so that a server that keeps a
// dedup table applies the write once however often it is sent.
//
// # Retries
//
// A call makes tries until one is answered for good or its deadline
// passes (the context's, or RequestTimeout, whichever is earlier), with a
// pause between tries that starts at Backoff and doubles up to
// MaxBackoff:
//
//	2xx, and 404 of a Get    the answer
//	421, 3xx                 another group serves the key: refresh the config to at
//	                         least the version the member named, try again there
//	503, 429                 nothing applied: move to the group's next member, try again
//	503 cluster_level,       nothing applied: ask each member once (one that just
//	no_space                 restarted may not have its level yet; members may have
//	                         other quotas), then the answer
//	no answer                move to the next member, try again (a write whose request
//	                         may have gone out is then of unknown outcome); once as many
//	                         tries in a row as the group has members got none, fetch the
//	                         config first (the group may have left and stopped)
//	504                      try again (a write is then of unknown outcome)
//	seq_too_old              the server cannot judge the write: ErrOutcomeUnknown
//	TLS handshake refused    the answer, as an error (no certificate, an untrusted one:
//	                         another try would be refused the same); the member read
//	                         nothing of the request
//	other 4xx, 500           the answer, as an error (a write's 500 is of unknown outcome)
//
// Writes are tried again because each carries its client id and sequence
// number: exactly-once is the server's part. A DeleteRange is the
// exception: members keep no record of it, so it is not sent again once a
// try may have been applied (a 504, or no answer after the request went
// out), and ends in ErrOutcomeUnknown. Every member, of a plain
// group or a shard group, keeps per-bucket dedup tables of the writes it
// applied with a client id, which move with a bucket: a retried write
// already applied is answered with its first result and not applied
// again.
//
// The error of a call that ran out of time is the last try's, with the
// context's error in Err; a write some try of which may have been applied
// is ErrOutcomeUnknown whatever its last try was answered.
//
// # Members and config
//
// Each group (Config.Endpoints, the config group, each shard group) has a
// current member; calls start there and a failed try moves it on, once
// however many calls saw it fail, so a dead member costs one failed try
// and not one per call. The config cache holds the newest config seen. A
// refresh is single-flight: however many calls hit 421 at once, one fetch
// (GET /config, linearizable, on the config group) runs, and calls that
// need a config no newer than the one being fetched wait for it. A config
// older than the cached one is never cached. The answers of Join, Leave,
// Move and Query update the cache too.
//
// Config.Endpoints stay as given, as in etcd's client: Sync sets them to
// the group's member list (GET /status), SetEndpoints to any, and
// Config.AutoSyncInterval syncs them on a goroutine until Close, so that
// a long-lived Client and its watches follow a group whose members were
// all replaced.
//
// A conditional write that finds the key at another version is
// ErrPreconditionFailed, its *Error's ModIndex the current version (0:
// absent); it is not retried. A watch from an index the member no longer
// keeps is ErrCompacted, its *Error's OldestIndex where to start again.
//
// # Goroutines
//
// A call runs in its caller's goroutine, except a List or a DeleteRange
// of a sharded deployment, which asks every group at once, one goroutine per group,
// all ended before it returns, and a Watch, whose stream is read by a
// goroutine of its own that ends with the watch's context (or when the
// watch fails for good) and closes the channel. A config refresh runs in a
// goroutine of its own, bounded by RequestTimeout, so that a caller whose
// context ends leaves and the others still get the config; it ends with
// the fetch. With Config.AutoSyncInterval a goroutine syncs the
// endpoints until Close, each Sync bounded by the interval. Close closes
// idle connections and stops that goroutine, waiting for it to end;
// there is nothing else to stop (cancel a Watch's context to end it).
//
// # Invariants
//
//  1. A call never outlives its deadline by more than the time to notice
//     it; every request has the call's context.
//  2. A write's tries all carry the same X-Client-ID and X-Client-Seq, and
//     two writes of one Client never share a sequence number.
//  3. An error that says "not applied" (ErrUnavailable, ErrNoLeader,
//     ErrTooManyRequests) is returned for a write only when no try of it
//     may have been applied; the error of a write some try of which may
//     have been applied is ErrOutcomeUnknown.
//  4. The cached config's version never decreases.
//  5. The Client follows no redirect.
package client
