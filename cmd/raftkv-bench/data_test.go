package main

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/raftkv/raftkv/bench"
	"github.com/raftkv/raftkv/testcluster"
)

// TestDataFlags: the data-model modes take their own flags and refuse
// those of the other modes.
func TestDataFlags(t *testing.T) {
	o, err := parseFlags([]string{"watch", "--endpoints", "http://127.0.0.1:1,http://127.0.0.1:2", "--watchers", "10", "--rate", "5", "--clients", "2"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if d := o.data; d == nil || d.Mode != bench.ModeWatch || d.Watchers != 10 || d.Rate != 5 || d.Clients != 2 || len(d.Endpoints) != 2 || d.Keyspace != 0 {
		t.Fatalf("watch flags: %+v", o.data)
	}
	o, err = parseFlags([]string{"list", "--page-size", "50", "--keyspace", "700"}, nil)
	if err != nil || o.data.PageSize != 50 || o.data.Keyspace != 700 {
		t.Fatalf("list flags: %+v, %v", o, err)
	}
	for _, args := range [][]string{
		{"cas", "--verify"}, {"txn", "--level", "stale"}, {"list", "--page-size", "0"}, {"list", "--page-size", "10001"},
		{"watch", "--watchers", "0"}, {"cas", "--config-endpoints", "http://127.0.0.1:1"}, {"put", "--watchers", "5"},
	} {
		if _, err := parseFlags(args, nil); err == nil {
			t.Errorf("%q: accepted", args)
		}
	}
}

// TestDataEndToEnd runs cas and watch through the command against a real
// cluster, with --all.
func TestDataEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a real cluster")
	}
	c := testcluster.Start(t, testcluster.Options{})
	c.WaitLeader(t, 30*time.Second)
	for _, args := range [][]string{
		{"cas", "--all", "--endpoints", c.ClientURL(1), "--clients", "4", "--keyspace", "3", "--duration", "1s", "--json"},
		{"watch", "--all", "--endpoints", c.ClientURL(2), "--clients", "2", "--watchers", "9", "--rate", "40", "--duration", "1s", "--json"},
	} {
		var stdout, stderr bytes.Buffer
		if code := run(t.Context(), args, &stdout, &stderr, false); code != 0 {
			t.Fatalf("%q exited %d\nstdout: %s\nstderr: %s", args, code, stdout.String(), stderr.String())
		}
		var s bench.DataSummary
		if err := json.Unmarshal(stdout.Bytes(), &s); err != nil {
			t.Fatalf("%q: not one JSON summary: %v\n%s", args, err, stdout.String())
		}
		if string(s.Mode) != args[0] || len(s.Endpoints) != 3 || s.Ops == 0 || len(s.Errors) != 0 || len(s.Problems) != 0 {
			t.Fatalf("%q: %s", args, strings.TrimSpace(stdout.String()))
		}
		if args[0] == "watch" && s.Ops != 9*s.Writes {
			t.Fatalf("watch: %d events for %d writes to 9 watchers", s.Ops, s.Writes)
		}
	}
}
