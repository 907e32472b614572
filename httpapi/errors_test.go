package httpapi

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
)

// falseWrapper has every behaviour method, all answering false, and wraps err.
type falseWrapper struct {
	testErr
	err error
}

func (w falseWrapper) Unwrap() error { return w.err }

// humanErr is a testErr whose producer also says what happened in a
// sentence of its own, as raftnode's and kvstore's errors do.
type humanErr struct {
	testErr
	human string
}

func (e humanErr) HumanMessage() string { return e.human }

// noLeaderErr is an unavailable error that says there is no leader.
type noLeaderErr struct{}

func (noLeaderErr) Error() string     { return "test: no leader" }
func (noLeaderErr) Unavailable() bool { return true }
func (noLeaderErr) NoLeader() bool    { return true }

// codedErr is a testErr that names its own code, as kvstore's sharding
// errors do (bucket_moving, seq_too_old, not_ready...).
type codedErr struct {
	testErr
	code string
}

func (e codedErr) Code() string { return e.code }

// misdirectedErr belongs to another group, without saying which.
type misdirectedErr struct{}

func (misdirectedErr) Error() string        { return "test: wrong group" }
func (misdirectedErr) Misdirected() bool    { return true }
func (misdirectedErr) Unavailable() bool    { return false }
func (misdirectedErr) HumanMessage() string { return "" }

// learnerNotReadyFlag says only that a learner is not ready.
type learnerNotReadyFlag struct{}

func (learnerNotReadyFlag) Error() string         { return "test: not ready" }
func (learnerNotReadyFlag) LearnerNotReady() bool { return true }

// humanTransferTimeout is a transfer timeout that says which member.
type humanTransferTimeout struct{ transferTimeoutErr }

func (humanTransferTimeout) HumanMessage() string {
	return "leadership did not move to member 3 before the deadline"
}

// packagePrefix matches the start of an error chain ("raftnode: ...").
var packagePrefix = regexp.MustCompile(`^[a-z]+: `)

// TestErrorTable checks every row of the error table: the status, code
// and sentence each kind of error is answered with, whoever produced it.
func TestErrorTable(t *testing.T) {
	const (
		unavailableMsg = "this member cannot serve the request right now; retry, or use another member"
		writeTimeout   = "the write may or may not have been applied: its outcome was not known in time"
	)
	_, badPeer := parsePeerURL("ftp://h:1")
	tests := []struct {
		name   string
		err    error
		write  bool
		status int
		code   string
		msg    string
	}{
		{"body too large", &http.MaxBytesError{Limit: 1}, true, 413, "payload_too_large", "the request body is too large"},
		{"body too large with limit", withDetail(&http.MaxBytesError{Limit: 10}, "the request body is larger than the limit of %d bytes", 10), true,
			413, "payload_too_large", "the request body is larger than the limit of 10 bytes"},
		{"too large inside a bad body", fmt.Errorf("%w: %w", ErrBadBody, &http.MaxBytesError{Limit: 1}), true, 413, "payload_too_large", "the request body could not be read in full"},
		{"method", &methodError{"PATCH", allowKey}, true, 405, "method_not_allowed", "method PATCH is not allowed here; allowed: GET, HEAD, PUT, DELETE"},
		{"value not UTF-8", ErrValueNotUTF8, false, 406, "not_utf8", ErrValueNotUTF8.(notAcceptable).HumanMessage()},
		{"key not UTF-8", ErrKeyNotUTF8, false, 406, "not_utf8", ErrKeyNotUTF8.(notAcceptable).HumanMessage()},
		{"member not found", onMember{testErr("not-found")}, true, 404, "member_not_found", "no such member"},
		{"member not found, said", onMember{fmt.Errorf("x: %w", humanErr{"not-found", "there is no member 9"})}, true,
			404, "member_not_found", "there is no member 9"},
		{"metrics disabled", ErrMetricsDisabled, false, 404, "not_found", "metrics are not enabled"},
		{"reserved path", withDetail(ErrReservedPath, "path %q is reserved for a later version", "/debug/x"), false,
			404, "not_found", `path "/debug/x" is reserved for a later version`},
		{"key not found", testErr("not-found"), false, 404, "key_not_found", "key not found"},
		{"key not found, wrapped", fmt.Errorf("kvstore: get: %w", testErr("not-found")), false, 404, "key_not_found", "key not found"},
		{"empty key", ErrEmptyKey, true, 400, "bad_request", "the key is empty; a key is at least one byte"},
		{"key too long", withDetail(ErrKeyTooLong, "the key is %d bytes, over the limit of %d", 5, 4), true,
			400, "bad_request", "the key is 5 bytes, over the limit of 4"},
		{"bad body", badBody(errors.New("connection reset")), true, 400, "bad_request", "the request body could not be read in full"},
		{"bad peer URL", badPeer, true, 400, "bad_request", `bad peer URL "ftp://h:1": must start with http:// or https://`},
		{"forbidden", withDetail(ErrForbidden, "a membership change needs an admin client certificate: none was presented"), true,
			403, "forbidden", "a membership change needs an admin client certificate: none was presented"},
		{"bad request", testErr("bad-request"), true, 400, "bad_request", "bad request"},
		{"bad request, said", humanErr{"bad-request", "cannot remove the last voting member"}, true, 400, "bad_request", "cannot remove the last voting member"},
		{"said on several lines", humanErr{"bad-request", "line one\nline two\r\n"}, false, 400, "bad_request", "line one line two  "},
		{"conflict", testErr("conflict"), true, 409, "conflict", "the request conflicts with the cluster's current membership"},
		{"conflict, said beneath a wrapper", fmt.Errorf("raftnode: member id already in use: %w", humanErr{"conflict", "member id 4 is already in use"}), true,
			409, "conflict", "member id 4 is already in use"},
		{"learner not ready", onMember{fmt.Errorf("x: %w", learnerNotReadyErr{4})}, true,
			409, "learner_not_ready", "learner 4 is not caught up with the leader"},
		{"learner not ready, unsaid", falseWrapper{"none", learnerNotReadyFlag{}}, true,
			409, "learner_not_ready", "the learner has not caught up with the leader yet; retry once it has"},
		{"too many requests", ErrTooManyRequests, false, 503, "too_many_requests", "too many requests in flight on this member; retry in a second"},
		{"no leader", noLeaderErr{}, true, 503, "no_leader", "this member knows no leader right now (an election may be under way); retry shortly"},
		{"no leader, wrapped", fmt.Errorf("kvstore: put: %w", noLeaderErr{}), true, 503, "no_leader", "this member knows no leader right now (an election may be under way); retry shortly"},
		{"unavailable", testErr("unavailable"), true, 503, "unavailable", unavailableMsg},
		{"unavailable, said", humanErr{"unavailable", "this member is shutting down; use another member"}, false,
			503, "unavailable", "this member is shutting down; use another member"},
		{"joined", errors.Join(errors.New("x"), testErr("unavailable")), false, 503, "unavailable", unavailableMsg},
		// A write's timeout says once, in the one sentence, that its
		// outcome is unknown, whatever its producer says.
		{"write timeout", testErr("timeout"), true, 504, "outcome_unknown", writeTimeout},
		{"write timeout, said", humanErr{"timeout", "request timed out; its outcome is unknown"}, true, 504, "outcome_unknown", writeTimeout},
		{"write deadline", fmt.Errorf("raftnode: propose: %w", context.DeadlineExceeded), true, 504, "outcome_unknown", writeTimeout},
		{"write deadline in a member call", onMember{context.DeadlineExceeded}, true, 504, "outcome_unknown", writeTimeout},
		// A transfer's timeout says what did not happen, not a write's
		// sentence.
		{"transfer timeout", onMember{transferTimeoutErr{}}, true, 504, "transfer_timeout",
			"leadership did not move before the deadline; it may still move"},
		{"transfer timeout, said", humanTransferTimeout{}, true, 504, "transfer_timeout",
			"leadership did not move to member 3 before the deadline"},
		{"read deadline", context.DeadlineExceeded, false, 504, "timeout", "the request timed out"},
		{"read timeout, said", humanErr{"timeout", "the read timed out before a quorum confirmed it"}, false,
			504, "timeout", "the read timed out before a quorum confirmed it"},
		{"canceled", context.Canceled, false, 503, "canceled", "the request was canceled: the client went away or the server is stopping"},
		{"canceled, wrapped", fmt.Errorf("raftnode: propose: %w", context.Canceled), true, 503, "canceled",
			"the request was canceled: the client went away or the server is stopping"},
		{"other", errors.New("raftnode: save wal: disk on fire"), true, 500, "internal", "internal server error; the member's log has the details"},
		{"other, said", humanErr{"none", "do not show this"}, false, 500, "internal", "internal server error; the member's log has the details"},
		{"methods all false", testErr("none"), false, 500, "internal", "internal server error; the member's log has the details"},
		{"false wrapper around not found", falseWrapper{"none", testErr("not-found")}, false, 404, "key_not_found", "key not found"},
		{"false wrapper around deadline", falseWrapper{"none", context.DeadlineExceeded}, false, 504, "timeout", "the request timed out"},
		{"wrong group", &WrongGroupError{Key: "k", Bucket: 3, Version: 7, Owner: 2, Err: codedErr{"conflict", "other"}}, true,
			421, "wrong_group", `bucket 3 of key "k" is served by group 2 in config 7, not by this group`},
		{"wrong group, no owner", fmt.Errorf("x: %w", &WrongGroupError{Key: "k", Bucket: 0, Version: 1}), false,
			421, "wrong_group", `bucket 0 of key "k" is not served by this group, and config 1 gives it to no group`},
		{"misdirected", misdirectedErr{}, false, 421, "wrong_group", "another shard group serves this key"},
		// An error's own code is kept in its behaviour's row.
		{"bucket moving", codedErr{"unavailable", "bucket_moving"}, true, 503, "bucket_moving", unavailableMsg},
		{"seq too old", fmt.Errorf("kvstore: %w", codedErr{"timeout", "seq_too_old"}), true, 504, "seq_too_old", writeTimeout},
		// A retried transaction applied before keeps its store's sentence.
		{"txn result not kept, coded", fmt.Errorf("kvstore: %w", codedErr{"timeout", "result_not_kept"}), true, 504, "result_not_kept",
			"the transaction was applied already; its get results were too large to keep for a retry"},
		{"not ready", humanErr{codedErr{"conflict", "not_ready"}.testErr, "x"}, true, 409, "conflict", "x"},
		{"not ready, coded", codedErr{"conflict", "not_ready"}, false, 409, "not_ready", "the request conflicts with the cluster's current membership"},
		{"coded in a join", errors.Join(errors.New("x"), codedErr{"conflict", "bucket_gone"}), false, 409, "bucket_gone", "the request conflicts with the cluster's current membership"},
		{"precondition", &PreconditionError{Key: "k", Asked: `If-Match: "5"`, Current: KeyValue{ModIndex: 9}, Found: true}, true,
			412, "precondition_failed", `key "k" is at version 9 (If-Match: "5"); nothing was changed`},
		{"precondition, absent", fmt.Errorf("x: %w", &PreconditionError{Key: "k", Asked: "If-Match: *"}), true,
			412, "precondition_failed", `key "k" does not exist (If-Match: *); nothing was changed`},
		{"compacted", &CompactedError{Oldest: 40, Err: errors.New("kvstore: compacted")}, false,
			410, "compacted", "the events asked for are no longer kept: the oldest index a watch can start from is 40; read the keys again and watch from the X-Raft-Index of that read"},
		{"too many watchers", ErrTooManyWatchers, false, 503, "too_many_watchers", ErrTooManyWatchers.(tooManyWatchers).HumanMessage()},
		{"too slow", fmt.Errorf("kvstore: %w", ErrWatcherTooSlow), false, 503, "too_slow", ErrWatcherTooSlow.(tooSlow).HumanMessage()},
		{"coded internal stays internal", codedErr{"none", "disk_on_fire"}, true, 500, "internal", "internal server error; the member's log has the details"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a := answerOf(tc.err, tc.write)
			if a.status != tc.status || a.code != tc.code || a.message != tc.msg {
				t.Errorf("answerOf(%v, write %v) = %d %s %q, want %d %s %q",
					tc.err, tc.write, a.status, a.code, a.message, tc.status, tc.code, tc.msg)
			}
			if got := statusOf(tc.err); got != tc.status {
				t.Errorf("statusOf = %d, want %d", got, tc.status)
			}
			if packagePrefix.MatchString(a.message) {
				t.Errorf("message %q starts with a package prefix", a.message)
			}
		})
	}
	// Every row is reachable and every code is named once, so that a
	// code always means one row.
	codes := map[string]bool{}
	for _, c := range errorTable {
		if codes[c.code] {
			t.Errorf("code %s names two rows", c.code)
		}
		codes[c.code] = true
		if !regexp.MustCompile(`^[a-z]+(_[a-z0-9]+)*$`).MatchString(c.code) {
			t.Errorf("code %q is not snake_case", c.code)
		}
	}
	for _, tc := range tests {
		delete(codes, tc.code)
	}
	if len(codes) != 0 {
		t.Errorf("rows no case reaches: %v", codes)
	}
}

// TestSentinelsSpeakPlainly: every sentinel of this package answers with
// its sentence, not its package-prefixed Error().
func TestSentinelsSpeakPlainly(t *testing.T) {
	for _, err := range []error{ErrBadPath, ErrEmptyKey, ErrKeyTooLong, ErrBadBody, ErrBadMemberID, ErrNotMemberID,
		ErrBadPeerURL, ErrReservedPath, ErrBadQuery, ErrBadReadLevel, ErrBadMinIndex, ErrBadEncoding, ErrBadKeyObject,
		ErrBodyNotUTF8, ErrBadJoin, ErrBadJoinID, ErrKeyNotUTF8, ErrValueNotUTF8, ErrMetricsDisabled, ErrPprofDisabled,
		ErrTooManyRequests, ErrBadLearnerFlag, ErrBadPromoteID, ErrBadTransferTo} {
		msg := answerOf(err, false).message
		if !strings.HasPrefix(err.Error(), "httpapi: ") || "httpapi: "+msg != err.Error() {
			t.Errorf("%q: Error() %q is not the message with the package prefix", msg, err.Error())
		}
	}
}

func TestFail(t *testing.T) {
	tests := []struct {
		name       string
		method     string
		accept     []string // Accept headers
		err        error
		wantCode   int
		wantBody   string
		wantHeader map[string]string
	}{
		{"text", "GET", nil, testErr("not-found"), 404, "key not found\n",
			map[string]string{"Content-Type": "text/plain; charset=utf-8"}},
		{"curl's Accept", "GET", []string{"*/*"}, testErr("not-found"), 404, "key not found\n",
			map[string]string{"Content-Type": "text/plain; charset=utf-8"}},
		{"json", "GET", []string{"application/json"}, testErr("not-found"), 404, `{"error":"key not found","code":"key_not_found"}` + "\n",
			map[string]string{"Content-Type": "application/json"}},
		{"json among others", "PUT", []string{"text/html", "application/json;q=0.5"}, testErr("unavailable"), 503,
			`{"error":"this member cannot serve the request right now; retry, or use another member","code":"unavailable"}` + "\n",
			map[string]string{"Content-Type": "application/json", "Retry-After": "1"}},
		{"json refused", "GET", []string{"application/json;q=0"}, testErr("not-found"), 404, "key not found\n", nil},
		{"json escapes", "POST", []string{"application/json"}, humanErr{"bad-request", `key "a<b>" is "bad"` + "\n"}, 400,
			`{"error":"key \"a<b>\" is \"bad\" ","code":"bad_request"}` + "\n", nil},
		{"unavailable", "PUT", nil, testErr("unavailable"), 503, "this member cannot serve the request right now; retry, or use another member\n",
			map[string]string{"Retry-After": "1"}},
		{"canceled", "GET", nil, context.Canceled, 503, "the request was canceled: the client went away or the server is stopping\n",
			map[string]string{"Retry-After": "1"}},
		{"read timeout", "GET", nil, context.DeadlineExceeded, 504, "the request timed out\n", nil},
		{"write timeout PUT", "PUT", nil, fmt.Errorf("propose: %w", context.DeadlineExceeded), 504,
			"the write may or may not have been applied: its outcome was not known in time\n", nil},
		{"write timeout DELETE json", "DELETE", []string{"application/json"}, testErr("timeout"), 504,
			`{"error":"the write may or may not have been applied: its outcome was not known in time","code":"outcome_unknown"}` + "\n", nil},
		{"method", "PATCH", nil, &methodError{"PATCH", allowKey}, 405, "method PATCH is not allowed here; allowed: GET, HEAD, PUT, DELETE\n",
			map[string]string{"Allow": allowKey}},
		{"method json", "PATCH", []string{"application/json"}, &methodError{"PATCH", allowKey}, 405,
			`{"error":"method PATCH is not allowed here; allowed: GET, HEAD, PUT, DELETE","code":"method_not_allowed"}` + "\n",
			map[string]string{"Allow": allowKey}},
		{"internal", "PUT", nil, errors.New("raftnode: save wal: disk on fire"), 500, "internal server error; the member's log has the details\n", nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := &handler{cfg: Config{Logger: zap.NewNop()}}
			rec := httptest.NewRecorder()
			req := httptest.NewRequest(tc.method, "/k", nil)
			for _, a := range tc.accept {
				req.Header.Add("Accept", a)
			}
			h.fail(rec, req, tc.err)
			if rec.Code != tc.wantCode {
				t.Errorf("code = %d, want %d", rec.Code, tc.wantCode)
			}
			body := rec.Body.String()
			checkErrorBody(t, req, rec.Header(), body)
			if body != tc.wantBody {
				t.Errorf("body %q, want %q", body, tc.wantBody)
			}
			for k, v := range tc.wantHeader {
				if got := rec.Header().Get(k); got != v {
					t.Errorf("header %s = %q, want %q", k, got, v)
				}
			}
			if got := rec.Header().Get("Vary"); got != "Accept" {
				t.Errorf("Vary = %q, want Accept", got)
			}
			if rec.Code != 503 && rec.Header().Get("Retry-After") != "" {
				t.Errorf("Retry-After set on %d", rec.Code)
			}
		})
	}
}

func TestAcceptsJSON(t *testing.T) {
	tests := []struct {
		accept string
		want   bool
	}{
		{"application/json", true},
		{"APPLICATION/JSON", true},
		{"application/json; charset=utf-8", true},
		{" \tapplication/json\t ", true},
		{"text/plain, application/json", true},
		{"text/html,application/json;q=0.9,*/*;q=0.8", true},
		{"application/json;q=0.001", true},
		{"application/json;q=1", true},
		{"application/json ; Q = 0.5", true},
		{"application/json;q=0", false},
		{"application/json; q=0.", false},
		{"application/json;Q=0.000", false},
		{"application/json;charset=utf-8;q=0", false},
		{"application/json;q=0, application/json", true},
		{"", false},
		{"*/*", false},
		{"application/*", false},
		{"text/plain", false},
		{"application/json-seq", false},
		{"application/jsonx", false},
		{"application/problem+json", false},
		{"json", false},
		{",,", false},
	}
	for _, tc := range tests {
		if got := acceptsJSON(tc.accept); got != tc.want {
			t.Errorf("acceptsJSON(%q) = %v, want %v", tc.accept, got, tc.want)
		}
		if got := acceptsJSON([]byte(tc.accept)); got != tc.want {
			t.Errorf("acceptsJSON([]byte(%q)) = %v, want %v", tc.accept, got, tc.want)
		}
	}
}

func TestFailLogsServerErrorsWithoutValues(t *testing.T) {
	const secret = "secret-value-must-not-be-logged"
	core, logs := observer.New(zapcore.DebugLevel)
	e := newEnv(t, nil, func(c *Config) { c.Logger = zap.New(core) })

	e.store.hook = func(context.Context) error { return errors.New("disk on fire") }
	if rec := e.do(t, "PUT", "/k", secret); rec.Code != 500 {
		t.Fatalf("PUT code = %d, want 500", rec.Code)
	}
	e.store.hook = func(context.Context) error { return testErr("not-found") }
	if rec := e.do(t, "GET", "/k", ""); rec.Code != 404 {
		t.Fatalf("GET code = %d, want 404", rec.Code)
	}

	entries := logs.All()
	if len(entries) != 1 {
		t.Fatalf("got %d log entries, want 1 (only the 5xx): %v", len(entries), entries)
	}
	got := entries[0]
	if got.Level != zapcore.WarnLevel {
		t.Errorf("level = %v, want warn", got.Level)
	}
	fields := got.ContextMap()
	for k, want := range map[string]any{"method": "PUT", "path": "/k", "status": int64(500), "code": "internal", "error": "disk on fire"} {
		if fields[k] != want {
			t.Errorf("field %s = %v, want %v", k, fields[k], want)
		}
	}
	if s := fmt.Sprint(got.Message, fields); strings.Contains(s, secret) {
		t.Errorf("log entry contains the value: %s", s)
	}
}
