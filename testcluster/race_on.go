//go:build race

package testcluster

// raceEnabled reports whether the test binary was built with -race; the daemon is then
// built with -race too.
const raceEnabled = true
