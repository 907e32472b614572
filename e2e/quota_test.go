package e2e

// The space quota end to end: writes that would take the keys past
// --quota-bytes are refused with 503 no_space on every member and through
// the router, nothing of them applied; deletes make room again.

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/raftkv/raftkv/testcluster"
)

// quotaBytes is the tests' --quota-bytes: room for a few dozen keys.
const quotaBytes = 20000

// sendSettled is sendHdr that asks for JSON errors and sends again, for up to a
// minute, while the answer is a 503 other than no_space (no leader, a
// dropped proposal: certainly not applied), as a client would: an
// election may come at any time on a loaded machine.
func sendSettled(t *testing.T, method, url, body string) (*http.Response, string) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		r, b := sendHdr(t, method, url, body, map[string]string{"Accept": "application/json"})
		if r.StatusCode != http.StatusServiceUnavailable || strings.Contains(b, `"no_space"`) || time.Now().After(deadline) {
			return r, b
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// fillToQuota PUTs keys prefix00, prefix01, ... of 1000-byte values at
// base until one is refused, checks the refusal (503, code no_space, one
// line) and returns the keys written and the refused one.
func fillToQuota(t *testing.T, base, prefix string) (written []string, refused string) {
	t.Helper()
	value := strings.Repeat("v", 1000)
	for i := 0; ; i++ {
		key := fmt.Sprintf("%s%02d", prefix, i)
		r, body := sendSettled(t, http.MethodPut, base+"/"+key, value)
		if r.StatusCode == http.StatusNoContent {
			written = append(written, key)
			if i > quotaBytes/1000 {
				t.Fatalf("%d PUTs of 1000 bytes taken under a quota of %d bytes", i+1, quotaBytes)
			}
			continue
		}
		var e struct{ Error, Code string }
		if r.StatusCode != http.StatusServiceUnavailable || json.Unmarshal([]byte(body), &e) != nil || e.Code != "no_space" ||
			!strings.Contains(e.Error, "space quota") || strings.Contains(e.Error, "\n") {
			t.Fatalf("PUT %s past the quota: %d %q; want 503 no_space", key, r.StatusCode, body)
		}
		if len(written) < 10 {
			t.Fatalf("PUT %s refused after only %d keys of a %d-byte quota: %q", key, len(written), quotaBytes, body)
		}
		return written, key
	}
}

// TestSpaceQuota: on a 3-member cluster with --quota-bytes, PUTs through
// a follower are refused once the keys would pass the quota; so are
// raftdb's POST /key, a transaction that puts and a TTL write. Nothing
// refused is applied, every member's /status counts the same bytes, and
// deletes make room for writes again.
func TestSpaceQuota(t *testing.T) {
	t.Parallel()
	c, leader := startCluster(t, testcluster.Options{N: 3, ExtraArgs: []string{"--quota-bytes", fmt.Sprint(quotaBytes)}})
	f := followers(c, leader)[0]
	base := c.ClientURL(f)
	written, refused := fillToQuota(t, base, "q")

	big := strings.Repeat("w", 2000)
	for _, w := range []struct{ method, path, body string }{
		{http.MethodPost, "/key", fmt.Sprintf(`{"raftdb":%q}`, big)},
		{http.MethodPost, "/txn", fmt.Sprintf(`{"success":[{"put":{"key":"txn","value":%q}}]}`, big)},
		{http.MethodPut, "/session?ttl=30s", big},
	} {
		if r, body := sendSettled(t, w.method, c.ClientURL(leader)+w.path, w.body); r.StatusCode != http.StatusServiceUnavailable || !strings.Contains(body, "space quota") {
			t.Fatalf("%s %s past the quota: %d %q; want 503", w.method, w.path, r.StatusCode, body)
		}
	}

	// The members agree on the bytes, and none applied a refused write.
	var data int64
	testcluster.WaitFor(t, valueTimeout, "every member to count the same bytes", func() error {
		data = -1
		for _, id := range c.Live() {
			st, err := status(c, id)
			if err != nil {
				return err
			}
			if st.QuotaBytes != quotaBytes || st.DataBytes > quotaBytes || st.DataBytes < int64(len(written)*1000) {
				return fmt.Errorf("member %d: %d of %d bytes for %d keys", id, st.DataBytes, st.QuotaBytes, len(written))
			}
			if data >= 0 && st.DataBytes != data {
				return fmt.Errorf("member %d counts %d bytes, another %d", id, st.DataBytes, data)
			}
			data = st.DataBytes
		}
		return nil
	})
	for _, id := range c.Live() {
		for _, key := range []string{refused, "raftdb", "txn", "session"} {
			if r, body := sendSettled(t, http.MethodGet, c.ClientURL(id)+"/"+key, ""); r.StatusCode != http.StatusNotFound {
				t.Fatalf("member %d: GET of %s, refused for the quota: %d %q", id, key, r.StatusCode, body)
			}
		}
	}

	// Deletes go through, and make room.
	for _, path := range []string{"/key/" + written[0], "/key/" + written[1]} {
		if r, body := sendSettled(t, http.MethodDelete, base+path, ""); r.StatusCode != http.StatusNoContent {
			t.Fatalf("DELETE %s over the quota: %d %q", path, r.StatusCode, body)
		}
	}
	if r, body := sendSettled(t, http.MethodPut, base+"/"+refused, strings.Repeat("v", 1000)); r.StatusCode != http.StatusNoContent {
		t.Fatalf("PUT %s after deletes made room: %d %q", refused, r.StatusCode, body)
	}
	if st, err := status(c, f); err != nil || st.DataBytes >= data {
		t.Fatalf("after two deletes and one put, %d bytes (%v); want fewer than %d", st.DataBytes, err, data)
	}
}

// TestSpaceQuotaThroughRouter: a shard group's quota refusal reaches a
// router's caller as the member answered it, 503 no_space, and the
// router's other group still takes writes.
func TestSpaceQuotaThroughRouter(t *testing.T) {
	t.Parallel()
	d := startDeployment(t, 1)
	d.startGroup(1, 1, "--quota-bytes", fmt.Sprint(quotaBytes))
	d.startGroup(2, 1)
	cfg := d.waitSettled(1, 2)
	srv := d.inProcessRouter()

	// Keys of group 1 only: {tag} keys hash by their tag.
	tag := ""
	for i := 0; tag == ""; i++ {
		if k := fmt.Sprintf("{t%d}", i); cfg.OwnerOfKey(k) == 1 {
			tag = k
		}
	}
	fillToQuota(t, srv.URL, tag+"/")
	other := ""
	for i := 0; other == ""; i++ {
		if k := fmt.Sprintf("g2/%d", i); cfg.OwnerOfKey(k) == 2 {
			other = k
		}
	}
	if r, body := sendSettled(t, http.MethodPut, srv.URL+"/"+other, strings.Repeat("v", 1000)); r.StatusCode != http.StatusNoContent {
		t.Fatalf("PUT %s of group 2, which has no quota set, through the router: %d %q", other, r.StatusCode, body)
	}
}
