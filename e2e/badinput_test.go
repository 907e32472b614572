package e2e

import (
	"bytes"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/raftkv/raftkv/testcluster"
)

// TestBadInputIsRejected sends malformed requests to every node of a live cluster. Each
// gets its documented 4xx with a one-line error body, none changes the membership, and
// afterwards the cluster still serves and earlier writes are intact.
func TestBadInputIsRejected(t *testing.T) {
	c, leader := startCluster(t, testcluster.Options{InProcess: true})
	want := map[string][]byte{"keep/a": []byte("1"), "keep/b": []byte("2"), "foo": []byte("3")}
	putMany(t, c, c.Live(), want)

	const maxValue = 3 << 19 // 1.5 MiB
	const maxKey = 4096
	newPeer := "http://127.0.0.1:1" // valid, never contacted: every POST below is rejected
	tests := []struct {
		name         string
		method, path string
		body         []byte
		want         int
	}{
		{"id zero", http.MethodPost, "/0", []byte(newPeer), http.StatusBadRequest},
		{"id not a number", http.MethodPost, "/abc", []byte(newPeer), http.StatusBadRequest},
		{"id negative", http.MethodPost, "/-1", []byte(newPeer), http.StatusBadRequest},
		{"id overflows uint64", http.MethodPost, "/18446744073709551616", []byte(newPeer), http.StatusBadRequest},
		{"url empty", http.MethodPost, "/4", nil, http.StatusBadRequest},
		{"url no scheme or host", http.MethodPost, "/4", []byte("not a url"), http.StatusBadRequest},
		{"url unparsable", http.MethodPost, "/4", []byte("http://[::1"), http.StatusBadRequest},
		{"url no host", http.MethodPost, "/4", []byte("http://"), http.StatusBadRequest},
		{"url bad port", http.MethodPost, "/4", []byte("http://127.0.0.1:99999"), http.StatusBadRequest},
		{"existing id", http.MethodPost, "/2", []byte(newPeer), http.StatusConflict},
		{"delete unknown id", http.MethodDelete, "/99", nil, http.StatusNotFound},
		{"delete non-numeric id", http.MethodDelete, "/foo", nil, http.StatusBadRequest},
		{"value too large", http.MethodPut, "/big", bytes.Repeat([]byte("x"), maxValue+1), http.StatusRequestEntityTooLarge},
		{"key too long", http.MethodPut, "/" + strings.Repeat("k", maxKey+1), []byte("v"), http.StatusBadRequest},
		{"empty key", http.MethodPut, "/", []byte("v"), http.StatusBadRequest},
		{"unknown method", http.MethodPatch, "/foo", []byte("v"), http.StatusMethodNotAllowed},
	}
	ids := c.Live()
	for i, tc := range tests {
		id := ids[i%len(ids)]
		t.Run(tc.name, func(t *testing.T) {
			r, err := c.Do(id, tc.method, tc.path, tc.body)
			if err != nil {
				t.Fatalf("node %d: %s %.40s: %v", id, tc.method, tc.path, err)
			}
			if r.Status != tc.want {
				t.Errorf("node %d: %s %.40s: status %d %q, want %d", id, tc.method, tc.path, r.Status, clip(r.Body), tc.want)
			}
			body := strings.TrimSuffix(string(r.Body), "\n")
			if body == "" || strings.Contains(body, "\n") {
				t.Errorf("node %d: %s %.40s: error body %q, want one non-empty line", id, tc.method, tc.path, clip(r.Body))
			}
		})
	}

	// The limits are inclusive: the largest key and value are accepted.
	bigKey := strings.Repeat("k", maxKey)
	bigVal := bytes.Repeat([]byte("v"), maxValue)
	mustPut(t, c, leader, bigKey, []byte("longest key"))
	mustPut(t, c, leader, "largest-value", bigVal)
	want[bigKey] = []byte("longest key")
	want["largest-value"] = bigVal

	c.WaitLeader(t, leaderTimeout)
	c.WaitConverged(t, convergeTimeout)
	for _, id := range c.Live() {
		checkMembers(t, c, id, 1, 2, 3)
		mustPut(t, c, id, fmt.Sprintf("after-%d", id), []byte("ok"))
		want[fmt.Sprintf("after-%d", id)] = []byte("ok")
	}
	c.WaitConverged(t, convergeTimeout)
	for _, id := range c.Live() {
		waitKeys(t, c, id, want, valueTimeout)
	}
}
