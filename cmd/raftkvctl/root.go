package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/raftkv/raftkv/client"
	"github.com/raftkv/raftkv/cmd/internal/cli"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// Exit statuses.
const (
	exitOK    = 0
	exitError = 1 // the operation failed
	exitUsage = 2 // the command line is wrong
)

// envPrefix starts the environment variable of every flag.
const envPrefix = "RAFTKVCTL_"

// defaultEndpoints are the client URLs of the Procfile's members.
const defaultEndpoints = "http://127.0.0.1:12380,http://127.0.0.1:22380,http://127.0.0.1:32380"

// Output formats of -w.
const (
	formatSimple = "simple"
	formatJSON   = "json"
	formatTable  = "table"
)

// app is one run of raftkvctl: its streams and its global flags.
type app struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	ctx            context.Context

	endpoints       string
	configEndpoints string
	writeOut        string
	commandTimeout  time.Duration
	tls             client.TLSFiles

	// fromEnv names the flags taken from the environment.
	fromEnv map[string]bool

	// ran is set once a command's own code starts: an error before that
	// is a usage error.
	ran bool
}

// usageError is an error in the command line: exit status 2.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

func usagef(format string, args ...any) error { return usageError{fmt.Errorf(format, args...)} }

// run runs raftkvctl with args and returns its exit status.
func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	a := &app{stdin: stdin, stdout: stdout, stderr: stderr, ctx: ctx}
	root := a.rootCommand()
	root.SetArgs(args)
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	cmd, err := root.ExecuteC()
	if err == nil {
		return exitOK
	}
	var ue usageError
	if !a.ran || errors.As(err, &ue) {
		fmt.Fprintf(stderr, "raftkvctl: %s (see '%s --help')\n", oneLine(err.Error()), cmd.CommandPath())
		return exitUsage
	}
	fmt.Fprintf(stderr, "raftkvctl: %s\n", oneLine(message(err)))
	return exitError
}

func (a *app) rootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:   "raftkvctl",
		Short: "raftkvctl is the command-line client of raftkv",
		Long: `raftkvctl is the command-line client of raftkv. It sends every call through
raftkv's Go client, which moves to the next of --endpoints when a member does
not answer or has no leader, and retries within --command-timeout.

Every flag can also be set in the environment as RAFTKVCTL_<FLAG>, upper case
with '-' as '_' (RAFTKVCTL_ENDPOINTS, RAFTKVCTL_WRITE_OUT, RAFTKVCTL_CACERT);
a flag on the command line wins. Exit status: 0 on success, 1 when the
operation failed, 2 on a usage error.`,
		Version:           strings.TrimSuffix(cli.Version("raftkvctl"), "\n"),
		SilenceErrors:     true,
		SilenceUsage:      true,
		PersistentPreRunE: a.prepare,
	}
	root.SetVersionTemplate("{{.Version}}\n")
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })
	root.CompletionOptions.DisableDefaultCmd = true
	pf := root.PersistentFlags()
	pf.StringVar(&a.endpoints, "endpoints", defaultEndpoints,
		"comma-separated client URLs of one group's members, or of routers")
	pf.StringVar(&a.configEndpoints, "config-endpoints", "",
		"comma-separated client URLs of a sharded deployment's config group: key calls are routed by bucket, and the sharding verbs go there")
	pf.StringVarP(&a.writeOut, "write-out", "w", formatSimple, "output format: simple, json or table")
	pf.DurationVar(&a.commandTimeout, "command-timeout", client.DefaultRequestTimeout,
		"deadline of each call, its retries included")
	pf.StringVar(&a.tls.CACert, "cacert", "", "verify https members with the CA certificates of this PEM file")
	pf.StringVar(&a.tls.Cert, "cert", "", "client certificate (PEM) for https members that ask for one")
	pf.StringVar(&a.tls.Key, "key", "", "private key (PEM) of --cert")
	pf.BoolVar(&a.tls.InsecureSkipVerify, "insecure-skip-tls-verify", false,
		"accept any server certificate (for tests only)")

	root.AddCommand(a.getCommand(), a.putCommand(), a.delCommand())
	root.AddCommand(a.membersCommand(), a.leaderCommand(), a.statusCommand())
	root.AddCommand(a.groupsCommand(), a.bucketsCommand(), a.joinCommand(), a.leaveCommand(), a.moveCommand())
	root.AddCommand(a.checkCommand(), a.snapshotCommand(), a.hashkvCommand())
	root.AddCommand(a.listCommand(), a.watchCommand(), a.txnCommand())
	return root
}

// prepare runs before every command: it takes the flags not given on the
// command line from the environment and checks the global ones.
func (a *app) prepare(cmd *cobra.Command, _ []string) error {
	var errs []error
	cmd.Flags().VisitAll(func(f *pflag.Flag) {
		if f.Changed || f.Name == "help" || f.Name == "version" {
			return
		}
		name := envName(f.Name)
		v, ok := os.LookupEnv(name)
		if !ok {
			return
		}
		if err := cmd.Flags().Set(f.Name, v); err != nil {
			errs = append(errs, fmt.Errorf("%s=%q: %v", name, v, err))
		}
		if a.fromEnv == nil {
			a.fromEnv = map[string]bool{}
		}
		a.fromEnv[f.Name] = true
	})
	if len(errs) > 0 {
		return usageError{errs[0]}
	}
	switch a.writeOut {
	case formatSimple, formatJSON, formatTable:
	default:
		return usagef("%s %q: want simple, json or table", a.flagName("write-out"), a.writeOut)
	}
	if a.commandTimeout <= 0 {
		return usagef("%s %v: want a positive duration", a.flagName("command-timeout"), a.commandTimeout)
	}
	if (a.tls.Cert == "") != (a.tls.Key == "") {
		return usagef("--cert and --key (or RAFTKVCTL_CERT and RAFTKVCTL_KEY) go together")
	}
	return nil
}

// flagName names a flag in a message: as the environment variable it was
// taken from, if it was.
func (a *app) flagName(name string) string {
	if a.fromEnv[name] {
		return envName(name)
	}
	return "--" + name
}

// envName is the environment variable of flag name.
func envName(name string) string {
	return envPrefix + strings.ToUpper(strings.ReplaceAll(name, "-", "_"))
}

// op wraps a command's own code, so that its errors count as operation
// errors (exit status 1) unless they are usageErrors.
func (a *app) op(f func(cmd *cobra.Command, args []string) error) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, args []string) error {
		a.ran = true
		return f(cmd, args)
	}
}

// splitList splits a comma-separated flag value, dropping empty items.
func splitList(s string) []string {
	var out []string
	for _, e := range strings.Split(s, ",") {
		if e = strings.TrimSpace(e); e != "" {
			out = append(out, e)
		}
	}
	return out
}

// newClient builds a Client of cfg with the global flags' timeout and TLS.
func (a *app) newClient(cfg client.Config) (*client.Client, error) {
	cfg.RequestTimeout = a.commandTimeout
	if !a.tls.Empty() {
		t, err := client.LoadTLS(a.tls)
		if err != nil {
			return nil, usageError{err}
		}
		cfg.TLS = t
	}
	c, err := client.New(cfg)
	if errors.Is(err, client.ErrInvalidConfig) {
		return nil, usageError{errors.New(strings.TrimPrefix(err.Error(), client.ErrInvalidConfig.Error()+": "))}
	}
	return c, err
}

// endpointsList returns --endpoints, or a usage error when it is empty.
func (a *app) endpointsList() ([]string, error) {
	eps := splitList(a.endpoints)
	if len(eps) == 0 {
		return nil, usagef("%s is empty", a.flagName("endpoints"))
	}
	return eps, nil
}

// keyClient is the Client of the key verbs: routing by bucket through the
// config group with --config-endpoints, else to --endpoints.
func (a *app) keyClient() (*client.Client, error) {
	if cfg := splitList(a.configEndpoints); len(cfg) > 0 {
		return a.newClient(client.Config{ConfigEndpoints: cfg})
	}
	eps, err := a.endpointsList()
	if err != nil {
		return nil, err
	}
	return a.newClient(client.Config{Endpoints: eps})
}

// groupClient is the Client of the verbs about one raft group (members,
// leader, status): --endpoints when given (or when there is no
// --config-endpoints), else the config group.
func (a *app) groupClient(cmd *cobra.Command) (*client.Client, error) {
	cfg := splitList(a.configEndpoints)
	if len(cfg) == 0 || cmd.Flags().Changed("endpoints") {
		eps, err := a.endpointsList()
		if err != nil {
			return nil, err
		}
		return a.newClient(client.Config{Endpoints: eps})
	}
	return a.newClient(client.Config{ConfigEndpoints: cfg})
}

// configClient is the Client of the sharding verbs: the config group is
// --config-endpoints, or else --endpoints.
func (a *app) configClient() (*client.Client, error) {
	cfg := splitList(a.configEndpoints)
	if len(cfg) == 0 {
		var err error
		if cfg, err = a.endpointsList(); err != nil {
			return nil, err
		}
	}
	return a.newClient(client.Config{ConfigEndpoints: cfg})
}

// message is err as one line for a user: without the client package's
// prefix.
func message(err error) string {
	return strings.TrimPrefix(err.Error(), "client: ")
}

// oneLine joins the lines of s.
func oneLine(s string) string {
	return strings.Join(strings.Fields(strings.ReplaceAll(s, "\n", " ")), " ")
}

// parent makes cmd, a command that only groups others, refuse an unknown
// subcommand as a usage error (cobra checks only the root's) and print
// its help when run alone.
func parent(cmd *cobra.Command) *cobra.Command {
	cmd.Args = cobra.ArbitraryArgs
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		if len(args) > 0 {
			return usagef("unknown command %q for %q", args[0], cmd.CommandPath())
		}
		return cmd.Help()
	}
	return cmd
}
