package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
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

// TestClassifyRealErrors checks the classes of errors net/http really returns.
func TestClassifyRealErrors(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close() // nothing listens there now
	c := &http.Client{Timeout: 2 * time.Second}
	_, err = c.Get("http://" + addr + "/k")
	if got := classify(0, err); got != ErrClassRefused {
		t.Errorf("closed port: %v classified %q, want %q", err, got, ErrClassRefused)
	}

	// A server that accepts and never answers: the client times out.
	l, err = net.Listen("tcp", "127.0.0.1:0")
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
	c.Timeout = 50 * time.Millisecond
	_, err = c.Get("http://" + l.Addr().String() + "/k")
	if got := classify(0, err); got != ErrClassTimeout {
		t.Errorf("silent server: %v classified %q, want %q", err, got, ErrClassTimeout)
	}
}
