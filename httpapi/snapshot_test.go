package httpapi

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
)

// fakeSnapshotter captures a fixed state: body, written in pieces of
// piece bytes. It records the options of each call; err, when set, is
// its answer; failAfter, when positive, makes the write fail after that
// many bytes; gate, when set, is received from before each piece after
// the first.
type fakeSnapshotter struct {
	body      []byte
	piece     int
	err       error
	failAfter int
	gate      chan struct{}

	mu   sync.Mutex
	opts []ReadOptions
}

func (f *fakeSnapshotter) Snapshot(ctx context.Context, opts ReadOptions) (SnapshotInfo, func(io.Writer) error, error) {
	f.mu.Lock()
	f.opts = append(f.opts, opts)
	f.mu.Unlock()
	if f.err != nil {
		return SnapshotInfo{}, nil, f.err
	}
	return SnapshotInfo{Index: 42, Term: 3}, func(w io.Writer) error {
		for off := 0; off < len(f.body); off += f.piece {
			if off > 0 && f.gate != nil {
				<-f.gate
			}
			if f.failAfter > 0 && off >= f.failAfter {
				return errors.New("disk read error")
			}
			if _, err := w.Write(f.body[off:min(off+f.piece, len(f.body))]); err != nil {
				return err
			}
		}
		return nil
	}, nil
}

func (f *fakeSnapshotter) calls() []ReadOptions {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]ReadOptions(nil), f.opts...)
}

// TestSnapshotDisabled: without Config.Snapshot, /snapshot is 404 to
// every method and reaches no key; the key "snapshot" stays reachable
// as /key/snapshot.
func TestSnapshotDisabled(t *testing.T) {
	e := newEnv(t, map[string]string{"snapshot": "a key"}, nil)
	for _, method := range []string{"GET", "HEAD", "PUT", "POST", "DELETE"} {
		rec := e.do(t, method, "/snapshot", "x")
		if rec.Code != http.StatusNotFound || (method != "HEAD" && !strings.Contains(rec.Body.String(), "snapshot download is not enabled")) {
			t.Errorf("%s /snapshot: %d %q, want 404 saying it is not enabled", method, rec.Code, rec.Body.String())
		}
	}
	if got := e.store.snapshot()["snapshot"]; got != "a key" {
		t.Errorf("key snapshot is %q after the requests, want it untouched", got)
	}
	if rec := e.do(t, "GET", "/key/snapshot", ""); rec.Code != 200 || rec.Body.String() != `{"snapshot":"a key"}` {
		t.Errorf("GET /key/snapshot: %d %q", rec.Code, rec.Body.String())
	}
	if rec := e.do(t, "PUT", "/key/snapshot", "new"); rec.Code != 204 {
		t.Errorf("PUT /key/snapshot: %d", rec.Code)
	}
}

// TestSnapshotServed: GET /snapshot answers 200 with the backup as an
// octet stream and the index and term in headers; the read level and
// min_index reach the Snapshotter; other methods are 405; a bad level is
// 400 before any capture; the Snapshotter's errors map as reads' do.
func TestSnapshotServed(t *testing.T) {
	body := bytes.Repeat([]byte("backup bytes "), 10000)
	snap := &fakeSnapshotter{body: body, piece: 4096}
	core, logs := observer.New(zapcore.InfoLevel)
	e := newEnv(t, nil, func(c *Config) {
		c.Snapshot = snap
		c.Logger = zap.New(core)
	})
	rec := e.do(t, "GET", "/snapshot", "")
	if rec.Code != 200 || !bytes.Equal(rec.Body.Bytes(), body) {
		t.Fatalf("GET /snapshot: %d, %d bytes (want 200, %d)", rec.Code, rec.Body.Len(), len(body))
	}
	for k, want := range map[string]string{
		"Content-Type": "application/octet-stream", "X-Raft-Index": "42", "X-Raft-Term": "3",
		"Content-Disposition": `attachment; filename="raftkv-42.backup"`, "Content-Length": "",
	} {
		if got := rec.Header().Get(k); got != want {
			t.Errorf("header %s: %q, want %q", k, got, want)
		}
	}
	if logs.FilterMessage("serving an admin request").Len() != 1 || logs.FilterMessage("sent a backup").Len() != 1 {
		t.Errorf("admin request and backup not logged: %v", logs.All())
	}

	for _, tc := range []struct {
		target string
		want   ReadOptions
	}{
		{"/snapshot?level=stale", ReadOptions{Stale: true}},
		{"/snapshot?level=consistent", ReadOptions{}},
		{"/snapshot?min_index=7", ReadOptions{Stale: true, MinIndex: 7}},
	} {
		before := len(snap.calls())
		if rec := e.do(t, "GET", tc.target, ""); rec.Code != 200 {
			t.Errorf("GET %s: %d", tc.target, rec.Code)
		}
		if calls := snap.calls(); len(calls) != before+1 || calls[before] != tc.want {
			t.Errorf("GET %s: Snapshotter called with %v, want %+v", tc.target, calls[before:], tc.want)
		}
	}

	before := len(snap.calls())
	for _, tc := range []struct {
		method, target string
		code           int
	}{
		{"POST", "/snapshot", 405}, {"PUT", "/snapshot", 405}, {"HEAD", "/snapshot", 405}, {"DELETE", "/snapshot", 405},
		{"GET", "/snapshot?level=bogus", 400}, {"GET", "/snapshot?min_index=x", 400},
	} {
		rec := e.do(t, tc.method, tc.target, "")
		if rec.Code != tc.code {
			t.Errorf("%s %s: %d, want %d", tc.method, tc.target, rec.Code, tc.code)
		}
		if tc.code == 405 && rec.Header().Get("Allow") != "GET" {
			t.Errorf("%s %s: Allow %q", tc.method, tc.target, rec.Header().Get("Allow"))
		}
	}
	if n := len(snap.calls()); n != before {
		t.Errorf("refused requests reached the Snapshotter %d times", n-before)
	}

	for _, tc := range []struct {
		err  error
		code int
		name string
	}{
		{testErr("unavailable"), 503, "unavailable"},
		{testErr("timeout"), 504, "timeout"},
		{context.DeadlineExceeded, 504, "timeout"},
	} {
		snap.err = tc.err
		rec := e.do(t, "GET", "/snapshot", "")
		if rec.Code != tc.code || !strings.Contains(rec.Header().Get("Content-Type"), "text/plain") {
			t.Errorf("Snapshotter error %v: %d %q, want %d", tc.err, rec.Code, rec.Header().Get("Content-Type"), tc.code)
		}
	}
}

// TestSnapshotStreams: the backup reaches the client while it is being
// written, through a real server: the client reads the first piece
// before the Snapshotter may write the second, so nothing waits for the
// whole state. A failure in the middle cuts the response: the client gets
// an error, never a body that ends as if whole.
func TestSnapshotStreams(t *testing.T) {
	const piece = 256 << 10
	body := make([]byte, 8*piece)
	for i := range body {
		body[i] = byte(i * 7)
	}
	snap := &fakeSnapshotter{body: body, piece: piece, gate: make(chan struct{})}
	e := newEnv(t, nil, func(c *Config) { c.Snapshot = snap })
	srv := httptest.NewServer(e.h)
	defer srv.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", srv.URL+"/snapshot", nil)
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 || resp.ContentLength != -1 {
		t.Fatalf("status %d, content length %d; want 200 and none", resp.StatusCode, resp.ContentLength)
	}
	first := make([]byte, piece)
	if _, err := io.ReadFull(resp.Body, first); err != nil {
		t.Fatalf("the first piece did not arrive before the second was written: %v", err)
	}
	go func() {
		for range len(body)/piece - 1 {
			snap.gate <- struct{}{}
		}
	}()
	rest, err := io.ReadAll(resp.Body)
	if err != nil || !bytes.Equal(append(first, rest...), body) {
		t.Fatalf("read %d bytes, %v; want the %d written", piece+len(rest), err, len(body))
	}

	broken := &fakeSnapshotter{body: body, piece: piece, failAfter: 3 * piece}
	e = newEnv(t, nil, func(c *Config) { c.Snapshot = broken })
	srv2 := httptest.NewServer(e.h)
	defer srv2.Close()
	resp, err = srv2.Client().Get(srv2.URL + "/snapshot")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	got, err := io.ReadAll(resp.Body)
	if err == nil {
		t.Fatalf("a stream cut after %d bytes read as whole (%d bytes)", 3*piece, len(got))
	}
	if len(got) > 3*piece {
		t.Errorf("read %d bytes of a stream cut after %d", len(got), 3*piece)
	}
}

// TestSnapshotRouteNotMountable: another package cannot mount a route
// over /snapshot.
func TestSnapshotRouteNotMountable(t *testing.T) {
	_, err := New(Config{Store: newFakeStore(nil), Cluster: newFakeCluster(),
		Routes: map[string]RouteFunc{"/snapshot": func(http.ResponseWriter, *http.Request) error { return nil }}})
	if !errors.Is(err, ErrInvalidConfig) {
		t.Errorf("New with a route /snapshot: %v, want ErrInvalidConfig", err)
	}
}
