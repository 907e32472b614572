package main

import (
	"bytes"
	"errors"
	"flag"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/raftkv/raftkv/internal/testcerts"
	"github.com/raftkv/raftkv/testcluster"
)

func TestParseFlags(t *testing.T) {
	for _, tc := range []struct {
		args    []string
		wantErr string
	}{
		{[]string{"--endpoints", "http://127.0.0.1:12380,http://127.0.0.1:22380/"}, ""},
		{nil, "--endpoints is required"},
		{[]string{"--endpoints", "127.0.0.1:12380"}, "not an http(s)://host:port URL: it has no http:// or https:// scheme"},
		{[]string{"--endpoints", "http://127.0.0.1:12380/x"}, "it has a path"},
		{[]string{"--endpoints", "http://a:1", "--duration", "0s"}, "--duration must be positive"},
		{[]string{"--endpoints", "http://a:1", "--clients", "0"}, "must be positive"},
		{[]string{"--endpoints", "http://a:1", "--rate", "-1"}, "must not be negative"},
		{[]string{"--endpoints", "http://a:1", "extra"}, "unexpected arguments"},
	} {
		o, err := parseFlags(tc.args, io.Discard)
		switch {
		case tc.wantErr == "" && err != nil:
			t.Errorf("%q: %v", tc.args, err)
		case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
			t.Errorf("%q: error %v, want one containing %q", tc.args, err, tc.wantErr)
		case tc.wantErr == "":
			if len(o.endpoints) != 2 || o.endpoints[1] != "http://127.0.0.1:22380" {
				t.Errorf("%q: endpoints %q", tc.args, o.endpoints)
			}
			if o.duration != 30*time.Second || o.seed == 0 || !strings.HasPrefix(o.prefix, "raftkv-check/") {
				t.Errorf("%q: defaults %+v", tc.args, o)
			}
		}
	}
}

func TestHelpAndVersion(t *testing.T) {
	var help bytes.Buffer
	if _, err := parseFlags([]string{"--help"}, &help); !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("--help: %v, want flag.ErrHelp", err)
	}
	for _, want := range []string{"raftkv-check runs a workload", "\nExamples:\n  raftkv-check --endpoints ", "\nFlags:\n", "-version"} {
		if !strings.Contains(help.String(), want) {
			t.Errorf("--help lacks %q:\n%s", want, help.String())
		}
	}
	if !strings.HasPrefix(help.String(), "raftkv-check runs") {
		t.Errorf("--help does not start with what the command does:\n%s", help.String())
	}
	help.Reset()
	if _, err := parseFlags([]string{"--nope"}, &help); err == nil || help.Len() > 0 {
		t.Errorf("an unknown flag: %v, and the help written: %q", err, help.String())
	}
	if _, err := parseFlags([]string{"--version"}, &help); !errors.Is(err, errVersion) {
		t.Errorf("--version: %v, want errVersion", err)
	}
}

func TestMain(m *testing.M) { testcluster.Main(m) }

// TestCheckOverTLS: with --cacert, --cert and --key the check runs against
// members that serve https and require a client certificate, and passes,
// its watch's check included.
func TestCheckOverTLS(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a real cluster")
	}
	certs := testcerts.NewSet(t, t.TempDir())
	c := testcluster.Start(t, testcluster.Options{TLS: certs})
	c.WaitLeader(t, 30*time.Second)
	var endpoints []string
	for _, id := range c.IDs() {
		endpoints = append(endpoints, c.ClientURL(id))
	}
	o, err := parseFlags([]string{"--endpoints", strings.Join(endpoints, ","), "--duration", "2s", "--clients", "4",
		"--out", t.TempDir(), "--cacert", certs.CA.CertFile, "--cert", certs.Client.CertFile, "--key", certs.Client.KeyFile}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	r, err := run(t.Context(), o)
	if err != nil {
		t.Fatal(err)
	}
	if !r.OK() || r.Stats.AckedWrites == 0 || r.Stats.Reads == 0 || r.Watch == nil || r.Watch.Acked == 0 {
		t.Fatalf("check over TLS: %s", r.Verdict())
	}
	if _, err := parseFlags([]string{"--endpoints", endpoints[0], "--cert", certs.Client.CertFile}, io.Discard); err == nil {
		t.Error("--cert without --key was taken")
	}
}

// TestRefusesARouter: against a router (raftkv route) the check refuses
// to run, instead of reporting the violations a router's missing state
// and merged watch would seem to be.
func TestRefusesARouter(t *testing.T) {
	if testing.Short() {
		t.Skip("starts real processes")
	}
	d := testcluster.StartSharded(t, testcluster.ShardedOptions{ConfigMembers: 1})
	rt := d.StartRouter()
	rt.WaitListening(t, 30*time.Second)
	o, err := parseFlags([]string{"--endpoints", rt.URL(), "--duration", "1s"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := run(t.Context(), o); err == nil || !strings.Contains(err.Error(), rt.URL()+" is a router") {
		t.Fatalf("run against a router: %v; want the refusal", err)
	}
}
