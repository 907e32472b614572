package kvstore

import (
	"errors"
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/raftkv/raftkv/shardmap"
	"go.uber.org/zap"
)

// Config configures a Store.
type Config struct {
	// Logger receives the store's logs. Nil means zap.NewNop().
	Logger *zap.Logger
	// RetryInterval is how long a write may stay unapplied before it is
	// proposed again (a leader change or a dropped forward can lose a
	// proposal); duplicates are discarded on apply. Zero means 1s.
	RetryInterval time.Duration
	// MaxBatchBytes bounds the approximate size of the requests packed
	// into one raft entry. Zero means 512 KiB; a single larger request
	// still travels alone.
	MaxBatchBytes int
	// MaxUnappliedEntries is how many entries this member's writes may
	// have proposed but not yet applied before further writes wait and
	// gather into the next entry; the fewer, the larger each entry grows
	// under load. An entry unapplied after UnappliedEntryTimeout no longer
	// counts (it may have been lost with a leader). Zero means 16 and
	// 100ms: the leader merges the entries of every member waiting for it
	// into one raft entry (raftnode's batcher), so an entry need not wait
	// here for the one before it; the bound only keeps a member from
	// flooding raft with small entries when no leader merges them.
	MaxUnappliedEntries   int
	UnappliedEntryTimeout time.Duration
	// Buckets is the number of buckets of the key space; a key's bucket
	// is shardmap.BucketOf(key, Buckets). Each bucket's keys are kept
	// apart, so that a bucket can be exported, installed and dropped
	// whole. Every member of a raft group must use the same number. Zero
	// means 1 (a plain member).
	Buckets int
	// Group, when non-zero, makes the store a member of shard group
	// Group: it serves only the buckets its applied config gives Group
	// (see ShardState).
	Group uint64
	// ConfigGroup makes the store a config group member: its state is
	// the shardmap.History of Buckets buckets, changed by ConfigOp; it
	// serves no keys.
	ConfigGroup bool
	// DedupWindow is how many of one client's most recent sequence
	// numbers a bucket remembers results for (see WriteOptions); zero
	// means 1024. DedupClients bounds the clients a bucket remembers (the
	// least recently written are evicted first, deterministically by raft
	// index); zero means 10000. Every member of a raft group must use the
	// same values: they decide what the state machine does.
	DedupWindow, DedupClients int
	// WatchWindow bounds the events a member keeps for watchers (see
	// Watch): at most WatchWindow events and WatchWindowBytes bytes of
	// keys and values (and 64 bytes an event). A watch from an index
	// older than the window gets ErrCompacted. Zero means 100000 events
	// and 64 MiB.
	WatchWindow, WatchWindowBytes int
	// ExpiryTick is how often the leader looks for keys whose TTL ran out
	// (see Op.TTL); a key is deleted up to about this much after its
	// deadline. Zero means 100ms.
	ExpiryTick time.Duration
	// QuotaBytes, when above zero, bounds the keys' size (DataBytes): a
	// write that puts anything is refused with ErrNoSpace, before it is
	// proposed, when DataBytes and its puts' sizes would pass it. Deletes
	// and TTL expiries always go through, and so do a shard group's
	// bucket migrations. The check is this member's, at the time the
	// write arrives, so writes already proposed may take the keys past it
	// by their size. Members may differ in it.
	QuotaBytes int64
	// Registerer receives the store's Prometheus metrics. Nil means they
	// are kept but not exported.
	Registerer prometheus.Registerer
}

func (c *Config) applyDefaults() {
	if c.Logger == nil {
		c.Logger = zap.NewNop()
	}
	if c.RetryInterval == 0 {
		c.RetryInterval = time.Second
	}
	if c.MaxBatchBytes == 0 {
		c.MaxBatchBytes = 512 << 10
	}
	if c.MaxUnappliedEntries == 0 {
		c.MaxUnappliedEntries = 16
	}
	if c.Buckets == 0 {
		c.Buckets = 1
	}
	if c.DedupWindow == 0 {
		c.DedupWindow = 1024
	}
	if c.DedupClients == 0 {
		c.DedupClients = 10000
	}
	if c.ExpiryTick == 0 {
		c.ExpiryTick = 100 * time.Millisecond
	}
	if c.WatchWindow == 0 {
		c.WatchWindow = 100000
	}
	if c.WatchWindowBytes == 0 {
		c.WatchWindowBytes = 64 << 20
	}
	if c.UnappliedEntryTimeout == 0 {
		c.UnappliedEntryTimeout = 100 * time.Millisecond
	}
}

// Validate reports the first problem with the configuration.
func (c *Config) Validate() error {
	if c.RetryInterval < time.Millisecond {
		return errors.New("kvstore: retry interval below 1ms")
	}
	if c.MaxBatchBytes < 1 {
		return errors.New("kvstore: max batch bytes must be positive")
	}
	if c.MaxUnappliedEntries < 1 || c.UnappliedEntryTimeout <= 0 {
		return errors.New("kvstore: in-flight batches and their timeout must be positive")
	}
	if c.Buckets < 1 || c.Buckets > shardmap.MaxBuckets {
		return fmt.Errorf("kvstore: bucket count %d is not in 1-%d", c.Buckets, shardmap.MaxBuckets)
	}
	if c.Group != 0 && c.ConfigGroup {
		return errors.New("kvstore: a store is in a shard group or in the config group, not both")
	}
	if c.QuotaBytes < 0 {
		return errors.New("kvstore: quota bytes must not be negative")
	}
	if c.ExpiryTick <= 0 {
		return errors.New("kvstore: expiry tick must be positive")
	}
	if c.WatchWindow < 1 || c.WatchWindowBytes < 1 {
		return errors.New("kvstore: watch window events and bytes must be positive")
	}
	if c.DedupWindow < 1 || c.DedupClients < 1 {
		return errors.New("kvstore: dedup window and clients must be positive")
	}
	return nil
}
