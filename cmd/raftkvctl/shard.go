package main

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/raftkv/raftkv/client"
	"github.com/raftkv/raftkv/shardmap"
	"github.com/spf13/cobra"
)

// The sharding verbs talk to the config group of a sharded deployment:
// --config-endpoints, or --endpoints when that is not given.

// groupJSON is one group in groups -w json.
type groupJSON struct {
	GID     uint64   `json:"gid"`
	Buckets []int    `json:"buckets"`
	Servers []string `json:"servers"`
}

func (a *app) groupsCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "groups",
		Short: "List the shard groups of the latest config: buckets and servers",
		Args:  cobra.NoArgs,
	}
	cmd.RunE = a.op(func(cmd *cobra.Command, _ []string) error {
		cfg, err := a.latestConfig()
		if err != nil {
			return err
		}
		switch a.writeOut {
		case formatJSON:
			out := struct {
				Version uint64      `json:"version"`
				Groups  []groupJSON `json:"groups"`
			}{Version: cfg.Version, Groups: []groupJSON{}}
			for _, gid := range cfg.GIDs() {
				out.Groups = append(out.Groups, groupJSON{gid, nonNilInts(cfg.BucketsOf(gid)), nonNil(cfg.Groups[gid])})
			}
			return printJSON(a.stdout, out)
		case formatTable:
			var rows [][]string
			for _, gid := range cfg.GIDs() {
				b := cfg.BucketsOf(gid)
				rows = append(rows, []string{strconv.FormatUint(gid, 10), strconv.Itoa(len(b)), ranges(b), strings.Join(cfg.Groups[gid], ",")})
			}
			return printTable(a.stdout, []string{"GROUP", "BUCKETS", "BUCKET IDS", "SERVERS"}, rows)
		}
		fmt.Fprintf(a.stdout, "config version %d\n", cfg.Version)
		for _, gid := range cfg.GIDs() {
			b := cfg.BucketsOf(gid)
			fmt.Fprintf(a.stdout, "group %d: %d buckets (%s), servers %s\n", gid, len(b), ranges(b), strings.Join(cfg.Groups[gid], ","))
		}
		return nil
	})
	return cmd
}

func (a *app) bucketsCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "buckets [KEY...]",
		Short: "Show which group serves each bucket, or the bucket and group of keys",
		Long: `Show which group serves each bucket of the latest config (runs of buckets
with the same owner; pinned buckets were placed by move), or, given keys, the
bucket and group of each key.`,
		Example: `  raftkvctl buckets
  raftkvctl buckets user/1 '{user/1}/cart'`,
	}
	cmd.RunE = a.op(func(cmd *cobra.Command, keys []string) error {
		cfg, err := a.latestConfig()
		if err != nil {
			return err
		}
		if len(keys) > 0 {
			return a.printKeyBuckets(cfg, keys)
		}
		type run struct {
			first, last int
			gid         uint64
			pinned      bool
		}
		var runs []run
		for b, gid := range cfg.Buckets {
			p := slices.Contains(cfg.Pinned, b)
			if n := len(runs); n > 0 && runs[n-1].gid == gid && runs[n-1].pinned == p && runs[n-1].last == b-1 {
				runs[n-1].last = b
				continue
			}
			runs = append(runs, run{b, b, gid, p})
		}
		switch a.writeOut {
		case formatJSON:
			return printJSON(a.stdout, struct {
				Version uint64   `json:"version"`
				Buckets []uint64 `json:"buckets"`
				Pinned  []int    `json:"pinned"`
			}{cfg.Version, cfg.Buckets, nonNilInts(cfg.Pinned)})
		case formatTable:
			var rows [][]string
			for _, r := range runs {
				rows = append(rows, []string{span(r.first, r.last), strconv.FormatUint(r.gid, 10), strconv.FormatBool(r.pinned)})
			}
			return printTable(a.stdout, []string{"BUCKETS", "GROUP", "PINNED"}, rows)
		}
		fmt.Fprintf(a.stdout, "config version %d, %d buckets\n", cfg.Version, len(cfg.Buckets))
		for _, r := range runs {
			pin := ""
			if r.pinned {
				pin = " (pinned)"
			}
			fmt.Fprintf(a.stdout, "%s: group %d%s\n", span(r.first, r.last), r.gid, pin)
		}
		return nil
	})
	return cmd
}

// printKeyBuckets prints each key's bucket and the group serving it.
func (a *app) printKeyBuckets(cfg shardmap.Config, keys []string) error {
	type keyJSON struct {
		Key    string `json:"key"`
		Bucket int    `json:"bucket"`
		GID    uint64 `json:"gid"`
	}
	var out []keyJSON
	for _, k := range keys {
		b := shardmap.BucketOf(k, len(cfg.Buckets))
		out = append(out, keyJSON{k, b, cfg.Owner(b)})
	}
	switch a.writeOut {
	case formatJSON:
		return printJSON(a.stdout, struct {
			Version uint64    `json:"version"`
			Keys    []keyJSON `json:"keys"`
		}{cfg.Version, out})
	case formatTable:
		var rows [][]string
		for _, k := range out {
			rows = append(rows, []string{k.Key, strconv.Itoa(k.Bucket), strconv.FormatUint(k.GID, 10)})
		}
		return printTable(a.stdout, []string{"KEY", "BUCKET", "GROUP"}, rows)
	}
	for _, k := range out {
		fmt.Fprintf(a.stdout, "%s: bucket %d, group %d\n", k.Key, k.Bucket, k.GID)
	}
	return nil
}

func (a *app) joinCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "join GID URL[,URL...]",
		Short: "Add shard group GID with its members' client URLs to the config",
		Long: `Add shard group GID, whose members serve at the given client URLs, to the
config (or give a group already in it new URLs); the buckets are rebalanced
with the fewest moves. A shard group joins by itself when it first starts.`,
		Example: `  raftkvctl --config-endpoints http://127.0.0.1:6080 join 2 http://127.0.0.1:7180,http://127.0.0.1:7280`,
		Args:    cobra.MinimumNArgs(2),
	}
	cmd.RunE = a.op(func(cmd *cobra.Command, args []string) error {
		gid, err := parseID("group id", args[0])
		if err != nil {
			return err
		}
		var urls []string
		for _, u := range args[1:] {
			urls = append(urls, splitList(u)...)
		}
		c, err := a.configClient()
		if err != nil {
			return err
		}
		defer c.Close()
		cfg, err := c.Join(a.ctx, map[uint64][]string{gid: urls})
		if err != nil {
			return notConfigGroup(err)
		}
		return a.printConfigChange(cfg, fmt.Sprintf("Group %d joined", gid))
	})
	return cmd
}

func (a *app) leaveCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "leave GID...",
		Short: "Remove shard groups from the config; their buckets go to the others",
		Args:  cobra.MinimumNArgs(1),
	}
	cmd.RunE = a.op(func(cmd *cobra.Command, args []string) error {
		var gids []uint64
		for _, s := range args {
			gid, err := parseID("group id", s)
			if err != nil {
				return err
			}
			gids = append(gids, gid)
		}
		c, err := a.configClient()
		if err != nil {
			return err
		}
		defer c.Close()
		cfg, err := c.Leave(a.ctx, gids...)
		if err != nil {
			return notConfigGroup(err)
		}
		return a.printConfigChange(cfg, fmt.Sprintf("Group %s left", strings.Join(args, ", ")))
	})
	return cmd
}

func (a *app) moveCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "move BUCKET GID",
		Short: "Place bucket BUCKET on group GID, pinned there",
		Args:  cobra.ExactArgs(2),
	}
	cmd.RunE = a.op(func(cmd *cobra.Command, args []string) error {
		bucket, err := strconv.Atoi(strings.TrimSpace(args[0]))
		if err != nil || bucket < 0 {
			return usagef("bucket %q: want a bucket number (0 or more)", args[0])
		}
		gid, err := parseID("group id", args[1])
		if err != nil {
			return err
		}
		c, err := a.configClient()
		if err != nil {
			return err
		}
		defer c.Close()
		cfg, err := c.Move(a.ctx, bucket, gid)
		if err != nil {
			return notConfigGroup(err)
		}
		return a.printConfigChange(cfg, fmt.Sprintf("Bucket %d moved to group %d", bucket, gid))
	})
	return cmd
}

// latestConfig reads the config group's latest config.
func (a *app) latestConfig() (shardmap.Config, error) {
	c, err := a.configClient()
	if err != nil {
		return shardmap.Config{}, err
	}
	defer c.Close()
	cfg, err := c.Query(a.ctx, -1)
	return cfg, notConfigGroup(err)
}

// notConfigGroup explains the answer an endpoint outside any config
// group gives a sharding verb, which reads /config and posts to
// /config/join, /config/leave and /config/move. At a member of a plain
// group GET /config is a read of the key "config" (404 key_not_found) and
// a POST /<path> a membership change (400); at a shard group's member the
// key may be another group's (421 wrong_group); a router serves none of
// them (404 not_found). Other errors it returns as they are.
func notConfigGroup(err error) error {
	var ce *client.Error
	if !errors.As(err, &ce) || ce.Endpoint == "" {
		return err
	}
	const hint = "the sharding verbs go to a sharded deployment's config group: --config-endpoints, or --endpoints when that is not given"
	switch {
	case ce.Code == "not_found" && strings.HasSuffix(ce.Message, "not by the router"):
		return fmt.Errorf("%s: %s is a router, not a member of a config group; %s", ce.Op, ce.Endpoint, hint)
	case ce.Op == "config" && (ce.Code == client.CodeKeyNotFound || ce.Code == client.CodeWrongGroup),
		ce.Code == client.CodeBadRequest && strings.HasPrefix(ce.Message, "POST /<id>"):
		return fmt.Errorf("%s: %s is not a member of a config group (it answered %d %s); %s",
			ce.Op, ce.Endpoint, ce.Status, ce.Code, hint)
	}
	return err
}

// printConfigChange prints the config a join, leave or move made.
func (a *app) printConfigChange(cfg shardmap.Config, sentence string) error {
	switch a.writeOut {
	case formatJSON:
		return printJSON(a.stdout, cfg)
	case formatTable:
		var rows [][]string
		for _, gid := range cfg.GIDs() {
			b := cfg.BucketsOf(gid)
			rows = append(rows, []string{strconv.FormatUint(cfg.Version, 10), strconv.FormatUint(gid, 10), strconv.Itoa(len(b)), ranges(b)})
		}
		return printTable(a.stdout, []string{"VERSION", "GROUP", "BUCKETS", "BUCKET IDS"}, rows)
	}
	_, err := fmt.Fprintf(a.stdout, "%s: config version %d\n", sentence, cfg.Version)
	return err
}

// ranges writes sorted bucket numbers as runs: "0-3,7,9-10".
func ranges(b []int) string {
	var parts []string
	for i := 0; i < len(b); {
		j := i
		for j+1 < len(b) && b[j+1] == b[j]+1 {
			j++
		}
		if j == i {
			parts = append(parts, strconv.Itoa(b[i]))
		} else {
			parts = append(parts, fmt.Sprintf("%d-%d", b[i], b[j]))
		}
		i = j + 1
	}
	return strings.Join(parts, ",")
}

// span is the run of buckets first to last: "4" or "4-9".
func span(first, last int) string {
	if first == last {
		return strconv.Itoa(first)
	}
	return fmt.Sprintf("%d-%d", first, last)
}

func nonNilInts(s []int) []int {
	if s == nil {
		return []int{}
	}
	return s
}
