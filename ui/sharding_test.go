package ui_test

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/raftkv/raftkv/ui"
	"golang.org/x/net/html"
)

// contractMembers serves, under /<name>/, the /status, /metrics and
// /config bodies that the sharding contract (the project's sharding
// design) gives a config group member and two shard group members in the
// middle of moving bucket 3 from group 2 to group 1. They stand in for
// sharded members until those are part of this tree; the dashboard handler
// and the page under test are the real ones.
func contractMembers(t *testing.T) *httptest.Server {
	var srv *httptest.Server
	bodies := map[string]string{
		"/cfg/status": `{"id":1,"leader":1,"term":4,"commitIndex":9,"appliedIndex":9,"snapshotIndex":0,` +
			`"members":[{"id":1,"peerURLs":["http://127.0.0.1:1"],"clientURLs":["{{}}/cfg"],"isLearner":false}],` +
			`"config":{"version":3,"buckets":8,"groups":{"1":4,"2":4}}}`,
		"/cfg/config": `{"Version":3,"Buckets":[1,1,1,1,2,2,2,2],"Groups":{"1":["{{}}/g1"],"2":["{{}}/g2"]}}`,
		"/g1/status": `{"id":1,"leader":1,"term":2,"commitIndex":20,"appliedIndex":20,"members":[{"id":1,"clientURLs":["{{}}/g1"]}],` +
			`"shard":{"group":1,"configVersion":3,"buckets":{"serving":[0,1,2],"pulling":[3],"bePulling":[],"gcing":[]}}}`,
		"/g2/status": `{"id":1,"leader":1,"term":5,"commitIndex":30,"appliedIndex":30,"members":[{"id":1,"clientURLs":["{{}}/g2"]}],` +
			`"shard":{"group":2,"configVersion":3,"buckets":{"serving":[4,5,6,7],"pulling":[],"bePulling":[3],"gcing":[]}}}`,
	}
	srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/metrics") {
			fmt.Fprint(w, "# TYPE raftkv_kv_writes_total counter\nraftkv_kv_writes_total{result=\"committed\"} 1\n")
			return
		}
		b, ok := bodies[r.URL.Path]
		if !ok {
			http.NotFound(w, r)
			return
		}
		if r.URL.Path == "/cfg/config" && r.URL.Query().Get("level") != "stale" {
			http.Error(w, "want level=stale", http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, strings.ReplaceAll(b, "{{}}", srv.URL))
	}))
	t.Cleanup(srv.Close)
	return srv
}

// TestShardingView: the view of a config group member carries its config,
// the bucket map and each shard group's members with their sections.
func TestShardingView(t *testing.T) {
	members := contractMembers(t)
	h, err := ui.New(ui.Config{Self: members.URL + "/cfg"})
	if err != nil {
		t.Fatal(err)
	}
	v := serveView(t, h)
	switch {
	case v.Error != "" || len(v.Members) != 1 || v.Members[0].Config == nil || v.Members[0].Config.Version != 3:
		t.Fatalf("view %+v: want one config member at version 3", v)
	case v.ShardConfig == nil || v.ShardConfig.Version != 3 || len(v.ShardConfig.Buckets) != 8:
		t.Fatalf("shard config %+v, want version 3 with 8 buckets", v.ShardConfig)
	case len(v.Groups) != 2 || v.Groups[0].ID != 1 || v.Groups[0].Buckets != 4 || len(v.Groups[1].Members) != 1:
		t.Fatalf("groups %+v, want 1 and 2 with 4 buckets each", v.Groups)
	}
	g2 := v.Groups[1].Members[0]
	if !g2.Up || g2.Role != "leader" || g2.Term != 5 || g2.Shard == nil || fmt.Sprint(g2.Shard.Buckets.BePulling) != "[3]" {
		t.Errorf("group 2's member %+v, want up, leader, term 5, bucket 3 being pulled", g2)
	}
}

func serveView(t *testing.T, h http.Handler) ui.Cluster {
	t.Helper()
	srv := httptest.NewServer(h)
	defer srv.Close()
	resp, err := http.Get(srv.URL + ui.APIPath)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var v ui.Cluster
	if err := jsonDecode(resp, &v); err != nil {
		t.Fatal(err)
	}
	return v
}

// TestShardingInBrowser: the page renders the sections of a config group
// member (bucket owners, bucket 3 pulling, the groups) and of a shard
// group member (its group, version and bucket states).
func TestShardingInBrowser(t *testing.T) {
	chrome := chromium(t)
	members := contractMembers(t)
	for _, tc := range []struct {
		self  string
		check func(attrs []map[string]string) error
	}{
		{"/cfg", func(els []map[string]string) error {
			var cells, pulling, owner2, groupRows int
			for _, a := range els {
				switch {
				case strings.HasPrefix(a["class"], "bucket") && a["data-bucket"] != "":
					cells++
					if a["data-state"] == "pulling" && a["data-bucket"] == "3" && a["data-owner"] == "1" {
						pulling++
					}
					if a["data-owner"] == "2" {
						owner2++
					}
				case a["class"] == "group-member" && a["data-up"] == "true":
					groupRows++
				}
			}
			if cells != 8 || pulling != 1 || owner2 != 4 || groupRows != 2 {
				return fmt.Errorf("%d bucket cells (%d of group 2, bucket 3 pulling: %d), %d group rows up; want 8 (4), 1, 2", cells, owner2, pulling, groupRows)
			}
			return nil
		}},
		{"/g2", func(els []map[string]string) error {
			var group, bePulling, serving int
			for _, a := range els {
				switch {
				case a["id"] == "shard-group" && a["data-group"] == "2" && a["data-version"] == "3":
					group++
				case a["data-bucket"] == "3" && a["data-state"] == "bePulling":
					bePulling++
				case a["data-state"] == "serving" && a["data-bucket"] != "":
					serving++
				}
			}
			if group != 1 || bePulling != 1 || serving != 4 {
				return fmt.Errorf("group line %d, bucket 3 being pulled %d, serving cells %d; want 1, 1, 4", group, bePulling, serving)
			}
			return nil
		}},
	} {
		h, err := ui.New(ui.Config{Self: members.URL + tc.self})
		if err != nil {
			t.Fatal(err)
		}
		srv := httptest.NewServer(h)
		els, dom, err := elements(t, chrome, srv.URL+"/ui")
		srv.Close()
		if err != nil {
			t.Fatal(err)
		}
		var state string
		for _, a := range els {
			if a["id"] == "conn" {
				state = a["data-state"]
			}
		}
		if err := tc.check(els); err != nil || state != "ok" {
			t.Errorf("page of %s (state %q): %v\n%s", tc.self, state, err, dom)
		}
	}
}

// elements loads url in Chromium and returns the attributes of every
// element of the resulting DOM.
func elements(t *testing.T, chrome, url string) ([]map[string]string, string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, chrome, chromeFlags(t, "--dump-dom", url)...).Output()
	if err != nil {
		return nil, "", fmt.Errorf("chromium: %v", err)
	}
	doc, err := html.Parse(bytes.NewReader(out))
	if err != nil {
		return nil, "", err
	}
	var els []map[string]string
	var walk func(*html.Node)
	walk = func(n *html.Node) {
		if n.Type == html.ElementNode {
			a := map[string]string{}
			for _, at := range n.Attr {
				a[at.Key] = at.Val
			}
			els = append(els, a)
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c)
		}
	}
	walk(doc)
	return els, string(out), nil
}
