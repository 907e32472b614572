//go:build !unix

package testutil

// lockPort has no machine-wide registry here: only this process's own
// record of its ports keeps them apart.
func lockPort(int) bool { return true }
