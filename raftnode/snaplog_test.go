package raftnode

import (
	"os"
	"path/filepath"
	"testing"

	"go.etcd.io/etcd/server/v3/etcdserver/api/snap"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
)

// TestSnapshotterQuietAboutDataFiles: etcd's snapshotter warns of every
// file in the snap dir that is not a .snap file; the data files that sit
// there by design are not warned of, and any other file still is.
func TestSnapshotterQuietAboutDataFiles(t *testing.T) {
	dir := t.TempDir()
	for _, name := range []string{dataFileName(7), "stray.txt"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	core, logs := observer.New(zapcore.InfoLevel)
	if _, err := snap.New(snapshotterLogger(zap.New(core)), dir).Load(); err != snap.ErrNoSnapshot {
		t.Fatalf("Load: %v, want ErrNoSnapshot", err)
	}
	warned := logs.FilterMessage(nonSnapWarning).All()
	if len(warned) != 1 || warned[0].ContextMap()["path"] != "stray.txt" {
		t.Fatalf("warnings %+v; want one, of stray.txt", warned)
	}
}
