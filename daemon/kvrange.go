package daemon

import (
	"context"

	"github.com/raftkv/raftkv/httpapi"
	"github.com/raftkv/raftkv/kvstore"
)

// This file adapts kvstore's Store.DeleteRange to httpapi's Store.

// DeleteRange deletes the keys of a range as one write, once the group
// runs at levelDeleteRange: members of a lower level apply the entry as
// nothing. On a shard member kvstore deletes only the buckets the group
// serves, and a ConfigVersion other than the applied config's is a
// WrongGroupError (the router's map is stale).
func (s store) DeleteRange(ctx context.Context, o httpapi.DeleteRangeOptions) (httpapi.DeleteRangeResult, error) {
	if err := s.gate(ctx, levelDeleteRange, "range deletes"); err != nil {
		return httpapi.DeleteRangeResult{}, err
	}
	r, err := s.Store.DeleteRange(ctx, kvstore.DeleteRangeOptions{
		Prefix:        o.Prefix,
		Start:         o.Start,
		End:           o.End,
		ConfigVersion: o.ConfigVersion,
	})
	if err != nil {
		return httpapi.DeleteRangeResult{}, wireError(err)
	}
	return httpapi.DeleteRangeResult{Index: r.Index, Deleted: r.Deleted}, nil
}

func (noKeys) DeleteRange(context.Context, httpapi.DeleteRangeOptions) (httpapi.DeleteRangeResult, error) {
	return httpapi.DeleteRangeResult{}, errNoKeys
}
