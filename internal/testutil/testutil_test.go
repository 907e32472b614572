package testutil

import (
	"errors"
	"fmt"
	"net"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"
)

// recorder is a testing.TB whose Fatalf ends the goroutine as t.Fatalf does, and
// records the message instead of failing the test.
type recorder struct {
	testing.TB // nil: any other method panics
	fatal      string
	logs       []string
}

func (r *recorder) Helper() {}

func (r *recorder) Logf(format string, args ...any) {
	r.logs = append(r.logs, fmt.Sprintf(format, args...))
}

func (r *recorder) Fatalf(format string, args ...any) {
	r.fatal = fmt.Sprintf(format, args...)
	runtime.Goexit()
}

// run calls f with a recorder on a goroutine of its own, as the testing package does.
func run(f func(t testing.TB)) *recorder {
	r := &recorder{}
	done := make(chan struct{})
	go func() {
		defer close(done)
		f(r)
	}()
	<-done
	return r
}

func TestFreePortsDistinct(t *testing.T) {
	seen := make(map[int]bool)
	lo, hi := ListenPortRange()
	for range 5 {
		for _, p := range FreePorts(t, 8) {
			if p < lo || p >= hi || seen[p] {
				t.Fatalf("port %d handed out twice or outside %d-%d, below the ephemeral ports", p, lo, hi)
			}
			seen[p] = true
		}
	}
	// Each is free: a server can listen on it.
	for p := range seen {
		l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(p)))
		if err != nil {
			t.Fatalf("port %d: %v", p, err)
		}
		l.Close()
	}
}

func TestWaitFor(t *testing.T) {
	calls := 0
	r := run(func(t testing.TB) {
		WaitFor(t, time.Minute, "the third call", func() error {
			if calls++; calls < 3 {
				return fmt.Errorf("call %d", calls)
			}
			return nil
		})
	})
	if r.fatal != "" || calls != 3 {
		t.Errorf("condition true on call 3: %d calls, failure %q; want 3 calls and none", calls, r.fatal)
	}

	calls = 0
	r = run(func(t testing.TB) {
		WaitFor(t, 50*time.Millisecond, "something that never happens", func() error {
			calls++
			return fmt.Errorf("call %d", calls)
		})
	})
	want := fmt.Sprintf("timed out after 50ms waiting for something that never happens: call %d", calls)
	if r.fatal != want || calls < 2 {
		t.Errorf("condition never true: %d calls, failure %q; want several calls and %q", calls, r.fatal, want)
	}
}

func TestRetry(t *testing.T) {
	var attempts []int
	r := run(func(t testing.TB) {
		Retry(t, 3, "the scenario", func(attempt int) error {
			attempts = append(attempts, attempt)
			if attempt < 2 {
				return errors.New("leader changed")
			}
			return nil
		})
	})
	if r.fatal != "" || fmt.Sprint(attempts) != "[1 2]" || len(r.logs) != 1 || !strings.Contains(r.logs[0], "attempt 1 of 3 cut short: leader changed") {
		t.Errorf("second attempt passes: attempts %v, logs %q, failure %q; want [1 2], one log, none", attempts, r.logs, r.fatal)
	}

	attempts = nil
	r = run(func(t testing.TB) {
		Retry(t, 3, "the scenario", func(attempt int) error {
			attempts = append(attempts, attempt)
			return fmt.Errorf("leader changed in attempt %d", attempt)
		})
	})
	want := "the scenario: all 3 attempts cut short; the last: leader changed in attempt 3"
	if r.fatal != want || fmt.Sprint(attempts) != "[1 2 3]" {
		t.Errorf("every attempt cut short: attempts %v, failure %q; want [1 2 3] and %q", attempts, r.fatal, want)
	}
}
