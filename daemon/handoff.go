package daemon

import (
	"context"
	"errors"
	"time"

	"github.com/raftkv/raftkv/raftnode"
	"go.uber.org/zap"
)

// handOffLeadership, on a member stopping gracefully while it leads,
// transfers leadership to the voter whose log is the most up to date
// first, so that the others need not wait out an election timeout: a
// rolling restart then costs no election. It waits at most an election
// timeout (raft gives the transfer no longer either); the member stops
// anyway afterwards.
func (m *Member) handOffLeadership() {
	if m.node.Leader() != m.cfg.ID {
		return
	}
	timeout := time.Duration(m.cfg.ElectionTicks) * m.cfg.TickInterval
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	m.lg.Info("stopping the leader: transferring leadership first", zap.Duration("timeout", timeout))
	to, err := m.node.TransferLeadership(ctx, 0)
	switch {
	case errors.Is(err, raftnode.ErrStopped):
		// The raft node stopped by itself meanwhile: nothing to hand on.
	case errors.Is(err, raftnode.ErrTransferTarget):
		m.lg.Info("no other voting member to transfer leadership to; stopping", zap.Error(err))
	case err != nil:
		m.lg.Warn("leadership not transferred; stopping anyway, the others will elect a leader", zap.Error(err))
	default:
		m.lg.Info("leadership transferred before stopping", zap.Uint64("to", to))
	}
}
