package httpapi

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
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

func TestStatusOf(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want int
	}{
		{"not found", testErr("not-found"), 404},
		{"bad request", testErr("bad-request"), 400},
		{"conflict", testErr("conflict"), 409},
		{"unavailable", testErr("unavailable"), 503},
		{"timeout", testErr("timeout"), 504},
		{"deadline exceeded", context.DeadlineExceeded, 504},
		{"canceled", context.Canceled, 503},
		{"other", errors.New("boom"), 500},
		{"methods all false", testErr("none"), 500},
		{"body too large", &http.MaxBytesError{Limit: 1}, 413},
		{"method not allowed", &methodError{"PATCH", allowRoot}, 405},
		{"wrapped not found", fmt.Errorf("kvstore: get: %w", testErr("not-found")), 404},
		{"twice wrapped conflict", fmt.Errorf("a: %w", fmt.Errorf("b: %w", testErr("conflict"))), 409},
		{"wrapped deadline", fmt.Errorf("raftnode: propose: %w", context.DeadlineExceeded), 504},
		{"wrapped canceled", fmt.Errorf("raftnode: propose: %w", context.Canceled), 503},
		{"joined", errors.Join(errors.New("x"), testErr("unavailable")), 503},
		{"false wrapper around not found", falseWrapper{"none", testErr("not-found")}, 404},
		{"false wrapper around deadline", falseWrapper{"none", context.DeadlineExceeded}, 504},
		{"wrapped too large", fmt.Errorf("%w: %w", ErrBadBody, &http.MaxBytesError{Limit: 1}), 413},
		{"ErrEmptyKey", ErrEmptyKey, 400},
		{"ErrKeyTooLong wrapped", fmt.Errorf("%w: 5 bytes", ErrKeyTooLong), 400},
		{"ErrBadMemberID", ErrBadMemberID, 400},
		{"ErrNotMemberID", ErrNotMemberID, 400},
		{"ErrBadPeerURL wrapped", fmt.Errorf("%w: x", ErrBadPeerURL), 400},
		{"ErrReservedPath wrapped", fmt.Errorf("%w: /join", ErrReservedPath), 404},
		{"ErrBadPath", ErrBadPath, 400},
		{"ErrBadQuery wrapped", fmt.Errorf("%w: x", ErrBadQuery), 400},
		{"ErrBadReadLevel", ErrBadReadLevel, 400},
		{"ErrBadMinIndex", ErrBadMinIndex, 400},
		{"ErrBadKeyObject wrapped", fmt.Errorf("%w: x", ErrBadKeyObject), 400},
		{"ErrBadJoin wrapped", fmt.Errorf("%w: x", ErrBadJoin), 400},
		{"ErrBadJoinID", ErrBadJoinID, 400},
		{"ErrMetricsDisabled", ErrMetricsDisabled, 404},
		{"ErrPprofDisabled", ErrPprofDisabled, 404},
		{"ErrTooManyRequests", ErrTooManyRequests, 503},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := statusOf(tc.err); got != tc.want {
				t.Errorf("statusOf(%v) = %d, want %d", tc.err, got, tc.want)
			}
		})
	}
}

func TestFail(t *testing.T) {
	tests := []struct {
		name       string
		method     string
		err        error
		wantCode   int
		wantIn     string // the body must contain this
		wantHeader map[string]string
	}{
		{"not found", "GET", testErr("not-found"), 404, "test: not-found", nil},
		{"unavailable", "PUT", testErr("unavailable"), 503, "test: unavailable", map[string]string{"Retry-After": "1"}},
		{"canceled", "GET", context.Canceled, 503, "canceled", map[string]string{"Retry-After": "1"}},
		{"read timeout", "GET", context.DeadlineExceeded, 504, "request timed out", nil},
		{"write timeout PUT", "PUT", fmt.Errorf("propose: %w", context.DeadlineExceeded), 504, "outcome of the write is unknown", nil},
		{"write timeout DELETE", "DELETE", testErr("timeout"), 504, "outcome of the write is unknown", nil},
		{"write timeout POST", "POST", testErr("timeout"), 504, "outcome of the write is unknown", nil},
		{"multi-line error", "GET", errors.New("line one\nline two\r\n"), 500, "line one line two", nil},
		{"method", "PATCH", &methodError{"PATCH", allowKey}, 405, "PATCH", map[string]string{"Allow": allowKey}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := &handler{cfg: Config{Logger: zap.NewNop()}}
			rec := httptest.NewRecorder()
			h.fail(rec, httptest.NewRequest(tc.method, "/k", nil), tc.err)
			if rec.Code != tc.wantCode {
				t.Errorf("code = %d, want %d", rec.Code, tc.wantCode)
			}
			body := rec.Body.String()
			checkErrorBody(t, rec.Header(), body)
			if !strings.Contains(body, tc.wantIn) {
				t.Errorf("body %q does not contain %q", body, tc.wantIn)
			}
			for k, v := range tc.wantHeader {
				if got := rec.Header().Get(k); got != v {
					t.Errorf("header %s = %q, want %q", k, got, v)
				}
			}
			if rec.Code != 503 && rec.Header().Get("Retry-After") != "" {
				t.Errorf("Retry-After set on %d", rec.Code)
			}
		})
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
	for k, want := range map[string]any{"method": "PUT", "path": "/k", "status": int64(500), "error": "disk on fire"} {
		if fields[k] != want {
			t.Errorf("field %s = %v, want %v", k, fields[k], want)
		}
	}
	if s := fmt.Sprint(got.Message, fields); strings.Contains(s, secret) {
		t.Errorf("log entry contains the value: %s", s)
	}
}
