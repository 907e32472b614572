package daemon

import (
	"context"
	"encoding/json"
	"fmt"
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
// 504 result_not_kept, naming the index it applied at, and applies
// nothing again. A 4xx (it was a 409) would say the transaction was not
// applied.
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
		req.Header.Set("Accept", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, b
	}
	st, b := send()
	var first struct {
		Succeeded bool   `json:"succeeded"`
		Index     uint64 `json:"index"`
	}
	if st != http.StatusOK || json.Unmarshal(b, &first) != nil || !first.Succeeded {
		t.Fatalf("POST /txn: %d %s", st, b)
	}
	if st, body := call(t, m, http.MethodPut, "/big", big+"!"); st != http.StatusNoContent {
		t.Fatalf("PUT /big again: %d %s", st, body)
	}
	st, b = send()
	var e struct{ Error, Code string }
	if st != http.StatusGatewayTimeout || json.Unmarshal(b, &e) != nil || e.Code != "result_not_kept" ||
		!strings.Contains(e.Error, fmt.Sprintf("index %d", first.Index)) {
		t.Fatalf("the retry: %d %s; want 504 result_not_kept naming index %d", st, b, first.Index)
	}
	if st, v := call(t, m, http.MethodGet, "/n", ""); st != http.StatusOK || v != "1" {
		t.Fatalf("GET /n: %d %q", st, v)
	}
}
