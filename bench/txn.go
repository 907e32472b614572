package bench

import (
	"context"
	"encoding/json"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// This file holds the txn workload. Key number k of the keyspace is a
// hash tag with two keys, <prefix>{k}/a and <prefix>{k}/b (one bucket in
// a sharded deployment). Each worker uses its own tags (those equal to
// its number modulo Clients) when the keyspace has one for each, so that
// it measures transactions whose compare holds; with a smaller keyspace
// the workers share tags and conflict. Each transaction compares a's mod index with the
// one its worker last saw (0: absent) and on success puts the counter
// plus one into both; on failure it gets a, and the worker learns a's
// version and counter from it. After the run, a and b of each tag hold
// the same counter at the same mod index (written by one transaction),
// and the counters add up to the successes plus at most the transactions
// of unknown outcome.

// txnKeys returns the two keys of tag k.
func (d *dataRun) txnKeys(k int) (a, b string) {
	tag := d.cfg.Prefix + "{" + Key(uint64(k), digits(d.cfg.Keyspace)) + "}/"
	return tag + "a", tag + "b"
}

// txnPick picks a tag for worker id: one of its own (those equal to id
// modulo Clients) when there are enough for each worker, so that its
// compares hold unless a write of unknown outcome intervened; else any.
func (d *dataRun) txnPick(id int, rng *rand.Rand) int {
	if d.cfg.Keyspace < d.cfg.Clients {
		return rng.IntN(d.cfg.Keyspace)
	}
	p := newPartition(id, d.cfg.Clients, d.cfg.Keyspace)
	return p.key(rng.IntN(p.size))
}

// txnSeen is what a worker last saw of a tag: a's mod index and counter.
type txnSeen struct{ mod, n uint64 }

type txnBody struct {
	Compare []txnCompareJSON `json:"compare"`
	Success []map[string]any `json:"success"`
	Failure []map[string]any `json:"failure"`
}

type txnCompareJSON struct {
	Key      string `json:"key"`
	Target   string `json:"target"`
	Result   string `json:"result"`
	ModIndex uint64 `json:"mod_index"`
}

type txnAnswer struct {
	Succeeded bool   `json:"succeeded"`
	Index     uint64 `json:"index"`
	ModIndex  uint64 `json:"mod_index"`
	Responses []struct {
		Get *struct {
			Value    string `json:"value"`
			ModIndex uint64 `json:"mod_index"`
			Found    bool   `json:"found"`
		} `json:"get"`
	} `json:"responses"`
}

func (d *dataRun) txn(ctx context.Context) error {
	var doubt atomic.Uint64
	seen := make([]map[int]txnSeen, d.cfg.Clients)
	for i := range seen {
		seen[i] = make(map[int]txnSeen)
	}
	d.measure(ctx, func(ctx context.Context, id int, rng *rand.Rand, h *Histogram) {
		k := d.txnPick(id, rng)
		ka, kb := d.txnKeys(k)
		s := seen[id][k]
		next := strconv.FormatUint(s.n+1, 10)
		body, _ := json.Marshal(txnBody{
			Compare: []txnCompareJSON{{Key: ka, Target: "mod", Result: "equal", ModIndex: s.mod}},
			Success: []map[string]any{{"put": map[string]string{"key": ka, "value": next}}, {"put": map[string]string{"key": kb, "value": next}}},
			Failure: []map[string]any{{"get": map[string]string{"key": ka}}},
		})
		begin := time.Now()
		a, err := d.do(ctx, http.MethodPost, d.endpoint(id)+"/txn", map[string]string{"Content-Type": "application/json"}, body)
		if err != nil || a.status != http.StatusOK {
			if ctx.Err() == nil {
				doubt.Add(1)
				delete(seen[id], k) // a may have changed: learn it again
			}
			d.fail(ctx, a, err)
			return
		}
		lat := time.Since(begin)
		var ans txnAnswer
		if err := json.Unmarshal(a.body, &ans); err != nil {
			d.problem("txn: answer %q: %v", clipBytes(a.body), err)
			return
		}
		if ans.Succeeded {
			h.Record(lat)
			d.ops.Add(1)
			// The version the puts wrote, which is not the raft index
			// when that index gave one to the tag's bucket already.
			seen[id][k] = txnSeen{mod: ans.ModIndex, n: s.n + 1}
			if ans.ModIndex == 0 {
				d.problem("txn: a transaction that put two keys of one tag answered no mod_index: %q", clipBytes(a.body))
			}
			return
		}
		d.conflict.Add(1)
		if len(ans.Responses) != 1 || ans.Responses[0].Get == nil {
			d.problem("txn: failure branch answered %q, want one get", clipBytes(a.body))
			return
		}
		g := ans.Responses[0].Get
		if !g.Found {
			seen[id][k] = txnSeen{}
			return
		}
		n, err := strconv.ParseUint(g.Value, 10, 64)
		if err != nil {
			d.problem("txn: key %s holds %q, not a counter", ka, clip(g.Value))
			return
		}
		seen[id][k] = txnSeen{mod: g.ModIndex, n: n}
	})
	if ctx.Err() != nil {
		return nil
	}
	kvs, err := d.listAll(ctx, d.cfg.Prefix)
	if err != nil {
		d.problem("txn: reading the counters back: %v", err)
		return nil
	}
	byKey := make(map[string]listedKV, len(kvs))
	for _, kv := range kvs {
		byKey[kv.Key] = kv
	}
	var sum uint64
	for _, kv := range kvs {
		tag, ok := strings.CutSuffix(kv.Key, "/a")
		if !ok {
			if _, ok := strings.CutSuffix(kv.Key, "/b"); !ok {
				d.problem("txn: unexpected key %s", kv.Key)
			}
			continue
		}
		b, ok := byKey[tag+"/b"]
		if !ok || b.Value != kv.Value || b.ModIndex != kv.ModIndex {
			d.problem("txn: %s holds %q at %d, its pair %q at %d (present %v): not written together", kv.Key, clip(kv.Value), kv.ModIndex, clip(b.Value), b.ModIndex, ok)
		}
		n, err := strconv.ParseUint(kv.Value, 10, 64)
		if err != nil {
			d.problem("txn: key %s holds %q, not a counter", kv.Key, clip(kv.Value))
			continue
		}
		sum += n
	}
	for _, kv := range kvs {
		if tag, ok := strings.CutSuffix(kv.Key, "/b"); ok {
			if _, ok := byKey[tag+"/a"]; !ok {
				d.problem("txn: %s without its pair %s/a", kv.Key, tag)
			}
		}
	}
	d.checkSum("txn", sum, d.res.Ops, doubt.Load())
	return nil
}
