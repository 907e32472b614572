package shardgroup

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/raftkv/raftkv/shardmap"
	"go.uber.org/zap"
)

// The old owner of a bucket frees its copy when the new owner asks it to
// (POST /shard/delete). A new owner that cannot reach an old owner that
// left the config stops asking after GCGiveUp (giveUpGC), and an old
// owner that was down then, started again with its data, would hold the
// bucket BePulling for ever: it takes no config until the bucket is
// gone, and joined again it freezes every group that has a bucket to
// give it. So the leader of a group that holds buckets BePulling asks,
// every ReleaseCheck, the groups the buckets went to since whether they
// installed them, and deletes its own copy of each one that was
// (releaseLoop).
//
// Why an install anywhere down the line will do: the bucket's new owner
// at config v pulls it from this group, and cannot take v+1 before it
// has; a later owner pulls it from the owner before, at that config,
// which the owner before can only have reached with the bucket
// installed. So every group the bucket reached after v (by moves between
// groups, none from or to no group) holds data that went through the
// new owner at v, and that owner installed this group's copy.

// releaseLoop asks, every ReleaseCheck while this member leads, where
// the buckets the group holds BePulling went, and deletes the group's
// copy of those a group has installed since. A bucket given to no group
// stays: nobody will pull it.
func (d *Driver) releaseLoop(ctx context.Context) {
	tries := 0
	for sleep(ctx, d.cfg.ReleaseCheck) {
		st := d.cfg.Store.ShardState()
		var buckets []int
		for b, s := range st.Status {
			if s == BePulling && st.Config.Owner(b) != 0 {
				buckets = append(buckets, b)
			}
		}
		if len(buckets) == 0 {
			tries = 0
			continue
		}
		err := d.release(ctx, st, buckets)
		switch {
		case err == nil:
			tries = 0
		case ctx.Err() == nil:
			tries++
			d.logFailure(tries, "cannot tell whether the groups this group's buckets went to installed them; asking again later",
				zap.Ints("buckets", buckets), zap.Uint64("version", st.Config.Version), zap.Error(err))
		}
	}
}

// release asks the groups that buckets (BePulling in st) went to since
// st's config where they are, deletes this group's copy of each bucket
// one of them installed, and reports why it could not tell for the
// others: a group that did not answer, or one that may be a new group of
// a reused id (nil when the groups answered and have not installed them
// yet).
func (d *Driver) release(ctx context.Context, st ShardState, buckets []int) error {
	v := st.Config.Version
	configs, err := d.configsSince(ctx, st.Config)
	if err != nil {
		return err
	}
	groups := map[uint64]bool{}
	for _, b := range buckets {
		for _, a := range arrivals(b, configs) {
			groups[a.group] = a.group != d.cfg.Group
		}
	}
	states := map[uint64]GroupState{}
	var failed error
	for _, g := range slices.Sorted(maps.Keys(groups)) {
		if !groups[g] {
			continue
		}
		gs, err := AskGroupState(ctx, d.cfg.Client, g, serversOf(g, configs), d.cfg.RequestTimeout, false)
		if err != nil {
			failed = fmt.Errorf("group %d: %w", g, err)
			continue
		}
		states[g] = gs
	}
	// The configs again, read after the groups answered: a new group of a
	// reused id that answered had its join applied before, so they show it.
	if configs, err = d.configsSince(ctx, st.Config); err != nil {
		return err
	}
	installed, kept, err := judge(buckets, configs, states)
	if err != nil {
		return err
	}
	for _, b := range buckets {
		by := installed[b]
		if by == 0 {
			continue
		}
		dctx, cancel := context.WithTimeout(ctx, d.cfg.RequestTimeout)
		err := d.cfg.Store.DeleteBucket(dctx, b, v)
		cancel()
		if err != nil {
			return fmt.Errorf("deleting bucket %d: %w", b, err)
		}
		d.lg.Info("a group the bucket went to has installed it, and no group has had this one delete its copy yet; deleted it",
			zap.Int("bucket", b), zap.Uint64("version", v), zap.Uint64("new-owner", st.Config.Owner(b)),
			zap.Uint64("installed-by", by), zap.Uint64("its-version", states[by].Version))
	}
	if len(kept) > 3 {
		kept = append(kept[:3], fmt.Sprintf("and %d more", len(kept)-3))
	}
	if failed != nil && len(installed) < len(buckets) {
		kept = append(kept, failed.Error())
	}
	if len(kept) > 0 {
		return errors.New(strings.Join(kept, "; "))
	}
	return nil
}

// configsSince returns c and every config after it up to the config
// group's latest, in order. It fails when the config group's history is
// not the one the group took: its latest is older than c, or its config
// of c's version is not c (followsOwn; the config group alone restored
// from a backup). Configs are read anew each time, as such a
// restore may rewrite any of them.
func (d *Driver) configsSince(ctx context.Context, c shardmap.Config) ([]shardmap.Config, error) {
	query := func(w int64) (shardmap.Config, error) {
		got, err := queryConfig(ctx, d.cfg.Client, d.eps, w, 0, d.cfg.RequestTimeout)
		if err == nil && w >= 0 && got.Version != uint64(w) {
			err = fmt.Errorf("config %d asked for, %d answered", w, got.Version)
		}
		return got, err
	}
	latest, err := query(-1)
	if err != nil {
		return nil, err
	}
	if latest.Version < c.Version {
		return nil, fmt.Errorf("the config group's latest config is %d, older than this group's, %d: was the config group restored from a backup?", latest.Version, c.Version)
	}
	if why, err := d.followsOwn(ctx, c); why != "" || err != nil {
		if err == nil {
			err = errors.New(why)
		}
		return nil, err
	}
	out := []shardmap.Config{c}
	for w := c.Version + 1; w <= latest.Version; w++ {
		next := latest
		if w < latest.Version {
			if next, err = query(int64(w)); err != nil {
				return nil, err
			}
		}
		out = append(out, next)
	}
	return out, nil
}

// sameConfig reports whether a and b are the same config, as other
// groups compare them (shardmap.Config.Digest: Pinned aside).
func sameConfig(a, b shardmap.Config) bool { return a.Digest() == b.Digest() }

// serversOf lists the client URLs configs give group g, each once.
func serversOf(g uint64, configs []shardmap.Config) []string {
	var out []string
	for _, c := range configs {
		for _, u := range c.Groups[g] {
			if !slices.Contains(out, u) {
				out = append(out, u)
			}
		}
	}
	return out
}

// arrival is a bucket's move to group at config version.
type arrival struct{ version, group uint64 }

// arrivals lists bucket b's moves from configs[0] on (configs in order,
// one per version): to its owner at configs[0], then to each new owner.
// It stops at a move to or from no group, after which nothing says where
// the data came from.
func arrivals(b int, configs []shardmap.Config) []arrival {
	if len(configs) == 0 || configs[0].Owner(b) == 0 {
		return nil
	}
	out := []arrival{{configs[0].Version, configs[0].Owner(b)}}
	for i := 1; i < len(configs); i++ {
		prev, next := configs[i-1].Owner(b), configs[i].Owner(b)
		if next == 0 {
			break
		}
		if next != prev {
			out = append(out, arrival{configs[i].Version, next})
		}
	}
	return out
}

// gapAfter is the first config after version w that does not list group
// g, when a later one lists it again (0 otherwise): from it on, a group
// of id g may be a new one, which starts at the last config before its
// join that does not list g.
func gapAfter(g, w uint64, configs []shardmap.Config) uint64 {
	gap := uint64(0)
	for _, c := range configs {
		if c.Version <= w {
			continue
		}
		switch _, listed := c.Groups[g]; {
		case listed && gap != 0:
			return gap
		case !listed && gap == 0:
			gap = c.Version
		}
	}
	return 0
}

// judge decides, for each of buckets (BePulling at configs[0]), which
// group installed it (installed; none for those that no group can be
// shown to have, with why for some of them in kept), by the states of
// the groups they went to. If one of the states shows a history other
// than configs, it judges none and says why.
func judge(buckets []int, configs []shardmap.Config, states map[uint64]GroupState) (installed map[int]uint64, kept []string, err error) {
	for _, g := range slices.Sorted(maps.Keys(states)) {
		if why := otherHistory(g, states[g], configs); why != "" {
			return nil, nil, errors.New(why) // the configs say nothing of any group
		}
	}
	installed = map[int]uint64{}
	for _, b := range buckets {
		by, why := installedBy(b, configs, states)
		switch {
		case by != 0:
			installed[b] = by
		case why != "":
			kept = append(kept, fmt.Sprintf("bucket %d: %s", b, why))
		}
	}
	return installed, kept, nil
}

// otherHistory says why group g's state gs shows a history other than
// configs (configs[0] on, one per version; "" when it does not): g is
// past the last of them, or holds other buckets than the one of its
// version gives it (the config group alone restored from an older
// backup, then changed).
func otherHistory(g uint64, gs GroupState, configs []shardmap.Config) string {
	switch past, other := divergence(g, gs, configs); {
	case past:
		return fmt.Sprintf("group %d is at config %d, past the config group's latest, %d", g, gs.Version, configs[len(configs)-1].Version)
	case other:
		return fmt.Sprintf("group %d is at config %d, but its config %d is not the config group's", g, gs.Version, gs.Version)
	}
	return ""
}

// divergence compares group g's state gs with configs (configs[0] on,
// one per version): whether g is past the last of them, and whether its
// config of its version is another than theirs (by gs.Digest, and by
// the buckets it holds, which a binary without the digest reports
// alone). A group before configs[0] is neither.
func divergence(g uint64, gs GroupState, configs []shardmap.Config) (past, other bool) {
	first, latest := configs[0].Version, configs[len(configs)-1].Version
	if gs.Version > latest {
		return true, false
	}
	if gs.Version < first {
		return false, false
	}
	c := configs[gs.Version-first]
	return false, !slices.Equal(gs.Owned, c.BucketsOf(g)) || (gs.Digest != "" && gs.Digest != c.Digest())
}

// installedBy returns a group that installed bucket b, BePulling at
// configs[0] in the asking group, by the states of the groups it went to
// (0 for none), or why none can be told. A group g the bucket reached at
// config w installed it if it is at w with b no longer Pulling, or past
// w, unless it is at or past a gap in g's listing after w (a group of a
// reused id), or shows another history (otherHistory; release judges
// nothing then). The latest arrival is judged first.
func installedBy(b int, configs []shardmap.Config, states map[uint64]GroupState) (uint64, string) {
	var why string
	arr := arrivals(b, configs)
	for i := len(arr) - 1; i >= 0; i-- {
		a := arr[i]
		gs, ok := states[a.group]
		switch {
		case !ok || gs.Version < a.version:
		case otherHistory(a.group, gs, configs) != "":
			return 0, otherHistory(a.group, gs, configs)
		case gs.Version == a.version:
			if !slices.Contains(gs.Pulling, b) {
				return a.group, ""
			}
		default:
			gap := gapAfter(a.group, a.version, configs)
			if gap == 0 || gs.Version < gap {
				return a.group, ""
			}
			why = fmt.Sprintf("group %d, at config %d, left the config at %d and was listed again, so it may be a new group of the same id", a.group, gs.Version, gap)
		}
	}
	return 0, why
}
