// Package router is raftkv's stateless HTTP router: it serves the whole
// client API of a member for every key of a sharded deployment, sending
// each request to the group that serves the key's bucket through one
// client.Client, and is run by `raftkv route`:
//
//	raftkv route --config-endpoints http://127.0.0.1:6080,http://127.0.0.1:6081 --port 7080
//	curl -L http://127.0.0.1:7080/my-key -XPUT -d hello
//	curl -L http://127.0.0.1:7080/my-key
//
// Members that serve https are reached with --cacert (the CA that
// verifies them) and, where they require a client certificate, --cert and
// --key (etcd's grpc-proxy names for its side as a client). The router
// serves its own port over https with a member's flags: --cert-file,
// --key-file, --trusted-ca-file and --client-cert-auth.
//
// # What it owns
//
// The mapping between a caller's HTTP request and a Client call, and back:
// paths, read options, write ids, limits, and which answer the caller
// gets. Routing, retries, the config cache and the choice of member are
// the Client's. It must not keep state of its own between requests: two
// routers over the same config group answer alike, and a router can be
// restarted at any time.
//
// # Routes
//
//	GET|HEAD /<key>        200 raw value (GET /<key> of the key's group), 404 if absent
//	PUT      /<key>        204 with X-Raft-Index and the key's new ETag once applied
//	GET|HEAD /key/<key>    200 {"<key>":"<value>"}, as a member answers it; with
//	                       ?encoding=base64 the value in base64, else 406 (code
//	                       not_utf8) for a value or key that is not UTF-8
//	PUT      /key/<key>    as PUT /<key>
//	DELETE   /key/<key>    204 with X-Raft-Index (an absent key too)
//	POST     /key          {"k1":"v1",...}: one atomic write; every key must be in
//	                       buckets of one group, else 400 (code cross_group)
//	POST     /txn          the body as is to the group of its keys (all in one
//	                       group, else 400 cross_group); the member's answer as is
//	GET|HEAD /key?prefix=p|start=a&end=b[&limit=N&keys_only=true&continue=T&level=stale]
//	                       a listing gathered from every group with config_version
//	                       (client.List): key order, the limit across groups, one
//	                       continue token for all; "indexes" has each group's index,
//	                       "config" the groups' config, "cursor" the Last-Event-ID
//	                       of a watch right after it;
//	                       min_index is refused (an index is one group's)
//	DELETE   /key?prefix=p|start=a&end=b
//	                       a range delete, one write of each group at one config
//	                       version, every group asked again after a move
//	                       (client.DeleteRange): {"deleted","indexes","config"}; a
//	                       failure after some group deleted is 504 outcome_unknown
//	GET /<key>?watch=true, GET /key/<key>?watch=true
//	                       the key's group's SSE stream, relayed with its ids
//	GET /key?watch=true[&prefix=p]
//	                       every group's stream, merged (watch.go): per-key order,
//	                       no order across groups; ids are cursors of every group
//	GET|HEAD /status       the router's cached config: version, buckets, each
//	                       group's servers and bucket count; sends nothing
//	GET|HEAD /health       200 once it has a config that gives buckets to a group
//	                       (fetching one if it has none, or one without groups),
//	                       else 503 with the reason
//	POST /<id>, DELETE /<id>, POST /join
//	                       400: membership changes are per group; send them to
//	                       a member of the group
//	GET|HEAD /metrics      with Config.Metrics (raftkv route sets it): the router's
//	                       own, requests by op and code, their durations, open
//	                       watches, config version and fetches; and the process's
//	/snapshot, /ui..., /debug/..., /config..., /shard/... (and /metrics without
//	Config.Metrics)        404: served by members, not by the router
//
// GET answers a member's ETag, X-Create-Index, X-TTL and X-Raft-Index;
// PUT and DELETE take If-Match ("<mod>" or *) and PUT If-None-Match: *
// and ?ttl=, checked as a member checks them and sent as the Client's
// WithIfMatch, WithIfExists, WithIfAbsent and WithTTL; a 412 comes back
// with the member's ETag.
//
// ?level= (stale, default, consistent, none) and ?min_index=N of a GET are
// checked as a member checks them and passed to the key's group; a
// min_index is an index of that group's log. DELETE /<non-numeric> gets
// the 400 a member gives it (use DELETE /key/<key>). Keys and bodies have
// a member's limits (4 KiB keys, 1.5 MiB bodies).
//
// # Writes
//
// A write that comes with X-Client-ID and X-Client-Seq is sent with them,
// so the caller's retries and the router's dedup as one; a write that
// comes without them is sent with the router's own client id and a seq of
// its own, so the router's retries are safe. One of the two headers alone,
// or a malformed one, is a 400.
//
// # Answers
//
// A member's answer comes back as the member sent it: status, body,
// Content-Type, Retry-After, and X-Raft-Index of an applied write. Two
// exceptions, where relaying would mislead: a write some try of which may
// have been applied is answered 504 (code outcome_unknown) even when the
// last try was refused with a 503, and a 421 or 3xx (the Client's retries
// ran out while members disagreed about the key's group) is a 503 (code
// wrong_group). Errors the router finds itself are one line of text, or
// {"error","code"} to a caller that accepts application/json.
//
// # Goroutines
//
// The handler starts none: each request runs in its server goroutine.
// Main serves until SIGINT or SIGTERM, warming the config cache in one
// goroutine bounded by the request timeout, and shuts down in order: stop
// accepting, finish the requests in flight, close the Client's
// connections.
package router
