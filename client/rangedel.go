package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"sync"
)

// DeleteRangeOptions selects the keys of a DeleteRange: Prefix, or
// [Start, End), End "" meaning to the last key. Prefix cannot go with
// Start or End, and one of them must be set (Start "\x00" reaches every
// key).
type DeleteRangeOptions struct {
	Prefix     string
	Start, End string
}

// DeleteRangeResult is what a DeleteRange did.
type DeleteRangeResult struct {
	// Deleted is the number of keys deleted.
	Deleted int
	// Index is the raft index the delete applied at, when one group
	// applied it; Indexes has each group's in a sharded deployment, and
	// ConfigVersion the config they deleted at.
	Index         uint64
	Indexes       map[uint64]uint64
	ConfigVersion uint64
}

// rangeJSON is a range delete's answer: a member's index, or a router's
// indexes and config.
type rangeJSON struct {
	Index   uint64            `json:"index"`
	Deleted int               `json:"deleted"`
	Indexes map[string]uint64 `json:"indexes"`
	Config  uint64            `json:"config"`
}

// DeleteRange deletes every key opts selects (DELETE /key?prefix=), as one
// write of each group, and says how many. It is not sent again once it
// may have been applied: a member keeps no record of it, and a second one
// would also delete the keys written in between; such a failure is
// ErrOutcomeUnknown. In a sharded deployment every group of the config is
// asked at the config version the Client routes by; when a group is at
// another version (a bucket moved), the Client refreshes its config and
// asks every group again, so that no moved bucket is missed. The groups
// do not delete at one moment, and a failure after some group deleted is
// ErrOutcomeUnknown too. Through routers, the router asks the groups.
// The groups must run at cluster level 2 (code cluster_level otherwise).
func (c *Client) DeleteRange(ctx context.Context, opts DeleteRangeOptions) (DeleteRangeResult, error) {
	switch {
	case opts.Prefix != "" && (opts.Start != "" || opts.End != ""):
		return DeleteRangeResult{}, badInput("deleterange", "", "give Prefix, or Start and End, not both")
	case opts.Prefix == "" && opts.Start == "" && opts.End == "":
		return DeleteRangeResult{}, badInput("deleterange", "", "name the keys: Prefix, or Start and End")
	case opts.End != "" && opts.End <= opts.Start:
		return DeleteRangeResult{}, badInput("deleterange", "", "End %q is not after Start %q", opts.End, opts.Start)
	}
	if c.Sharded() {
		return c.deleteRangeGroups(ctx, opts)
	}
	return c.deleteRangeOne(ctx, &call{op: "deleterange", method: http.MethodDelete, path: "/key?" + rangeQuery(opts).Encode(),
		write: true, once: true, ok: []int{http.StatusOK}})
}

// rangeQuery is a range delete's query.
func rangeQuery(opts DeleteRangeOptions) url.Values {
	return rangeValues(opts.Prefix, opts.Start, opts.End)
}

// deleteRangeOne sends one range delete call and reads its answer.
func (c *Client) deleteRangeOne(ctx context.Context, cl *call) (DeleteRangeResult, error) {
	rep, err := c.do(ctx, cl)
	if err != nil {
		return DeleteRangeResult{}, err
	}
	var rj rangeJSON
	if err := json.Unmarshal(rep.body, &rj); err != nil {
		return DeleteRangeResult{}, &Error{Op: cl.op, Endpoint: rep.endpoint, Status: rep.status, Code: CodeInternal,
			Message: "unreadable range delete answer", Err: err, MaybeApplied: true}
	}
	out := DeleteRangeResult{Deleted: rj.Deleted, Index: rj.Index, ConfigVersion: rj.Config}
	for g, i := range rj.Indexes {
		if gid, err := strconv.ParseUint(g, 10, 64); err == nil {
			if out.Indexes == nil {
				out.Indexes = map[uint64]uint64{}
			}
			out.Indexes[gid] = i
		}
	}
	return out, nil
}

// deleteRangeGroups asks every group of the cached config to delete the
// range at that config's version, until one round finds every group at
// it.
func (c *Client) deleteRangeGroups(ctx context.Context, opts DeleteRangeOptions) (DeleteRangeResult, error) {
	ctx, cancel := c.callContext(ctx)
	defer cancel()
	backoff := c.cfg.Backoff
	deleted, anyApplied := 0, false
	for {
		r, err := c.currentRoutes(ctx)
		if err != nil {
			return DeleteRangeResult{}, maybeApplied(err, anyApplied)
		}
		gids, err := configGroups(r, "deleterange")
		if err != nil {
			return DeleteRangeResult{}, maybeApplied(err, anyApplied)
		}
		res := make([]DeleteRangeResult, len(gids))
		errs := make([]error, len(gids))
		var wg sync.WaitGroup
		for i, gid := range gids {
			q := rangeQuery(opts)
			q.Set("config_version", strconv.FormatUint(r.cfg.Version, 10))
			cl := &call{op: "deleterange", method: http.MethodDelete, path: "/key?" + q.Encode(), group: gid, version: r.cfg.Version,
				write: true, once: true, ok: []int{http.StatusOK}}
			wg.Go(func() { res[i], errs[i] = c.deleteRangeOne(ctx, cl) })
		}
		wg.Wait()
		out := DeleteRangeResult{Indexes: make(map[uint64]uint64, len(gids)), ConfigVersion: r.cfg.Version}
		var stale, failed *Error
		for i, gid := range gids {
			var e *Error
			switch {
			case errs[i] == nil:
				anyApplied = true
				deleted += res[i].Deleted
				out.Indexes[gid] = res[i].Index
			case errors.As(errs[i], &e) && e.Code == CodeWrongGroup && !e.MaybeApplied:
				stale = e
			default:
				if !errors.As(errs[i], &e) {
					e = &Error{Op: "deleterange", Err: errs[i]}
				}
				// The call's answer is the first failure, unless a later
				// group may have deleted: then it must say so, or the
				// caller would send the delete again.
				if failed == nil || e.MaybeApplied && !failed.MaybeApplied {
					failed = e
				}
			}
		}
		if failed != nil {
			return DeleteRangeResult{}, maybeApplied(failed, anyApplied)
		}
		if stale == nil {
			out.Deleted = deleted
			return out, nil
		}
		// A group is at another config: a bucket moved. Every group is
		// asked again at the new one, since a bucket may have moved to a
		// group that had already deleted.
		if _, rerr := c.Refresh(ctx, stale.Version); rerr != nil && ctx.Err() != nil {
			return DeleteRangeResult{}, maybeApplied(withErr(stale, ctx.Err()), anyApplied)
		}
		if !c.pause(ctx, &backoff) {
			return DeleteRangeResult{}, maybeApplied(withErr(stale, stopErr(ctx)), anyApplied)
		}
	}
}

// configGroups lists the groups of r's config, in order, or says which
// bucket no group serves (CodeNoOwner).
func configGroups(r *routes, op string) ([]uint64, error) {
	var gids []uint64
	for b, g := range r.cfg.Buckets {
		if _, ok := r.groups[g]; !ok {
			return nil, &Error{Op: op, Code: CodeNoOwner, Version: r.cfg.Version, Bucket: b,
				Message: fmt.Sprintf("config %d gives bucket %d to no group", r.cfg.Version, b)}
		}
		gids = append(gids, g)
	}
	slices.Sort(gids)
	return slices.Compact(gids), nil
}

// maybeApplied marks err, when some group applied the delete already, as
// a write of unknown outcome.
func maybeApplied(err error, applied bool) error {
	var e *Error
	if !applied {
		return err
	}
	if !errors.As(err, &e) {
		return &Error{Op: "deleterange", Err: err, MaybeApplied: true}
	}
	c := *e
	c.MaybeApplied = true
	return &c
}
