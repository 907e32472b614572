package e2e

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/raftkv/raftkv/httpapi"
	"github.com/raftkv/raftkv/testcluster"
)

// Limits of the daemon's client API (httpapi defaults; no flag sets them).
const (
	abuseMaxKey   = 4096
	abuseMaxValue = 3 << 19 // 1.5 MiB
	abuseMaxPeer  = 4 << 10 // body of POST /<id> and POST /join
	// abuseHeaderTimeout is httpapi's ReadHeaderTimeout (5s) with a margin
	// for a race-built daemon on two cores: a connection that has not sent
	// its headers by then must have been closed.
	abuseHeaderTimeout = 15 * time.Second
	// abuseBurst is the number of slow requests held at one node at once:
	// more than the daemon serves at once.
	abuseBurst = httpapi.DefaultMaxInFlight + 200
)

// abuse is one cluster under bad input, and the writes it acknowledged.
type abuse struct {
	c  *testcluster.Cluster
	mu sync.Mutex
	// want holds every acknowledged write, key to value.
	want map[string][]byte
}

func (a *abuse) ack(key string, val []byte) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.want[key] = val
}

func (a *abuse) acked() map[string][]byte {
	a.mu.Lock()
	defer a.mu.Unlock()
	return maps.Clone(a.want)
}

// TestBadInputExtended abuses a live 3-node cluster with malformed, oversize,
// truncated, slow and excessive input, each answered with its documented
// status. Afterwards the cluster still serves with every acknowledged write
// intact, lists exactly its three members, and after every node is stopped
// and restarted it comes up and serves again: no bad request reached the
// log in a form that breaks a node on replay.
func TestBadInputExtended(t *testing.T) {
	t.Parallel()
	c, _ := startCluster(t, testcluster.Options{ExtraArgs: []string{"--enable-pprof"}})
	a := &abuse{c: c, want: map[string][]byte{"known/a": []byte("1"), "known/b": {0, 0xff, '\n'}}}
	for i := range 20 {
		a.want[fmt.Sprintf("known/%02d", i)] = []byte(fmt.Sprintf("value %d", i))
	}
	putMany(t, c, c.Live(), a.acked())

	t.Run("bodies", a.bodies)
	t.Run("keys", a.keys)
	t.Run("methods", a.methods)
	t.Run("membership", a.membership)
	t.Run("slow clients", a.slowClients)
	t.Run("burst", a.burst)

	a.checkServes(t, "after the abuse")
	for _, id := range c.IDs() {
		if code := c.Stop(id); code != 0 {
			t.Errorf("node %d exited with status %d on SIGTERM, want 0", id, code)
		}
	}
	for _, id := range c.IDs() {
		c.Restart(id)
	}
	a.checkServes(t, "after restarting every node")
}

// checkServes waits for a leader, checks that all three nodes run and list
// members 1, 2 and 3, takes a write through every node, and has every node
// serve every acknowledged write.
func (a *abuse) checkServes(t *testing.T, when string) {
	t.Helper()
	t.Logf("checking the cluster %s", when)
	c := a.c
	c.WaitLeader(t, leaderTimeout)
	if live := c.Live(); len(live) != 3 {
		t.Fatalf("%s: live nodes %v, want 3", when, live)
	}
	for _, id := range c.Live() {
		checkMembers(t, c, id, 1, 2, 3)
	}
	for _, id := range c.Live() {
		k := fmt.Sprintf("%s/%d", strings.ReplaceAll(when, " ", "-"), id)
		mustPut(t, c, id, k, []byte("ok"))
		a.ack(k, []byte("ok"))
	}
	c.WaitConverged(t, convergeTimeout)
	want := a.acked()
	for _, id := range c.Live() {
		waitKeys(t, c, id, want, valueTimeout)
	}
}

// expect sends one request to node id and checks its status; an error answer
// must be one non-empty line (HEAD has none) in plain words, without a
// package prefix, a 405 must carry allow, a 503 Retry-After: 1.
func (a *abuse) expect(t *testing.T, id int, method, path string, body []byte, want int, allow string) testcluster.Response {
	t.Helper()
	r, err := a.c.Do(id, method, path, body)
	if err != nil {
		t.Errorf("node %d: %s %.60q: %v", id, method, path, err)
		return r
	}
	if r.Status != want {
		t.Errorf("node %d: %s %.60q: status %d %s, want %d", id, method, path, r.Status, clip(r.Body), want)
		return r
	}
	if want >= 400 && method != http.MethodHead {
		if b := string(r.Body); len(b) < 2 || strings.Count(b, "\n") != 1 || !strings.HasSuffix(b, "\n") {
			t.Errorf("node %d: %s %.60q: error body %s is not one line ending in \\n", id, method, path, clip(r.Body))
		}
		if packagePrefix.Match(r.Body) {
			t.Errorf("node %d: %s %.60q: error body %s starts with a package prefix", id, method, path, clip(r.Body))
		}
	}
	if want == http.StatusMethodNotAllowed && r.Header.Get("Allow") != allow {
		t.Errorf("node %d: %s %.60q: Allow %q, want %q", id, method, path, r.Header.Get("Allow"), allow)
	}
	if want == http.StatusServiceUnavailable && r.Header.Get("Retry-After") != "1" {
		t.Errorf("node %d: %s %.60q: 503 without Retry-After: 1", id, method, path)
	}
	return r
}

// packagePrefix matches an error chain's start ("httpapi: ", "leader
// answered: raftnode: "), which error answers never show.
var packagePrefix = regexp.MustCompile(`^[a-z]+( [a-z]+)?: `)

// addr is the host:port of node id's client API, for raw connections.
func (a *abuse) addr(id int) string { return strings.TrimPrefix(a.c.ClientURL(id), "http://") }

// raw writes req on a new connection to node id and reads the answer. With
// vanish, it closes the connection right after writing instead, as a client
// that disappears mid-request, and returns nil.
func (a *abuse) raw(t *testing.T, id int, req []byte, vanish bool) (*http.Response, []byte) {
	t.Helper()
	conn, err := net.DialTimeout("tcp", a.addr(id), 5*time.Second)
	if err != nil {
		t.Fatalf("node %d: dial: %v", id, err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(30 * time.Second))
	// Write on another goroutine: the server may answer (413) and close
	// before it has read everything.
	wrote := make(chan struct{})
	go func() {
		defer close(wrote)
		_, _ = conn.Write(req)
	}()
	if vanish {
		<-wrote
		return nil, nil
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("node %d: reading the answer to %.40q: %v", id, req, err)
	}
	body, _ := io.ReadAll(resp.Body)
	conn.Close()
	<-wrote
	return resp, body
}

// bodies: oversize bodies get 413; bodies cut short by a client that
// vanishes store nothing; a malformed Content-Length is refused by net/http.
func (a *abuse) bodies(t *testing.T) {
	c, ids := a.c, a.c.Live()
	a.expect(t, ids[0], http.MethodPut, "/bodies/too-big", bytes.Repeat([]byte("x"), abuseMaxValue+1), http.StatusRequestEntityTooLarge, "")
	a.expect(t, ids[1], http.MethodPut, "/key/bodies/too-big", bytes.Repeat([]byte("x"), abuseMaxValue+1), http.StatusRequestEntityTooLarge, "")
	bigObject := append(append([]byte(`{"bodies/too-big":"`), bytes.Repeat([]byte("x"), abuseMaxValue)...), `"}`...)
	a.expect(t, ids[2], http.MethodPost, "/key", bigObject, http.StatusRequestEntityTooLarge, "")
	a.expect(t, ids[0], http.MethodPost, "/4", append([]byte("http://127.0.0.1:1"), bytes.Repeat([]byte(" "), abuseMaxPeer)...), http.StatusRequestEntityTooLarge, "")
	a.expect(t, ids[1], http.MethodPost, "/join", append([]byte(`{"id":4,"raftAddr":"127.0.0.1:1"}`), bytes.Repeat([]byte(" "), abuseMaxPeer)...), http.StatusRequestEntityTooLarge, "")

	// A declared length over the limit, sent in full: 413.
	over := append([]byte(fmt.Sprintf("PUT /bodies/declared-too-big HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n", 2<<20)),
		bytes.Repeat([]byte("y"), 2<<20)...)
	if resp, body := a.raw(t, ids[2], over, false); resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Errorf("declared 2 MiB body: %d %s, want 413", resp.StatusCode, clip(body))
	}
	// Chunked, no length declared, over the limit: 413.
	var chunked bytes.Buffer
	chunked.WriteString("PUT /bodies/chunked-too-big HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n")
	for range 2 {
		fmt.Fprintf(&chunked, "%x\r\n%s\r\n", 1<<20, bytes.Repeat([]byte("z"), 1<<20))
	}
	chunked.WriteString("0\r\n\r\n")
	if resp, body := a.raw(t, ids[0], chunked.Bytes(), false); resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Errorf("chunked 2 MiB body: %d %s, want 413", resp.StatusCode, clip(body))
	}
	// A malformed Content-Length never reaches the handler.
	bad := []byte("PUT /bodies/bad-length HTTP/1.1\r\nHost: x\r\nContent-Length: ten\r\n\r\n0123456789")
	if resp, _ := a.raw(t, ids[1], bad, false); resp.StatusCode != http.StatusBadRequest {
		t.Errorf("Content-Length: ten: %d, want 400", resp.StatusCode)
	}

	// Truncated: the client declares more than it sends, then vanishes.
	truncated := map[string]string{
		"bodies/truncated":       "PUT /bodies/truncated HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n0123456789",
		"bodies/truncated-huge":  "PUT /bodies/truncated-huge HTTP/1.1\r\nHost: x\r\nContent-Length: 1099511627776\r\n\r\n0123456789",
		"bodies/truncated-chunk": "PUT /bodies/truncated-chunk HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n64\r\n0123456789",
		"bodies/truncated-key":   "POST /key HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{\"bodies/truncated-key\":\"v\"}",
		"bodies/no-body":         "PUT /bodies/no-body HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\n",
	}
	for i, k := range slices.Sorted(maps.Keys(truncated)) {
		a.raw(t, ids[i%len(ids)], []byte(truncated[k]), true)
	}
	// A Content-Length shorter than the body: the value is its first bytes,
	// and the rest is read as a next request (garbage: 400 from net/http).
	short := []byte("PUT /bodies/short-length HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabcdef")
	if resp, body := a.raw(t, ids[2], short, false); resp.StatusCode != http.StatusNoContent {
		t.Errorf("short Content-Length: %d %s, want 204 for the first 3 bytes", resp.StatusCode, clip(body))
	}
	c.WaitValue(t, ids[0], "bodies/short-length", []byte("abc"), valueTimeout)
	a.expect(t, ids[1], http.MethodDelete, "/key/bodies/short-length", nil, http.StatusNoContent, "")

	// Nothing oversize or truncated was stored, on any node (linearizable reads).
	absent := append(slices.Sorted(maps.Keys(truncated)),
		"bodies/too-big", "bodies/declared-too-big", "bodies/chunked-too-big", "bodies/bad-length", "bodies/short-length")
	for _, id := range ids {
		for _, k := range absent {
			if got, st, err := c.Get(id, k); err != nil || st != http.StatusNotFound {
				t.Errorf("node %d: GET %s: %d %s %v, want 404", id, k, st, clip(got), err)
			}
		}
	}
}

// escapeAll percent-encodes every byte of key that is not unreserved, so no
// '.', '/' or byte of invalid UTF-8 is interpreted on the way.
func escapeAll(key string) string {
	var b strings.Builder
	for i := 0; i < len(key); i++ {
		ch := key[i]
		if 'a' <= ch && ch <= 'z' || 'A' <= ch && ch <= 'Z' || '0' <= ch && ch <= '9' || ch == '-' || ch == '_' || ch == '~' {
			b.WriteByte(ch)
		} else {
			fmt.Fprintf(&b, "%%%02X", ch)
		}
	}
	return b.String()
}

// keys: empty and oversize keys get 400 on every route; keys with invalid
// UTF-8, dot segments, empty segments, percent signs, newlines and reserved
// names are ordinary keys that round-trip exactly, percent-encoded or not.
func (a *abuse) keys(t *testing.T) {
	ids := a.c.Live()
	tooLong := []string{
		strings.Repeat("k", abuseMaxKey+1),
		strings.Repeat("\xff", abuseMaxKey+1), // 12 KiB in the URL
		strings.Repeat("é", abuseMaxKey/2+1),  // 2049 runes, 4098 bytes
	}
	for i, k := range tooLong {
		id, p := ids[i%len(ids)], escapeAll(k)
		a.expect(t, id, http.MethodPut, "/"+p, []byte("v"), http.StatusBadRequest, "")
		a.expect(t, id, http.MethodPut, "/key/"+p, []byte("v"), http.StatusBadRequest, "")
		a.expect(t, id, http.MethodGet, "/"+p, nil, http.StatusBadRequest, "")
		a.expect(t, id, http.MethodGet, "/key/"+p, nil, http.StatusBadRequest, "")
		a.expect(t, id, http.MethodDelete, "/key/"+p, nil, http.StatusBadRequest, "")
		obj, _ := json.Marshal(map[string]string{k: "v"})
		a.expect(t, id, http.MethodPost, "/key", obj, http.StatusBadRequest, "")
	}
	for _, id := range ids {
		a.expect(t, id, http.MethodPut, "/", []byte("v"), http.StatusBadRequest, "")
		a.expect(t, id, http.MethodGet, "/", nil, http.StatusBadRequest, "")
		a.expect(t, id, http.MethodPut, "/key/", []byte("v"), http.StatusBadRequest, "")
		a.expect(t, id, http.MethodGet, "/key/", nil, http.StatusBadRequest, "")
		a.expect(t, id, http.MethodDelete, "/key/", nil, http.StatusBadRequest, "")
		a.expect(t, id, http.MethodPost, "/key", []byte(`{"":"v"}`), http.StatusBadRequest, "")
	}

	// Valid keys: written through /key/<every byte escaped>, read back byte
	// for byte through /<every byte escaped> on every node.
	keys := []string{
		strings.Repeat("\xfe", abuseMaxKey), "\xff\xfe\xfd", "odd/\xc3\x28/invalid-utf8", "odd/nul\x00byte",
		"..", ".", "../odd", "odd/..", "odd/./here", "odd//double", "/odd-leading", "odd-trailing/",
		"odd/%2F/literal", "%", "odd%zz", "odd?q=1&level=bogus", "odd#frag", " odd spaces ",
		"odd\nnewline\r\n", "中文/キー", "odd/\u202etrick",
	}
	for i, k := range keys {
		v := append([]byte("value of "), k...)
		if r := a.expect(t, ids[i%len(ids)], http.MethodPut, "/key/"+escapeAll(k), v, http.StatusNoContent, ""); r.Status == http.StatusNoContent {
			a.ack(k, v)
		}
	}
	for _, k := range keys {
		v := append([]byte("value of "), k...)
		for _, id := range ids {
			if r := a.expect(t, id, http.MethodGet, "/"+escapeAll(k)+"?level=consistent", nil, http.StatusOK, ""); !bytes.Equal(r.Body, v) {
				t.Errorf("node %d: GET %q = %s, want %s", id, k, clip(r.Body), clip(v))
			}
		}
	}
	// Dot segments and double slashes sent as they are name the same keys
	// as their escaped forms: nothing cleans paths.
	raw := map[string]string{"/odd/../up": "odd/../up", "/odd/./there": "odd/./there", "/odd//twice": "odd//twice", "//": "/", "/./odd": "./odd", "/odd/..": "odd/.."}
	for _, path := range slices.Sorted(maps.Keys(raw)) {
		k := raw[path]
		v := append([]byte("raw "), k...)
		if r := a.expect(t, ids[0], http.MethodPut, path, v, http.StatusNoContent, ""); r.Status == http.StatusNoContent {
			a.ack(k, v)
		}
		for _, id := range ids {
			if r := a.expect(t, id, http.MethodGet, path, nil, http.StatusOK, ""); !bytes.Equal(r.Body, v) {
				t.Errorf("node %d: GET %s = %s, want %s", id, path, clip(r.Body), clip(v))
			}
			if r := a.expect(t, id, http.MethodGet, "/"+escapeAll(k), nil, http.StatusOK, ""); !bytes.Equal(r.Body, v) {
				t.Errorf("node %d: GET /%s = %s, want %s", id, escapeAll(k), clip(r.Body), clip(v))
			}
		}
	}

	// Reserved names are keys under /key/; their JSON form round-trips, and
	// deleting them leaves the routes as they were.
	for i, k := range []string{"status", "health", "metrics", "join", "key", "key/x", "debug/pprof/", "debug/state", "1", "0"} {
		id := ids[i%len(ids)]
		v := "value of reserved " + k
		a.expect(t, id, http.MethodPut, "/key/"+escapeAll(k), []byte(v), http.StatusNoContent, "")
		for _, rid := range ids {
			r := a.expect(t, rid, http.MethodGet, "/key/"+escapeAll(k), nil, http.StatusOK, "")
			var got map[string]string
			if err := json.Unmarshal(r.Body, &got); err != nil || len(got) != 1 || got[k] != v {
				t.Errorf("node %d: GET /key/%s = %s (%v), want {%q: %q}", rid, k, clip(r.Body), err, k, v)
			}
		}
		a.expect(t, id, http.MethodDelete, "/key/"+escapeAll(k), nil, http.StatusNoContent, "")
		a.expect(t, ids[(i+1)%len(ids)], http.MethodGet, "/key/"+escapeAll(k), nil, http.StatusNotFound, "")
	}
	for _, id := range ids {
		if _, err := a.c.Status(id); err != nil {
			t.Errorf("GET /status after writing a key named status: %v", err)
		}
	}
}

// methods: every method a route does not serve gets 405 with the route's
// Allow list, on every node, and changes nothing.
func (a *abuse) methods(t *testing.T) {
	routes := []struct{ path, allow string }{
		{"/some-key", "GET, HEAD, PUT, POST, DELETE"},
		{"/4", "GET, HEAD, PUT, POST, DELETE"},
		{"/key/some-key", "GET, HEAD, PUT, DELETE"},
		{"/key", "GET, HEAD, POST, DELETE"}, // GET: a listing; DELETE: a range (400 without one)
		{"/join", "POST"},
		{"/status", "GET, HEAD"},
		{"/health", "GET, HEAD"},
		{"/metrics", "GET, HEAD"},
		{"/debug/state", "GET, HEAD"},
		{"/debug/pprof/", "GET, HEAD"},
		{"/debug/pprof/heap", "GET, HEAD"},
		{"/debug/pprof/symbol", "GET, HEAD, POST"},
	}
	methods := []string{"GET", "HEAD", "PUT", "POST", "DELETE", "PATCH", "OPTIONS", "TRACE", "PROPFIND", "BREW"}
	ids := a.c.Live()
	n := 0
	for _, r := range routes {
		allowed := strings.Split(r.allow, ", ")
		for _, m := range methods {
			if !slices.Contains(allowed, m) {
				a.expect(t, ids[n%len(ids)], m, r.path, []byte("http://127.0.0.1:1"), http.StatusMethodNotAllowed, r.allow)
				n++
			}
		}
	}
	for _, id := range ids {
		a.expect(t, id, http.MethodGet, "/some-key", nil, http.StatusNotFound, "")
		a.expect(t, id, http.MethodGet, "/key/some-key", nil, http.StatusNotFound, "")
		checkMembers(t, a.c, id, 1, 2, 3)
	}
}

// membership: malformed membership requests get 400, conflicts 409, unknown
// members 404; an unreachable but well-formed member can be added and
// removed again; two changes at once each get 204 or 409; and the members
// are the same three on every node afterwards.
func (a *abuse) membership(t *testing.T) {
	c, ids := a.c, a.c.Live()
	leader := c.WaitLeader(t, leaderTimeout)
	u, err := url.Parse(c.PeerURL(1))
	if err != nil {
		t.Fatal(err)
	}
	unreachable := "http://127.0.0.1:1"
	tests := []struct {
		name, method, path, body string
		want                     int
	}{
		{"id not a number", "POST", "/abc", unreachable, 400},
		{"id with sign", "POST", "/+4", unreachable, 400},
		{"id zero", "POST", "/0", unreachable, 400},
		{"id negative", "POST", "/-4", unreachable, 400},
		{"id fraction", "POST", "/4.0", unreachable, 400},
		{"id hex", "POST", "/0x4", unreachable, 400},
		{"id overflows", "POST", "/18446744073709551616", unreachable, 400},
		{"id of a member", "POST", "/2", unreachable, 409},
		{"remove not a number", "DELETE", "/abc", "", 400},
		{"remove zero", "DELETE", "/0", "", 400},
		{"remove negative", "DELETE", "/-2", "", 400},
		{"remove unknown", "DELETE", "/99", "", 404},
		{"remove unknown max id", "DELETE", "/18446744073709551615", "", 404},
		{"url empty", "POST", "/4", "", 400},
		{"url garbage", "POST", "/4", "%%%", 400},
		{"url no scheme", "POST", "/4", "127.0.0.1:1", 400},
		{"url ftp", "POST", "/4", "ftp://127.0.0.1:1", 400},
		{"url no port", "POST", "/4", "http://127.0.0.1", 400},
		{"url port zero", "POST", "/4", "http://127.0.0.1:0", 400},
		{"url port too big", "POST", "/4", "http://127.0.0.1:65536", 400},
		{"url no host", "POST", "/4", "http://:1", 400},
		{"url path", "POST", "/4", "http://127.0.0.1:1/raft", 400},
		{"url query", "POST", "/4", "http://127.0.0.1:1?x=1", 400},
		{"url user", "POST", "/4", "http://u:p@127.0.0.1:1", 400},
		{"url two lines", "POST", "/4", "http://127.0.0.1:1\nhttp://127.0.0.1:2", 400},
		// url.Parse accepts these hosts; rafthttp panics on the first, so a
		// conf change carrying it would crash every member, at every restart.
		{"url host rafthttp cannot split", "POST", "/4", "http://a]b:1", 400},
		{"url host not a name", "POST", "/4", "http://a<b:1", 400},
		{"url ipv6 zone", "POST", "/4", "http://[fe80::1%25lo]:1", 400},
		{"url of a member", "POST", "/4", c.PeerURL(1), 409},
		{"url of a member, spelled otherwise", "POST", "/4", "HTTP://" + u.Hostname() + ":0" + u.Port() + "/", 409},
		{"join name", "POST", "/join", `{"id":"node04","raftAddr":"127.0.0.1:1"}`, 400},
		{"join zero", "POST", "/join", `{"id":0,"raftAddr":"127.0.0.1:1"}`, 400},
		{"join negative", "POST", "/join", `{"id":-4,"raftAddr":"127.0.0.1:1"}`, 400},
		{"join no address", "POST", "/join", `{"id":4}`, 400},
		{"join bad host", "POST", "/join", `{"id":4,"raftAddr":"a]b:1"}`, 400},
		{"join not JSON", "POST", "/join", `id=4`, 400},
		{"join id of a member", "POST", "/join", `{"id":3,"raftAddr":"127.0.0.1:1"}`, 409},
	}
	for i, tc := range tests {
		a.expect(t, ids[i%len(ids)], tc.method, tc.path, []byte(tc.body), tc.want, "")
	}
	for _, id := range ids {
		checkMembers(t, c, id, 1, 2, 3)
	}

	// An unreachable but well-formed member: added through a follower (3 of
	// 4 voters are up, a quorum), then removed; its id is not reusable.
	follower := followers(c, leader)[0]
	a.confChange(t, follower, http.MethodPost, "/4", unreachable)
	for _, id := range ids {
		checkMembers(t, c, id, 1, 2, 3, 4)
	}
	a.confChange(t, leader, http.MethodDelete, "/4", "")
	for _, id := range ids {
		checkMembers(t, c, id, 1, 2, 3)
	}
	a.expect(t, leader, http.MethodPost, "/4", []byte("http://127.0.0.1:4"), http.StatusConflict, "")
	a.expect(t, follower, http.MethodPost, "/join", []byte(`{"id":4,"raftAddr":"127.0.0.1:4"}`), http.StatusConflict, "")
	a.expect(t, follower, http.MethodDelete, "/4", nil, http.StatusNotFound, "")

	// Two changes fired at once at one node: one at a time, the other 409.
	a.concurrently(t, []int{leader, leader}, []string{"/5", "/6"}, []string{"http://127.0.0.1:5", "http://127.0.0.1:6"})
	for _, id := range ids {
		checkMembers(t, c, id, 1, 2, 3)
	}
	// And at two different members: both reach the leader, which takes
	// one at a time, so again 204 or 409, never a timeout.
	others := followers(c, leader)
	a.concurrently(t, []int{others[0], others[1]}, []string{"/7", "/8"}, []string{"http://127.0.0.1:7", "http://127.0.0.1:8"})
	a.concurrently(t, []int{leader, others[0]}, []string{"/9", "/10"}, []string{"http://127.0.0.1:9", "http://127.0.0.1:10"})
	for _, id := range ids {
		checkMembers(t, c, id, 1, 2, 3)
	}
}

// confChange sends a membership change to node id until it is answered 204,
// retrying while it gets 503 (no leader) or 409 (another change in progress).
func (a *abuse) confChange(t *testing.T, id int, method, path, body string) {
	t.Helper()
	testcluster.WaitFor(t, 2*leaderTimeout, fmt.Sprintf("node %d: %s %s answered 204", id, method, path), func() error {
		r, err := a.c.Do(id, method, path, []byte(body))
		switch {
		case err != nil:
			return err
		case r.Status == http.StatusNoContent:
			return nil
		case r.Status == http.StatusServiceUnavailable,
			r.Status == http.StatusConflict && strings.Contains(string(r.Body), "in progress"):
			return fmt.Errorf("%d %s", r.Status, bytes.TrimSpace(r.Body))
		}
		t.Fatalf("node %d: %s %s: %d %s", id, method, path, r.Status, clip(r.Body))
		return nil
	})
}

// concurrently fires POST paths[i] with bodies[i] at nodes[i], all at once.
// Each must get 204 or 409; every member added is then removed again.
func (a *abuse) concurrently(t *testing.T, nodes []int, paths, bodies []string) {
	t.Helper()
	answers := make([]testcluster.Response, len(nodes))
	errs := make([]error, len(nodes))
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			answers[i], errs[i] = a.c.Do(nodes[i], http.MethodPost, paths[i], []byte(bodies[i]))
		}()
	}
	close(start)
	wg.Wait()
	added := map[string]bool{}
	for i, r := range answers {
		switch {
		case errs[i] != nil:
			t.Errorf("node %d: POST %s: %v", nodes[i], paths[i], errs[i])
		case r.Status == http.StatusNoContent:
			added[paths[i]] = true
		case r.Status != http.StatusConflict:
			t.Errorf("node %d: POST %s at the same time as %v: %d %s, want 204 or 409",
				nodes[i], paths[i], paths, r.Status, clip(r.Body))
		}
	}
	t.Logf("concurrent POST %v to nodes %v: added %v", paths, nodes, slices.Sorted(maps.Keys(added)))
	for _, p := range slices.Sorted(maps.Keys(added)) {
		a.confChange(t, nodes[0], http.MethodDelete, p, "")
	}
}

// slowClients: 50 connections that trickle a request line or headers, a
// byte a second, do not slow down other clients, and the server closes each
// of them within its header timeout.
func (a *abuse) slowClients(t *testing.T) {
	const conns = 50
	c := a.c
	id := c.Live()[0]
	stop := make(chan struct{})
	defer close(stop)
	closedAfter := make(chan time.Duration, conns)
	for i := range conns {
		conn, err := net.DialTimeout("tcp", a.addr(id), 5*time.Second)
		if err != nil {
			t.Fatalf("slow connection %d: %v", i, err)
		}
		defer conn.Close()
		opened := time.Now()
		start := "GET /some-key HTTP/1.1\r\nHost: x\r\nX-Slow: " // the headers never end
		if i%2 == 1 {
			start = "PUT /slow-line" // nor does the request line
		}
		if _, err := io.WriteString(conn, start); err != nil {
			t.Fatalf("slow connection %d: %v", i, err)
		}
		go func() { // a byte a second until the server hangs up
			tick := time.NewTicker(time.Second)
			defer tick.Stop()
			for {
				select {
				case <-stop:
					return
				case <-tick.C:
					if _, err := conn.Write([]byte("a")); err != nil {
						return
					}
				}
			}
		}()
		go func() {
			conn.SetReadDeadline(opened.Add(2 * abuseHeaderTimeout))
			_, err := io.Copy(io.Discard, conn) // until EOF or reset
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				closedAfter <- -1
				return
			}
			closedAfter <- time.Since(opened)
		}()
	}

	// Meanwhile other clients are served: each request has the test
	// client's deadline (the daemon's request timeout plus a margin), a
	// liveness bound; how long they take is logged, not asserted.
	var slowest time.Duration
	for i := range 20 {
		k, v := fmt.Sprintf("slow/normal-%02d", i), []byte("ok")
		start := time.Now()
		if st, err := c.Put(id, k, v); err != nil || st != http.StatusNoContent {
			t.Errorf("PUT %s beside slow clients: %d %v", k, st, err)
		} else {
			a.ack(k, v)
		}
		if got, st, err := c.Get(id, k); err != nil || st != http.StatusOK || !bytes.Equal(got, v) {
			t.Errorf("GET %s beside slow clients: %d %s %v", k, st, clip(got), err)
		}
		slowest = max(slowest, time.Since(start))
	}
	t.Logf("beside %d slow clients, the slowest PUT and GET took %v", conns, slowest.Round(time.Millisecond))

	var last time.Duration
	for range conns {
		d := <-closedAfter
		if d < 0 || d > abuseHeaderTimeout {
			t.Fatalf("a slow connection was still open %v after it opened; want it closed within %v",
				max(d, 2*abuseHeaderTimeout), abuseHeaderTimeout)
		}
		last = max(last, d)
	}
	t.Logf("the server closed %d slow connections, the last %v after it opened", conns, last.Round(time.Millisecond))
}

// burst holds abuseBurst slow requests open at one node at once, more than
// its in-flight limit (httpapi.DefaultMaxInFlight; the daemon has no flag for
// it): each sends its headers and half its body, and the rest only once all
// have started. The requests beyond the limit are answered 503 with
// Retry-After: 1 at once, before their bodies are complete; every other one
// is answered 204 once its body is, and is then served. None hangs, and none
// fails with a connection error other than refused or reset.
func (a *abuse) burst(t *testing.T) {
	const limit = httpapi.DefaultMaxInFlight
	id := followers(a.c, a.c.WaitLeader(t, leaderTimeout))[0]
	type result struct {
		key    string
		status int
		retry  string
		early  bool // answered before the rest of its body was sent
		err    error
	}
	type answer struct {
		resp *http.Response
		err  error
	}
	results := make(chan result, abuseBurst)
	started := make(chan bool, abuseBurst) // false: could not connect
	early := make(chan struct{}, abuseBurst)
	release := make(chan struct{})
	for i := range abuseBurst {
		go func() {
			res := result{key: fmt.Sprintf("burst/%04d", i)}
			defer func() { results <- res }()
			conn, err := net.DialTimeout("tcp", a.addr(id), 10*time.Second)
			if err != nil {
				started <- false
				res.err = err
				return
			}
			defer conn.Close()
			conn.SetDeadline(time.Now().Add(3 * time.Minute))
			_, err = fmt.Fprintf(conn, "PUT /%s HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n01234", res.key)
			started <- err == nil
			if err != nil {
				res.err = err
				return
			}
			answered := make(chan answer, 1)
			go func() {
				r, err := http.ReadResponse(bufio.NewReader(conn), nil)
				answered <- answer{r, err}
			}()
			var ans answer
			select {
			case ans = <-answered:
				res.early = true
				early <- struct{}{}
			case <-release:
				if _, err := io.WriteString(conn, "56789"); err != nil && !isRefusedOrReset(err) {
					res.err = err
					return
				}
				ans = <-answered
			}
			if ans.err != nil {
				res.err = ans.err
				return
			}
			res.status, res.retry = ans.resp.StatusCode, ans.resp.Header.Get("Retry-After")
		}()
	}
	deadline := time.After(2 * time.Minute)
	connected := 0
	for range abuseBurst {
		select {
		case ok := <-started:
			if ok {
				connected++
			}
		case <-deadline:
			t.Fatalf("%d slow requests did not all start within 2 minutes", abuseBurst)
		}
	}
	// The server refuses what is beyond its limit without waiting for bodies.
	for n := 0; n < connected-limit; n++ {
		select {
		case <-early:
		case <-deadline:
			t.Fatalf("%d of %d requests beyond the limit of %d answered before their bodies were complete",
				n, connected-limit, limit)
		}
	}
	close(release)
	counts := map[string]int{}
	deadline = time.After(4 * time.Minute)
	for range abuseBurst {
		var res result
		select {
		case res = <-results:
		case <-deadline:
			t.Fatalf("slow requests not all answered within 4 minutes of completing their bodies; answers so far %v", counts)
		}
		switch {
		case res.status == http.StatusNoContent && !res.early:
			a.ack(res.key, []byte("0123456789"))
			counts["204"]++
		case res.status == http.StatusServiceUnavailable && res.retry == "1" && res.early:
			counts["503 at once"]++
		case res.status == 0 && isRefusedOrReset(res.err):
			counts["refused or reset"]++
		default:
			t.Errorf("PUT %s in the burst: status %d (before its body was complete: %v), Retry-After %q, error %v; "+
				"want 204 after, or 503 with Retry-After: 1 before", res.key, res.status, res.early, res.retry, res.err)
		}
	}
	t.Logf("%d slow requests at node %d (limit %d): %v", abuseBurst, id, limit, counts)
	if counts["204"] != min(connected, limit) {
		t.Errorf("%d requests applied, want %d: every one the limit let in", counts["204"], min(connected, limit))
	}
}

func isRefusedOrReset(err error) bool {
	return errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}

// TestBadInputLastVoter: in a one-node cluster, removing the only voter is a
// 400 that changes nothing; the node keeps serving, also after a restart.
func TestBadInputLastVoter(t *testing.T) {
	t.Parallel()
	c, leader := startCluster(t, testcluster.Options{N: 1})
	a := &abuse{c: c, want: map[string][]byte{}}
	mustPut(t, c, leader, "before", []byte("1"))
	a.expect(t, leader, http.MethodDelete, "/1", nil, http.StatusBadRequest, "")
	a.expect(t, leader, http.MethodDelete, "/2", nil, http.StatusNotFound, "")
	checkMembers(t, c, leader, 1)
	mustPut(t, c, leader, "after", []byte("2"))
	if code := c.Stop(leader); code != 0 {
		t.Errorf("exit status %d on SIGTERM, want 0", code)
	}
	c.Restart(leader)
	c.WaitLeader(t, leaderTimeout)
	checkMembers(t, c, leader, 1)
	waitKeys(t, c, leader, map[string][]byte{"before": []byte("1"), "after": []byte("2")}, valueTimeout)
}
