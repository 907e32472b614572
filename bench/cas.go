package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"sync/atomic"
	"time"
)

// This file holds the cas workload and the listing both it and txn use
// to check what they wrote.
//
// Each CAS reads a random key of the keyspace (GET /<k>: its value
// and ETag) and writes the value plus one back with If-Match: <ETag> (or
// If-None-Match: * when the key is absent). A 204 is a success, a 412 a
// conflict; anything else is an error whose outcome may be either. The
// values are decimal counters, so after the run the keys' values add up
// to the successes, plus at most the writes of unknown outcome: fewer is
// a lost update, more an update applied twice or counted as a conflict.

// digits is the width of the decimal key numbers below n.
func digits(n int) int { return len(strconv.Itoa(max(n-1, 0))) }

// numKey is key number k of the run: prefix, then k zero-padded.
func (d *dataRun) numKey(k int) string {
	return d.cfg.Prefix + Key(uint64(k), digits(d.cfg.Keyspace))
}

func (d *dataRun) cas(ctx context.Context) error {
	var doubt atomic.Uint64
	d.measure(ctx, func(ctx context.Context, id int, rng *rand.Rand, h *Histogram) {
		k := rng.IntN(d.cfg.Keyspace)
		e, key := d.endpoint(id), d.numKey(k)
		begin := time.Now()
		a, err := d.do(ctx, http.MethodGet, e+"/"+escapeKey(key), nil, nil) // the raw value
		var hdr map[string]string
		var n uint64
		switch {
		case err == nil && a.status == http.StatusOK:
			etag := a.header.Get("ETag")
			if n, err = strconv.ParseUint(string(a.body), 10, 64); err != nil || etag == "" {
				d.problem("cas: key %s holds %q with ETag %q, not a counter the run wrote", d.numKey(k), clipBytes(a.body), etag)
				return
			}
			hdr = map[string]string{"If-Match": etag}
		case err == nil && a.status == http.StatusNotFound:
			hdr = map[string]string{"If-None-Match": "*"}
		default:
			d.fail(ctx, a, err)
			return
		}
		a, err = d.do(ctx, http.MethodPut, keyURL(e, key), hdr, strconv.AppendUint(nil, n+1, 10))
		switch {
		case err == nil && a.status == http.StatusNoContent:
			h.Record(time.Since(begin))
			d.ops.Add(1)
		case err == nil && a.status == http.StatusPreconditionFailed:
			d.conflict.Add(1)
		default:
			if ctx.Err() == nil {
				doubt.Add(1)
			}
			d.fail(ctx, a, err)
		}
	})
	if ctx.Err() != nil {
		return nil
	}
	kvs, err := d.listAll(ctx, d.cfg.Prefix)
	if err != nil {
		d.problem("cas: reading the counters back: %v", err)
		return nil
	}
	var sum uint64
	for _, kv := range kvs {
		n, err := strconv.ParseUint(kv.Value, 10, 64)
		if err != nil {
			d.problem("cas: key %s holds %q, not a counter", kv.Key, clip(kv.Value))
			continue
		}
		sum += n
	}
	d.checkSum("cas", sum, d.res.Ops, doubt.Load())
	return nil
}

// checkSum records a problem unless the counters' sum is the successes,
// plus at most the writes of unknown outcome.
func (d *dataRun) checkSum(mode string, sum, ops, doubt uint64) {
	switch {
	case sum < ops:
		d.problem("%s: the counters add up to %d after %d successes: %d lost updates", mode, sum, ops, ops-sum)
	case sum > ops+doubt:
		d.problem("%s: the counters add up to %d after %d successes and %d writes of unknown outcome: %d updates too many",
			mode, sum, ops, doubt, sum-ops-doubt)
	}
}

// listedKV is one key of a listing.
type listedKV struct {
	Key      string `json:"key"`
	Value    string `json:"value"`
	ModIndex uint64 `json:"mod_index"`
}

// listPage is the body of a listing.
type listPage struct {
	Index    uint64     `json:"index"`
	KVs      []listedKV `json:"kvs"`
	More     bool       `json:"more"`
	Continue string     `json:"continue"`
}

// listURL is the URL of a page of prefix's listing.
func listURL(e, prefix string, limit int, token string) string {
	q := url.Values{"prefix": {prefix}, "limit": {strconv.Itoa(limit)}}
	if token != "" {
		q.Set("continue", token)
	}
	return e + "/key?" + q.Encode()
}

// getPage reads one page of a listing.
func (d *dataRun) getPage(ctx context.Context, e, prefix string, limit int, token string) (listPage, answer, error) {
	var p listPage
	a, err := d.do(ctx, http.MethodGet, listURL(e, prefix, limit, token), nil, nil)
	if err != nil || a.status != http.StatusOK {
		return p, a, err
	}
	if err := json.Unmarshal(a.body, &p); err != nil {
		return p, a, fmt.Errorf("listing: %w", err)
	}
	if p.More && p.Continue == "" {
		return p, a, fmt.Errorf("listing: more keys and no continue token")
	}
	return p, a, nil
}

// listAll reads every key under prefix, linearizably, page by page,
// retrying a failed page.
func (d *dataRun) listAll(ctx context.Context, prefix string) ([]listedKV, error) {
	var out []listedKV
	token := ""
	for {
		var p listPage
		var last string
		ok, why := retry(ctx, func() (bool, string) {
			var a answer
			var err error
			p, a, err = d.getPage(ctx, d.endpoint(0), prefix, MaxPageSize, token)
			return err == nil && a.status == http.StatusOK, describe(a.status, clip(string(a.body)), err)
		})
		if !ok {
			return nil, fmt.Errorf("%s", why)
		}
		for _, kv := range p.KVs {
			if kv.Key <= last {
				return nil, fmt.Errorf("listing: key %q after %q", kv.Key, last)
			}
			last = kv.Key
		}
		out = append(out, p.KVs...)
		if !p.More {
			return out, nil
		}
		token = p.Continue
	}
}

func clip(s string) string {
	if len(s) > maxErrorBody {
		return s[:maxErrorBody]
	}
	return s
}

func clipBytes(b []byte) string { return clip(string(b)) }
