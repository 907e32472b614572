package httpapi

import "context"

// Store is the replicated key-value state machine. httpapi declares it so it
// never imports the package that implements it.
type Store interface {
	// Get returns the value of key. An absent key yields an error whose
	// NotFound() bool method returns true.
	Get(ctx context.Context, key string) ([]byte, error)
	// Put returns after the write is committed and applied; index is its raft index.
	Put(ctx context.Context, key string, value []byte) (index uint64, err error)
	// Delete removes key after commit and apply; an absent key is not an error.
	Delete(ctx context.Context, key string) (index uint64, err error)
}

// Cluster is raft membership.
type Cluster interface {
	// AddMember returns after the conf change adding id at peerURL is applied.
	AddMember(ctx context.Context, id uint64, peerURL string) error
	// RemoveMember returns after the conf change removing id is applied.
	RemoveMember(ctx context.Context, id uint64) error
	// Status reports this node's view of the cluster.
	Status() Status
}

// Member is one raft member as GET /status reports it.
type Member struct {
	ID         uint64   `json:"id"`
	PeerURLs   []string `json:"peerURLs"`
	ClientURLs []string `json:"clientURLs,omitempty"`
	IsLearner  bool     `json:"isLearner"`
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
}
