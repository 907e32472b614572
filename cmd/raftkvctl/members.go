package main

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/raftkv/raftkv/client"
	"github.com/spf13/cobra"
)

func (a *app) membersCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:     "members",
		Aliases: []string{"member"},
		Short:   "List, add, remove, promote and update the members of a raft group",
		Long: `List, add, remove, promote and update the members of the raft group of --endpoints
(of the config group when only --config-endpoints is given). A change returns
once it is applied; the leader applies one change at a time.`,
	}
	cmd.AddCommand(a.membersListCommand(), a.membersAddCommand(), a.membersRemoveCommand(), a.membersPromoteCommand(),
		a.membersUpdateCommand())
	return parent(cmd)
}

// memberJSON is one member in -w json.
type memberJSON struct {
	ID         uint64   `json:"id"`
	Started    bool     `json:"started"`
	PeerURLs   []string `json:"peerURLs"`
	ClientURLs []string `json:"clientURLs"`
	IsLearner  bool     `json:"isLearner"`
}

func (a *app) membersListCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List the members: id, started, peer URLs, client URLs, learner",
		Long: `List the members as one member reports them: id, whether it has started
(published its client URL; a member added but not yet started has none), its
peer and client URLs, and whether it is a learner.`,
		Args: cobra.NoArgs,
	}
	cmd.RunE = a.op(func(cmd *cobra.Command, _ []string) error {
		c, err := a.groupClient(cmd)
		if err != nil {
			return err
		}
		defer c.Close()
		st, err := a.memberStatus(c, "members")
		if err != nil {
			return err
		}
		members := slices.Clone(st.Members)
		slices.SortFunc(members, func(x, y client.Member) int { return cmpUint(x.ID, y.ID) })
		switch a.writeOut {
		case formatJSON:
			out := struct {
				Leader  uint64       `json:"leader"`
				Members []memberJSON `json:"members"`
			}{Leader: st.Leader, Members: []memberJSON{}}
			for _, m := range members {
				out.Members = append(out.Members, memberJSON{m.ID, len(m.ClientURLs) > 0, nonNil(m.PeerURLs), nonNil(m.ClientURLs), m.IsLearner})
			}
			return printJSON(a.stdout, out)
		case formatTable:
			var rows [][]string
			for _, m := range members {
				rows = append(rows, []string{strconv.FormatUint(m.ID, 10), started(m), strings.Join(m.PeerURLs, ","),
					strings.Join(m.ClientURLs, ","), strconv.FormatBool(m.IsLearner)})
			}
			return printTable(a.stdout, []string{"ID", "STATUS", "PEER URLS", "CLIENT URLS", "IS LEARNER"}, rows)
		}
		for _, m := range members {
			fmt.Fprintf(a.stdout, "%d, %s, %s, %s, %t\n", m.ID, started(m), strings.Join(m.PeerURLs, ","),
				strings.Join(m.ClientURLs, ","), m.IsLearner)
		}
		return nil
	})
	return cmd
}

func started(m client.Member) string {
	if len(m.ClientURLs) == 0 {
		return "unstarted"
	}
	return "started"
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func cmpUint(x, y uint64) int {
	switch {
	case x < y:
		return -1
	case x > y:
		return 1
	}
	return 0
}

// parseID reads a member or group id: a positive integer.
func parseID(what, s string) (uint64, error) {
	id, err := strconv.ParseUint(strings.TrimSpace(s), 10, 64)
	if err != nil || id == 0 {
		return 0, usagef("%s %q: want a positive integer", what, s)
	}
	return id, nil
}

func (a *app) membersAddCommand() *cobra.Command {
	var learner bool
	cmd := &cobra.Command{
		Use:   "add [--learner] ID PEER_URL",
		Short: "Add member ID at PEER_URL, then start it with --join",
		Long: `Add member ID at PEER_URL (http://host:port). Start the new member afterwards
with --join and the whole --cluster list. A learner receives the log but does
not vote until promoted (members promote ID). Ids are never reused.`,
		Example: `  raftkvctl members add --learner 4 http://127.0.0.1:42379`,
		Args:    cobra.ExactArgs(2),
	}
	cmd.Flags().BoolVar(&learner, "learner", false, "add the member as a learner (no vote until promoted)")
	cmd.RunE = a.op(func(cmd *cobra.Command, args []string) error {
		as := "a voting member"
		if learner {
			as = "a learner"
		}
		return a.changeMember(cmd, args[0], "added", "Member %d added to the cluster as "+as, func(c *client.Client, id uint64) error {
			return c.AddMember(a.ctx, id, args[1], learner)
		})
	})
	return cmd
}

func (a *app) membersUpdateCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "update ID PEER_URL",
		Short: "Give member ID the peer URL PEER_URL, then restart it listening there",
		Long: `Give member ID the peer URL PEER_URL (http://host:port), as etcd's member
update: the other members send to it there from then on. Restart member ID
afterwards with PEER_URL in its place in --cluster, and change that entry
on the other members' command lines too (a member's command line comes
before the member list when it restarts).`,
		Example: `  raftkvctl members update 3 http://127.0.0.1:33379`,
		Args:    cobra.ExactArgs(2),
	}
	cmd.RunE = a.op(func(cmd *cobra.Command, args []string) error {
		return a.changeMember(cmd, args[0], "updated", "Member %d updated: peer URL "+strings.ReplaceAll(args[1], "%", "%%"), func(c *client.Client, id uint64) error {
			return c.UpdateMember(a.ctx, id, args[1])
		})
	})
	return cmd
}

func (a *app) membersRemoveCommand() *cobra.Command {
	return a.memberChangeCommand("remove ID", "Remove member ID; it stops when it applies its removal",
		"removed", "Member %d removed from the cluster", (*client.Client).RemoveMember)
}

func (a *app) membersPromoteCommand() *cobra.Command {
	return a.memberChangeCommand("promote ID", "Promote learner ID to a voting member once it has caught up",
		"promoted", "Member %d promoted to a voting member", (*client.Client).PromoteMember)
}

// memberChangeCommand is a command that makes one membership change of
// the member its one argument names, with do, and prints it as change
// (-w json) or sentence (a format of the id).
func (a *app) memberChangeCommand(use, short, change, sentence string, do func(*client.Client, context.Context, uint64) error) *cobra.Command {
	cmd := &cobra.Command{Use: use, Short: short, Args: cobra.ExactArgs(1)}
	cmd.RunE = a.op(func(cmd *cobra.Command, args []string) error {
		return a.changeMember(cmd, args[0], change, sentence, func(c *client.Client, id uint64) error {
			return do(c, a.ctx, id)
		})
	})
	return cmd
}

// changeMember makes one membership change of the member idText names,
// with do on the group's client, and prints it as change (-w json) or
// sentence (a format of the id).
func (a *app) changeMember(cmd *cobra.Command, idText, change, sentence string, do func(*client.Client, uint64) error) error {
	id, err := parseID("member id", idText)
	if err != nil {
		return err
	}
	c, err := a.groupClient(cmd)
	if err != nil {
		return err
	}
	defer c.Close()
	if err := do(c, id); err != nil {
		return err
	}
	return a.printChange(id, change, fmt.Sprintf(sentence, id))
}

// printChange prints an applied membership change of member id.
func (a *app) printChange(id uint64, change, sentence string) error {
	switch a.writeOut {
	case formatJSON:
		return printJSON(a.stdout, struct {
			ID     uint64 `json:"id"`
			Change string `json:"change"`
		}{id, change})
	case formatTable:
		return printTable(a.stdout, []string{"ID", "CHANGE"}, [][]string{{strconv.FormatUint(id, 10), change}})
	}
	_, err := fmt.Fprintln(a.stdout, sentence)
	return err
}

func (a *app) leaderCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "leader",
		Short: "Leadership of a raft group",
	}
	transfer := &cobra.Command{
		Use:   "transfer [ID]",
		Short: "Hand leadership to member ID (default: the most caught-up voter)",
		Long: `Hand leadership to member ID, or without ID to the most caught-up voter, and
print the new leader once the member asked sees it.`,
		Args: cobra.MaximumNArgs(1),
	}
	transfer.RunE = a.op(func(cmd *cobra.Command, args []string) error {
		var to uint64
		if len(args) == 1 {
			var err error
			if to, err = parseID("member id", args[0]); err != nil {
				return err
			}
		}
		c, err := a.groupClient(cmd)
		if err != nil {
			return err
		}
		defer c.Close()
		leader, err := c.TransferLeader(a.ctx, to)
		if err != nil {
			return err
		}
		switch a.writeOut {
		case formatJSON:
			return printJSON(a.stdout, struct {
				Leader uint64 `json:"leader"`
			}{leader})
		case formatTable:
			return printTable(a.stdout, []string{"LEADER"}, [][]string{{strconv.FormatUint(leader, 10)}})
		}
		_, err = fmt.Fprintf(a.stdout, "Leadership transferred to member %d\n", leader)
		return err
	})
	cmd.AddCommand(transfer)
	return parent(cmd)
}
