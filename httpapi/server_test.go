package httpapi

import (
	"net/http"
	"testing"
	"time"
)

func TestNewServer(t *testing.T) {
	tests := []struct {
		name           string
		requestTimeout time.Duration
		wantAtLeast    time.Duration // WriteTimeout must exceed reading the body plus the call
	}{
		{"default", 0, serverTransferTimeout + DefaultRequestTimeout},
		{"long requests", time.Minute, serverTransferTimeout + time.Minute},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := http.NotFoundHandler()
			s := NewServer("127.0.0.1:0", h, tc.requestTimeout).std
			if s.Addr != "127.0.0.1:0" || s.Handler == nil {
				t.Errorf("Addr %q, Handler %v", s.Addr, s.Handler)
			}
			if s.ReadHeaderTimeout <= 0 || s.ReadTimeout <= 0 || s.IdleTimeout <= 0 || s.MaxHeaderBytes <= 0 {
				t.Errorf("limits not set: %+v", s)
			}
			if s.ReadHeaderTimeout > s.ReadTimeout {
				t.Errorf("ReadHeaderTimeout %v > ReadTimeout %v", s.ReadHeaderTimeout, s.ReadTimeout)
			}
			if s.WriteTimeout <= tc.wantAtLeast {
				t.Errorf("WriteTimeout %v, want more than %v", s.WriteTimeout, tc.wantAtLeast)
			}
			if s.MaxHeaderBytes < 3*DefaultMaxKeyBytes {
				t.Errorf("MaxHeaderBytes %d cannot carry a percent-encoded maximal key", s.MaxHeaderBytes)
			}
		})
	}
}
