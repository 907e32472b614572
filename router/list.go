package router

import (
	"net/http"
	"strconv"
	"strings"

	"github.com/raftkv/raftkv/client"
	"github.com/raftkv/raftkv/internal/kvjson"
)

// maxListLimit is a member's largest page.
const maxListLimit = 10000

// kvJSON is a key in a JSON answer, as a member writes it (kvjson.KV).
type kvJSON = kvjson.KV

func kvOf(kv client.KeyValue, withValue bool) kvJSON {
	return kvjson.Of(kv.Key, kv.Value, kv.CreateIndex, kv.ModIndex, kv.TTL, withValue)
}

// listJSON is a listing's answer: a member's, with each group's index,
// the config the groups were at, and the cursor (a Last-Event-ID) that
// starts a watch right after the listing.
type listJSON struct {
	Index    uint64            `json:"index,omitempty"` // one group's; none across groups (Indexes)
	Indexes  map[string]uint64 `json:"indexes,omitempty"`
	Config   uint64            `json:"config,omitempty"`
	Cursor   string            `json:"cursor,omitempty"`
	KVs      []kvJSON          `json:"kvs"`
	More     bool              `json:"more"`
	Continue string            `json:"continue,omitempty"`
}

// list serves GET /key?prefix=|start=&end=, limit, keys_only, continue and
// level, gathered from every group by the Client (see client.List): keys
// in key order, the limit across groups, one continue token for every
// group. min_index is refused: an index is one group's, and a later page
// is read at no older index of each group than the page before anyway.
func (h *handler) list(w http.ResponseWriter, r *http.Request) error {
	q, err := singleQuery(r)
	if err != nil {
		return err
	}
	if err := notWatch(q); err != nil {
		return err
	}
	opts := client.ListOptions{Prefix: q.Get("prefix"), Start: q.Get("start"), End: q.Get("end"), Continue: q.Get("continue")}
	if opts.Prefix != "" && (opts.Start != "" || opts.End != "") {
		return bad("give prefix, or start and end, not both")
	}
	if v, ok := q["limit"]; ok {
		n, err := strconv.Atoi(strings.TrimSpace(v[0]))
		if err != nil || n < 1 || n > maxListLimit {
			return bad("limit must be a whole number from 1 to %d; got %q", maxListLimit, v[0])
		}
		opts.Limit = n
	}
	if v, ok := q["keys_only"]; ok {
		b, err := strconv.ParseBool(strings.TrimSpace(v[0]))
		if err != nil {
			return bad("keys_only must be true or false; got %q", v[0])
		}
		opts.KeysOnly = b
	}
	if _, ok := q["min_index"]; ok {
		return bad("min_index names an index of one group's log; a router's listing takes none (its continue token keeps each group's)")
	}
	if v, ok := q["level"]; ok {
		if opts.Stale, err = staleLevel(v[0]); err != nil {
			return err
		}
	}
	page, err := h.c.List(r.Context(), opts)
	if err != nil {
		return err
	}
	out := listJSON{Index: page.Index, KVs: make([]kvJSON, 0, len(page.KVs)), More: page.More, Continue: page.Continue}
	for _, kv := range page.KVs {
		out.KVs = append(out.KVs, kvOf(kv, !opts.KeysOnly))
	}
	if len(page.Indexes) > 0 {
		out.Indexes = make(map[string]uint64, len(page.Indexes))
		cur := cursor{}
		for g, i := range page.Indexes {
			out.Indexes[strconv.FormatUint(g, 10)] = i
			cur[g] = position{index: i, pos: -1, since: page.ConfigVersion}
		}
		out.Config, out.Cursor = page.ConfigVersion, cur.String()
	}
	return writeJSON(w, r, http.StatusOK, out)
}
