package robustness_test

import "testing"

// The short tier: one history per fault on a 3-node cluster (one node for
// the single-node fault), run by every `go test ./...`. -short skips them.

func runShort(t *testing.T, f fault) {
	startsProcesses(t)
	runHistory(t, shortTier, f, 1)
}

func TestKillFollower(t *testing.T)             { runShort(t, killFollower) }
func TestKillLeader(t *testing.T)               { runShort(t, killLeader) }
func TestKillAll(t *testing.T)                  { runShort(t, killAll) }
func TestPauseLeader(t *testing.T)              { runShort(t, pauseLeader) }
func TestIsolateLeader(t *testing.T)            { runShort(t, isolateLeader) }
func TestIsolateFollowerSnapshot(t *testing.T)  { runShort(t, isolateFollowerSnapshot) }
func TestReplaceMember(t *testing.T)            { runShort(t, replaceMember) }
func TestReplaceThenIsolateLeader(t *testing.T) { runShort(t, replaceThenIsolateLeader) }
func TestReplaceTargetedMember(t *testing.T)    { runShort(t, replaceTargetedMember) }
func TestRandomLoss(t *testing.T)               { runShort(t, randomLoss) }
func TestSingleNodeKills(t *testing.T)          { runShort(t, singleNodeKills) }

// Over TLS (both ports, certificates required): the faults that make
// members reconnect, by a cut link (the proxies pass TLS through end to
// end) and by a restart.
func TestIsolateLeaderTLS(t *testing.T) { runShort(t, overTLS(isolateLeader)) }
func TestKillLeaderTLS(t *testing.T)    { runShort(t, overTLS(killLeader)) }

// overTLS is f with the cluster and the workload's client on TLS.
func overTLS(f fault) fault {
	f.name += "-tls"
	f.tls = true
	return f
}
