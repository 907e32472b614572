package httpapi

import (
	"encoding/base64"
	"encoding/binary"
	"hash/fnv"
	"net/http"
	"net/url"
	"strconv"
	"strings"
)

// This file holds GET /key's listing: ?prefix= or ?start=&end=, pages of
// at most ?limit= keys, continued with the opaque ?continue= token of the
// page before.

// Listing limits: the default and the largest page.
const (
	defaultListLimit = 1000
	maxListLimit     = 10000
)

// listResponseJSON is the body of a listing.
type listResponseJSON struct {
	Index    uint64   `json:"index"`
	KVs      []kvJSON `json:"kvs"`
	More     bool     `json:"more"`
	Continue string   `json:"continue,omitempty"`
}

// listRequest is a listing's parameters.
type listRequest struct {
	opts ListOptions
}

// parseList reads a listing's query: prefix, or start and end (each at
// most once, prefix not with either); limit 1 to 10000 (default 1000);
// keys_only; continue, a token from the page before of the same range;
// level and min_index as a read's; config_version (a router's, see
// ListOptions.ConfigVersion).
func parseList(q url.Values) (listRequest, error) {
	var req listRequest
	get := func(name string) (string, bool, error) {
		v, ok, err := queryParam(q, name)
		if err != nil {
			return "", false, withDetail(ErrBadList, "%s", humanMessage(err))
		}
		return v, ok, nil
	}
	prefix, hasPrefix, err := get("prefix")
	if err != nil {
		return req, err
	}
	start, hasStart, err := get("start")
	if err != nil {
		return req, err
	}
	end, hasEnd, err := get("end")
	if err != nil {
		return req, err
	}
	if hasPrefix && (hasStart || hasEnd) {
		return req, withDetail(ErrBadList, "give prefix, or start and end, not both")
	}
	req.opts.Prefix, req.opts.Start, req.opts.End = prefix, start, end
	req.opts.Limit = defaultListLimit
	if v, ok, err := get("limit"); err != nil {
		return req, err
	} else if ok {
		n, err := strconv.Atoi(strings.TrimSpace(v))
		if err != nil || n < 1 || n > maxListLimit {
			return req, withDetail(ErrBadList, "limit must be a whole number from 1 to %d; got %q", maxListLimit, truncate(v, 40))
		}
		req.opts.Limit = n
	}
	if v, ok, err := get("keys_only"); err != nil {
		return req, err
	} else if ok {
		b, err := strconv.ParseBool(strings.TrimSpace(v))
		if err != nil {
			return req, withDetail(ErrBadList, "keys_only must be true or false; got %q", truncate(v, 40))
		}
		req.opts.KeysOnly = b
	}
	if v, ok, err := get("config_version"); err != nil {
		return req, err
	} else if ok {
		n, err := strconv.ParseUint(strings.TrimSpace(v), 10, 64)
		if err != nil {
			return req, withDetail(ErrBadList, "config_version must be a config version (a decimal unsigned integer); got %q", truncate(v, 40))
		}
		req.opts.ConfigVersion = n
	}
	ro, err := readOptions(q)
	if err != nil {
		return req, err
	}
	req.opts.Stale, req.opts.MinIndex = ro.Stale, ro.MinIndex
	if err := notWatch(q); err != nil {
		return req, err
	}
	if v, ok, err := get("continue"); err != nil {
		return req, err
	} else if ok {
		tok, err := decodeContinue(v)
		if err != nil {
			return req, err
		}
		if tok.scope != scopeOf(req.opts) {
			return req, withDetail(ErrBadContinue, "the continue token was issued for another range; send it with the prefix, start and end of the page it came with")
		}
		req.opts.After = tok.after
		// A later page is read at no older state than the one before,
		// whichever member serves it.
		req.opts.MinIndex = max(req.opts.MinIndex, tok.index)
	}
	return req, nil
}

// list serves GET and HEAD /key.
func (h *handler) list(w http.ResponseWriter, r *http.Request) error {
	q, err := parseQuery(r.URL.RawQuery)
	if err != nil {
		return err
	}
	req, err := parseList(q)
	if err != nil {
		return err
	}
	ctx, cancel := h.callContext(r.Context())
	defer cancel()
	res, err := h.cfg.Store.List(ctx, req.opts)
	if err != nil {
		return err
	}
	out := listResponseJSON{Index: res.Index, KVs: make([]kvJSON, 0, len(res.KVs)), More: res.More}
	for _, kv := range res.KVs {
		out.KVs = append(out.KVs, kvOf(kv, !req.opts.KeysOnly))
	}
	if res.More && len(res.KVs) > 0 {
		out.Continue = encodeContinue(continueToken{
			scope: scopeOf(req.opts),
			index: res.Index,
			after: res.KVs[len(res.KVs)-1].Key,
		})
	}
	w.Header()["X-Raft-Index"] = []string{strconv.FormatUint(res.Index, 10)}
	return writeJSON(w, r, http.StatusOK, out)
}

// continueToken is what a continue token carries: the range it continues
// (a hash of prefix, start and end), the index the page before was read
// at, and the last key of that page.
type continueToken struct {
	scope uint64
	index uint64
	after string
}

// continueVersion is the first byte of a continue token: its format.
const continueVersion = 1

// scopeOf hashes the range of a listing, so that a token is not taken
// for another range's.
func scopeOf(o ListOptions) uint64 {
	h := fnv.New64a()
	var n [binary.MaxVarintLen64]byte
	for _, s := range []string{o.Prefix, o.Start, o.End} {
		h.Write(n[:binary.PutUvarint(n[:], uint64(len(s)))])
		h.Write([]byte(s))
	}
	return h.Sum64()
}

// encodeContinue is t in URL-safe base64, without padding: the version,
// the scope (8 bytes), the index (uvarint), then the key.
func encodeContinue(t continueToken) string {
	b := make([]byte, 0, 1+8+binary.MaxVarintLen64+len(t.after))
	b = append(b, continueVersion)
	b = binary.BigEndian.AppendUint64(b, t.scope)
	b = binary.AppendUvarint(b, t.index)
	b = append(b, t.after...)
	return base64.RawURLEncoding.EncodeToString(b)
}

// decodeContinue reads a token encodeContinue wrote.
func decodeContinue(s string) (continueToken, error) {
	bad := withDetail(ErrBadContinue, "the continue token is not one a listing issued; start the listing again without it")
	b, err := base64.RawURLEncoding.DecodeString(strings.TrimSpace(s))
	if err != nil || len(b) < 1+8+1 || b[0] != continueVersion {
		return continueToken{}, bad
	}
	t := continueToken{scope: binary.BigEndian.Uint64(b[1:9])}
	index, n := binary.Uvarint(b[9:])
	if n <= 0 || len(b[9+n:]) == 0 {
		return continueToken{}, bad
	}
	t.index, t.after = index, string(b[9+n:])
	return t, nil
}
