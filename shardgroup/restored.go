package shardgroup

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strings"
	"time"

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
// checks the configs made since its backup (CheckRestored).

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
	pause := 50 * time.Millisecond
	get := func(version int64) (shardmap.Config, error) {
		for {
			_, turn := eps.pick()
			c, err := queryConfig(ctx, client, eps, version, 0, timeout)
			if err == nil {
				return c, nil
			}
			if turn%uint64(len(eps.urls)) == uint64(len(eps.urls))-1 || ctx.Err() != nil {
				select {
				case <-ctx.Done():
					return shardmap.Config{}, fmt.Errorf("no config group member answered (%s): %w", strings.Join(configEndpoints, ", "), err)
				case <-time.After(pause + rand.N(pause/2+1)):
				}
				pause = min(2*pause, time.Second)
			}
		}
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

// CheckRestored reports why shard group gid, restored with its state at
// config at, must not serve: nil when no config after at (after, oldest
// first, through latest, the config group's newest) gives a bucket of
// the group to another group or one of another group's to it, and the
// config group is not behind the backup. Configs that move only other
// groups' buckets leave the restored group's state whole.
func CheckRestored(gid uint64, at, latest shardmap.Config, after []shardmap.Config) error {
	if latest.Version < at.Version {
		return fmt.Errorf("the backup is of config %d, but the config group's latest is %d: restore the config group from a backup of the same moment too", at.Version, latest.Version)
	}
	for _, c := range after {
		for b := range c.Buckets {
			was, is := at.Owner(b), c.Owner(b)
			if was == is || (was != gid && is != gid) {
				continue
			}
			return fmt.Errorf("the backup is of config %d, where bucket %d is served by %s; config %d, made since, gives it to %s, which may hold writes the backup lacks: restore every shard group and the config group from backups of one moment", at.Version, b, groupName(was), c.Version, groupName(is))
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
