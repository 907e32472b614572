package ui

import (
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"time"
)

// DefaultMemberTimeout is the zero Config.MemberTimeout.
const DefaultMemberTimeout = time.Second

// ErrInvalidConfig is what Validate's errors wrap.
var ErrInvalidConfig = errors.New("ui: invalid config")

// Config configures the dashboard of one member.
type Config struct {
	// Self is the client URL of the member serving the dashboard, such as
	// "http://127.0.0.1:12380": the dashboard reads its /status for the
	// member list. Empty is invalid.
	Self string
	// MemberTimeout bounds each request to a member (its /status and
	// /metrics are asked at once). Zero means DefaultMemberTimeout.
	MemberTimeout time.Duration
	// Client sends those requests. Nil means a client of the dashboard's
	// own that uses no proxy and follows no redirect.
	Client *http.Client
}

// Validate reports the first problem with c.
func (c Config) Validate() error {
	u, err := url.Parse(c.Self)
	switch {
	case c.Self == "":
		return fmt.Errorf("%w: Self is empty", ErrInvalidConfig)
	case err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "":
		return fmt.Errorf("%w: Self %q is not an http(s) URL", ErrInvalidConfig, c.Self)
	case c.MemberTimeout < 0:
		return fmt.Errorf("%w: MemberTimeout %v is negative", ErrInvalidConfig, c.MemberTimeout)
	}
	return nil
}

func (c Config) withDefaults() Config {
	if c.MemberTimeout == 0 {
		c.MemberTimeout = DefaultMemberTimeout
	}
	if c.Client == nil {
		c.Client = &http.Client{
			Transport: &http.Transport{
				Proxy:               nil, // members are reached directly
				MaxIdleConnsPerHost: 4,
				IdleConnTimeout:     30 * time.Second,
			},
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		}
	}
	return c
}

//go:embed static
var static embed.FS

// page is one embedded file and its content type.
type page struct {
	file        string
	contentType string
}

var pages = map[string]page{
	"/ui":           {"static/index.html", "text/html; charset=utf-8"},
	"/ui/":          {"static/index.html", "text/html; charset=utf-8"},
	"/ui/app.js":    {"static/app.js", "text/javascript; charset=utf-8"},
	"/ui/style.css": {"static/style.css", "text/css; charset=utf-8"},
}

// APIPath is the path of the aggregated cluster view.
const APIPath = "/ui/api/cluster"

type handler struct {
	agg *aggregator
}

// New validates cfg and returns the handler of /ui and /ui/...: the page,
// its script and style sheet, and GET /ui/api/cluster. It is safe for
// concurrent use.
func New(cfg Config) (http.Handler, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &handler{agg: newAggregator(cfg.withDefaults())}, nil
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	hd := w.Header()
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("Content-Security-Policy", "default-src 'self'; frame-ancestors 'none'")
	hd.Set("Referrer-Policy", "no-referrer")
	p, isPage := pages[r.URL.Path]
	if !isPage && r.URL.Path != APIPath {
		fail(w, http.StatusNotFound, fmt.Sprintf("no dashboard page at %s; the dashboard is at /ui", r.URL.Path))
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		hd.Set("Allow", "GET, HEAD")
		fail(w, http.StatusMethodNotAllowed, fmt.Sprintf("method %s is not allowed here; use GET", r.Method))
		return
	}
	var body []byte
	if isPage {
		b, err := static.ReadFile(p.file)
		if err != nil {
			panic(fmt.Sprintf("ui: embedded %s: %v", p.file, err))
		}
		body = b
		hd.Set("Content-Type", p.contentType)
		hd.Set("Cache-Control", "no-cache")
	} else {
		b, err := json.Marshal(h.agg.aggregate(r.Context()))
		if err != nil {
			panic(fmt.Sprintf("ui: encoding the cluster view: %v", err))
		}
		body = append(b, '\n')
		hd.Set("Content-Type", "application/json")
		hd.Set("Cache-Control", "no-store")
	}
	hd.Set("Content-Length", fmt.Sprint(len(body)))
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		w.Write(body)
	}
}

// fail answers an error with a one-line sentence.
func fail(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	fmt.Fprintln(w, msg)
}
