package main

import (
	"os"
	"strings"
	"syscall"
)

// Go's runtime monitor (sysmon) sleeps while every processor (P) of the
// process is idle, and the next system call wakes it and starts it over
// at 20 µs ticks, at which it takes the P away from any system call that
// lasts longer than a tick (such as the WAL's fdatasync) and hands it to
// another thread. A member under load goes idle and busy thousands of
// times a second, so the monitor wakes thousands of times a second, and
// most syncs move the member's only P between threads and back. With
// the runtime's schedtrace setting on, the monitor never sleeps that
// way: it backs off to 10 ms ticks while it finds nothing to do, leaves
// short system calls alone, and still takes a P from a call that lasts
// a tick or more. docs/benchmarks.md ("The runtime monitor") has the
// measurements: about a third less member CPU per write and a faster
// single client.
//
// The setting is only read at start, from GODEBUG, and //go:debug lines
// cannot set it, so quietMonitor starts this program again (the same
// process, by execve) with it added. The period is the longest the
// runtime takes (about 24.8 days): a member prints the runtime's one-line
// scheduler summary that often on stderr, and on a crash. GODEBUG that
// names schedtrace already, such as GODEBUG=schedtrace=0 to keep Go's
// default, is left alone.
const monitorSetting = "schedtrace=2147483647"

// monitorEnv returns the environment with monitorSetting added to
// GODEBUG, or nil when GODEBUG names schedtrace already.
func monitorEnv(environ []string) []string {
	out := make([]string, 0, len(environ)+1)
	found := false
	for _, kv := range environ {
		v, ok := strings.CutPrefix(kv, "GODEBUG=")
		if !ok {
			out = append(out, kv)
			continue
		}
		for field := range strings.SplitSeq(v, ",") {
			if strings.HasPrefix(field, "schedtrace=") {
				return nil
			}
		}
		found = true
		if v == "" {
			kv = "GODEBUG=" + monitorSetting
		} else {
			kv = "GODEBUG=" + v + "," + monitorSetting
		}
		out = append(out, kv)
	}
	if !found {
		out = append(out, "GODEBUG="+monitorSetting)
	}
	return out
}

// quietMonitor starts this program again with monitorSetting, unless
// GODEBUG names schedtrace already. It returns only when it did not (or
// could not: then the program runs with Go's default).
//
// It runs before the program catches SIGINT and SIGTERM: a signal caught
// here would be lost by the new program, which would then run on.
// Until the new program's main catches them (as until any Go program's
// does), they end the process at once, before it has touched anything.
func quietMonitor() {
	env := monitorEnv(os.Environ())
	if env == nil {
		return
	}
	exe, err := os.Executable()
	if err != nil {
		return
	}
	_ = syscall.Exec(exe, os.Args, env)
}
