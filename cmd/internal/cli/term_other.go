//go:build !(linux || darwin || dragonfly || freebsd || netbsd || openbsd)

package cli

import "os"

// IsTerminal reports false: on this platform raftkv's commands do not tell
// a terminal apart.
func IsTerminal(*os.File) bool { return false }
