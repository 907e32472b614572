package testcluster

import (
	"testing"
	"time"

	"github.com/raftkv/raftkv/internal/testutil"
)

// FreePorts returns n distinct free TCP ports on 127.0.0.1 that no other
// cluster of this test process gets, for tests that start raftkv
// themselves (see testutil.FreePorts).
func FreePorts(t testing.TB, n int) []int {
	t.Helper()
	return testutil.FreePorts(t, n)
}

// WaitFor polls cond until it returns nil, and fails t with cond's last
// error if that does not happen within timeout (see testutil.WaitFor).
func WaitFor(t testing.TB, timeout time.Duration, what string, cond func() error) {
	t.Helper()
	testutil.WaitFor(t, timeout, what, cond)
}
