// Package configgroup is the HTTP API of a config group member: the
// raft group whose replicated state is the list of every shardmap.Config
// of a sharded deployment (kvstore in config mode holds it). daemon
// mounts its routes on the client port of a member started with
// --config-group, next to the rest of the client API (status, health,
// metrics, membership); such a member serves no keys.
//
// # What it owns
//
// The decoding and checking of the config requests, the long poll of
// GET /config, and the JSON form of their answers (eraft's). It must not
// apply anything itself: every operation is one raft entry that the Store
// applies with shardmap's functions, so that every member computes the
// same next config. It declares the small Store it needs, as httpapi
// does, and never imports kvstore or raftnode. Its errors are answered
// through httpapi's error table (RouteFunc), one line each.
//
// # Routes
//
//	GET|HEAD /config[?version=N][&wait=D][&level=stale][&min_index=I]
//	    200 the config of version N, or the latest when N is -1, absent
//	    or past the latest (as 6.824's Query); X-Config-Version is its
//	    version. With wait and N >= 0, first waits until version N exists
//	    or D passes, then answers as without it (so the latest, older than
//	    N, when D passed). D is a Go duration ("5s", "250ms") or a number
//	    of seconds, at most MaxWait (larger values are cut to it). The
//	    read is linearizable unless level=stale; min_index as for keys.
//	POST /config/join  {"groups":{"1":["http://h:p",...]}}
//	POST /config/leave {"gids":[1,2]}
//	POST /config/move  {"bucket":3,"gid":2}
//	    200 the config the operation produced, once applied. Field names
//	    match case-insensitively (eraft's "Groups", "GIDs", "Bucket",
//	    "GID"); an unknown field, a missing one, a gid that is not a
//	    positive integer, anything after the object, or an operation
//	    shardmap refuses (a gid not in the config, the last group
//	    leaving, a bucket out of range) is a 400 with a one-line reason
//	    and nothing applied. X-Client-ID and X-Client-Seq make a retried
//	    operation apply once (the Store's dedup table answers a repeat
//	    with the config it produced the first time).
//
// Any other path under /config/ is a 404, any other method a 405.
//
// # Choices where the contract is silent
//
//   - wait without a version (or with -1) does not wait: the latest
//     exists already.
//   - A wait is cut to MaxWait (30s by default) rather than refused, so
//     that a client asking for a long poll gets one of the longest this
//     member serves.
//   - A wait that ends because the member is stopping or the client went
//     away answers as the end of any request would (503 canceled); one
//     that ends at D answers the latest config, 200.
//
// # Goroutines
//
// None of its own: each request runs in the server's goroutine and ends
// within its wait plus Config.RequestTimeout.
//
// # Invariants
//
//  1. Every operation reaches the Store as exactly one ConfigOp call, with
//     the request's writer identity; a request refused here reaches no
//     Store.
//  2. Every Store call has a deadline: the wait, then RequestTimeout.
//  3. A 200 to an operation carries the config the Store says it produced.
package configgroup
