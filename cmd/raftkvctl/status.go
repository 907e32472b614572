package main

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/raftkv/raftkv/client"
	"github.com/raftkv/raftkv/internal/buildinfo"
	"github.com/raftkv/raftkv/internal/units"
	"github.com/spf13/cobra"
)

// memberStatus is one row of the status table.
type memberStatus struct {
	Endpoint      string `json:"endpoint"`
	ID            uint64 `json:"id"`
	IsLeader      bool   `json:"isLeader"`
	IsLearner     bool   `json:"isLearner"`
	Term          uint64 `json:"term"`
	CommitIndex   uint64 `json:"commitIndex"`
	AppliedIndex  uint64 `json:"appliedIndex"`
	SnapshotIndex uint64 `json:"snapshotIndex"`
	// Lag is how many entries the leader has committed that this member
	// has not applied yet.
	Lag uint64 `json:"lag"`
	// Version is the member's binary: its version, revision and
	// "modified" (empty from members that do not report it).
	Version string `json:"version,omitempty"`
	// Level is the feature level the member's binary speaks, and
	// ClusterLevel the one its group runs at (0 from members before
	// levels).
	Level        uint32 `json:"level"`
	ClusterLevel uint32 `json:"clusterLevel"`
	// DataBytes is the size of the keys the member holds, as its space
	// quota counts them, and QuotaBytes that quota (0: none).
	DataBytes  int64  `json:"dataBytes"`
	QuotaBytes int64  `json:"quotaBytes"`
	Error      string `json:"error,omitempty"`
}

func (a *app) statusCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show every member: leader, term, commit, applied and snapshot index, lag, version, level",
		Long: `Ask one member for the member list, then every member for its status, and
show for each its id, whether it leads or is a learner, its term, its commit,
applied and snapshot index, its lag (the entries the leader has committed
that it has not applied), the binary it runs (version and VCS revision,
as its --version prints them), the feature level that binary speaks, and
the cluster level its group runs at (operations of a higher level are
refused until every member speaks it). A member that does not answer is
shown with the error, and makes the exit status 1.`,
		Args: cobra.NoArgs,
	}
	cmd.RunE = a.op(func(cmd *cobra.Command, _ []string) error {
		c, err := a.groupClient(cmd)
		if err != nil {
			return err
		}
		defer c.Close()
		first, err := a.memberStatus(c, "status")
		if err != nil {
			return err
		}
		rows := a.memberStatuses(c, first)
		var failed []string
		for _, r := range rows {
			if r.Error != "" {
				failed = append(failed, fmt.Sprintf("member %d: %s", r.ID, r.Error))
			}
		}
		if err := a.printStatus(rows); err != nil {
			return err
		}
		if len(failed) > 0 {
			return fmt.Errorf("%d of %d members did not answer: %s", len(failed), len(rows), strings.Join(failed, "; "))
		}
		return nil
	})
	return cmd
}

// memberStatus is c.Status, refused when a router answered: a router has
// no raft group, so no members to list.
func (a *app) memberStatus(c *client.Client, verb string) (client.Status, error) {
	st, err := c.Status(a.ctx)
	if err == nil && st.Role != "" {
		err = fmt.Errorf("%s: %s is a %s, not a raft member; give --endpoints the members of one group (raftkvctl groups lists each group's)",
			verb, st.Endpoint, st.Role)
	}
	return st, err
}

// memberStatuses asks every member of first's list for its status, at
// once, and computes each one's lag behind the leader's commit index.
func (a *app) memberStatuses(c *client.Client, first client.Status) []memberStatus {
	members := slices.Clone(first.Members)
	slices.SortFunc(members, func(x, y client.Member) int { return cmpUint(x.ID, y.ID) })
	rows := make([]memberStatus, len(members))
	sts := make([]*client.Status, len(members))
	var wg sync.WaitGroup
	for i, m := range members {
		rows[i] = memberStatus{ID: m.ID, IsLearner: m.IsLearner}
		if len(m.ClientURLs) == 0 {
			rows[i].Error = "not started: it has published no client URL"
			continue
		}
		rows[i].Endpoint = m.ClientURLs[0]
		wg.Go(func() {
			st, err := c.StatusOf(a.ctx, m.ClientURLs[0])
			if err != nil {
				rows[i].Error = message(err)
				return
			}
			sts[i] = &st
		})
	}
	wg.Wait()
	// The leader's commit index is the reference; without the leader's
	// answer, the highest commit index any member reported.
	var commit uint64
	for _, st := range sts {
		if st != nil && st.ID == st.Leader {
			commit = st.CommitIndex
			break
		}
		if st != nil {
			commit = max(commit, st.CommitIndex)
		}
	}
	for i, st := range sts {
		if st == nil {
			continue
		}
		r := &rows[i]
		r.IsLeader = st.ID == st.Leader
		r.Term, r.CommitIndex, r.AppliedIndex, r.SnapshotIndex = st.Term, st.CommitIndex, st.AppliedIndex, st.SnapshotIndex
		if commit > st.AppliedIndex {
			r.Lag = commit - st.AppliedIndex
		}
		if st.Build.Version != "" {
			r.Version = buildinfo.Info(st.Build).Short()
		}
		r.Level, r.ClusterLevel = st.Build.Level, st.ClusterLevel
		r.DataBytes, r.QuotaBytes = st.DataBytes, st.QuotaBytes
	}
	return rows
}

func (a *app) printStatus(rows []memberStatus) error {
	if a.writeOut == formatJSON {
		out := struct {
			Leader  uint64         `json:"leader"`
			Members []memberStatus `json:"members"`
		}{Members: rows}
		for _, r := range rows {
			if r.IsLeader {
				out.Leader = r.ID
			}
		}
		return printJSON(a.stdout, out)
	}
	cells := func(r memberStatus) []string {
		u := func(n uint64) string { return strconv.FormatUint(n, 10) }
		if r.Error != "" {
			return []string{r.Endpoint, u(r.ID), "", strconv.FormatBool(r.IsLearner), "", "", "", "", "", "", "", "", "", "", r.Error}
		}
		quota := "none"
		if r.QuotaBytes > 0 {
			quota = units.Bytes(r.QuotaBytes)
		}
		return []string{r.Endpoint, u(r.ID), strconv.FormatBool(r.IsLeader), strconv.FormatBool(r.IsLearner),
			u(r.Term), u(r.CommitIndex), u(r.AppliedIndex), u(r.SnapshotIndex), u(r.Lag), r.Version,
			u(uint64(r.Level)), u(uint64(r.ClusterLevel)), units.Bytes(r.DataBytes), quota, ""}
	}
	if a.writeOut == formatTable {
		var table [][]string
		for _, r := range rows {
			table = append(table, cells(r))
		}
		return printTable(a.stdout, []string{"ENDPOINT", "ID", "IS LEADER", "IS LEARNER", "TERM", "COMMIT INDEX",
			"APPLIED INDEX", "SNAPSHOT INDEX", "LAG", "VERSION", "LEVEL", "CLUSTER LEVEL", "DATA SIZE", "QUOTA", "ERRORS"}, table)
	}
	for _, r := range rows {
		c := cells(r)
		if c[len(c)-1] == "" {
			c = c[:len(c)-1] // no error
		}
		if _, err := fmt.Fprintln(a.stdout, strings.Join(c, ", ")); err != nil {
			return err
		}
	}
	return nil
}
