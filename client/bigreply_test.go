package client

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
)

// TestAnswerLargerThanTheClientReads: a successful answer longer than
// maxBody is not read as if it were whole. A listing page says so at once
// (ask for less), rather than "unreadable listing" after every member was
// tried; a transaction's success cut off, or unreadable, is an unknown
// outcome, never a failure a caller would retry under a new sequence.
func TestAnswerLargerThanTheClientReads(t *testing.T) {
	old := maxBody
	maxBody = 1 << 20
	t.Cleanup(func() { maxBody = old })
	var calls atomic.Int64
	huge := `{"kvs":[{"key":"k","value":"` + strings.Repeat("v", maxBody) + `"}]}`
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, huge)
	}))
	t.Cleanup(srv.Close)
	c := newTestClient(t, Config{Endpoints: []string{srv.URL, srv.URL}})
	ctx := context.Background()

	_, err := c.List(ctx, ListOptions{Prefix: "k"})
	var e *Error
	if !errors.As(err, &e) || e.Code != CodeTooLarge || e.Tries != 1 || calls.Load() != 1 {
		t.Fatalf("a listing page over %d bytes: %v (%d calls); want payload_too_large after one try", maxBody, err, calls.Load())
	}
	_, err = c.Txn(ctx, Txn{Success: []TxnOp{OpGet("k")}})
	if !errors.Is(err, ErrOutcomeUnknown) {
		t.Fatalf("a transaction answered 200 with %d bytes: %v; want ErrOutcomeUnknown", len(huge), err)
	}
}

// TestTxnUnreadableSuccess: a transaction answered 200 with a body that
// does not parse was applied: the error says its outcome is unknown.
func TestTxnUnreadableSuccess(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"succeeded":true,"responses":[{"get":`)
	}))
	t.Cleanup(srv.Close)
	c := newTestClient(t, Config{Endpoints: []string{srv.URL}})
	if _, err := c.Txn(context.Background(), Txn{Success: []TxnOp{OpGet("k")}}); !errors.Is(err, ErrOutcomeUnknown) {
		t.Fatalf("a transaction answered 200 with a cut body: %v; want ErrOutcomeUnknown", err)
	}
}

// TestResultNotKeptNotRetried: a retried transaction answered 504
// result_not_kept (applied before; its get results not kept) is not
// tried again, which would be answered the same until the deadline: it
// comes back at once as maybe applied, with the member's sentence.
func TestResultNotKeptNotRetried(t *testing.T) {
	var calls atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusGatewayTimeout)
		io.WriteString(w, `{"error":"the transaction was applied already at index 9 (succeeded: true); its get results were too large to keep for a retry and have changed since","code":"result_not_kept"}`+"\n")
	}))
	t.Cleanup(srv.Close)
	c := newTestClient(t, Config{Endpoints: []string{srv.URL}})
	_, err := c.Txn(context.Background(), Txn{Success: []TxnOp{OpGet("big")}}, WithSeq("c", 1))
	var e *Error
	if !errors.As(err, &e) || e.Code != CodeResultNotKept || !e.MaybeApplied || !errors.Is(err, ErrOutcomeUnknown) ||
		!strings.Contains(err.Error(), "index 9") || calls.Load() != 1 {
		t.Fatalf("Txn: %v (%d calls); want result_not_kept, maybe applied, naming index 9, after one call", err, calls.Load())
	}
}
