package bench

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// This file holds the list workload. The run first writes Keyspace keys
// under its prefix (not measured); then each worker walks the prefix from
// its start, one page of PageSize keys at a time (GET /key?prefix=, then
// &continue= with the token of the page before), and starts again at the
// end. A complete walk must return every key once, in key order: the
// keys are not written during the walks, so anything else is a problem.

func (d *dataRun) list(ctx context.Context) error {
	if err := d.preloadKeys(ctx); err != nil || ctx.Err() != nil {
		return err
	}
	var keys, walks atomic.Uint64
	type walk struct {
		token string
		last  string
		n     int
	}
	walksOf := make([]walk, d.cfg.Clients)
	d.measure(ctx, func(ctx context.Context, id int, _ *rand.Rand, h *Histogram) {
		w := &walksOf[id]
		begin := time.Now()
		p, a, err := d.getPage(ctx, d.endpoint(id), d.cfg.Prefix, d.cfg.PageSize, w.token)
		if err != nil || a.status != http.StatusOK {
			d.fail(ctx, a, err)
			*w = walk{} // start the walk again
			return
		}
		h.Record(time.Since(begin))
		d.ops.Add(1)
		keys.Add(uint64(len(p.KVs)))
		if len(p.KVs) > d.cfg.PageSize || (p.More && len(p.KVs) == 0) {
			d.problem("list: a page of %d keys (limit %d, more %v)", len(p.KVs), d.cfg.PageSize, p.More)
		}
		for _, kv := range p.KVs {
			if want := d.numKey(w.n); kv.Key != want {
				d.problem("list: walk of worker %d: key %d is %q, want %q (after %q)", id, w.n, kv.Key, want, w.last)
				*w = walk{}
				return
			}
			w.last = kv.Key
			w.n++
		}
		if p.More {
			w.token = p.Continue
			return
		}
		if w.n != d.cfg.Keyspace {
			d.problem("list: a walk of worker %d ended after %d keys, want %d", id, w.n, d.cfg.Keyspace)
		} else {
			walks.Add(1)
		}
		*w = walk{}
	})
	d.res.Keys, d.res.Walks = keys.Load(), walks.Load()
	return nil
}

// preloadKeys writes the keyspace once, Clients writers at a time, each
// write retried; a write that still fails fails the run.
func (d *dataRun) preloadKeys(ctx context.Context) error {
	var failed atomic.Int64
	var first atomic.Value
	var wg sync.WaitGroup
	for id := range d.cfg.Clients {
		wg.Go(func() {
			vals := newValueGen(d.cfg.ValueSize)
			for k := id; k < d.cfg.Keyspace && ctx.Err() == nil; k += d.cfg.Clients {
				u := keyURL(d.endpoint(id), d.numKey(k))
				ok, why := retry(ctx, func() (bool, string) {
					a, err := d.do(ctx, http.MethodPut, u, nil, asText(vals.value(uint64(k+1))))
					return err == nil && a.status == http.StatusNoContent, describe(a.status, clipBytes(a.body), err)
				})
				if !ok && ctx.Err() == nil {
					failed.Add(1)
					first.CompareAndSwap(nil, fmt.Sprintf("PUT %s: %s", u, why))
				}
			}
		})
	}
	wg.Wait()
	if n := failed.Load(); n > 0 {
		return fmt.Errorf("%w: %d of %d writes failed; first: %s", ErrPreload, n, d.cfg.Keyspace, first.Load())
	}
	return nil
}

// asText maps random bytes to printable ASCII, so that listings carry
// them as "value" (a value that is not UTF-8 would come as value_base64).
func asText(b []byte) []byte {
	for i, c := range b {
		b[i] = 'a' + c%26
	}
	return b
}
