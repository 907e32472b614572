package daemon

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestTxnRetryAfterValueChanged: a POST /txn with X-Client-ID and
// X-Client-Seq gets a value too large for the dedup table to keep; the
// key changes; a retry of the transaction (as after a 504) is answered
// 200 with the first outcome and index, the get's versions and no value
// ("not_kept"), and applies nothing again. A 4xx would say the
// transaction was not applied.
func TestTxnRetryAfterValueChanged(t *testing.T) {
	m := startMember(t, oneMember(t, filepath.Join(t.TempDir(), "data")))
	waitLeader(t, m)
	big := strings.Repeat("v", 600) // more than the dedup table keeps
	if st, body := call(t, m, http.MethodPut, "/big", big); st != http.StatusNoContent {
		t.Fatalf("PUT /big: %d %s", st, body)
	}
	const txn = `{"success":[{"put":{"key":"n","value":"1"}},{"get":{"key":"big"}}]}`
	send := func() (int, []byte) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, m.ClientURL()+"/txn", strings.NewReader(txn))
		req.Header.Set("X-Client-ID", "txn-client")
		req.Header.Set("X-Client-Seq", "1")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, b
	}
	type answer struct {
		Succeeded bool   `json:"succeeded"`
		Index     uint64 `json:"index"`
		Responses []struct {
			Get *struct {
				Value    *string `json:"value"`
				ModIndex uint64  `json:"mod_index"`
				Found    bool    `json:"found"`
				NotKept  bool    `json:"not_kept"`
			} `json:"get"`
		} `json:"responses"`
	}
	decode := func(what string, st int, b []byte) answer {
		t.Helper()
		var a answer
		if st != http.StatusOK || json.Unmarshal(b, &a) != nil || len(a.Responses) != 2 || a.Responses[1].Get == nil {
			t.Fatalf("%s: %d %s", what, st, b)
		}
		return a
	}
	st, b := send()
	first := decode("POST /txn", st, b)
	if g := first.Responses[1].Get; !first.Succeeded || g.Value == nil || *g.Value != big || g.NotKept {
		t.Fatalf("POST /txn: %+v, get %+v", first, g)
	}
	if st, body := call(t, m, http.MethodPut, "/big", big+"!"); st != http.StatusNoContent {
		t.Fatalf("PUT /big again: %d %s", st, body)
	}
	st, b = send()
	retry := decode("the retry", st, b)
	if g, f := retry.Responses[1].Get, first.Responses[1].Get; !retry.Succeeded || retry.Index != first.Index ||
		!g.Found || !g.NotKept || g.Value != nil || g.ModIndex != f.ModIndex {
		t.Fatalf("the retry: %+v, get %+v; want the first's outcome and index %d, the get's version %d, no value", retry, g, first.Index, f.ModIndex)
	}
	if st, v := call(t, m, http.MethodGet, "/n", ""); st != http.StatusOK || v != "1" {
		t.Fatalf("GET /n: %d %q", st, v)
	}
}
