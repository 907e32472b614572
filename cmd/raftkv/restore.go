package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/raftkv/raftkv/backup"
	"github.com/raftkv/raftkv/daemon"
	"github.com/raftkv/raftkv/peerurl"
)

// restoreUsage is the top of `raftkv restore --help`.
const restoreUsage = `raftkv restore makes the data dir of one member of a NEW cluster from a
backup (GET /snapshot on a member started with --enable-snapshot-download),
as etcdutl snapshot restore does. Run it once per member, each with the
same backup and --cluster and its own --id and --data-dir, then start each
member with the same --id, --cluster and --data-dir, without --join: they
elect a leader among themselves and serve the backup's state. A backup of a
config group or shard group member restores into a member of the same kind,
to be started with --config-group, or --group G --config-endpoints URLs. A
restored shard member's first start refuses to serve when a config made
since the backup moved a bucket to or from its group, and a restored config
group member's when a group it lists took configs the backup lacks:
restore the config group and the shard groups from backups of one moment.
A member refused for a group that is gone for good starts unchecked with
raftkv --unsafe-skip-restore-check (two groups may then serve a bucket).

It checks the backup's SHA-256 as it reads it and decodes the state as a
member would, and refuses a damaged or truncated file, a state this binary
cannot load, a data dir that is not empty, and flags that do not make a
cluster, with one line on stderr and exit status 2; it leaves no data dir
behind then.

Example:
  curl -s http://127.0.0.1:12380/snapshot -o raftkv.backup
  raftkv restore --snapshot raftkv.backup --id 1 --cluster http://127.0.0.1:12379,http://127.0.0.1:22379,http://127.0.0.1:32379 --data-dir raftkv-1

Usage: raftkv restore --snapshot FILE [--id N] [--cluster URL1,URL2,...] [--data-dir DIR]
(--id and --cluster default as raftkv's own do: member 1 of one member at ` + daemon.DefaultPeerURL + `)

Flags:
`

// restoreOptions are the parsed command line of `raftkv restore`.
type restoreOptions struct {
	snapshot string
	id       uint64
	cluster  []string
	dataDir  string
}

// restoreMain runs `raftkv restore` with args and returns its exit
// status: 0 once the data dir is made, 2 when it is not.
func restoreMain(args []string, stdout, stderr io.Writer) int {
	o, err := parseRestoreFlags(args, stdout)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err == nil {
		err = o.run(stdout)
	}
	if err != nil {
		fmt.Fprintln(stderr, "raftkv restore:", oneLine(err))
		return 2
	}
	return 0
}

func parseRestoreFlags(args []string, usage io.Writer) (*restoreOptions, error) {
	fs := flag.NewFlagSet("raftkv restore", flag.ContinueOnError)
	o := &restoreOptions{}
	var cluster string
	fs.StringVar(&o.snapshot, "snapshot", "", "the backup file to restore (required)")
	fs.Uint64Var(&o.id, "id", 1, "the id of the member to make: it will listen for peers on the N-th --cluster URL")
	fs.StringVar(&cluster, "cluster", daemon.DefaultPeerURL, "comma-separated peer URLs of the new cluster, in id order; every member is a voter")
	fs.StringVar(&o.dataDir, "data-dir", "", "the data dir to make; it must not exist or be empty (default: the member's default, raftkv-<id>, raftkv-config-<id> or raftkv-group<G>-<id> for the backup's kind of member)")
	fs.SetOutput(io.Discard)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fs.SetOutput(usage)
			fmt.Fprint(usage, restoreUsage)
			fs.PrintDefaults()
		}
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	for _, u := range strings.Split(cluster, ",") {
		if u = strings.TrimSpace(u); u != "" {
			o.cluster = append(o.cluster, u)
		}
	}
	switch {
	case o.snapshot == "":
		return nil, errors.New("--snapshot names no backup file")
	case len(o.cluster) == 0:
		return nil, errors.New("--cluster lists no peer URLs")
	case o.id == 0 || o.id > uint64(len(o.cluster)):
		return nil, fmt.Errorf("--id %d is outside the --cluster list of %d URLs", o.id, len(o.cluster))
	}
	seen := map[string]bool{}
	for i, u := range o.cluster {
		if err := peerurl.Validate(u); err != nil {
			return nil, fmt.Errorf("--cluster entry %d: %v", i+1, err)
		}
		if seen[u] {
			return nil, fmt.Errorf("--cluster lists %s twice", u)
		}
		seen[u] = true
	}
	return o, nil
}

// run restores the backup and says how to start the member made.
func (o *restoreOptions) run(stdout io.Writer) error {
	if o.dataDir == "" {
		// The member's default data dir depends on its kind, which only
		// the backup says; Restore reads (and checks) it all again.
		f, err := os.Open(o.snapshot)
		if err != nil {
			return fmt.Errorf("backup %s: %w", o.snapshot, unwrapPath(err))
		}
		h, err := backup.ParseHeader(f)
		f.Close()
		if err != nil {
			return fmt.Errorf("backup %s: %w", o.snapshot, err)
		}
		o.dataDir = memberDataDir(h.Mode == backup.ModeConfig, h.Group, o.id)
	}
	abs, err := filepath.Abs(o.dataDir)
	if err != nil {
		return fmt.Errorf("--data-dir: %v", err)
	}
	cfg := daemon.RestoreConfig{Backup: o.snapshot, ID: o.id, Peers: o.cluster, DataDir: abs}
	h, err := daemon.Restore(cfg)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "restored the backup of %s at index %d (term %d, taken by member %d at %s) into %s: member %d of a new cluster of %d, cluster id %x\n",
		h.Describe(), h.Index, h.Term, h.MemberID, h.Created.Format("2006-01-02T15:04:05Z07:00"), abs, o.id, len(o.cluster), daemon.RestoredClusterID(h, o.cluster))
	fmt.Fprintf(stdout, "start it with: %s\n", daemon.StartFlags(cfg, h))
	return nil
}

// unwrapPath drops the *os.PathError around err: the message names the
// path already.
func unwrapPath(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// oneLine keeps an error on one line of stderr.
func oneLine(err error) string {
	return strings.ReplaceAll(err.Error(), "\n", "; ")
}
