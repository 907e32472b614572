package daemon

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

// TestForwardSaysNotAppliedOnlyIfNeverSent: a membership change forwarded
// to the leader is answered 503 ("not applied, retry") without an answer
// from the leader only when the connection could not be made; once the
// request may have reached the leader, the change may be applied, so 504.
func TestForwardSaysNotAppliedOnlyIfNeverSent(t *testing.T) {
	// A port nothing listens on: the dial fails.
	refused := freePeerURL(t)

	// A leader that reads the whole request, then hangs up unanswered, as
	// one killed or removed while applying it.
	hangup, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer hangup.Close()
	go func() {
		for {
			c, err := hangup.Accept()
			if err != nil {
				return
			}
			if req, err := http.ReadRequest(bufio.NewReader(c)); err == nil {
				io.Copy(io.Discard, req.Body)
			}
			c.Close()
		}
	}()

	// A leader that answers with the status its path names, or never.
	release := make(chan struct{})
	leader := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/204":
			w.WriteHeader(http.StatusNoContent)
		case "/409":
			http.Error(w, "raftnode: member id already in use", http.StatusConflict)
		case "/503":
			http.Error(w, "raftnode: no leader", http.StatusServiceUnavailable)
		case "/504":
			http.Error(w, "raftnode: request timed out", http.StatusGatewayTimeout)
		default:
			<-release
		}
	}))
	defer leader.Close()
	defer close(release) // before Close, which waits for the handlers

	for _, tc := range []struct {
		name    string
		url     string
		timeout time.Duration
		want    int // 0: no error
	}{
		{"leader unreachable", refused + "/4", time.Minute, http.StatusServiceUnavailable},
		{"leader hung up after the request", "http://" + hangup.Addr().String() + "/4", time.Minute, http.StatusGatewayTimeout},
		{"no answer before the deadline", leader.URL + "/hang", 200 * time.Millisecond, http.StatusGatewayTimeout},
		{"applied", leader.URL + "/204", time.Minute, 0},
		{"refused", leader.URL + "/409", time.Minute, http.StatusConflict},
		{"leader says not applied", leader.URL + "/503", time.Minute, http.StatusServiceUnavailable},
		{"leader says unknown", leader.URL + "/504", time.Minute, http.StatusGatewayTimeout},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), tc.timeout)
			defer cancel()
			err := forward(ctx, nil, http.MethodPost, tc.url, "http://127.0.0.1:1")
			if tc.want == 0 {
				if err != nil {
					t.Fatalf("forward = %v, want nil", err)
				}
				return
			}
			var fe *forwardedError
			if !errors.As(err, &fe) || fe.status != tc.want {
				t.Fatalf("forward = %v, want status %d", err, tc.want)
			}
		})
	}
}

// TestForwardKeepsTheLeadersCode: the leader's JSON answer keeps its code
// through the forwarding member, where the HTTP layer has a row of its own
// for it (a learner not caught up, a transfer not done in time), and a
// 2xx answer's body reaches the caller.
func TestForwardKeepsTheLeadersCode(t *testing.T) {
	leader := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Accept") != "application/json" {
			http.Error(w, "forwarded without Accept: application/json", http.StatusTeapot)
			return
		}
		switch r.URL.Path {
		case "/4/promote":
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusConflict)
			io.WriteString(w, `{"error":"learner 4 is not caught up with the leader","code":"learner_not_ready"}`+"\n")
		case "/leader/transfer":
			if r.URL.Query().Get("to") == "3" {
				w.WriteHeader(http.StatusGatewayTimeout)
				io.WriteString(w, `{"error":"leadership did not move to member 3 before the deadline","code":"transfer_timeout"}`+"\n")
				return
			}
			io.WriteString(w, `{"leader":2}`+"\n")
		}
	}))
	defer leader.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	err := forward(ctx, nil, http.MethodPost, leader.URL+"/4/promote", "")
	var fe *forwardedError
	if !errors.As(err, &fe) || !fe.Conflict() || !fe.LearnerNotReady() || fe.LeaderTransferTimeout() ||
		fe.HumanMessage() != "learner 4 is not caught up with the leader" {
		t.Errorf("forwarded promote: %#v", err)
	}
	err = forward(ctx, nil, http.MethodPost, leader.URL+"/leader/transfer?to=3", "")
	if !errors.As(err, &fe) || !fe.Timeout() || !fe.LeaderTransferTimeout() || fe.LearnerNotReady() ||
		fe.HumanMessage() != "leadership did not move to member 3 before the deadline" {
		t.Errorf("forwarded transfer: %#v", err)
	}
	body, err := forwardFor(ctx, nil, http.MethodPost, leader.URL+"/leader/transfer", "")
	if err != nil || string(body) != `{"leader":2}`+"\n" {
		t.Errorf("forwarded transfer answered %q, %v", body, err)
	}
}
