package raftnode

import (
	"fmt"

	"go.etcd.io/raft/v3"
	"go.uber.org/zap"
)

// raftLogger bridges raft's Logger to zap, one per node, so several nodes
// in one process keep their logs apart.
type raftLogger struct{ s *zap.SugaredLogger }

var _ raft.Logger = raftLogger{}

func newRaftLogger(lg *zap.Logger) raftLogger {
	return raftLogger{s: lg.Named("raft").WithOptions(zap.AddCallerSkip(1)).Sugar()}
}

func (l raftLogger) Debug(v ...any)                   { l.s.Debug(v...) }
func (l raftLogger) Debugf(format string, v ...any)   { l.s.Debugf(format, v...) }
func (l raftLogger) Info(v ...any)                    { l.s.Info(v...) }
func (l raftLogger) Infof(format string, v ...any)    { l.s.Infof(format, v...) }
func (l raftLogger) Warning(v ...any)                 { l.s.Warn(v...) }
func (l raftLogger) Warningf(format string, v ...any) { l.s.Warnf(format, v...) }
func (l raftLogger) Error(v ...any)                   { l.s.Error(v...) }
func (l raftLogger) Errorf(format string, v ...any)   { l.s.Errorf(format, v...) }

// Fatal panics instead of exiting: only cmd/ may end the process.
func (l raftLogger) Fatal(v ...any)                 { l.Panic(v...) }
func (l raftLogger) Fatalf(format string, v ...any) { l.Panicf(format, v...) }
func (l raftLogger) Panic(v ...any)                 { l.s.Panic(fmt.Sprint(v...)) }
func (l raftLogger) Panicf(format string, v ...any) { l.s.Panicf(format, v...) }
