package daemon

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.etcd.io/etcd/client/pkg/v3/fileutil"
	"go.uber.org/zap/zaptest"

	"github.com/raftkv/raftkv/internal/testutil"
)

// freePeerURL returns the URL of a free port.
func freePeerURL(t *testing.T) string {
	t.Helper()
	return fmt.Sprintf("http://127.0.0.1:%d", testutil.FreePorts(t, 1)[0])
}

// oneMember is the Config of a one-member cluster in dir, on free ports.
func oneMember(t *testing.T, dir string) Config {
	return Config{
		ID:               1,
		Peers:            []string{freePeerURL(t)},
		DataDir:          dir,
		ClientListenAddr: "127.0.0.1:0",
		TickInterval:     10 * time.Millisecond,
		Logger:           zaptest.NewLogger(t),
	}
}

// call sends one request to m and returns the status and body.
func call(t *testing.T, m *Member, method, path, body string) (int, string) {
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
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// waitLeader polls GET /status until m leads.
func waitLeader(t *testing.T, m *Member) {
	t.Helper()
	testutil.WaitFor(t, 20*time.Second, fmt.Sprintf("member %d to lead", m.ID()), func() error {
		_, body := call(t, m, http.MethodGet, "/status", "")
		var st struct{ Leader uint64 }
		if json.Unmarshal([]byte(body), &st) != nil || st.Leader != m.ID() {
			return fmt.Errorf("GET /status: %s", body)
		}
		return nil
	})
}

// TestMemberLifecycle starts a member, writes through it, stops it, and
// starts it again from the same data dir.
func TestMemberLifecycle(t *testing.T) {
	cfg := oneMember(t, filepath.Join(t.TempDir(), "data"))
	m, err := Start(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if a, ok := m.ClientAddr().(*net.TCPAddr); !ok || a.Port == 0 {
		t.Fatalf("client address %v: want the port picked", m.ClientAddr())
	}
	if want := fmt.Sprintf("http://127.0.0.1:%d", m.ClientAddr().(*net.TCPAddr).Port); m.ClientURL() != want {
		t.Fatalf("client URL %q, want %q", m.ClientURL(), want)
	}
	waitLeader(t, m)
	if st, body := call(t, m, http.MethodPut, "/k", "v"); st != http.StatusNoContent {
		t.Fatalf("PUT /k: %d %s", st, body)
	}
	if st, _ := call(t, m, http.MethodGet, "/debug/pprof/", ""); st != http.StatusNotFound {
		t.Errorf("GET /debug/pprof/ without Config.Pprof: %d, want 404", st)
	}
	m.Stop()
	select {
	case <-m.Done():
	default:
		t.Fatal("Done is open after Stop returned")
	}
	if err := m.Err(); err != nil {
		t.Fatalf("Err after Stop: %v", err)
	}
	m.Stop() // idempotent

	cfg.ClientListenAddr = "127.0.0.1:0"
	m, err = Start(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Stop()
	waitLeader(t, m)
	if st, body := call(t, m, http.MethodGet, "/k", ""); st != http.StatusOK || body != "v" {
		t.Fatalf("GET /k after the restart: %d %q, want 200 \"v\"", st, body)
	}
}

// TestStartClientPortInUse: a busy client port fails Start with an error
// that names it, before the data dir is touched.
func TestStartClientPortInUse(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	cfg := oneMember(t, filepath.Join(t.TempDir(), "data"))
	cfg.ClientListenAddr = l.Addr().String()
	m, err := Start(context.Background(), cfg)
	if err == nil {
		m.Stop()
		t.Fatal("Start succeeded on a busy client port")
	}
	if !strings.Contains(err.Error(), l.Addr().String()) {
		t.Errorf("error %q does not name %s", err, l.Addr())
	}
}

// TestStartPeerPortInUse: a busy peer port fails Start with an error that
// names it, and leaves the data dir as it was, so that the next start
// bootstraps the cluster (a WAL created before the failure made the next
// start a restart with no members, which never elected a leader).
func TestStartPeerPortInUse(t *testing.T) {
	cfg := oneMember(t, filepath.Join(t.TempDir(), "data"))
	addr := strings.TrimPrefix(cfg.Peers[0], "http://")
	l, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	m, err := Start(context.Background(), cfg)
	if err == nil {
		m.Stop()
		l.Close()
		t.Fatal("Start succeeded on a busy peer port")
	}
	l.Close()
	if want := "cannot listen for peers on " + addr + ": address already in use"; err.Error() != want {
		t.Errorf("error %q, want %q", err, want)
	}
	if _, err := os.Stat(cfg.DataDir); !os.IsNotExist(err) {
		t.Errorf("the failed start touched the data dir: %v", err)
	}
	m, err = Start(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Stop()
	waitLeader(t, m)
}

// TestStartDataDirInUse: a second member on the data dir of a running one
// fails with an error that names the dir, and the first one keeps serving.
func TestStartDataDirInUse(t *testing.T) {
	cfg := oneMember(t, filepath.Join(t.TempDir(), "data"))
	m, err := Start(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Stop()
	waitLeader(t, m)
	other := cfg
	other.Peers = []string{freePeerURL(t)}
	m2, err := Start(context.Background(), other)
	if err == nil {
		m2.Stop()
		t.Fatal("a second member started on the data dir of a running one")
	}
	if want := "data dir " + cfg.DataDir + " is in use by another process"; !strings.HasPrefix(err.Error(), want) {
		t.Errorf("error %q, want it to start with %q", err, want)
	}
	if !errors.Is(err, fileutil.ErrLocked) {
		t.Errorf("error %q does not wrap fileutil.ErrLocked", err)
	}
	if st, body := call(t, m, http.MethodPut, "/k", "v"); st != http.StatusNoContent {
		t.Fatalf("PUT /k on the first member: %d %s", st, body)
	}
}

// TestStopClosesConnectionsLeftInFlight: a member that stops while a
// client is still sending a request's body waits for it as long as a
// request may take, then closes that connection rather than leave it
// open until the process exits.
func TestStopClosesConnectionsLeftInFlight(t *testing.T) {
	cfg := oneMember(t, t.TempDir())
	cfg.RequestTimeout = 500 * time.Millisecond
	m, err := Start(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	waitLeader(t, m)
	conn, err := net.Dial("tcp", strings.TrimPrefix(m.ClientURL(), "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := io.WriteString(conn, "PUT /k HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n012"); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond) // the member reads the head and waits for the body
	m.Stop()
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, err = io.ReadAll(conn)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatal("the connection of a request in flight was still open 5 s after the member stopped")
	}
}
