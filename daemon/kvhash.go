package daemon

import (
	"context"

	"github.com/raftkv/raftkv/httpapi"
	"github.com/raftkv/raftkv/kvstore"
)

// This file adapts kvstore's hash check (Store.HashKV and HashAt) to
// httpapi's Store. It needs no level: a binary before it applies a hash
// request as nothing, and answers GET /debug/hash as a reserved path.

func (s store) HashKV(ctx context.Context) (httpapi.HashResult, error) {
	r, err := s.Store.HashKV(ctx)
	return wireHash(r), wireError(err)
}

func (s store) HashAt(ctx context.Context, index uint64) (httpapi.HashResult, error) {
	r, err := s.Store.HashAt(ctx, index)
	return wireHash(r), wireError(err)
}

func wireHash(r kvstore.HashResult) httpapi.HashResult {
	return httpapi.HashResult{Index: r.Index, Keys: r.Keys, Hash: r.Hash}
}
