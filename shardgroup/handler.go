package shardgroup

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/raftkv/raftkv/httpapi"
	"go.uber.org/zap"
)

// Handler serves the migration endpoints every shard member has on its
// client port, for the members of other groups' drivers:
//
//	GET  /shard/pull?bucket=B&version=V    200 bucket B's data, encoded
//	                                       (application/octet-stream), as of
//	                                       config V; 409 not_ready before V,
//	                                       409 bucket_gone when no longer held
//	POST /shard/delete?bucket=B&version=V  204 once the bucket is deleted (also
//	                                       when already deleted, or past V);
//	                                       409 not_ready before V
//	GET  /shard/state                      200 the group's state as of a
//	                                       linearizable read: GET /status's
//	                                       "shard" section (JSON); 503 with no
//	                                       leader
//
// B is a bucket number (0 to the count less one) and V a config version
// (1 or more), each given once; anything else is a 400. Pull and delete
// are version fenced and idempotent (see the package doc). The state is
// what another group asks before it decides from this one's progress
// (AskGroupState): GET /status answers from the member's applied state,
// which may lag its group's.
type Handler struct {
	store          Store
	requestTimeout time.Duration
	lg             *zap.Logger
}

// NewHandler returns the migration endpoints over store; requestTimeout
// bounds each Store call (zero means DefaultRequestTimeout). A pull's
// Store call is a linearizable read and a copy of the bucket; sending it
// is bounded by the HTTP server's write timeout.
func NewHandler(store Store, requestTimeout time.Duration, lg *zap.Logger) *Handler {
	if lg == nil {
		lg = zap.NewNop()
	}
	return &Handler{store: store, requestTimeout: requestTimeout, lg: lg}
}

// Routes are the handler's routes, for httpapi.Config.Routes.
func (h *Handler) Routes() map[string]httpapi.RouteFunc {
	return map[string]httpapi.RouteFunc{"/shard/": h.serve}
}

func (h *Handler) serve(w http.ResponseWriter, r *http.Request) error {
	switch r.URL.Path {
	case "/shard/pull":
		if r.Method != http.MethodGet {
			return httpapi.MethodNotAllowed(r.Method, "GET")
		}
		return h.pull(w, r)
	case "/shard/delete":
		if r.Method != http.MethodPost {
			return httpapi.MethodNotAllowed(r.Method, "POST")
		}
		return h.delete(w, r)
	case "/shard/state":
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			return httpapi.MethodNotAllowed(r.Method, "GET, HEAD")
		}
		return h.state(w, r)
	}
	return httpapi.PathNotFound(fmt.Sprintf("no such migration endpoint %q; /shard/pull, /shard/delete and /shard/state are", truncate(r.URL.Path)))
}

// state serves GET /shard/state: the group's state, read through its
// leader.
func (h *Handler) state(w http.ResponseWriter, r *http.Request) error {
	ctx, cancel := h.callContext(r.Context())
	defer cancel()
	st, err := h.store.LinearizableShardState(ctx)
	if err != nil {
		return err
	}
	b, err := json.Marshal(StatusOf(st))
	if err != nil {
		return fmt.Errorf("shardgroup: encoding the state: %w", err)
	}
	b = append(b, '\n')
	hdr := w.Header()
	hdr.Set("Content-Type", "application/json")
	hdr.Set("Content-Length", strconv.Itoa(len(b)))
	hdr.Set(httpapi.HeaderConfigVersion, strconv.FormatUint(st.Config.Version, 10))
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		_, _ = w.Write(b)
	}
	return nil
}

// pull serves GET /shard/pull: the old owner's side of a pull.
func (h *Handler) pull(w http.ResponseWriter, r *http.Request) error {
	b, version, err := h.params(r)
	if err != nil {
		return err
	}
	ctx, cancel := h.callContext(r.Context())
	defer cancel()
	data, err := h.store.ExportBucket(ctx, b, version)
	if err != nil {
		return err
	}
	hdr := w.Header()
	hdr.Set("Content-Type", "application/octet-stream")
	hdr.Set("Content-Length", strconv.Itoa(len(data)))
	hdr.Set(httpapi.HeaderConfigVersion, strconv.FormatUint(version, 10))
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(data)
	h.lg.Info("bucket pulled by its new owner", zap.Int("bucket", b), zap.Uint64("version", version),
		zap.Int("bytes", len(data)), zap.String("remote", r.RemoteAddr))
	return nil
}

// delete serves POST /shard/delete: the new owner's word that it
// installed the bucket, upon which the old owner deletes its copy.
func (h *Handler) delete(w http.ResponseWriter, r *http.Request) error {
	b, version, err := h.params(r)
	if err != nil {
		return err
	}
	ctx, cancel := h.callContext(r.Context())
	defer cancel()
	if err := h.store.DeleteBucket(ctx, b, version); err != nil {
		return err
	}
	h.lg.Info("bucket deleted: its new owner installed it", zap.Int("bucket", b), zap.Uint64("version", version),
		zap.String("remote", r.RemoteAddr))
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (h *Handler) callContext(parent context.Context) (context.Context, context.CancelFunc) {
	d := h.requestTimeout
	if d == 0 {
		d = DefaultRequestTimeout
	}
	return context.WithTimeout(parent, d)
}

// params reads the bucket and version of a migration request.
func (h *Handler) params(r *http.Request) (int, uint64, error) {
	q, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		return 0, 0, httpapi.BadRequest("the query string is not valid URL encoding")
	}
	one := func(name string) (string, error) {
		switch vs := q[name]; len(vs) {
		case 0:
			return "", httpapi.BadRequest(fmt.Sprintf("query parameter %s is missing; send ?bucket=<B>&version=<V>", name))
		case 1:
			return strings.TrimSpace(vs[0]), nil
		}
		return "", httpapi.BadRequest("query parameter " + name + " given more than once")
	}
	bt, err := one("bucket")
	if err != nil {
		return 0, 0, err
	}
	vt, err := one("version")
	if err != nil {
		return 0, 0, err
	}
	n := len(h.store.ShardState().Status)
	b, err := strconv.Atoi(bt)
	if err != nil || b < 0 || b >= n {
		return 0, 0, httpapi.BadRequest(fmt.Sprintf("bucket must be a bucket number from 0 to %d; got %q", n-1, truncate(bt)))
	}
	version, err := strconv.ParseUint(vt, 10, 64)
	if err != nil || version == 0 {
		return 0, 0, httpapi.BadRequest(fmt.Sprintf("version must be a config version, 1 or more; got %q", truncate(vt)))
	}
	return b, version, nil
}

// Status is the shard section of GET /status.
func (h *Handler) Status() *httpapi.ShardStatus { return StatusOf(h.store.ShardState()) }

// StatusOf is the shard section of GET /status for st.
func StatusOf(st ShardState) *httpapi.ShardStatus {
	states := byState(st)
	digest := ""
	if st.Config.Version > 0 {
		digest = st.Config.Digest()
	}
	return &httpapi.ShardStatus{
		Group:         st.Group,
		ConfigVersion: st.Config.Version,
		ConfigDigest:  digest,
		Buckets: httpapi.BucketStates{
			Serving:   states[Serving],
			Pulling:   states[Pulling],
			BePulling: states[BePulling],
			GCing:     states[GCing],
		},
	}
}

// truncate cuts what a client sent to a length fit for a sentence.
func truncate(s string) string {
	if len(s) > 80 {
		return s[:80] + "..."
	}
	return s
}
