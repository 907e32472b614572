package router

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/raftkv/raftkv/client"
	"github.com/raftkv/raftkv/internal/clienturl"
	"github.com/raftkv/raftkv/raftnode"
	"go.etcd.io/etcd/client/pkg/v3/transport"
	"go.uber.org/zap"
)

// options are the command line of `raftkv route`.
type options struct {
	configEndpoints []string
	port            int
	listenHost      string
	requestTimeout  time.Duration
	logLevel        string
	// tls reaches members whose client URLs are https; nil: Go's defaults.
	tls *tls.Config
	// serverTLS, when set, serves the router's port over https.
	serverTLS *tls.Config
}

// Main runs `raftkv route [flags]` with args, the arguments after "route",
// until ctx ends (the command's SIGINT or SIGTERM), and returns the
// process's exit status: 0 after a clean stop, 1 when it cannot serve, 2
// for invalid flags.
func Main(ctx context.Context, args []string, stderr io.Writer) int {
	o, err := parseFlags(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintln(stderr, "raftkv route:", err)
		return 2
	}
	return run(ctx, o, stderr)
}

func parseFlags(args []string, stderr io.Writer) (*options, error) {
	fs := flag.NewFlagSet("raftkv route", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "Usage: raftkv route --config-endpoints URL1,URL2,... --port P [flags]")
		fs.PrintDefaults()
	}
	o := &options{}
	var endpoints string
	fs.StringVar(&endpoints, "config-endpoints", "", "comma-separated client URLs of the config group's members (required)")
	fs.IntVar(&o.port, "port", 0, "client HTTP port (required)")
	fs.StringVar(&o.listenHost, "listen-host", "", "host or IP to listen on (default: all interfaces)")
	fs.DurationVar(&o.requestTimeout, "request-timeout", client.DefaultRequestTimeout, "deadline of each routed request, its retries included")
	fs.StringVar(&o.logLevel, "log-level", "info", "log level: debug, info, warn or error")
	var cert, key, cacert string
	fs.StringVar(&cert, "cert", "", "client certificate shown to members that require one (--client-cert-auth); re-read at each handshake")
	fs.StringVar(&key, "key", "", "key of --cert")
	fs.StringVar(&cacert, "cacert", "", "CA that verifies the members' certificates (default: the system's)")
	var serve transport.TLSInfo
	fs.StringVar(&serve.CertFile, "cert-file", "", "certificate to serve the router's port over https with (as a member's --cert-file); re-read at each handshake")
	fs.StringVar(&serve.KeyFile, "key-file", "", "key of --cert-file")
	fs.StringVar(&serve.TrustedCAFile, "trusted-ca-file", "", "CA that verifies the certificates of the router's clients")
	fs.BoolVar(&serve.ClientCertAuth, "client-cert-auth", false, "refuse clients without a certificate --trusted-ca-file verifies, at the TLS handshake")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	for _, e := range strings.Split(endpoints, ",") {
		if e = strings.TrimSpace(e); e != "" {
			o.configEndpoints = append(o.configEndpoints, e)
		}
	}
	switch {
	case len(o.configEndpoints) == 0:
		return nil, errors.New("--config-endpoints lists no URL")
	case o.port < 1 || o.port > 65535:
		return nil, fmt.Errorf("--port %d is not a TCP port", o.port)
	case o.requestTimeout <= 0:
		return nil, fmt.Errorf("--request-timeout %v must be positive", o.requestTimeout)
	}
	for i, e := range o.configEndpoints {
		// As a member's --config-endpoints: the scheme too, which the
		// client would take as http:// when absent.
		if err := clienturl.Check(e); err != nil {
			return nil, fmt.Errorf("--config-endpoints entry %d %q is not an http(s)://host:port URL: it %v", i+1, e, err)
		}
	}
	if err := (client.Config{ConfigEndpoints: o.configEndpoints}).Validate(); err != nil {
		return nil, fmt.Errorf("--config-endpoints: %v", err)
	}
	if _, err := zap.ParseAtomicLevel(o.logLevel); err != nil {
		return nil, fmt.Errorf("--log-level: %v", err)
	}
	if (cert == "") != (key == "") {
		return nil, errors.New("--cert and --key go together")
	}
	if err := raftnode.CheckServerTLS("", serve); err != nil {
		return nil, err
	}
	if serve.CertFile != "" {
		cfg, err := raftnode.ServerTLSConfig(serve)
		if err != nil {
			return nil, fmt.Errorf("TLS of the router's port: %v", err)
		}
		o.serverTLS = cfg
	}
	if cacert != "" {
		if err := raftnode.CheckCAFile(cacert); err != nil {
			return nil, fmt.Errorf("--cacert: %v", err)
		}
	}
	if cert != "" || cacert != "" {
		// etcd's TLSInfo reads the certificate at each handshake, so a
		// renewed one needs no restart.
		cfg, err := (transport.TLSInfo{CertFile: cert, KeyFile: key, TrustedCAFile: cacert}).ClientConfig()
		if err != nil {
			return nil, fmt.Errorf("TLS to the members: %v", err)
		}
		o.tls = cfg
	}
	return o, nil
}

// run serves until ctx ends. Shutdown order: stop accepting, let the
// requests in flight finish (within the request timeout), close the
// Client's connections.
func run(ctx context.Context, o *options, stderr io.Writer) int {
	level, _ := zap.ParseAtomicLevel(o.logLevel)
	zc := zap.NewProductionConfig()
	zc.Level, zc.Sampling, zc.OutputPaths = level, nil, []string{"stderr"}
	lg, err := zc.Build()
	if err != nil {
		fmt.Fprintln(stderr, "raftkv route: logger:", err)
		return 1
	}
	defer lg.Sync()
	c, err := client.New(client.Config{ConfigEndpoints: o.configEndpoints, RequestTimeout: o.requestTimeout, TLS: o.tls, Logger: lg.Named("client")})
	if err != nil {
		lg.Error("cannot build client", zap.Error(err))
		return 1
	}
	defer c.Close()
	h, err := New(Config{Client: c, Logger: lg.Named("router"), Metrics: prometheus.NewRegistry()})
	if err != nil {
		lg.Error("cannot build handler", zap.Error(err))
		return 1
	}
	addr := net.JoinHostPort(o.listenHost, strconv.Itoa(o.port))
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		lg.Error("cannot listen for clients", zap.String("address", addr), zap.Error(err))
		return 1
	}
	if o.serverTLS != nil {
		ln = tls.NewListener(ln, o.serverTLS)
	}
	srv := newServer(h, o.requestTimeout)
	srv.ErrorLog = zap.NewStdLog(lg.Named("http"))
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()
	lg.Info("routing", zap.String("address", ln.Addr().String()), zap.Bool("https", o.serverTLS != nil), zap.Strings("config-endpoints", o.configEndpoints), zap.String("client-id", c.ClientID()))
	// Warm the config cache, so the first requests need not wait for it.
	go func() {
		wctx, cancel := context.WithTimeout(ctx, o.requestTimeout)
		defer cancel()
		if _, err := c.Refresh(wctx, 0); err != nil && ctx.Err() == nil {
			lg.Warn("no config yet; requests will fetch it", zap.Error(err))
		}
	}()
	code := 0
	select {
	case <-ctx.Done():
		lg.Info("shutting down")
	case err := <-serveErr:
		lg.Error("client server failed", zap.Error(err))
		code = 1
	}
	sctx, cancel := context.WithTimeout(context.Background(), o.requestTimeout+time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		lg.Warn("client server shutdown", zap.Error(err))
	}
	return code
}

// transferTimeout bounds reading a request's body and writing its answer
// (each, beside the request's own deadline), as a member's server does:
// a client that stops sending or reading frees its connection then,
// instead of holding it and a goroutine for good. A var for tests.
var transferTimeout = 30 * time.Second

// newServer is the router's HTTP server for h, whose requests take up to
// requestTimeout. WriteTimeout starts once the headers are read, so it
// covers reading the body, the routed call and writing the answer.
// Watches replace it with a deadline per write (sse.flush).
func newServer(h http.Handler, requestTimeout time.Duration) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       transferTimeout,
		WriteTimeout:      transferTimeout + requestTimeout + transferTimeout,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
	}
}
