package raftnode

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.etcd.io/etcd/client/pkg/v3/fileutil"
	"go.etcd.io/etcd/server/v3/storage/wal"
	"go.uber.org/zap"
)

// errCrash is what a crash failpoint stops a member with.
var errCrash = errors.New("crashed by the test")

// copyDir copies the files under src to dst. A file removed meanwhile (by
// a purger) is skipped, as a crash could have found it gone.
func copyDir(src, dst string) error {
	return filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, path)
		if err != nil {
			return err
		}
		if d.IsDir() {
			return os.MkdirAll(filepath.Join(dst, rel), 0o700)
		}
		in, err := os.Open(path)
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err != nil {
			return err
		}
		defer in.Close()
		out, err := os.Create(filepath.Join(dst, rel))
		if err != nil {
			return err
		}
		if _, err := io.Copy(out, in); err != nil {
			out.Close()
			return err
		}
		return out.Close()
	})
}

// crashImage copies a member's data dir as a crash at this moment would
// leave it: what its WAL still buffers is lost (bytes written are kept, as
// after a process crash), and what its purgers may remove is removed, as
// if they had run just before: the .snap files down to MaxSnapshotFiles
// (etcd's fileutil.PurgeFileWithoutFlock), the WAL segments it no longer
// locks, oldest first down to MaxWALFiles (fileutil.PurgeFile), and the
// data files behind the snapshot at released, down to MaxSnapshotDataFiles
// (pruneDataFiles).
func crashImage(live, image string, cfg Config, released uint64) error {
	if err := copyDir(live, image); err != nil {
		return err
	}
	snaps, err := namesWithSuffix(snapDir(image), ".snap")
	if err != nil {
		return err
	}
	for len(snaps) > int(cfg.MaxSnapshotFiles) {
		if err := os.Remove(filepath.Join(snapDir(image), snaps[0])); err != nil {
			return err
		}
		snaps = snaps[1:]
	}
	segs, err := namesWithSuffix(walDir(live), ".wal")
	if err != nil {
		return err
	}
	for len(segs) > int(cfg.MaxWALFiles) {
		l, err := fileutil.TryLockFile(filepath.Join(walDir(live), segs[0]), os.O_WRONLY, fileutil.PrivateFileMode)
		if err != nil {
			break // still locked: the member needs it
		}
		l.Close()
		if err := os.Remove(filepath.Join(walDir(image), segs[0])); err != nil {
			return err
		}
		segs = segs[1:]
	}
	if released > 0 {
		pruneDataFiles(zap.NewNop(), snapDir(image), cfg.MaxSnapshotDataFiles, released)
	}
	return nil
}

// namesWithSuffix lists the names in dir that end in suffix, sorted.
func namesWithSuffix(dir, suffix string) ([]string, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var names []string
	for _, e := range ents {
		if strings.HasSuffix(e.Name(), suffix) {
			names = append(names, e.Name())
		}
	}
	slices.Sort(names)
	return names, nil
}

// TestSnapshotCrash stops a member at each step of saving a snapshot, as a
// crash would, and restarts it from what its data dir held at that moment,
// after the purges it allowed: it must start and catch up with all the
// cluster's state. A snapshot comes from the leader (the member was cut
// off while the others compacted their logs) or is the member's own.
//
// Older WAL segments and data files may be purged only once the snapshot
// and a HardState that commits it are durable: a restart starts from the
// newest snapshot that the WAL's last HardState commits, and before that
// HardState is saved that is the previous one, whose WAL segments and data
// file would be gone (etcd issue 10219).
func TestSnapshotCrash(t *testing.T) {
	tests := []struct {
		incoming bool
		step     string
	}{
		{true, fpSnapReceived},
		{true, fpSnapFileSaved},
		{true, fpSnapRecordSaved},
		{true, fpSnapHardStateSaved},
		{true, fpSnapReleased},
		{false, fpSnapDataWritten},
		{false, fpSnapFileSaved},
		{false, fpSnapRecordSaved},
		{false, fpSnapReleased},
	}
	// Small segments, so that a member's WAL spans several and purging
	// them matters.
	defer func(size int64) { wal.SegmentSizeBytes = size }(wal.SegmentSizeBytes)
	wal.SegmentSizeBytes = 4 << 10
	for _, tt := range tests {
		name := "own snapshot/" + tt.step
		if tt.incoming {
			name = "snapshot from the leader/" + tt.step
		}
		t.Run(name, func(t *testing.T) {
			cfg := fastConfig()
			cfg.SnapshotCount, cfg.SnapshotCatchUpEntries = 20, 5
			cfg.SnapshotWriteRate = -1
			// The fewest files each kind allows.
			cfg.MaxSnapshotFiles, cfg.MaxWALFiles, cfg.MaxSnapshotDataFiles = 2, 1, 1

			var (
				mu       sync.Mutex
				armed    bool
				incoming bool
				target   uint64
			)
			crashed := make(chan string, 1)
			imageRoot := t.TempDir()
			prepare := func(n *Node) {
				n.failpoint = func(name string) error {
					mu.Lock()
					defer mu.Unlock()
					if !armed || n.cfg.ID != target {
						return nil
					}
					switch name {
					case fpSnapReceived:
						incoming = true
					case fpSnapDataWritten:
						incoming = false
					}
					if name != tt.step || incoming != tt.incoming {
						return nil
					}
					armed = false
					// On the Ready loop, which owns n.released.
					image := filepath.Join(imageRoot, "image")
					if err := crashImage(n.cfg.DataDir, image, n.cfg, n.released); err != nil {
						t.Errorf("crash image: %v", err)
					}
					crashed <- image
					return errCrash
				}
			}
			c := newTestCluster(t, 3, cfg, func(c *testCluster) { c.prepare = prepare })
			pad := strings.Repeat("x", 200)
			var want []string
			put := func(prefix string, n int) {
				for i := range n {
					v := fmt.Sprintf("%s-%d-%s", prefix, i, pad)
					c.put(v)
					want = append(want, v)
				}
			}
			// Every member takes a snapshot of its own first.
			put("before", 30)
			c.waitConverged(want)

			lead := c.waitLeader()
			if tt.incoming {
				target = c.members[lead.id%3].id
				c.net.isolate(target)
				put("cut-off", 60)
				mu.Lock()
				armed = true
				mu.Unlock()
				c.net.heal()
			} else {
				target = lead.id
				mu.Lock()
				armed = true
				mu.Unlock()
				put("more", 30)
			}

			var image string
			select {
			case image = <-crashed:
			case <-time.After(20 * time.Second):
				t.Fatalf("member %d never reached %s", target, tt.step)
			}
			m := c.members[target-1]
			<-m.node.Done()
			if err := m.node.Err(); !errors.Is(err, errCrash) {
				t.Fatalf("member %d stopped with %v, want the crash", target, err)
			}
			c.stop(target)
			if err := os.RemoveAll(m.dir); err != nil {
				t.Fatal(err)
			}
			if err := os.Rename(image, m.dir); err != nil {
				t.Fatal(err)
			}

			c.start(target, false)
			put("after", 10)
			c.waitConverged(want)
		})
	}
}
