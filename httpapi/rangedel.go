package httpapi

import (
	"net/http"
	"net/url"
	"strconv"
	"strings"
)

// This file holds DELETE /key: a range delete, ?prefix= or ?start=&end=
// as a listing names its keys, answered with the number deleted.

// deleteRangeJSON is the body of a range delete's answer.
type deleteRangeJSON struct {
	Index   uint64 `json:"index"`
	Deleted int    `json:"deleted"`
}

// parseDeleteRange reads a range delete's query: prefix, or start and
// end (each at most once, prefix not with either; one of them at least),
// and config_version (a router's).
func parseDeleteRange(q url.Values) (DeleteRangeOptions, error) {
	var o DeleteRangeOptions
	for name := range q {
		switch name {
		case "prefix", "start", "end", "config_version":
		default:
			// A delete of every key a range names must not run with a
			// limit or a filter it would ignore.
			return o, withDetail(ErrBadRange, "a range delete takes prefix, or start and end; not %q", truncate(name, 40))
		}
	}
	get := func(name string) (string, bool, error) {
		v, ok, err := queryParam(q, name)
		if err != nil {
			return "", false, withDetail(ErrBadRange, "%s", humanMessage(err))
		}
		return v, ok, nil
	}
	prefix, hasPrefix, err := get("prefix")
	if err != nil {
		return o, err
	}
	start, hasStart, err := get("start")
	if err != nil {
		return o, err
	}
	end, hasEnd, err := get("end")
	if err != nil {
		return o, err
	}
	switch {
	case hasPrefix && (hasStart || hasEnd):
		return o, withDetail(ErrBadRange, "give prefix, or start and end, not both")
	case prefix == "" && start == "" && end == "":
		return o, withDetail(ErrBadRange, "DELETE /key deletes a range of keys and must name it: ?prefix=p, or ?start=a&end=b (end excluded; ?start=%%00 reaches every key); to delete one key, use DELETE /key/<key>")
	case end != "" && end <= start:
		return o, withDetail(ErrBadRange, "the end %q is not after the start %q", truncate(end, 100), truncate(start, 100))
	}
	o.Prefix, o.Start, o.End = prefix, start, end
	if v, ok, err := get("config_version"); err != nil {
		return o, err
	} else if ok {
		n, err := strconv.ParseUint(strings.TrimSpace(v), 10, 64)
		if err != nil {
			return o, withDetail(ErrBadRange, "config_version must be a config version (a decimal unsigned integer); got %q", truncate(v, 40))
		}
		o.ConfigVersion = n
	}
	return o, nil
}

// deleteRange serves DELETE /key.
func (h *handler) deleteRange(w http.ResponseWriter, r *http.Request) error {
	q, err := parseQuery(r.URL.RawQuery)
	if err != nil {
		return err
	}
	if hasCondition(r.Header) {
		return withDetail(ErrBadPrecondition, "a range delete is unconditional: delete one key at a version with DELETE /key/<key>, or several with POST /txn")
	}
	opts, err := parseDeleteRange(q)
	if err != nil {
		return err
	}
	ctx, cancel := h.callContext(r.Context())
	defer cancel()
	res, err := h.cfg.Store.DeleteRange(ctx, opts)
	if err != nil {
		return err
	}
	w.Header()["X-Raft-Index"] = []string{strconv.FormatUint(res.Index, 10)}
	return writeJSON(w, r, http.StatusOK, deleteRangeJSON(res))
}
