package raftnode

import (
	"context"
	"net/http"
	"net/http/httptest"
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
	ds, err := openDisk(lg, dir, 0xabc)
	if err != nil {
		t.Fatal(err)
	}
	if ds.clusterID != 0xabc {
		t.Fatalf("new WAL: cluster id %x; want abc", ds.clusterID)
	}
	ds.wal.Close()
	ds, err = openDisk(lg, dir, DefaultClusterID)
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
	ds, err = openDisk(lg, old, 0xabc)
	if err != nil {
		t.Fatal(err)
	}
	defer ds.wal.Close()
	if ds.clusterID != DefaultClusterID {
		t.Fatalf("WAL without metadata: cluster id %x; want the default", ds.clusterID)
	}

	for _, bad := range []string{"{", `{"cluster_id":"xyz"}`, `{"cluster_id":"0"}`} {
		if _, err := decodeWALMetadata([]byte(bad)); err == nil {
			t.Errorf("metadata %s read without an error", bad)
		}
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

// TestDiscoverClusterID: a joining member asks the others on their peer
// ports, skipping itself and members that do not answer; a member of a
// binary that serves no cluster id (404) is of the default one.
func TestDiscoverClusterID(t *testing.T) {
	rafthttp := http.NotFoundHandler() // what an older member's peer port answers
	current := httptest.NewServer(clusterIDHandler(0xfeed, rafthttp))
	defer current.Close()
	older := httptest.NewServer(rafthttp)
	defer older.Close()
	down := httptest.NewServer(rafthttp)
	down.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, tc := range []struct {
		name  string
		peers []string
		self  int
		want  uint64
	}{
		{"a member answers", []string{"http://self.invalid", down.URL, current.URL}, 0, 0xfeed},
		{"an older member", []string{older.URL, "http://self.invalid"}, 1, DefaultClusterID},
	} {
		got, err := DiscoverClusterID(ctx, tc.peers, tc.self, transport.TLSInfo{})
		if err != nil || got != tc.want {
			t.Errorf("%s: %x, %v; want %x", tc.name, got, err, tc.want)
		}
	}
	short, cancel2 := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel2()
	if _, err := DiscoverClusterID(short, []string{down.URL, "http://self.invalid"}, 1, transport.TLSInfo{}); err == nil {
		t.Error("no member answered, and yet an id was found")
	}
	if resp, err := http.Post(current.URL+ClusterIDPath, "text/plain", nil); err != nil || resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST %s: %v %v; want 405", ClusterIDPath, resp, err)
	} else {
		resp.Body.Close()
	}
}
