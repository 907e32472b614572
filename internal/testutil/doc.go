// Package testutil holds the helpers every test package of raftkv shares: FreePorts
// picks ports for servers a test starts, WaitFor polls a condition with a deadline, and
// Retry runs a scenario again when something outside the test's control kept an
// attempt from testing anything.
//
// It is a leaf: it imports only the standard library, so the internal tests of any
// package (kvstore's and raftnode's included, which testcluster's import of daemon
// keeps from importing testcluster) can use it. testcluster re-exports FreePorts and
// WaitFor for the end-to-end packages.
//
// Invariants:
//  1. No port is handed out twice in one test process, and every port is below the
//     kernel's ephemeral range, so no outgoing connection can take it between the
//     moment FreePorts returns and the moment the test listens on it.
//  2. WaitFor never sleeps more than MaxPollInterval between two checks, and fails only
//     once a check that ended past its deadline failed too, with that check's error.
//  3. Nothing here starts a goroutine.
package testutil
