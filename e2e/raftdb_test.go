package e2e

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/raftkv/raftkv/testcluster"
)

// curlHeaders are the headers `curl -d` sends with a body: raftdb's README uses curl,
// so the form content type must not change how a JSON body is read.
var curlHeaders = http.Header{
	"Content-Type": {"application/x-www-form-urlencoded"},
	"User-Agent":   {"curl/8.5.0"},
	"Accept":       {"*/*"},
}

// curl sends what raftdb's README curl command sends to node id and fails the test on a
// transport error.
func curl(t *testing.T, c *testcluster.Cluster, id int, method, path, body string) testcluster.Response {
	t.Helper()
	h := curlHeaders
	var b []byte
	if body != "" {
		b = []byte(body)
	} else {
		h = http.Header{"User-Agent": curlHeaders["User-Agent"], "Accept": curlHeaders["Accept"]}
	}
	r, err := request(method, c.ClientURL(id)+path, b, h)
	if err != nil {
		t.Fatalf("node %d: %v", id, err)
	}
	return r
}

// want2xx fails the test unless r is a success.
func want2xx(t *testing.T, id int, method, path string, r testcluster.Response) {
	t.Helper()
	if r.Status/100 != 2 {
		t.Fatalf("node %d: %s %s: status %d %s, want 2xx", id, method, path, r.Status, clip(r.Body))
	}
}

// checkKeyJSON fails the test unless r is raftdb's answer to GET /key/<k>: 200 with
// the JSON object want. raftdb writes the object with no newline; raftkv ends every
// JSON body with one, which is the only difference accepted.
func checkKeyJSON(t *testing.T, id int, path string, r testcluster.Response, want string) {
	t.Helper()
	if r.Status != http.StatusOK || string(bytes.TrimSuffix(r.Body, []byte("\n"))) != want {
		t.Fatalf("node %d: GET %s: %d %s, want 200 %s", id, path, r.Status, clip(r.Body), want)
	}
	if ct := r.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("node %d: GET %s: Content-Type %q, want application/json", id, path, ct)
	}
}

// TestRaftdbCurlUsage runs the curl commands of raftdb's README against three members
// in turn, none of them necessarily the leader: write through one, read (linearizable
// and stale) through another, delete through the third; then binary values in base64.
func TestRaftdbCurlUsage(t *testing.T) {
	t.Parallel()
	c, _ := startCluster(t, testcluster.Options{InProcess: true})

	r := curl(t, c, 1, http.MethodPost, "/key", `{"foo": "bar"}`)
	want2xx(t, 1, http.MethodPost, "/key", r)
	checkKeyJSON(t, 2, "/key/foo", curl(t, c, 2, http.MethodGet, "/key/foo", ""), `{"foo":"bar"}`)
	checkKeyJSON(t, 2, "/key/foo?level=stale", curl(t, c, 2, http.MethodGet, "/key/foo?level=stale", ""), `{"foo":"bar"}`)
	checkKeyJSON(t, 3, "/key/foo?level=none", curl(t, c, 3, http.MethodGet, "/key/foo?level=none", ""), `{"foo":"bar"}`)

	// A multi-pair object is one atomic write; every pair is then readable elsewhere,
	// in raftdb's form and raftexample's.
	r = curl(t, c, 3, http.MethodPost, "/key", `{"k1": "v1", "k2": "v2", "k3": "v3"}`)
	want2xx(t, 3, http.MethodPost, "/key", r)
	for _, id := range []int{1, 2} {
		for i := 1; i <= 3; i++ {
			k, v := fmt.Sprintf("k%d", i), fmt.Sprintf("v%d", i)
			checkKeyJSON(t, id, "/key/"+k, curl(t, c, id, http.MethodGet, "/key/"+k, ""), fmt.Sprintf("{%q:%q}", k, v))
			if g := mustRequest(t, c, id, http.MethodGet, "/"+k, nil, http.StatusOK); string(g.Body) != v {
				t.Fatalf("node %d: GET /%s: %s, want %q", id, k, clip(g.Body), v)
			}
		}
	}

	r = curl(t, c, 3, http.MethodDelete, "/key/foo", "")
	want2xx(t, 3, http.MethodDelete, "/key/foo", r)
	for _, id := range c.Live() {
		if g := curl(t, c, id, http.MethodGet, "/key/foo", ""); g.Status != http.StatusNotFound {
			t.Errorf("node %d: GET /key/foo after DELETE through node 3: %d %s, want 404", id, g.Status, clip(g.Body))
		}
	}
	// Node 3 applied its own delete before answering, so even its stale read misses.
	if g := curl(t, c, 3, http.MethodGet, "/key/foo?level=stale", ""); g.Status != http.StatusNotFound {
		t.Errorf("node 3: GET /key/foo?level=stale after its DELETE: %d %s, want 404", g.Status, clip(g.Body))
	}

	t.Run("binary values", func(t *testing.T) { raftdbBinaryValues(t, c) })
}

// raftdbBinaryValues: bytes that are not UTF-8 round-trip through raftdb's
// JSON routes in base64, written through one member and read through the
// others, in base64 and raw; without ?encoding=base64 the JSON route refuses
// to mangle them, with a sentence that says what to add.
func raftdbBinaryValues(t *testing.T, c *testcluster.Cluster) {
	bin := []byte{0x00, 0xff, 0xfe, '"', '\\', '\n', 0xc3, 0x28}
	b64 := base64.StdEncoding.EncodeToString(bin)

	r := curl(t, c, 1, http.MethodPost, "/key?encoding=base64", `{"bin": "`+b64+`", "txt": "aMOpbGxv"}`)
	want2xx(t, 1, http.MethodPost, "/key?encoding=base64", r)
	// A value written raw reads back in base64 too.
	mustRequest(t, c, 2, http.MethodPut, "/raw/bin", bin, http.StatusNoContent)
	for _, id := range c.Live() {
		for _, k := range []string{"bin", "raw/bin"} {
			p := "/key/" + k + "?encoding=base64"
			checkKeyJSON(t, id, p, curl(t, c, id, http.MethodGet, p, ""), fmt.Sprintf("{%q:%q}", k, b64))
			if g := mustRequest(t, c, id, http.MethodGet, "/"+k, nil, http.StatusOK); !bytes.Equal(g.Body, bin) {
				t.Errorf("node %d: GET /%s = %q, want %q", id, k, g.Body, bin)
			}
		}
		checkKeyJSON(t, id, "/key/txt", curl(t, c, id, http.MethodGet, "/key/txt", ""), "{\"txt\":\"h\u00e9llo\"}")
		checkKeyJSON(t, id, "/key/txt?encoding=base64", curl(t, c, id, http.MethodGet, "/key/txt?encoding=base64", ""), `{"txt":"aMOpbGxv"}`)

		const refused = "the value is not valid UTF-8, which a JSON string cannot carry; add ?encoding=base64, or read the raw bytes with GET /<key>"
		checkError(t, id, "GET /key/bin", curl(t, c, id, http.MethodGet, "/key/bin", ""), false, http.StatusNotAcceptable, "not_utf8", refused)
		g, err := request(http.MethodGet, c.ClientURL(id)+"/key/bin", nil, jsonAccept)
		if err != nil {
			t.Fatalf("node %d: %v", id, err)
		}
		checkError(t, id, "GET /key/bin, Accept: application/json", g, true, http.StatusNotAcceptable, "not_utf8", refused)
	}
}

// TestRaftdbJoin adds a fourth member the way raftdb's users do, POST /join with
// raftdb's body and then start it with --join, and a fifth with --join-addr alone.
// Both catch up, publish their client URLs, and take part in writes and reads.
// Malformed join bodies get 400 and change nothing.
func TestRaftdbJoin(t *testing.T) {
	t.Parallel()
	c, leader := startCluster(t, testcluster.Options{})
	via := followers(c, leader)[0]
	r := curl(t, c, leader, http.MethodPost, "/key", `{"before-join": "yes", "other": "pair"}`)
	want2xx(t, leader, http.MethodPost, "/key", r)

	ports := testcluster.FreePorts(t, 4)
	peer4, client4 := fmt.Sprintf("127.0.0.1:%d", ports[0]), ports[1]
	peer5, client5 := fmt.Sprintf("127.0.0.1:%d", ports[2]), ports[3]
	jsonHeader := http.Header{"Content-Type": {"application/json"}}

	for _, tc := range []struct{ name, body string }{
		{"raftdb node name as id", fmt.Sprintf(`{"id": "node02", "httpAddr": "127.0.0.1:%d", "raftAddr": %q}`, client4, peer4)},
		{"httpAddr but no raftAddr", fmt.Sprintf(`{"id": "4", "httpAddr": "127.0.0.1:%d"}`, client4)},
		{"no address at all", `{"id": "4"}`},
	} {
		r, err := request(http.MethodPost, c.ClientURL(via)+"/join", []byte(tc.body), jsonHeader)
		if err != nil {
			t.Fatalf("%s: node %d: %v", tc.name, via, err)
		}
		body := strings.TrimSuffix(string(r.Body), "\n")
		if r.Status != http.StatusBadRequest || body == "" || strings.Contains(body, "\n") {
			t.Errorf("%s: node %d: POST /join %s: %d %s, want 400 with a one-line reason", tc.name, via, tc.body, r.Status, clip(r.Body))
		}
	}
	checkMembers(t, c, via, 1, 2, 3)

	peers := []string{c.PeerURL(1), c.PeerURL(2), c.PeerURL(3), "http://" + peer4}
	body := fmt.Sprintf(`{"id": "4", "httpAddr": "127.0.0.1:%d", "raftAddr": %q}`, client4, peer4)
	r, err := request(http.MethodPost, c.ClientURL(via)+"/join", []byte(body), jsonHeader)
	if err != nil {
		t.Fatalf("node %d: %v", via, err)
	}
	want2xx(t, via, http.MethodPost, "/join "+body, r)
	n4 := startExtraNode(t, 4, peers, client4, "--join")
	n4.waitKeyJSON(t, "before-join", `{"before-join":"yes"}`)

	peers = append(peers, "http://"+peer5)
	n5 := startExtraNode(t, 5, peers, client5, "--join-addr", strings.TrimPrefix(c.ClientURL(1), "http://"))
	n5.waitKeyJSON(t, "other", `{"other":"pair"}`)

	for _, id := range c.Live() {
		checkMembers(t, c, id, 1, 2, 3, 4, 5)
	}
	testcluster.WaitFor(t, convergeTimeout, "node 1 to list members 4 and 5 with their URLs", func() error {
		s, err := getStatus(c.ClientURL(1))
		if err != nil {
			return err
		}
		for _, n := range []*extraNode{n4, n5} {
			m, ok := s.member(uint64(n.id))
			switch {
			case !ok:
				return fmt.Errorf("no member %d in %v", n.id, s.memberIDs())
			case len(m.PeerURLs) != 1 || m.PeerURLs[0] != peers[n.id-1]:
				t.Fatalf("node 1: member %d has peerURLs %v, want [%s]", n.id, m.PeerURLs, peers[n.id-1])
			case len(m.ClientURLs) != 1 || m.ClientURLs[0] != n.clientURL:
				return fmt.Errorf("member %d has clientURLs %v, want [%s]", n.id, m.ClientURLs, n.clientURL)
			}
		}
		return nil
	})

	// The five work as one cluster: a write through node 5 is read linearizably on
	// node 4 and on an original member right away.
	r, err = request(http.MethodPut, n5.clientURL+"/written-via-5", []byte("5"), nil)
	if err != nil || r.Status != http.StatusNoContent {
		t.Fatalf("node 5: PUT /written-via-5: %d %s %v, want 204", r.Status, clip(r.Body), err)
	}
	for _, base := range []string{n4.clientURL, c.ClientURL(leader)} {
		g, err := request(http.MethodGet, base+"/written-via-5", nil, nil)
		if err != nil || g.Status != http.StatusOK || string(g.Body) != "5" {
			t.Errorf("%s: GET /written-via-5 right after node 5's 204: %d %s %v, want 200 \"5\"", base, g.Status, clip(g.Body), err)
		}
	}
}

// extraNode is a raftkv process the test starts itself. testcluster.AddNode posts the
// membership change on its own (POST /<id>), so a member added through raftdb's
// POST /join, or one that asks to be added (--join-addr), is started here, with the
// command line testcluster uses.
type extraNode struct {
	id        int
	clientURL string
	logPath   string
	done      chan struct{} // closed once the process has exited
	state     *os.ProcessState
}

// extraStopTimeout bounds how long an extra node may take to exit after SIGTERM.
const extraStopTimeout = 20 * time.Second

// startExtraNode starts member id with --cluster peers and --port clientPort, plus
// args, in its own t.TempDir(). A cleanup stops it with SIGTERM, once it listens,
// and fails the test if it does not exit 0, if it died on its own, or if its log
// reports a data race.
func startExtraNode(t *testing.T, id int, peers []string, clientPort int, args ...string) *extraNode {
	t.Helper()
	bin := testcluster.BuildBinary(t)
	dir := t.TempDir() // removed after the cleanup below has stopped the process
	n := &extraNode{
		id:        id,
		clientURL: fmt.Sprintf("http://127.0.0.1:%d", clientPort),
		logPath:   filepath.Join(dir, "node.log"),
		done:      make(chan struct{}),
	}
	args = append([]string{
		"--id", strconv.Itoa(id),
		"--cluster", strings.Join(peers, ","),
		"--port", strconv.Itoa(clientPort),
		"--data-dir", filepath.Join(dir, "data"),
	}, args...)
	logf, err := os.Create(n.logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close() // the child has its own descriptor
	fmt.Fprintf(logf, "=== e2e: start node %d: %s %s\n", id, bin, strings.Join(args, " "))
	cmd := exec.Command(bin, args...)
	cmd.Dir = dir
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = sysProcAttr()
	if err := cmd.Start(); err != nil {
		t.Fatalf("start node %d: %v", id, err)
	}
	go func() {
		cmd.Wait()
		n.state = cmd.ProcessState
		close(n.done)
	}()
	t.Cleanup(func() {
		if n.exited() {
			t.Errorf("node %d died unexpectedly: %v", id, n.state)
		} else {
			testcluster.AwaitListening(n.clientURL, n.exited)
			cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-n.done:
				if code := n.state.ExitCode(); code != 0 {
					t.Errorf("node %d exited with status %d on SIGTERM (want 0)", id, code)
				}
			case <-time.After(extraStopTimeout):
				t.Errorf("node %d did not exit within %v of SIGTERM; killing it", id, extraStopTimeout)
				cmd.Process.Kill()
				<-n.done
			}
		}
		b, _ := os.ReadFile(n.logPath)
		if bytes.Contains(b, []byte("WARNING: DATA RACE")) {
			t.Errorf("node %d log reports a data race: %s", id, n.logPath)
		}
		if t.Failed() {
			t.Logf("--- tail of node %d log (%s) ---\n%s", id, n.logPath, lastLines(b, 40))
		}
	})
	return n
}

func (n *extraNode) exited() bool {
	select {
	case <-n.done:
		return true
	default:
		return false
	}
}

// waitKeyJSON polls GET /key/<key> on n until it answers 200 with the object want,
// failing at once if n has exited.
func (n *extraNode) waitKeyJSON(t *testing.T, key, want string) {
	t.Helper()
	testcluster.WaitFor(t, valueTimeout, fmt.Sprintf("node %d to serve %q", n.id, key), func() error {
		if n.exited() {
			t.Fatalf("node %d exited: %v", n.id, n.state)
		}
		r, err := request(http.MethodGet, n.clientURL+"/key/"+key, nil, nil)
		switch {
		case err != nil:
			return err
		case r.Status != http.StatusOK || string(bytes.TrimSuffix(r.Body, []byte("\n"))) != want:
			return fmt.Errorf("%d %s", r.Status, clip(r.Body))
		}
		return nil
	})
}

// lastLines returns the last n lines of b.
func lastLines(b []byte, n int) string {
	lines := strings.SplitAfter(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "")
}
