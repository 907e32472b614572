package bench

import (
	"errors"
	"math"
	"strings"
	"testing"
	"time"
)

func TestValidate(t *testing.T) {
	ok := Config{Mode: ModePut, Endpoints: []string{"http://127.0.0.1:12380"}}
	for _, tc := range []struct {
		name    string
		edit    func(*Config)
		wantErr string // "" means valid
	}{
		{"defaults", func(*Config) {}, ""},
		{"all modes", func(c *Config) { c.Mode = ModeMixed; c.ReadRatio = 0.5 }, ""},
		{"trailing slash", func(c *Config) { c.Endpoints = []string{"http://h:1/"} }, ""},
		{"https", func(c *Config) { c.Endpoints = []string{"https://h:1"} }, ""},
		{"no mode", func(c *Config) { c.Mode = "" }, "no mode"},
		{"bad mode", func(c *Config) { c.Mode = "scan" }, `unknown mode "scan"`},
		{"no endpoint", func(c *Config) { c.Endpoints = nil }, "no endpoint"},
		{"endpoint without scheme", func(c *Config) { c.Endpoints = []string{"127.0.0.1:12380"} }, "want http(s)://host:port"},
		{"endpoint with path", func(c *Config) { c.Endpoints = []string{"http://h:1/x"} }, "want http(s)://host:port"},
		{"endpoint with query", func(c *Config) { c.Endpoints = []string{"http://h:1?a=b"} }, "want http(s)://host:port"},
		{"negative clients", func(c *Config) { c.Clients = -1 }, "clients -1"},
		{"conns over clients", func(c *Config) { c.Clients = 4; c.Conns = 5 }, "conns 5: want 1 to clients (4)"},
		{"conns equal clients", func(c *Config) { c.Clients = 4; c.Conns = 4 }, ""},
		{"one conn", func(c *Config) { c.Clients = 4; c.Conns = 1 }, ""},
		{"conns below endpoints", func(c *Config) {
			c.Endpoints = []string{"http://a:1", "http://b:1", "http://c:1"}
			c.Conns = 2
		}, "fewer than the 3 endpoints"},
		{"key size over limit", func(c *Config) { c.KeySize = MaxKeySize + 1 }, "key size 4097"},
		{"negative value size", func(c *Config) { c.ValueSize = -1 }, "value size -1"},
		{"empty values", func(c *Config) { c.ValueSize = 0 }, ""},
		{"keyspace fits", func(c *Config) { c.KeySize = 2; c.Keyspace = 100 }, ""},
		{"keyspace too big for keys", func(c *Config) { c.KeySize = 2; c.Keyspace = 101 }, "does not fit in 2-digit keys"},
		{"total and duration", func(c *Config) { c.Total = 5; c.Duration = time.Second }, "exclusive"},
		{"negative total", func(c *Config) { c.Total = -5 }, "total -5"},
		{"negative duration", func(c *Config) { c.Duration = -time.Second }, "duration -1s"},
		{"negative rate", func(c *Config) { c.Rate = -1 }, "rate -1"},
		{"infinite rate", func(c *Config) { c.Rate = math.Inf(1) }, "rate +Inf"},
		{"read ratio over 1", func(c *Config) { c.Mode = ModeMixed; c.ReadRatio = 1.5 }, "read ratio 1.5"},
		{"read ratio NaN", func(c *Config) { c.Mode = ModeMixed; c.ReadRatio = math.NaN() }, "read ratio NaN"},
		{"read ratio ignored by put", func(c *Config) { c.ReadRatio = 7 }, ""},
		{"stale level", func(c *Config) { c.Mode = ModeGet; c.Level = LevelStale }, ""},
		{"bad level", func(c *Config) { c.Mode = ModeGet; c.Level = "consistent" }, `level "consistent"`},
		{"preload put", func(c *Config) { c.Preload = true }, "preload applies to"},
		{"preload get", func(c *Config) { c.Mode = ModeGet; c.Preload = true }, ""},
		{"verify get", func(c *Config) { c.Mode = ModeGet; c.Verify = true }, "verify applies to put"},
		{"verify small keyspace", func(c *Config) { c.Verify = true; c.Clients = 8; c.Keyspace = 7 }, "keyspace 7 is smaller than clients 8"},
		{"verify", func(c *Config) { c.Verify = true; c.Clients = 8; c.Keyspace = 8 }, ""},
		{"negative timeout", func(c *Config) { c.Timeout = -time.Second }, "timeout -1s"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := ok
			c.Endpoints = append([]string(nil), ok.Endpoints...)
			tc.edit(&c)
			err := c.Validate()
			switch {
			case tc.wantErr == "" && err != nil:
				t.Fatalf("Validate() = %v, want nil", err)
			case tc.wantErr != "" && err == nil:
				t.Fatalf("Validate() = nil, want an error containing %q", tc.wantErr)
			case tc.wantErr != "" && !strings.Contains(err.Error(), tc.wantErr):
				t.Fatalf("Validate() = %v, want an error containing %q", err, tc.wantErr)
			case err != nil && !errors.Is(err, ErrInvalidConfig):
				t.Fatalf("Validate() = %v, does not wrap ErrInvalidConfig", err)
			}
		})
	}
}

func TestWithDefaults(t *testing.T) {
	c := Config{Mode: ModeGet, Endpoints: []string{" http://h:1/ "}}.withDefaults()
	if c.Clients != DefaultClients || c.Conns != DefaultClients || c.KeySize != DefaultKeySize ||
		c.Keyspace != DefaultKeyspace || c.Total != DefaultTotal || c.Level != LevelDefault ||
		c.Timeout != DefaultTimeout || c.Endpoints[0] != "http://h:1" {
		t.Fatalf("defaults not applied: %+v", c)
	}
	if d := (Config{Duration: time.Second}).withDefaults(); d.Total != 0 {
		t.Fatalf("Total defaulted to %d with a Duration", d.Total)
	}
}
