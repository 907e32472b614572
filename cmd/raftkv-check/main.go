// Command raftkv-check runs the robustness workload against a running raftkv
// cluster, without injecting faults, and checks the recorded history for
// linearizability, durability and convergence. It prints a one-paragraph
// verdict and exits 1 on any violation (2 on bad flags).
//
//	raftkv-check --endpoints http://127.0.0.1:12380,http://127.0.0.1:22380,http://127.0.0.1:32380 --duration 30s
//
// It writes only keys under its --prefix (a fresh one per run by default).
// The convergence check expects no other writers once its workload stops.
package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/raftkv/raftkv/client"
	"github.com/raftkv/raftkv/cmd/internal/cli"
	"github.com/raftkv/raftkv/internal/clienturl"
	"github.com/raftkv/raftkv/robustness"
)

type options struct {
	endpoints       []string
	duration        time.Duration
	clients, keys   int
	rate            float64
	seed            uint64
	prefix          string
	requestTimeout  time.Duration
	checkTimeout    time.Duration
	convergeTimeout time.Duration
	out             string
	tls             *tls.Config // nil: Go's defaults
}

// usageHead is the top of --help, above the flags.
const usageHead = `raftkv-check runs a workload of reads, writes and deletes against a running
raftkv cluster for --duration, without injecting faults, and then checks what
it recorded: every operation linearizable (checked with porcupine), every
acknowledged write readable on every member, and every member holding the
same state. It prints a verdict and exits 0 when all of that holds, 1 on a
violation, and 2 on bad flags or an error. It writes only keys under
--prefix, and expects no other writer once its workload stops.

Examples:
  raftkv-check --endpoints http://127.0.0.1:12380,http://127.0.0.1:22380,http://127.0.0.1:32380 --duration 30s
  raftkv-check --endpoints http://127.0.0.1:12380 --clients 4 --rate 200 --duration 1m --out /tmp/raftkv-check

Usage: raftkv-check --endpoints URL1,URL2,... [flags]

Flags:
`

// errVersion is parseFlags's answer to --version.
var errVersion = errors.New("version requested")

// parseFlags parses the command line. It writes the help to help on
// --help; main reports errors, in one line.
func parseFlags(args []string, help io.Writer) (options, error) {
	var o options
	fs := flag.NewFlagSet("raftkv-check", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	version := fs.Bool("version", false, "print the version, VCS revision and Go version, and exit")
	endpoints := fs.String("endpoints", "", "comma-separated client URLs of the members (required)")
	fs.DurationVar(&o.duration, "duration", 30*time.Second, "how long the workload runs")
	fs.IntVar(&o.clients, "clients", robustness.DefaultClients, "concurrent clients")
	fs.IntVar(&o.keys, "keys", robustness.DefaultKeys, "keys of the linearizability family (at least 50 keeps the check fast)")
	fs.Float64Var(&o.rate, "rate", 0, "operations per second over all clients; 0 means as fast as the cluster answers")
	fs.Uint64Var(&o.seed, "seed", 0, "seed of the workload; 0 picks one")
	fs.StringVar(&o.prefix, "prefix", "", `prefix of every key written; "" means raftkv-check/<random>/`)
	fs.DurationVar(&o.requestTimeout, "request-timeout", robustness.DefaultRequestTimeout, "deadline of each request")
	fs.DurationVar(&o.checkTimeout, "check-timeout", robustness.DefaultCheckTimeout, "deadline of the linearizability check; reaching it is a failure")
	fs.DurationVar(&o.convergeTimeout, "converge-timeout", 10*time.Second, "how long members may take to reach the same state after the workload")
	loadTLS := cli.ClientTLSFlags(fs)
	fs.StringVar(&o.out, "out", "", "directory for the history visualization on failure; \"\" means a new temporary directory")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fs.SetOutput(help)
			fmt.Fprint(help, usageHead)
			fs.PrintDefaults()
		}
		return o, err
	}
	if *version {
		return o, errVersion
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	for _, e := range strings.Split(*endpoints, ",") {
		if e = strings.TrimSpace(e); e == "" {
			continue
		}
		if err := clienturl.Check(e); err != nil {
			return o, fmt.Errorf("--endpoints: %q is not an http(s)://host:port URL: it %v", e, err)
		}
		o.endpoints = append(o.endpoints, strings.TrimSuffix(e, "/"))
	}
	switch {
	case len(o.endpoints) == 0:
		return o, errors.New("--endpoints is required")
	case o.duration <= 0:
		return o, errors.New("--duration must be positive")
	case o.clients <= 0 || o.keys <= 0:
		return o, errors.New("--clients and --keys must be positive")
	case o.rate < 0:
		return o, errors.New("--rate must not be negative")
	}
	var err error
	if o.tls, err = loadTLS(); err != nil {
		return o, err
	}
	if o.seed == 0 {
		o.seed = rand.Uint64()
	}
	if o.prefix == "" {
		o.prefix = fmt.Sprintf("raftkv-check/%x/", rand.Uint32())
	}
	return o, nil
}

func main() {
	o, err := parseFlags(os.Args[1:], os.Stdout)
	if errors.Is(err, flag.ErrHelp) {
		os.Exit(0)
	}
	if errors.Is(err, errVersion) {
		fmt.Print(cli.Version("raftkv-check"))
		os.Exit(0)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "raftkv-check: %v\n", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	r, err := run(ctx, o)
	if err != nil {
		fmt.Fprintf(os.Stderr, "raftkv-check: %v\n", err)
		os.Exit(2)
	}
	fmt.Println(r.Verdict())
	if !r.OK() {
		os.Exit(1)
	}
}

// refuseRouters fails when an endpoint answers GET /status as a router
// (raftkv route): the check compares the states and the watches of one
// group's members, which a router has not, so it would report violations
// that are not there. An endpoint that does not answer is left to the
// check.
func refuseRouters(ctx context.Context, o options) error {
	c, err := client.New(client.Config{Endpoints: o.endpoints, TLS: o.tls, RequestTimeout: o.requestTimeout})
	if err != nil {
		return err
	}
	defer c.Close()
	for _, e := range o.endpoints {
		if st, err := c.StatusOf(ctx, e); err == nil && st.Role == "router" {
			return fmt.Errorf("%s is a router: raftkv-check checks the members of one raft group (their states and their watch streams); "+
				"give --endpoints a group's members, or run raftkvctl check against the router", e)
		}
	}
	return nil
}

// run runs the workload for o.duration (or until ctx is done), then the
// checkers.
func run(ctx context.Context, o options) (robustness.Report, error) {
	if err := refuseRouters(ctx, o); err != nil {
		return robustness.Report{}, err
	}
	client := robustness.NewClient(o.requestTimeout)
	if o.tls != nil {
		client.SetTLS(o.tls)
	}
	defer client.Close()
	h := robustness.NewHistory()
	w, err := robustness.NewWorkload(robustness.Config{
		Targets:        func() []string { return o.endpoints },
		Clients:        o.clients,
		Keys:           o.keys,
		KeyPrefix:      o.prefix,
		Seed:           o.seed,
		RequestTimeout: o.requestTimeout,
		Rate:           o.rate,
		Client:         client,
	}, h)
	if err != nil {
		return robustness.Report{}, err
	}
	watch, err := robustness.StartWatch(o.endpoints, o.prefix, o.tls)
	if err != nil {
		return robustness.Report{}, fmt.Errorf("watching %q: %w", o.prefix, err)
	}
	defer watch.Stop()
	fmt.Fprintf(os.Stderr, "raftkv-check: %v workload against %d members (seed %d, keys under %q)\n",
		o.duration, len(o.endpoints), o.seed, o.prefix)
	wctx, cancel := context.WithTimeout(ctx, o.duration)
	start := time.Now()
	w.Run(wctx)
	cancel()
	r := robustness.Report{Name: "raftkv-check", Workload: time.Since(start)}
	ops := h.Ops()
	r.Stats = robustness.Summarize(ops)

	conv := robustness.CheckConvergence(client, o.endpoints, o.convergeTimeout)
	r.Convergence = &conv
	wr := robustness.CheckWatch(watch, client, o.endpoints, ops, 30*time.Second)
	r.Watch = &wr
	dur := robustness.CheckDurability(client, o.endpoints, ops, w.NeverWritten(2), 20*time.Second)
	r.Durability = &dur

	dir := o.out
	if dir == "" {
		if dir, err = os.MkdirTemp("", "raftkv-check-"); err != nil {
			return r, err
		}
	} else if err := os.MkdirAll(dir, 0o755); err != nil {
		return r, err
	}
	r.Lin = robustness.CheckLinearizable(ops, h.Notes(), o.checkTimeout, filepath.Join(dir, "history.html"))
	if r.Lin.Err != nil {
		r.Extra = append(r.Extra, r.Lin.Err.Error())
	}
	if r.OK() && o.out == "" {
		os.Remove(dir)
	}
	return r, nil
}
