package httpapi

import (
	"context"
	"time"

	"github.com/raftkv/raftkv/internal/buildinfo"
)

// ReadOptions states a read's consistency.
type ReadOptions struct {
	// Stale: serve from this member's local state, no coordination.
	Stale bool
	// MinIndex: first wait (bounded by the request deadline) until this member applied MinIndex.
	MinIndex uint64
}

// Store is the replicated key-value state machine. httpapi declares it so it
// never imports the package that implements it.
type Store interface {
	// GetKV returns key's value and versions at the consistency opts asks
	// for, and the index the read was served at (the applied index after
	// the ReadIndex wait, or the local applied index when stale). An absent
	// key yields an error whose NotFound() bool method returns true, with
	// the index still set.
	GetKV(ctx context.Context, key string, opts ReadOptions) (kv KeyValue, index uint64, err error)
	// Put returns after the write is committed and applied, with its raft
	// index and the key's new version.
	Put(ctx context.Context, key string, value []byte) (Written, error)
	// PutAll applies all pairs atomically as one write.
	PutAll(ctx context.Context, kvs map[string][]byte) (index uint64, err error)
	// Delete removes key after commit and apply; an absent key is not an error.
	Delete(ctx context.Context, key string) (index uint64, err error)
	// Write applies ops atomically as one write, like PutAll, under the
	// writer's identity wo (zero: none): a store that keeps a dedup table
	// applies a (ClientID, Seq) once and answers a repeat with the first
	// result. The handler calls it for writes that carry X-Client-ID and
	// X-Client-Seq or a TTL; others use Put, PutAll and Delete.
	Write(ctx context.Context, ops []Op, wo WriteOptions) (Written, error)
	// Txn applies t atomically as one write, decided in the state machine,
	// under the writer's identity wo (zero: none); a repeat of a
	// (ClientID, Seq) is answered with the first result.
	Txn(ctx context.Context, t Txn, wo WriteOptions) (TxnResult, error)
	// List returns the keys opts asks for, in key order, read from one
	// consistent state.
	List(ctx context.Context, opts ListOptions) (ListResult, error)
	// DeleteRange deletes every key of the range opts names atomically,
	// as one write, and returns how many once committed and applied.
	DeleteRange(ctx context.Context, opts DeleteRangeOptions) (DeleteRangeResult, error)
	// Watch streams the changes of the keys opts names from opts.FromIndex
	// on. A FromIndex older than the store keeps events for yields an
	// error whose Gone() bool method returns true (see CompactedError).
	// The watcher ends when ctx does.
	Watch(ctx context.Context, opts WatchOptions) (Watcher, error)
	// Digest summarizes the local state, taken at one applied index.
	Digest() Digest
	// HashKV proposes a hash request, which changes nothing, and returns
	// this member's hash of its state at its raft index once applied.
	HashKV(ctx context.Context) (HashResult, error)
	// HashAt returns this member's hash of its state at index, the index
	// of a hash request, once it has applied it; an error whose
	// NotFound() bool method returns true when it keeps none there.
	HashAt(ctx context.Context, index uint64) (HashResult, error)
}

// Written is what a write did.
type Written struct {
	// Index is the raft index it applied at (a repeat's: the first time).
	Index uint64
	// ModIndex is the version it gave the keys it put, answered as a PUT's
	// ETag; 0 when it put none or none is known.
	ModIndex uint64
}

// KeyValue is one key's value and versions.
type KeyValue struct {
	Key string
	// Value is shared with the store's state: it must not be modified.
	Value []byte
	// CreateIndex and ModIndex are the raft indexes of the entries that
	// created the key and last modified it. ModIndex names one version.
	CreateIndex, ModIndex uint64
	// TTL is the time to live the last put gave the key; 0: none.
	TTL time.Duration
}

// Op is one operation of a Write: a put of Value under Key (for TTL, if
// not zero), or with Delete the removal of Key.
type Op struct {
	Key    string
	Value  []byte
	Delete bool
	TTL    time.Duration
}

// CompareTarget is what a Compare looks at.
type CompareTarget uint8

// Compare targets.
const (
	CompareValue CompareTarget = iota + 1
	CompareMod
	CompareCreate
	CompareExists
)

// CompareOp is how a Compare compares.
type CompareOp uint8

// Compare operators. Greater and Less compare indexes numerically and
// values bytewise.
const (
	CompareEqual CompareOp = iota + 1
	CompareNotEqual
	CompareGreater
	CompareLess
)

// Compare is one condition of a Txn.
type Compare struct {
	Key    string
	Target CompareTarget
	Op     CompareOp
	Value  []byte // CompareValue
	Index  uint64 // CompareMod, CompareCreate; an absent key has 0 for both
	Exists bool   // CompareExists (Op CompareEqual or CompareNotEqual)
}

// TxnOpType is what a TxnOp does.
type TxnOpType uint8

// Transaction operations.
const (
	TxnPut TxnOpType = iota + 1
	TxnDelete
	TxnGet
)

// TxnOp is one operation of a Txn branch.
type TxnOp struct {
	Type  TxnOpType
	Key   string
	Value []byte        // TxnPut
	TTL   time.Duration // TxnPut; 0: none
}

// Txn is a transaction: if every Compare holds, Success is applied, else
// Failure, atomically, as one write.
type Txn struct {
	Compares         []Compare
	Success, Failure []TxnOp
}

// TxnResult is the outcome of a Txn.
type TxnResult struct {
	// Succeeded reports whether the compares held (Success was applied).
	Succeeded bool
	// Index is the raft index the transaction applied at.
	Index uint64
	// ModIndex is the version the branch taken gave the keys it put (0:
	// none), answered as the ETag of a conditional PUT.
	ModIndex uint64
	// Gets holds one result per TxnGet of the branch taken, in order.
	Gets []GetResult
}

// GetResult is the result of one TxnGet: the key's value and versions
// when Found.
type GetResult struct {
	KeyValue
	Found bool
}

// ListOptions selects the keys of a List.
type ListOptions struct {
	// Prefix selects the keys with this prefix; or Start and End select
	// [Start, End), End "" meaning to the last key. All three empty:
	// every key.
	Prefix     string
	Start, End string
	// After, when not empty, continues a listing: only keys > After.
	After string
	// Limit is the most keys returned; 0: no limit.
	Limit    int
	KeysOnly bool
	// Stale reads this member's local state; else the listing is
	// linearizable. MinIndex first waits until this member applied it.
	Stale    bool
	MinIndex uint64
	// ConfigVersion, on a shard member, when not zero, must be the
	// version of the config the member applied, else the store answers a
	// Misdirected error: the caller's map of buckets is stale.
	ConfigVersion uint64
}

// DeleteRangeOptions selects the keys of a DeleteRange: Prefix, or
// [Start, End), End "" meaning to the last key; at least one is set.
type DeleteRangeOptions struct {
	Prefix     string
	Start, End string
	// ConfigVersion is as ListOptions': a router's, so that every group
	// deletes at the same config.
	ConfigVersion uint64
}

// DeleteRangeResult is what a DeleteRange did: the raft index it applied
// at and the number of keys it deleted.
type DeleteRangeResult struct {
	Index   uint64
	Deleted int
}

// ListResult is one page of a List.
type ListResult struct {
	// KVs are the keys, in key order; values are empty with KeysOnly.
	KVs []KeyValue
	// More reports keys in range after the last one returned.
	More bool
	// Index is the applied index of the state the listing was read at.
	Index uint64
}

// EventType is what an Event reports.
type EventType uint8

// Event types. EventBucketOut, EventBucketIn and EventGroupLeft are a
// shard member's markers, not changes of keys: at EventBucketOut's index
// the member applied a config that took Bucket away, at EventBucketIn's
// it installed Bucket, and at EventGroupLeft's it applied the first
// config without its group (no event of the group follows it).
const (
	EventPut EventType = iota + 1
	EventDelete
	EventExpire
	EventBucketOut
	EventBucketIn
	EventGroupLeft
)

// Event is one change seen by a Watcher.
type Event struct {
	Type  EventType
	Key   string
	Value []byte // EventPut only
	// CreateIndex is the key's; ModIndex is the raft index of the event.
	CreateIndex, ModIndex uint64
	// Pos is the event's position among the events of ModIndex, from 0:
	// (ModIndex, Pos) is unique and ordered.
	Pos uint32
	// KeyMod is a put's key's version after it (its ETag), which the
	// stream sends as mod_index; 0: ModIndex.
	KeyMod uint64
	// Bucket is the key's bucket on a shard member (the marker's bucket);
	// -1 when not known.
	Bucket int
	// Version is a marker's config version (the config that took the
	// bucket away, at which it was installed, or the first without the
	// group); 0 when not known.
	Version uint64
}

// WatchOptions names what a Watch streams.
type WatchOptions struct {
	// Key is the one key watched; when empty, every key with Prefix ("":
	// every key).
	Key    string
	Prefix string
	// FromIndex is the first raft index delivered; 0: from now on.
	FromIndex uint64
	// AfterPos, with FromIndex, skips the events of FromIndex with
	// Pos <= AfterPos (resuming in the middle of an index); -1: none.
	AfterPos int64
}

// Watcher streams a Watch's events.
type Watcher interface {
	// Events delivers the events in (ModIndex, Pos) order, without gap or
	// duplicate, until Done.
	Events() <-chan Event
	// Done is closed when the watcher ends; Err then says why.
	Done() <-chan struct{}
	// Err is, after Done, why the watcher ended: an error whose TooSlow()
	// bool returns true when its buffer overflowed, whose Gone() bool
	// returns true when the events it needed were dropped, the store's
	// stop, or ctx's error.
	Err() error
	// Progress is the applied index the watcher has caught up to: every
	// event at or below it has been delivered to Events.
	Progress() uint64
}

// ConfigWatcher is a Watcher of a shard group member that can say which
// config the member had applied as of a progress index.
type ConfigWatcher interface {
	Watcher
	// ConfigVersionAt is the version of the config applied as of index
	// (an index Progress returned), 0 when unknown (no config applied
	// yet, or index older than what the member recorded): every
	// bucket_out marker of that config and of those before it is at or
	// below index.
	ConfigVersionAt(index uint64) uint64
}

// WriteOptions is a write's exactly-once identity, from the request
// headers X-Client-ID and X-Client-Seq (see WriteOptionsOf).
type WriteOptions struct {
	// ClientID names the writer: 1 to 64 characters of [A-Za-z0-9._-].
	ClientID string
	// Seq is the writer's sequence number of this write, at least 1; its
	// retries send the same one.
	Seq uint64
}

// Digest summarizes a member's state machine so members can be compared:
// members that applied the same index hold the same keys and hash.
type Digest struct {
	AppliedIndex uint64 `json:"appliedIndex"`
	Keys         int    `json:"keys"`
	Hash         string `json:"hash"`
}

// Cluster is raft membership.
type Cluster interface {
	// AddMember returns after the conf change adding id at peerURL is applied.
	AddMember(ctx context.Context, id uint64, peerURL string) error
	// RemoveMember returns after the conf change removing id is applied.
	RemoveMember(ctx context.Context, id uint64) error
	// AddLearner returns after the conf change adding id at peerURL as a
	// learner (it receives the log, does not vote) is applied.
	AddLearner(ctx context.Context, id uint64, peerURL string) error
	// PromoteMember returns after the conf change making learner id a
	// voter is applied. A learner not caught up with the leader is refused
	// with an error whose LearnerNotReady() bool returns true.
	PromoteMember(ctx context.Context, id uint64) error
	// UpdateMember returns after the conf change giving member id the
	// peer URL peerURL is applied.
	UpdateMember(ctx context.Context, id uint64, peerURL string) error
	// TransferLeadership moves leadership to voter to (0: the most caught-up
	// voter) and returns the new leader once this member sees it lead. A
	// deadline passed first yields an error whose LeaderTransferTimeout()
	// bool returns true.
	TransferLeadership(ctx context.Context, to uint64) (leader uint64, err error)
	// Status reports this node's view of the cluster.
	Status() Status
	// Health returns nil when this member has a leader and has applied close to the commit index, else the reason.
	Health() error
}

// Member is one raft member as GET /status reports it.
type Member struct {
	ID         uint64   `json:"id"`
	PeerURLs   []string `json:"peerURLs"`
	ClientURLs []string `json:"clientURLs,omitempty"`
	IsLearner  bool     `json:"isLearner"`
}

// Progress is the leader's view of one follower's replication.
type Progress struct {
	Match uint64 `json:"match"`
	Next  uint64 `json:"next"`
	State string `json:"state"` // probe|replicate|snapshot
	// IsLearner: the follower is a learner, to be promoted once caught up.
	IsLearner bool `json:"isLearner,omitempty"`
}

// Status is the body of GET /status.
type Status struct {
	ID            uint64   `json:"id"`
	Leader        uint64   `json:"leader"`
	Term          uint64   `json:"term"`
	CommitIndex   uint64   `json:"commitIndex"`
	AppliedIndex  uint64   `json:"appliedIndex"`
	SnapshotIndex uint64   `json:"snapshotIndex"`
	Members       []Member `json:"members"`
	// ClusterLevel is the feature level the member's raft group runs at
	// (see raftnode's level.go).
	ClusterLevel uint32 `json:"clusterLevel"`
	// ClusterID is the id the member's cluster tags its peer traffic
	// with, in hex: 1000 unless the cluster was restored from a backup.
	ClusterID string `json:"clusterId,omitempty"`
	// DataBytes is the size of the keys this member holds, as its space
	// quota counts them (their keys' and values' bytes and 56 bytes for
	// each); QuotaBytes is that quota, 0 for none.
	DataBytes  int64 `json:"dataBytes"`
	QuotaBytes int64 `json:"quotaBytes"`
	// Progress maps each follower's id, in decimal, to its replication
	// progress. Only the leader reports it.
	Progress map[string]Progress `json:"progress,omitempty"`
	// Config is a config-group member's summary of its latest config.
	Config *ConfigStatus `json:"config,omitempty"`
	// Shard is a shard-group member's view of its buckets.
	Shard *ShardStatus `json:"shard,omitempty"`
	// Build is the binary this member runs.
	Build *buildinfo.Info `json:"build,omitempty"`
}

// ConfigStatus is the "config" section of a config-group member's status.
type ConfigStatus struct {
	// Version is the latest config's version.
	Version uint64 `json:"version"`
	// Buckets is the number of buckets of the key space.
	Buckets int `json:"buckets"`
	// Groups maps each group id of the latest config, in decimal, to the
	// number of buckets it serves.
	Groups map[string]int `json:"groups"`
}

// ShardStatus is the "shard" section of a shard-group member's status.
type ShardStatus struct {
	Group         uint64 `json:"group"`
	ConfigVersion uint64 `json:"configVersion"`
	// ConfigDigest is shardmap.Config.Digest of the applied config ("" for
	// none yet, and from binaries before it).
	ConfigDigest string       `json:"configDigest,omitempty"`
	Buckets      BucketStates `json:"buckets"`
}

// BucketStates lists a shard group's buckets by state, each list in
// ascending order; buckets the group does not own are in none.
type BucketStates struct {
	Serving   []int `json:"serving"`
	Pulling   []int `json:"pulling"`
	BePulling []int `json:"bePulling"`
	GCing     []int `json:"gcing"`
}
