package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/raftkv/raftkv/bench"
	"github.com/raftkv/raftkv/internal/testcerts"
	"github.com/raftkv/raftkv/shardmap"
	"github.com/raftkv/raftkv/testcluster"
)

func TestMain(m *testing.M) { testcluster.Main(m) }

func TestParseFlags(t *testing.T) {
	for _, tc := range []struct {
		name    string
		args    string
		wantErr string
		check   func(*options) bool
	}{
		{"defaults", "put", "", func(o *options) bool {
			c := o.cfg
			return c.Mode == bench.ModePut && len(c.Endpoints) == 1 && c.Endpoints[0] == "http://127.0.0.1:12380" &&
				c.Clients == 16 && c.Conns == 0 && c.KeySize == 8 && c.ValueSize == 256 && c.Keyspace == 100000 &&
				!c.Sequential && c.Total == 0 && c.Duration == 0 && c.Rate == 0 && c.Level == "default" &&
				c.Timeout == 10*time.Second && !o.all && !o.json
		}},
		{"mode after flags", "--clients 4 get", "", func(o *options) bool { return o.cfg.Mode == bench.ModeGet && o.cfg.Clients == 4 }},
		{"everything", "mixed --endpoints http://a:1,http://b:2/ --clients 8 --conns 2 --key-size 10 --value-size 0 " +
			"--keyspace 500 --seq --duration 3s --rate 100 --read-ratio 0.5 --level stale --preload --timeout 1s --seed 9 --json",
			"", func(o *options) bool {
				c := o.cfg
				return c.Mode == bench.ModeMixed && len(c.Endpoints) == 2 && c.Conns == 2 && c.KeySize == 10 &&
					c.ValueSize == 0 && c.Keyspace == 500 && c.Sequential && c.Duration == 3*time.Second &&
					c.Rate == 100 && c.ReadRatio == 0.5 && c.Level == "stale" && c.Preload && c.Seed == 9 && o.json
			}},
		{"all", "delete --all --endpoints http://h:1", "", func(o *options) bool { return o.all && o.cfg.Mode == bench.ModeDelete }},
		{"verify", "put --verify --keyspace 100 --clients 10", "", func(o *options) bool { return o.cfg.Verify }},
		{"config endpoints", "put --config-endpoints http://c:1,http://d:2", "", func(o *options) bool {
			return len(o.cfg.ConfigEndpoints) == 2 && len(o.cfg.Endpoints) == 0
		}},
		{"config and endpoints", "put --config-endpoints http://c:1 --endpoints http://a:1", "--config-endpoints excludes --endpoints and --all", nil},
		{"config and all", "put --config-endpoints http://c:1 --all", "--config-endpoints excludes", nil},
		{"bad config endpoint", "put --config-endpoints c:1", "want http(s)://host:port", nil},
		{"no mode", "--clients 4", "no mode", nil},
		{"unknown mode", "scan", `unknown mode "scan"`, nil},
		{"two modes", "put get", "unexpected arguments", nil},
		{"unknown flag", "put --nope", "flag provided but not defined", nil},
		{"zero clients", "put --clients 0", "--clients 0", nil},
		{"zero keyspace", "put --keyspace 0", "--keyspace 0", nil},
		{"zero key size", "put --key-size 0", "--key-size 0", nil},
		{"zero timeout", "put --timeout 0s", "--timeout 0s", nil},
		{"conns over clients", "put --clients 2 --conns 3", "conns 3: want 1 to clients (2)", nil},
		{"conns below endpoints", "put --endpoints http://a:1,http://b:1 --clients 2 --conns 1", "fewer than the 2 endpoints", nil},
		{"keyspace over key size", "put --key-size 3 --keyspace 1001", "does not fit in 3-digit keys", nil},
		{"total and duration", "put --total 5 --duration 1s", "exclusive", nil},
		{"bad endpoint", "put --endpoints 127.0.0.1:12380", "want http(s)://host:port", nil},
		{"bad level", "get --level consistent", `level "consistent"`, nil},
		{"read ratio range", "mixed --read-ratio 2", "read ratio 2", nil},
		{"read ratio on get", "get --read-ratio 0.5", "--read-ratio does not apply to get runs", nil},
		{"read ratio default on get", "get --read-ratio 0.9", "", nil},
		{"level on put", "put --level stale", "--level does not apply to put runs", nil},
		{"preload on put", "put --preload", "--preload does not apply to put runs", nil},
		{"verify on get", "get --verify", "--verify does not apply to get runs", nil},
		{"verify small keyspace", "put --verify --keyspace 3 --clients 4", "keyspace 3 is smaller than clients 4", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o, err := parseFlags(strings.Fields(tc.args), io.Discard)
			switch {
			case tc.wantErr == "" && err != nil:
				t.Fatalf("parseFlags(%q) = %v", tc.args, err)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Fatalf("parseFlags(%q) = %v, want an error containing %q", tc.args, err, tc.wantErr)
			case tc.check != nil && !tc.check(o):
				t.Fatalf("parseFlags(%q) = %+v", tc.args, *o)
			}
		})
	}
}

// kvHandler answers as a raftkv member that stores nothing: 204 to writes,
// 404 to reads.
func kvHandler(w http.ResponseWriter, r *http.Request) {
	io.Copy(io.Discard, r.Body)
	if r.Method == http.MethodGet {
		http.NotFound(w, r)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func TestRunExitStatus(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(kvHandler))
	defer srv.Close()
	down := httptest.NewServer(http.NotFoundHandler())
	down.Close()
	for _, tc := range []struct {
		name       string
		args       string
		want       int
		wantStdout string
		wantStderr string
	}{
		{"help", "--help", 0, "usage: raftkv-bench <put|get|mixed|delete|cas|txn|list|watch> [flags]", ""},
		{"help starts with what it does", "--help", 0, "raftkv-bench loads a raftkv cluster", ""},
		{"help has examples", "-h", 0, "Examples:\n  raftkv-bench put --all", ""},
		{"version", "--version", 0, "raftkv-bench version: ", ""},
		{"version with a mode", "put --version", 0, "\nGo version: go", ""},
		{"bad flag", "put --clients -1", 2, "", "raftkv-bench: --clients -1"},
		{"text", "get --clients 2 --total 20 --endpoints " + srv.URL, 0, "get: 2 clients on 2 conns to 1 endpoint", ""},
		{"json", "delete --clients 2 --total 20 --json --endpoints " + srv.URL, 0, `"mode":"delete"`, ""},
		{"nothing succeeds", "put --clients 1 --total 3 --endpoints " + down.URL, 1, "refused", "no request succeeded"},
		{"discovery fails", "put --all --endpoints " + down.URL, 1, "", "bench: discover"},
		{"no member cpu without /status", "put --clients 2 --total 20 --endpoints " + srv.URL, 0,
			"member CPU  unknown: bench: server CPU: bench: discover: GET " + srv.URL + "/status: 404", ""},
		{"no member cpu asked", "put --clients 2 --total 20 --member-cpu=false --endpoints " + srv.URL, 0, "throughput", ""},
		{"cpu of pids", fmt.Sprintf("put --clients 2 --total 20 --json --endpoints %s --cpu-pids %d", srv.URL, os.Getpid()), 0,
			`"cpu_sources":1,`, ""},
		{"bad cpu pid", "put --cpu-pids 1,x", 2, "", `--cpu-pids: "x" is not a process id`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			got := run(t.Context(), strings.Fields(tc.args), &stdout, &stderr, false)
			if got != tc.want || !strings.Contains(stdout.String(), tc.wantStdout) || !strings.Contains(stderr.String(), tc.wantStderr) {
				t.Fatalf("run(%q) = %d, want %d\nstdout (want %q):\n%s\nstderr (want %q):\n%s",
					tc.args, got, tc.want, tc.wantStdout, stdout.String(), tc.wantStderr, stderr.String())
			}
		})
	}
}

// TestRunBadFlag: a bad flag is one line on stderr, without the help.
func TestRunBadFlag(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if got := run(t.Context(), []string{"put", "--nope"}, &stdout, &stderr, false); got != 2 {
		t.Errorf("exit status %d, want 2", got)
	}
	if stdout.Len() > 0 || stderr.String() != "raftkv-bench: flag provided but not defined: -nope\n" {
		t.Errorf("stdout %q, stderr %q", stdout.String(), stderr.String())
	}
}

func TestRenderProgress(t *testing.T) {
	for _, tc := range []struct {
		p    bench.Progress
		want string
	}{
		{bench.Progress{Phase: bench.PhaseRun, Done: 50, Target: 100, Elapsed: time.Second},
			"run     [===============>              ]  50%  50 done  50/s  0 errors  1s"},
		{bench.Progress{Phase: bench.PhasePreload, Done: 10, Errors: 2, Duration: 4 * time.Second, Elapsed: 4 * time.Second},
			"preload [==============================] 100%  10 done  2/s  2 errors  4s"},
		{bench.Progress{Phase: bench.PhaseVerify, Elapsed: 1234 * time.Millisecond},
			"verify  [>                             ]   0%  0 done  0/s  0 errors  1.2s"},
	} {
		if got := renderProgress(tc.p); got != tc.want {
			t.Errorf("renderProgress(%+v) =\n%q, want\n%q", tc.p, got, tc.want)
		}
	}
}

// TestEndToEnd runs the command against a real 3-member cluster: a put run
// with --verify through every member (--all), then a stale get run.
func TestEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a real cluster")
	}
	c := testcluster.Start(t, testcluster.Options{})
	c.WaitLeader(t, 30*time.Second)

	var stdout, stderr bytes.Buffer
	args := []string{"put", "--all", "--endpoints", c.ClientURL(1), "--clients", "4", "--conns", "3",
		"--keyspace", "200", "--duration", "1s", "--verify", "--json"}
	if code := run(t.Context(), args, &stdout, &stderr, false); code != 0 {
		t.Fatalf("put run exited %d\nstdout: %s\nstderr: %s", code, stdout.String(), stderr.String())
	}
	var s bench.Summary
	if err := json.Unmarshal(stdout.Bytes(), &s); err != nil {
		t.Fatalf("put run output is not one JSON summary: %v\n%s", err, stdout.String())
	}
	t.Logf("put: %s", stdout.String())
	if len(s.Endpoints) != 3 {
		t.Errorf("--all found %v, want the 3 members", s.Endpoints)
	}
	if s.Ops == 0 || s.Failed != 0 || len(s.Errors) != 0 {
		t.Errorf("put run: ops %d, failed %d, errors %v; want some ops and no error", s.Ops, s.Failed, s.Errors)
	}
	if v := s.Verify; v == nil || v.Checked == 0 || v.Missing != 0 || v.Mismatched != 0 || v.ReadErrors != 0 {
		t.Errorf("verify = %+v, want keys checked and none missing", v)
	}
	// Every member's /metrics was read before and after: a member's CPU
	// for a second of writes is far above the counter's 10 ms resolution.
	if s.CPUSources != 3 || s.CPUError != "" || s.MemberCPUUsPerOp == nil || *s.MemberCPUUsPerOp <= 0 ||
		s.MemberCPUS == nil || *s.MemberCPUS <= 0 {
		t.Errorf("put run: member CPU from %d members, error %q, %v s, %v µs/op; want 3 members and a positive figure",
			s.CPUSources, s.CPUError, s.MemberCPUS, s.MemberCPUUsPerOp)
	}

	stdout.Reset()
	stderr.Reset()
	args = []string{"get", "--endpoints", c.ClientURL(2), "--clients", "2", "--keyspace", "200", "--total", "100", "--level", "stale"}
	if code := run(t.Context(), args, &stdout, &stderr, false); code != 0 {
		t.Fatalf("get run exited %d\nstdout: %s\nstderr: %s", code, stdout.String(), stderr.String())
	}
	t.Logf("get:\n%s", stdout.String())
	if !strings.Contains(stdout.String(), "100 ok, 0 failed") {
		t.Errorf("get run: want 100 ok, 0 failed:\n%s", stdout.String())
	}
	// Without --all, the members come from the endpoint's /status.
	if !strings.Contains(stdout.String(), "over 3 members") {
		t.Errorf("get run: want member CPU over 3 members:\n%s", stdout.String())
	}
}

// TestEndToEndSharded: --config-endpoints routes each key to its bucket's
// group, over two real one-member groups, with the config served by an
// in-test server that follows the sharding contract's "Config group HTTP
// API" (GET /config).
func TestEndToEndSharded(t *testing.T) {
	if testing.Short() {
		t.Skip("starts real clusters")
	}
	a := testcluster.Start(t, testcluster.Options{N: 1})
	b := testcluster.Start(t, testcluster.Options{N: 1})
	a.WaitLeader(t, 30*time.Second)
	b.WaitLeader(t, 30*time.Second)
	cfg, _ := shardmap.Initial(16)
	cfg, err := cfg.Join(map[uint64][]string{1: {a.ClientURL(1)}, 2: {b.ClientURL(1)}})
	if err != nil {
		t.Fatal(err)
	}
	cs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		json.NewEncoder(w).Encode(cfg)
	}))
	defer cs.Close()

	var stdout, stderr bytes.Buffer
	args := []string{"put", "--config-endpoints", cs.URL, "--clients", "4", "--keyspace", "100", "--seq",
		"--total", "300", "--verify", "--json"}
	if code := run(t.Context(), args, &stdout, &stderr, false); code != 0 {
		t.Fatalf("put run exited %d\nstdout: %s\nstderr: %s", code, stdout.String(), stderr.String())
	}
	var s bench.Summary
	if err := json.Unmarshal(stdout.Bytes(), &s); err != nil {
		t.Fatalf("output is not one JSON summary: %v\n%s", err, stdout.String())
	}
	if s.Ops != 300 || s.Failed != 0 || s.Groups != 2 || s.ConfigVersion != 1 || s.Verify == nil {
		t.Fatalf("summary %s", stdout.String())
	}
	// The workers share the 300 requests as they come, so one that starts
	// late writes fewer than all of its 25 keys: verify checks those written.
	written := 0
	for k := range 100 {
		key := bench.Key(uint64(k), bench.DefaultKeySize)
		in, out := a, b
		if cfg.OwnerOfKey(key) == 2 {
			in, out = b, a
		}
		switch _, st, err := in.Get(1, key); {
		case err == nil && st == http.StatusOK:
			written++
		case err != nil || st != http.StatusNotFound:
			t.Fatalf("%s at its group: %d %v", key, st, err)
		}
		if _, st, err := out.Get(1, key); err != nil || st != http.StatusNotFound {
			t.Fatalf("%s at the other group: %d %v", key, st, err)
		}
	}
	if written == 0 || s.Verify.Checked != uint64(written) {
		t.Fatalf("verify checked %d keys; the groups hold %d\nsummary %s", s.Verify.Checked, written, stdout.String())
	}
}

// TestEndToEndTLS: --cacert, --cert and --key reach members that serve
// https and require a client certificate, for the load, --all's
// discovery, the members' CPU from /metrics and a data-model run; without
// the certificate every request fails.
func TestEndToEndTLS(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a real cluster")
	}
	certs := testcerts.NewSet(t, t.TempDir())
	c := testcluster.Start(t, testcluster.Options{TLS: certs})
	c.WaitLeader(t, 30*time.Second)
	tlsArgs := []string{"--cacert", certs.CA.CertFile, "--cert", certs.Client.CertFile, "--key", certs.Client.KeyFile}

	var stdout, stderr bytes.Buffer
	args := append([]string{"put", "--all", "--endpoints", c.ClientURL(1), "--clients", "4",
		"--keyspace", "200", "--duration", "1s", "--verify", "--json"}, tlsArgs...)
	if code := run(t.Context(), args, &stdout, &stderr, false); code != 0 {
		t.Fatalf("put run exited %d\nstdout: %s\nstderr: %s", code, stdout.String(), stderr.String())
	}
	var s bench.Summary
	if err := json.Unmarshal(stdout.Bytes(), &s); err != nil {
		t.Fatalf("put run output is not one JSON summary: %v\n%s", err, stdout.String())
	}
	if len(s.Endpoints) != 3 || !strings.HasPrefix(s.Endpoints[0], "https://") {
		t.Errorf("--all found %v, want the 3 members' https URLs", s.Endpoints)
	}
	if s.Ops == 0 || s.Failed != 0 || s.Verify == nil || s.Verify.Missing != 0 {
		t.Errorf("put run over TLS: ops %d, failed %d, verify %+v", s.Ops, s.Failed, s.Verify)
	}
	if s.CPUSources != 3 || s.CPUError != "" {
		t.Errorf("member CPU over TLS from %d members, error %q", s.CPUSources, s.CPUError)
	}

	stdout.Reset()
	stderr.Reset()
	args = append([]string{"cas", "--endpoints", c.ClientURL(2), "--clients", "2", "--keyspace", "10", "--duration", "1s", "--json"}, tlsArgs...)
	if code := run(t.Context(), args, &stdout, &stderr, false); code != 0 {
		t.Fatalf("cas run over TLS exited %d\nstdout: %s\nstderr: %s", code, stdout.String(), stderr.String())
	}

	// The CA alone: the members refuse the handshake.
	stdout.Reset()
	stderr.Reset()
	args = []string{"put", "--endpoints", c.ClientURL(1), "--clients", "1", "--total", "5", "--member-cpu=false",
		"--timeout", "2s", "--json", "--cacert", certs.CA.CertFile}
	if code := run(t.Context(), args, &stdout, &stderr, false); code == 0 || strings.Contains(stdout.String(), `"failed":0,`) {
		t.Errorf("a run without a client certificate exited %d: %s", code, stdout.String())
	}
}
