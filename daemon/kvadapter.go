package daemon

import (
	"context"
	"errors"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/raftkv/raftkv/configgroup"
	"github.com/raftkv/raftkv/httpapi"
	"github.com/raftkv/raftkv/kvstore"
	"github.com/raftkv/raftkv/shardgroup"
	"github.com/raftkv/raftkv/shardmap"
	"go.uber.org/zap"
)

// This file adapts kvstore's sharding API to the interfaces configgroup,
// shardgroup and httpapi declare, which use their own types so that they
// need not import kvstore.

// storeConfig is the kvstore configuration of a member of cfg's mode with
// buckets buckets.
func storeConfig(cfg Config, buckets int, lg *zap.Logger, reg prometheus.Registerer) kvstore.Config {
	return kvstore.Config{
		Logger:      lg,
		Registerer:  reg,
		Buckets:     buckets,
		Group:       cfg.Group,
		ConfigGroup: cfg.ConfigGroup,
		QuotaBytes:  max(cfg.QuotaBytes, 0),
	}
}

// wireError gives a kvstore error the form httpapi answers: a key of
// another group becomes an *httpapi.WrongGroupError, which carries what
// its 421 and 307 need. Every request's answer passes here: the target
// errors.As takes the address of is allocated only for a failed one.
func wireError(err error) error {
	if err == nil {
		return nil
	}
	var wg *kvstore.WrongGroupError
	if errors.As(err, &wg) {
		return &httpapi.WrongGroupError{Key: wg.Key, Bucket: wg.Bucket, Version: wg.Version, Owner: wg.Owner, Servers: wg.Servers, Err: err}
	}
	return err
}

// wireKV is kv as httpapi names it.
func wireKV(kv kvstore.KeyValue) httpapi.KeyValue {
	return httpapi.KeyValue{Key: kv.Key, Value: kv.Value, CreateIndex: kv.CreateIndex, ModIndex: kv.ModIndex, TTL: kv.TTL}
}

// configStore adapts a config group member's kvstore to configgroup.Store.
type configStore struct{ kv *kvstore.Store }

func (s configStore) ConfigOp(ctx context.Context, op configgroup.Op, wo httpapi.WriteOptions) (shardmap.Config, error) {
	kop := kvstore.ConfigOp{Join: op.Join, Leave: op.Leave}
	if op.Move != nil {
		kop.Move = &kvstore.MoveOp{Bucket: op.Move.Bucket, GID: op.Move.GID}
	}
	return s.kv.ConfigOp(ctx, kop, kvstore.WriteOptions{ClientID: wo.ClientID, Seq: wo.Seq})
}

func (s configStore) QueryConfig(ctx context.Context, version int64, opts httpapi.ReadOptions) (shardmap.Config, error) {
	return s.kv.QueryConfig(ctx, version, kvstore.ReadOptions{Stale: opts.Stale, MinIndex: opts.MinIndex})
}

func (s configStore) WaitConfigVersion(ctx context.Context, version uint64) error {
	return s.kv.WaitConfigVersion(ctx, version)
}

func (s configStore) ConfigHistory() shardmap.History { return s.kv.ConfigHistory() }

// shardStore adapts a shard member's kvstore to shardgroup.Store.
type shardStore struct{ kv *kvstore.Store }

func (s shardStore) ShardState() shardgroup.ShardState { return shardState(s.kv.ShardState()) }

func (s shardStore) LinearizableShardState(ctx context.Context) (shardgroup.ShardState, error) {
	st, err := s.kv.LinearizableShardState(ctx)
	if err != nil {
		return shardgroup.ShardState{}, err
	}
	return shardState(st), nil
}

// shardState is kvstore's shard state as shardgroup's.
func shardState(st kvstore.ShardState) shardgroup.ShardState {
	return shardgroup.ShardState{
		Group:        st.Group,
		Config:       st.Config,
		Prev:         st.Prev,
		Status:       st.Status,
		Joined:       st.Joined,
		AppliedIndex: st.AppliedIndex,
	}
}

func (s shardStore) ShardChanged() <-chan struct{} { return s.kv.ShardChanged() }

func (s shardStore) ProposeConfig(ctx context.Context, c shardmap.Config) error {
	return s.kv.ProposeConfig(ctx, c)
}

func (s shardStore) ExportBucket(ctx context.Context, b int, version uint64) ([]byte, error) {
	d, err := s.kv.ExportBucket(ctx, b, version)
	if err != nil {
		return nil, err
	}
	return d.MarshalBinary()
}

func (s shardStore) InstallBucket(ctx context.Context, b int, version uint64, data []byte) error {
	var d kvstore.BucketData
	if err := d.UnmarshalBinary(data); err != nil {
		return fmt.Errorf("the pulled data of bucket %d is unusable: %w", b, err)
	}
	if d.Bucket != b || d.Version != version {
		return fmt.Errorf("pulled bucket %d at version %d, got bucket %d at version %d", b, version, d.Bucket, d.Version)
	}
	return s.kv.InstallBucket(ctx, &d)
}

func (s shardStore) DeleteBucket(ctx context.Context, b int, version uint64) error {
	return s.kv.DeleteBucket(ctx, b, version)
}

func (s shardStore) FinishGC(ctx context.Context, b int, version uint64) error {
	return s.kv.FinishGC(ctx, b, version)
}

func (s shardStore) MarkJoined(ctx context.Context, from shardmap.Config) error {
	return s.kv.MarkJoined(ctx, from)
}
