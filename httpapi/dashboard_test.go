package httpapi

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
)

// TestDashboard checks that /ui and /ui/... reach Config.Dashboard, also
// through NewServer's fast path (a plain GET /ui would otherwise be read as
// the raftexample key "ui"), and are 404 without it.
func TestDashboard(t *testing.T) {
	dash := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "dashboard %s %s", r.Method, r.URL.Path)
	})
	seed := map[string]string{"ui": "key", "ui/x": "key"}
	tests := []struct {
		dash     http.Handler
		method   string
		target   string
		wantCode int
		wantBody string
	}{
		{dash, "GET", "/ui", 200, "dashboard GET /ui"},
		{dash, "GET", "/ui/api/cluster", 200, "dashboard GET /ui/api/cluster"},
		{dash, "PUT", "/ui/x", 200, "dashboard PUT /ui/x"},
		{dash, "GET", "/key/ui", 200, `{"ui":"key"}`},
		{dash, "GET", "/uix", 404, "key not found\n"},
		{nil, "GET", "/ui", 404, "the dashboard is not enabled\n"},
		{nil, "PUT", "/ui/x", 404, "the dashboard is not enabled\n"},
	}
	for _, fast := range []bool{false, true} {
		for _, tc := range tests {
			t.Run(fmt.Sprintf("fast=%v/%s %s dashboard=%v", fast, tc.method, tc.target, tc.dash != nil), func(t *testing.T) {
				e := newEnv(t, seed, func(c *Config) { c.Dashboard = tc.dash })
				var code int
				var body string
				if fast {
					s, addr := serveFast(t, e.h)
					req, err := http.NewRequest(tc.method, "http://"+addr+tc.target, strings.NewReader("v"))
					if err != nil {
						t.Fatal(err)
					}
					resp, err := http.DefaultClient.Do(req)
					if err != nil {
						t.Fatal(err)
					}
					b, _ := io.ReadAll(resp.Body)
					resp.Body.Close()
					code, body = resp.StatusCode, string(b)
					if n := s.served.Load(); n != 0 && strings.HasPrefix(tc.target, "/ui") {
						t.Errorf("the fast path answered %d requests to %s", n, tc.target)
					}
				} else {
					rec := e.do(t, tc.method, tc.target, "v")
					code, body = rec.Code, rec.Body.String()
				}
				if code != tc.wantCode || body != tc.wantBody {
					t.Errorf("%s %s = %d %q, want %d %q", tc.method, tc.target, code, body, tc.wantCode, tc.wantBody)
				}
			})
		}
	}
}
