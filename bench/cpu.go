package bench

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
)

// This file reads the CPU time the servers spent during the measured phase:
// the sum over members (or processes) of user plus system CPU, read just
// before the phase starts and just after it ends.

// ErrCPU is wrapped by the reason a run could not measure server CPU.
var ErrCPU = errors.New("bench: server CPU")

// cpuMetric is the Prometheus process collector's counter of the process's
// user and system CPU time, in seconds, that every raftkv member serves in
// GET /metrics.
const cpuMetric = "process_cpu_seconds_total"

// maxMetricsBytes bounds the /metrics body read.
const maxMetricsBytes = 4 << 20

// clockTicks is the unit of utime and stime in /proc/<pid>/stat: USER_HZ,
// which Linux fixes at 100 for every user-visible interface.
const clockTicks = 100

// cpuReader reads the total CPU time of a set of servers.
type cpuReader struct {
	metrics []string // client URLs whose GET /metrics to read
	pids    []int    // local processes whose /proc/<pid>/stat to read
	client  *http.Client
	timeout time.Duration
}

func newCPUReader(cfg *Config) *cpuReader {
	if len(cfg.CPUMetrics) == 0 && len(cfg.CPUPids) == 0 {
		return nil
	}
	return &cpuReader{
		metrics: cfg.CPUMetrics,
		pids:    cfg.CPUPids,
		// No keep-alive: the reads are two per server, and a connection
		// left open would cost the servers nothing but could outlive Run.
		client:  &http.Client{Transport: &http.Transport{DisableKeepAlives: true, TLSClientConfig: cfg.TLS}},
		timeout: cfg.Timeout,
	}
}

// read returns the sum of the servers' CPU times, reading them at once.
func (c *cpuReader) read(ctx context.Context) (time.Duration, error) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.timeout)
	defer cancel()
	n := len(c.metrics) + len(c.pids)
	times := make([]time.Duration, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i, u := range c.metrics {
		wg.Go(func() { times[i], errs[i] = c.readMetrics(ctx, u) })
	}
	for i, pid := range c.pids {
		j := len(c.metrics) + i
		times[j], errs[j] = readProcCPU(pid)
	}
	wg.Wait()
	var sum time.Duration
	for _, t := range times {
		sum += t
	}
	if err := errors.Join(errs...); err != nil {
		return 0, fmt.Errorf("%w: %w", ErrCPU, err)
	}
	return sum, nil
}

func (c *cpuReader) readMetrics(ctx context.Context, base string) (time.Duration, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/metrics", nil)
	if err != nil {
		return 0, err
	}
	resp, err := c.client.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("GET %s/metrics: %s", base, resp.Status)
	}
	d, err := parseCPUMetric(io.LimitReader(resp.Body, maxMetricsBytes))
	if err != nil {
		return 0, fmt.Errorf("GET %s/metrics: %w", base, err)
	}
	return d, nil
}

// parseCPUMetric finds process_cpu_seconds_total in a Prometheus text
// exposition.
func parseCPUMetric(r io.Reader) (time.Duration, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Bytes()
		rest, ok := bytes.CutPrefix(line, []byte(cpuMetric))
		if !ok || len(rest) == 0 || (rest[0] != ' ' && rest[0] != '{') {
			continue
		}
		if rest[0] == '{' { // labels: the value follows the closing brace
			i := bytes.IndexByte(rest, '}')
			if i < 0 {
				return 0, fmt.Errorf("bad line %q", line)
			}
			rest = rest[i+1:]
		}
		fields := strings.Fields(string(rest))
		if len(fields) == 0 {
			return 0, fmt.Errorf("bad line %q", line)
		}
		s, err := strconv.ParseFloat(fields[0], 64)
		if err != nil || s < 0 {
			return 0, fmt.Errorf("bad line %q", line)
		}
		return time.Duration(s * float64(time.Second)), nil
	}
	if err := sc.Err(); err != nil {
		return 0, err
	}
	return 0, fmt.Errorf("no %s", cpuMetric)
}

// readProcCPU returns utime plus stime of process pid.
func readProcCPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	return parseProcStat(b)
}

// parseProcStat reads utime and stime (fields 14 and 15) from the text of
// /proc/<pid>/stat. The command name, field 2, is in parentheses and may
// hold spaces and parentheses itself, so the fields are counted from the
// last ')'.
func parseProcStat(b []byte) (time.Duration, error) {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, fmt.Errorf("bad /proc stat %q", b)
	}
	f := strings.Fields(string(b[i+1:])) // f[0] is field 3, the state
	if len(f) < 13 {
		return 0, fmt.Errorf("bad /proc stat %q", b)
	}
	var ticks uint64
	for _, s := range f[11:13] {
		t, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("bad /proc stat %q", b)
		}
		ticks += t
	}
	return time.Duration(ticks) * time.Second / clockTicks, nil
}
