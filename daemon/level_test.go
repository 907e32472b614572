package daemon

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/raftkv/raftkv/httpapi"
	"github.com/raftkv/raftkv/internal/testutil"
	"github.com/raftkv/raftkv/kvstore"
	"github.com/raftkv/raftkv/raftnode"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"
)

func TestDecideLevel(t *testing.T) {
	ok := func(level, cluster uint32) memberLevel { return memberLevel{ok: true, level: level, cluster: cluster} }
	down := memberLevel{}
	for _, tc := range []struct {
		name    string
		cur     uint32
		logged  bool
		members []memberLevel
		want    uint32
	}{
		{"every member at the level", 1, true, []memberLevel{ok(1, 1), ok(1, 1), ok(1, 1)}, 0},
		{"all upgraded", 0, true, []memberLevel{ok(1, 0), ok(1, 0), ok(1, 0)}, 1},
		{"up to the lowest", 1, true, []memberLevel{ok(3, 1), ok(2, 1), ok(3, 1)}, 2},
		{"one older binary", 0, true, []memberLevel{ok(1, 0), ok(0, 0), ok(1, 0)}, 0},
		{"one member not answering", 0, true, []memberLevel{ok(1, 0), down, ok(1, 0)}, 0},
		{"never down", 2, true, []memberLevel{ok(1, 2), ok(2, 2)}, 0},
		{"a new cluster's level is logged", 1, false, []memberLevel{ok(1, 1), down, ok(1, 1)}, 1},
		{"nothing to log at level 0", 0, false, []memberLevel{ok(0, 0), down}, 0},
		{"a member behind is told again", 1, true, []memberLevel{ok(1, 1), ok(1, 0), down}, 1},
		{"an older binary is not", 1, true, []memberLevel{ok(1, 1), ok(0, 0), ok(1, 1)}, 0},
		{"no members", 1, true, nil, 0},
	} {
		if got := decideLevel(tc.cur, tc.logged, tc.members); got != tc.want {
			t.Errorf("%s: decideLevel(%d, %v, %+v) = %d, want %d", tc.name, tc.cur, tc.logged, tc.members, got, tc.want)
		}
	}
}

func TestBlockingMember(t *testing.T) {
	ok := func(level uint32) memberLevel { return memberLevel{ok: true, level: level} }
	down := func(id uint64) memberLevel { return memberLevel{id: id} }
	for _, tc := range []struct {
		name    string
		cur     uint32
		members []memberLevel
		want    uint64 // 0: none
	}{
		{"waiting for two members", 0, []memberLevel{ok(1), down(2), down(3)}, 2},
		{"all answered", 0, []memberLevel{ok(1), ok(1)}, 0},
		{"an older binary answered", 0, []memberLevel{ok(1), ok(0), down(3)}, 0},
		{"nothing above the level", 1, []memberLevel{ok(1), down(2)}, 0},
	} {
		m, found := blockingMember(tc.cur, tc.members)
		if found != (tc.want != 0) || m.id != tc.want {
			t.Errorf("%s: blockingMember = %+v, %v; want member %d", tc.name, m, found, tc.want)
		}
	}
}

// TestAskLevel: the leader reads a member's levels from its /status, 0
// from a binary before levels, and no answer from anything else.
func TestAskLevel(t *testing.T) {
	for _, tc := range []struct {
		name   string
		status int
		body   string
		want   memberLevel
	}{
		{"this binary", 200, `{"id":2,"clusterLevel":1,"build":{"version":"v1","go":"go1.26","level":1}}`, memberLevel{id: 2, ok: true, level: 1, cluster: 1}},
		{"before levels", 200, `{"id":2,"leader":1,"build":{"version":"v0","go":"go1.26"}}`, memberLevel{id: 2, ok: true}},
		{"before builds", 200, `{"id":2,"leader":1}`, memberLevel{id: 2, ok: true}},
		{"another member", 200, `{"id":3,"clusterLevel":1,"build":{"level":1}}`, memberLevel{id: 2}},
		{"an error", 503, `{"error":"stopping"}`, memberLevel{id: 2}},
		{"not JSON", 200, `ok`, memberLevel{id: 2}},
	} {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path != "/status" {
				http.NotFound(w, r)
				return
			}
			w.WriteHeader(tc.status)
			w.Write([]byte(tc.body))
		}))
		m := &Member{}
		got := m.askLevel(context.Background(), raftnode.Member{ID: 2, ClientURL: srv.URL + "/"})
		srv.Close()
		if got.ok != tc.want.ok || got.level != tc.want.level || got.cluster != tc.want.cluster || (got.err == nil) != tc.want.ok {
			t.Errorf("%s: askLevel = %+v, want %+v", tc.name, got, tc.want)
		}
	}
	if got := (&Member{}).askLevel(context.Background(), raftnode.Member{ID: 2}); got.ok || got.err == nil {
		t.Errorf("a member with no client URL: %+v, want no answer", got)
	}
}

type fixedLevel uint32

func (l fixedLevel) ClusterLevel() uint32 { return uint32(l) }

// TestLevelGate: a store refuses TTLs and transactions below level 1 with
// an error the HTTP layer answers 503 cluster_level, before touching the
// store (which is nil here).
func TestLevelGate(t *testing.T) {
	s := store{levels: fixedLevel(0)}
	_, err := s.Write(context.Background(), []httpapi.Op{{Key: "a", Value: []byte("1")}, {Key: "b", Value: []byte("2"), TTL: 30e9}}, httpapi.WriteOptions{})
	var le *levelError
	if !errors.As(err, &le) || le.need != 1 || le.cluster != 0 || !le.Unavailable() || le.Code() != "cluster_level" {
		t.Fatalf("a TTL write at level 0: %v", err)
	}
	if !strings.Contains(le.HumanMessage(), "TTLs need cluster level 1 and this group is at level 0") {
		t.Errorf("message: %s", le.HumanMessage())
	}
	if _, err := s.Txn(context.Background(), httpapi.Txn{}, httpapi.WriteOptions{}); !errors.As(err, &le) {
		t.Fatalf("a transaction at level 0: %v", err)
	}
	if err := needLevel(fixedLevel(1), levelDataModel, "TTLs"); err != nil {
		t.Errorf("at level 1: %v", err)
	}
	if err := needLevel(nil, levelDataModel, "TTLs"); err != nil {
		t.Errorf("without levels: %v", err)
	}
}

// TestLevelGateWaitsForTheReplay: a member that restarted has not applied
// its group's level until it has replayed its log up to the entry that
// raised it (a level above the one it started the cluster at). A
// transaction it takes meanwhile waits for that (a ReadIndex) instead of
// being refused with "upgrade every member". Here the member founded its
// cluster at level 0, and the level entry follows some 20 MB of writes,
// which the restarted member replays after its node started.
func TestLevelGateWaitsForTheReplay(t *testing.T) {
	dir := t.TempDir()
	peer := fmt.Sprintf("http://127.0.0.1:%d", testutil.FreePorts(t, 1)[0])
	open := func(level uint32) (*raftnode.Node, *kvstore.Store) {
		t.Helper()
		lg := zaptest.NewLogger(t, zaptest.Level(zap.InfoLevel))
		node, err := raftnode.New(raftnode.Config{ID: 1, Peers: []string{peer}, DataDir: dir, Level: level,
			TickInterval: 20 * time.Millisecond, Logger: lg, Registerer: prometheus.NewRegistry()})
		if err != nil {
			t.Fatal(err)
		}
		kv, err := kvstore.New(kvstore.Config{Logger: lg, Registerer: prometheus.NewRegistry()}, node)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { kv.Stop(); node.Stop(); <-kv.Done() })
		if err := node.Start(kv.Snapshot); err != nil {
			t.Fatal(err)
		}
		return node, kv
	}
	stop := func(node *raftnode.Node, kv *kvstore.Store) {
		kv.Stop()
		node.Stop()
		<-kv.Done()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	put := func(kv *kvstore.Store, key string, value []byte) {
		t.Helper()
		testutil.WaitFor(t, 10*time.Second, "a write of "+key, func() error {
			_, err := kv.Put(ctx, key, value)
			return err
		})
	}
	node, kv := open(0) // a binary before levels founds the cluster
	put(kv, "first", []byte("v"))
	stop(node, kv)

	node, kv = open(kvstore.LevelUniqueVersions)
	big := bytes.Repeat([]byte("v"), 64<<10)
	for i := range 320 {
		put(kv, fmt.Sprint("big-", i), big)
	}
	if err := node.ProposeClusterLevel(ctx, levelDataModel); err != nil {
		t.Fatal(err)
	}
	testutil.WaitFor(t, 10*time.Second, "level 1 applied", func() error {
		if l := node.ClusterLevel(); l != levelDataModel {
			return fmt.Errorf("at level %d", l)
		}
		return nil
	})
	stop(node, kv)

	node, kv = open(kvstore.LevelUniqueVersions)
	txn := httpapi.Txn{Success: []httpapi.TxnOp{{Type: httpapi.TxnPut, Key: "k", Value: []byte("v")}}}
	for {
		_, err := (store{kv, node}).Txn(ctx, txn, httpapi.WriteOptions{})
		var u interface{ Unavailable() bool }
		var le *levelError
		if err != nil && !errors.As(err, &le) && errors.As(err, &u) && u.Unavailable() && ctx.Err() == nil {
			// No leader yet (a loaded machine may take longer than the
			// wait for one): nothing was applied, sent again.
			time.Sleep(20 * time.Millisecond)
			continue
		}
		if err != nil {
			t.Fatalf("a transaction right after the restart: %v", err)
		}
		return
	}
}

// TestLevelGateOutOfTime: a gated operation whose wait for the level runs
// out of time is refused (503 cluster_level, nothing proposed), not
// answered as a write whose outcome is unknown. Here the member's raft
// node never starts, so its ReadIndex is never answered.
func TestLevelGateOutOfTime(t *testing.T) {
	lg := zaptest.NewLogger(t, zaptest.Level(zap.InfoLevel))
	node, err := raftnode.New(raftnode.Config{ID: 1, Peers: []string{fmt.Sprintf("http://127.0.0.1:%d", testutil.FreePorts(t, 1)[0])},
		DataDir: t.TempDir(), Level: kvstore.LevelUniqueVersions, Logger: lg, Registerer: prometheus.NewRegistry()})
	if err != nil {
		t.Fatal(err)
	}
	kv, err := kvstore.New(kvstore.Config{Logger: lg, Registerer: prometheus.NewRegistry()}, node)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { kv.Stop(); node.Stop(); <-kv.Done() }()
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	_, err = store{kv, node}.DeleteRange(ctx, httpapi.DeleteRangeOptions{Prefix: "a"})
	var le *levelError
	if !errors.As(err, &le) {
		t.Fatalf("a range delete whose wait for the level ran out: %v, want the level's refusal", err)
	}
}
