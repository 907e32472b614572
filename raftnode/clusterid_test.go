package raftnode

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"go.etcd.io/etcd/client/pkg/v3/transport"
	"go.etcd.io/etcd/server/v3/storage/wal"
	"go.uber.org/zap/zaptest"
)

// TestWALKeepsClusterID: a new WAL records the id it was made with, a
// later start reads it back whatever id it is offered, and a WAL without
// metadata (written before ids were kept) is DefaultClusterID's.
func TestWALKeepsClusterID(t *testing.T) {
	lg := zaptest.NewLogger(t)
	dir := t.TempDir()
	ds, err := openDisk(lg, dir, 0xabc, 2, 0)
	if err != nil {
		t.Fatal(err)
	}
	if ds.clusterID != 0xabc {
		t.Fatalf("new WAL: cluster id %x; want abc", ds.clusterID)
	}
	ds.wal.Close()
	ds, err = openDisk(lg, dir, DefaultClusterID, 2, 0)
	if err != nil {
		t.Fatal(err)
	}
	if ds.clusterID != 0xabc {
		t.Fatalf("reopened WAL: cluster id %x; want abc, the one it was made with", ds.clusterID)
	}
	ds.wal.Close()

	old := t.TempDir()
	w, err := wal.Create(lg, walDir(old), nil)
	if err != nil {
		t.Fatal(err)
	}
	w.Close()
	ds, err = openDisk(lg, old, 0xabc, 3, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer ds.wal.Close()
	if ds.clusterID != DefaultClusterID {
		t.Fatalf("WAL without metadata: cluster id %x; want the default", ds.clusterID)
	}

	for _, bad := range []string{"{", `{"cluster_id":"xyz"}`, `{"cluster_id":"0"}`, `{"cluster_id":"1","member_id":"0"}`, `{"cluster_id":"1","member_id":"q"}`} {
		if _, _, _, err := decodeWALMetadata([]byte(bad)); err == nil {
			t.Errorf("metadata %s read without an error", bad)
		}
	}
}

// TestWALKeepsMemberID: a WAL names the member it was made for, and
// another member refuses to start from it, as etcd keeps its NodeID in
// the WAL: with another --id it would vote and acknowledge as a member
// whose log it does not hold. A WAL without the id (written before it was
// kept) is not checked.
func TestWALKeepsMemberID(t *testing.T) {
	lg := zaptest.NewLogger(t)
	dir := t.TempDir()
	ds, err := openDisk(lg, dir, DefaultClusterID, 1, 0)
	if err != nil {
		t.Fatal(err)
	}
	ds.wal.Close()
	_, err = openDisk(lg, dir, DefaultClusterID, 2, 0)
	if om := (*OtherMemberError)(nil); !errors.As(err, &om) || *om != (OtherMemberError{Owner: 1, ID: 2}) {
		t.Fatalf("member 2 on member 1's WAL: %v", err)
	}
	ds, err = openDisk(lg, dir, DefaultClusterID, 1, 0)
	if err != nil {
		t.Fatalf("member 1 again on its own WAL: %v", err)
	}
	ds.wal.Close()

	old := t.TempDir()
	w, err := wal.Create(lg, walDir(old), encodeWALMetadata(DefaultClusterID, 0, 0))
	if err != nil {
		t.Fatal(err)
	}
	w.Close()
	for _, id := range []uint64{1, 2} {
		ds, err := openDisk(lg, old, DefaultClusterID, id, 0)
		if err != nil {
			t.Fatalf("member %d on a WAL that names no member: %v", id, err)
		}
		ds.wal.Close()
	}
}

func TestRestoredClusterID(t *testing.T) {
	peers := []string{"http://127.0.0.1:1", "http://127.0.0.1:2"}
	a := RestoredClusterID(10, 2, 5, peers)
	if a != RestoredClusterID(10, 2, 5, peers) {
		t.Fatal("the same backup and peers gave two ids")
	}
	for _, other := range []uint64{
		RestoredClusterID(11, 2, 5, peers),
		RestoredClusterID(10, 3, 5, peers),
		RestoredClusterID(10, 2, 6, peers),
		RestoredClusterID(10, 2, 5, peers[:1]),
		RestoredClusterID(10, 2, 5, []string{"http://127.0.0.1:1http://127.0.0.1:2"}),
	} {
		if other == a {
			t.Errorf("another backup or other peers gave the same id %x", a)
		}
	}
	if a == 0 || a == DefaultClusterID {
		t.Errorf("restored id %x", a)
	}
}

// TestDiscoverClusterID: a joining member asks every other member on
// its peer port; members answer only a member of their cluster, so one of
// another cluster at a listed URL (the old cluster a restored one came
// from) is not taken at its word; members that answer must agree; a
// member of a binary that serves no cluster id (404) means the default
// one, when no member names an id.
func TestDiscoverClusterID(t *testing.T) {
	rafthttp := http.NotFoundHandler() // what an older member's peer port answers
	members := func(ids ...uint64) func(uint64) bool {
		return func(id uint64) bool { return slices.Contains(ids, id) }
	}
	serve := func(h http.Handler) string {
		s := httptest.NewServer(h)
		t.Cleanup(s.Close)
		return s.URL
	}
	restored := serve(clusterIDHandler(0xfeed, members(1, 2, 3, 4), rafthttp))
	restored2 := serve(clusterIDHandler(0xfeed, members(1, 2, 3, 4), rafthttp))
	oldCluster := serve(clusterIDHandler(DefaultClusterID, members(1, 2, 3), rafthttp)) // knows no member 4
	other := serve(clusterIDHandler(0xbeef, members(1, 2, 3, 4), rafthttp))
	older := serve(rafthttp)
	proxy := serve(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusBadGateway)
		w.Write([]byte("<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>"))
	}))
	down := httptest.NewServer(rafthttp)
	down.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, tc := range []struct {
		name  string
		peers []string // the asking member's URL is last: its id is their number
		want  uint64
	}{
		{"the old cluster's member first", []string{oldCluster, restored, restored2, "http://self.invalid"}, 0xfeed},
		{"a member down", []string{down.URL, restored, "http://self.invalid"}, 0xfeed},
		{"an older binary beside a member that names the id", []string{older, restored, "http://self.invalid"}, 0xfeed},
		{"older binaries only", []string{older, down.URL, "http://self.invalid"}, DefaultClusterID},
	} {
		got, err := DiscoverClusterID(ctx, tc.peers, len(tc.peers)-1, transport.TLSInfo{})
		if err != nil || got != tc.want {
			t.Errorf("%s: %x, %v; want %x", tc.name, got, err, tc.want)
		}
	}
	for _, tc := range []struct {
		name  string
		peers []string
		want  string
	}{
		{"members disagree", []string{restored, other, "http://self.invalid"}, "different cluster ids"},
		{"not a member", []string{oldCluster, down.URL, down.URL, "http://self.invalid"}, "member 4 is not a member of this cluster"},
		// Members that have not applied the joiner's addition yet, beside
		// an older binary: not the default id, which would cut it off.
		{"an older binary beside members that do not count it yet", []string{older, oldCluster, oldCluster, "http://self.invalid"}, "not a member"},
		{"an error page", []string{proxy, "http://self.invalid"}, "502 Bad Gateway: <html> <head><title>502"},
	} {
		short, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
		_, err := DiscoverClusterID(short, tc.peers, len(tc.peers)-1, transport.TLSInfo{})
		cancel()
		if err == nil || !strings.Contains(err.Error(), tc.want) || strings.ContainsAny(err.Error(), "\r\n") {
			t.Errorf("%s: %v; want a one-line error with %q", tc.name, err, tc.want)
		}
	}
	req, _ := http.NewRequest(http.MethodGet, restored+ClusterIDPath, nil)
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != http.StatusBadRequest {
		t.Errorf("GET %s without X-Server-From: %v %v; want 400", ClusterIDPath, resp, err)
	} else {
		resp.Body.Close()
	}
	if resp, err := http.Post(restored+ClusterIDPath, "text/plain", nil); err != nil || resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST %s: %v %v; want 405", ClusterIDPath, resp, err)
	} else {
		resp.Body.Close()
	}
}
