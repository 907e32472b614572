package router

import (
	"net/http"
	"strconv"

	"github.com/raftkv/raftkv/client"
)

// rangeJSON is a range delete's answer: the keys deleted, each group's
// index and the config the groups deleted at.
type rangeJSON struct {
	Deleted int               `json:"deleted"`
	Indexes map[string]uint64 `json:"indexes"`
	Config  uint64            `json:"config"`
}

// deleteRange serves DELETE /key?prefix=|start=&end=, asked of every group
// by the Client (see client.DeleteRange): each group deletes its part at
// one config version; the groups do not delete at one moment.
func (h *handler) deleteRange(w http.ResponseWriter, r *http.Request) error {
	q, err := singleQuery(r)
	if err != nil {
		return err
	}
	for name := range q {
		switch name {
		case "prefix", "start", "end", "config_version":
		default:
			return bad("a range delete takes prefix, or start and end; not %q", name)
		}
	}
	if hasCondition(r.Header) {
		return bad("a range delete is unconditional: delete one key at a version with DELETE /key/<key>, or several with POST /txn")
	}
	opts := client.DeleteRangeOptions{Prefix: q.Get("prefix"), Start: q.Get("start"), End: q.Get("end")}
	switch {
	case opts.Prefix != "" && (opts.Start != "" || opts.End != ""):
		return bad("give prefix, or start and end, not both")
	case opts.Prefix == "" && opts.Start == "" && opts.End == "":
		return bad("DELETE /key deletes a range of keys and must name it: ?prefix=p, or ?start=a&end=b (end excluded; ?start=%%00 reaches every key); to delete one key, use DELETE /key/<key>")
	case opts.End != "" && opts.End <= opts.Start:
		return bad("the end %q is not after the start %q", opts.End, opts.Start)
	}
	if _, ok := q["config_version"]; ok {
		return bad("config_version is the router's to choose: it asks every group at the version it routes by")
	}
	res, err := h.cfg.Client.DeleteRange(r.Context(), opts)
	if err != nil {
		return err
	}
	out := rangeJSON{Deleted: res.Deleted, Indexes: make(map[string]uint64, len(res.Indexes)), Config: res.ConfigVersion}
	for g, i := range res.Indexes {
		out.Indexes[strconv.FormatUint(g, 10)] = i
	}
	return writeJSON(w, r, http.StatusOK, out)
}
