package client

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"

	"github.com/raftkv/raftkv/shardmap"
)

// Status is a member's GET /status, as far as the Client reads it.
type Status struct {
	// Role is "router" when a router answered (raftkv route, which has
	// no raft state: every field below but Build is then zero), empty
	// from a member.
	Role          string   `json:"role,omitempty"`
	ID            uint64   `json:"id"`
	Leader        uint64   `json:"leader"`
	Term          uint64   `json:"term"`
	CommitIndex   uint64   `json:"commitIndex"`
	AppliedIndex  uint64   `json:"appliedIndex"`
	SnapshotIndex uint64   `json:"snapshotIndex"`
	Members       []Member `json:"members"`
	// ClusterLevel is the feature level the member's group runs at: the
	// operations of a higher level are refused (503, code
	// cluster_level) until every member speaks it. 0 from members
	// before levels.
	ClusterLevel uint32 `json:"clusterLevel"`
	// ClusterID is the id of the member's cluster, in hex: 1000 unless the
	// cluster was restored from a backup.
	ClusterID string `json:"clusterId"`
	// DataBytes is the size of the keys the member holds, as its space
	// quota counts them (their keys' and values' bytes and 56 bytes for
	// each); QuotaBytes is that quota (raftkv --quota-bytes), 0 for none.
	// Both 0 from members before quotas.
	DataBytes  int64 `json:"dataBytes"`
	QuotaBytes int64 `json:"quotaBytes"`
	// Config is a config-group member's summary of its latest config.
	Config *ConfigStatus `json:"config,omitempty"`
	// Shard is a shard-group member's view of its buckets.
	Shard *ShardStatus `json:"shard,omitempty"`
	// Build is the binary the member runs (empty from members that do
	// not report it).
	Build Build `json:"build"`
	// Endpoint is the member that answered (not part of the JSON).
	Endpoint string `json:"-"`
}

// Build is the binary a member runs: its module version ("(devel)" when
// built from a checkout), the VCS revision it was built from (empty when
// built without VCS information), whether the work tree had uncommitted
// changes, and the Go version.
type Build struct {
	Version  string `json:"version"`
	Revision string `json:"revision,omitempty"`
	Modified bool   `json:"modified,omitempty"`
	Go       string `json:"go"`
	// Level is the feature level the binary speaks; 0 from binaries
	// before levels.
	Level uint32 `json:"level"`
}

// Member is one raft member of a Status.
type Member struct {
	ID         uint64   `json:"id"`
	PeerURLs   []string `json:"peerURLs"`
	ClientURLs []string `json:"clientURLs,omitempty"`
	IsLearner  bool     `json:"isLearner"`
}

// ConfigStatus is the "config" part of a config-group member's status:
// the latest version, the number of buckets, and how many each group has.
type ConfigStatus struct {
	Version uint64         `json:"version"`
	Buckets int            `json:"buckets"`
	Groups  map[string]int `json:"groups"`
}

// ShardStatus is the "shard" part of a shard-group member's status.
type ShardStatus struct {
	Group         uint64       `json:"group"`
	ConfigVersion uint64       `json:"configVersion"`
	Buckets       BucketStates `json:"buckets"`
}

// BucketStates lists a shard group's buckets by state.
type BucketStates struct {
	Serving   []int `json:"serving"`
	Pulling   []int `json:"pulling"`
	BePulling []int `json:"bePulling"`
	GCing     []int `json:"gcing"`
}

// Status returns GET /status of one member: of Config.Endpoints when not
// sharded, else of the config group; the member that answers is the one
// the Client would send its next call to, or the next ones if it fails.
func (c *Client) Status(ctx context.Context) (Status, error) {
	rep, err := c.do(ctx, &call{op: "status", method: http.MethodGet, path: "/status", admin: c.Sharded(), ok: []int{http.StatusOK}})
	if err != nil {
		return Status{}, err
	}
	return decodeStatus(rep)
}

// decodeStatus reads a GET /status answer, naming the member that gave it.
func decodeStatus(rep *reply) (Status, error) {
	var st Status
	if err := json.Unmarshal(rep.body, &st); err != nil {
		return Status{}, &Error{Op: "status", Endpoint: rep.endpoint, Status: rep.status, Code: CodeInternal,
			Message: "unreadable status", Err: err}
	}
	st.Endpoint = rep.endpoint
	return st, nil
}

// Query returns config version v from the config group, or its latest
// when v is -1 or past the latest (as 6.824's Query). A newer config than
// the cached one is cached. A config never changes once published, so a
// version v is read first at any config member that has applied it, with
// a stale read, which needs no leader; only an answer from a member that
// has not (an older config) sends the query on to a linearizable read. A
// version the Client has seen lately (any of its last 64) is answered from
// memory. A router's watch asks for the config before each bucket move
// it meets, and so gets it while the config group has no leader.
func (c *Client) Query(ctx context.Context, v int64) (shardmap.Config, error) {
	if !c.Sharded() {
		return shardmap.Config{}, &Error{Op: "config", Err: ErrNoConfigGroup}
	}
	if v < -1 {
		return shardmap.Config{}, badInput("config", "", "version %d: want -1 (latest) or at least 0", v)
	}
	if v >= 0 {
		if cfg, ok := c.cache.pastConfig(uint64(v)); ok {
			return cfg, nil
		}
		cfg, err := c.queryConfig(ctx, v, true)
		if err != nil {
			return cfg, err // no member answered: no leader would either
		}
		if cfg.Version == uint64(v) {
			c.setRoutes(cfg)
			return cfg, nil
		}
	}
	cfg, err := c.queryConfig(ctx, v, false)
	if err == nil {
		c.setRoutes(cfg)
	}
	return cfg, err
}

// Join adds groups (gid -> its members' client URLs) to the config, or
// gives a group already in it new URLs, and returns the new config.
func (c *Client) Join(ctx context.Context, groups map[uint64][]string) (shardmap.Config, error) {
	body := struct {
		Groups map[string][]string `json:"groups"`
	}{Groups: make(map[string][]string, len(groups))}
	for gid, servers := range groups {
		body.Groups[strconv.FormatUint(gid, 10)] = servers
	}
	return c.admin(ctx, "join", "/config/join", body)
}

// Leave removes groups from the config, handing their buckets to the
// others, and returns the new config.
func (c *Client) Leave(ctx context.Context, gids ...uint64) (shardmap.Config, error) {
	return c.admin(ctx, "leave", "/config/leave", struct {
		GIDs []uint64 `json:"gids"`
	}{gids})
}

// Move places bucket on group gid, pinned there, and returns the new config.
func (c *Client) Move(ctx context.Context, bucket int, gid uint64) (shardmap.Config, error) {
	return c.admin(ctx, "move", "/config/move", struct {
		Bucket int    `json:"bucket"`
		GID    uint64 `json:"gid"`
	}{bucket, gid})
}

// admin POSTs a config operation to the config group. It is a write: it
// carries the Client's id and a sequence number, and is retried as one.
func (c *Client) admin(ctx context.Context, op, path string, body any) (shardmap.Config, error) {
	if !c.Sharded() {
		return shardmap.Config{}, &Error{Op: op, Err: ErrNoConfigGroup}
	}
	b, err := json.Marshal(body)
	if err != nil {
		return shardmap.Config{}, badInput(op, "", "%v", err)
	}
	rep, err := c.do(ctx, &call{op: op, method: http.MethodPost, path: path, body: b, write: true, admin: true, ok: []int{http.StatusOK}})
	if err != nil {
		return shardmap.Config{}, err
	}
	cfg, err := decodeConfig(rep)
	if err != nil {
		return shardmap.Config{}, fmt.Errorf("client: %s applied, but: %w", op, err)
	}
	c.setRoutes(cfg)
	return cfg, nil
}
