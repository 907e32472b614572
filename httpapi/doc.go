// Package httpapi is raftkv's client-facing HTTP wire layer.
//
// # What it owns
//
// Routing, request decoding and validation (keys, values, member ids, peer
// URLs), size limits, the per-call deadline, and the mapping from errors to
// HTTP status codes. New builds the http.Handler; NewServer wraps it in an
// http.Server with timeouts.
//
// # What it must not do
//
// It must not import raftnode or kvstore: it declares the small Store and
// Cluster interfaces it needs, and classifies their errors by behaviour
// (methods such as NotFound() bool), never by identity. It holds no state
// between requests, starts no goroutines, never logs values and never
// redirects: paths are not cleaned, so "a//b" and "x/../y" are keys as written.
//
// # Routes
//
// Reserved paths are dispatched first; every other path is a raftexample
// key, its name being r.URL.Path (percent-decoded, so "/a%2Fb" is key "a/b")
// without the leading "/". Keys may contain "/"; values are arbitrary bytes.
//
//	GET|HEAD /status    200 JSON Status from Cluster.Status
//	GET|HEAD /key/<k>   200 JSON {"<k>":"<value>"} (raftdb form; values that are
//	                    not UTF-8 are mangled by JSON, use GET /<k>); 404 if absent
//	PUT      /key/<k>   body is the value; as PUT /<k>
//	DELETE   /key/<k>   204 with X-Raft-Index; an absent key is also 204
//	/key /join /health /metrics /debug /debug/...
//	                    reserved for later versions: 404 for now
//	GET|HEAD /<k>       200 with the raw value, application/octet-stream; 404 if absent
//	PUT      /<k>       body is the value; 204 with X-Raft-Index once applied
//	POST     /<id>      body is the new member's peer URL; 204 once the conf change is applied
//	DELETE   /<id>      removes member <id>; 204 once applied
//
// /key/<k> reaches every key, including those whose names are reserved at the
// root (such as "status" or "key/x"). <id> is a positive decimal uint64; a
// non-numeric DELETE /<x> gets 400 pointing to DELETE /key/<key>. The peer URL
// (surrounding whitespace trimmed) must be http or https with a host and an
// explicit port, and no path, query, fragment or user info; it is passed on
// as scheme://host:port. Any other method gets 405 with an Allow header.
//
// # Limits
//
// Keys: 1 to Config.MaxKeyBytes bytes, else 400. PUT bodies: at most
// Config.MaxValueBytes, else 413. POST /<id> bodies: at most 4 KiB, else 413.
// Each Store or Cluster call gets a deadline of Config.RequestTimeout.
//
// # Error mapping
//
// statusOf is the only place that chooses a status for an error. It looks
// through %w wrapping and errors.Join; first match wins:
//
//	*http.MaxBytesError                   413
//	method not served by the path         405, Allow header
//	NotFound() bool returns true          404
//	BadRequest() bool returns true        400
//	Conflict() bool returns true          409
//	Unavailable() bool returns true       503, Retry-After: 1
//	Timeout() bool returns true           504 (includes context.DeadlineExceeded)
//	context.Canceled                      503, Retry-After: 1 (client gone or server stopping)
//	anything else                         500
//
// Every error body is one line of text/plain ending in "\n". A 504 on a write
// (PUT, POST, DELETE) says the outcome of the write is unknown: it may still
// be applied. Every 5xx is logged at warn with method, path, status and error.
//
// # Invariants
//
//  1. A 204 to a write means the Store or Cluster reported it applied.
//  2. A handler writes nothing before it knows the outcome, so an error
//     always gets a complete error response.
//  3. No request reaches Store or Cluster without a deadline.
package httpapi
