package client

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/raftkv/raftkv/testcluster"
)

// TestClusterHashCheck: on three real members, hash checks taken while
// writes go on agree; a killed member is named as giving no hash, and
// once restarted has the same hash of the check before (it replays the
// request); an index with no hash request has none.
func TestClusterHashCheck(t *testing.T) {
	t.Parallel()
	tc, _ := startCluster(t, 3)
	c := newTestClient(t, Config{Endpoints: clientURLs(tc, 1, 2, 3), RequestTimeout: 20 * time.Second})
	testcluster.WaitFor(t, 10*time.Second, "every member's client URL in the member list", func() error {
		st, err := c.Status(context.Background())
		if err != nil {
			return err
		}
		for _, m := range st.Members {
			if len(m.ClientURLs) == 0 {
				return fmt.Errorf("member %d has none", m.ID)
			}
		}
		return nil
	})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var wg sync.WaitGroup
	for w := range 2 {
		wg.Go(func() {
			for i := 0; ctx.Err() == nil; i++ {
				c.Put(ctx, fmt.Sprintf("w%d-%d", w, i%50), []byte(fmt.Sprint(i))) //nolint:errcheck // load only
			}
		})
	}
	var last HashCheck
	for range 3 {
		hc, err := c.CheckHashes(context.Background())
		if err != nil {
			t.Fatalf("CheckHashes: %v", err)
		}
		if err := hc.Problem(); err != nil || len(hc.Members) != 3 || hc.Members[0].Hash.Index != hc.Index {
			t.Fatalf("check under writes: %+v, %v", hc, err)
		}
		last = hc
	}
	cancel()
	wg.Wait()

	tc.Kill(3)
	hc, err := c.CheckHashes(context.Background())
	if err != nil {
		t.Fatalf("CheckHashes with member 3 down: %v", err)
	}
	if p := hc.Problem(); p == nil || !strings.Contains(p.Error(), "1 of 3 members gave no hash (member 3:") || strings.Contains(p.Error(), "disagree") {
		t.Fatalf("with member 3 down: %v", p)
	}
	tc.Restart(3)
	tc.AwaitNodeListening(3)
	// Member 3 replays its log, the hash request too.
	var want Hash
	for _, m := range last.Members {
		if m.ID == 1 {
			want = m.Hash
		}
	}
	testcluster.WaitFor(t, 10*time.Second, "member 3's hash of the last check again", func() error {
		h, err := c.HashOf(context.Background(), tc.ClientURL(3), last.Index)
		if err != nil || h.Hash != want.Hash || h.Keys != want.Keys {
			return fmt.Errorf("%+v, %v; want %+v", h, err, want)
		}
		return nil
	})
	_, err = c.HashOf(context.Background(), tc.ClientURL(1), 1)
	var e *Error
	if !errors.As(err, &e) || e.Code != CodeHashNotKept || e.Status != 404 {
		t.Fatalf("hash at index 1, no hash request: %v, want %s", err, CodeHashNotKept)
	}
	hc, err = c.CheckHashes(context.Background())
	if err != nil || hc.Problem() != nil {
		t.Fatalf("after the restart: %+v, %v, %v", hc, err, hc.Problem())
	}
}

// TestHashCheckProblem: the verdict of a check from its members' answers.
func TestHashCheckProblem(t *testing.T) {
	h := func(id uint64, hash string) MemberHash { return MemberHash{ID: id, Hash: Hash{Index: 9, Hash: hash}} }
	down := MemberHash{ID: 4, Err: errors.New("client: hash from http://x: connection refused")}
	for _, tc := range []struct {
		name    string
		members []MemberHash
		problem string
	}{
		{"agree", []MemberHash{h(1, "aaaa"), h(2, "aaaa")}, ""},
		{"one down", []MemberHash{h(1, "aaaa"), down},
			"1 of 2 members gave no hash (member 4: hash from http://x: connection refused)"},
		{"disagree", []MemberHash{h(3, "bbbbbbbbbbbbbbbb"), h(1, "aaaa"), h(2, "aaaa"), down},
			"members disagree at index 9: members 1, 2 have aaaa; members 3 have bbbbbbbbbbbb; 1 of 4 members gave no hash (member 4: hash from http://x: connection refused)"},
	} {
		p := HashCheck{Index: 9, Members: tc.members}.Problem()
		if (p == nil) != (tc.problem == "") || (p != nil && p.Error() != tc.problem) {
			t.Errorf("%s: problem %v; want %q", tc.name, p, tc.problem)
		}
	}
}
