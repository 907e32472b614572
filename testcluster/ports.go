package testcluster

import "testing"

// FreePorts returns n distinct free TCP ports on 127.0.0.1 that no other
// cluster of this test process gets, for tests that start raftkv
// themselves (see freePorts).
func FreePorts(t testing.TB, n int) []int {
	t.Helper()
	return freePorts(t, n)
}
