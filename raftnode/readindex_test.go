package raftnode

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"go.etcd.io/raft/v3/raftpb"
)

// TestForwardedReadsJoinLeaderRounds: a follower's ReadIndex request is
// answered from the leader's own rounds (an answer without a term, which
// raft's own answers always carry), and every index a read returns is at
// least the index of a write applied before the read began. Making the
// leader's Process hand MsgReadIndex to raft again makes it fail.
func TestForwardedReadsJoinLeaderRounds(t *testing.T) {
	c := newTestCluster(t, 3, fastConfig())
	c.put("first")
	lead := c.waitLeader()

	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
	)
	for _, m := range c.members {
		for g := range 3 {
			wg.Go(func() {
				for i := range 15 {
					before := c.put(fmt.Sprintf("m%d-g%d-%d", m.id, g, i))
					ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
					index, err := m.node.ReadIndex(ctx)
					cancel()
					switch {
					case err != nil:
						err = fmt.Errorf("member %d: read after index %d: %w", m.id, before, err)
					case index < before:
						err = fmt.Errorf("member %d: read index %d below the index %d applied before the read", m.id, index, before)
					}
					if err != nil {
						mu.Lock()
						errs = append(errs, err)
						mu.Unlock()
						return
					}
				}
			})
		}
	}
	wg.Wait()
	for _, err := range errs {
		t.Error(err)
	}

	if l := c.waitLeader(); l.id != lead.id {
		t.Skipf("the leader changed from %d to %d", lead.id, l.id)
	}
	asked := c.net.messages(func(m sentMsg) bool { return m.typ == raftpb.MsgReadIndex && m.to == lead.id })
	answers := c.net.messages(func(m sentMsg) bool { return m.typ == raftpb.MsgReadIndexResp && m.from == lead.id })
	if len(asked) == 0 || len(answers) == 0 {
		t.Fatalf("followers asked the leader %d times and got %d answers; want some", len(asked), len(answers))
	}
	for _, m := range answers {
		if m.term != 0 {
			t.Fatalf("the leader answered a follower's read at term %d, from raft's own round; want every one from the leader's rounds", m.term)
		}
	}
}
