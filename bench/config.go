package bench

import (
	"crypto/tls"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/raftkv/raftkv/internal/clienturl"
)

// Mode is the kind of requests a run sends.
type Mode string

// The modes.
const (
	// ModePut writes: PUT /<key> with a fresh random value, 204 expected.
	ModePut Mode = "put"
	// ModeGet reads: GET /<key>, 200 or 404 expected.
	ModeGet Mode = "get"
	// ModeMixed reads with probability Config.ReadRatio, else writes.
	ModeMixed Mode = "mixed"
	// ModeDelete deletes: DELETE /key/<key>, 204 expected (absent keys too).
	ModeDelete Mode = "delete"
)

// Valid reports whether m is one of the modes.
func (m Mode) Valid() bool {
	switch m {
	case ModePut, ModeGet, ModeMixed, ModeDelete:
		return true
	}
	return false
}

// Read levels, as raftkv's ?level= query parameter.
const (
	// LevelDefault is a linearizable read: no level parameter is sent.
	LevelDefault = "default"
	// LevelStale reads the member's local state: ?level=stale.
	LevelStale = "stale"
)

// Defaults of the Config fields whose zero value means "default".
const (
	DefaultClients  = 16
	DefaultKeySize  = 8
	DefaultKeyspace = 100000
	DefaultTotal    = 10000
	DefaultTimeout  = 10 * time.Second
	// MaxKeySize is raftkv's key limit (longer keys get 400).
	MaxKeySize = 4096
)

// ErrInvalidConfig is wrapped by every error of Config.Validate.
var ErrInvalidConfig = errors.New("bench: invalid config")

// Config describes one benchmark run. Fields documented with a default take
// it when zero; Validate reports the first field that is out of range.
type Config struct {
	// Mode is the kind of requests sent. Required.
	Mode Mode
	// Endpoints are the client URLs of the members (or routers) to load,
	// such as http://127.0.0.1:12380 (scheme, host and port; no path).
	// Connections are spread over them round-robin. Endpoints or
	// ConfigEndpoints is required, not both.
	Endpoints []string
	// ConfigEndpoints are the client URLs of a sharded deployment's config
	// group. The run fetches the config through package client before it
	// starts and sends each key's requests to the group the client routes
	// the key to, over Conns connections per group spread over the group's
	// members; a 421 answer makes it fetch the config again (at most every
	// 100 ms) and counts as an error.
	ConfigEndpoints []string
	// ViaClient sends every request through one client.Client (package
	// client: its routing, retries, net/http connections, X-Client-ID and
	// X-Client-Seq on writes) instead of the run's own connections, to
	// measure what a Go program using the client gets. With Endpoints the
	// Client is given them as one group's members (or routers); with
	// ConfigEndpoints it routes by bucket. Conns is then ignored: the
	// Client keeps up to client.DefaultMaxIdleConnsPerHost connections per
	// member. A request's outcome is the Client call's, after its retries.
	ViaClient bool
	// Clients is the number of concurrent workers, each with at most one
	// request in flight. Default DefaultClients.
	Clients int
	// Conns is the number of HTTP/1.1 keep-alive connections, at most
	// Clients and at least len(Endpoints). Worker i uses connection
	// i mod Conns, so with fewer connections than workers, workers queue for
	// a shared connection. Default: one per worker.
	Conns int
	// KeySize is the length of every key in bytes: its number in the
	// keyspace, in decimal, zero-padded. Default DefaultKeySize; at most
	// MaxKeySize, and the keyspace must fit in KeySize digits.
	KeySize int
	// ValueSize is the length of every written value in bytes, random bytes
	// drawn afresh for each write. Zero writes empty values.
	ValueSize int
	// Keyspace is the number of distinct keys, numbered 0 to Keyspace-1.
	// Default DefaultKeyspace.
	Keyspace int
	// Sequential picks keys in order (request n uses key n mod Keyspace);
	// false picks them uniformly at random.
	Sequential bool
	// Total is the number of requests to send, successful or not. Total and
	// Duration are exclusive; both zero means Total = DefaultTotal.
	Total int64
	// Duration is how long to send requests for; requests still in flight
	// when it ends are waited for and counted.
	Duration time.Duration
	// Rate caps the requests sent per second, over all workers; zero means
	// unlimited. Requests are scheduled at fixed intervals and latency is
	// measured from the scheduled time, so a server that falls behind is
	// charged for the wait it causes (no coordinated omission).
	Rate float64
	// ReadRatio is the fraction of reads in ModeMixed, in [0, 1]. Other
	// modes ignore it.
	ReadRatio float64
	// Level is the read level of ModeGet and ModeMixed reads: LevelDefault
	// (linearizable) or LevelStale. "" means LevelDefault.
	Level string
	// Preload writes every key of the keyspace once before the measured run,
	// so that reads find values. ModeGet, ModeMixed and ModeDelete only.
	Preload bool
	// Verify reads back every key written with a 204, linearizably, after the
	// run, and checks it holds the last value acknowledged for it. Each worker
	// then writes only its own keys (those equal to its index mod Clients),
	// so that the last acknowledged value of each key is known. ModePut only;
	// requires Keyspace >= Clients.
	Verify bool
	// Timeout bounds each request, from the moment it is sent (once its
	// connection is free), a dial and a retry on a new connection included.
	// Default DefaultTimeout.
	Timeout time.Duration
	// TLS is the client TLS configuration for https endpoints (the CAs to
	// trust, a client certificate); nil uses Go's defaults. It also reads
	// the members' /status and /metrics.
	TLS *tls.Config
	// Seed seeds the random choices of keys and operations, so that two runs
	// with the same seed send the same keys in each worker. Zero picks one
	// at random (Result.Config reports it).
	Seed uint64
	// CPUMetrics are client URLs of members whose process CPU
	// (process_cpu_seconds_total in their GET /metrics) the run reads just
	// before and just after the measured phase; Result.CPU is the sum of
	// the differences. Empty, with CPUPids empty, measures no CPU.
	CPUMetrics []string
	// CPUPids are local server processes whose user and system CPU time
	// (/proc/<pid>/stat) the run reads the same way, for servers that have
	// no /metrics. Linux only.
	CPUPids []int
}

// withDefaults returns c with its zero fields set to their defaults.
func (c Config) withDefaults() Config {
	if c.Clients == 0 {
		c.Clients = DefaultClients
	}
	if c.Conns == 0 {
		c.Conns = c.Clients
	}
	if c.KeySize == 0 {
		c.KeySize = DefaultKeySize
	}
	if c.Keyspace == 0 {
		c.Keyspace = DefaultKeyspace
	}
	if c.Total == 0 && c.Duration == 0 {
		c.Total = DefaultTotal
	}
	if c.Level == "" {
		c.Level = LevelDefault
	}
	if c.Timeout == 0 {
		c.Timeout = DefaultTimeout
	}
	c.Endpoints = append([]string(nil), c.Endpoints...)
	for i, e := range c.Endpoints {
		c.Endpoints[i] = strings.TrimRight(strings.TrimSpace(e), "/")
	}
	c.ConfigEndpoints = append([]string(nil), c.ConfigEndpoints...)
	for i, e := range c.ConfigEndpoints {
		c.ConfigEndpoints[i] = strings.TrimRight(strings.TrimSpace(e), "/")
	}
	c.CPUMetrics = append([]string(nil), c.CPUMetrics...)
	for i, e := range c.CPUMetrics {
		c.CPUMetrics[i] = strings.TrimRight(strings.TrimSpace(e), "/")
	}
	c.CPUPids = append([]int(nil), c.CPUPids...)
	return c
}

// Validate reports whether c, with defaults applied, describes a run that
// can be done. Its errors wrap ErrInvalidConfig.
func (c Config) Validate() error {
	if err := c.withDefaults().validate(); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidConfig, err)
	}
	return nil
}

func (c Config) validate() error {
	switch {
	case c.Mode == "":
		return errors.New("no mode")
	case !c.Mode.Valid():
		return fmt.Errorf("unknown mode %q (want put, get, mixed or delete)", c.Mode)
	}
	switch {
	case len(c.Endpoints) == 0 && len(c.ConfigEndpoints) == 0:
		return errors.New("no endpoint")
	case len(c.Endpoints) > 0 && len(c.ConfigEndpoints) > 0:
		return errors.New("endpoints and config endpoints are exclusive (routers are endpoints)")
	}
	for _, pid := range c.CPUPids {
		if pid < 1 {
			return fmt.Errorf("cpu pid %d: want a process id", pid)
		}
	}
	for _, e := range slices.Concat(c.Endpoints, c.ConfigEndpoints, c.CPUMetrics) {
		if err := checkEndpoint(e); err != nil {
			return err
		}
	}
	switch {
	case c.Clients < 1:
		return fmt.Errorf("clients %d: want at least 1", c.Clients)
	case c.Conns < 1 || c.Conns > c.Clients:
		return fmt.Errorf("conns %d: want 1 to clients (%d)", c.Conns, c.Clients)
	case c.Conns < len(c.Endpoints):
		return fmt.Errorf("conns %d: fewer than the %d endpoints, some would get no connection", c.Conns, len(c.Endpoints))
	case c.KeySize < 1 || c.KeySize > MaxKeySize:
		return fmt.Errorf("key size %d: want 1 to %d bytes", c.KeySize, MaxKeySize)
	case c.ValueSize < 0:
		return fmt.Errorf("value size %d: want at least 0", c.ValueSize)
	case c.Keyspace < 1:
		return fmt.Errorf("keyspace %d: want at least 1", c.Keyspace)
	case uint64(c.Keyspace) > maxKeyspace(c.KeySize):
		return fmt.Errorf("keyspace %d: does not fit in %d-digit keys (at most %d)", c.Keyspace, c.KeySize, maxKeyspace(c.KeySize))
	case c.Total < 0:
		return fmt.Errorf("total %d: want at least 0", c.Total)
	case c.Duration < 0:
		return fmt.Errorf("duration %v: want at least 0", c.Duration)
	case c.Total > 0 && c.Duration > 0:
		return errors.New("total and duration are exclusive")
	case c.Rate < 0 || math.IsNaN(c.Rate) || math.IsInf(c.Rate, 0):
		return fmt.Errorf("rate %v: want a finite number >= 0", c.Rate)
	case c.Mode == ModeMixed && !(c.ReadRatio >= 0 && c.ReadRatio <= 1):
		return fmt.Errorf("read ratio %v: want 0 to 1", c.ReadRatio)
	case c.Level != LevelDefault && c.Level != LevelStale:
		return fmt.Errorf("level %q: want %s or %s", c.Level, LevelDefault, LevelStale)
	case c.Preload && c.Mode == ModePut:
		return errors.New("preload applies to get, mixed and delete runs")
	case c.Verify && c.Mode != ModePut:
		return errors.New("verify applies to put runs")
	case c.Verify && c.Keyspace < c.Clients:
		return fmt.Errorf("verify: keyspace %d is smaller than clients %d, some clients would own no key", c.Keyspace, c.Clients)
	case c.Timeout < 0:
		return fmt.Errorf("timeout %v: want at least 0", c.Timeout)
	}
	return nil
}

// checkEndpoint accepts http(s)://host:port with nothing after it, not
// even the slash a member's flags take: paths are appended to it as is.
func checkEndpoint(e string) error {
	err := clienturl.Check(e)
	if err == nil && strings.HasSuffix(e, "/") {
		err = errors.New("ends in a slash")
	}
	if err != nil {
		return fmt.Errorf("endpoint %q %v: want http(s)://host:port", e, err)
	}
	return nil
}
