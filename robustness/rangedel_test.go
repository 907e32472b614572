package robustness_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"time"
)

// rangeDeletePrefix holds the range delete checker's keys.
const rangeDeletePrefix = "rdel/"

// rangeDeleteStats counts what the range delete checker did.
type rangeDeleteStats struct {
	checked, unknown, skipped atomic.Int64
}

func (s *rangeDeleteStats) String() string {
	return fmt.Sprintf("%d range deletes checked, %d of unknown outcome, %d not checked (a router or group did not answer)",
		s.checked.Load(), s.unknown.Load(), s.skipped.Load())
}

// rangeDeletes runs until ctx ends: it writes a few keys under a fresh
// prefix through one router, deletes the prefix through the other, and
// lists it. After a range delete answered 200, no key acknowledged
// before it may be left, whichever buckets moved meanwhile (client.
// DeleteRange asks every group at one config version, and again at the
// next after a move). A key whose write was not acknowledged may yet be
// applied after the delete, so only acknowledged keys count.
func (r *shardRun) rangeDeletes(ctx context.Context, stats *rangeDeleteStats) {
	hc := &http.Client{Timeout: requestTimeout}
	send := func(method, u string) (int, []byte) { return sendOnce(ctx, hc, method, u) }
	for n := 0; ctx.Err() == nil; n++ {
		routers := r.routerURLs()
		if len(routers) == 0 {
			time.Sleep(100 * time.Millisecond)
			continue
		}
		writeVia, deleteVia := routers[n%len(routers)], routers[(n+1)%len(routers)]
		prefix := fmt.Sprintf("%s%d/", rangeDeletePrefix, n)
		acked := map[string]bool{}
		for i := range 8 {
			k := fmt.Sprintf("%s%d", prefix, i)
			if code, _ := send(http.MethodPut, writeVia+"/"+k); code == http.StatusNoContent {
				acked[k] = true
			}
		}
		code, body := send(http.MethodDelete, deleteVia+"/key?prefix="+url.QueryEscape(prefix))
		switch {
		case ctx.Err() != nil:
			return
		case code == http.StatusOK:
		case code == 0 || code >= 500 && code != http.StatusServiceUnavailable:
			stats.unknown.Add(1)
			continue
		default:
			stats.skipped.Add(1)
			continue
		}
		var del struct{ Deleted int }
		if json.Unmarshal(body, &del) != nil || del.Deleted < len(acked) {
			r.violation("range delete of %s through %s answered %q, with %d of its keys acknowledged", prefix, deleteVia, body, len(acked))
		}
		code, body = send(http.MethodGet, writeVia+"/key?prefix="+url.QueryEscape(prefix))
		if code != http.StatusOK {
			stats.skipped.Add(1)
			continue
		}
		var page struct {
			KVs []struct{ Key string }
		}
		if err := json.Unmarshal(body, &page); err != nil {
			r.violation("listing %s after its range delete: %v in %q", prefix, err, body)
			continue
		}
		for _, kv := range page.KVs {
			if acked[kv.Key] {
				r.violation("key %s, acknowledged before the range delete of %s answered 200, is still there", kv.Key, prefix)
			}
		}
		stats.checked.Add(1)
		time.Sleep(100 * time.Millisecond)
	}
}

// clearRangeKeys deletes every key the range delete checker left (those
// of deletes of unknown outcome, and writes applied after their prefix's
// delete), so that the placement check counts only the workloads' keys.
func (r *shardRun) clearRangeKeys() {
	hc := &http.Client{Timeout: requestTimeout}
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		for _, rt := range r.routerURLs() {
			if code, _ := sendOnce(context.Background(), hc, http.MethodDelete, rt+"/key?prefix="+url.QueryEscape(rangeDeletePrefix)); code == http.StatusOK {
				return
			}
		}
	}
	r.violation("the range delete checker's keys (%s) could not be deleted in 30 s", rangeDeletePrefix)
}

// sendOnce sends one request (a PUT's body is "v", the others have none)
// and returns its status and body; status 0 when it got no answer.
func sendOnce(ctx context.Context, hc *http.Client, method, u string) (int, []byte) {
	var body io.Reader
	if method == http.MethodPut {
		body = strings.NewReader("v")
	}
	req, err := http.NewRequestWithContext(ctx, method, u, body)
	if err != nil {
		return 0, nil
	}
	resp, err := hc.Do(req)
	if err != nil {
		return 0, nil
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}
