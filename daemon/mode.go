package daemon

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/raftkv/raftkv/raftnode"
	"github.com/raftkv/raftkv/shardgroup"
	"github.com/raftkv/raftkv/shardmap"
	"go.uber.org/zap"
)

// A member's data dir remembers what it was made for in a small file next
// to the WAL, written before the WAL is created: a config group member or
// a member of shard group G, and the number of buckets. A member started
// on a data dir made for something else refuses to start with one line
// that says what it was made for, rather than replay a state its store
// cannot read (kvstore refuses a snapshot of another mode or bucket count
// only by panicking). A data dir without the file was made by a plain
// member, or by a version before sharding.

// modeFile is the name of the mode file in a data dir.
const modeFile = "mode.json"

// Member modes.
const (
	modePlain  = "plain"
	modeConfig = "config"
	modeShard  = "shard"
)

// dirMode is the content of the mode file.
type dirMode struct {
	Mode    string `json:"mode"`
	Group   uint64 `json:"group,omitempty"`
	Buckets int    `json:"buckets"`
	// Restored marks a shard or config group member's data dir made by
	// Restore whose first start has not yet checked it against the
	// deployment (checkRestored, checkConfigRestored).
	Restored bool `json:"restored,omitempty"`
}

// mode names what a member is.
func (c Config) mode() string {
	switch {
	case c.ConfigGroup:
		return modeConfig
	case c.Group != 0:
		return modeShard
	}
	return modePlain
}

func (m dirMode) String() string {
	switch m.Mode {
	case modeConfig:
		return fmt.Sprintf("a config group member of %d buckets", m.Buckets)
	case modeShard:
		return fmt.Sprintf("a member of shard group %d of %d buckets", m.Group, m.Buckets)
	}
	return "a plain member"
}

// flags says how to start a member of mode m, for error messages.
func (m dirMode) flags() string {
	switch m.Mode {
	case modeConfig:
		return "--config-group"
	case modeShard:
		return fmt.Sprintf("--group %d --config-endpoints <URLs>", m.Group)
	}
	return "neither --config-group nor --group"
}

// readMode reads the data dir's mode file; ok is false when there is none.
func readMode(dataDir string) (m dirMode, ok bool, err error) {
	b, err := os.ReadFile(filepath.Join(dataDir, modeFile))
	switch {
	case errors.Is(err, os.ErrNotExist):
		return dirMode{}, false, nil
	case err != nil:
		return dirMode{}, false, fmt.Errorf("data dir %s: %w", dataDir, err)
	}
	if err := json.Unmarshal(b, &m); err != nil || (m.Mode != modeConfig && m.Mode != modeShard) || m.Buckets < 1 {
		return dirMode{}, false, fmt.Errorf("data dir %s: %s is not a mode file raftkv wrote", dataDir, modeFile)
	}
	return m, true, nil
}

// writeMode writes the mode file durably: a temporary file, synced, then
// renamed over the old one, and the directory synced.
func writeMode(dataDir string, m dirMode) error {
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return fmt.Errorf("data dir %s: %w", dataDir, err)
	}
	b, err := json.Marshal(m)
	if err != nil {
		return err
	}
	tmp := filepath.Join(dataDir, modeFile+".tmp")
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return fmt.Errorf("data dir %s: %w", dataDir, err)
	}
	_, err = f.Write(append(b, '\n'))
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, filepath.Join(dataDir, modeFile))
	}
	if err == nil {
		var d *os.File
		if d, err = os.Open(dataDir); err == nil {
			err = d.Sync()
			d.Close()
		}
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("data dir %s: writing %s: %w", dataDir, modeFile, err)
	}
	return nil
}

// resolveMode checks that the data dir was made for the member cfg
// describes, and returns the member's bucket count: 1 for a plain member;
// the data dir's, or Buckets, or shardmap.DefaultBuckets for a config
// group member; the data dir's, or the config group's at a first start,
// for a shard member. A shard member whose data dir has state still asks
// the config group, briefly, and refuses to start if it answers another
// count; if it does not answer, the data dir's count is used. It writes
// the mode file for a data dir without state.
func resolveMode(ctx context.Context, lg *zap.Logger, cfg Config, hc *http.Client) (int, error) {
	hasState := raftnode.HasState(cfg.DataDir)
	have, haveMode, err := readMode(cfg.DataDir)
	if err != nil {
		return 0, err
	}
	if hasState {
		switch {
		case !haveMode && cfg.mode() != modePlain:
			return 0, fmt.Errorf("data dir %s holds a plain member's state; start it with neither --config-group nor --group, or use an empty data dir", cfg.DataDir)
		case haveMode && have.Mode != cfg.mode():
			return 0, fmt.Errorf("data dir %s was made for %s; start it with %s, or use an empty data dir", cfg.DataDir, have, have.flags())
		case haveMode && have.Mode == modeShard && have.Group != cfg.Group:
			return 0, fmt.Errorf("data dir %s was made for shard group %d, not %d", cfg.DataDir, have.Group, cfg.Group)
		case haveMode && have.Mode == modeConfig && cfg.Buckets != 0 && cfg.Buckets != have.Buckets:
			return 0, fmt.Errorf("data dir %s was made for a config group of %d buckets, not %d", cfg.DataDir, have.Buckets, cfg.Buckets)
		}
	}
	want := dirMode{Mode: cfg.mode(), Group: cfg.Group}
	switch want.Mode {
	case modePlain:
		if haveMode && !hasState {
			// Left by a member of another mode that never started: the
			// data dir is a plain member's from now on.
			if err := os.Remove(filepath.Join(cfg.DataDir, modeFile)); err != nil {
				return 0, fmt.Errorf("data dir %s: %w", cfg.DataDir, err)
			}
		}
		return 1, nil
	case modeConfig:
		want.Buckets = cfg.Buckets
		if hasState {
			want.Buckets = have.Buckets
		} else if want.Buckets == 0 {
			want.Buckets = shardmap.DefaultBuckets
		}
	case modeShard:
		if hasState {
			want.Buckets = have.Buckets
			// The config group should agree; it may be down, which must not
			// keep a member with state from restarting.
			qctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			n, err := shardgroup.BucketCount(qctx, startupClient(hc), cfg.ConfigEndpoints)
			cancel()
			switch {
			case err != nil:
				lg.Warn("cannot check the bucket count with the config group; using the data dir's",
					zap.Int("buckets", have.Buckets), zap.Error(err))
			case n != have.Buckets:
				return 0, fmt.Errorf("data dir %s was made for %d buckets, but the config group at %s has %d",
					cfg.DataDir, have.Buckets, strings.Join(cfg.ConfigEndpoints, ","), n)
			}
			return want.Buckets, nil
		}
		qctx, cancel := context.WithTimeout(ctx, cfg.JoinTimeout)
		n, err := shardgroup.BucketCount(qctx, startupClient(hc), cfg.ConfigEndpoints)
		cancel()
		if err != nil {
			return 0, fmt.Errorf("cannot learn the bucket count from the config group: %w", err)
		}
		want.Buckets = n
		lg.Info("learned the bucket count from the config group", zap.Int("buckets", n))
	}
	if !hasState {
		if err := writeMode(cfg.DataDir, want); err != nil {
			return 0, err
		}
	}
	return want.Buckets, nil
}

// startupClient asks the config group at start-up with hc's transport
// (TLS, when the member has it); it follows no redirects.
func startupClient(hc *http.Client) *http.Client {
	return &http.Client{
		Transport:     hc.Transport,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}
