package main

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/raftkv/raftkv/client"
	"github.com/spf13/cobra"
)

// groupHash is one raft group's hash check, as hashkv prints it.
type groupHash struct {
	// Group is the shard group's id; 0 for the group of --endpoints, and
	// for the config group of a sharded deployment.
	Group   uint64       `json:"group"`
	Config  bool         `json:"config,omitempty"`
	Index   uint64       `json:"index"`
	Members []memberHash `json:"members"`
	Problem string       `json:"problem,omitempty"`
}

// memberHash is one member's row.
type memberHash struct {
	ID       uint64 `json:"id"`
	Endpoint string `json:"endpoint,omitempty"`
	Keys     int    `json:"keys"`
	Hash     string `json:"hash,omitempty"`
	Error    string `json:"error,omitempty"`
}

func (a *app) hashkvCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "hashkv",
		Short: "Check that every member holds the same state: each one's hash at one raft index",
		Long: `Start a hash check in the group of --endpoints: a request that changes
nothing goes through the raft log, and every member, as it applies it, hashes
its whole state (keys, values, versions and TTLs, the writers' dedup tables,
a shard member's buckets and configs). Then ask every member for its hash at
that index and print them. Members that applied the same log must agree, so
writes may go on meanwhile. With --config-endpoints alone, check the config
group and then every shard group of the latest config.

The exit status is 1 when members disagree, or a member gave no hash (it is
down, or a snapshot took it past the check's index). Starting a check is an
admin request: with client certificate checks on, it needs an admin
certificate, as membership changes do.`,
		Example: `  raftkvctl hashkv
  raftkvctl -w table hashkv
  raftkvctl --config-endpoints http://127.0.0.1:7091 hashkv`,
		Args: cobra.NoArgs,
	}
	cmd.RunE = a.op(func(cmd *cobra.Command, _ []string) error {
		c, err := a.groupClient(cmd)
		if err != nil {
			return err
		}
		defer c.Close()
		var checks []groupHash
		hc, err := c.CheckHashes(a.ctx)
		if err != nil {
			return err
		}
		checks = append(checks, rowsOf(0, c.Sharded(), hc))
		if c.Sharded() {
			cfg, err := c.Query(a.ctx, -1)
			if err != nil {
				return err
			}
			for _, gid := range cfg.GIDs() {
				g, err := a.newClient(client.Config{Endpoints: cfg.Groups[gid]})
				if err != nil {
					return err
				}
				hc, err := g.CheckHashes(a.ctx)
				g.Close()
				if err != nil {
					checks = append(checks, groupHash{Group: gid, Problem: message(err)})
					continue
				}
				checks = append(checks, rowsOf(gid, false, hc))
			}
		}
		if err := a.printHashes(checks); err != nil {
			return err
		}
		var problems []string
		for _, g := range checks {
			if g.Problem != "" {
				problems = append(problems, g.prefix()+g.Problem)
			}
		}
		if len(problems) > 0 {
			return errors.New(strings.Join(problems, "; "))
		}
		return nil
	})
	return cmd
}

// rowsOf is hc as hashkv prints it.
func rowsOf(gid uint64, config bool, hc client.HashCheck) groupHash {
	g := groupHash{Group: gid, Config: config, Index: hc.Index}
	if p := hc.Problem(); p != nil {
		g.Problem = p.Error()
	}
	for _, m := range hc.Members {
		r := memberHash{ID: m.ID, Endpoint: m.Endpoint}
		if m.Err != nil {
			r.Error = message(m.Err)
		} else {
			r.Keys, r.Hash = m.Hash.Keys, m.Hash.Hash
		}
		g.Members = append(g.Members, r)
	}
	return g
}

// name names g in a sentence: "" for the group of --endpoints.
func (g groupHash) name() string {
	switch {
	case g.Config:
		return "config group"
	case g.Group != 0:
		return "group " + strconv.FormatUint(g.Group, 10)
	}
	return ""
}

// prefix is g's name with ": ", for a line that begins with it.
func (g groupHash) prefix() string {
	if n := g.name(); n != "" {
		return n + ": "
	}
	return ""
}

func (a *app) printHashes(checks []groupHash) error {
	switch a.writeOut {
	case formatJSON:
		ok := true
		for _, g := range checks {
			ok = ok && g.Problem == ""
		}
		return printJSON(a.stdout, struct {
			OK     bool        `json:"ok"`
			Groups []groupHash `json:"groups"`
		}{ok, checks})
	case formatTable:
		var rows [][]string
		for _, g := range checks {
			group := g.name() // "" for the group of --endpoints
			if g.Config {
				group = "config"
			} else if g.Group != 0 {
				group = strconv.FormatUint(g.Group, 10)
			}
			if len(g.Members) == 0 {
				rows = append(rows, []string{group, "", "", "", "", "", g.Problem})
			}
			for _, m := range g.Members {
				rows = append(rows, []string{group, m.Endpoint, strconv.FormatUint(m.ID, 10), strconv.FormatUint(g.Index, 10),
					keysCell(m), m.Hash, m.Error})
			}
		}
		return printTable(a.stdout, []string{"GROUP", "ENDPOINT", "ID", "INDEX", "KEYS", "HASH", "ERRORS"}, rows)
	}
	for _, g := range checks {
		verdict := "members agree"
		if g.Problem != "" {
			verdict = g.Problem
		}
		if n := g.name(); n != "" {
			fmt.Fprintf(a.stdout, "%s, ", n)
		}
		fmt.Fprintf(a.stdout, "index %d: %s\n", g.Index, verdict)
		for _, m := range g.Members {
			if m.Error != "" {
				fmt.Fprintf(a.stdout, "  member %d (%s): %s\n", m.ID, m.Endpoint, m.Error)
				continue
			}
			fmt.Fprintf(a.stdout, "  member %d (%s): %s, %d keys\n", m.ID, m.Endpoint, m.Hash, m.Keys)
		}
	}
	return nil
}

// keysCell is a member's key count, empty when it gave no hash.
func keysCell(m memberHash) string {
	if m.Error != "" {
		return ""
	}
	return strconv.Itoa(m.Keys)
}
