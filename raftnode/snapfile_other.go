//go:build !linux

package raftnode

import "os"

// flushRange flushes the whole file where sync_file_range is missing.
func flushRange(f *os.File, _, _ int64) error { return f.Sync() }
