package daemon

import (
	"context"

	"github.com/raftkv/raftkv/httpapi"
	"github.com/raftkv/raftkv/kvstore"
)

// This file adapts kvstore's Store.List to httpapi's Store.

// List reads one page of keys from one consistent state. On a shard
// member kvstore lists only the buckets the group serves, and a
// ConfigVersion other than the applied config's is a WrongGroupError (the
// router's map is stale).
func (s store) List(ctx context.Context, o httpapi.ListOptions) (httpapi.ListResult, error) {
	r, err := s.Store.List(ctx, kvstore.ListOptions{
		Prefix:        o.Prefix,
		Start:         o.Start,
		End:           o.End,
		After:         o.After,
		Limit:         o.Limit,
		KeysOnly:      o.KeysOnly,
		Stale:         o.Stale,
		MinIndex:      o.MinIndex,
		ConfigVersion: o.ConfigVersion,
	})
	if err != nil {
		return httpapi.ListResult{}, wireError(err)
	}
	out := httpapi.ListResult{KVs: make([]httpapi.KeyValue, len(r.KVs)), More: r.More, Index: r.Index}
	for i, kv := range r.KVs {
		out.KVs[i] = wireKV(kv)
	}
	return out, nil
}
