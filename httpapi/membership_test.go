package httpapi

import (
	"context"
	"encoding/json"
	"maps"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestLearners: POST /<id>?learner=true and /join with "learner":true add
// a learner, which GET /status lists as one; a bad flag is a 400 that
// changes nothing.
func TestLearners(t *testing.T) {
	const one = "http://127.0.0.1:12379"
	tests := []struct {
		name, target, body string
		wantCode           int
		wantIn             string
		wantLearners       []uint64
	}{
		{"learner", "/4?learner=true", "http://127.0.0.1:42379", 204, "", []uint64{4}},
		{"learner 1", "/4?learner=1", "http://127.0.0.1:42379", 204, "", []uint64{4}},
		{"learner with other parameters", "/4?x=y&learner=TRUE", "http://127.0.0.1:42379", 400, `takes only the query parameter learner; not "x"`, nil},
		{"misspelt learner flag", "/4?lerner=true", "http://127.0.0.1:42379", 400, `not "lerner"`, nil},
		{"voter", "/4?learner=false", "http://127.0.0.1:42379", 204, "", nil},
		{"no flag", "/4", "http://127.0.0.1:42379", 204, "", nil},
		{"flag not a boolean", "/4?learner=yes", "http://127.0.0.1:42379", 400, `learner must be true or false, got "yes"`, nil},
		{"flag empty", "/4?learner=", "http://127.0.0.1:42379", 400, "learner must be true or false", nil},
		{"flag twice", "/4?learner=true&learner=false", "http://127.0.0.1:42379", 400, "given more than once", nil},
		{"bad query", "/4?learner=%zz", "http://127.0.0.1:42379", 400, "query string", nil},
		{"learner, bad id", "/x?learner=true", "http://127.0.0.1:42379", 400, "<id> must be a positive integer", nil},
		{"learner, bad URL", "/4?learner=true", "127.0.0.1:42379", 400, "http://", nil},
		{"learner, existing id", "/1?learner=true", "http://127.0.0.1:42379", 409, "conflict", nil},
		{"join learner", "/join", `{"id":4,"raftAddr":"127.0.0.1:42379","learner":true}`, 204, "", []uint64{4}},
		{"join voter", "/join", `{"id":"4","raftAddr":"127.0.0.1:42379","learner":false}`, 204, "", nil},
		{"join learner null", "/join", `{"id":4,"raftAddr":"127.0.0.1:42379","learner":null}`, 204, "", nil},
		{"join learner string", "/join", `{"id":4,"raftAddr":"127.0.0.1:42379","learner":"true"}`, 400, `learner must be true or false, got "true"`, nil},
		{"join learner number", "/join", `{"id":4,"raftAddr":"127.0.0.1:42379","learner":1}`, 400, "learner must be true or false, got 1", nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, nil, nil)
			before := e.cluster.snapshot()
			rec := e.do(t, "POST", tc.target, tc.body)
			if rec.Code != tc.wantCode || !strings.Contains(rec.Body.String(), tc.wantIn) {
				t.Fatalf("POST %s: %d %q, want %d containing %q", tc.target, rec.Code, rec.Body, tc.wantCode, tc.wantIn)
			}
			if got := e.cluster.learnerIDs(); !slices.Equal(got, tc.wantLearners) {
				t.Errorf("learners = %v, want %v", got, tc.wantLearners)
			}
			got := e.cluster.snapshot()
			switch {
			case tc.wantCode == 204 && !maps.Equal(got, map[uint64]string{1: one, 4: "http://127.0.0.1:42379"}):
				t.Errorf("members = %v", got)
			case tc.wantCode != 204 && !maps.Equal(got, before):
				t.Errorf("members changed by a failed request: %v", got)
			}
			if tc.wantCode != 204 {
				return
			}
			var st Status
			if err := json.Unmarshal(e.do(t, "GET", "/status", "").Body.Bytes(), &st); err != nil {
				t.Fatal(err)
			}
			for _, m := range st.Members {
				if want := slices.Contains(tc.wantLearners, m.ID); m.IsLearner != want {
					t.Errorf("/status lists member %d with isLearner %v, want %v", m.ID, m.IsLearner, want)
				}
			}
		})
	}
}

// TestPromote: POST /<id>/promote answers 204 once learner <id> is a
// voter; the leader's refusal of a learner not caught up is 409
// learner_not_ready with its sentence; a voter 409, an unknown id 404, a
// bad id 400. Only POST is a promotion: GET /4/promote reads a key.
func TestPromote(t *testing.T) {
	tests := []struct {
		name, method, target string
		wantCode             int
		wantJSONCode         string // the JSON answer's code
		wantIn               string
		wantLearners         []uint64
	}{
		{"ready learner", "POST", "/4/promote", 204, "", "", []uint64{5}},
		{"learner not caught up", "POST", "/5/promote", 409, "learner_not_ready", "learner 5 is not caught up with the leader", []uint64{4, 5}},
		{"voter", "POST", "/1/promote", 409, "conflict", "", []uint64{4, 5}},
		{"unknown", "POST", "/9/promote", 404, "member_not_found", "no such member", []uint64{4, 5}},
		{"id zero", "POST", "/0/promote", 400, "bad_request", "POST /<id>/promote promotes a learner, and <id> must be a positive integer", []uint64{4, 5}},
		{"id not a number", "POST", "/x/promote", 400, "bad_request", "<id> must be a positive integer", []uint64{4, 5}},
		{"no id", "POST", "/promote", 400, "bad_request", "POST /<id> adds a raft member", []uint64{4, 5}},
		{"trailing slash", "POST", "/4/promote/", 400, "bad_request", "POST /<id> adds a raft member", []uint64{4, 5}},
		{"GET is a key read", "GET", "/4/promote", 404, "key_not_found", "key not found", []uint64{4, 5}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, nil, nil)
			ctx := context.Background()
			if err := e.cluster.AddLearner(ctx, 4, "http://127.0.0.1:42379"); err != nil {
				t.Fatal(err)
			}
			if err := e.cluster.AddLearner(ctx, 5, "http://127.0.0.1:52379"); err != nil {
				t.Fatal(err)
			}
			e.cluster.mu.learners[4] = true // caught up
			serveMembership(t, e, tc.method, tc.target, "", tc.wantCode, tc.wantJSONCode, tc.wantIn)
			if got := e.cluster.learnerIDs(); !slices.Equal(got, tc.wantLearners) {
				t.Errorf("learners = %v, want %v", got, tc.wantLearners)
			}
		})
	}
}

// serveMembership sends method target with body to e, asking for JSON
// errors, and checks the status and, for an error, its code and that its
// sentence contains wantIn.
func serveMembership(t *testing.T, e *testEnv, method, target, body string, wantCode int, wantJSONCode, wantIn string) {
	t.Helper()
	req := httptest.NewRequest(method, target, strings.NewReader(body))
	req.Header.Set("Accept", "application/json")
	rec := e.serve(t, req)
	if rec.Code != wantCode {
		t.Fatalf("%s %s: %d %q, want %d", method, target, rec.Code, rec.Body, wantCode)
	}
	if wantCode >= 400 {
		var got errorJSON
		if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil || got.Code != wantJSONCode || !strings.Contains(got.Error, wantIn) {
			t.Errorf("body %q (%v), want code %s and a sentence containing %q", rec.Body, err, wantJSONCode, wantIn)
		}
	}
}

// TestUpdateMember: POST /<id>/update answers 204 once member <id> has the
// body's peer URL; an unknown id 404, a URL another member has 409, a bad
// id or URL 400. Only POST updates: PUT /4/update writes a key.
func TestUpdateMember(t *testing.T) {
	for _, tc := range []struct {
		name, method, target, body string
		wantCode                   int
		wantJSONCode               string
		wantIn                     string
		wantURL                    string // member 4's URL after
	}{
		{"update", "POST", "/4/update", "http://127.0.0.1:43379", 204, "", "", "http://127.0.0.1:43379"},
		{"body with a newline", "POST", "/4/update", "http://127.0.0.1:43379\n", 204, "", "", "http://127.0.0.1:43379"},
		{"unknown", "POST", "/9/update", "http://127.0.0.1:43379", 404, "member_not_found", "no such member", "http://127.0.0.1:42379"},
		{"taken URL", "POST", "/4/update", "http://127.0.0.1:12379", 409, "conflict", "", "http://127.0.0.1:42379"},
		{"bad URL", "POST", "/4/update", "not a url", 400, "bad_request", "peer URL", "http://127.0.0.1:42379"},
		{"id zero", "POST", "/0/update", "http://127.0.0.1:43379", 400, "bad_request", "POST /<id>/update gives a member a new peer URL", "http://127.0.0.1:42379"},
		{"PUT is a key write", "PUT", "/4/update", "v", 204, "", "", "http://127.0.0.1:42379"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, nil, nil)
			if err := e.cluster.AddMember(context.Background(), 4, "http://127.0.0.1:42379"); err != nil {
				t.Fatal(err)
			}
			serveMembership(t, e, tc.method, tc.target, tc.body, tc.wantCode, tc.wantJSONCode, tc.wantIn)
			e.cluster.mu.Lock()
			got := e.cluster.mu.members[4]
			e.cluster.mu.Unlock()
			if got != tc.wantURL {
				t.Errorf("member 4 at %s, want %s", got, tc.wantURL)
			}
		})
	}
}

// TestTransferLeadership: POST /leader/transfer answers 200
// {"leader":<id>} with the new leader, the one ?to= names or else the
// cluster's choice; a learner or unknown target is 409, a bad to 400, a
// transfer not done by the deadline 504 transfer_timeout, no leader 503.
// Only POST transfers: GET /leader/transfer reads a key.
func TestTransferLeadership(t *testing.T) {
	tests := []struct {
		name, method, target string
		hook                 hook
		wantCode             int
		want                 string // the body, or for an error the code and a part of the sentence
	}{
		{"default target", "POST", "/leader/transfer", nil, 200, `{"leader":2}` + "\n"},
		{"chosen target", "POST", "/leader/transfer?to=3", nil, 200, `{"leader":3}` + "\n"},
		{"chosen target, spaces", "POST", "/leader/transfer?to=%203", nil, 200, `{"leader":3}` + "\n"},
		{"learner", "POST", "/leader/transfer?to=4", nil, 409, "conflict"},
		{"unknown", "POST", "/leader/transfer?to=9", nil, 409, "conflict"},
		{"to zero", "POST", "/leader/transfer?to=0", nil, 400, "bad_request to must be the id of a voting member"},
		{"to not a number", "POST", "/leader/transfer?to=two", nil, 400, `bad_request to must be the id of a voting member (a positive integer), or absent for the most caught-up one; got "two"`},
		{"to twice", "POST", "/leader/transfer?to=2&to=3", nil, 400, "bad_request query parameter to given more than once"},
		{"bad query", "POST", "/leader/transfer?to=%zz", nil, 400, "bad_request"},
		{"not in time", "POST", "/leader/transfer?to=2", func(context.Context) error { return transferTimeoutErr{} }, 504,
			"transfer_timeout leadership did not move before the deadline; it may still move"},
		{"no leader", "POST", "/leader/transfer", func(context.Context) error { return noLeaderErr{} }, 503, "no_leader"},
		{"deadline", "POST", "/leader/transfer", blockUntilDone, 504, "outcome_unknown"},
		{"GET is a key read", "GET", "/leader/transfer", nil, 404, "key_not_found"},
		{"PUT is a key write", "PUT", "/leader/transfer", nil, 204, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, nil, func(c *Config) { c.RequestTimeout = 50 * time.Millisecond })
			ctx := context.Background()
			for id, u := range map[uint64]string{2: "http://h:2", 3: "http://h:3"} {
				if err := e.cluster.AddMember(ctx, id, u); err != nil {
					t.Fatal(err)
				}
			}
			if err := e.cluster.AddLearner(ctx, 4, "http://h:4"); err != nil {
				t.Fatal(err)
			}
			e.cluster.hook = tc.hook
			req := httptest.NewRequest(tc.method, tc.target, nil)
			req.Header.Set("Accept", "application/json")
			rec := e.serve(t, req)
			if rec.Code != tc.wantCode {
				t.Fatalf("%s %s: %d %q, want %d", tc.method, tc.target, rec.Code, rec.Body, tc.wantCode)
			}
			got := rec.Body.String()
			if rec.Code >= 400 {
				var body errorJSON
				if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
					t.Fatal(err)
				}
				got = body.Code + " " + body.Error
			}
			if !strings.HasPrefix(got, tc.want) {
				t.Errorf("answer %q, want it to start with %q", got, tc.want)
			}
		})
	}
}

// TestStatusLearnerProgress: the leader's progress of a learner says it is
// one.
func TestStatusLearnerProgress(t *testing.T) {
	e := newEnv(t, nil, nil)
	e.cluster.mu.progress = map[string]Progress{
		"2": {Match: 9, Next: 10, State: "replicate"},
		"4": {Match: 3, Next: 4, State: "snapshot", IsLearner: true},
	}
	body := e.do(t, "GET", "/status", "").Body.String()
	for _, want := range []string{`"2":{"match":9,"next":10,"state":"replicate"}`, `"4":{"match":3,"next":4,"state":"snapshot","isLearner":true}`} {
		if !strings.Contains(body, want) {
			t.Errorf("/status %s lacks %s", body, want)
		}
	}
}
