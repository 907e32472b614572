package main

import (
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/raftkv/raftkv/client"
	"github.com/spf13/cobra"
)

func (a *app) snapshotCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "snapshot",
		Short: "Back up a member's state",
	}
	var stale bool
	save := &cobra.Command{
		Use:   "save FILE",
		Short: "Save a backup of a member's whole state to FILE, for raftkv restore",
		Long: `Save a backup of one member's whole state to FILE (GET /snapshot, served by
members started with --enable-snapshot-download), checked as it arrives: it
is written to FILE.part and renamed to FILE only once whole and intact. It
holds every write acknowledged before the command (linearizable) unless
--stale. raftkv restore makes the data dirs of a new cluster from it. A
sharded deployment is saved group by group: give --endpoints of one group.`,
		Example: `  raftkvctl snapshot save backup.raftkv`,
		Args:    cobra.ExactArgs(1),
	}
	save.Flags().BoolVar(&stale, "stale", false, "take the member's state as it is, without a quorum round")
	save.RunE = a.op(func(cmd *cobra.Command, args []string) error {
		path := args[0]
		var opts []client.ReadOption
		if stale {
			opts = append(opts, client.WithStale())
		}
		c, err := a.groupClient(cmd)
		if err != nil {
			return err
		}
		defer c.Close()
		part := path + ".part"
		f, err := os.OpenFile(part, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
		if err != nil {
			return err
		}
		info, err := c.SnapshotSave(a.ctx, f, opts...)
		if err == nil {
			err = f.Sync()
		}
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err == nil {
			err = os.Rename(part, path)
		}
		if err != nil {
			os.Remove(part)
			return err
		}
		if d, err := os.Open(filepath.Dir(path)); err == nil {
			d.Sync() // the rename, durable
			d.Close()
		}
		h := info.Header
		switch a.writeOut {
		case formatJSON:
			return printJSON(a.stdout, struct {
				Path     string    `json:"path"`
				Endpoint string    `json:"endpoint"`
				Size     int64     `json:"size"`
				Index    uint64    `json:"index"`
				Term     uint64    `json:"term"`
				MemberID uint64    `json:"memberID"`
				Created  time.Time `json:"created"`
			}{path, info.Endpoint, info.Size, h.Index, h.Term, h.MemberID, h.Created})
		case formatTable:
			return printTable(a.stdout, []string{"PATH", "ENDPOINT", "SIZE", "INDEX", "TERM"}, [][]string{{path, info.Endpoint,
				fmt.Sprint(info.Size), fmt.Sprint(h.Index), fmt.Sprint(h.Term)}})
		}
		_, err = fmt.Fprintf(a.stdout, "Snapshot saved at %s: index %d, term %d, %d bytes, from member %d\n", path, h.Index, h.Term, info.Size, h.MemberID)
		return err
	})
	cmd.AddCommand(save)
	return parent(cmd)
}
