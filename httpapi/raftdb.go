package httpapi

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/url"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/raftkv/raftkv/internal/kvjson"
	"github.com/raftkv/raftkv/internal/queryparam"
)

// This file holds what raftdb and hraftd users expect: read levels, POST /key
// and POST /join.

// parseQuery parses a query string; nil for an empty one.
func parseQuery(rawQuery string) (url.Values, error) {
	if rawQuery == "" {
		return nil, nil
	}
	q, err := url.ParseQuery(rawQuery)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadQuery, err)
	}
	return q, nil
}

// writeParams refuses a query parameter of a write (what, such as "PUT
// /<key>") other than those it takes: a write with a misspelt ?tll=5
// would otherwise be applied without its TTL. Reads ignore what they do
// not know, as raftdb's do.
func writeParams(q url.Values, what string, takes ...string) error {
	if msg := queryparam.Unknown(q, what, takes...); msg != "" {
		return withDetail(ErrUnknownParam, "%s", msg)
	}
	return nil
}

// noParams refuses any query parameter of r, a write (what) that takes
// none.
func noParams(r *http.Request, what string) error {
	if r.URL.RawQuery == "" {
		return nil
	}
	q, err := parseQuery(r.URL.RawQuery)
	if err != nil {
		return err
	}
	return writeParams(q, what)
}

// readOptions reads a GET's level and min_index query parameters; others
// are ignored. Without either the read is linearizable; level=none, as the
// README's table of levels calls the absent level, is the same. min_index
// alone asks for read-your-writes without a quorum round: wait until
// applied, then serve locally. raftdb's default level could be stale;
// raftkv's is linearizable.
func readOptions(q url.Values) (ReadOptions, error) {
	var opts ReadOptions
	if q == nil {
		return opts, nil
	}
	level, hasLevel, err := queryParam(q, "level")
	if err != nil {
		return opts, err
	}
	if hasLevel {
		switch strings.ToLower(strings.TrimSpace(level)) { // as raftdb compares
		case "stale":
			opts.Stale = true
		case "default", "consistent", "none":
		default:
			return opts, withDetail(ErrBadReadLevel, "unknown level %q; level must be one of default, consistent, none, stale", level)
		}
	}
	minIndex, hasMinIndex, err := queryParam(q, "min_index")
	if err != nil || !hasMinIndex {
		return opts, err
	}
	if opts.MinIndex, err = strconv.ParseUint(minIndex, 10, 64); err != nil {
		return opts, withMore(ErrBadMinIndex, "got %q", minIndex)
	}
	if !hasLevel {
		opts.Stale = true
	}
	return opts, nil
}

// levelOnly reads a query that is nothing but one of the levels spelt as
// clients send them ("level=stale"), which readOptions would read alike,
// without building url.Values: a stale read's parsing cost a twentieth of
// its CPU. Any other query reports false.
func levelOnly(rawQuery string) (opts ReadOptions, ok bool) {
	switch rawQuery {
	case "level=stale":
		return ReadOptions{Stale: true}, true
	case "level=default", "level=consistent", "level=none":
		return ReadOptions{}, true
	}
	return ReadOptions{}, false
}

// valueEncoding reads the encoding query parameter of GET /key/<k> and
// POST /key: true for base64, false when absent.
func valueEncoding(q url.Values) (b64 bool, err error) {
	enc, ok, err := queryParam(q, "encoding")
	if err != nil || !ok {
		return false, err
	}
	if !strings.EqualFold(strings.TrimSpace(enc), "base64") {
		return false, withDetail(ErrBadEncoding, "unknown encoding %q; encoding must be base64", enc)
	}
	return true, nil
}

// queryParam returns the one value of name; a repeated name is a 400 rather
// than a guess at which one the client meant.
func queryParam(q url.Values, name string) (value string, ok bool, err error) {
	switch vs := q[name]; len(vs) {
	case 0:
		return "", false, nil
	case 1:
		return vs[0], true, nil
	}
	return "", false, badRequest("query parameter " + name + " given more than once")
}

// putAll serves raftdb's write, POST /key with {"k":"v",...}, as one atomic write.
func (h *handler) putAll(w http.ResponseWriter, r *http.Request) error {
	q, err := parseQuery(r.URL.RawQuery)
	if err != nil {
		return err
	}
	b64, err := valueEncoding(q)
	if err != nil {
		return err
	}
	// Options of a one-key write would be ignored here: refused rather
	// than a write that does not do what was asked.
	if _, ok := q["ttl"]; ok {
		return withDetail(ErrBadTTL, "POST /key takes no ttl: give a key a TTL with PUT /<key>?ttl=, or in a transaction's put")
	}
	if err := writeParams(q, "POST /key", "encoding"); err != nil {
		return err
	}
	if hasCondition(r.Header) {
		return withDetail(ErrBadPrecondition, "POST /key writes several keys unconditionally: make one key's write conditional with PUT /<key>, or several with POST /txn")
	}
	wo, err := WriteOptionsOf(r.Header)
	if err != nil {
		return err
	}
	body, err := readBody(w, r, h.cfg.MaxValueBytes)
	if err != nil {
		return err
	}
	kvs, err := h.decodeKeyObject(body, b64)
	if err != nil {
		return err
	}
	ctx, cancel := h.callContext(r.Context())
	defer cancel()
	var index uint64
	if wo.ClientID != "" {
		var wr Written
		wr, err = h.cfg.Store.Write(ctx, opsOf(kvs), wo)
		index = wr.Index
	} else {
		index, err = h.cfg.Store.PutAll(ctx, kvs)
	}
	if err != nil {
		return err
	}
	writeApplied(w, index)
	return nil
}

// opsOf returns the puts of kvs in key order, so that a write's
// operations do not depend on map order.
func opsOf(kvs map[string][]byte) []Op {
	ops := make([]Op, 0, len(kvs))
	for _, k := range slices.Sorted(maps.Keys(kvs)) {
		ops = append(ops, Op{Key: k, Value: kvs[k]})
	}
	return ops
}

// decodeKeyObject decodes a non-empty JSON object whose values are all
// strings, token by token so that the type of each value and a repeated key
// are caught rather than coerced or silently overwritten. With b64 each
// value is standard, padded base64 and stands for the bytes it encodes.
// A body that is not UTF-8 is refused: encoding/json would replace its
// invalid bytes with U+FFFD.
func (h *handler) decodeKeyObject(body []byte, b64 bool) (map[string][]byte, error) {
	bad := func(reason string, args ...any) (map[string][]byte, error) {
		return nil, withMore(ErrBadKeyObject, reason, args...)
	}
	if !utf8.Valid(body) {
		return nil, ErrBodyNotUTF8
	}
	if esc, ok := kvjson.LoneSurrogate(body); ok {
		return bad("the escape %s is half of a UTF-16 surrogate pair and stands for no character; send such a value base64-encoded with POST /key?encoding=base64, or such a key with PUT /<key>", esc)
	}
	badToken := func(err error) (map[string][]byte, error) {
		// Token says the input ended with io.EOF up to Go 1.26, and from
		// Go 1.27 on with a SyntaxError of Unmarshal's usual sentence.
		var se *json.SyntaxError
		if errors.Is(err, io.EOF) || errors.As(err, &se) && strings.Contains(se.Error(), "unexpected end of JSON input") {
			return bad("the body ends inside the object")
		}
		return bad("%s", jsonProblem(err))
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	tok, err := dec.Token()
	switch {
	case errors.Is(err, io.EOF):
		return bad("empty body")
	case err != nil:
		return bad("%s", jsonProblem(err))
	case tok != json.Delim('{'):
		return bad("got %s", describeToken(tok))
	}
	kvs := map[string][]byte{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return badToken(err)
		}
		key, ok := tok.(string)
		if !ok { // Token reports malformed keys as errors; this is defensive
			return bad("got %s where a key belongs", describeToken(tok))
		}
		if err := h.checkKey(key); err != nil {
			return nil, err
		}
		if _, dup := kvs[key]; dup {
			return bad("key %q given twice", key)
		}
		if tok, err = dec.Token(); err != nil {
			return badToken(err)
		}
		value, ok := tok.(string)
		if !ok {
			return bad("the value of %q is %s", key, describeToken(tok))
		}
		if !b64 {
			kvs[key] = []byte(value)
			continue
		}
		if kvs[key], err = base64.StdEncoding.DecodeString(value); err != nil {
			return nil, withDetail(ErrBadKeyObject, "the value of %q is not base64 (standard alphabet, padded), as encoding=base64 asks", key)
		}
	}
	if _, err := dec.Token(); err != nil { // the closing '}'
		return badToken(err)
	}
	if len(kvs) == 0 {
		return bad("empty object")
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return bad("data after the object")
	}
	return kvs, nil
}

// decodeStrict decodes the JSON value body holds into v, refusing a
// field v does not have (a misspelt one would otherwise be dropped), and
// reports whether anything follows the value. An empty body is io.EOF.
func decodeStrict(body []byte, v any) (trailing bool, err error) {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return false, err
	}
	_, err = dec.Token()
	return !errors.Is(err, io.EOF), nil
}

// jsonProblem says what encoding/json found wrong, without its "json: "
// prefix or Go type names.
func jsonProblem(err error) string {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		want := jsonTypeOf(te.Type)
		if te.Field == "" {
			return fmt.Sprintf("the body is %s, not %s", withArticle(te.Value), want)
		}
		return fmt.Sprintf("%s is %s, not %s", te.Field, withArticle(te.Value), want)
	}
	return strings.TrimPrefix(err.Error(), "json: ")
}

// jsonTypeOf names, with its article, the JSON type that encoding/json
// decodes into a value of type t.
func jsonTypeOf(t reflect.Type) string {
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t == nil {
		return "another type"
	}
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "a boolean"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "a whole number"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.Slice:
		if t.Elem().Kind() == reflect.Uint8 {
			return "a base64 string"
		}
		return "an array"
	case reflect.Array:
		return "an array"
	case reflect.Map, reflect.Struct:
		return "an object"
	}
	return "another type"
}

// withArticle puts "a" or "an" before a JSON type name.
func withArticle(typ string) string {
	if strings.ContainsAny(typ[:min(1, len(typ))], "aeiou") {
		return "an " + typ
	}
	return "a " + typ
}

func describeToken(tok json.Token) string {
	switch tok := tok.(type) {
	case nil:
		return "null"
	case bool:
		return "a boolean"
	case float64:
		return "a number"
	case string:
		return "a string"
	case json.Delim:
		if tok == '[' {
			return "an array"
		}
		return "an object"
	}
	return fmt.Sprintf("%v", tok)
}

// joinRequest is raftdb's {"id","httpAddr","raftAddr"} and hraftd's
// {"id","addr"}, and raftkv's "learner". httpAddr is taken and not used:
// members publish their own client URL. Other fields are refused: a
// misspelt "learner" would add a voter.
type joinRequest struct {
	ID       json.RawMessage `json:"id"` // 4 or "4"
	RaftAddr string          `json:"raftAddr"`
	Addr     string          `json:"addr"` // hraftd's raft address
	HTTPAddr json.RawMessage `json:"httpAddr"`
	Learner  json.RawMessage `json:"learner"` // true: add as a learner
}

// join serves POST /join, raftdb's and hraftd's way to add a member.
func (h *handler) join(w http.ResponseWriter, r *http.Request) error {
	if err := noParams(r, "POST /join"); err != nil {
		return err
	}
	body, err := readBody(w, r, maxJoinBytes)
	if err != nil {
		return err
	}
	id, peerURL, learner, err := parseJoin(body)
	if err != nil {
		return err
	}
	if err := h.addMemberAs(r.Context(), id, peerURL, learner); err != nil {
		return err
	}
	// The new member tags its peer traffic with the cluster's id, which
	// it learns here (raftkv --join-addr).
	if cid := h.cfg.Cluster.Status().ClusterID; cid != "" {
		w.Header().Set(HeaderClusterID, cid)
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// parseJoin returns the member id and peer URL a join request names, and
// whether it asks to join as a learner.
func parseJoin(body []byte) (id uint64, peerURL string, learner bool, err error) {
	var req joinRequest
	if trailing, err := decodeStrict(body, &req); err != nil {
		return 0, "", false, withMore(fmt.Errorf("%w: %w", ErrBadJoin, err), "%s", jsonProblem(err))
	} else if trailing {
		return 0, "", false, withMore(ErrBadJoin, "data after the object")
	}
	if id, err = parseJoinID(req.ID); err != nil {
		return 0, "", false, err
	}
	if learner, err = parseJoinLearner(req.Learner); err != nil {
		return 0, "", false, err
	}
	addr := strings.TrimSpace(req.RaftAddr)
	if addr == "" {
		addr = strings.TrimSpace(req.Addr)
	}
	if addr == "" {
		return 0, "", false, withMore(ErrBadJoin, "raftAddr (or addr), the new member's peer address, is missing")
	}
	if !strings.Contains(addr, "://") {
		addr = "http://" + addr // raftdb and hraftd send host:port
	}
	if peerURL, err = parsePeerURL(addr); err != nil {
		return 0, "", false, err
	}
	return id, peerURL, learner, nil
}

// parseJoinID accepts a positive integer as a JSON number or string.
func parseJoinID(raw json.RawMessage) (uint64, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return 0, withMore(ErrBadJoinID, "no id given")
	}
	text := string(raw)
	if raw[0] == '"' {
		if err := json.Unmarshal(raw, &text); err != nil {
			return 0, withMore(fmt.Errorf("%w: %w", ErrBadJoin, err), "%s", jsonProblem(err))
		}
	}
	id, ok := parseMemberID(text)
	if !ok {
		return 0, withMore(ErrBadJoinID, "got %s", raw)
	}
	return id, nil
}
