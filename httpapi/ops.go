package httpapi

import (
	"net/http"
	"net/http/pprof"
)

// This file holds the operator endpoints: /health, /metrics, /debug/pprof/.

const (
	pprofPrefix = "/debug/pprof/"
	// maxPprofSymbolBytes bounds the body of POST /debug/pprof/symbol, a list
	// of program counters.
	maxPprofSymbolBytes = 64 << 10

	allowPprofSymbol = "GET, HEAD, POST"
)

// healthBody is the body of GET /health.
type healthBody struct {
	Health string `json:"health"` // "true" or "false"
	Reason string `json:"reason"`
}

// health answers 200 or 503 with a JSON body. Its 503 is an answer, not a
// failure, so it is not logged: load balancers poll it.
func (h *handler) health(w http.ResponseWriter, r *http.Request) error {
	if err := h.cfg.Cluster.Health(); err != nil {
		w.Header().Set("Retry-After", "1")
		return writeJSON(w, r, http.StatusServiceUnavailable, healthBody{Health: "false", Reason: err.Error()})
	}
	return writeJSON(w, r, http.StatusOK, healthBody{Health: "true"})
}

func (h *handler) metrics(w http.ResponseWriter, r *http.Request) error {
	h.cfg.Metrics.ServeHTTP(w, r)
	return nil
}

// debugPprof serves net/http/pprof's handlers, wired here rather than through
// http.DefaultServeMux, where importing net/http/pprof also registers them.
func (h *handler) debugPprof(w http.ResponseWriter, r *http.Request, name string) error {
	if !h.cfg.Pprof {
		return ErrPprofDisabled
	}
	allow := allowRead
	if name == "symbol" {
		allow = allowPprofSymbol
	}
	return only(w, r, allow, func(w http.ResponseWriter, r *http.Request) error {
		switch name {
		case "cmdline":
			pprof.Cmdline(w, r)
		case "profile":
			pprof.Profile(w, r)
		case "symbol":
			r.Body = http.MaxBytesReader(w, r.Body, maxPprofSymbolBytes)
			pprof.Symbol(w, r)
		case "trace":
			pprof.Trace(w, r)
		default: // "" is the index; any other name is a runtime/pprof profile
			pprof.Index(w, r)
		}
		return nil
	})
}
