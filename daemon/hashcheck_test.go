package daemon

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/raftkv/raftkv/internal/testutil"
	"github.com/raftkv/raftkv/raftnode"
	"go.uber.org/zap/zaptest"
)

func TestJudgeHashes(t *testing.T) {
	down := fmt.Errorf("connection refused")
	for _, tc := range []struct {
		name    string
		answers []memberHash
		result  string
		detail  string
	}{
		{"agree", []memberHash{{id: 1, hash: "a"}, {id: 2, hash: "a"}, {id: 3, hash: "a"}}, hashAgree, ""},
		{"one down", []memberHash{{id: 1, hash: "a"}, {id: 2, err: down}, {id: 3, hash: "a"}}, hashIncomplete, ""},
		{"one differs", []memberHash{{id: 1, hash: "a"}, {id: 2, hash: "b"}, {id: 3, hash: "a"}}, hashMismatch, "members 1, 3 have a; members 2 have b"},
		{"differs and one down", []memberHash{{id: 1, hash: "b"}, {id: 2, err: down}, {id: 3, hash: "a"}}, hashMismatch, "members 3 have a; members 1 have b"},
		{"only the leader", []memberHash{{id: 1, hash: "a"}, {id: 2, err: down}}, hashIncomplete, ""},
	} {
		result, detail := judgeHashes(tc.answers)
		if result != tc.result || detail != tc.detail {
			t.Errorf("%s: %q, %q; want %q, %q", tc.name, result, detail, tc.result, tc.detail)
		}
	}
}

// TestAskHash: each member's answer of GET /debug/hash as the leader
// reads it: a hash, a 404, an answer of another index, no answer.
func TestAskHash(t *testing.T) {
	serve := func(status int, body string) string {
		s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path != "/debug/hash" || r.URL.Query().Get("index") != "9" {
				t.Errorf("asked %s; want /debug/hash?index=9", r.URL)
			}
			w.WriteHeader(status)
			fmt.Fprintln(w, body)
		}))
		t.Cleanup(s.Close)
		return s.URL
	}
	members := []raftnode.Member{
		{ID: 2, ClientURL: serve(200, `{"index":9,"keys":4,"hash":"bb"}`)},
		{ID: 3, ClientURL: serve(404, `no hash kept`)},
		{ID: 4, ClientURL: serve(200, `{"index":8,"keys":4,"hash":"bb"}`)},
		{ID: 5, ClientURL: freePeerURL(t)},
		{ID: 6},
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var got []memberHash
	for _, mem := range members {
		got = append(got, (&Member{}).askHash(ctx, mem, 9))
	}
	if got[0].err != nil || got[0].hash != "bb" || got[0].keys != 4 {
		t.Errorf("member 2: %+v", got[0])
	}
	for i, want := range map[int]string{1: "404 Not Found: no hash kept", 2: `answered "{\"index\":8`, 3: "refused", 4: "has not published"} {
		if got[i].err == nil || !strings.Contains(got[i].err.Error(), want) {
			t.Errorf("member %d: %+v; want an error with %q", members[i].ID, got[i], want)
		}
	}
	if result, detail := judgeHashes(append(got, memberHash{id: 1, hash: "aa"})); result != hashMismatch || detail != "members 1 have aa; members 2 have bb" {
		t.Errorf("verdict: %q %q", result, detail)
	}
}

// TestPeriodicHashCheck: three members with --hash-check-interval; their
// leader's checks agree, while writes go on, and count in /metrics.
func TestPeriodicHashCheck(t *testing.T) {
	dir := t.TempDir()
	const n = 3
	ports := testutil.FreePorts(t, n)
	peers := make([]string, n)
	for i, p := range ports {
		peers[i] = fmt.Sprintf("http://127.0.0.1:%d", p)
	}
	members := make([]*Member, n)
	for i := range members {
		m, err := Start(context.Background(), Config{
			ID:                uint64(i + 1),
			Peers:             peers,
			DataDir:           filepath.Join(dir, fmt.Sprintf("m%d", i+1)),
			ClientListenAddr:  "127.0.0.1:0",
			TickInterval:      50 * time.Millisecond,
			HashCheckInterval: 50 * time.Millisecond,
			Logger:            zaptest.NewLogger(t).Named(fmt.Sprintf("m%d", i+1)),
		})
		if err != nil {
			t.Fatalf("member %d: %v", i+1, err)
		}
		t.Cleanup(m.Stop)
		members[i] = m
	}
	counts := func(m *Member) map[string]int {
		_, body := call(t, m, http.MethodGet, "/metrics", "")
		out := map[string]int{}
		for _, mt := range regexp.MustCompile(`raftkv_hash_checks_total\{result="(\w+)"\} (\d+)`).FindAllStringSubmatch(body, -1) {
			out[mt[1]], _ = strconv.Atoi(mt[2])
		}
		return out
	}
	var leader *Member
	testutil.WaitFor(t, 20*time.Second, "a leader", func() error {
		for _, m := range members {
			_, body := call(t, m, http.MethodGet, "/status", "")
			var st struct{ ID, Leader uint64 }
			if json.Unmarshal([]byte(body), &st) == nil && st.Leader == st.ID {
				leader = m
				return nil
			}
		}
		return fmt.Errorf("none yet")
	})
	for i := range 20 {
		if st, body := call(t, leader, http.MethodPut, fmt.Sprintf("/k%d", i), "v"); st != http.StatusNoContent {
			t.Fatalf("PUT: %d %s", st, body)
		}
	}
	testutil.WaitFor(t, 20*time.Second, "five checks that agree", func() error {
		c := counts(leader)
		if c[hashMismatch] != 0 {
			t.Fatalf("the leader's checks: %v", c)
		}
		if c[hashAgree] < 5 {
			return fmt.Errorf("%v", c)
		}
		return nil
	})
	for _, m := range members {
		if m != leader && len(counts(m)) != 4 {
			t.Errorf("member %d's /metrics has not every result of raftkv_hash_checks_total: %v", m.ID(), counts(m))
		}
	}
}
