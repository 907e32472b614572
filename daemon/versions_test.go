package daemon

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// do sends one request to m and returns the response, its body read.
func doMember(t *testing.T, m *Member, method, path, body string) (*http.Response, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, m.ClientURL()+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: reading the body: %v", method, path, err)
	}
	return resp, string(b)
}

// index is the X-Raft-Index of resp.
func index(t *testing.T, resp *http.Response) uint64 {
	t.Helper()
	i, err := strconv.ParseUint(resp.Header.Get("X-Raft-Index"), 10, 64)
	if err != nil {
		t.Fatalf("X-Raft-Index %q: %v", resp.Header.Get("X-Raft-Index"), err)
	}
	return i
}

// TestKeyVersions: a member answers a read with the key's versions, as
// kvstore keeps them, on the fast path (GET /<k>) and on net/http's
// (GET /key/<k>), and a PUT with ?ttl= keeps its TTL.
func TestKeyVersions(t *testing.T) {
	m := startMember(t, oneMember(t, filepath.Join(t.TempDir(), "data")))
	waitLeader(t, m)

	resp, body := doMember(t, m, http.MethodPut, "/k", "v1")
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("PUT /k: %d %s", resp.StatusCode, body)
	}
	created := index(t, resp)
	resp, body = doMember(t, m, http.MethodPut, "/k", "v2")
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("PUT /k: %d %s", resp.StatusCode, body)
	}
	modified := index(t, resp)
	for _, path := range []string{"/k", "/key/k"} {
		resp, body = doMember(t, m, http.MethodGet, path, "")
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET %s: %d %s", path, resp.StatusCode, body)
		}
		if got, want := resp.Header.Get("ETag"), fmt.Sprintf("%q", strconv.FormatUint(modified, 10)); got != want {
			t.Errorf("GET %s: ETag %s, want %s", path, got, want)
		}
		if got, want := resp.Header.Get("X-Create-Index"), strconv.FormatUint(created, 10); got != want {
			t.Errorf("GET %s: X-Create-Index %s, want %s", path, got, want)
		}
		if got := index(t, resp); got < modified {
			t.Errorf("GET %s: X-Raft-Index %d, below the write's %d", path, got, modified)
		}
		if ttl := resp.Header.Get("X-TTL"); ttl != "" {
			t.Errorf("GET %s: X-TTL %q on a key without TTL", path, ttl)
		}
	}

	resp, body = doMember(t, m, http.MethodPut, "/t?ttl=1h", "v")
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("PUT /t?ttl=1h: %d %s", resp.StatusCode, body)
	}
	resp, body = doMember(t, m, http.MethodGet, "/t", "")
	if resp.StatusCode != http.StatusOK || resp.Header.Get("X-TTL") != "3600" {
		t.Errorf("GET /t: %d X-TTL %q, want 200 and 3600; %s", resp.StatusCode, resp.Header.Get("X-TTL"), body)
	}

	resp, body = doMember(t, m, http.MethodDelete, "/key/k", "")
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("DELETE /key/k: %d %s", resp.StatusCode, body)
	}
	deleted := index(t, resp)
	resp, _ = doMember(t, m, http.MethodGet, "/key/k", "")
	if resp.StatusCode != http.StatusNotFound || index(t, resp) < deleted {
		t.Errorf("GET /key/k after its delete: %d X-Raft-Index %s, want 404 at %d or later", resp.StatusCode, resp.Header.Get("X-Raft-Index"), deleted)
	}
}
