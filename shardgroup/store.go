package shardgroup

import (
	"context"
	"errors"

	"github.com/raftkv/raftkv/shardmap"
)

// BucketStatus is a bucket's state in a shard group (shardmap's, which
// kvstore keeps).
type BucketStatus = shardmap.BucketStatus

// The bucket states of a shard group: see shardmap.
const (
	NotOwned  = shardmap.NotOwned
	Serving   = shardmap.Serving
	Pulling   = shardmap.Pulling
	BePulling = shardmap.BePulling
	GCing     = shardmap.GCing
)

// ShardState is a consistent copy of a shard group member's applied
// sharding state (kvstore.ShardState).
type ShardState struct {
	Group uint64
	// Config is the applied config; Version 0 means none yet.
	Config shardmap.Config
	// Prev is the config before Config: who held each bucket.
	Prev shardmap.Config
	// Status is each bucket's state, one per bucket.
	Status []BucketStatus
	// Joined: the group has asked the config group to join it once.
	Joined       bool
	AppliedIndex uint64
}

// Settled reports whether every bucket is Serving or NotOwned, the
// condition for taking the next config.
func (st ShardState) Settled() bool {
	for _, s := range st.Status {
		if s != Serving && s != NotOwned {
			return false
		}
	}
	return true
}

// Store is the shard group's replicated state, as the driver and the
// migration endpoints use it: kvstore.Store in shard mode, through
// daemon's adapter. The names are kvstore's. Every call that takes a ctx
// is bounded by it; the ones that propose an entry return once it is
// applied on this member.
//
// ExportBucket and InstallBucket carry the bucket in its encoded form
// (kvstore.BucketData's MarshalBinary, checksummed): this package moves
// it over HTTP and never reads it.
type Store interface {
	// ShardState returns a consistent copy of the applied state.
	ShardState() ShardState
	// LinearizableShardState returns the state as of a linearizable read:
	// it includes every change the group applied before the call.
	LinearizableShardState(ctx context.Context) (ShardState, error)
	// ShardChanged is closed at the next change of ShardState.
	ShardChanged() <-chan struct{}
	// ProposeConfig proposes c; it applies iff c.Version is the applied
	// version plus one and the state is settled. Nil when the applied
	// version is c.Version or later afterwards; an error with Code()
	// "not_settled" when a migration kept it from applying.
	ProposeConfig(ctx context.Context, c shardmap.Config) error
	// ExportBucket returns bucket b's data and dedup table, encoded, as of
	// config version (linearizable): only while the applied config is
	// version and b is BePulling. Errors: Code() "not_ready" when the
	// applied version is older, "bucket_gone" otherwise.
	ExportBucket(ctx context.Context, b int, version uint64) ([]byte, error)
	// InstallBucket decodes data, which must be bucket b's at version, and
	// installs it: applies iff the applied config is version and b is
	// Pulling (b becomes GCing). Nil also when already done or past.
	InstallBucket(ctx context.Context, b int, version uint64, data []byte) error
	// DeleteBucket drops the old owner's copy: applies iff the applied
	// config is version and b is BePulling (b becomes NotOwned). Nil also
	// when already done or past; Code() "not_ready" when older.
	DeleteBucket(ctx context.Context, b int, version uint64) error
	// FinishGC makes a GCing bucket Serving iff the applied config is
	// version. Nil when already done.
	FinishGC(ctx context.Context, b int, version uint64) error
	// MarkJoined records that the group asked to join the config; from,
	// unless its Version is 0, is the last config before the join that
	// does not list the group, which a group that owns no bucket takes
	// as its applied config and Prev at once, unless it is older than the
	// applied one (kvstore.Store.MarkJoined).
	MarkJoined(ctx context.Context, from shardmap.Config) error
}

// codeOf returns the first Code() in err's chain, or "".
func codeOf(err error) string {
	var c interface{ Code() string }
	if errors.As(err, &c) {
		return c.Code()
	}
	return ""
}

// Error codes of the Store's and the migration endpoints' errors.
const (
	codeNotReady   = "not_ready"
	codeBucketGone = "bucket_gone"
	codeNotSettled = "not_settled"
)
