package main

import (
	"errors"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/raftkv/raftkv/client"
	"github.com/spf13/cobra"
)

func (a *app) getCommand() *cobra.Command {
	var stale bool
	var minIndex uint64
	cmd := &cobra.Command{
		Use:   "get KEY",
		Short: "Print a key's value (linearizable unless --stale)",
		Long: `Print a key's value. The read is linearizable unless --stale (one member's
local state) or --min-index (wait until the member has applied that index, the
index a put printed, then read locally). An absent key is an error (exit 1).`,
		Example: `  raftkvctl get greeting
  raftkvctl get greeting --stale
  raftkvctl -w json get greeting`,
		Args: cobra.ExactArgs(1),
	}
	cmd.Flags().BoolVar(&stale, "stale", false, "read one member's local state, possibly stale")
	cmd.Flags().Uint64Var(&minIndex, "min-index", 0, "read once the member has applied this raft index")
	cmd.RunE = a.op(func(cmd *cobra.Command, args []string) error {
		key := args[0]
		var opts []client.ReadOption
		if stale {
			opts = append(opts, client.WithStale())
		}
		if minIndex > 0 {
			opts = append(opts, client.WithMinIndex(minIndex))
		}
		c, err := a.keyClient()
		if err != nil {
			return err
		}
		defer c.Close()
		kv, index, err := c.GetKV(a.ctx, key, opts...)
		if errors.Is(err, client.ErrNotFound) {
			return fmt.Errorf("key %q not found", key)
		}
		if err != nil {
			return err
		}
		switch a.writeOut {
		case formatJSON:
			j := newKVJSON(kv)
			j.Index = index
			return printJSON(a.stdout, j)
		case formatTable:
			return printTable(a.stdout, kvHeader, [][]string{kvRow(kv)})
		}
		_, err = fmt.Fprintf(a.stdout, "%s\n", kv.Value)
		return err
	})
	return cmd
}

func (a *app) putCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "put KEY [VALUE]",
		Short: "Set a key's value, once committed and applied",
		Long: `Set a key's value; without VALUE, the value is read from standard input, as
it is (any bytes). It prints OK once a majority has the write and the member
that answered has applied it; -w json and table also print its raft index.`,
		Example: `  raftkvctl put greeting hello
  raftkvctl put blob < file.bin
  raftkvctl put session-1 open --ttl 30s
  raftkvctl put counter 8 --if-match 41     # only if counter is still at version 41`,
		Args: cobra.RangeArgs(1, 2),
	}
	var cond conditions
	var ttl time.Duration
	cond.flags(cmd, true)
	cmd.Flags().DurationVar(&ttl, "ttl", 0, "expire the key this long after the write (1s to a year); 0: permanent")
	cmd.RunE = a.op(func(cmd *cobra.Command, args []string) error {
		key := args[0]
		wopts, err := cond.options(cmd)
		if err != nil {
			return err
		}
		if ttl != 0 {
			if ttl < client.MinTTL || ttl > client.MaxTTL {
				return usagef("--ttl %v: want %v to %v (a year), or 0 for a key that does not expire", ttl, client.MinTTL, client.MaxTTL)
			}
			wopts = append(wopts, client.WithTTL(ttl))
		}
		var value []byte
		if len(args) == 2 {
			value = []byte(args[1])
		} else {
			var err error
			if value, err = io.ReadAll(a.stdin); err != nil {
				return fmt.Errorf("reading the value from standard input: %w", err)
			}
		}
		c, err := a.keyClient()
		if err != nil {
			return err
		}
		defer c.Close()
		index, version, err := c.PutVersion(a.ctx, key, value, wopts...)
		if err != nil {
			return preconditionMessage(err)
		}
		return a.printWrite(key, index, version)
	})
	return cmd
}

func (a *app) delCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:     "del KEY [RANGE_END]",
		Aliases: []string{"delete"},
		Short:   "Delete a key (an absent key too), or a range of keys, once committed and applied",
		Long: `Delete a key (an absent key too), once committed and applied.

With --prefix, delete every key that starts with KEY; with RANGE_END,
every key from KEY up to RANGE_END (excluded), as etcdctl del does. A
range delete prints the number of keys deleted; it needs cluster level 2.`,
		Args: cobra.RangeArgs(1, 2),
	}
	var cond conditions
	cond.flags(cmd, false)
	var prefix bool
	cmd.Flags().BoolVar(&prefix, "prefix", false, "delete every key that starts with KEY")
	cmd.RunE = a.op(func(cmd *cobra.Command, args []string) error {
		wopts, err := cond.options(cmd)
		if err != nil {
			return err
		}
		ranged := prefix || len(args) == 2
		switch {
		case prefix && len(args) == 2:
			return usagef("--prefix and RANGE_END exclude each other")
		case ranged && len(wopts) > 0:
			return usagef("--if-match is for one key, not a range")
		case prefix && args[0] == "":
			return usagef("--prefix needs a non-empty KEY; to delete every key, give the range from \\x00 to an empty RANGE_END")
		}
		c, err := a.keyClient()
		if err != nil {
			return err
		}
		defer c.Close()
		if ranged {
			opts := client.DeleteRangeOptions{Prefix: args[0]}
			if !prefix {
				opts = client.DeleteRangeOptions{Start: args[0], End: args[1]}
			}
			res, err := c.DeleteRange(a.ctx, opts)
			if err != nil {
				return err
			}
			return a.printDeleted(res)
		}
		index, err := c.Delete(a.ctx, args[0], wopts...)
		if err != nil {
			return preconditionMessage(err)
		}
		return a.printWrite(args[0], index, 0)
	})
	return cmd
}

// printDeleted prints the outcome of a range delete: the number of keys
// deleted, as etcdctl does.
func (a *app) printDeleted(res client.DeleteRangeResult) error {
	switch a.writeOut {
	case formatJSON:
		return printJSON(a.stdout, struct {
			Deleted int               `json:"deleted"`
			Index   uint64            `json:"index,omitempty"`
			Indexes map[uint64]uint64 `json:"indexes,omitempty"`
		}{res.Deleted, res.Index, res.Indexes})
	case formatTable:
		return printTable(a.stdout, []string{"DELETED", "INDEX"}, [][]string{{strconv.Itoa(res.Deleted), strconv.FormatUint(res.Index, 10)}})
	}
	_, err := fmt.Fprintln(a.stdout, res.Deleted)
	return err
}

// printWrite prints the outcome of an applied write of key at index.
func (a *app) printWrite(key string, index, version uint64) error {
	switch a.writeOut {
	case formatJSON:
		return printJSON(a.stdout, struct {
			Key      string `json:"key"`
			Index    uint64 `json:"index"`
			ModIndex uint64 `json:"mod_index,omitempty"`
		}{key, index, version})
	case formatTable:
		if version == 0 {
			return printTable(a.stdout, []string{"KEY", "INDEX"}, [][]string{{key, strconv.FormatUint(index, 10)}})
		}
		return printTable(a.stdout, []string{"KEY", "INDEX", "MOD INDEX"},
			[][]string{{key, strconv.FormatUint(index, 10), strconv.FormatUint(version, 10)}})
	}
	_, err := fmt.Fprintln(a.stdout, "OK")
	return err
}
