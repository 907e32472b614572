package main

import (
	"net"
	"net/url"
	"runtime"
	"strings"
)

// Members that share a machine share its CPUs (--gomaxprocs 0). Go gives
// each process as many threads running Go code as the machine has CPUs,
// and a process whose goroutines hand work to each other keeps its idle
// threads spinning for the next piece of work for a while before they
// sleep. Three members on one machine, as a Procfile starts them, then
// burn CPU spinning that the others need, and every message between them
// waits longer for a CPU. When every peer URL of --cluster is a loopback
// address, the members are all on this machine, and each one takes its
// share of the CPUs, rounded up (docs/benchmarks.md: with three members
// on two cores, one client's writes 1.54-1.66k/s before, 1.75-1.90k/s
// after, and 64 clients no worse).

// sharedProcs returns the GOMAXPROCS for a member of a cluster with these
// peer URLs on a machine where Go would use procs: procs divided among
// the members, rounded up, when all of them are on this machine by their
// loopback URLs; otherwise 0 (leave Go's default).
func sharedProcs(procs int, peers []string) int {
	if len(peers) < 2 {
		return 0
	}
	for _, p := range peers {
		if !isLoopbackURL(p) {
			return 0
		}
	}
	return max(1, (procs+len(peers)-1)/len(peers))
}

// isLoopbackURL reports whether the host of u is localhost or a loopback
// IP address.
func isLoopbackURL(u string) bool {
	parsed, err := url.Parse(u)
	if err != nil {
		return false
	}
	host := parsed.Hostname()
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// setProcs applies --gomaxprocs and returns the value set, or 0 when it
// left Go's default (GOMAXPROCS in the environment always wins).
func setProcs(flagValue int, peers []string, getenv func(string) string) int {
	if getenv("GOMAXPROCS") != "" {
		return 0
	}
	n := flagValue
	if n == 0 {
		n = sharedProcs(runtime.GOMAXPROCS(0), peers)
	}
	if n > 0 {
		runtime.GOMAXPROCS(n)
	}
	return n
}
