package main

import (
	"strings"
	"testing"

	"github.com/raftkv/raftkv/testcluster"
)

// TestKV: put, get and del in every output format, with the endpoints from
// the flag and from RAFTKVCTL_ENDPOINTS, through a dead first endpoint,
// and the errors of each.
func TestKV(t *testing.T) {
	t.Parallel()
	c, _ := startCluster(t, testcluster.Options{})
	eps := endpoints(c)
	ctl := newCtl(t)
	at := []string{"--endpoints", eps}
	args := func(a ...string) []string { return append(append([]string(nil), at...), a...) }

	if out := ctl.ok(args("put", "greeting", "hello")...); out != "OK\n" {
		t.Errorf("put printed %q; want OK", out)
	}
	// The sharding verbs, pointed at a group that is no config group, say
	// so, and change nothing.
	for _, verb := range [][]string{{"groups"}, {"buckets", "greeting"}, {"move", "1", "2"}, {"join", "2", "http://127.0.0.1:1"}, {"leave", "2"}} {
		ctl.fails(1, "is not a member of a config group", args(verb...)...)
	}
	if out := ctl.ok(args("get", "greeting")...); out != "hello\n" {
		t.Errorf("get printed %q; want hello", out)
	}
	var got struct {
		Key, Value string
		Index      uint64
	}
	decode(t, ctl.ok(args("-w", "json", "get", "greeting")...), &got)
	if got.Key != "greeting" || got.Value != "hello" {
		t.Errorf("get -w json = %+v; want key greeting, value hello", got)
	}
	if out := ctl.ok(args("-w", "table", "get", "greeting")...); !strings.Contains(out, "\n| KEY      | VALUE |") ||
		!strings.Contains(out, "\n| greeting | hello |") {
		t.Errorf("get -w table printed\n%s\nwant a KEY, VALUE table with greeting, hello", out)
	}

	// put -w json reports the raft index; get --min-index reads at least it.
	got.Index = 0
	decode(t, ctl.ok(args("-w", "json", "put", "greeting", "hi")...), &got)
	if got.Key != "greeting" || got.Index == 0 {
		t.Errorf("put -w json = %+v; want the key and its raft index", got)
	}
	for _, read := range [][]string{{"--min-index", itoa(got.Index)}, {"--stale", "--min-index", itoa(got.Index)}} {
		if out := ctl.ok(args(append([]string{"get", "greeting"}, read...)...)...); out != "hi\n" {
			t.Errorf("get %v printed %q; want hi", read, out)
		}
	}
	if out := ctl.ok(args("-w", "table", "put", "greeting", "hey")...); !strings.Contains(out, "| KEY      | INDEX |") {
		t.Errorf("put -w table printed\n%s", out)
	}

	// A value from standard input, any bytes; -w json carries it in base64.
	bin := []byte{0, 0xff, '\n', 'x'}
	if r := ctl.runIn(bin, args("put", "blob")...); r.code != 0 {
		t.Fatalf("put blob < stdin: exit %d, %s", r.code, r.stderr)
	}
	var blob struct {
		Value       *string `json:"value"`
		ValueBase64 string  `json:"value_base64"`
	}
	decode(t, ctl.ok(args("-w", "json", "get", "blob")...), &blob)
	if blob.Value != nil || blob.ValueBase64 != "AP8KeA==" {
		t.Errorf("get -w json of a binary value = %+v; want value_base64 AP8KeA==", blob)
	}
	if v, _, _ := c.Get(1, "blob"); string(v) != string(bin) {
		t.Errorf("the member holds %q; want %q", v, bin)
	}

	// Reserved names go through /key/<key>.
	ctl.ok(args("put", "status", "not the endpoint")...)
	if out := ctl.ok(args("get", "status")...); out != "not the endpoint\n" {
		t.Errorf("get status printed %q", out)
	}

	if out := ctl.ok(args("del", "greeting")...); out != "OK\n" {
		t.Errorf("del printed %q; want OK", out)
	}
	r := ctl.fails(1, `key "greeting" not found`, args("get", "greeting")...)
	if r.stdout != "" {
		t.Errorf("get of an absent key printed %q on stdout", r.stdout)
	}
	if out := ctl.ok(args("-w", "json", "del", "never-written")...); !strings.Contains(out, `"key":"never-written"`) {
		t.Errorf("del -w json printed %q", out)
	}

	// A range: --prefix, or KEY and RANGE_END; it prints the count.
	for _, k := range []string{"r/1", "r/2", "r/3", "s"} {
		ctl.ok(args("put", k, "v")...)
	}
	if out := ctl.ok(args("del", "r/", "r/3")...); out != "2\n" {
		t.Errorf("del r/ r/3 printed %q; want 2", out)
	}
	if out := ctl.ok(args("-w", "json", "del", "--prefix", "r/")...); !strings.Contains(out, `"deleted":1`) {
		t.Errorf("del --prefix r/ -w json printed %q", out)
	}
	if v, _, _ := c.Get(1, "s"); string(v) != "v" {
		t.Errorf("s, outside both ranges, holds %q", v)
	}
	ctl.fails(2, "exclude each other", args("del", "--prefix", "r/", "s")...)
	ctl.fails(2, "not a range", args("del", "--if-match", "3", "r/", "s")...)

	// The environment: RAFTKVCTL_ENDPOINTS and RAFTKVCTL_WRITE_OUT; a
	// flag beats its variable.
	env := ctl.with("RAFTKVCTL_ENDPOINTS="+eps, "RAFTKVCTL_WRITE_OUT=json")
	env.ok("put", "from-env", "yes")
	decode(t, env.ok("get", "from-env"), &got)
	if got.Value != "yes" {
		t.Errorf("get with RAFTKVCTL_ENDPOINTS = %+v; want yes", got)
	}
	if out := env.ok("-w", "simple", "get", "from-env"); out != "yes\n" {
		t.Errorf("-w simple over RAFTKVCTL_WRITE_OUT=json printed %q", out)
	}
	dead := deadURL(t)
	if out := ctl.with("RAFTKVCTL_ENDPOINTS="+dead).ok("--endpoints", eps, "get", "from-env"); out != "yes\n" {
		t.Errorf("--endpoints over a dead RAFTKVCTL_ENDPOINTS printed %q", out)
	}
	ctl.with("RAFTKVCTL_ENDPOINTS="+dead, "RAFTKVCTL_COMMAND_TIMEOUT=1s").fails(1, "connection refused", "get", "from-env")

	// Failover: the first endpoint is dead, the call goes on to the next.
	failover := []string{"--endpoints", dead + "," + eps}
	ctl.ok(append(failover, "put", "failover", "ok")...)
	if out := ctl.ok(append(failover, "get", "failover")...); out != "ok\n" {
		t.Errorf("get through a dead first endpoint printed %q", out)
	}

	// Usage errors: exit status 2, one line on stderr.
	for _, tc := range []struct {
		want string
		args []string
		env  []string
	}{
		{"accepts 1 arg(s), received 0", args("get"), nil},
		{"accepts between 1 and 2 arg(s), received 3", args("put", "a", "b", "c"), nil},
		{`unknown command "fetch"`, args("fetch", "k"), nil},
		{`--write-out "yaml": want simple, json or table`, args("-w", "yaml", "get", "k"), nil},
		{`RAFTKVCTL_WRITE_OUT "xml"`, args("get", "k"), []string{"RAFTKVCTL_WRITE_OUT=xml"}},
		{"unknown flag: --nope", args("get", "--nope", "k"), nil},
		{`endpoint "ftp://x"`, []string{"--endpoints", "ftp://x", "get", "k"}, nil},
		{"--endpoints is empty", []string{"--endpoints", ",", "get", "k"}, nil},
		{`RAFTKVCTL_COMMAND_TIMEOUT="soon"`, args("get", "k"), []string{"RAFTKVCTL_COMMAND_TIMEOUT=soon"}},
	} {
		ctl.with(tc.env...).fails(2, tc.want, tc.args...)
	}
	// An operation error: exit status 1. Every endpoint is dead.
	ctl.fails(1, "connection refused", "--endpoints", dead, "--command-timeout", "500ms", "put", "k", "v")
}
