package shardgroup

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/raftkv/raftkv/httpapi"
	"github.com/raftkv/raftkv/shardmap"
)

// A shard group restored from a backup holds its buckets as of the
// backup's config version. The version fences of the migration steps
// keep two groups from serving one bucket only while every group's state
// moves forward: a bucket another group pulled from this one after the
// backup, at a later version, is served there with the writes made
// since, and the restored group, back at the older version, would serve
// it again without them, take writes that are then lost, and wait for
// ever for pulls that already happened. So a restored group's first start
// reads the configs made since its backup (ConfigsAfter) and asks each
// group it moved a bucket to or from, then or since, whether it carried
// the move out (AskGroupState, CheckRestored).

// ConfigsAfter asks the config group at configEndpoints for its latest
// config and every config after version v up to it, oldest first (none
// when the latest is v or older). It tries each endpoint in turn, with a
// pause between rounds, until every config is read or ctx ends; each
// request is bounded by timeout.
func ConfigsAfter(ctx context.Context, client *http.Client, configEndpoints []string, v uint64, timeout time.Duration) (latest shardmap.Config, after []shardmap.Config, err error) {
	if len(configEndpoints) == 0 {
		return shardmap.Config{}, nil, errors.New("shardgroup: no config endpoints")
	}
	if client == nil {
		client = http.DefaultClient
	}
	eps := newEndpoints(configEndpoints)
	get := func(version int64) (shardmap.Config, error) {
		return untilAnswered(ctx, eps, func() (shardmap.Config, error) {
			return queryConfig(ctx, client, eps, version, 0, timeout)
		})
	}
	if latest, err = get(-1); err != nil {
		return shardmap.Config{}, nil, err
	}
	for version := v + 1; version < latest.Version; version++ {
		c, err := get(int64(version))
		if err != nil {
			return shardmap.Config{}, nil, err
		}
		if c.Version != version {
			return shardmap.Config{}, nil, fmt.Errorf("shardgroup: config %d asked for, %d answered", version, c.Version)
		}
		after = append(after, c)
	}
	if latest.Version > v {
		after = append(after, latest)
	}
	return latest, after, nil
}

// GroupState is a shard group's own account of where it is: the config
// version it applied, its buckets in flight, and the buckets that config
// gives it (Serving, Pulling or GCing), as its members' GET /shard/state
// says them.
type GroupState struct {
	Version            uint64
	Pulling, BePulling []int
	Owned              []int
	// Digest is the applied config's shardmap.Config.Digest; "" from a
	// binary that does not report it.
	Digest string
}

// CheckRestored reports why shard group gid, restored with its state st
// (at config st.Config), must not serve: nil when the config group is not
// behind the backup, no group is past the config group, and no move of a
// bucket between this group and another one has been carried out by the
// other group, as state says. The moves are those under way in st (a
// bucket Pulling from, or BePulling to, another group at st's config) and
// those of the configs after it (after, oldest first, through latest,
// the config group's newest). A move the other group has not carried out
// yet (it is before that config, or at it with the bucket still Pulling
// from this group or BePulling to it) is finished by the restored group
// as any move is; one it has carried out would leave a bucket served by
// both groups, or one this group waits for ever to pull or to be pulled.
// Moves only between other groups, or to or from no group, leave the
// restored group's state whole. state(k, true) must say where group k
// is, and CheckRestored refuses when it cannot; state(k, false) is asked
// of the groups of latest, only to see whether one is past the config
// group, and one that cannot say is passed over.
func CheckRestored(gid uint64, st ShardState, latest shardmap.Config, after []shardmap.Config, state func(gid uint64, needed bool) (GroupState, error)) error {
	at := st.Config
	if latest.Version < at.Version {
		return fmt.Errorf("the backup is of config %d, but the config group's latest is %d: restore the config group from a backup of the same moment too", at.Version, latest.Version)
	}
	type answer struct {
		st  GroupState
		err error
	}
	asked := map[uint64]answer{}
	ask := func(k uint64, needed bool) (GroupState, error) {
		a, ok := asked[k]
		if !ok || (needed && a.err != nil) {
			a.st, a.err = state(k, needed)
			asked[k] = a
		}
		return a.st, a.err
	}
	// move judges the move of bucket b from group from to group to at
	// config c.
	move := func(b int, from, to uint64, c uint64) error {
		other := from
		if other == gid {
			other = to
		}
		if other == 0 {
			return nil // no other group ever held it
		}
		ks, err := ask(other, true)
		if err != nil {
			return fmt.Errorf("the backup is of config %d; config %d moves bucket %d from %s to %s, and group %d cannot say whether it did: %v", at.Version, c, b, groupName(from), groupName(to), other, err)
		}
		inFlight := ks.Pulling
		if from == other {
			inFlight = ks.BePulling
		}
		if ks.Version > c || (ks.Version == c && !slices.Contains(inFlight, b)) {
			return fmt.Errorf("the backup is of config %d; config %d moves bucket %d from %s to %s, and group %d (at config %d) has done so, so it may hold writes the backup lacks or have deleted the bucket: restore every shard group and the config group from backups of one moment", at.Version, c, b, groupName(from), groupName(to), other, ks.Version)
		}
		return nil
	}
	for b, status := range st.Status {
		var err error
		switch status {
		case Pulling:
			err = move(b, st.Prev.Owner(b), gid, at.Version)
		case BePulling:
			err = move(b, gid, at.Owner(b), at.Version)
		}
		if err != nil {
			return err
		}
	}
	prev := at
	for _, c := range after {
		for b := range c.Buckets {
			from, to := prev.Owner(b), c.Owner(b)
			if from == to || (from != gid && to != gid) {
				continue
			}
			if err := move(b, from, to, c.Version); err != nil {
				return err
			}
		}
		prev = c
	}
	for _, k := range latest.GIDs() {
		if k == gid {
			continue
		}
		if ks, err := ask(k, false); err == nil && ks.Version > latest.Version {
			return fmt.Errorf("group %d is at config %d, past the config group's latest, %d: restore the config group from a backup as recent as every group's", k, ks.Version, latest.Version)
		}
	}
	return nil
}

// CheckConfigRestored reports why a config group restored with history h
// must not serve: a group it lists (in any config) is past h's latest
// config, or holds other buckets than h's config of its version gives it.
// That group took configs h lacks, and the configs the restored config
// group would make next would reuse their versions with other layouts:
// groups at or before h's latest would take them, and two groups at one
// version of two histories could each serve a bucket. state(gid) says
// where group gid is; a group that cannot say (stopped, or restored too
// and not started yet) is passed over. unanswered lists them.
func CheckConfigRestored(h shardmap.History, state func(gid uint64) (GroupState, error)) (unanswered []uint64, err error) {
	for _, gid := range GroupsIn(h) {
		gs, err := state(gid)
		if err != nil {
			unanswered = append(unanswered, gid)
			continue
		}
		switch past, other := divergence(gid, gs, h.Configs); {
		case past:
			return unanswered, fmt.Errorf("group %d is at config %d, past the backup's latest, %d: restore every shard group and the config group from backups of one moment", gid, gs.Version, h.Latest().Version)
		case other:
			return unanswered, fmt.Errorf("group %d, at config %d, holds another config %d than the backup's, so it took configs of another history: restore every shard group and the config group from backups of one moment", gid, gs.Version, gs.Version)
		}
	}
	return unanswered, nil
}

// GroupsIn lists, in ascending order, every group a config of h lists.
func GroupsIn(h shardmap.History) []uint64 {
	gids := map[uint64]bool{}
	for _, c := range h.Configs {
		for gid := range c.Groups {
			gids[gid] = true
		}
	}
	return slices.Sorted(maps.Keys(gids))
}

// ServersIn lists the client URLs of group gid in the newest config of h
// that lists it.
func ServersIn(h shardmap.History, gid uint64) []string {
	for i := len(h.Configs) - 1; i >= 0; i-- {
		if s, ok := h.Configs[i].Groups[gid]; ok {
			return s
		}
	}
	return nil
}

// groupName names group gid in CheckRestored's sentence.
func groupName(gid uint64) string {
	if gid == 0 {
		return "no group"
	}
	return fmt.Sprintf("group %d", gid)
}

// AskGroupState asks the members of group gid at servers (client URLs)
// for their group's state, each bounded by timeout, and returns the most
// advanced account among those that answer as members of gid: the
// highest config version, and of the members at that version, the
// buckets every one of them still has in flight (a member that has
// installed or deleted a bucket speaks for its group). A member is asked
// GET /shard/state, read through its group's leader, so that one member
// speaks for all its group applied; a member of a binary without it
// (404) is asked GET /status, its own applied state, which may lag. With
// retry it asks again, in rounds, until one answers or ctx ends; without,
// once. It fails when none answers.
func AskGroupState(ctx context.Context, client *http.Client, gid uint64, servers []string, timeout time.Duration, retry bool) (GroupState, error) {
	if client == nil {
		client = http.DefaultClient
	}
	pause := 100 * time.Millisecond
	for {
		st, err := askGroupOnce(ctx, client, gid, servers, timeout)
		if err == nil || !retry {
			return st, err
		}
		select {
		case <-ctx.Done():
			return GroupState{}, err
		case <-time.After(pause + rand.N(pause/2+1)):
		}
		pause = min(2*pause, time.Second)
	}
}

// askGroupOnce is one round of AskGroupState.
func askGroupOnce(ctx context.Context, client *http.Client, gid uint64, servers []string, timeout time.Duration) (GroupState, error) {
	// The members are asked all at once: one that does not answer costs
	// the round one timeout, not one each.
	type reply struct {
		st  httpapi.ShardStatus
		err error
	}
	replies := make([]reply, len(servers))
	var wg sync.WaitGroup
	for i, base := range servers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rctx, cancel := context.WithTimeout(ctx, timeout)
			defer cancel()
			st, err := askMember(rctx, client, strings.TrimSuffix(base, "/"))
			if err == nil && st.Group != gid {
				err = fmt.Errorf("%s: not a member of group %d", base, gid)
			}
			replies[i] = reply{st, err}
		}()
	}
	wg.Wait()
	var (
		answers []httpapi.ShardStatus
		last    error = errors.New("the config lists no server of it")
	)
	for _, r := range replies {
		if r.err != nil {
			last = r.err
		} else {
			answers = append(answers, r.st)
		}
	}
	if len(answers) == 0 {
		return GroupState{}, last
	}
	var best GroupState
	first := true
	for _, a := range answers {
		switch {
		case first || a.ConfigVersion > best.Version:
			owned := slices.Concat(a.Buckets.Serving, a.Buckets.Pulling, a.Buckets.GCing)
			slices.Sort(owned)
			best = GroupState{Version: a.ConfigVersion, Pulling: a.Buckets.Pulling, BePulling: a.Buckets.BePulling, Owned: owned, Digest: a.ConfigDigest}
			first = false
		case a.ConfigVersion == best.Version:
			best.Pulling = intersect(best.Pulling, a.Buckets.Pulling)
			best.BePulling = intersect(best.BePulling, a.Buckets.BePulling)
		}
	}
	return best, nil
}

// askMember asks the member at base for its group's state: GET
// /shard/state, or GET /status's shard section from a member that has no
// /shard/state. Group 0 means the member is in no shard group.
func askMember(ctx context.Context, client *http.Client, base string) (httpapi.ShardStatus, error) {
	var st httpapi.ShardStatus
	err := getJSON(ctx, client, base+"/shard/state", &st)
	var re *remoteError
	if !errors.As(err, &re) || re.status != http.StatusNotFound {
		return st, err
	}
	var status httpapi.Status
	if err := getJSON(ctx, client, base+"/status", &status); err != nil || status.Shard == nil {
		return httpapi.ShardStatus{}, err
	}
	return *status.Shard, nil
}

// getJSON decodes the 200 answer to GET u into v.
func getJSON(ctx context.Context, client *http.Client, u string, v any) error {
	resp, err := call(ctx, client, http.MethodGet, u, nil, nil, http.StatusOK)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(v); err != nil {
		return fmt.Errorf("GET %s: %w", u, err)
	}
	return nil
}

// intersect is the buckets in both a and b.
func intersect(a, b []int) []int {
	var out []int
	for _, x := range a {
		if slices.Contains(b, x) {
			out = append(out, x)
		}
	}
	return out
}
