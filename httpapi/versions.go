package httpapi

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// This file holds a key's versions on the wire: the headers of a read
// (ETag, X-Raft-Index, X-Create-Index, X-TTL), conditional writes
// (If-Match, If-None-Match) and a put's time to live (?ttl=).

// TTL bounds: a shorter TTL would expire before a leader could act on it,
// a longer one is a mistake more often than not.
const (
	minTTL = time.Second
	maxTTL = 8760 * time.Hour
)

// etag is the entity tag of the version whose mod index is mod.
func etag(mod uint64) string { return `"` + strconv.FormatUint(mod, 10) + `"` }

// readAt is a read's error with the index the read was served at, so
// that a 404 still says up to where the member looked (X-Raft-Index).
type readAt struct {
	err   error
	index uint64
}

func (e *readAt) Error() string { return e.err.Error() }
func (e *readAt) Unwrap() error { return e.err }

// setVersion sets the headers of a read of kv served at index. Keys are
// assigned in their canonical form (Header.Set would canonicalize them on
// every response); the fast path writes the same lines (fastConn.get).
func setVersion(h http.Header, kv KeyValue, index uint64) {
	h["Etag"] = []string{etag(kv.ModIndex)}
	h["X-Create-Index"] = []string{strconv.FormatUint(kv.CreateIndex, 10)}
	h["X-Raft-Index"] = []string{strconv.FormatUint(index, 10)}
	if kv.TTL > 0 {
		h["X-Ttl"] = []string{ttlSeconds(kv.TTL)}
	}
}

// ttlSeconds is d in seconds, as short as it can be written: "30", "1.5".
func ttlSeconds(d time.Duration) string {
	return strconv.FormatFloat(d.Seconds(), 'f', -1, 64)
}

// parseTTL reads a ttl: a Go duration ("30s", "1h30m") or a whole number
// of seconds ("30"), from 1s to 8760h.
func parseTTL(s string) (time.Duration, error) {
	t := strings.TrimSpace(s)
	var d time.Duration
	if t != "" && strings.Trim(t, "0123456789") == "" {
		n, err := strconv.ParseUint(t, 10, 64)
		if err != nil || n > uint64(maxTTL/time.Second) {
			return 0, withMore(ErrBadTTL, "got %q", truncate(s, 80))
		}
		d = time.Duration(n) * time.Second
	} else {
		var err error
		if d, err = time.ParseDuration(t); err != nil {
			return 0, withMore(ErrBadTTL, "got %q", truncate(s, 80))
		}
	}
	if d < minTTL || d > maxTTL {
		return 0, withMore(ErrBadTTL, "got %q", truncate(s, 80))
	}
	return d, nil
}

// ttlOf reads the ttl query parameter of a PUT; 0 when absent.
func ttlOf(q url.Values) (time.Duration, error) {
	v, ok, err := queryParam(q, "ttl")
	if err != nil || !ok {
		return 0, err
	}
	return parseTTL(v)
}

// conditionKind is what a write's precondition asks.
type conditionKind uint8

const (
	condNone   conditionKind = iota
	condMod                  // If-Match: "<mod>": the key is at version mod (0: absent)
	condExists               // If-Match: *
	condAbsent               // If-None-Match: *
)

// condition is a write's precondition.
type condition struct {
	kind conditionKind
	mod  uint64
	// asked is the header as sent, for the 412's sentence.
	asked string
}

// hasCondition reports whether hdr carries If-Match or If-None-Match,
// even empty: what a write that takes no condition refuses.
func hasCondition(hdr http.Header) bool {
	return len(hdr.Values("If-Match")) > 0 || len(hdr.Values("If-None-Match")) > 0
}

// conditionOf reads a write's If-Match and If-None-Match headers: at most
// one of them, at most once; If-Match one entity tag "<mod index>" (the
// quotes may be left out) or *; If-None-Match * alone, and only on a PUT
// (a delete of an absent key has nothing to do). A weak tag (W/"5") is
// refused: a write needs the strong comparison.
func conditionOf(hdr http.Header, method string) (condition, error) {
	im, inm := hdr.Values("If-Match"), hdr.Values("If-None-Match")
	switch {
	case len(im) == 0 && len(inm) == 0:
		return condition{}, nil
	case len(im) > 0 && len(inm) > 0:
		return condition{}, withMore(ErrBadPrecondition, "send If-Match or If-None-Match, not both")
	case len(im) > 1 || len(inm) > 1:
		return condition{}, withMore(ErrBadPrecondition, "the header is given more than once")
	case len(inm) == 1:
		v := strings.TrimSpace(inm[0])
		if v != "*" {
			return condition{}, withMore(ErrBadPrecondition, "If-None-Match: %q; a write takes only If-None-Match: * (only if the key is absent)", truncate(v, 80))
		}
		if method != http.MethodPut {
			return condition{}, withMore(ErrBadPrecondition, "If-None-Match: * goes with PUT; to delete a key only at a version, use If-Match")
		}
		return condition{kind: condAbsent, asked: "If-None-Match: *"}, nil
	}
	v := strings.TrimSpace(im[0])
	if v == "*" {
		return condition{kind: condExists, asked: "If-Match: *"}, nil
	}
	mod, ok := parseETag(v)
	if !ok {
		return condition{}, withMore(ErrBadPrecondition, "got If-Match: %q", truncate(v, 80))
	}
	return condition{kind: condMod, mod: mod, asked: "If-Match: " + etag(mod)}, nil
}

// parseETag reads "<mod index>", or the number without quotes.
func parseETag(v string) (uint64, bool) {
	if len(v) >= 2 && v[0] == '"' && v[len(v)-1] == '"' {
		v = v[1 : len(v)-1]
	}
	if v == "" || v[0] == '+' {
		return 0, false
	}
	mod, err := strconv.ParseUint(v, 10, 64)
	return mod, err == nil
}

// compare is the condition as a Compare of key.
func (c condition) compare(key string) Compare {
	switch c.kind {
	case condMod:
		return Compare{Key: key, Target: CompareMod, Op: CompareEqual, Index: c.mod}
	case condExists:
		return Compare{Key: key, Target: CompareExists, Op: CompareEqual, Exists: true}
	}
	return Compare{Key: key, Target: CompareExists, Op: CompareEqual, Exists: false}
}

// keyWrite is one write of a key as PUT and DELETE ask for it.
type keyWrite struct {
	key    string
	value  []byte
	delete bool
	ttl    time.Duration
	cond   condition
	wo     WriteOptions
}

// writeKey applies kw within parent and returns its raft index and, for a
// put, the key's new version. A plain write is a Put or Delete (Write when
// it carries an identity or a TTL); a conditional one is a Txn: the
// condition, the write on success, a get of the key on failure, whose
// version the 412 reports.
func (h *handler) writeKey(parent context.Context, kw keyWrite) (Written, error) {
	ctx, cancel := h.callContext(parent)
	defer cancel()
	if kw.cond.kind == condNone {
		switch {
		case kw.wo.ClientID != "" || kw.ttl > 0:
			return h.cfg.Store.Write(ctx, []Op{{Key: kw.key, Value: kw.value, Delete: kw.delete, TTL: kw.ttl}}, kw.wo)
		case kw.delete:
			index, err := h.cfg.Store.Delete(ctx, kw.key)
			return Written{Index: index}, err
		}
		return h.cfg.Store.Put(ctx, kw.key, kw.value)
	}
	op := TxnOp{Type: TxnPut, Key: kw.key, Value: kw.value, TTL: kw.ttl}
	if kw.delete {
		op = TxnOp{Type: TxnDelete, Key: kw.key}
	}
	res, err := h.cfg.Store.Txn(ctx, Txn{
		Compares: []Compare{kw.cond.compare(kw.key)},
		Success:  []TxnOp{op},
		Failure:  []TxnOp{{Type: TxnGet, Key: kw.key}},
	}, kw.wo)
	if err != nil {
		return Written{}, err
	}
	if res.Succeeded {
		return Written{Index: res.Index, ModIndex: res.ModIndex}, nil
	}
	pe := &PreconditionError{Key: kw.key, Asked: kw.cond.asked, Index: res.Index}
	if len(res.Gets) == 1 && res.Gets[0].Found {
		pe.Current, pe.Found = res.Gets[0].KeyValue, true
	}
	return Written{}, pe
}
