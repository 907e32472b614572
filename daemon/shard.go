package daemon

import (
	"context"
	"strings"

	"github.com/raftkv/raftkv/configgroup"
	"github.com/raftkv/raftkv/httpapi"
	"github.com/raftkv/raftkv/raftnode"
	"github.com/raftkv/raftkv/shardgroup"
	"github.com/raftkv/raftkv/shardmap"
	"go.uber.org/zap"
)

// This file wires the sharding modes: what a config group member and a
// shard member add to the client API, and the shard group's driver. The
// conversions between kvstore's types and those of configgroup,
// shardgroup and httpapi are in kvadapter.go.

// modeAPI is what a member's mode adds to the client API.
type modeAPI struct {
	store  httpapi.Store
	routes map[string]httpapi.RouteFunc
	// status adds the mode's section to GET /status; nil for none.
	status func(*httpapi.Status)
	// servers lists the client URLs of the groups in the shard config
	// the member knows (adminRule.servers); nil outside sharding.
	servers func() []string
	// gate, when set, holds store's keys back until checkRestored passes.
	gate *restoreGate
}

// apiFor builds the mode's part of the client API over m's store.
func (m *Member) apiFor() (modeAPI, error) {
	switch m.cfg.mode() {
	case modeConfig:
		cs := configStore{m.kv}
		h, err := configgroup.New(configgroup.Config{Store: cs, RequestTimeout: m.cfg.RequestTimeout, Logger: m.lg.Named("configgroup")})
		if err != nil {
			return modeAPI{}, err
		}
		return modeAPI{
			store:  noKeys{store{m.kv, m.node}},
			routes: h.Routes(),
			status: func(st *httpapi.Status) { st.Config = h.Status() },
			servers: func() []string {
				return configServers(m.kv.LatestConfig())
			},
		}, nil
	case modeShard:
		h := shardgroup.NewHandler(shardStore{m.kv}, m.cfg.RequestTimeout, m.lg.Named("shardgroup"))
		var keys httpapi.Store = store{m.kv, m.node}
		var gate *restoreGate
		if dm, ok, _ := readMode(m.cfg.DataDir); ok && dm.Restored {
			gate = &restoreGate{Store: keys}
			keys = gate
		}
		return modeAPI{
			gate:   gate,
			store:  keys,
			routes: h.Routes(),
			status: func(st *httpapi.Status) { st.Shard = h.Status() },
			servers: func() []string {
				st := m.kv.ShardState()
				return append(configServers(st.Config), configServers(st.Prev)...)
			},
		}, nil
	}
	return modeAPI{store: store{m.kv, m.node}}, nil
}

// startDriver starts a shard member's migration driver; nil for other
// modes.
func (m *Member) startDriver() (*shardgroup.Driver, error) {
	if m.cfg.mode() != modeShard {
		return nil, nil
	}
	node, id := m.node, m.cfg.ID
	cfg := shardgroup.Config{
		Group:           m.cfg.Group,
		Store:           shardStore{m.kv},
		IsLeader:        func() bool { return node.Leader() == id },
		MemberURLs:      func() ([]string, bool) { return memberURLs(node.Members()) },
		ConfigEndpoints: m.cfg.ConfigEndpoints,
		PollInterval:    m.cfg.ConfigPollInterval,
		RequestTimeout:  m.cfg.RequestTimeout,
		Client:          m.tlsClient(),
		Logger:          m.lg.Named("shardgroup"),
	}
	if m.cfg.editDriver != nil {
		m.cfg.editDriver(&cfg)
	}
	return shardgroup.Start(cfg)
}

// configServers lists the client URLs of every group c lists.
func configServers(c shardmap.Config) []string {
	var urls []string
	for _, servers := range c.Groups {
		urls = append(urls, servers...)
	}
	return urls
}

// memberURLs lists the client URLs the members published, in id order,
// and whether every member has published one.
func memberURLs(members []raftnode.Member) ([]string, bool) {
	var urls []string
	all := true
	for _, mem := range members {
		if mem.ClientURL == "" {
			all = false
			continue
		}
		urls = append(urls, strings.TrimSuffix(mem.ClientURL, "/"))
	}
	return urls, all
}

// noKeys is a config group member's Store: it serves no keys.
type noKeys struct{ store }

// errNoKeys answers a key request on a config group member.
var errNoKeys = httpapi.BadRequest("this member is in the config group, which serves no keys; send keys to a shard group member, and read or change the config with GET /config and POST /config/join, /config/leave or /config/move")

func (noKeys) GetKV(context.Context, string, httpapi.ReadOptions) (httpapi.KeyValue, uint64, error) {
	return httpapi.KeyValue{}, 0, errNoKeys
}
func (noKeys) Put(context.Context, string, []byte) (httpapi.Written, error) {
	return httpapi.Written{}, errNoKeys
}
func (noKeys) PutAll(context.Context, map[string][]byte) (uint64, error) { return 0, errNoKeys }
func (noKeys) Delete(context.Context, string) (uint64, error)            { return 0, errNoKeys }
func (noKeys) Write(context.Context, []httpapi.Op, httpapi.WriteOptions) (httpapi.Written, error) {
	return httpapi.Written{}, errNoKeys
}
func (noKeys) Txn(context.Context, httpapi.Txn, httpapi.WriteOptions) (httpapi.TxnResult, error) {
	return httpapi.TxnResult{}, errNoKeys
}
func (noKeys) List(context.Context, httpapi.ListOptions) (httpapi.ListResult, error) {
	return httpapi.ListResult{}, errNoKeys
}
func (noKeys) Watch(context.Context, httpapi.WatchOptions) (httpapi.Watcher, error) {
	return nil, errNoKeys
}

// logMode logs what the member is, once it serves.
func (m *Member) logMode(buckets int) {
	switch m.cfg.mode() {
	case modeConfig:
		m.lg.Info("config group member", zap.Int("buckets", buckets))
	case modeShard:
		m.lg.Info("shard group member", zap.Uint64("group", m.cfg.Group), zap.Int("buckets", buckets),
			zap.Strings("config-endpoints", m.cfg.ConfigEndpoints))
	}
}
