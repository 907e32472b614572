package daemon

import (
	"net"
	"strings"
	"testing"
	"time"
)

func TestConfigValidate(t *testing.T) {
	valid := func() Config {
		return Config{
			ID:      2,
			Peers:   []string{"http://127.0.0.1:12379", "http://127.0.0.1:22379", "http://127.0.0.1:32379"},
			DataDir: "/var/lib/raftkv-2",
		}
	}
	tests := []struct {
		name    string
		change  func(*Config)
		wantErr string
	}{
		{"zero fields are defaults", func(*Config) {}, ""},
		{"everything set", func(c *Config) {
			c.ClientListenAddr, c.PeerListenAddr, c.AdvertiseClientURL = "127.0.0.1:0", "0.0.0.0:22379", "http://h:1"
			c.TickInterval, c.ElectionTicks, c.RequestTimeout = time.Millisecond, 2, time.Second
			c.SnapshotWriteRate, c.BatchGatherWait = -1, -1
		}, ""},
		{"no peers", func(c *Config) { c.Peers = nil }, "peer list is empty"},
		{"id zero", func(c *Config) { c.ID = 0 }, "outside the peer list"},
		{"id past peers", func(c *Config) { c.ID = 4 }, "outside the peer list"},
		{"bad peer URL", func(c *Config) { c.Peers[2] = "127.0.0.1:32379" }, "peer 3"},
		{"peer listed twice", func(c *Config) { c.Peers[2] = c.Peers[0] }, "listed twice"},
		{"no data dir", func(c *Config) { c.DataDir = "" }, "data dir is required"},
		{"relative data dir", func(c *Config) { c.DataDir = "raftkv-2" }, "absolute"},
		{"client address without port", func(c *Config) { c.ClientListenAddr = "127.0.0.1" }, "client listen address"},
		{"client port too large", func(c *Config) { c.ClientListenAddr = ":70000" }, "not a TCP port"},
		{"peer port zero", func(c *Config) { c.PeerListenAddr = "127.0.0.1:0" }, "port 0"},
		{"advertise URL without scheme", func(c *Config) { c.AdvertiseClientURL = "h:1" }, "advertise client URL"},
		{"advertise URL with a query", func(c *Config) { c.AdvertiseClientURL = "http://h:1?x=1" }, "it has a query"},
		{"advertise URL with a fragment", func(c *Config) { c.AdvertiseClientURL = "http://h:1#x" }, "it has a fragment"},
		{"tick below 1ms", func(c *Config) { c.TickInterval = time.Microsecond }, "at least 1ms"},
		{"one election tick", func(c *Config) { c.ElectionTicks = 1 }, "at least 2"},
		{"negative request timeout", func(c *Config) { c.RequestTimeout = -time.Second }, "negative"},
		{"negative join timeout", func(c *Config) { c.JoinTimeout = -time.Second }, "negative"},
		{"batch gather wait over 1s", func(c *Config) { c.BatchGatherWait = 2 * time.Second }, "over 1s"},
		{"config group", func(c *Config) { c.ConfigGroup, c.Buckets = true, 64 }, ""},
		{"shard member", func(c *Config) {
			c.Group, c.ConfigEndpoints, c.ConfigPollInterval = 2, []string{"http://127.0.0.1:6380", "https://h:1/"}, time.Second
		}, ""},
		{"both modes", func(c *Config) { c.ConfigGroup, c.Group, c.ConfigEndpoints = true, 1, []string{"http://h:1"} }, "not both"},
		{"buckets of a shard member", func(c *Config) { c.Group, c.ConfigEndpoints, c.Buckets = 1, []string{"http://h:1"}, 8 }, "learns it from the config group"},
		{"buckets of a plain member", func(c *Config) { c.Buckets = 8 }, "learns it from the config group"},
		{"too many buckets", func(c *Config) { c.ConfigGroup, c.Buckets = true, 1<<20 }, "must be 1-16384"},
		{"group without endpoints", func(c *Config) { c.Group = 1 }, "needs the config group's endpoints"},
		{"endpoints without group", func(c *Config) { c.ConfigEndpoints = []string{"http://h:1"} }, "give its group id"},
		{"bad endpoint", func(c *Config) { c.Group, c.ConfigEndpoints = 1, []string{"h:1"} }, "not an http(s)://host:port URL"},
		{"endpoint with a query", func(c *Config) { c.Group, c.ConfigEndpoints = 1, []string{"http://h:1?x=1"} }, "not an http(s)://host:port URL"},
		{"poll interval below 1ms", func(c *Config) {
			c.Group, c.ConfigEndpoints, c.ConfigPollInterval = 1, []string{"http://h:1"}, time.Microsecond
		}, "at least 1ms"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := valid()
			tt.change(&c)
			err := c.Validate()
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("unexpected error: %v", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Fatalf("error %v, want one containing %q", err, tt.wantErr)
			}
		})
	}
}

func TestConfigDefaults(t *testing.T) {
	c := Config{ID: 1, Peers: []string{"http://127.0.0.1:12379"}, DataDir: "/d", JoinAddr: "h:1"}.withDefaults()
	if !c.Join || c.JoinTimeout != DefaultJoinTimeout || c.ClientListenAddr != ":9121" ||
		c.SnapshotCount != DefaultSnapshotCount || c.SnapshotCatchUpEntries != DefaultSnapshotCatchUpEntries ||
		c.SnapshotBytes != DefaultSnapshotBytes || c.SnapshotWriteRate != DefaultSnapshotWriteRate ||
		c.BatchGatherWait != DefaultBatchGatherWait || c.TickInterval != DefaultTickInterval ||
		c.ElectionTicks != DefaultElectionTicks || c.RequestTimeout != DefaultRequestTimeout || c.Logger == nil {
		t.Fatalf("defaults not applied: %+v", c)
	}
}

func TestClientURL(t *testing.T) {
	peers := []string{"http://127.0.0.1:12379", "http://10.0.0.2:22379"}
	addr := &net.TCPAddr{IP: net.IPv4zero, Port: 22380}
	for _, tc := range []struct {
		listen, advertise, want string
	}{
		{":22380", "", "http://10.0.0.2:22380"},                     // the host of the peer URL
		{"127.0.0.2:0", "", "http://127.0.0.2:22380"},               // the port listened on
		{"[::1]:22380", "", "http://[::1]:22380"},                   // IPv6 in brackets
		{":22380", "http://kv.example:80", "http://kv.example:80"},  // as advertised
		{":22380", "http://kv.example:80/", "http://kv.example:80"}, // joined with paths
	} {
		c := Config{ID: 2, Peers: peers, ClientListenAddr: tc.listen, AdvertiseClientURL: tc.advertise}
		if got := c.clientURL(addr); got != tc.want {
			t.Errorf("listen %q advertise %q: client URL %q, want %q", tc.listen, tc.advertise, got, tc.want)
		}
	}
}
