package httpbody

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// unread fails the test if its body is read.
type unread struct{ t *testing.T }

func (u unread) Read([]byte) (int, error) {
	u.t.Error("the body was read")
	return 0, io.EOF
}

func TestRead(t *testing.T) {
	var tooBig *http.MaxBytesError
	for _, tc := range []struct {
		name      string
		body      string
		length    int64 // Content-Length; -1 unknown
		proto     int
		wantErr   bool
		wantClose bool
	}{
		{"at the limit", "0123456789", 10, 1, false, false},
		{"unknown length, at the limit", "0123456789", -1, 1, false, false},
		{"unknown length, over the limit", "0123456789A", -1, 1, true, false},
		{"announced over the limit", "", 11, 1, true, true},
		{"announced over the limit, HTTP/2", "", 11, 2, true, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var body io.Reader = strings.NewReader(tc.body)
			if tc.length > 10 {
				body = unread{t}
			}
			r := httptest.NewRequest("PUT", "/k", body)
			r.ContentLength = tc.length
			r.ProtoMajor = tc.proto
			w := httptest.NewRecorder()
			b, err := Read(w, r, 10)
			if got := errors.As(err, &tooBig); got != tc.wantErr {
				t.Fatalf("Read: %q, %v; want a *http.MaxBytesError: %v", b, err, tc.wantErr)
			}
			if !tc.wantErr && string(b) != tc.body {
				t.Errorf("Read = %q, want %q", b, tc.body)
			}
			if got := w.Header().Get("Connection") == "close"; got != tc.wantClose {
				t.Errorf("Connection: close set: %v, want %v", got, tc.wantClose)
			}
		})
	}
}
