package testutil

import (
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// MaxPollInterval is the longest pause WaitFor makes between two checks. It starts at
// a millisecond and doubles up to this, so a condition that holds soon is seen soon, and
// a long wait polls a process over HTTP no more than 40 times a second.
const MaxPollInterval = 25 * time.Millisecond

// handedOut records every port this process has handed out, so two servers or clusters
// in one test process never get the same port even if the kernel offers it twice.
var handedOut struct {
	sync.Mutex
	ports map[int]bool
}

// FreePorts returns n distinct free TCP ports on 127.0.0.1, chosen at random below the
// kernel's ephemeral range, that no other caller in this test process gets, nor any
// other test process on the machine while this one runs (see lockPort). A port the
// kernel hands out for "127.0.0.1:0" is free only until the listener closes: before a
// server binds it, any outgoing connection (a client's, a proxy's) may take it as its
// local port, and the server then fails with "address already in use". Ports below the
// ephemeral range are never taken that way. A port is also what a test wants for "an
// address nothing listens on".
func FreePorts(t testing.TB, n int) []int {
	t.Helper()
	handedOut.Lock()
	defer handedOut.Unlock()
	if handedOut.ports == nil {
		handedOut.ports = make(map[int]bool)
	}
	lo, hi := ListenPortRange()
	var ports []int
	for tries := 0; len(ports) < n; tries++ {
		if tries > 100*n {
			t.Fatalf("testutil: no free port in %d-%d after %d tries", lo, hi, tries)
		}
		p := lo + rand.IntN(hi-lo)
		if handedOut.ports[p] {
			continue
		}
		l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(p)))
		if err != nil {
			continue // in use
		}
		l.Close()
		if !lockPort(p) {
			continue // another test process handed it out
		}
		handedOut.ports[p] = true
		ports = append(ports, p)
	}
	return ports
}

// ListenPortRange is where FreePorts picks ports, lo inclusive, hi exclusive: from
// 10000 up to the start of the ephemeral range (/proc/sys/net/ipv4/ip_local_port_range,
// 32768 on Linux by default).
func ListenPortRange() (lo, hi int) {
	lo, hi = 10000, 32768
	if b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range"); err == nil {
		if f := strings.Fields(string(b)); len(f) == 2 {
			if start, err := strconv.Atoi(f[0]); err == nil && start > lo+1000 {
				hi = start
			}
		}
	}
	return lo, hi
}

// WaitFor polls cond until it returns nil, and fails t with cond's last error if that
// does not happen within timeout. The timeout is a liveness deadline: a generous bound
// on something that must happen, never a claim about how fast it happens. cond runs on
// the calling goroutine, so it may call t.Fatal itself for an outcome that waiting
// cannot change.
func WaitFor(t testing.TB, timeout time.Duration, what string, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	pause := time.Millisecond
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s: %v", timeout, what, err)
		}
		time.Sleep(pause)
		pause = min(2*pause, MaxPollInterval)
	}
}

// Retry runs scenario until it returns nil, at most attempts times, and fails t with the
// last error if every attempt returned one. A scenario returns an error only when
// something outside the test's control (a leader change on a loaded machine, say) cut
// the attempt short, so that it proved nothing; it fails t itself, as usual, for what it
// tests. Each attempt should set up its own state (a new cluster) and tear it down.
func Retry(t testing.TB, attempts int, what string, scenario func(attempt int) error) {
	t.Helper()
	var err error
	for attempt := 1; attempt <= attempts; attempt++ {
		if err = scenario(attempt); err == nil {
			return
		}
		t.Logf("%s: attempt %d of %d cut short: %v", what, attempt, attempts, err)
	}
	t.Fatalf("%s: all %d attempts cut short; the last: %v", what, attempts, err)
}
