package main

import (
	"errors"
	"fmt"
	"strings"

	"github.com/raftkv/raftkv/client"
	"github.com/spf13/cobra"
)

func (a *app) watchCommand() *cobra.Command {
	var o client.WatchOptions
	var prefix bool
	var maxEvents int
	cmd := &cobra.Command{
		Use:   "watch KEY | watch --prefix [PREFIX]",
		Short: "Print the changes of a key or of a prefix as they are applied",
		Long: `Print the changes of KEY, or with --prefix of every key with that prefix
(every key when none is given), in the order they are applied, until
interrupted or --max-events have been printed: PUT (the key and its value),
DELETE or EXPIRE (the key), each on its own lines as etcdctl watch prints
them, or one JSON object a line with -w json. It reconnects to another
member when its member goes, resuming after the last event printed.
--from-index starts at that raft index (the index of a read plus one to see
every change after it); events older than the members keep are an error.`,
		Example: `  raftkvctl watch greeting
  raftkvctl watch --prefix user/ --from-index 120
  raftkvctl -w json watch --prefix user/ --max-events 1`,
		Args: cobra.MaximumNArgs(1),
	}
	f := cmd.Flags()
	f.BoolVar(&prefix, "prefix", false, "watch every key with the prefix KEY")
	f.Uint64Var(&o.FromIndex, "from-index", 0, "the first raft index to print events of; 0: from now on")
	f.IntVar(&maxEvents, "max-events", 0, "exit after printing this many events; 0: run until interrupted")
	cmd.RunE = a.op(func(cmd *cobra.Command, args []string) error {
		switch {
		case len(args) == 0 && !prefix:
			return usagef("watch needs a KEY, or --prefix")
		case maxEvents < 0:
			return usagef("--max-events %d: want 0 or more", maxEvents)
		case a.writeOut == formatTable:
			return usagef("watch prints simple or json, not a table")
		}
		if prefix {
			if len(args) == 1 {
				o.Prefix = args[0]
			}
		} else {
			o.Key = args[0]
		}
		c, err := a.keyClient()
		if err != nil {
			return err
		}
		defer c.Close()
		events, err := c.Watch(a.ctx, o)
		if err != nil {
			return err
		}
		n := 0
		for ev := range events {
			if ev.Err != nil {
				return ev.Err
			}
			if err := a.printEvent(ev); err != nil {
				return err
			}
			if n++; maxEvents > 0 && n >= maxEvents {
				return nil
			}
		}
		if err := a.ctx.Err(); err != nil {
			return nil // interrupted: the usual way to stop
		}
		return errors.New("the watch ended")
	})
	return cmd
}

// printEvent prints one watch event.
func (a *app) printEvent(ev client.WatchEvent) error {
	if a.writeOut == formatJSON {
		j := struct {
			Type string `json:"type"`
			kvJSON
			ID string `json:"id"`
		}{Type: ev.Type, kvJSON: newKVJSON(ev.KV), ID: ev.ID}
		if ev.Type != client.EventPut {
			j.jsonValue = jsonValue{}
		}
		return printJSON(a.stdout, j)
	}
	var err error
	if ev.Type == client.EventPut {
		_, err = fmt.Fprintf(a.stdout, "PUT\n%s\n%s\n", ev.KV.Key, ev.KV.Value)
	} else {
		_, err = fmt.Fprintf(a.stdout, "%s\n%s\n", strings.ToUpper(ev.Type), ev.KV.Key)
	}
	return err
}
