package client

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

	"github.com/raftkv/raftkv/backup"
)

// aBackup is a small backup file and its header.
func aBackup(t *testing.T, state []byte) ([]byte, backup.Header) {
	t.Helper()
	h := backup.Header{Version: backup.Version, Index: 9, Term: 2, MemberID: 1, Mode: backup.ModePlain, Buckets: 1}
	var buf bytes.Buffer
	w, err := backup.NewWriter(&buf, h)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(state); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes(), h
}

// backupServer answers GET /snapshot with each of its answers in turn
// (the last one over and over): a status, and for 200 a body, of which
// only the first cutAt bytes are sent before the connection is cut when
// cut is set.
type backupServer struct {
	srv     *httptest.Server
	mu      sync.Mutex
	queries []string
}

type backupAnswer struct {
	status int
	body   []byte
	cut    bool
	cutAt  int
}

func newBackupServer(t *testing.T, answers ...backupAnswer) *backupServer {
	s := &backupServer{}
	s.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		a := answers[min(len(s.queries), len(answers)-1)]
		s.queries = append(s.queries, r.URL.Path+"?"+r.URL.RawQuery)
		s.mu.Unlock()
		if a.status != http.StatusOK {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(a.status)
			io.WriteString(w, `{"error":"no","code":"unavailable"}`)
			return
		}
		w.Header().Set("Content-Type", "application/octet-stream")
		w.WriteHeader(http.StatusOK)
		if a.cut {
			w.Write(a.body[:a.cutAt])
			w.(http.Flusher).Flush()
			panic(http.ErrAbortHandler)
		}
		w.Write(a.body)
	}))
	t.Cleanup(s.srv.Close)
	return s
}

func (s *backupServer) requests() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.queries...)
}

// TestSnapshotSave: the backup reaches w whole and its header comes back;
// the read options become the query; a 503 moves to the next member.
func TestSnapshotSave(t *testing.T) {
	file, h := aBackup(t, bytes.Repeat([]byte("state "), 50000))
	down := newBackupServer(t, backupAnswer{status: 503})
	up := newBackupServer(t, backupAnswer{status: 200, body: file})
	c := newTestClient(t, Config{Endpoints: []string{down.srv.URL, up.srv.URL}})
	for _, tc := range []struct {
		opts  []ReadOption
		query string
	}{
		{nil, "/snapshot?"},
		{[]ReadOption{WithStale()}, "/snapshot?level=stale"},
		{[]ReadOption{WithMinIndex(5)}, "/snapshot?min_index=5"},
	} {
		var out bytes.Buffer
		info, err := c.SnapshotSave(context.Background(), &out, tc.opts...)
		if err != nil {
			t.Fatalf("SnapshotSave: %v", err)
		}
		if !bytes.Equal(out.Bytes(), file) || info.Header != h || info.Size != int64(len(file)) || info.Endpoint != up.srv.URL {
			t.Fatalf("SnapshotSave wrote %d bytes, info %+v", out.Len(), info)
		}
		reqs := up.requests()
		if got := reqs[len(reqs)-1]; got != tc.query {
			t.Errorf("request %q, want %q", got, tc.query)
		}
	}
	if n := len(down.requests()); n != 1 {
		t.Errorf("%d requests to the member that answered 503; want 1, then the next member", n)
	}
}

// TestSnapshotSaveRefusesBadStreams: a stream cut before its end, a
// corrupted one, a sharded Client, and a writer that fails are errors;
// a stream cut before anything reached w is tried again.
func TestSnapshotSaveRefusesBadStreams(t *testing.T) {
	file, _ := aBackup(t, bytes.Repeat([]byte("x"), 200000))
	corrupted := bytes.Clone(file)
	corrupted[len(corrupted)/2] ^= 1

	cut := newBackupServer(t, backupAnswer{status: 200, body: file, cut: true, cutAt: len(file) / 2})
	c := newTestClient(t, Config{Endpoints: []string{cut.srv.URL}})
	var out bytes.Buffer
	if _, err := c.SnapshotSave(context.Background(), &out, WithStale()); err == nil || !strings.Contains(err.Error(), "broke off") {
		t.Errorf("a stream cut in the middle: %v", err)
	}
	if n := len(cut.requests()); n != 1 {
		t.Errorf("a stream cut after bytes reached w was tried %d times; want once", n)
	}

	bad := newBackupServer(t, backupAnswer{status: 200, body: corrupted})
	c = newTestClient(t, Config{Endpoints: []string{bad.srv.URL}})
	if _, err := c.SnapshotSave(context.Background(), io.Discard); !errors.Is(err, backup.ErrChecksum) && !errors.Is(err, backup.ErrCorrupt) {
		t.Errorf("a corrupted backup: %v", err)
	}

	retry := newBackupServer(t, backupAnswer{status: 200, body: file, cut: true}, backupAnswer{status: 200, body: file})
	c = newTestClient(t, Config{Endpoints: []string{retry.srv.URL}})
	out.Reset()
	if _, err := c.SnapshotSave(context.Background(), &out); err != nil || !bytes.Equal(out.Bytes(), file) {
		t.Errorf("a stream cut before its first byte, then a whole one: %v, %d bytes", err, out.Len())
	}

	sharded := newTestClient(t, Config{ConfigEndpoints: []string{closedURL(t)}})
	if _, err := sharded.SnapshotSave(context.Background(), io.Discard); !errors.Is(err, ErrBadRequest) {
		t.Errorf("a sharded Client: %v, want ErrBadRequest", err)
	}

	whole := newBackupServer(t, backupAnswer{status: 200, body: file})
	c = newTestClient(t, Config{Endpoints: []string{whole.srv.URL}})
	if _, err := c.SnapshotSave(context.Background(), failingWriter{}); err == nil || !strings.Contains(err.Error(), "disk full") {
		t.Errorf("a failing writer: %v", err)
	}

	disabled := newBackupServer(t, backupAnswer{status: 404})
	c = newTestClient(t, Config{Endpoints: []string{disabled.srv.URL}, RequestTimeout: time.Second})
	if _, err := c.SnapshotSave(context.Background(), io.Discard); err == nil || len(disabled.requests()) != 1 {
		t.Errorf("a 404: %v after %d requests; want an error after one", err, len(disabled.requests()))
	}
}

type failingWriter struct{}

func (failingWriter) Write([]byte) (int, error) { return 0, errors.New("disk full") }
