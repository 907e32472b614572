package shardgroup

import (
	"context"
	"fmt"
	"maps"
	"slices"

	"go.uber.org/zap"
)

// The old owner of a bucket frees its copy when the new owner asks it to
// (POST /shard/delete). A new owner that cannot reach an old owner that
// left the config stops asking after GCGiveUp (giveUpGC), and an old
// owner that was down then, started again with its data, would hold the
// bucket BePulling for ever: it takes no config until the bucket is
// gone, and joined again it freezes every group that has a bucket to
// give it. So the leader of a group that holds buckets BePulling asks
// their new owners, every ReleaseCheck, whether they installed them, and
// deletes its own copy of each one that was (releaseLoop).

// releaseLoop asks, every ReleaseCheck while this member leads, the new
// owner of each bucket the group holds BePulling whether it installed
// it, and deletes the group's copy of those it did. A bucket given to no
// group stays: nobody will pull it.
func (d *Driver) releaseLoop(ctx context.Context) {
	tries := 0
	for sleep(ctx, d.cfg.ReleaseCheck) {
		st := d.cfg.Store.ShardState()
		byOwner := map[uint64][]int{}
		for b, s := range st.Status {
			if k := st.Config.Owner(b); s == BePulling && k != 0 {
				byOwner[k] = append(byOwner[k], b)
			}
		}
		for _, k := range slices.Sorted(maps.Keys(byOwner)) {
			if err := d.release(ctx, st, k, byOwner[k]); err != nil && ctx.Err() == nil {
				tries++
				d.logFailure(tries, "cannot tell whether the new owner installed buckets this group holds for it; asking again later",
					zap.Uint64("new-owner", k), zap.Ints("buckets", byOwner[k]), zap.Uint64("version", st.Config.Version), zap.Error(err))
			}
		}
	}
}

// release asks group k, the new owner of buckets (BePulling in st), where
// it is, at its servers in st's config and in the latest one, and
// deletes this group's copy of those it installed.
func (d *Driver) release(ctx context.Context, st ShardState, k uint64, buckets []int) error {
	v := st.Config.Version
	latest, err := queryConfig(ctx, d.cfg.Client, d.eps, -1, 0, d.cfg.RequestTimeout)
	if err != nil {
		return err
	}
	servers := slices.Clone(st.Config.Groups[k])
	for _, u := range latest.Groups[k] {
		if !slices.Contains(servers, u) {
			servers = append(servers, u)
		}
	}
	gs, err := AskGroupState(ctx, d.cfg.Client, k, servers, d.cfg.RequestTimeout, false)
	if err != nil {
		return err
	}
	// The configs are read after k answered: a new group of k's id that
	// answered had its join applied before, so they show it.
	gap, err := d.gapBeforeRelisting(ctx, k, v)
	if err != nil {
		return err
	}
	done, why := installedBy(v, buckets, gs, gap)
	if why != "" {
		return fmt.Errorf("group %d is at config %d: %s", k, gs.Version, why)
	}
	for _, b := range done {
		dctx, cancel := context.WithTimeout(ctx, d.cfg.RequestTimeout)
		err := d.cfg.Store.DeleteBucket(dctx, b, v)
		cancel()
		if err != nil {
			return fmt.Errorf("deleting bucket %d: %w", b, err)
		}
		d.lg.Warn("the new owner installed the bucket and has not asked this group to delete its copy (it stops asking a group that left and does not answer); deleted it",
			zap.Int("bucket", b), zap.Uint64("version", v), zap.Uint64("new-owner", k), zap.Uint64("new-owner-version", gs.Version))
	}
	return nil
}

// gapBeforeRelisting returns the first config after v that does not
// list group k, if a later one lists it again (0 otherwise): the group
// that left may have been joined again, or a new group may have taken
// its id.
func (d *Driver) gapBeforeRelisting(ctx context.Context, k, v uint64) (uint64, error) {
	latest, err := queryConfig(ctx, d.cfg.Client, d.eps, -1, 0, d.cfg.RequestTimeout)
	if err != nil {
		return 0, err
	}
	gap := uint64(0)
	for w := v + 1; w <= latest.Version; w++ {
		c := latest
		if w < latest.Version {
			if c, err = queryConfig(ctx, d.cfg.Client, d.eps, int64(w), 0, d.cfg.RequestTimeout); err != nil {
				return 0, err
			}
			if c.Version != w {
				return 0, fmt.Errorf("config %d asked for, %d answered", w, c.Version)
			}
		}
		switch _, listed := c.Groups[k]; {
		case listed && gap != 0:
			return gap, nil
		case !listed && gap == 0:
			gap = w
		}
	}
	return 0, nil
}

// installedBy reports which of buckets, BePulling at config v in a group
// and given to group k by v, k has installed, by its own account gs.
// k installs each bucket it pulls at v before it takes v+1, so a group
// of id k at v with the bucket no longer Pulling has it, and so has one
// past v, unless it is at gap or later (gap: the first config after v
// without k, when a later one lists k again; 0 for none): a new group of
// the same id, which never held the buckets, starts at the last config
// before its join that does not list k, and is then possible. why says
// why none can be told ("" when the answer is what done lists).
func installedBy(v uint64, buckets []int, gs GroupState, gap uint64) (done []int, why string) {
	switch {
	case gs.Version < v:
		return nil, ""
	case gs.Version == v:
		for _, b := range buckets {
			if !slices.Contains(gs.Pulling, b) {
				done = append(done, b)
			}
		}
		return done, ""
	case gap != 0 && gs.Version >= gap:
		return nil, fmt.Sprintf("config %d does not list it and a later one does, so it may be a new group of the same id, which never held the buckets", gap)
	}
	return slices.Clone(buckets), ""
}
