package raftnode

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"testing"

	"go.etcd.io/etcd/api/v3/version"
	"go.etcd.io/etcd/client/pkg/v3/types"
	"go.etcd.io/etcd/server/v3/etcdserver/api/rafthttp"
	stats "go.etcd.io/etcd/server/v3/etcdserver/api/v2stats"
	"go.etcd.io/raft/v3/raftpb"
	"go.uber.org/zap"
	"google.golang.org/protobuf/proto"
)

// TestProcessAfterStop: a peer's message that reaches rafthttp's pipeline
// handler after raft stopped (a member stopping on a fatal error still
// serves its peer port for a moment) is answered 503, not a panic, which
// rafthttp raises for any other error and net/http logs with its stack.
func TestProcessAfterStop(t *testing.T) {
	c := newTestCluster(t, 1, fastConfig())
	m := c.waitLeader()
	m.node.Stop()

	rh := &rafthttp.Transport{
		Logger:      zap.NewNop(),
		ID:          types.ID(1),
		ClusterID:   types.ID(7),
		Raft:        m.node,
		ServerStats: stats.NewServerStats("", "1"),
		LeaderStats: stats.NewLeaderStats(zap.NewNop(), "1"),
		ErrorC:      make(chan error, 1),
	}
	if err := rh.Start(); err != nil {
		t.Fatal(err)
	}
	defer rh.Stop()
	srv := httptest.NewServer(rh.Handler())
	defer srv.Close()

	msg, err := proto.Marshal(&raftpb.Message{Type: raftpb.MsgHeartbeat.Enum(), From: proto.Uint64(2), To: proto.Uint64(1), Term: proto.Uint64(9)})
	if err != nil {
		t.Fatal(err)
	}
	req, err := http.NewRequest(http.MethodPost, srv.URL+rafthttp.RaftPrefix, bytes.NewReader(msg))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/protobuf")
	req.Header.Set("X-Etcd-Cluster-ID", types.ID(7).String())
	req.Header.Set("X-Server-From", types.ID(2).String())
	req.Header.Set("X-Server-Version", version.Version)
	req.Header.Set("X-Min-Cluster-Version", version.MinClusterVersion)
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatalf("POST %s to a stopped member: %v (the handler panicked)", rafthttp.RaftPrefix, err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("POST %s to a stopped member: %s; want 503", rafthttp.RaftPrefix, resp.Status)
	}
}
