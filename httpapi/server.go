package httpapi

import (
	"net"
	"net/http"
	"time"
)

// Server limits, so slow or idle clients cannot pin connections or goroutines.
const (
	serverReadHeaderTimeout = 5 * time.Second
	// serverTransferTimeout is the time allowed to read a request (headers and
	// body) and, again, to write a response: enough to move a
	// DefaultMaxValueBytes value at about 50 KB/s.
	serverTransferTimeout = 30 * time.Second
	serverIdleTimeout     = 2 * time.Minute
	serverMaxHeaderBytes  = 64 << 10 // a 4 KiB key percent-encoded is at most 12 KiB
)

// NewServer returns a server for h on addr. requestTimeout must be the
// handler's Config.RequestTimeout (zero means DefaultRequestTimeout):
// WriteTimeout starts once the request headers are read, so it covers reading
// the body, the Store or Cluster call, and writing the response. When h is
// from New, the server serves the hot key requests on its own loop (see
// Server). The caller owns the server: Serve or ListenAndServe, then
// Shutdown.
func NewServer(addr string, h http.Handler, requestTimeout time.Duration) *Server {
	if requestTimeout <= 0 {
		requestTimeout = DefaultRequestTimeout
	}
	s := &Server{
		addr: addr,
		std: &http.Server{
			Addr:              addr,
			Handler:           h,
			ReadHeaderTimeout: serverReadHeaderTimeout,
			ReadTimeout:       serverTransferTimeout,
			WriteTimeout:      serverTransferTimeout + requestTimeout + serverTransferTimeout,
			IdleTimeout:       serverIdleTimeout,
			MaxHeaderBytes:    serverMaxHeaderBytes,
			ConnContext:       withTLSState,
		},
	}
	if hh, ok := h.(*handler); ok {
		// Watches last until their client goes: end them when Shutdown
		// begins, or it would wait for them.
		s.std.RegisterOnShutdown(hh.closeWatches)
		s.h = hh
		s.hand = newHandoffListener()
		s.mu.lns = map[net.Listener]struct{}{}
		s.mu.conns = map[*fastConn]struct{}{}
	}
	return s
}
