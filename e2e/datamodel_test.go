package e2e

// The data model end to end, on real raftkv processes: conditional
// writes, transactions and listings, on a group and through the router
// of a sharded deployment. Watches and TTL expiry are in watch_test.go.

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/raftkv/raftkv/client"
	"github.com/raftkv/raftkv/testcluster"
)

// sendHdr sends one request with headers hdr and returns the response
// with its body read.
func sendHdr(t *testing.T, method, url, body string, hdr map[string]string) (*http.Response, string) {
	t.Helper()
	return sendVia(t, http.DefaultClient, method, url, body, hdr)
}

// sendVia is sendHdr through hc.
func sendVia(t *testing.T, hc *http.Client, method, url, body string, hdr map[string]string) (*http.Response, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

// TestConditionalWritesAndTxn: If-Match and If-None-Match answer 412
// with the current ETag and change nothing; POST /txn takes one branch
// atomically; through every member.
func TestConditionalWritesAndTxn(t *testing.T) {
	t.Parallel()
	c, leader := startCluster(t, testcluster.Options{N: 3})
	follower := c.Live()[0]
	if follower == leader {
		follower = c.Live()[1]
	}
	lu, fu := c.ClientURL(leader), c.ClientURL(follower)

	resp, body := sendHdr(t, http.MethodPut, lu+"/lock", "me", map[string]string{"If-None-Match": "*"})
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("PUT If-None-Match on an absent key: %d %q", resp.StatusCode, body)
	}
	first := resp.Header.Get("X-Raft-Index")
	if resp.Header.Get("ETag") != `"`+first+`"` {
		t.Fatalf("PUT's ETag %q, want the version it wrote, %q", resp.Header.Get("ETag"), first)
	}
	resp, body = sendHdr(t, http.MethodPut, fu+"/lock", "you", map[string]string{"If-None-Match": "*"})
	if resp.StatusCode != http.StatusPreconditionFailed || resp.Header.Get("ETag") != `"`+first+`"` {
		t.Fatalf("PUT If-None-Match on a present key: %d %q ETag %q, want 412 with ETag %q", resp.StatusCode, body, resp.Header.Get("ETag"), first)
	}
	resp, body = sendHdr(t, http.MethodPut, fu+"/lock", "you", map[string]string{"If-Match": `"1"`})
	if resp.StatusCode != http.StatusPreconditionFailed || resp.Header.Get("ETag") != `"`+first+`"` {
		t.Fatalf("PUT If-Match a wrong version: %d %q", resp.StatusCode, body)
	}
	resp, body = sendHdr(t, http.MethodGet, fu+"/lock", "", nil)
	if resp.StatusCode != 200 || body != "me" || resp.Header.Get("ETag") != `"`+first+`"` {
		t.Fatalf("GET after the refused writes: %d %q ETag %q", resp.StatusCode, body, resp.Header.Get("ETag"))
	}
	resp, body = sendHdr(t, http.MethodDelete, fu+"/key/lock", "", map[string]string{"If-Match": `"` + first + `"`})
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("DELETE If-Match the version: %d %q", resp.StatusCode, body)
	}
	resp, body = sendHdr(t, http.MethodDelete, fu+"/key/lock", "", map[string]string{"If-Match": `"` + first + `"`})
	if resp.StatusCode != http.StatusPreconditionFailed || resp.Header.Get("ETag") != "" {
		t.Fatalf("DELETE If-Match of an absent key: %d %q ETag %q, want 412 without ETag", resp.StatusCode, body, resp.Header.Get("ETag"))
	}

	// A transfer between two accounts, applied once however many members
	// race it: only the first whose compare holds succeeds.
	for key, value := range map[string]string{"acct/a": "100", "acct/b": "0"} {
		if r, body := sendHdr(t, http.MethodPut, lu+"/"+key, value, nil); r.StatusCode != http.StatusNoContent {
			t.Fatalf("PUT %s: %d %q", key, r.StatusCode, body)
		}
	}
	const txn = `{"compare":[{"key":"acct/a","target":"value","result":"=","value":"100"}],
		"success":[{"put":{"key":"acct/a","value":"50"}},{"request_put":{"key":"acct/b","value":"50"}},{"get":{"key":"acct/b"}}],
		"failure":[{"request_range":{"key":"acct/a"}}]}`
	results := make([]string, len(c.Live()))
	var wg sync.WaitGroup
	for i, id := range c.Live() {
		wg.Go(func() {
			r, body := sendHdr(t, http.MethodPost, c.ClientURL(id)+"/txn", txn, nil)
			results[i] = fmt.Sprint(r.StatusCode, " ", body)
		})
	}
	wg.Wait()
	succeeded := 0
	for _, r := range results {
		var out struct {
			Succeeded bool   `json:"succeeded"`
			Index     uint64 `json:"index"`
			ModIndex  uint64 `json:"mod_index"`
			Responses []struct {
				Get struct {
					Value    string `json:"value"`
					ModIndex uint64 `json:"mod_index"`
					Found    bool   `json:"found"`
				} `json:"get"`
			} `json:"responses"`
		}
		status, body, _ := strings.Cut(r, " ")
		if status != "200" || json.Unmarshal([]byte(body), &out) != nil {
			t.Fatalf("POST /txn: %s", r)
		}
		if out.Succeeded {
			succeeded++
			// The branch's puts: the version they gave, which its get
			// of acct/b shows.
			if len(out.Responses) != 3 || out.Responses[2].Get.Value != "50" ||
				out.ModIndex != out.Index || out.Responses[2].Get.ModIndex != out.ModIndex {
				t.Fatalf("the succeeding txn's answer: %s", r)
			}
		} else if len(out.Responses) != 1 || out.Responses[0].Get.Value != "50" || out.ModIndex != 0 {
			t.Fatalf("a failing txn's answer (a get of acct/a, no version): %s", r)
		}
	}
	if succeeded != 1 {
		t.Fatalf("%d transactions succeeded, want 1: %q", succeeded, results)
	}
	for key, want := range map[string]string{"acct/a": "50", "acct/b": "50"} {
		if r, body := sendHdr(t, http.MethodGet, fu+"/"+key, "", nil); r.StatusCode != 200 || body != want {
			t.Fatalf("GET %s: %d %q, want %q", key, r.StatusCode, body, want)
		}
	}
}

// TestEachWriteItsOwnVersion: writes of one key that the members commit
// together in one raft entry (group commit) still get a version each, so
// a PUT's ETag names the value it wrote and no other: concurrent PUTs of
// one key on every member answer distinct ETags, and the key's ETag
// afterwards is the one its last writer was answered.
func TestEachWriteItsOwnVersion(t *testing.T) {
	t.Parallel()
	c, _ := startCluster(t, testcluster.Options{})
	const writers, each = 48, 10
	type acked struct{ value, etag string }
	var (
		mu  sync.Mutex
		got []acked
		wg  sync.WaitGroup
	)
	ids := c.IDs()
	errs := make(chan error, writers)
	for w := range writers {
		wg.Go(func() {
			for i := range each {
				v := fmt.Sprintf("w%d-%d", w, i)
				r, err := c.Do(ids[w%len(ids)], http.MethodPut, "/hot", []byte(v))
				if err != nil || r.Status != http.StatusNoContent {
					errs <- fmt.Errorf("PUT /hot %s: %d %s %v", v, r.Status, r.Body, err)
					return
				}
				mu.Lock()
				got = append(got, acked{v, r.Header.Get("ETag")})
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	byTag := map[string]string{}
	for _, a := range got {
		if a.etag == "" {
			t.Fatalf("PUT of %s answered no ETag", a.value)
		}
		if other, ok := byTag[a.etag]; ok {
			t.Fatalf("PUTs of %s and %s were both answered ETag %s: an If-Match with it could overwrite a value its sender never saw", other, a.value, a.etag)
		}
		byTag[a.etag] = a.value
	}
	resp, body := sendHdr(t, http.MethodGet, c.ClientURL(ids[0])+"/hot", "", nil)
	if resp.StatusCode != http.StatusOK || byTag[resp.Header.Get("ETag")] != body {
		t.Fatalf("GET /hot: %d %q ETag %s; that ETag was answered to the PUT of %q", resp.StatusCode, body, resp.Header.Get("ETag"), byTag[resp.Header.Get("ETag")])
	}
}

// TestListPagination: a listing of 250 keys in pages of 40, each page
// from another member, returns every key once, in order, and no key out
// of the range.
func TestListPagination(t *testing.T) {
	t.Parallel()
	c, leader := startCluster(t, testcluster.Options{N: 3})
	cl, err := client.New(client.Config{Endpoints: []string{c.ClientURL(leader)}, RequestTimeout: 30 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx := context.Background()
	var want []string
	for i := range 250 {
		k := fmt.Sprintf("list/%03d", i)
		if _, err := cl.Put(ctx, k, []byte(k)); err != nil {
			t.Fatal(err)
		}
		want = append(want, k)
	}
	cl.Put(ctx, "lisu", []byte("after the prefix"))
	cl.Put(ctx, "list", []byte("before it"))
	var got []string
	cont := ""
	for page := 0; ; page++ {
		id := c.Live()[page%len(c.Live())]
		url := c.ClientURL(id) + "/key?prefix=list/&limit=40"
		if cont != "" {
			url += "&continue=" + cont
		}
		resp, body := sendHdr(t, http.MethodGet, url, "", nil)
		var out struct {
			Index uint64 `json:"index"`
			KVs   []struct {
				Key   string `json:"key"`
				Value string `json:"value"`
				Mod   uint64 `json:"mod_index"`
			} `json:"kvs"`
			More     bool   `json:"more"`
			Continue string `json:"continue"`
		}
		if resp.StatusCode != 200 || json.Unmarshal([]byte(body), &out) != nil || len(out.KVs) > 40 {
			t.Fatalf("page %d from member %d: %d %q", page, id, resp.StatusCode, body)
		}
		for _, kv := range out.KVs {
			if kv.Value != kv.Key || kv.Mod == 0 || kv.Mod > out.Index {
				t.Fatalf("page %d: %+v read at %d", page, kv, out.Index)
			}
			got = append(got, kv.Key)
		}
		if !out.More {
			break
		}
		cont = out.Continue
	}
	if !slices.Equal(got, want) {
		t.Fatalf("listed %d keys %q..., want the %d of the prefix in order", len(got), got[:min(5, len(got))], len(want))
	}
}

// TestRouterDataModel: through the router of a sharded deployment, a
// conditional write is refused with 412, a transaction of one group
// applies and one across groups is 400 cross_group, and a listing
// gathers every group in key order.
func TestRouterDataModel(t *testing.T) {
	t.Parallel()
	d := startDeployment(t, 1)
	d.startGroup(1, 1)
	d.startGroup(2, 1)
	cfg := d.waitSettled(1, 2)
	srv := d.inProcessRouter()

	var keys []string
	for i := range 40 {
		k := fmt.Sprintf("r/%02d", i)
		if r, body := sendHdr(t, http.MethodPut, srv.URL+"/"+k, k, nil); r.StatusCode != http.StatusNoContent {
			t.Fatalf("PUT %s through the router: %d %q", k, r.StatusCode, body)
		}
		keys = append(keys, k)
	}
	k1 := keys[slices.IndexFunc(keys, func(k string) bool { return cfg.OwnerOfKey(k) == 1 })]
	k2 := keys[slices.IndexFunc(keys, func(k string) bool { return cfg.OwnerOfKey(k) == 2 })]

	if r, body := sendHdr(t, http.MethodPut, srv.URL+"/"+k1, "x", map[string]string{"If-None-Match": "*"}); r.StatusCode != http.StatusPreconditionFailed || r.Header.Get("ETag") == "" {
		t.Fatalf("PUT If-None-Match of a present key through the router: %d %q %v", r.StatusCode, body, r.Header)
	}
	txn := fmt.Sprintf(`{"compare":[{"key":%q,"target":"exists","result":"equal","exists":true}],"success":[{"put":{"key":%q,"value":"t"}}]}`, k1, k1)
	if r, body := sendHdr(t, http.MethodPost, srv.URL+"/txn", txn, nil); r.StatusCode != 200 || !strings.Contains(body, `"succeeded":true`) {
		t.Fatalf("txn of one group through the router: %d %q", r.StatusCode, body)
	}
	txn = fmt.Sprintf(`{"success":[{"put":{"key":%q,"value":"t"}},{"put":{"key":%q,"value":"t"}}]}`, k1, k2)
	if r, body := sendHdr(t, http.MethodPost, srv.URL+"/txn", txn, map[string]string{"Accept": "application/json"}); r.StatusCode != 400 || !strings.Contains(body, "cross_group") {
		t.Fatalf("txn across groups through the router: %d %q", r.StatusCode, body)
	}

	var listed []string
	cont := ""
	for {
		url := srv.URL + "/key?prefix=r/&limit=7"
		if cont != "" {
			url += "&continue=" + cont
		}
		r, body := sendHdr(t, http.MethodGet, url, "", nil)
		var page struct {
			KVs []struct {
				Key string `json:"key"`
			} `json:"kvs"`
			More     bool   `json:"more"`
			Continue string `json:"continue"`
		}
		if r.StatusCode != 200 || json.Unmarshal([]byte(body), &page) != nil {
			t.Fatalf("listing through the router: %d %q", r.StatusCode, body)
		}
		for _, kv := range page.KVs {
			listed = append(listed, kv.Key)
		}
		if !page.More {
			break
		}
		cont = page.Continue
	}
	if !slices.Equal(listed, keys) {
		t.Fatalf("listed %q, want %q", listed, keys)
	}

}
