package robustness_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/raftkv/raftkv/internal/testutil"
	"github.com/raftkv/raftkv/robustness"
)

// TestHashCheckerFindsDisagreement is the hash checker's negative
// control: of members that answer /debug/hash as raftkv does, one with
// another hash at the check's index is a violation; one that keeps no
// hash, or gives no answer, is counted and not judged.
func TestHashCheckerFindsDisagreement(t *testing.T) {
	member := func(hash string, status int) string {
		s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path != "/debug/hash" {
				http.NotFound(w, r)
				return
			}
			if r.Method == http.MethodGet && r.URL.Query().Get("index") != "7" {
				t.Errorf("GET %s; want index 7", r.URL)
			}
			switch status {
			case http.StatusOK:
				fmt.Fprintf(w, `{"index":7,"keys":3,"hash":%q}`, hash)
			case http.StatusNotFound:
				w.WriteHeader(status)
				fmt.Fprintln(w, `{"error":"this member keeps no hash","code":"hash_not_kept"}`)
			default:
				w.WriteHeader(status)
			}
		}))
		t.Cleanup(s.Close)
		return s.URL
	}
	a, b, c := member("aaaa", 200), member("aaaa", 200), member("bbbb", 200)
	gone, unavailable := member("", 404), member("", 503)
	// A check started on gone or unavailable, which refuse the POST too,
	// is not counted.
	cl := robustness.NewClient(time.Second)
	defer cl.Close()
	for _, tc := range []struct {
		name    string
		members []string
		ok      bool
	}{
		{"agree", []string{a, b, gone, unavailable}, true},
		{"disagree", []string{a, b, c, gone}, false},
	} {
		h := robustness.StartHashChecks(cl, func() [][]string { return [][]string{tc.members} }, 10*time.Millisecond, 1)
		testutil.WaitFor(t, 10*time.Second, "three hash checks", func() error {
			if n := h.Result().Checks; n < 3 {
				return fmt.Errorf("%d so far", n)
			}
			return nil
		})
		res := h.Stop()
		if res.Checks == 0 || res.OK() != tc.ok || res.Compared != res.Checks {
			t.Fatalf("%s: %+v; want OK %v", tc.name, res, tc.ok)
		}
		if !tc.ok && (!strings.Contains(res.Violations[0], "members disagree at index 7") || !strings.Contains(res.Violations[0], "bbbb at "+c)) {
			t.Errorf("%s: violation %q", tc.name, res.Violations[0])
		}
		if tc.ok && (res.NotKept != res.Checks || res.NoAnswer != res.Checks || res.Hashes != 2*res.Checks) {
			t.Errorf("%s: %+v; want each check to count one not kept and one unanswered", tc.name, res)
		}
	}
}
