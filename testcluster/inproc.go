package testcluster

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/raftkv/raftkv/daemon"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// This file holds the in-process mode (Options.InProcess) and what the two
// kinds of incarnation do differently.

// needProcesses fails the test when the cluster runs in process: op acts
// on an OS process.
func (c *Cluster) needProcesses(op string) {
	c.t.Helper()
	if c.opts.InProcess {
		c.t.Fatalf("testcluster: %s needs raftkv processes; an in-process cluster supports Stop, Restart and Wait, not Kill, Pause or Resume (start it without Options.InProcess)", op)
	}
}

// startMember starts a new in-process incarnation of n, configured as a
// process started with n.args would be, and logging to n's log file.
func (c *Cluster) startMember(n *node) {
	c.t.Helper()
	cfg, err := memberConfig(n.args)
	if err != nil {
		c.t.Fatalf("testcluster: node %d: %v", n.id, err)
	}
	if c.opts.Configure != nil {
		c.opts.Configure(n.id, &cfg)
	}
	logf, err := os.OpenFile(n.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		c.t.Fatalf("testcluster: %v", err)
	}
	fmt.Fprintf(logf, "=== testcluster: %s start node %d in process: %s\n",
		time.Now().Format(time.RFC3339Nano), n.id, strings.Join(n.args, " "))
	cfg.Logger = zap.New(zapcore.NewCore(zapcore.NewJSONEncoder(zap.NewProductionEncoderConfig()), zapcore.Lock(logf), zap.InfoLevel))
	m, err := daemon.Start(context.Background(), cfg)
	if err != nil {
		logf.Close()
		c.t.Fatalf("testcluster: start node %d in process: %v", n.id, err)
	}
	p := &process{member: m, done: make(chan struct{})}
	go func() {
		p.waitErr = m.Err()
		p.code = exitStatus(p.waitErr)
		logf.Close()
		close(p.done)
	}()
	c.mu.Lock()
	n.procs = append(n.procs, p)
	c.mu.Unlock()
}

// exitStatus is the status cmd/raftkv exits with after a member stopped
// with err.
func exitStatus(err error) int {
	if err == nil || errors.Is(err, daemon.ErrRemoved) {
		return 0
	}
	return 1
}

// memberConfig is the daemon configuration of the command line args, as
// Cluster.args writes it; it refuses any other flag, so that an in-process
// member is never configured differently from a process without notice.
func memberConfig(args []string) (daemon.Config, error) {
	var cfg daemon.Config
	for i := 0; i < len(args); i++ {
		flag := args[i]
		if flag == "--join" {
			cfg.Join = true
			continue
		}
		if i+1 == len(args) {
			return cfg, fmt.Errorf("flag %s without a value", flag)
		}
		i++
		v := args[i]
		var err error
		switch flag {
		case "--id":
			cfg.ID, err = strconv.ParseUint(v, 10, 64)
		case "--cluster":
			cfg.Peers = strings.Split(v, ",")
		case "--port":
			cfg.ClientListenAddr = ":" + v
		case "--data-dir":
			cfg.DataDir = v
		case "--snapshot-count":
			cfg.SnapshotCount, err = strconv.ParseUint(v, 10, 64)
		case "--snapshot-catchup-entries":
			cfg.SnapshotCatchUpEntries, err = strconv.ParseUint(v, 10, 64)
		case "--tick-ms":
			var ms int
			ms, err = strconv.Atoi(v)
			cfg.TickInterval = time.Duration(ms) * time.Millisecond
		case "--request-timeout":
			cfg.RequestTimeout, err = time.ParseDuration(v)
		default:
			return cfg, fmt.Errorf("flag %s has no in-process equivalent here", flag)
		}
		if err != nil {
			return cfg, fmt.Errorf("flag %s %s: %v", flag, v, err)
		}
	}
	return cfg, nil
}

// exitCode is the incarnation's exit status, once done is closed: -1 for
// a process a signal killed.
func (p *process) exitCode() int {
	if p.member != nil {
		return p.code
	}
	return p.state.ExitCode()
}

// terminate asks the incarnation to stop cleanly: SIGTERM, once the
// process has caught it (AwaitListening), or a member's Stop (the same
// shutdown, without the process around it).
func (p *process) terminate() {
	if p.member != nil {
		go p.member.Stop()
		return
	}
	AwaitListening(p.url, p.exited)
	p.cmd.Process.Signal(syscall.SIGTERM)
}

// kill sends SIGKILL to a process. Nothing forces a member to stop: one
// that does not is a deadlock, which the test's timeout then shows with
// every goroutine's stack.
func (p *process) kill() {
	if p.cmd != nil {
		p.cmd.Process.Signal(syscall.SIGKILL)
	}
}

// resume continues a process a test may have paused; members are never
// paused.
func (p *process) resume() {
	if p.cmd != nil {
		p.cmd.Process.Signal(syscall.SIGCONT)
	}
}
