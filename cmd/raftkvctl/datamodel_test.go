package main

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/raftkv/raftkv/testcluster"
)

// TestDataModel: versions in get, conditional puts and deletes, list and
// txn.
func TestDataModel(t *testing.T) {
	t.Parallel()
	c, _ := startCluster(t, testcluster.Options{})
	ctl := newCtl(t, "RAFTKVCTL_ENDPOINTS="+endpoints(c))

	// get -w json: the value, its versions and the index it was read at.
	var put struct {
		Index    uint64
		ModIndex uint64 `json:"mod_index"`
	}
	decode(t, ctl.ok("-w", "json", "put", "a/1", "one"), &put)
	var kv kvJSON
	decode(t, ctl.ok("-w", "json", "get", "a/1"), &kv)
	if kv.Key != "a/1" || *kv.Value != "one" || kv.CreateIndex != put.Index || kv.ModIndex != put.Index || kv.Index < put.Index || put.ModIndex != kv.ModIndex {
		t.Errorf("put -w json = %+v, get -w json = %+v; want create and mod index %d", put, kv, put.Index)
	}
	if out := ctl.ok("-w", "table", "get", "a/1"); !strings.Contains(out, "| KEY | VALUE | CREATE INDEX | MOD INDEX | TTL |") {
		t.Errorf("get -w table printed\n%s", out)
	}

	// Conditional writes.
	ctl.fails(1, fmt.Sprintf(`precondition failed: key "a/1" is at version %d; nothing changed`, put.Index),
		"put", "a/1", "two", "--if-match", fmt.Sprint(put.Index+100))
	ctl.fails(1, `precondition failed: key "a/1" is at version`, "put", "a/1", "two", "--if-absent")
	ctl.ok("put", "a/1", "two", "--if-match", fmt.Sprint(put.Index))
	ctl.fails(1, `precondition failed: key "a/9" is absent`, "del", "a/9", "--if-match", "5")
	ctl.ok("put", "a/2", "deux", "--if-absent")
	ctl.ok("put", "a/3", "trois")
	ctl.ok("put", "b/1", "other")
	ctl.fails(2, "--if-match and --if-absent exclude each other", "put", "x", "y", "--if-match", "1", "--if-absent")

	// list: a prefix, a range, keys only, a limit, in every format.
	if out := ctl.ok("list", "--prefix", "a/"); out != "a/1\ntwo\na/2\ndeux\na/3\ntrois\n" {
		t.Errorf("list --prefix a/ printed %q", out)
	}
	if out := ctl.ok("list", "--start", "a/2", "--end", "b/2", "--keys-only"); out != "a/2\na/3\nb/1\n" {
		t.Errorf("list --start a/2 --end b/2 --keys-only printed %q", out)
	}
	var l struct {
		Index uint64   `json:"index"`
		KVs   []kvJSON `json:"kvs"`
		Count int      `json:"count"`
		More  bool     `json:"more"`
	}
	decode(t, ctl.ok("-w", "json", "list", "--prefix", "a/", "--limit", "2"), &l)
	if l.Count != 2 || !l.More || l.KVs[0].Key != "a/1" || l.KVs[1].Key != "a/2" || l.KVs[1].ModIndex == 0 || l.Index == 0 {
		t.Errorf("list -w json --limit 2 = %+v; want a/1 and a/2, more", l)
	}
	if out := ctl.ok("-w", "table", "list"); strings.Count(out, "\n") != 8 || !strings.Contains(out, "| b/1 | other |") {
		t.Errorf("list -w table of every key printed\n%s", out)
	}
	ctl.fails(2, "--prefix goes without --start and --end", "list", "--prefix", "a", "--start", "b")

	// txn: the failure branch, then the success branch.
	txn := []byte("value(\"t\") = \"x\"\n\nput t y\nget t\n\nput t x\nget \"t\"\n")
	r := ctl.runIn(txn, "txn")
	if r.code != 0 || r.stdout != "FAILURE\nOK\nt\nx\n" {
		t.Errorf("txn against an absent t: exit %d, stdout %q, stderr %q; want FAILURE", r.code, r.stdout, r.stderr)
	}
	r = ctl.runIn(txn, "-w", "json", "txn")
	var tr struct {
		Succeeded bool
		Index     uint64
		ModIndex  uint64 `json:"mod_index"`
		Responses []map[string]json.RawMessage
	}
	decode(t, r.stdout, &tr)
	if !tr.Succeeded || tr.Index == 0 || tr.ModIndex != tr.Index || len(tr.Responses) != 2 || !strings.Contains(string(tr.Responses[1]["get"]), `"value":"y"`) {
		t.Errorf("txn -w json with t = x printed %q", r.stdout)
	}
	for _, bad := range []string{"value(\"t\") ~ \"x\"\n", "mod(\"t\") > \"big\"\n", "\nput t\n", "\nrename t u\n", ""} {
		if r := ctl.runIn([]byte(bad), "txn"); r.code != 2 || !strings.HasPrefix(r.stderr, "raftkvctl: txn") || strings.Count(r.stderr, "--help") != 1 {
			t.Errorf("txn of %q: exit %d, stderr %q; want a usage error naming txn --help once", bad, r.code, r.stderr)
		}
	}
	// An operation on the first line: the compares come first.
	if r := ctl.runIn([]byte("put t z\n"), "txn"); r.code != 2 || !strings.Contains(r.stderr, "without compares, start with an empty line") {
		t.Errorf("txn starting with an operation: exit %d, stderr %q; want the hint to start with an empty line", r.code, r.stderr)
	}
}

// TestTTL: put --ttl sends the TTL and get -w json shows it (expiry is
// the members' part); a TTL out of range is refused before sending.
func TestTTL(t *testing.T) {
	t.Parallel()
	c, _ := startCluster(t, testcluster.Options{})
	ctl := newCtl(t, "RAFTKVCTL_ENDPOINTS="+endpoints(c))
	// Long enough that the key is still there when the next process
	// reads it, on a machine however busy.
	ctl.ok("put", "session", "open", "--ttl", "1m")
	var kv kvJSON
	decode(t, ctl.ok("-w", "json", "get", "session"), &kv)
	if kv.TTL != 60 {
		t.Errorf("get -w json of a key put with --ttl 1m = %+v; want ttl 60", kv)
	}
	ctl.fails(2, "--ttl 10ms", "put", "k", "v", "--ttl", "10ms")
	ctl.fails(2, "--ttl -1s", "put", "k", "v", "--ttl", "-1s")
	ctl.fails(2, "--ttl 8760h0m1s", "put", "k", "v", "--ttl", "8760h1s")
}

// TestWatch: watch a prefix and a key from the index of a put, in both
// formats, until --max-events.
func TestWatch(t *testing.T) {
	t.Parallel()
	c, _ := startCluster(t, testcluster.Options{})
	ctl := newCtl(t, "RAFTKVCTL_ENDPOINTS="+endpoints(c))
	var put struct{ Index uint64 }
	decode(t, ctl.ok("-w", "json", "put", "w/1", "x"), &put)
	ctl.ok("del", "w/1")
	ctl.ok("put", "w/2", "y")
	if out := ctl.ok("watch", "w/1", "--max-events", "1", "--from-index", fmt.Sprint(put.Index)); out != "PUT\nw/1\nx\n" {
		t.Errorf("watch w/1 printed %q", out)
	}
	if out := ctl.ok("watch", "--prefix", "w/", "--from-index", fmt.Sprint(put.Index), "--max-events", "3"); out != "PUT\nw/1\nx\nDELETE\nw/1\nPUT\nw/2\ny\n" {
		t.Errorf("watch --prefix w/ printed %q", out)
	}
	out := ctl.ok("-w", "json", "watch", "w/2", "--from-index", fmt.Sprint(put.Index), "--max-events", "1")
	var ev struct {
		Type, Key, Value, ID string
		ModIndex             uint64 `json:"mod_index"`
	}
	if err := json.Unmarshal([]byte(out), &ev); err != nil || ev.Type != "put" || ev.Key != "w/2" || ev.Value != "y" || ev.ModIndex <= put.Index || ev.ID == "" {
		t.Errorf("watch -w json w/2 printed %q (%v)", out, err)
	}
	ctl.fails(2, "watch needs a KEY, or --prefix", "watch")
	ctl.fails(2, "not a table", "-w", "table", "watch", "k")
}
