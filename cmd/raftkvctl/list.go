package main

import (
	"fmt"

	"github.com/raftkv/raftkv/client"
	"github.com/spf13/cobra"
)

// listPage is the most keys list asks for at once.
const listPage = 1000

func (a *app) listCommand() *cobra.Command {
	var o client.ListOptions
	var limit int
	cmd := &cobra.Command{
		Use:   "list [--prefix P | --start A [--end B]]",
		Short: "List keys and values in key order: a prefix, a range, or every key",
		Long: `List the keys of a prefix, of the range [--start, --end), or every key, in
key order, with their values (each key on a line, then its value, as etcdctl
get --prefix prints them). Each page of up to 1000 keys is one consistent
state, read linearizably unless --stale; a later page is no older. --limit
stops after that many keys.`,
		Example: `  raftkvctl list --prefix user/
  raftkvctl list --start a --end m --keys-only
  raftkvctl -w json list --prefix user/ --limit 10`,
		Args: cobra.NoArgs,
	}
	f := cmd.Flags()
	f.StringVar(&o.Prefix, "prefix", "", "list the keys with this prefix")
	f.StringVar(&o.Start, "start", "", "list from this key (inclusive)")
	f.StringVar(&o.End, "end", "", `list up to this key (exclusive); "" means to the last key`)
	f.IntVar(&limit, "limit", 0, "the most keys listed; 0: every key")
	f.BoolVar(&o.KeysOnly, "keys-only", false, "list the keys without their values")
	f.BoolVar(&o.Stale, "stale", false, "read one member's local state, possibly stale")
	f.Uint64Var(&o.MinIndex, "min-index", 0, "read once the member has applied this raft index")
	cmd.RunE = a.op(func(cmd *cobra.Command, _ []string) error {
		switch {
		case o.Prefix != "" && (o.Start != "" || o.End != ""):
			return usagef("--prefix goes without --start and --end")
		case limit < 0:
			return usagef("--limit %d: want 0 (every key) or more", limit)
		}
		c, err := a.keyClient()
		if err != nil {
			return err
		}
		defer c.Close()
		var kvs []client.KeyValue
		var first client.ListPage
		more := false
		for page := 0; ; page++ {
			o.Limit = listPage
			if limit > 0 {
				o.Limit = min(listPage, limit-len(kvs))
			}
			p, err := c.List(a.ctx, o)
			if err != nil {
				return err
			}
			if page == 0 {
				first = p
			}
			kvs = append(kvs, p.KVs...)
			more = p.More
			if !p.More || p.Continue == "" || (limit > 0 && len(kvs) >= limit) {
				break
			}
			o.Continue = p.Continue
		}
		return a.printList(kvs, more, first, o.KeysOnly)
	})
	return cmd
}

func (a *app) printList(kvs []client.KeyValue, more bool, first client.ListPage, keysOnly bool) error {
	switch a.writeOut {
	case formatJSON:
		out := struct {
			Index   uint64            `json:"index,omitempty"`
			Indexes map[uint64]uint64 `json:"indexes,omitempty"`
			KVs     []kvJSON          `json:"kvs"`
			Count   int               `json:"count"`
			More    bool              `json:"more"`
		}{Index: first.Index, Indexes: first.Indexes, KVs: []kvJSON{}, Count: len(kvs), More: more}
		for _, kv := range kvs {
			j := newKVJSON(kv)
			if keysOnly {
				j.jsonValue = jsonValue{}
			}
			out.KVs = append(out.KVs, j)
		}
		return printJSON(a.stdout, out)
	case formatTable:
		var rows [][]string
		for _, kv := range kvs {
			rows = append(rows, kvRow(kv))
		}
		return printTable(a.stdout, kvHeader, rows)
	}
	for _, kv := range kvs {
		if keysOnly {
			fmt.Fprintf(a.stdout, "%s\n", kv.Key)
			continue
		}
		fmt.Fprintf(a.stdout, "%s\n%s\n", kv.Key, kv.Value)
	}
	return nil
}
