package client

import (
	"cmp"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"iter"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"sync"
	"unicode/utf8"
)

// ListOptions selects the keys of a List.
type ListOptions struct {
	// Prefix selects the keys with this prefix; or Start and End select
	// [Start, End), End "" meaning to the last key. All three empty:
	// every key. Prefix cannot go with Start or End.
	Prefix     string
	Start, End string
	// Limit is the most keys of one page: 1 to 10000; 0: the server's
	// default (1000).
	Limit int
	// KeysOnly leaves the values out.
	KeysOnly bool
	// Continue is the Continue of the page before, of the same range.
	Continue string
	// Stale and MinIndex are as a Get's WithStale and WithMinIndex; the
	// default is a linearizable listing.
	Stale    bool
	MinIndex uint64
}

// ListPage is one page of a List.
type ListPage struct {
	// KVs are the keys, in key order.
	KVs []KeyValue
	// More reports keys in the range after the last one; Continue then
	// lists them (as ListOptions.Continue).
	More     bool
	Continue string
	// Index is the raft index of the state the page was read at, when
	// one group served it. Indexes has each group's, in a sharded
	// deployment (where a page is gathered from every group: each
	// group's part is one consistent state of that group, and there is no
	// state common to all groups).
	Index   uint64
	Indexes map[uint64]uint64
	// ConfigVersion is the config every group served its part at, in a
	// sharded deployment: each of Indexes is an index of the group that
	// config lists under its id.
	ConfigVersion uint64
}

// List returns one page of the keys opts selects, in key order. A later
// page (opts.Continue) is read at no older state than the page before,
// whichever member serves it. In a sharded deployment the page is
// gathered from every group, each asked for opts.Limit keys after the
// page before and for the config version the Client routes by (a group
// at another version refuses, and the Client refreshes its config and
// gathers again), merged in key order and cut at opts.Limit; its
// Continue covers every group. Through routers, the routers gather.
func (c *Client) List(ctx context.Context, opts ListOptions) (ListPage, error) {
	if opts.Prefix != "" && (opts.Start != "" || opts.End != "") {
		return ListPage{}, badInput("list", "", "give Prefix, or Start and End, not both")
	}
	if opts.Limit < 0 || opts.Limit > maxListLimit {
		return ListPage{}, badInput("list", "", "Limit %d: want 0 (the default) to %d", opts.Limit, maxListLimit)
	}
	if c.Sharded() {
		return c.listGroups(ctx, opts)
	}
	q := listQuery(opts.Prefix, opts.Start, opts.End, opts)
	if opts.Continue != "" {
		q.Set("continue", opts.Continue)
	}
	return c.listOne(ctx, &call{op: "list", method: http.MethodGet, path: "/key?" + q.Encode(), ok: []int{http.StatusOK}})
}

// ListAll iterates over every key opts selects, page after page (from
// opts.Continue, if set), in key order, until the range ends or an error,
// which it yields last. Each page is read at no older state than the one
// before; the listing as a whole is not one state.
func (c *Client) ListAll(ctx context.Context, opts ListOptions) iter.Seq2[KeyValue, error] {
	return func(yield func(KeyValue, error) bool) {
		for {
			page, err := c.List(ctx, opts)
			if err != nil {
				yield(KeyValue{}, err)
				return
			}
			for _, kv := range page.KVs {
				if !yield(kv, nil) {
					return
				}
			}
			if !page.More || page.Continue == "" {
				return
			}
			opts.Continue = page.Continue
		}
	}
}

// maxListLimit is the largest page a member serves.
const maxListLimit = 10000

// listQuery is a listing's query: the range, and opts' limit, keys_only
// and read level.
func listQuery(prefix, start, end string, opts ListOptions) url.Values {
	q := rangeValues(prefix, start, end)
	if opts.Limit > 0 {
		q.Set("limit", strconv.Itoa(opts.Limit))
	}
	if opts.KeysOnly {
		q.Set("keys_only", "true")
	}
	if opts.Stale {
		q.Set("level", "stale")
	}
	if opts.MinIndex > 0 {
		q.Set("min_index", strconv.FormatUint(opts.MinIndex, 10))
	}
	return q
}

// rangeValues is the query naming a range of keys, as a listing and a
// range delete take it: prefix, or start and end (none: every key).
func rangeValues(prefix, start, end string) url.Values {
	q := url.Values{}
	switch {
	case prefix != "":
		q.Set("prefix", prefix)
	case start != "" || end != "":
		q.Set("start", start)
		if end != "" {
			q.Set("end", end)
		}
	}
	return q
}

// listJSON is a listing's answer.
type listJSON struct {
	Index    uint64   `json:"index"`
	KVs      []kvJSON `json:"kvs"`
	More     bool     `json:"more"`
	Continue string   `json:"continue"`
	// Indexes and Config are a router's: each group's index, and the
	// config the groups were at.
	Indexes map[string]uint64 `json:"indexes"`
	Config  uint64            `json:"config"`
}

// listOne sends one listing call and reads its page.
func (c *Client) listOne(ctx context.Context, cl *call) (ListPage, error) {
	rep, err := c.do(ctx, cl)
	if err != nil {
		return ListPage{}, err
	}
	var lj listJSON
	if err := json.Unmarshal(rep.body, &lj); err != nil {
		return ListPage{}, &Error{Op: cl.op, Endpoint: rep.endpoint, Status: rep.status, Code: CodeInternal, Message: "unreadable listing", Err: err}
	}
	page := ListPage{More: lj.More, Continue: lj.Continue, Index: lj.Index, ConfigVersion: lj.Config, KVs: make([]KeyValue, 0, len(lj.KVs))}
	for i := range lj.KVs {
		kv, err := lj.KVs[i].keyValue()
		if err != nil {
			return ListPage{}, &Error{Op: cl.op, Endpoint: rep.endpoint, Status: rep.status, Code: CodeInternal, Message: "unreadable listing", Err: err}
		}
		page.KVs = append(page.KVs, kv)
	}
	for g, i := range lj.Indexes {
		gid, err := strconv.ParseUint(g, 10, 64)
		if err != nil {
			continue
		}
		if page.Indexes == nil {
			page.Indexes = map[uint64]uint64{}
		}
		page.Indexes[gid] = i
	}
	return page, nil
}

// groupsToken is the continue token of a listing gathered from groups:
// the range, the last key returned, and each group's index then.
type groupsToken struct {
	Prefix, Start, End, After string
	Indexes                   map[uint64]uint64
}

// tokenWire is a groupsToken as its continue token carries it, JSON in
// base64. Version 2 carries the keys as bytes (base64 again inside the
// JSON), so keys that are not UTF-8 come back as they were; version 1,
// of earlier clients, carried them as JSON text, which has U+FFFD for
// each byte that is not UTF-8, and is still read.
type tokenWire struct {
	V       int               `json:"v"`
	Prefix  string            `json:"p,omitempty"` // version 1
	Start   string            `json:"s,omitempty"`
	End     string            `json:"e,omitempty"`
	After   string            `json:"a,omitempty"`
	PrefixB []byte            `json:"pb,omitempty"` // version 2
	StartB  []byte            `json:"sb,omitempty"`
	EndB    []byte            `json:"eb,omitempty"`
	AfterB  []byte            `json:"ab,omitempty"`
	Indexes map[uint64]uint64 `json:"i,omitempty"`
}

// encode writes t as a version 1 token when its keys are UTF-8, which
// earlier clients (a router not yet upgraded) read too, else as version 2.
func (t groupsToken) encode() string {
	w := tokenWire{V: 1, Prefix: t.Prefix, Start: t.Start, End: t.End, After: t.After, Indexes: t.Indexes}
	if !utf8.ValidString(t.Prefix) || !utf8.ValidString(t.Start) || !utf8.ValidString(t.End) || !utf8.ValidString(t.After) {
		w = tokenWire{V: 2, PrefixB: []byte(t.Prefix), StartB: []byte(t.Start), EndB: []byte(t.End), AfterB: []byte(t.After), Indexes: t.Indexes}
	}
	b, _ := json.Marshal(w) // strings, bytes and numbers always encode
	return base64.RawURLEncoding.EncodeToString(b)
}

func decodeGroupsToken(s string, opts ListOptions) (groupsToken, error) {
	var w tokenWire
	var t groupsToken
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err == nil {
		err = json.Unmarshal(b, &w)
	}
	switch {
	case err != nil:
	case w.V == 1:
		t = groupsToken{Prefix: w.Prefix, Start: w.Start, End: w.End, After: w.After, Indexes: w.Indexes}
	case w.V == 2:
		t = groupsToken{Prefix: string(w.PrefixB), Start: string(w.StartB), End: string(w.EndB), After: string(w.AfterB), Indexes: w.Indexes}
	}
	if t.After == "" {
		return t, badInput("list", "", "the continue token is not one a gathered listing issued; start the listing again without it")
	}
	if t.Prefix != opts.Prefix || t.Start != opts.Start || t.End != opts.End {
		return t, badInput("list", "", "the continue token was issued for another range; send it with the Prefix, Start and End of the page it came with")
	}
	return t, nil
}

// prefixEnd is the first key after every key with prefix p ("": none).
func prefixEnd(p string) string {
	b := []byte(p)
	for i := len(b) - 1; i >= 0; i-- {
		if b[i] < 0xff {
			b[i]++
			return string(b[:i+1])
		}
	}
	return ""
}

// listGroups gathers one page from every group of the cached config.
func (c *Client) listGroups(ctx context.Context, opts ListOptions) (ListPage, error) {
	ctx, cancel := c.callContext(ctx)
	defer cancel()
	var tok groupsToken
	if opts.Continue != "" {
		var err error
		if tok, err = decodeGroupsToken(opts.Continue, opts); err != nil {
			return ListPage{}, err
		}
	}
	// The range each group is asked for: after the last key returned,
	// as [start, end).
	prefix, start, end := opts.Prefix, opts.Start, opts.End
	if tok.After != "" {
		if prefix != "" {
			end = prefixEnd(prefix)
			prefix = ""
		}
		start = tok.After + "\x00"
	}
	backoff := c.cfg.Backoff
	for {
		r, err := c.currentRoutes(ctx)
		if err != nil {
			return ListPage{}, err
		}
		page, err := c.gather(ctx, r, prefix, start, end, opts, tok.Indexes)
		var e *Error
		if errors.As(err, &e) && e.Code == CodeWrongGroup {
			// The cached map is stale, or a group has not applied it
			// yet: refresh (to at least the version it named) and
			// gather again.
			if _, rerr := c.Refresh(ctx, e.Version); rerr != nil && ctx.Err() != nil {
				return ListPage{}, withErr(e, ctx.Err())
			}
			if !c.pause(ctx, &backoff) {
				return ListPage{}, withErr(e, stopErr(ctx))
			}
			continue
		}
		if err != nil {
			return ListPage{}, err
		}
		if page.More {
			page.Continue = groupsToken{Prefix: opts.Prefix, Start: opts.Start, End: opts.End,
				After: page.KVs[len(page.KVs)-1].Key, Indexes: page.Indexes}.encode()
		}
		return page, nil
	}
}

// gather lists [start, end) (or prefix) on every group of r at once,
// each at no older state than minIndexes says, and merges the pages. A
// group at another config version answers 421: the error's code is then
// wrong_group.
func (c *Client) gather(ctx context.Context, r *routes, prefix, start, end string, opts ListOptions, minIndexes map[uint64]uint64) (ListPage, error) {
	gids, err := configGroups(r, "list")
	if err != nil {
		return ListPage{}, err
	}
	pages := make([]ListPage, len(gids))
	errs := make([]error, len(gids))
	var wg sync.WaitGroup
	for i, gid := range gids {
		q := listQuery(prefix, start, end, opts)
		q.Set("config_version", strconv.FormatUint(r.cfg.Version, 10))
		if mi := max(opts.MinIndex, minIndexes[gid]); mi > 0 {
			q.Set("min_index", strconv.FormatUint(mi, 10))
		}
		cl := &call{op: "list", method: http.MethodGet, path: "/key?" + q.Encode(), group: gid, version: r.cfg.Version, ok: []int{http.StatusOK}}
		wg.Go(func() { pages[i], errs[i] = c.listOne(ctx, cl) })
	}
	wg.Wait()
	// A stale map first: the gather is then tried again.
	for _, err := range errs {
		var e *Error
		if errors.As(err, &e) && e.Code == CodeWrongGroup {
			return ListPage{}, err
		}
	}
	for _, err := range errs {
		if err != nil {
			return ListPage{}, err
		}
	}
	out := ListPage{Indexes: make(map[uint64]uint64, len(gids)), ConfigVersion: r.cfg.Version}
	for i, gid := range gids {
		out.Indexes[gid] = pages[i].Index
		out.KVs = append(out.KVs, pages[i].KVs...)
		out.More = out.More || pages[i].More
	}
	slices.SortFunc(out.KVs, func(a, b KeyValue) int { return cmp.Compare(a.Key, b.Key) })
	limit := opts.Limit
	if limit == 0 {
		limit = defaultListLimit
	}
	if len(out.KVs) > limit {
		// Every key a group did not return sorts after the keys it did,
		// so after the limit-th key of the merge.
		out.KVs, out.More = out.KVs[:limit], true
	}
	if len(gids) == 1 {
		out.Index = pages[0].Index
	}
	return out, nil
}

// defaultListLimit is a member's page when no limit is given.
const defaultListLimit = 1000
