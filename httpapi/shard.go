package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
)

// This file holds what sharding adds to the wire: the answer to a key of
// another group (421 or 307), the writer's identity headers, and the
// routes other packages mount on the client port.

// Request and response headers of sharding (see the sharding contract).
const (
	// HeaderRoute, with the value "client", marks a routing client (the Go
	// client, a router): a key of another group is answered 421, not 307.
	HeaderRoute = "X-Raftkv-Route"
	// HeaderClientID and HeaderClientSeq are a write's exactly-once
	// identity.
	HeaderClientID  = "X-Client-ID"
	HeaderClientSeq = "X-Client-Seq"
	// HeaderConfigVersion is the config version a 421 was judged by.
	HeaderConfigVersion = "X-Config-Version"
	// HeaderClusterID, on POST /join's answer, is the cluster's id in
	// hex, which the new member tags its peer traffic with.
	HeaderClusterID = "X-Raftkv-Cluster-Id"
	// HeaderGroup names a shard member's group on its watch streams, so
	// that a client watching one group at URLs from an older config
	// learns when another group's member answers there now.
	HeaderGroup = "X-Raftkv-Group"
)

// maxClientIDBytes bounds X-Client-ID.
const maxClientIDBytes = 64

// WrongGroupError says that the key's bucket is not served by this
// member's group in the config it applied, and, when that config says,
// which group serves it. It answers 421, or 307 to a member of the owner
// for a client that does not route by itself (see writeWrongGroup). A
// Store returns it, or any error with a Misdirected() bool method that
// answers true, which gets a 421 without the details.
type WrongGroupError struct {
	Key     string
	Bucket  int
	Version uint64   // the config version the member judged by
	Owner   uint64   // the group serving Bucket in that config; 0: none or unknown
	Servers []string // the client URLs of Owner's members, when known
	// Err is the store's own error, for logs and errors.Is.
	Err error
}

func (e *WrongGroupError) Error() string {
	if e.Err != nil {
		return e.Err.Error()
	}
	return "httpapi: " + e.HumanMessage()
}

func (e *WrongGroupError) Unwrap() error { return e.Err }

// Misdirected reports true: the request belongs to another group.
func (e *WrongGroupError) Misdirected() bool { return true }

// HumanMessage says which group serves the key, as far as known.
func (e *WrongGroupError) HumanMessage() string {
	if e.Owner == 0 {
		return fmt.Sprintf("bucket %d of key %q is not served by this group, and config %d gives it to no group", e.Bucket, e.Key, e.Version)
	}
	return fmt.Sprintf("bucket %d of key %q is served by group %d in config %d, not by this group", e.Bucket, e.Key, e.Owner, e.Version)
}

// wrongGroupJSON is the body of a 421.
type wrongGroupJSON struct {
	Error   string   `json:"error"`
	Code    string   `json:"code"`
	Version uint64   `json:"version"`
	Bucket  int      `json:"bucket"`
	Owner   uint64   `json:"owner,omitempty"`
	Servers []string `json:"servers,omitempty"`
}

// routingClient reports whether r comes from a client that routes by
// itself (X-Raftkv-Route: client).
func routingClient(r *http.Request) bool {
	for _, v := range r.Header.Values(HeaderRoute) {
		if equalFoldTrimmed(v, "client") {
			return true
		}
	}
	return false
}

// writeWrongGroup answers a request for a key of another group. A
// routing client gets 421 with X-Config-Version and the JSON body of the
// sharding contract, so that it refreshes its config and retries; anyone
// else (curl -L) gets 307 to the same path and query on the owner's first
// member, or the 421 when the owner is not known.
func writeWrongGroup(w http.ResponseWriter, r *http.Request, a answer, err error) {
	hdr := w.Header()
	var wg *WrongGroupError
	if !errors.As(err, &wg) {
		wg = nil
	}
	if wg != nil && !routingClient(r) {
		if loc, ok := redirectTarget(wg, r); ok {
			hdr.Set("Location", loc)
			hdr.Set("Content-Type", "text/plain; charset=utf-8")
			hdr.Set("X-Content-Type-Options", "nosniff")
			hdr.Set(HeaderConfigVersion, strconv.FormatUint(wg.Version, 10))
			w.WriteHeader(http.StatusTemporaryRedirect)
			if r.Method != http.MethodHead {
				_, _ = w.Write([]byte(a.message + "\n"))
			}
			return
		}
	}
	body := wrongGroupJSON{Error: a.message, Code: a.code, Bucket: -1}
	if wg != nil {
		body.Version, body.Bucket, body.Owner, body.Servers = wg.Version, wg.Bucket, wg.Owner, wg.Servers
		hdr.Set(HeaderConfigVersion, strconv.FormatUint(wg.Version, 10))
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(body); err != nil {
		panic(fmt.Sprintf("httpapi: encoding a wrong-group answer: %v", err)) // strings and numbers always encode
	}
	hdr.Set("Content-Type", "application/json")
	hdr.Set("Vary", "Accept")
	hdr.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(http.StatusMisdirectedRequest)
	_, _ = w.Write(b.Bytes())
}

// redirectTarget is the URL of r's path and query on the owner's first
// member; false when the owner or a usable URL of it is not known.
func redirectTarget(wg *WrongGroupError, r *http.Request) (string, bool) {
	if wg.Owner == 0 || len(wg.Servers) == 0 {
		return "", false
	}
	base, err := url.Parse(strings.TrimSuffix(wg.Servers[0], "/"))
	if err != nil || (base.Scheme != "http" && base.Scheme != "https") || base.Host == "" {
		return "", false
	}
	loc := base.Scheme + "://" + base.Host + base.EscapedPath() + r.URL.EscapedPath()
	if r.URL.RawQuery != "" {
		loc += "?" + r.URL.RawQuery
	}
	return loc, true
}

// WriteOptionsOf reads a write's exactly-once identity from its headers:
// X-Client-ID (1 to 64 characters of [A-Za-z0-9._-]) and X-Client-Seq (a
// decimal uint64 of at least 1), both or neither, each at most once. The
// zero WriteOptions means neither was sent; a malformed pair is an error
// that answers 400.
func WriteOptionsOf(h http.Header) (WriteOptions, error) {
	ids, seqs := h.Values(HeaderClientID), h.Values(HeaderClientSeq)
	return writeOptions(ids, seqs)
}

// writeOptions checks the values of X-Client-ID and X-Client-Seq.
func writeOptions(ids, seqs []string) (WriteOptions, error) {
	switch {
	case len(ids) == 0 && len(seqs) == 0:
		return WriteOptions{}, nil
	case len(ids) > 1:
		return WriteOptions{}, badRequest("header " + HeaderClientID + " given more than once")
	case len(seqs) > 1:
		return WriteOptions{}, badRequest("header " + HeaderClientSeq + " given more than once")
	case len(seqs) == 0:
		return WriteOptions{}, badRequest("header " + HeaderClientID + " needs " + HeaderClientSeq + ", the write's sequence number")
	case len(ids) == 0:
		return WriteOptions{}, badRequest("header " + HeaderClientSeq + " needs " + HeaderClientID + ", the writer's id")
	}
	id := strings.TrimSpace(ids[0])
	if !validClientID(id) {
		return WriteOptions{}, withDetail(badRequest("bad client id"),
			"%s must be 1 to %d characters of A-Z, a-z, 0-9, '.', '_' and '-'; got %q", HeaderClientID, maxClientIDBytes, truncate(id, 80))
	}
	seqText := strings.TrimSpace(seqs[0])
	seq, err := strconv.ParseUint(seqText, 10, 64)
	if err != nil || seq == 0 || seqText[0] == '+' {
		return WriteOptions{}, withDetail(badRequest("bad client seq"),
			"%s must be a decimal integer from 1 to 18446744073709551615; got %q", HeaderClientSeq, truncate(seqText, 80))
	}
	return WriteOptions{ClientID: id, Seq: seq}, nil
}

// validClientID reports whether id is 1 to 64 characters of [A-Za-z0-9._-].
func validClientID(id string) bool {
	if len(id) == 0 || len(id) > maxClientIDBytes {
		return false
	}
	for i := 0; i < len(id); i++ {
		if c := id[i]; !isAlnum(c) && c != '.' && c != '_' && c != '-' {
			return false
		}
	}
	return true
}

// truncate cuts s to at most n bytes for an error sentence.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}

// RouteFunc serves a path mounted on the client port by Config.Routes.
// It returns a non-nil error only when it has written nothing; the error
// is then answered as the handler's own are (see Error answers in doc.go).
type RouteFunc func(w http.ResponseWriter, r *http.Request) error

// mounted returns the route of Config.Routes that serves path p: the
// route named p exactly, else the longest one ending in "/" that p
// starts with.
func (h *handler) mounted(p string) RouteFunc {
	if len(h.cfg.Routes) == 0 {
		return nil
	}
	if f, ok := h.cfg.Routes[p]; ok {
		return f
	}
	var best string
	for prefix := range h.cfg.Routes {
		if strings.HasSuffix(prefix, "/") && strings.HasPrefix(p, prefix) && len(prefix) > len(best) {
			best = prefix
		}
	}
	if best == "" {
		return nil
	}
	return h.cfg.Routes[best]
}

// ReadOptionsOf reads a read's level and min_index query parameters, as
// GET /<key> does (see Read levels in doc.go); others are ignored. Its
// errors answer 400.
func ReadOptionsOf(q url.Values) (ReadOptions, error) { return readOptions(q) }

// BadRequest is an error that answers 400 with msg, one sentence.
func BadRequest(msg string) error { return badRequest(msg) }

// PathNotFound is an error that answers 404 (code not_found) with msg,
// for a path a mounted route does not serve.
func PathNotFound(msg string) error { return notFound(msg) }

// MethodNotAllowed is an error that answers 405 with Allow: allow, a
// comma-separated list of the methods the path serves.
func MethodNotAllowed(method, allow string) error { return &methodError{method, allow} }
