package shardmap

import "fmt"

// BucketStatus is what a shard group does with one bucket: the states of
// 6.824 shardkv's design. kvstore keeps one per bucket in the replicated
// state (its snapshots write the number, so the order is fixed), and
// shardgroup's driver acts on them.
type BucketStatus uint8

// The bucket states of a shard group.
const (
	// NotOwned: the applied config gives the bucket to another group (or
	// to none); this group holds none of its keys.
	NotOwned BucketStatus = iota
	// Serving: the group serves the bucket's reads and writes.
	Serving
	// Pulling: the applied config gives the bucket to this group, which
	// waits for its data from the previous owner; reads and writes wait.
	Pulling
	// BePulling: the applied config gave the bucket away; the group holds
	// its data frozen for the new owner to pull, and serves none of it,
	// until the new owner confirms it installed it.
	BePulling
	// GCing: the group installed the bucket and serves it, and has yet to
	// tell the previous owner to delete its copy.
	GCing
)

func (b BucketStatus) String() string {
	switch b {
	case NotOwned:
		return "notOwned"
	case Serving:
		return "serving"
	case Pulling:
		return "pulling"
	case BePulling:
		return "bePulling"
	case GCing:
		return "gcing"
	}
	return fmt.Sprintf("BucketStatus(%d)", uint8(b))
}
