package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"syscall"
	"testing"
	"time"
)

type timeoutError struct{}

func (timeoutError) Error() string   { return "i/o timeout" }
func (timeoutError) Timeout() bool   { return true }
func (timeoutError) Temporary() bool { return true }

func TestClassify(t *testing.T) {
	urlErr := func(err error) error { return &url.Error{Op: "Put", URL: "http://h:1/k", Err: err} }
	opErr := func(op string, errno syscall.Errno) error {
		return &net.OpError{Op: op, Net: "tcp", Err: os.NewSyscallError(op, errno)}
	}
	for _, tc := range []struct {
		name   string
		status int
		err    error
		want   string
	}{
		{"503", 503, nil, "503"},
		{"504", 504, nil, "504"},
		{"400", 400, nil, "400"},
		{"client timeout", 0, urlErr(timeoutError{}), ErrClassTimeout},
		{"context deadline", 0, urlErr(context.DeadlineExceeded), ErrClassTimeout},
		{"dial timeout", 0, urlErr(&net.OpError{Op: "dial", Err: timeoutError{}}), ErrClassTimeout},
		{"refused", 0, urlErr(opErr("dial", syscall.ECONNREFUSED)), ErrClassRefused},
		{"reset", 0, urlErr(opErr("read", syscall.ECONNRESET)), ErrClassReset},
		{"broken pipe", 0, urlErr(opErr("write", syscall.EPIPE)), ErrClassReset},
		{"server closed", 0, urlErr(io.EOF), ErrClassReset},
		{"short body", 0, io.ErrUnexpectedEOF, ErrClassReset},
		{"dns", 0, urlErr(&net.DNSError{Err: "no such host", Name: "x"}), ErrClassOther},
		{"other", 0, fmt.Errorf("wrapped: %w", errors.New("boom")), ErrClassOther},
	} {
		if got := classify(tc.status, tc.err); got != tc.want {
			t.Errorf("%s: classify(%d, %v) = %q, want %q", tc.name, tc.status, tc.err, got, tc.want)
		}
	}
}

// TestClassifyRealErrors checks the classes of the errors conn.roundTrip
// really returns.
func TestClassifyRealErrors(t *testing.T) {
	get := func(endpoint string, timeout time.Duration) error {
		t.Helper()
		c := newTestConn(t, endpoint, timeout)
		_, _, err := c.roundTrip(t.Context(), http.MethodGet, []byte("/k"), nil, nil)
		return err
	}
	for _, tc := range []struct {
		name    string
		handler http.HandlerFunc // nil: nothing listens
		timeout time.Duration
		want    string
	}{
		{"closed port", nil, time.Second, ErrClassRefused},
		// Should the client's 50ms timeout not fire, the answer comes after
		// 10s (a liveness bound) and is classified as no error.
		{"slow handler", func(w http.ResponseWriter, r *http.Request) {
			select {
			case <-time.After(10 * time.Second):
			case <-r.Context().Done():
			}
		}, 50 * time.Millisecond, ErrClassTimeout},
		{"hang-up in the body", func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Length", "10")
			w.Write([]byte("12345"))
			w.(http.Flusher).Flush()
			panic(http.ErrAbortHandler) // closes the connection
		}, time.Second, ErrClassReset},
	} {
		endpoint := closedURL(t)
		if tc.handler != nil {
			srv := httptest.NewUnstartedServer(tc.handler)
			srv.Config.ErrorLog = log.New(io.Discard, "", 0)
			srv.Start()
			t.Cleanup(srv.Close)
			endpoint = srv.URL
		}
		err := get(endpoint, tc.timeout)
		if got := classify(0, err); got != tc.want {
			t.Errorf("%s: %v classified %q, want %q", tc.name, err, got, tc.want)
		}
	}

	// A server that accepts and never answers: the client times out.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			conn, err := l.Accept()
			if err != nil {
				return
			}
			defer conn.Close()
		}
	}()
	err = get("http://"+l.Addr().String(), 50*time.Millisecond)
	if got := classify(0, err); got != ErrClassTimeout {
		t.Errorf("silent server: %v classified %q, want %q", err, got, ErrClassTimeout)
	}
}
