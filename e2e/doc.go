// Package e2e holds the end-to-end tests of raftkv: each test starts a real cluster with
// package testcluster and drives it over HTTP only, the way a user with curl would.
// Tests of the HTTP API's behaviour, to which a process adds nothing, run their members
// in process (real WAL, snapshot files, HTTP and rafthttp, no fork); tests of crashes,
// kill -9, signals, exit codes and flags run raftkv processes, and are skipped under
// -short.
//
// The suite is sequential by default because every test runs three or four daemons and
// the CI machine has two cores; the load test in particular must run alone.
package e2e
