package httpapi

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
)

// TestHashCheck: POST /debug/hash takes a hash at a new index, GET
// ?index=N reads it back; a bad index is a 400, an index with no hash a
// 404, other methods a 405, and a store that times out a 504 whose
// outcome, for the POST, is unknown.
func TestHashCheck(t *testing.T) {
	e := newEnv(t, map[string]string{"a": "1", "b": "22"}, nil)
	rec := e.do(t, "POST", "/debug/hash", "")
	var posted HashResult
	if rec.Code != http.StatusOK || json.Unmarshal(rec.Body.Bytes(), &posted) != nil ||
		posted.Index == 0 || posted.Keys != 2 || posted.Hash != "fake-3" || rec.Header().Get("X-Raft-Index") == "" {
		t.Fatalf("POST /debug/hash = %d %q %v", rec.Code, rec.Body, rec.Header())
	}
	var got HashResult
	target := "/debug/hash?index=" + rec.Header().Get("X-Raft-Index")
	if rec := e.do(t, "GET", target, ""); rec.Code != http.StatusOK || json.Unmarshal(rec.Body.Bytes(), &got) != nil || got != posted {
		t.Fatalf("GET %s = %d %q, want %+v", target, rec.Code, rec.Body, posted)
	}
	if rec := e.do(t, "HEAD", target, ""); rec.Code != http.StatusOK {
		t.Fatalf("HEAD %s = %d", target, rec.Code)
	}
	for _, tc := range []struct {
		method, target string
		code           int
		says           string
	}{
		{"GET", "/debug/hash", http.StatusBadRequest, "takes ?index=N"},
		{"GET", "/debug/hash?index=x", http.StatusBadRequest, "takes ?index=N"},
		{"GET", "/debug/hash?index=0", http.StatusBadRequest, "takes ?index=N"},
		{"GET", "/debug/hash?index=1&index=2", http.StatusBadRequest, "more than once"},
		{"POST", "/debug/hash?index=3", http.StatusBadRequest, "takes no index"},
		{"POST", "/debug/hash?x=1", http.StatusBadRequest, `POST /debug/hash takes no query parameters; not "x"`},
		{"POST", "/debug/hash?index=3&x=1", http.StatusBadRequest, "takes no index"},
		{"GET", "/debug/hash?index=999", http.StatusNotFound, ""},
		{"PUT", "/debug/hash", http.StatusMethodNotAllowed, "GET, HEAD, POST"},
		{"DELETE", "/debug/hash", http.StatusMethodNotAllowed, "GET, HEAD, POST"},
	} {
		rec := e.do(t, tc.method, tc.target, "")
		if rec.Code != tc.code || !strings.Contains(rec.Body.String(), tc.says) {
			t.Errorf("%s %s = %d %q; want %d saying %q", tc.method, tc.target, rec.Code, rec.Body, tc.code, tc.says)
		}
	}

	e.store.hook = func(context.Context) error { return context.DeadlineExceeded }
	if rec := e.do(t, "POST", "/debug/hash", ""); rec.Code != http.StatusGatewayTimeout || !strings.Contains(rec.Body.String(), "may or may not") {
		t.Errorf("POST /debug/hash, timed out = %d %q; want 504, outcome unknown", rec.Code, rec.Body)
	}
	if rec := e.do(t, "GET", target, ""); rec.Code != http.StatusGatewayTimeout || strings.Contains(rec.Body.String(), "may or may not") {
		t.Errorf("GET %s, timed out = %d %q; want 504, a plain timeout", target, rec.Code, rec.Body)
	}
}
