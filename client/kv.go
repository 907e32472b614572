package client

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"
)

// ReadOption states a Get's consistency.
type ReadOption func(*readOptions)

type readOptions struct {
	stale, linearizable bool
	minIndex            uint64
}

// WithStale reads the member's local state without coordination
// (?level=stale): fast, and possibly stale.
func WithStale() ReadOption { return func(o *readOptions) { o.stale, o.linearizable = true, false } }

// WithLinearizable asks for the default, a linearizable read, explicitly;
// with WithMinIndex it sends ?level=consistent&min_index=N.
func WithLinearizable() ReadOption {
	return func(o *readOptions) { o.stale, o.linearizable = false, true }
}

// WithMinIndex makes the member wait (within the call's deadline) until it
// has applied index, the index an earlier write of the same key returned,
// and then read locally: read-your-writes without a quorum round
// (?min_index=N). An index belongs to one group's log: it is meaningless
// once the key's bucket has moved to another group.
func WithMinIndex(index uint64) ReadOption { return func(o *readOptions) { o.minIndex = index } }

// WriteOption modifies a write.
type WriteOption func(*call)

// WithSeq sends a write under the given client id and sequence number
// instead of the Client's own: for a proxy that passes on the ids of its
// own clients, whose retries must dedup with theirs. id must satisfy
// ValidClientID and seq be at least 1, or the call fails with
// ErrBadRequest.
func WithSeq(id string, seq uint64) WriteOption { return func(c *call) { c.id, c.seq = id, seq } }

// reservedKey reports whether GET /<key> would reach an endpoint rather
// than the key, so that key must be read as /key/<key>.
func reservedKey(key string) bool {
	switch key {
	case "key", "join", "status", "health", "metrics", "debug", "config", "shard", "snapshot", "ui":
		return true
	}
	return strings.HasPrefix(key, "key/") || strings.HasPrefix(key, "debug/") ||
		strings.HasPrefix(key, "config/") || strings.HasPrefix(key, "shard/") || strings.HasPrefix(key, "ui/")
}

// badInput is the error of a call refused before anything was sent.
func badInput(op, key, format string, args ...any) error {
	return &Error{Op: op, Key: key, Code: CodeBadRequest, Message: fmt.Sprintf(format, args...)}
}

func checkKey(op, key string) error {
	if key == "" {
		return badInput(op, key, "empty key")
	}
	return nil
}

// Get returns key's value; ErrNotFound if it is absent. Without options
// the read is linearizable.
//
// Keys whose names are reserved at the root ("status", "key/x", ...) are
// read through GET /key/<key>, whose JSON form carries values as text: a
// value of such a key that is not UTF-8 comes back mangled, as it does
// from the member directly.
func (c *Client) Get(ctx context.Context, key string, opts ...ReadOption) ([]byte, error) {
	kv, _, err := c.get(ctx, "get", key, opts)
	return kv.Value, err
}

// GetKV returns key's value and versions, and the raft index of the
// key's group the read was served at; ErrNotFound if it is absent (its
// *Error's Index is then the index the absence was read at). Options
// and reserved names are as Get's.
func (c *Client) GetKV(ctx context.Context, key string, opts ...ReadOption) (KeyValue, uint64, error) {
	return c.get(ctx, "getkv", key, opts)
}

func (c *Client) get(ctx context.Context, op, key string, opts []ReadOption) (KeyValue, uint64, error) {
	if err := checkKey(op, key); err != nil {
		return KeyValue{}, 0, err
	}
	var o readOptions
	for _, opt := range opts {
		opt(&o)
	}
	q := o.query()
	asJSON := reservedKey(key)
	path := "/" + url.PathEscape(key)
	if asJSON {
		path = "/key/" + url.PathEscape(key)
	}
	if len(q) > 0 {
		path += "?" + q.Encode()
	}
	rep, err := c.do(ctx, &call{op: op, method: http.MethodGet, key: key, path: path, ok: []int{http.StatusOK}})
	if err != nil {
		return KeyValue{}, 0, err
	}
	kv, index := versionsOf(key, rep.header)
	if !asJSON {
		kv.Value = rep.body
		return kv, index, nil
	}
	var m map[string]string
	if err := json.Unmarshal(rep.body, &m); err != nil {
		return KeyValue{}, 0, &Error{Op: op, Key: key, Endpoint: rep.endpoint, Status: rep.status, Code: CodeInternal,
			Message: "unreadable GET /key/<key> answer", Err: err}
	}
	v, ok := m[key]
	if !ok {
		return KeyValue{}, 0, &Error{Op: op, Key: key, Endpoint: rep.endpoint, Status: rep.status, Code: CodeInternal,
			Message: "GET /key/<key> answer lacks the key"}
	}
	kv.Value = []byte(v)
	return kv, index, nil
}

// query is o as a read's query parameters.
func (o readOptions) query() url.Values {
	q := url.Values{}
	switch {
	case o.stale:
		q.Set("level", "stale")
	case o.linearizable && o.minIndex > 0:
		q.Set("level", "consistent")
	}
	if o.minIndex > 0 {
		q.Set("min_index", strconv.FormatUint(o.minIndex, 10))
	}
	return q
}

// Put sets key to value and returns the raft index at which the key's
// group applied it, once applied.
func (c *Client) Put(ctx context.Context, key string, value []byte, opts ...WriteOption) (uint64, error) {
	index, _, err := c.PutVersion(ctx, key, value, opts...)
	return index, err
}

// PutVersion is Put that also returns the key's new version, the ETag of
// the answer, for a later write's WithIfMatch. In a single group it is
// the raft index; a key whose bucket moved here from a group with a
// longer log gets a version past that group's, so the two differ. It is
// 0 when the member named none (a member older than this client).
func (c *Client) PutVersion(ctx context.Context, key string, value []byte, opts ...WriteOption) (index, version uint64, err error) {
	if err := checkKey("put", key); err != nil {
		return 0, 0, err
	}
	path := "/" + url.PathEscape(key)
	if reservedKey(key) {
		path = "/key/" + url.PathEscape(key)
	}
	if value == nil {
		value = []byte{}
	}
	rep, err := c.writeReply(ctx, &call{op: "put", method: http.MethodPut, key: key, path: path, body: value}, opts)
	if err != nil {
		return 0, 0, err
	}
	index, _ = strconv.ParseUint(rep.header.Get(HeaderRaftIndex), 10, 64)
	version, _ = parseETag(rep.header.Get("ETag"))
	return index, version, nil
}

// Delete removes key (an absent key too) and returns the raft index at
// which it was applied.
func (c *Client) Delete(ctx context.Context, key string, opts ...WriteOption) (uint64, error) {
	if err := checkKey("delete", key); err != nil {
		return 0, err
	}
	return c.write(ctx, &call{op: "delete", method: http.MethodDelete, key: key, path: "/key/" + url.PathEscape(key)}, opts)
}

// PutAll sets every key of kvs atomically, as one write (raftdb's POST
// /key), and returns its raft index. In a sharded deployment every key
// must be in a bucket of one group ({tag} hash tags put keys together);
// keys of two groups get ErrCrossGroup before anything is sent. Keys are
// sent as JSON text, so each must be valid UTF-8 (use Put for others);
// values may be any bytes: when one is not UTF-8, all go in base64
// (POST /key?encoding=base64).
func (c *Client) PutAll(ctx context.Context, kvs map[string]string, opts ...WriteOption) (uint64, error) {
	if len(kvs) == 0 {
		return 0, badInput("putall", "", "no key")
	}
	keys := make([]string, 0, len(kvs))
	text := true
	for k, v := range kvs {
		if err := checkKey("putall", k); err != nil {
			return 0, err
		}
		if !utf8.ValidString(k) {
			return 0, badInput("putall", k, "the key %q is not valid UTF-8; JSON carries text (use Put)", k)
		}
		text = text && utf8.ValidString(v)
		keys = append(keys, k)
	}
	slices.Sort(keys)
	path, send := "/key", kvs
	if !text {
		path, send = "/key?encoding=base64", make(map[string]string, len(kvs))
		for k, v := range kvs {
			send[k] = base64.StdEncoding.EncodeToString([]byte(v))
		}
	}
	body, err := json.Marshal(send)
	if err != nil {
		return 0, badInput("putall", keys[0], "%v", err)
	}
	return c.write(ctx, &call{op: "putall", method: http.MethodPost, key: keys[0], keys: keys, path: path, body: body}, opts)
}

// write sends a key write and returns its X-Raft-Index.
func (c *Client) write(ctx context.Context, cl *call, opts []WriteOption) (uint64, error) {
	rep, err := c.writeReply(ctx, cl, opts)
	if err != nil {
		return 0, err
	}
	index, _ := strconv.ParseUint(rep.header.Get(HeaderRaftIndex), 10, 64)
	return index, nil
}

// writeReply sends a key write and returns the member's answer.
func (c *Client) writeReply(ctx context.Context, cl *call, opts []WriteOption) (*reply, error) {
	cl.write, cl.ok = true, []int{http.StatusNoContent, http.StatusOK}
	for _, opt := range opts {
		opt(cl)
	}
	if cl.seq != 0 || cl.id != "" {
		if !ValidClientID(cl.id) || cl.seq == 0 {
			return nil, badInput(cl.op, cl.key, "WithSeq(%q, %d): want an id of 1 to 64 of [A-Za-z0-9._-] and a seq of at least 1", cl.id, cl.seq)
		}
	}
	if err := cl.checkWriteOptions(); err != nil {
		return nil, err
	}
	return c.do(ctx, cl)
}
