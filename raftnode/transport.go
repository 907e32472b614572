package raftnode

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"strconv"
	"time"

	"github.com/raftkv/raftkv/peerurl"
	"go.etcd.io/etcd/client/pkg/v3/types"
	"go.etcd.io/etcd/server/v3/etcdserver/api/rafthttp"
	"go.etcd.io/etcd/server/v3/etcdserver/api/snap"
	stats "go.etcd.io/etcd/server/v3/etcdserver/api/v2stats"
	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
	"go.uber.org/zap"
	"google.golang.org/protobuf/proto"
)

func (n *Node) startTransport() error {
	ln, err := net.Listen("tcp", n.cfg.PeerListenAddr)
	if err != nil {
		return fmt.Errorf("raftnode: listen for peers on %s: %w", n.cfg.PeerListenAddr, err)
	}
	n.links = newPeerLinks(n)
	n.transport = &rafthttp.Transport{
		Logger:      n.lg.Named("rafthttp"),
		DialTimeout: n.peerDialTimeout(),
		ID:          types.ID(n.cfg.ID),
		ClusterID:   clusterID,
		Raft:        n,
		Snapshotter: n.disk.snapshotter,
		ServerStats: stats.NewServerStats("", strconv.FormatUint(n.cfg.ID, 10)),
		LeaderStats: stats.NewLeaderStats(n.lg, strconv.FormatUint(n.cfg.ID, 10)),
		ErrorC:      make(chan error, 1),
	}
	if err := n.transport.Start(); err != nil {
		ln.Close()
		return fmt.Errorf("raftnode: start transport: %w", err)
	}
	// Peers come from the command line first (so a member reaches each
	// peer the way its own --cluster says, even through a proxy), then
	// from the snapshot's membership; conf changes applied later add and
	// remove the rest.
	n.mu.RLock()
	for i, u := range n.cfg.Peers {
		n.addPeerLocked(uint64(i+1), u)
	}
	for _, m := range n.mu.members.sorted() {
		n.addPeerLocked(m.ID, m.PeerURL)
	}
	n.mu.RUnlock()
	n.peerServer = &http.Server{
		Handler:           n.links.handler(n.transport.Handler()),
		ConnContext:       withConn,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          zap.NewStdLog(n.lg.Named("peer-http")),
	}
	n.wg.Add(1)
	go n.links.run()
	go func() {
		if err := n.peerServer.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			n.stop(fmt.Errorf("raftnode: peer server: %w", err))
		}
	}()
	return nil
}

// addPeerLocked adds id to the transport unless it is this member, was
// removed, is already there, or has an unusable URL (rafthttp panics on
// those). n.mu must be held.
func (n *Node) addPeerLocked(id uint64, peerURL string) {
	if id == n.cfg.ID || n.mu.members.Removed[id] || n.transport.Get(types.ID(id)) != nil {
		return
	}
	if err := peerurl.Validate(peerURL); err != nil {
		n.lg.Warn("ignoring member with unusable peer URL", zap.Uint64("peer-id", id), zap.Error(err))
		return
	}
	n.transport.AddPeer(types.ID(id), []string{peerURL})
	n.links.added(id, peerURL)
}

// send hands messages to the transport. A snapshot message carries the
// small raft snapshot; the state follows it as a body streamed from the
// data file, which the receiver saves as its own data file.
func (n *Node) send(ms []*raftpb.Message) {
	ms = n.processMessages(ms)
	n.links.sent(ms, time.Now())
	regular := ms[:0]
	for _, m := range ms {
		if m.GetType() != raftpb.MsgSnap {
			regular = append(regular, m)
			continue
		}
		index := m.GetSnapshot().GetMetadata().GetIndex()
		f, err := os.Open(n.dataFile(index))
		var fi os.FileInfo
		if err == nil {
			fi, err = f.Stat()
		}
		if err != nil {
			n.lg.Error("cannot send snapshot", zap.Uint64("to", m.GetTo()), zap.Uint64("snapshot-index", index), zap.Error(err))
			if f != nil {
				f.Close()
			}
			n.node.ReportSnapshot(m.GetTo(), raft.SnapshotFailure)
			continue
		}
		n.lg.Info("sending snapshot", zap.Uint64("to", m.GetTo()),
			zap.Uint64("snapshot-index", index), zap.Int64("bytes", fi.Size()))
		n.transport.SendSnapshot(snap.NewMessage(m, f, fi.Size()))
	}
	n.transport.Send(regular)
}

// processMessages prepares outgoing messages. A snapshot message carries
// the snapshot's stored ConfState, which predates members added since;
// the receiver would reject a snapshot that does not list it, so the
// current ConfState is patched in.
func (n *Node) processMessages(ms []*raftpb.Message) []*raftpb.Message {
	for _, m := range ms {
		if m.GetType() == raftpb.MsgSnap && m.Snapshot != nil {
			s := m.Snapshot
			m.Snapshot = &raftpb.Snapshot{
				Data: s.GetData(),
				Metadata: &raftpb.SnapshotMetadata{
					Index:     proto.Uint64(s.GetMetadata().GetIndex()),
					Term:      proto.Uint64(s.GetMetadata().GetTerm()),
					ConfState: n.confState,
				},
			}
		}
	}
	return ms
}

// Process implements rafthttp.Raft.
func (n *Node) Process(ctx context.Context, m *raftpb.Message) error {
	n.links.heard(m.GetFrom())
	if m.GetType() == raftpb.MsgProp && n.leader.Load() == n.cfg.ID {
		return n.stepForwarded(ctx, m)
	}
	return n.node.Step(ctx, m)
}

// IsIDRemoved implements rafthttp.Raft.
func (n *Node) IsIDRemoved(id uint64) bool {
	n.mu.RLock()
	defer n.mu.RUnlock()
	return n.mu.members.Removed[id]
}

// ReportUnreachable implements rafthttp.Raft.
func (n *Node) ReportUnreachable(id uint64) { n.node.ReportUnreachable(id) }

// ReportSnapshot implements rafthttp.Raft.
func (n *Node) ReportSnapshot(id uint64, status raft.SnapshotStatus) {
	n.node.ReportSnapshot(id, status)
}
