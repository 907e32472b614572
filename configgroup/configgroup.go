package configgroup

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/raftkv/raftkv/httpapi"
	"github.com/raftkv/raftkv/internal/clienturl"
	"github.com/raftkv/raftkv/shardmap"
	"go.uber.org/zap"
)

// Defaults of the zero Config fields.
const (
	// DefaultMaxWait bounds the wait of GET /config.
	DefaultMaxWait = 30 * time.Second
	// DefaultMaxBodyBytes bounds the body of an operation.
	DefaultMaxBodyBytes = 1 << 20
)

// Op is one config operation; exactly one field is set (kvstore.ConfigOp).
type Op struct {
	// Join adds groups (gid -> its members' client URLs), or gives a group
	// already in the config new URLs.
	Join map[uint64][]string
	// Leave removes groups.
	Leave []uint64
	// Move places one bucket on one group, pinned there.
	Move *MoveOp
}

// MoveOp is the argument of a move.
type MoveOp struct {
	Bucket int
	GID    uint64
}

// Store is the config group's replicated state: kvstore.Store in config
// mode, through daemon's adapter. The names are kvstore's.
type Store interface {
	// ConfigOp proposes op as one entry and returns the config it
	// produced once applied (for a repeat of (wo.ClientID, wo.Seq), the
	// one it produced the first time). An operation shardmap refuses is
	// an error wrapping shardmap.ErrInvalid, and nothing is applied.
	ConfigOp(ctx context.Context, op Op, wo httpapi.WriteOptions) (shardmap.Config, error)
	// QueryConfig returns config version, or the latest when version is
	// negative or past it; linearizable unless opts.Stale.
	QueryConfig(ctx context.Context, version int64, opts httpapi.ReadOptions) (shardmap.Config, error)
	// WaitConfigVersion returns once this member applied a config of
	// version or later, or ctx ends.
	WaitConfigVersion(ctx context.Context, version uint64) error
	// ConfigHistory is a copy of every config this member applied.
	ConfigHistory() shardmap.History
}

// Config configures the handler. The zero value of every field but Store
// means its default.
type Config struct {
	// Store holds the configs. Required.
	Store Store
	// RequestTimeout bounds each Store call after the wait. Zero means
	// httpapi.DefaultRequestTimeout.
	RequestTimeout time.Duration
	// MaxWait bounds the wait of GET /config. Zero means DefaultMaxWait.
	MaxWait time.Duration
	// MaxBodyBytes bounds the body of an operation. Zero means
	// DefaultMaxBodyBytes.
	MaxBodyBytes int64
	// Logger receives one info entry per applied operation. Nil means
	// zap.NewNop().
	Logger *zap.Logger
}

// Handler serves a config group member's /config routes.
type Handler struct {
	cfg Config
}

// New validates cfg and returns the handler.
func New(cfg Config) (*Handler, error) {
	switch {
	case cfg.Store == nil:
		return nil, errors.New("configgroup: Store is nil")
	case cfg.RequestTimeout < 0 || cfg.MaxWait < 0 || cfg.MaxBodyBytes < 0:
		return nil, errors.New("configgroup: negative timeout or limit")
	}
	if cfg.RequestTimeout == 0 {
		cfg.RequestTimeout = httpapi.DefaultRequestTimeout
	}
	if cfg.MaxWait == 0 {
		cfg.MaxWait = DefaultMaxWait
	}
	if cfg.MaxBodyBytes == 0 {
		cfg.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
	return &Handler{cfg: cfg}, nil
}

// Routes are the handler's routes, for httpapi.Config.Routes.
func (h *Handler) Routes() map[string]httpapi.RouteFunc {
	return map[string]httpapi.RouteFunc{"/config": h.query, "/config/": h.operation}
}

// Status is the config section of GET /status: the latest config's
// version, the number of buckets and each group's count of buckets.
func (h *Handler) Status() *httpapi.ConfigStatus {
	return StatusOf(h.cfg.Store.ConfigHistory().Latest())
}

// StatusOf is the config section of GET /status for latest.
func StatusOf(latest shardmap.Config) *httpapi.ConfigStatus {
	st := &httpapi.ConfigStatus{Version: latest.Version, Buckets: len(latest.Buckets), Groups: map[string]int{}}
	for gid := range latest.Groups {
		st.Groups[strconv.FormatUint(gid, 10)] = len(latest.BucketsOf(gid))
	}
	return st
}

// query serves GET /config.
func (h *Handler) query(w http.ResponseWriter, r *http.Request) error {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		return httpapi.MethodNotAllowed(r.Method, "GET, HEAD")
	}
	q, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		return httpapi.BadRequest("the query string is not valid URL encoding")
	}
	opts, err := httpapi.ReadOptionsOf(q)
	if err != nil {
		return err
	}
	version, err := parseVersion(q)
	if err != nil {
		return err
	}
	wait, err := parseWait(q, h.cfg.MaxWait)
	if err != nil {
		return err
	}
	if wait > 0 && version >= 0 {
		wctx, cancel := context.WithTimeout(r.Context(), wait)
		err := h.cfg.Store.WaitConfigVersion(wctx, uint64(version))
		cancel()
		switch {
		case err == nil:
		case r.Context().Err() != nil:
			return r.Context().Err()
		case wctx.Err() == nil:
			return err // the store's own failure
		}
	}
	ctx, cancel := context.WithTimeout(r.Context(), h.cfg.RequestTimeout)
	defer cancel()
	c, err := h.cfg.Store.QueryConfig(ctx, version, opts)
	if err != nil {
		return err
	}
	return writeConfig(w, r, c)
}

// parseVersion reads the version parameter: -1 (also when absent) for the
// latest, else a config version.
func parseVersion(q url.Values) (int64, error) {
	vs := q["version"]
	switch len(vs) {
	case 0:
		return -1, nil
	case 1:
	default:
		return 0, httpapi.BadRequest("query parameter version given more than once")
	}
	v, err := strconv.ParseInt(strings.TrimSpace(vs[0]), 10, 64)
	if err != nil || v < -1 {
		return 0, httpapi.BadRequest(fmt.Sprintf("version must be -1 (the latest) or a config version (0 or more); got %q", truncate(vs[0])))
	}
	return v, nil
}

// parseWait reads the wait parameter: a Go duration or a number of
// seconds, cut to max; 0 when absent.
func parseWait(q url.Values, max time.Duration) (time.Duration, error) {
	vs := q["wait"]
	switch len(vs) {
	case 0:
		return 0, nil
	case 1:
	default:
		return 0, httpapi.BadRequest("query parameter wait given more than once")
	}
	text := strings.TrimSpace(vs[0])
	d, err := time.ParseDuration(text)
	if err != nil {
		secs, serr := strconv.ParseFloat(text, 64)
		if serr != nil || secs != secs { // NaN
			return 0, httpapi.BadRequest(fmt.Sprintf("wait must be a duration such as 5s or 250ms, or a number of seconds; got %q", truncate(vs[0])))
		}
		switch {
		case secs < 0:
			return 0, httpapi.BadRequest(fmt.Sprintf("wait must not be negative; got %q", truncate(vs[0])))
		case secs > max.Seconds():
			return max, nil
		}
		d = time.Duration(secs * float64(time.Second))
	}
	if d < 0 {
		return 0, httpapi.BadRequest(fmt.Sprintf("wait must not be negative; got %q", truncate(vs[0])))
	}
	return min(d, max), nil
}

// operation serves POST /config/join, /config/leave and /config/move.
func (h *Handler) operation(w http.ResponseWriter, r *http.Request) error {
	name := strings.TrimPrefix(r.URL.Path, "/config/")
	switch name {
	case "join", "leave", "move":
	default:
		return httpapi.PathNotFound(fmt.Sprintf("no such config operation %q; POST /config/join, /config/leave or /config/move", truncate(name)))
	}
	if r.Method != http.MethodPost {
		return httpapi.MethodNotAllowed(r.Method, "POST")
	}
	wo, err := httpapi.WriteOptionsOf(r.Header)
	if err != nil {
		return err
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, h.cfg.MaxBodyBytes))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return err
		}
		return httpapi.BadRequest("the request body could not be read in full")
	}
	op, err := parseOp(name, body)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(r.Context(), h.cfg.RequestTimeout)
	defer cancel()
	c, err := h.cfg.Store.ConfigOp(ctx, op, wo)
	if err != nil {
		return invalid(err)
	}
	h.cfg.Logger.Info("config operation applied", zap.String("op", name), zap.Uint64("version", c.Version),
		zap.Int("groups", len(c.Groups)), zap.String("client-id", wo.ClientID), zap.Uint64("client-seq", wo.Seq))
	return writeConfig(w, r, c)
}

// Bodies of the operations. Field names match case-insensitively, as
// encoding/json does, so eraft's capitalised names work.
type (
	joinBody struct {
		Groups map[string][]string `json:"groups"`
	}
	leaveBody struct {
		GIDs []uint64 `json:"gids"`
	}
	moveBody struct {
		Bucket *int    `json:"bucket"`
		GID    *uint64 `json:"gid"`
	}
)

// parseOp decodes the body of operation name.
func parseOp(name string, body []byte) (Op, error) {
	switch name {
	case "join":
		var b joinBody
		if err := decode(body, &b, `{"groups":{"1":["http://127.0.0.1:6088"]}}`); err != nil {
			return Op{}, err
		}
		if len(b.Groups) == 0 {
			return Op{}, httpapi.BadRequest(`join names no group; send {"groups":{"<gid>":["<client URL>",...]}}`)
		}
		op := Op{Join: make(map[uint64][]string, len(b.Groups))}
		for text, servers := range b.Groups {
			gid, err := strconv.ParseUint(text, 10, 64)
			if err != nil || gid == 0 {
				return Op{}, httpapi.BadRequest(fmt.Sprintf("group id %q is not a positive integer", truncate(text)))
			}
			if len(servers) == 0 {
				return Op{}, httpapi.BadRequest(fmt.Sprintf("group %d lists no servers", gid))
			}
			for _, s := range servers {
				if err := checkServer(s); err != nil {
					return Op{}, httpapi.BadRequest(fmt.Sprintf("group %d: %v", gid, err))
				}
			}
			op.Join[gid] = servers
		}
		return op, nil
	case "leave":
		var b leaveBody
		if err := decode(body, &b, `{"gids":[1,2]}`); err != nil {
			return Op{}, err
		}
		if len(b.GIDs) == 0 {
			return Op{}, httpapi.BadRequest(`leave names no group; send {"gids":[<gid>,...]}`)
		}
		return Op{Leave: b.GIDs}, nil
	default: // move
		var b moveBody
		if err := decode(body, &b, `{"bucket":3,"gid":2}`); err != nil {
			return Op{}, err
		}
		if b.Bucket == nil || b.GID == nil {
			return Op{}, httpapi.BadRequest(`move needs both bucket and gid, as {"bucket":3,"gid":2}`)
		}
		return Op{Move: &MoveOp{Bucket: *b.Bucket, GID: *b.GID}}, nil
	}
}

// decode reads body, one JSON object and nothing else, into v; example
// shows the expected form in its errors.
func decode(body []byte, v any, example string) error {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		if errors.Is(err, io.EOF) {
			return httpapi.BadRequest("the body is empty; send a JSON object like " + example)
		}
		return httpapi.BadRequest(jsonProblem(err) + "; send a JSON object like " + example)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return httpapi.BadRequest("data after the JSON object; send one object like " + example)
	}
	return nil
}

// jsonProblem says what encoding/json found wrong, without Go type names.
func jsonProblem(err error) string {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		if te.Field == "" {
			return "the body is a JSON " + te.Value + ", not an object"
		}
		return fmt.Sprintf("field %s is a JSON %s of the wrong type", te.Field, te.Value)
	}
	return strings.TrimPrefix(err.Error(), "json: ")
}

// checkServer requires a group member's URL to be an http(s) URL with a
// host and nothing after it but a slash, the form shard members, clients
// and routers dial: a client skips a server with a path or user info.
func checkServer(s string) error {
	if err := clienturl.Check(s); err != nil {
		return fmt.Errorf("server %q is not an http(s)://host:port URL: it %v", truncate(s), err)
	}
	return nil
}

// invalid gives an operation that shardmap refused a 400 whose sentence
// is shardmap's reason, whatever wraps it.
func invalid(err error) error {
	if !errors.Is(err, shardmap.ErrInvalid) {
		return err
	}
	msg := err.Error()
	const prefix = "shardmap: invalid operation: "
	if i := strings.Index(msg, prefix); i >= 0 {
		msg = msg[i+len(prefix):]
	}
	return &invalidOp{err: err, human: "the config operation is refused: " + msg}
}

// invalidOp is an operation shardmap refused: a 400 that says why.
type invalidOp struct {
	err   error
	human string
}

func (e *invalidOp) Error() string        { return e.err.Error() }
func (e *invalidOp) Unwrap() error        { return e.err }
func (e *invalidOp) BadRequest() bool     { return true }
func (e *invalidOp) HumanMessage() string { return e.human }

// writeConfig answers c in eraft's JSON form, with its version in
// X-Config-Version.
func writeConfig(w http.ResponseWriter, r *http.Request, c shardmap.Config) error {
	if c.Groups == nil {
		c.Groups = map[uint64][]string{} // "Groups":{} rather than null
	}
	b, err := json.Marshal(c)
	if err != nil {
		return fmt.Errorf("configgroup: encoding config %d: %w", c.Version, err)
	}
	b = append(b, '\n')
	hdr := w.Header()
	hdr.Set("Content-Type", "application/json")
	hdr.Set("Content-Length", strconv.Itoa(len(b)))
	hdr.Set(httpapi.HeaderConfigVersion, strconv.FormatUint(c.Version, 10))
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		_, _ = w.Write(b)
	}
	return nil
}

// truncate cuts what a client sent to a length fit for a sentence.
func truncate(s string) string {
	if len(s) > 80 {
		return s[:80] + "..."
	}
	return s
}
