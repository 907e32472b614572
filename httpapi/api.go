package httpapi

import "context"

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
	// Get returns the value of key at the consistency opts asks for. An absent
	// key yields an error whose NotFound() bool method returns true.
	Get(ctx context.Context, key string, opts ReadOptions) ([]byte, error)
	// Put returns after the write is committed and applied; index is its raft index.
	Put(ctx context.Context, key string, value []byte) (index uint64, err error)
	// PutAll applies all pairs atomically as one write.
	PutAll(ctx context.Context, kvs map[string][]byte) (index uint64, err error)
	// Delete removes key after commit and apply; an absent key is not an error.
	Delete(ctx context.Context, key string) (index uint64, err error)
	// Write applies ops atomically as one write, like PutAll, under the
	// writer's identity wo: a store that keeps a dedup table applies a
	// (ClientID, Seq) once and answers a repeat with the first result
	// (index). The handler calls it only for writes that carry
	// X-Client-ID and X-Client-Seq; others use Put, PutAll and Delete.
	Write(ctx context.Context, ops []Op, wo WriteOptions) (index uint64, err error)
	// Digest summarizes the local state, taken at one applied index.
	Digest() Digest
}

// Op is one operation of a Write: a put of Value under Key, or with
// Delete the removal of Key.
type Op struct {
	Key    string
	Value  []byte
	Delete bool
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
	// Progress maps each follower's id, in decimal, to its replication
	// progress. Only the leader reports it.
	Progress map[string]Progress `json:"progress,omitempty"`
	// Config is a config-group member's summary of its latest config.
	Config *ConfigStatus `json:"config,omitempty"`
	// Shard is a shard-group member's view of its buckets.
	Shard *ShardStatus `json:"shard,omitempty"`
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
	Group         uint64       `json:"group"`
	ConfigVersion uint64       `json:"configVersion"`
	Buckets       BucketStates `json:"buckets"`
}

// BucketStates lists a shard group's buckets by state, each list in
// ascending order; buckets the group does not own are in none.
type BucketStates struct {
	Serving   []int `json:"serving"`
	Pulling   []int `json:"pulling"`
	BePulling []int `json:"bePulling"`
	GCing     []int `json:"gcing"`
}
