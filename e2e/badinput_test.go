package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/raftkv/raftkv/testcluster"
)

// jsonAccept asks for error answers in JSON.
var jsonAccept = http.Header{"Accept": {"application/json"}}

// checkError fails the test unless r is the error answer status with the
// sentence msg: one line of text, or with asJSON the object
// {"error":msg,"code":code} on one line.
func checkError(t *testing.T, id int, what string, r testcluster.Response, asJSON bool, status int, code, msg string) {
	t.Helper()
	if r.Status != status {
		t.Errorf("node %d: %s: status %d %s, want %d", id, what, r.Status, clip(r.Body), status)
		return
	}
	if !asJSON {
		if ct := r.Header.Get("Content-Type"); ct != "text/plain; charset=utf-8" || string(r.Body) != msg+"\n" {
			t.Errorf("node %d: %s: %s %s, want text/plain %q", id, what, ct, clip(r.Body), msg+"\n")
		}
		return
	}
	want, _ := json.Marshal(map[string]string{"error": msg, "code": code})
	var got struct{ Error, Code string }
	err := json.Unmarshal(r.Body, &got)
	if ct := r.Header.Get("Content-Type"); ct != "application/json" || err != nil || got.Error != msg || got.Code != code ||
		bytes.Count(r.Body, []byte("\n")) != 1 || !bytes.HasSuffix(r.Body, []byte("\n")) {
		t.Errorf("node %d: %s: %s %s, want application/json %s on one line", id, what, ct, clip(r.Body), want)
	}
}

// TestBadInputIsRejected sends malformed requests to every node of a live cluster. Each
// gets its documented 4xx with a one-sentence reason, as one line of text by default
// and as {"error","code"} JSON to a client that accepts it; none changes the
// membership, and afterwards the cluster still serves and earlier writes are intact.
// Requests to followers that the leader answers (membership) carry the leader's
// sentence.
func TestBadInputIsRejected(t *testing.T) {
	t.Parallel()
	c, leader := startCluster(t, testcluster.Options{InProcess: true})
	want := map[string][]byte{"keep/a": []byte("1"), "keep/b": []byte("2"), "foo": []byte("3"), "bin": {0, 0xff, '\n'}}
	putMany(t, c, c.Live(), want)

	const maxValue = 3 << 19 // 1.5 MiB
	const maxKey = 4096
	const badID = "POST /<id> adds a raft member, and <id> must be a positive integer"
	newPeer := "http://127.0.0.1:1" // valid, never contacted: every POST below is rejected
	tests := []struct {
		name         string
		method, path string
		body         []byte
		want         int
		code, msg    string
	}{
		{"id zero", http.MethodPost, "/0", []byte(newPeer), http.StatusBadRequest, "bad_request", badID},
		{"id not a number", http.MethodPost, "/abc", []byte(newPeer), http.StatusBadRequest, "bad_request", badID},
		{"id negative", http.MethodPost, "/-1", []byte(newPeer), http.StatusBadRequest, "bad_request", badID},
		{"id overflows uint64", http.MethodPost, "/18446744073709551616", []byte(newPeer), http.StatusBadRequest, "bad_request", badID},
		{"url empty", http.MethodPost, "/4", nil, http.StatusBadRequest, "bad_request",
			`bad peer URL "": empty; a peer URL looks like http://127.0.0.1:42379`},
		{"url no scheme or host", http.MethodPost, "/4", []byte("not a url"), http.StatusBadRequest, "bad_request",
			`bad peer URL "not a url": must start with http:// or https://`},
		{"url unparsable", http.MethodPost, "/4", []byte("http://[::1"), http.StatusBadRequest, "bad_request",
			`bad peer URL "http://[::1": not a URL`},
		{"url no host", http.MethodPost, "/4", []byte("http://"), http.StatusBadRequest, "bad_request", `bad peer URL "http://": no host`},
		{"url bad port", http.MethodPost, "/4", []byte("http://127.0.0.1:99999"), http.StatusBadRequest, "bad_request",
			`bad peer URL "http://127.0.0.1:99999": port must be 1-65535`},
		{"existing id", http.MethodPost, "/2", []byte(newPeer), http.StatusConflict, "conflict", "member id 2 is already in use"},
		{"delete unknown id", http.MethodDelete, "/99", nil, http.StatusNotFound, "member_not_found", "there is no member 99"},
		{"delete non-numeric id", http.MethodDelete, "/foo", nil, http.StatusBadRequest, "bad_request",
			"DELETE /<id> removes a raft member, and <id> must be a positive integer; to delete a key, use DELETE /key/<key>"},
		{"value too large", http.MethodPut, "/big", bytes.Repeat([]byte("x"), maxValue+1), http.StatusRequestEntityTooLarge,
			"payload_too_large", "the request body is larger than the limit of 1572864 bytes"},
		{"key too long", http.MethodPut, "/" + strings.Repeat("k", maxKey+1), []byte("v"), http.StatusBadRequest, "bad_request",
			"the key is 4097 bytes, over the limit of 4096"},
		{"empty key", http.MethodPut, "/", []byte("v"), http.StatusBadRequest, "bad_request", "the key is empty; a key is at least one byte"},
		{"unknown method", http.MethodPatch, "/foo", []byte("v"), http.StatusMethodNotAllowed, "method_not_allowed",
			"method PATCH is not allowed here; allowed: GET, HEAD, PUT, POST, DELETE"},
		{"absent key", http.MethodGet, "/absent", nil, http.StatusNotFound, "key_not_found", "key not found"},
		{"absent key, raftdb form", http.MethodGet, "/key/absent?level=stale", nil, http.StatusNotFound, "key_not_found", "key not found"},
		{"unknown level", http.MethodGet, "/foo?level=bogus", nil, http.StatusBadRequest, "bad_request",
			`unknown level "bogus"; level must be one of default, consistent, none, stale`},
		{"unknown encoding", http.MethodGet, "/key/foo?encoding=hex", nil, http.StatusBadRequest, "bad_request",
			`unknown encoding "hex"; encoding must be base64`},
		{"binary value as JSON", http.MethodGet, "/key/bin", nil, http.StatusNotAcceptable, "not_utf8",
			"the value is not valid UTF-8, which a JSON string cannot carry; add ?encoding=base64, or read the raw bytes with GET /<key>"},
		{"body not UTF-8", http.MethodPost, "/key", []byte("{\"bin2\":\"\xff\"}"), http.StatusBadRequest, "bad_request",
			"the body is not valid UTF-8, which JSON requires; send binary values base64-encoded with POST /key?encoding=base64"},
		{"lone surrogate escape", http.MethodPost, "/key", []byte(`{"bin2":"\ud800"}`), http.StatusBadRequest, "bad_request",
			`POST /key takes a non-empty JSON object of string values, like {"foo":"bar"}; the escape \ud800 is half of a UTF-16 surrogate pair and stands for no character; send such a value base64-encoded with POST /key?encoding=base64, or such a key with PUT /<key>`},
		{"bad base64", http.MethodPost, "/key?encoding=base64", []byte(`{"bin2":"AP8"}`), http.StatusBadRequest, "bad_request",
			`the value of "bin2" is not base64 (standard alphabet, padded), as encoding=base64 asks`},
		{"reserved path", http.MethodGet, "/debug/vars", nil, http.StatusNotFound, "not_found", `path "/debug/vars" is reserved for a later version`},
		// A write does not do what was asked without a parameter it was
		// given: refused, and nothing written.
		{"misspelt ttl", http.MethodPut, "/foo?tll=5", []byte("x"), http.StatusBadRequest, "bad_request",
			`PUT of a key takes only the query parameter ttl; not "tll"`},
		{"delete with a query", http.MethodDelete, "/key/foo?recursive=true", nil, http.StatusBadRequest, "bad_request",
			`DELETE of a key takes no query parameters; not "recursive"`},
		{"misspelt encoding", http.MethodPost, "/key?encodng=base64", []byte(`{"foo":"eA=="}`), http.StatusBadRequest, "bad_request",
			`POST /key takes only the query parameter encoding; not "encodng"`},
		{"txn with a query", http.MethodPost, "/txn?dry_run=true", []byte(`{"success":[{"put":{"key":"Zm9v","value":"eA=="}}]}`), http.StatusBadRequest, "bad_request",
			`POST /txn takes no query parameters; not "dry_run"`},
		{"misspelt learner flag", http.MethodPost, "/4?lerner=true", []byte(newPeer), http.StatusBadRequest, "bad_request",
			`POST /<id> takes only the query parameter learner; not "lerner"`},
	}
	ids := c.Live()
	for i, tc := range tests {
		for _, asJSON := range []bool{false, true} {
			id := ids[(i+btoi(asJSON))%len(ids)] // the two forms through two nodes
			t.Run(fmt.Sprintf("%s/json=%v", tc.name, asJSON), func(t *testing.T) {
				var hdr http.Header
				if asJSON {
					hdr = jsonAccept
				}
				r, err := request(tc.method, c.ClientURL(id)+tc.path, tc.body, hdr)
				if err != nil {
					t.Fatalf("node %d: %s %.40s: %v", id, tc.method, tc.path, err)
				}
				checkError(t, id, fmt.Sprintf("%s %.40s", tc.method, tc.path), r, asJSON, tc.want, tc.code, tc.msg)
			})
		}
	}

	// A follower that knows the leader's client URL passes membership
	// changes to it; the leader's sentence reaches the client unwrapped.
	lead := c.WaitLeader(t, leaderTimeout)
	for _, id := range followers(c, lead) {
		waitLeaderClientURL(t, c, id)
		r, err := request(http.MethodPost, c.ClientURL(id)+"/2", []byte(newPeer), nil)
		if err != nil {
			t.Fatalf("node %d: %v", id, err)
		}
		checkError(t, id, "POST /2 through a follower", r, false, http.StatusConflict, "conflict", "member id 2 is already in use")
		// A member's published client URL is no peer URL (a slip of
		// the port): the member would never be reached.
		if r, err = request(http.MethodPost, c.ClientURL(id)+"/4", []byte(c.ClientURL(lead)), nil); err != nil {
			t.Fatalf("node %d: %v", id, err)
		}
		checkError(t, id, "POST /4 of the leader's client URL", r, false, http.StatusBadRequest, "bad_request",
			fmt.Sprintf("bad peer URL %s: it is member %d's client URL; a peer URL is the member's --cluster entry, its peer port", c.ClientURL(lead), lead))
		if r, err = request(http.MethodDelete, c.ClientURL(id)+"/99", nil, jsonAccept); err != nil {
			t.Fatalf("node %d: %v", id, err)
		}
		checkError(t, id, "DELETE /99 through a follower", r, true, http.StatusNotFound, "member_not_found", "there is no member 99")
	}

	// Go's HTTP server refuses a request line and headers over 64 KiB (a
	// 70 KB key) with its own 431, before raftkv sees the request, and
	// ends the connection cleanly (the answer's body ends with it), not
	// with a reset.
	hugeKey := "GET /" + strings.Repeat("k", 70<<10) + " HTTP/1.1\r\nHost: x\r\n\r\n"
	for _, id := range ids {
		got, err := rawAnswer(strings.TrimPrefix(c.ClientURL(id), "http://"), hugeKey)
		if err != nil || !strings.HasPrefix(got, "HTTP/1.1 431 Request Header Fields Too Large\r\n") ||
			!strings.HasSuffix(got, "\r\n\r\n431 Request Header Fields Too Large") {
			t.Errorf("node %d: GET of a 70 KB key: %q, %v; want 431 with net/http's body, then the end of the connection", id, got, err)
		}
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
		if r := mustRequest(t, c, id, http.MethodGet, "/key/bin2", nil, http.StatusNotFound); string(r.Body) != "key not found\n" {
			t.Errorf("node %d: GET /key/bin2 after refused writes: %s, want key not found", id, clip(r.Body))
		}
	}
}

// waitLeaderClientURL waits until node id, a follower, knows the leader's
// client URL, so that it passes membership changes to the leader.
func waitLeaderClientURL(t *testing.T, c *testcluster.Cluster, id int) {
	t.Helper()
	testcluster.WaitFor(t, leaderTimeout, fmt.Sprintf("node %d knows the leader's client URL", id), func() error {
		r, err := request(http.MethodGet, c.ClientURL(id)+"/status", nil, nil)
		if err != nil {
			return err
		}
		var st struct {
			ID, Leader uint64
			Members    []struct {
				ID         uint64
				ClientURLs []string
			}
		}
		if err := json.Unmarshal(r.Body, &st); err != nil {
			return fmt.Errorf("GET /status: %w: %s", err, clip(r.Body))
		}
		for _, m := range st.Members {
			if m.ID == st.Leader && st.Leader != st.ID && len(m.ClientURLs) > 0 {
				return nil
			}
		}
		return fmt.Errorf("leader %d, members %+v", st.Leader, st.Members)
	})
}

// rawAnswer writes req on a new connection to addr and returns all the
// server sends until it ends the connection; a reset is an error.
func rawAnswer(addr, req string) (string, error) {
	conn, err := net.DialTimeout("tcp", addr, answerTimeout)
	if err != nil {
		return "", err
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(answerTimeout))
	// Write on another goroutine: the server answers before it has read
	// everything.
	go io.WriteString(conn, req)
	got, err := io.ReadAll(conn)
	return string(got), err
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// TestPercentEncodedKeys: the key is the percent-decoded path, so "a%2Fb" and
// "a/b" name one key, on every route and every member; ?level=none, which
// the README lists, is a linearizable read.
func TestPercentEncodedKeys(t *testing.T) {
	t.Parallel()
	c, _ := startCluster(t, testcluster.Options{N: 1})
	id := c.Live()[0]
	mustRequest(t, c, id, http.MethodPut, "/a%2Fb", []byte("1"), http.StatusNoContent)
	for _, path := range []string{"/a/b", "/a%2Fb", "/a%2fb", "/%61%2F%62", "/a/b?level=none", "/a%2Fb?level=NONE"} {
		if r := mustRequest(t, c, id, http.MethodGet, path, nil, http.StatusOK); string(r.Body) != "1" {
			t.Errorf("GET %s = %s, want 1", path, clip(r.Body))
		}
	}
	for _, path := range []string{"/key/a/b", "/key/a%2Fb", "/key/a/b?level=none"} {
		if r := mustRequest(t, c, id, http.MethodGet, path, nil, http.StatusOK); string(bytes.TrimSpace(r.Body)) != `{"a/b":"1"}` {
			t.Errorf("GET %s = %s, want {\"a/b\":\"1\"}", path, clip(r.Body))
		}
	}
	mustRequest(t, c, id, http.MethodPut, "/a/b", []byte("2"), http.StatusNoContent)
	if r := mustRequest(t, c, id, http.MethodGet, "/a%2Fb", nil, http.StatusOK); string(r.Body) != "2" {
		t.Errorf("GET /a%%2Fb after PUT /a/b = %s, want 2", clip(r.Body))
	}
	mustRequest(t, c, id, http.MethodDelete, "/key/a%2Fb", nil, http.StatusNoContent)
	mustRequest(t, c, id, http.MethodGet, "/a/b", nil, http.StatusNotFound)
}
