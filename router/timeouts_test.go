package router

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/raftkv/raftkv/client"
	"github.com/raftkv/raftkv/shardmap"
	"go.uber.org/zap/zaptest"
)

// lowerTimeouts sets the router's transfer and watch write timeouts to d
// for one test.
func lowerTimeouts(t *testing.T, d time.Duration) {
	oldT, oldW := transferTimeout, watchWriteTimeout
	transferTimeout, watchWriteTimeout = d, d
	t.Cleanup(func() { transferTimeout, watchWriteTimeout = oldT, oldW })
}

// TestServerEndsStalledBody: a PUT whose body stops arriving is ended by
// the router's server within its transfer timeout, as a member's is,
// instead of holding its connection and goroutine for good.
func TestServerEndsStalledBody(t *testing.T) {
	lowerTimeouts(t, 300*time.Millisecond)
	g := newMember(t)
	cfg, _ := shardmap.Initial(16)
	cfg, err := cfg.Join(map[uint64][]string{1: {g.srv.URL}})
	if err != nil {
		t.Fatal(err)
	}
	c, err := client.New(client.Config{ConfigEndpoints: []string{configServer(t, cfg).URL}, RequestTimeout: time.Second, Logger: zaptest.NewLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	h, err := New(Config{Client: c, Logger: zaptest.NewLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(h)
	srv.Config = newServer(h, time.Second)
	srv.Start()
	t.Cleanup(srv.Close)

	conn, err := net.Dial("tcp", srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := io.WriteString(conn, "PUT /k HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n012"); err != nil {
		t.Fatal(err)
	}
	conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	switch {
	case err == nil && resp.StatusCode >= 400 && resp.StatusCode < 500:
	case errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF):
	default:
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			t.Fatal("a PUT whose body stalled was neither answered nor closed within 10 s")
		}
		t.Fatalf("stalled PUT: %v %v; want a 4xx or the connection closed", resp, err)
	}
	if g.lastRequest() != "" {
		t.Fatalf("the stalled PUT reached the group: %q", g.lastRequest())
	}
}

// TestWatchStreamEndsWhenClientStopsReading: a watch's stream whose
// client keeps its connection but stops reading ends once a write waits
// longer than the watch write timeout.
func TestWatchStreamEndsWhenClientStopsReading(t *testing.T) {
	lowerTimeouts(t, 300*time.Millisecond)
	ended := make(chan error, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s := startSSE(w)
		chunk := bytes.Repeat([]byte("x"), 64<<10)
		for {
			s.buf.WriteString(": ")
			s.buf.Write(chunk)
			s.buf.WriteString("\n\n")
			if err := s.flush(); err != nil {
				ended <- err
				return
			}
		}
	}))
	t.Cleanup(srv.Close)
	conn, err := net.Dial("tcp", srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := io.WriteString(conn, "GET /k?watch=true HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-ended:
		if !strings.Contains(err.Error(), "timeout") {
			t.Logf("the stream ended with %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("a watch stream whose client stopped reading was still writing after 20 s")
	}
}
