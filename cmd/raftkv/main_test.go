package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/raftkv/raftkv/daemon"
	"github.com/raftkv/raftkv/testcluster"
)

func TestParseFlags(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	cluster := "--cluster=http://127.0.0.1:12379,http://127.0.0.1:22379,http://127.0.0.1:32379"
	tests := []struct {
		name    string
		args    []string
		wantErr string
	}{
		{"valid", []string{"--id", "2", cluster, "--port", "22380", "--data-dir", filepath.Join(dir, "d")}, ""},
		{"id zero", []string{"--id", "0", cluster}, "outside the --cluster list"},
		{"id past cluster", []string{"--id", "4", cluster}, "outside the --cluster list"},
		{"non-numeric id", []string{"--id", "x", cluster}, "invalid value"},
		{"url without scheme", []string{"--id", "1", "--cluster", "127.0.0.1:12379"}, "entry 1"},
		{"url without port", []string{"--id", "1", "--cluster", "http://127.0.0.1"}, "no port"},
		{"https peer url without peer TLS", []string{"--id", "1", "--cluster", "https://127.0.0.1:12379"}, "is https, which needs --peer-cert-file"},
		{"http peer url with peer TLS", []string{"--id", "1", cluster, "--peer-cert-file", file, "--peer-key-file", file}, "is http, but --peer-cert-file"},
		{"cert without key", []string{"--id", "1", cluster, "--cert-file", file}, "--cert-file and --key-file go together"},
		{"client cert auth without CA", []string{"--id", "1", cluster, "--cert-file", file, "--key-file", file, "--client-cert-auth"}, "--client-cert-auth needs --trusted-ca-file"},
		{"CA without cert", []string{"--id", "1", cluster, "--trusted-ca-file", file}, "need --cert-file"},
		{"admin CA without TLS", []string{"--id", "1", cluster, "--admin-ca-file", file}, "need TLS on the client port"},
		{"admin CN without a CA", []string{"--id", "1", cluster, "--cert-file", file, "--key-file", file, "--admin-cn", "admin"}, "--admin-cn needs"},
		{"advertise URL with a path", []string{"--id", "1", cluster, "--advertise-client-url", "http://127.0.0.1:1/kv"}, `--advertise-client-url "http://127.0.0.1:1/kv" is not an http(s)://host:port URL: it has a path`},
		{"advertise URL with user info", []string{"--id", "1", cluster, "--advertise-client-url", "http://u:p@127.0.0.1:1"}, "it carries user info"},
		{"advertise URL without scheme", []string{"--id", "1", cluster, "--advertise-client-url", "127.0.0.1:1"}, "it has no http:// or https:// scheme"},
		{"https advertise URL without TLS", []string{"--id", "1", cluster, "--advertise-client-url", "https://127.0.0.1:1"}, "needs --cert-file"},
		{"bad port", []string{"--id", "1", cluster, "--port", "70000"}, "not a TCP port"},
		{"data dir is a file", []string{"--id", "1", cluster, "--data-dir", file}, "not a directory"},
		{"data dir parent missing", []string{"--id", "1", cluster, "--data-dir", filepath.Join(dir, "no", "such")}, "does not exist"},
		{"bad log format", []string{"--id", "1", cluster, "--data-dir", dir, "--log-format", "xml"}, "auto, json or console"},
		{"gc percent too low", []string{"--id", "1", cluster, "--data-dir", dir, "--gc-percent", "5"}, "at least 10"},
		{"gc percent negative", []string{"--id", "1", cluster, "--data-dir", dir, "--gc-percent", "-1"}, "at least 10"},
		{"negative snapshot write rate", []string{"--id", "1", cluster, "--data-dir", dir, "--snapshot-write-rate", "-1"}, "0 (no limit) or positive"},
		{"negative batch gather wait", []string{"--id", "1", cluster, "--data-dir", dir, "--batch-gather-wait", "-1ms"}, "between 0 (never wait) and 1s"},
		{"batch gather wait too long", []string{"--id", "1", cluster, "--data-dir", dir, "--batch-gather-wait", "2s"}, "between 0 (never wait) and 1s"},
		{"negative commit notice delay", []string{"--id", "1", cluster, "--data-dir", dir, "--commit-notice-delay", "-1ms"}, "between 0 (send at once) and 1s"},
		{"commit notice delay too long", []string{"--id", "1", cluster, "--data-dir", dir, "--commit-notice-delay", "2s"}, "between 0 (send at once) and 1s"},
		{"negative gomaxprocs", []string{"--id", "1", cluster, "--data-dir", dir, "--gomaxprocs", "-1"}, "0 (automatic) or positive"},
		{"negative quota", []string{"--id", "1", cluster, "--data-dir", dir, "--quota-bytes", "-1"}, "must not be negative (0: no quota)"},
		{"negative hash check interval", []string{"--id", "1", cluster, "--data-dir", dir, "--hash-check-interval", "-1s"}, "must not be negative (0: never)"},
		{"stray argument", []string{"--id", "1", cluster, "extra"}, "unexpected argument"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o, err := parseFlags(tt.args)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				if !filepath.IsAbs(o.dataDir) || o.id != 2 || len(o.cluster) != 3 {
					t.Fatalf("parsed %+v", o)
				}
				if got := o.config(nil).ClientListenAddr; got != ":22380" {
					t.Fatalf("client listen address %q", got)
				}
				if o.config(nil).Pprof {
					t.Fatal("pprof is served without --enable-pprof")
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("error %v, want it to contain %q", err, tt.wantErr)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Fatalf("error is not one line: %q", err)
			}
		})
	}
}

// TestParseFlagsQuota: --quota-bytes passes to the daemon as given, its
// default the daemon's, and 0 as "none" (negative in daemon.Config).
func TestParseFlagsQuota(t *testing.T) {
	for arg, want := range map[string]int64{"": daemon.DefaultQuotaBytes, "4096": 4096, "0": -1} {
		args := []string{"--cluster", "http://127.0.0.1:12379", "--data-dir", t.TempDir()}
		if arg != "" {
			args = append(args, "--quota-bytes", arg)
		}
		o, err := parseFlags(args)
		if err != nil {
			t.Fatal(err)
		}
		if got := o.config(nil).QuotaBytes; got != want {
			t.Errorf("--quota-bytes %q: daemon quota %d, want %d", arg, got, want)
		}
	}
}

func TestParseFlagsHashCheckInterval(t *testing.T) {
	for arg, want := range map[string]time.Duration{"": 0, "5m": 5 * time.Minute} {
		args := []string{"--cluster", "http://127.0.0.1:12379", "--data-dir", t.TempDir()}
		if arg != "" {
			args = append(args, "--hash-check-interval", arg)
		}
		o, err := parseFlags(args)
		if err != nil {
			t.Fatal(err)
		}
		if got := o.config(nil).HashCheckInterval; got != want {
			t.Errorf("--hash-check-interval %q: daemon interval %v, want %v", arg, got, want)
		}
	}
}

func TestParseFlagsEnablePprof(t *testing.T) {
	o, err := parseFlags([]string{"--cluster", "http://127.0.0.1:12379", "--data-dir", t.TempDir(), "--enable-pprof"})
	if err != nil {
		t.Fatal(err)
	}
	if !o.config(nil).Pprof {
		t.Fatal("--enable-pprof does not enable pprof")
	}
}

func TestParseFlagsDefaultDataDir(t *testing.T) {
	t.Chdir(t.TempDir())
	o, err := parseFlags([]string{"--id", "1", "--cluster", "http://127.0.0.1:12379"})
	if err != nil {
		t.Fatal(err)
	}
	if filepath.Base(o.dataDir) != "raftkv-1" {
		t.Fatalf("default data dir %q", o.dataDir)
	}
	if _, err := os.Stat(o.dataDir); !os.IsNotExist(err) {
		t.Fatalf("parsing flags touched the disk: %v", err)
	}
}

func TestGCPercentFor(t *testing.T) {
	for _, c := range []struct {
		live uint64
		want int
	}{
		{0, gcMaxPercent},
		{1 << 20, gcMaxPercent}, // a small state: the 64 MiB floor, capped
		{32 << 20, 200},         // the floor is twice the live heap
		{256 << 20, 25},         // the floor is a quarter of it
		{512 << 20, 15},         // from about 430 MiB on, 15% of it
		{4 << 30, 15},
	} {
		if got := gcPercentFor(c.live); got != c.want {
			t.Errorf("gcPercentFor(%d MiB) = %d, want %d", c.live>>20, got, c.want)
		}
	}
}

// TestHelpAndVersion runs the binary with --help, --version and a bad flag.
func TestHelpAndVersion(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the raftkv binary")
	}
	bin := testcluster.BuildBinary(t)
	r := runRaftkv(t, bin, nil, "--help")
	if r.code != 0 || r.stderr != "" || !strings.HasPrefix(r.stdout, "raftkv runs one member of a replicated key-value store") {
		t.Errorf("--help: exit status %d, stderr %q, stdout:\n%s", r.code, r.stderr, r.stdout)
	}
	for _, want := range []string{"\nExamples:\n", "--port 12380\n", "--join-addr 127.0.0.1:12380\n", "\nUsage: raftkv --id N", "\nFlags:\n", "-enable-pprof", "-version"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("--help lacks %q", want)
		}
	}
	r = runRaftkv(t, bin, nil, "--version")
	if r.code != 0 || r.stderr != "" || !strings.HasPrefix(r.stdout, "raftkv version: ") || !strings.Contains(r.stdout, "\nGo version: go") {
		t.Errorf("--version: exit status %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	r = runRaftkv(t, bin, nil, "--nope")
	if r.code != 2 || r.stdout != "" || r.stderr != "raftkv: flag provided but not defined: -nope\n" {
		t.Errorf("a bad flag: exit status %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
}

func TestLogEncoding(t *testing.T) {
	for _, tc := range []struct {
		format   string
		terminal bool
		want     string
	}{
		{"auto", true, "console"},
		{"auto", false, "json"},
		{"json", true, "json"},
		{"json", false, "json"},
		{"console", true, "console"},
		{"console", false, "console"},
	} {
		if got := logEncoding(tc.format, tc.terminal); got != tc.want {
			t.Errorf("logEncoding(%q, terminal %v) = %q, want %q", tc.format, tc.terminal, got, tc.want)
		}
	}
}

// TestParseShardingFlags: the sharding flags, one mode each, and their
// one-line refusals.
func TestParseShardingFlags(t *testing.T) {
	dir := t.TempDir()
	base := []string{"--id", "1", "--cluster", "http://127.0.0.1:12379", "--data-dir", dir}
	eps := "--config-endpoints=http://127.0.0.1:6380, http://127.0.0.1:6381/"
	tests := []struct {
		name    string
		args    []string
		wantErr string
		check   func(t *testing.T, o *options)
	}{
		{"config group, default buckets", []string{"--config-group"}, "", func(t *testing.T, o *options) {
			c := o.config(nil)
			if !c.ConfigGroup || c.Buckets != 0 || c.Group != 0 {
				t.Errorf("config %+v", c)
			}
		}},
		{"config group, 64 buckets", []string{"--config-group", "--buckets", "64"}, "", func(t *testing.T, o *options) {
			if c := o.config(nil); !c.ConfigGroup || c.Buckets != 64 {
				t.Errorf("config %+v", c)
			}
		}},
		{"shard member", []string{"--group", "3", eps, "--config-poll-interval", "250ms"}, "", func(t *testing.T, o *options) {
			c := o.config(nil)
			if c.Group != 3 || len(c.ConfigEndpoints) != 2 || c.ConfigEndpoints[1] != "http://127.0.0.1:6381" || c.ConfigPollInterval != 250*time.Millisecond {
				t.Errorf("config %+v", c)
			}
		}},
		{"both modes", []string{"--config-group", "--group", "1"}, "exclude each other", nil},
		{"buckets without config group", []string{"--buckets", "64"}, "--buckets is for --config-group only", nil},
		{"buckets on a shard member", []string{"--group", "1", eps, "--buckets", "64"}, "--buckets is for --config-group only", nil},
		{"zero buckets", []string{"--config-group", "--buckets", "0"}, "--buckets 0 must be 1-16384", nil},
		{"too many buckets", []string{"--config-group", "--buckets", "20000"}, "must be 1-16384", nil},
		{"group without endpoints", []string{"--group", "1"}, "--group 1 needs --config-endpoints", nil},
		{"endpoints without group", []string{eps}, "--config-endpoints needs --group", nil},
		{"endpoints on the config group", []string{"--config-group", eps}, "--config-endpoints is for --group members", nil},
		{"bad endpoint", []string{"--group", "1", "--config-endpoints", "127.0.0.1:6380"}, `entry 1 "127.0.0.1:6380" is not an http(s)://host:port URL`, nil},
		{"endpoint with a path", []string{"--group", "1", "--config-endpoints", "http://h:1/config"}, "is not an http(s)://host:port URL", nil},
		{"poll interval without group", []string{"--config-poll-interval", "1s"}, "--config-poll-interval is for --group members only", nil},
		{"poll interval too short", []string{"--group", "1", eps, "--config-poll-interval", "0s"}, "must be at least 1ms", nil},
		{"negative group", []string{"--group", "-1", eps}, "invalid value", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o, err := parseFlags(append(append([]string{}, base...), tt.args...))
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				tt.check(t, o)
				if err := o.config(nil).Validate(); err != nil {
					t.Errorf("daemon refuses the config: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) || strings.Contains(err.Error(), "\n") {
				t.Fatalf("error %v, want one line containing %q", err, tt.wantErr)
			}
		})
	}
}

// TestParseFlagsShardingDataDirs: members of different groups on one
// machine get different default data dirs.
func TestParseFlagsShardingDataDirs(t *testing.T) {
	t.Chdir(t.TempDir())
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--config-group"}, "raftkv-config-2"},
		{[]string{"--group", "7", "--config-endpoints", "http://127.0.0.1:6380"}, "raftkv-group7-2"},
		{nil, "raftkv-2"},
	} {
		o, err := parseFlags(append([]string{"--id", "2", "--cluster", "http://127.0.0.1:1,http://127.0.0.1:2"}, tc.args...))
		if err != nil {
			t.Fatal(err)
		}
		if got := filepath.Base(o.dataDir); got != tc.want {
			t.Errorf("%v: data dir %q, want %q", tc.args, got, tc.want)
		}
	}
}
