package main

import (
	"errors"
	"fmt"
	"strconv"

	"github.com/raftkv/raftkv/client"
	"github.com/spf13/cobra"
)

// The data model's versions in raftkvctl's output, and the conditions of
// put and del (If-Match, If-None-Match).

// kvJSON is a key in -w json: its value and versions, as the HTTP API
// writes them.
type kvJSON struct {
	Key string `json:"key"`
	jsonValue
	CreateIndex uint64 `json:"create_index"`
	ModIndex    uint64 `json:"mod_index"`
	// TTL is the time to live the key was given, in seconds.
	TTL float64 `json:"ttl,omitempty"`
	// Index is the raft index a get was read at.
	Index uint64 `json:"index,omitempty"`
}

func newKVJSON(kv client.KeyValue) kvJSON {
	return kvJSON{Key: kv.Key, jsonValue: newJSONValue(kv.Value), CreateIndex: kv.CreateIndex, ModIndex: kv.ModIndex, TTL: kv.TTL.Seconds()}
}

var kvHeader = []string{"KEY", "VALUE", "CREATE INDEX", "MOD INDEX", "TTL"}

func kvRow(kv client.KeyValue) []string {
	ttl := ""
	if kv.TTL > 0 {
		ttl = kv.TTL.String()
	}
	return []string{kv.Key, printable(kv.Value), strconv.FormatUint(kv.CreateIndex, 10), strconv.FormatUint(kv.ModIndex, 10), ttl}
}

// conditions are the flags of a conditional put or del.
type conditions struct {
	ifMatch  uint64
	ifAbsent bool
}

func (c *conditions) flags(cmd *cobra.Command, put bool) {
	cmd.Flags().Uint64Var(&c.ifMatch, "if-match", 0, "apply only if the key is at this version (its mod index, as get -w json shows it)")
	if put {
		cmd.Flags().BoolVar(&c.ifAbsent, "if-absent", false, "apply only if the key does not exist")
	}
}

func (c *conditions) options(cmd *cobra.Command) ([]client.WriteOption, error) {
	matched := cmd.Flags().Changed("if-match")
	switch {
	case matched && c.ifAbsent:
		return nil, usagef("--if-match and --if-absent exclude each other")
	case matched:
		return []client.WriteOption{client.WithIfMatch(c.ifMatch)}, nil
	case c.ifAbsent:
		return []client.WriteOption{client.WithIfAbsent()}, nil
	}
	return nil, nil
}

// preconditionMessage says what a failed condition found.
func preconditionMessage(err error) error {
	var e *client.Error
	if !errors.Is(err, client.ErrPreconditionFailed) || !errors.As(err, &e) {
		return err
	}
	if e.ModIndex == 0 {
		return fmt.Errorf("precondition failed: key %q is absent; nothing changed", e.Key)
	}
	return fmt.Errorf("precondition failed: key %q is at version %d; nothing changed", e.Key, e.ModIndex)
}
