package client

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/raftkv/raftkv/shardmap"
	"github.com/raftkv/raftkv/testcluster"
)

// TestClusterGroupGone: a Client whose cached config still gives a key to
// a group that has since left the config and stopped (none of its members
// answers, so none can say 421) must find the key's new group by asking
// the config group again, not try the dead group until its deadline.
func TestClusterGroupGone(t *testing.T) {
	t.Parallel()
	live, _ := startCluster(t, 1)
	dead := fmt.Sprintf("http://127.0.0.1:%d", testcluster.FreePorts(t, 1)[0]) // nothing listens
	cg := newConfigGroup(t, 32)
	cfg := cg.mustApply(t, func(c shardmap.Config) (shardmap.Config, error) {
		return c.Join(map[uint64][]string{1: {dead}, 2: {live.ClientURL(1)}})
	})
	key := ""
	for i := 0; key == ""; i++ {
		if k := fmt.Sprintf("k%d", i); cfg.OwnerOfKey(k) == 1 {
			key = k
		}
	}
	c := newTestClient(t, Config{ConfigEndpoints: []string{cg.srv.URL}, RequestTimeout: 10 * time.Second})
	ctx := context.Background()
	if _, err := c.Refresh(ctx, 0); err != nil {
		t.Fatal(err)
	}
	cg.mustApply(t, func(c shardmap.Config) (shardmap.Config, error) { return c.Leave([]uint64{1}) })
	if _, err := c.Put(ctx, key, []byte("v")); err != nil {
		t.Fatalf("put %s, whose group left and is gone: %v", key, err)
	}
	if v, err := c.Get(ctx, key); err != nil || string(v) != "v" {
		t.Fatalf("get %s: %q %v", key, v, err)
	}
}
