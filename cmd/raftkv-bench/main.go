// Command raftkv-bench loads a raftkv cluster through its HTTP client API
// and reports throughput, latency percentiles and errors by class.
//
//	raftkv-bench put --endpoints http://127.0.0.1:12380 --clients 16 --total 10000 --verify
//	raftkv-bench get --all --level stale --preload --duration 30s
//	raftkv-bench mixed --all --read-ratio 0.9 --rate 2000 --duration 1m --json
//	raftkv-bench put --config-endpoints http://127.0.0.1:6080 --duration 10s
//
// The workload, the connection pool and the measurements are package bench;
// this command parses flags, discovers members (--all), draws a progress bar
// on a terminal, prints the report and chooses the exit status:
//
//	0    the run completed and at least one request succeeded
//	1    no request succeeded, the preload, discovery or routing failed, or --verify
//	     found a key missing, holding a wrong value, or unreadable
//	2    invalid flags
//	130  interrupted (SIGINT or SIGTERM); the report covers what was measured
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/raftkv/raftkv/bench"
	"github.com/raftkv/raftkv/cmd/internal/cli"
)

// options are the parsed command line.
type options struct {
	cfg  bench.Config
	data *bench.DataConfig // a data-model mode (cas, txn, list, watch); cfg is unused
	all  bool              // discover the members' client URLs from the first endpoint
	json bool              // print one JSON line instead of the text report
	// memberCPU reads the members' CPU from their /metrics: those of --all,
	// or else those GET /status of the first endpoint lists.
	memberCPU bool
}

// cpuDiscoverTimeout bounds the discovery of members for --member-cpu
// without --all: a server that is not a raftkv member (raftexample, a
// router) answers at once, and then the run reports no member CPU.
const cpuDiscoverTimeout = 3 * time.Second

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	go func() {
		<-ctx.Done()
		stop() // a second signal kills at once
	}()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr, stderrIsTerminal()))
}

// stderrIsTerminal reports whether stderr is a character device, which is
// enough to decide whether to draw a progress bar without adding
// golang.org/x/term to the module's requirements.
func stderrIsTerminal() bool {
	fi, err := os.Stderr.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0 && os.Getenv("TERM") != "dumb"
}

// run is main without the process: it returns the exit status.
func run(ctx context.Context, args []string, stdout, stderr io.Writer, progress bool) int {
	opts, err := parseFlags(args, stdout)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		if errors.Is(err, errVersion) {
			fmt.Fprint(stdout, cli.Version("raftkv-bench"))
			return 0
		}
		fmt.Fprintln(stderr, "raftkv-bench:", err)
		return 2
	}
	if opts.data != nil {
		return runData(ctx, opts, stdout, stderr)
	}
	cfg := opts.cfg
	if opts.all {
		urls, err := bench.Discover(ctx, cfg.Endpoints[0], cfg.Timeout, cfg.TLS)
		if err != nil {
			fmt.Fprintln(stderr, "raftkv-bench:", err)
			return 1
		}
		cfg.Endpoints = urls
	}
	var cpuErr error
	if opts.memberCPU && len(cfg.CPUPids) == 0 && len(cfg.ConfigEndpoints) == 0 {
		if opts.all {
			cfg.CPUMetrics = cfg.Endpoints
		} else {
			cfg.CPUMetrics, cpuErr = bench.Discover(ctx, cfg.Endpoints[0], min(cfg.Timeout, cpuDiscoverTimeout), cfg.TLS)
		}
	}
	r, err := bench.New(cfg)
	if err != nil {
		fmt.Fprintln(stderr, "raftkv-bench:", err)
		return 2
	}
	defer r.Close()

	stopProgress := func() {}
	if progress {
		stopProgress = startProgress(stderr, r)
	}
	res, err := r.Run(ctx)
	stopProgress()
	if err != nil {
		fmt.Fprintln(stderr, "raftkv-bench:", err)
		return 1
	}
	if cpuErr != nil {
		res.CPUErr = fmt.Sprintf("%v: %v", bench.ErrCPU, cpuErr)
	}

	verifyFailed := res.Verify != nil && !res.Verify.OK()
	if opts.json {
		err = res.WriteJSON(stdout)
		if verifyFailed {
			res.WriteVerify(stderr)
		}
	} else {
		err = res.WriteText(stdout)
	}
	if err != nil {
		fmt.Fprintln(stderr, "raftkv-bench:", err)
		return 1
	}
	switch {
	case res.Interrupted:
		return 130
	case verifyFailed:
		return 1
	case res.Ops == 0:
		fmt.Fprintln(stderr, "raftkv-bench: no request succeeded")
		return 1
	}
	return 0
}

const usageHead = `raftkv-bench loads a raftkv cluster through its HTTP client API and reports
throughput, latency percentiles (min, mean, p50, p90, p99, p99.9, max) and
errors by kind. Its clients keep HTTP/1.1 connections alive and spread them
over --endpoints, or over every member with --all; --verify reads back every
acknowledged key after a put run, and --json prints one line for scripts.

Examples:
  raftkv-bench put --all --clients 64 --duration 10s
  raftkv-bench put --endpoints http://127.0.0.1:12380 --clients 16 --total 10000 --verify
  raftkv-bench get --all --level stale --preload --duration 30s
  raftkv-bench mixed --all --read-ratio 0.9 --rate 2000 --duration 1m --json

usage: raftkv-bench <put|get|mixed|delete|cas|txn|list|watch> [flags]

Modes:
  put     PUT /<key> with random values of --value-size bytes (204 expected)
  get     GET /<key>, linearizable or --level stale (200 or 404 expected)
  mixed   get with probability --read-ratio, else put
  delete  DELETE /key/<key> (204 expected)
  cas     GET a key's ETag, then PUT it with If-Match; successes (204) and
          conflicts (412) counted apart, the counters checked after the run
  txn     POST /txn: compare a key's mod index, put two keys of its hash tag
  list    walk --keyspace preloaded keys in pages of --page-size (GET /key?prefix=)
  watch   --watchers watches on a prefix, spread over the members, and
          --clients writers at --rate puts/s in all (default 100; negative:
          unlimited); events/s delivered, latency
          from each write's answer to each watcher, exit 1 on any gap

Keys are the numbers 0 to --keyspace-1 in decimal, zero-padded to --key-size.
Latency counts only successful requests; with --rate, from each request's due
time. Stop with ^C: the report covers what was measured.

Flags:
`

// errVersion is parseFlags's answer to --version.
var errVersion = errors.New("version requested")

// parseFlags parses the command line: a mode, before or after the flags.
// It writes the help to help on --help; run reports errors, in one line.
func parseFlags(args []string, help io.Writer) (*options, error) {
	fs := flag.NewFlagSet("raftkv-bench", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	o := &options{}
	c := &o.cfg
	var endpoints, configEndpoints, level, cpuPids string
	fs.StringVar(&endpoints, "endpoints", "http://127.0.0.1:12380", "comma-separated client URLs (members or routers) to send requests to; connections are spread over them")
	fs.StringVar(&configEndpoints, "config-endpoints", "", "a sharded deployment's config group (comma-separated client URLs): route each key to its bucket's group, --conns connections per group; excludes --endpoints and --all")
	fs.BoolVar(&c.ViaClient, "via-client", false, "send every request through one client.Client (package client: its routing, retries and net/http connections) instead of the benchmark's own connections; --conns is ignored")
	fs.BoolVar(&o.all, "all", false, "send to every member: take their client URLs from GET /status of the first --endpoints URL")
	fs.IntVar(&c.Clients, "clients", bench.DefaultClients, "concurrent workers, each with one request in flight")
	fs.IntVar(&c.Conns, "conns", 0, "HTTP/1.1 keep-alive connections, 1 to --clients, at least one per endpoint; clients share them (0: one per client)")
	fs.IntVar(&c.KeySize, "key-size", bench.DefaultKeySize, "key length in bytes")
	fs.IntVar(&c.ValueSize, "value-size", 256, "value length in bytes")
	fs.IntVar(&c.Keyspace, "keyspace", bench.DefaultKeyspace, "number of distinct keys")
	fs.BoolVar(&c.Sequential, "seq", false, "use keys in order instead of at random")
	fs.Int64Var(&c.Total, "total", 0, fmt.Sprintf("requests to send, successful or not (default %d unless --duration)", bench.DefaultTotal))
	fs.DurationVar(&c.Duration, "duration", 0, "send requests for this long instead of --total")
	fs.Float64Var(&c.Rate, "rate", 0, "requests per second over all clients (0: unlimited)")
	fs.Float64Var(&c.ReadRatio, "read-ratio", 0.9, "mixed: fraction of requests that are reads")
	fs.StringVar(&level, "level", bench.LevelDefault, "get and mixed: read level, default (linearizable) or stale")
	fs.BoolVar(&c.Preload, "preload", false, "get, mixed, delete: write every key once before the measured run")
	fs.BoolVar(&c.Verify, "verify", false, "put: read back every acknowledged key after the run and check its value; exit 1 on any loss")
	fs.DurationVar(&c.Timeout, "timeout", bench.DefaultTimeout, "deadline of each request")
	fs.Uint64Var(&c.Seed, "seed", 0, "seed of the random key and operation choices (0: random)")
	pageSize := fs.Int("page-size", bench.DefaultPageSize, "list: keys per page")
	watchers := fs.Int("watchers", bench.DefaultWatchers, "watch: watches open at once, spread over the endpoints")
	fs.BoolVar(&o.json, "json", false, "print one JSON line instead of the text report")
	fs.BoolVar(&o.memberCPU, "member-cpu", true, "report the members' CPU time per successful request, from process_cpu_seconds_total in each member's /metrics before and after the measured phase; the members are those of --all, or else those GET /status of the first endpoint lists (when that fails, the figure is left out and the report says why); not in sharded runs")
	fs.StringVar(&cpuPids, "cpu-pids", "", "comma-separated ids of local server processes whose CPU time (/proc/<pid>/stat) to report per request instead of the members', for servers without /metrics")
	version := fs.Bool("version", false, "print the version, VCS revision and Go version, and exit")
	loadTLS := cli.ClientTLSFlags(fs)

	var mode string
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		mode, args = args[0], args[1:]
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fs.SetOutput(help)
			fmt.Fprint(help, usageHead)
			fs.PrintDefaults()
		}
		return nil, err
	}
	if *version {
		return nil, errVersion
	}
	rest := fs.Args()
	if mode == "" && len(rest) > 0 {
		mode, rest = rest[0], rest[1:]
	}
	if len(rest) > 0 {
		return nil, fmt.Errorf("unexpected arguments %q", rest)
	}
	if mode == "" {
		return nil, errors.New("no mode: want put, get, mixed, delete, cas, txn, list or watch (see --help)")
	}
	c.Mode = bench.Mode(mode)
	c.Level = level
	var err error
	if c.TLS, err = loadTLS(); err != nil {
		return nil, err
	}
	if c.Mode.IsData() {
		return parseData(fs, o, endpoints, configEndpoints, *pageSize, *watchers)
	}
	if configEndpoints != "" {
		var explicit bool
		fs.Visit(func(f *flag.Flag) { explicit = explicit || f.Name == "endpoints" })
		if explicit || o.all {
			return nil, errors.New("--config-endpoints excludes --endpoints and --all")
		}
		endpoints = ""
	}
	c.Endpoints, c.ConfigEndpoints = splitList(endpoints), splitList(configEndpoints)
	for _, p := range splitList(cpuPids) {
		pid, err := strconv.Atoi(p)
		if err != nil || pid < 1 {
			return nil, fmt.Errorf("--cpu-pids: %q is not a process id", p)
		}
		c.CPUPids = append(c.CPUPids, pid)
	}
	// Zero means "default" in bench.Config; on the command line it is a mistake.
	if c.Clients <= 0 {
		return nil, fmt.Errorf("--clients %d: want at least 1", c.Clients)
	}
	if c.KeySize <= 0 {
		return nil, fmt.Errorf("--key-size %d: want at least 1", c.KeySize)
	}
	if c.Keyspace <= 0 {
		return nil, fmt.Errorf("--keyspace %d: want at least 1", c.Keyspace)
	}
	if c.Timeout <= 0 {
		return nil, fmt.Errorf("--timeout %v: want more than 0", c.Timeout)
	}
	// A flag the mode ignores is a mistake to point out, not to drop silently.
	var misplaced error
	fs.Visit(func(f *flag.Flag) {
		want, ok := modeFlags[f.Name]
		if ok && !slices.Contains(want, c.Mode) && f.Value.String() != f.DefValue && misplaced == nil {
			misplaced = fmt.Errorf("--%s does not apply to %s runs", f.Name, c.Mode)
		}
	})
	if misplaced != nil && c.Mode.Valid() {
		return nil, misplaced
	}
	// With --all, New validates again once the members are known.
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return o, nil
}

// splitList splits a comma-separated list, dropping empty entries.
func splitList(s string) []string {
	var out []string
	for _, e := range strings.Split(s, ",") {
		if e = strings.TrimSpace(e); e != "" {
			out = append(out, e)
		}
	}
	return out
}

// modeFlags lists the flags that only some modes use.
var modeFlags = map[string][]bench.Mode{
	"read-ratio": {bench.ModeMixed},
	"level":      {bench.ModeGet, bench.ModeMixed},
	"preload":    {bench.ModeGet, bench.ModeMixed, bench.ModeDelete},
	"verify":     {bench.ModePut},
	"page-size":  {bench.ModeList},
	"watchers":   {bench.ModeWatch},
}
