// Package e2e holds the end-to-end tests of raftkv: each test starts a real cluster of
// raftkv processes with package testcluster and drives it over HTTP only, the way a user
// with curl would. The tests are skipped under -short.
//
// The suite is sequential by default because every test runs three or four daemons and
// the CI machine has two cores; the load test in particular must run alone.
package e2e
