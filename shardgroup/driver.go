package shardgroup

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/raftkv/raftkv/internal/clienturl"
	"github.com/raftkv/raftkv/shardmap"
	"go.uber.org/zap"
)

// Defaults of the zero Config fields.
const (
	// DefaultPollInterval is the pause between config polls that found
	// nothing new, and how often leadership is checked.
	DefaultPollInterval = 100 * time.Millisecond
	// DefaultLongPoll is how long one config poll waits for the next
	// version to exist.
	DefaultLongPoll = 5 * time.Second
	// DefaultRequestTimeout bounds each Store call and each HTTP request
	// but a pull.
	DefaultRequestTimeout = 5 * time.Second
	// DefaultPullTimeout bounds one pull, its body included.
	DefaultPullTimeout = time.Minute
	// DefaultParallel is how many buckets are pulled or deleted at once.
	DefaultParallel = 8
	// DefaultMaxBucketBytes bounds a pulled bucket's encoded size.
	DefaultMaxBucketBytes = 1 << 30
	// DefaultJoinGrace is how long the auto-join waits for every member
	// to publish its client URL before it joins with those known.
	DefaultJoinGrace = 10 * time.Second
	// DefaultGCGiveUp is how long deletes may fail against an old owner
	// that has left the config before the new owner stops asking.
	DefaultGCGiveUp = 2 * time.Minute
	// DefaultReleaseCheck is how often a leader whose group holds buckets
	// BePulling asks their new owners whether they installed them
	// (releaseLoop).
	DefaultReleaseCheck = 30 * time.Second
)

// Backoff between failed tries of one step.
const (
	minBackoff = 25 * time.Millisecond
	maxBackoff = time.Second
)

// Config configures a Driver. The zero value of every field but Group,
// Store, IsLeader, MemberURLs and ConfigEndpoints means its default.
type Config struct {
	// Group is this shard group's id; at least 1.
	Group uint64
	// Store is the group's replicated state. Required.
	Store Store
	// IsLeader reports whether this member leads its raft group (raft's
	// leader id is its own). Required.
	IsLeader func() bool
	// MemberURLs returns the client URLs the group's members published,
	// in id order, and whether every member has published one. Required.
	MemberURLs func() (urls []string, all bool)
	// ConfigEndpoints are client URLs of config group members. Required.
	ConfigEndpoints []string
	// PollInterval: see DefaultPollInterval.
	PollInterval time.Duration
	// LongPoll: see DefaultLongPoll.
	LongPoll time.Duration
	// RequestTimeout: see DefaultRequestTimeout.
	RequestTimeout time.Duration
	// PullTimeout: see DefaultPullTimeout.
	PullTimeout time.Duration
	// Parallel: see DefaultParallel.
	Parallel int
	// MaxBucketBytes: see DefaultMaxBucketBytes.
	MaxBucketBytes int64
	// JoinGrace: see DefaultJoinGrace.
	JoinGrace time.Duration
	// GCGiveUp: see DefaultGCGiveUp.
	GCGiveUp time.Duration
	// ReleaseCheck: see DefaultReleaseCheck.
	ReleaseCheck time.Duration
	// Client sends the driver's requests. Nil means a client of its own
	// that follows no redirects.
	Client *http.Client
	// Logger receives the driver's logs: info for every transition. Nil
	// means zap.NewNop().
	Logger *zap.Logger
}

// Validate reports the first problem with c.
func (c Config) Validate() error {
	switch {
	case c.Group == 0:
		return errors.New("shardgroup: group id 0 means nobody; use 1 or more")
	case c.Store == nil || c.IsLeader == nil || c.MemberURLs == nil:
		return errors.New("shardgroup: Store, IsLeader and MemberURLs are required")
	case len(c.ConfigEndpoints) == 0:
		return errors.New("shardgroup: no config endpoints")
	case c.PollInterval < 0 || c.LongPoll < 0 || c.RequestTimeout < 0 || c.PullTimeout < 0 ||
		c.Parallel < 0 || c.MaxBucketBytes < 0 || c.JoinGrace < 0 || c.GCGiveUp < 0 || c.ReleaseCheck < 0:
		return errors.New("shardgroup: negative interval, timeout or limit")
	}
	for _, e := range c.ConfigEndpoints {
		if err := clienturl.Check(e); err != nil {
			return fmt.Errorf("shardgroup: config endpoint %q is not an http(s)://host:port URL: it %v", e, err)
		}
	}
	return nil
}

func (c Config) withDefaults() Config {
	if c.PollInterval == 0 {
		c.PollInterval = DefaultPollInterval
	}
	if c.LongPoll == 0 {
		c.LongPoll = DefaultLongPoll
	}
	if c.RequestTimeout == 0 {
		c.RequestTimeout = DefaultRequestTimeout
	}
	if c.PullTimeout == 0 {
		c.PullTimeout = DefaultPullTimeout
	}
	if c.Parallel == 0 {
		c.Parallel = DefaultParallel
	}
	if c.MaxBucketBytes == 0 {
		c.MaxBucketBytes = DefaultMaxBucketBytes
	}
	if c.JoinGrace == 0 {
		c.JoinGrace = DefaultJoinGrace
	}
	if c.GCGiveUp == 0 {
		c.GCGiveUp = DefaultGCGiveUp
	}
	if c.ReleaseCheck == 0 {
		c.ReleaseCheck = DefaultReleaseCheck
	}
	if c.Client == nil {
		c.Client = &http.Client{
			Transport:     &http.Transport{MaxIdleConnsPerHost: 16, IdleConnTimeout: 30 * time.Second},
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		}
	}
	if c.Logger == nil {
		c.Logger = zap.NewNop()
	}
	return c
}

// Driver moves a shard group from config to config: see the package doc.
// It runs on every member and acts only while the member leads.
type Driver struct {
	cfg   Config
	lg    *zap.Logger
	eps   *endpoints
	stopc chan struct{}
	once  sync.Once
	donec chan struct{}
}

// Start validates cfg and starts the driver.
func Start(cfg Config) (*Driver, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	d := &Driver{
		cfg:   cfg,
		lg:    cfg.Logger.With(zap.Uint64("group", cfg.Group)),
		eps:   newEndpoints(cfg.ConfigEndpoints),
		stopc: make(chan struct{}),
		donec: make(chan struct{}),
	}
	go d.run()
	return d, nil
}

// Stop ends the driver and waits for its goroutines: every step in
// flight is canceled. It is idempotent.
func (d *Driver) Stop() {
	d.once.Do(func() { close(d.stopc) })
	<-d.donec
}

// run waits for leadership and leads while it lasts, until Stop.
func (d *Driver) run() {
	defer close(d.donec)
	t := time.NewTicker(d.cfg.PollInterval)
	defer t.Stop()
	for {
		if d.cfg.IsLeader() {
			d.lead()
		}
		select {
		case <-d.stopc:
			return
		case <-t.C:
		}
	}
}

// lead runs the four loops of a leader (join, config, migrations,
// releases) until this member no longer leads or Stop, and waits for
// them.
func (d *Driver) lead() {
	ctx, cancel := context.WithCancel(context.Background())
	st := d.cfg.Store.ShardState()
	d.lg.Info("leading the group's config changes", zap.Uint64("config-version", st.Config.Version),
		zap.Bool("joined", st.Joined), zap.Ints("pending-buckets", pendingBuckets(st)))
	var wg sync.WaitGroup
	for _, loop := range []func(context.Context){d.joinLoop, d.configLoop, d.migrateLoop, d.releaseLoop} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			loop(ctx)
		}()
	}
	t := time.NewTicker(d.cfg.PollInterval)
	defer t.Stop()
	stopping := false
	for !stopping {
		select {
		case <-d.stopc:
			stopping = true
		case <-t.C:
			stopping = !d.cfg.IsLeader()
		}
	}
	cancel()
	wg.Wait()
	d.lg.Info("no longer leading the group's config changes")
}

// pause sleeps for *backoff plus up to half of it at random, then doubles
// it up to maxBackoff; false if ctx ended first.
func pause(ctx context.Context, backoff *time.Duration) bool {
	d := *backoff + rand.N(*backoff/2+1)
	*backoff = min(2**backoff, maxBackoff)
	return sleep(ctx, d)
}

// sleep waits d; false if ctx ended first.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// logFailure logs the tries-th failure of a step: at warn for the first
// and every tenth, at debug otherwise, so that a peer that is down for a
// while does not flood the log.
func (d *Driver) logFailure(tries int, msg string, fields ...zap.Field) {
	fields = append(fields, zap.Int("tries", tries))
	if tries == 1 || tries%10 == 0 {
		d.lg.Warn(msg, fields...)
	} else {
		d.lg.Debug(msg, fields...)
	}
}

// joinLoop asks the config group, once in the group's life, to join it
// with its members' client URLs, then records that it did (MarkJoined).
// It waits up to JoinGrace of its leadership for every member to publish
// its URL, then joins with those known.
func (d *Driver) joinLoop(ctx context.Context) {
	start := time.Now()
	backoff := minBackoff
	var (
		asked []string
		seq   uint64
	)
	for tries := 1; ctx.Err() == nil; tries++ {
		if d.cfg.Store.ShardState().Joined {
			return
		}
		urls, all := d.cfg.MemberURLs()
		if len(urls) == 0 || (!all && time.Since(start) < d.cfg.JoinGrace) {
			tries = 0
			if !sleep(ctx, d.cfg.PollInterval) {
				return
			}
			continue
		}
		if !slices.Equal(urls, asked) {
			// A new request for new URLs; the retries of one request
			// carry the same seq, so the config group applies it once.
			asked, seq = urls, uint64(time.Now().UnixNano())
			d.lg.Info("asking the config group to join", zap.Strings("servers", urls), zap.Bool("all-members", all))
		}
		c, err := d.join(ctx, urls, seq)
		var from shardmap.Config
		if err == nil {
			from, err = d.startFrom(ctx, c)
		}
		if err == nil {
			mctx, cancel := context.WithTimeout(ctx, d.cfg.RequestTimeout)
			err = d.cfg.Store.MarkJoined(mctx, from)
			cancel()
			if err == nil {
				d.lg.Info("joined the config", zap.Uint64("config-version", c.Version), zap.Int("buckets", len(c.BucketsOf(d.cfg.Group))))
				return
			}
		}
		d.logFailure(tries, "join failed; retrying", zap.Error(err))
		if !pause(ctx, &backoff) {
			return
		}
	}
}

// join asks the config group to join it with urls, as request seq,
// unless its latest config lists the group with exactly those servers
// already: an earlier leader's join was applied, and that leader lost
// its leadership (or crashed) before MarkJoined. A new leader's request
// has a seq of its own, so asking again would apply again and make a
// config version with the same layout. If the latest config cannot be
// read, it asks anyway.
func (d *Driver) join(ctx context.Context, urls []string, seq uint64) (shardmap.Config, error) {
	latest, err := queryConfig(ctx, d.cfg.Client, d.eps, -1, 0, d.cfg.RequestTimeout)
	if err == nil && sameServers(latest.Groups[d.cfg.Group], urls) {
		d.lg.Info("the latest config lists this group with these servers already; recording the join", zap.Uint64("config-version", latest.Version))
		return latest, nil
	}
	return joinConfig(ctx, d.cfg.Client, d.eps, d.cfg.Group, urls, "raftkv-group-"+strconv.FormatUint(d.cfg.Group, 10), seq, d.cfg.RequestTimeout)
}

// startFrom returns the last config before c (one that lists the group:
// its join's, or a later one) that does not list the group: the config
// MarkJoined moves the group to. The configs between it and c list this
// group; any before it that do listed an earlier group of the same id,
// which left, and whose buckets this group never held.
func (d *Driver) startFrom(ctx context.Context, c shardmap.Config) (shardmap.Config, error) {
	for v := c.Version; v > 0; {
		v--
		prev, err := queryConfig(ctx, d.cfg.Client, d.eps, int64(v), 0, d.cfg.RequestTimeout)
		if err != nil {
			return shardmap.Config{}, err
		}
		if prev.Version != v {
			return shardmap.Config{}, fmt.Errorf("shardgroup: config %d asked for, %d answered", v, prev.Version)
		}
		if _, listed := prev.Groups[d.cfg.Group]; !listed {
			return prev, nil
		}
	}
	return shardmap.Config{}, nil
}

// takenID reports whether c lists another group under this group's id:
// c lists the id with none of this group's members' URLs, and this
// group, joined, is neither listed in its applied config nor where
// MarkJoined put it (Config and Prev the same config, or none taken).
// That is a group that left and still runs while a new group, from
// empty data dirs, took its id: it must not take the new group's
// configs and buckets as its own. (Listed with one of its members' URLs,
// the id is this group's: an operator joined it again. URLs compare
// without a trailing slash and case.)
func (d *Driver) takenID(st ShardState, c shardmap.Config) bool {
	servers, listed := c.Groups[d.cfg.Group]
	_, was := st.Config.Groups[d.cfg.Group]
	if !listed || was || !st.Joined || st.Prev.Version == st.Config.Version {
		return false
	}
	urls, _ := d.cfg.MemberURLs()
	return !slices.ContainsFunc(servers, func(s string) bool {
		return slices.ContainsFunc(urls, func(u string) bool {
			return strings.EqualFold(strings.TrimSuffix(s, "/"), strings.TrimSuffix(u, "/"))
		})
	})
}

// sameServers reports whether a and b list the same servers, in any order.
func sameServers(a, b []string) bool {
	if len(a) != len(b) || len(a) == 0 {
		return false
	}
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}

// configLoop takes the configs one version at a time: while the group is
// settled, it asks the config group for the next version (a long poll)
// and proposes it through the group's log, once the config group's
// config of the group's version is the one the group applied
// (followsOwn).
func (d *Driver) configLoop(ctx context.Context) {
	backoff := minBackoff
	tries := 0
	refused := uint64(0)  // the last version takenID refused, logged once
	diverged := uint64(0) // the last version followsOwn refused, logged once
	ownTries := 0         // followsOwn's failed reads in a row
	for ctx.Err() == nil {
		changed := d.cfg.Store.ShardChanged()
		st := d.cfg.Store.ShardState()
		want, ok := nextVersion(st)
		if !ok {
			select { // a migration runs; wait for the state to change
			case <-changed:
			case <-ctx.Done():
			}
			continue
		}
		c, err := queryConfig(ctx, d.cfg.Client, d.eps, int64(want), d.cfg.LongPoll, d.cfg.RequestTimeout)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			tries++
			d.logFailure(tries, "config poll failed; retrying on the next config endpoint", zap.Uint64("want-version", want), zap.Error(err))
			if !pause(ctx, &backoff) {
				return
			}
			continue
		}
		tries, backoff = 0, minBackoff
		if why := acceptConfig(st, want, c); why != "" {
			if c.Version >= want {
				d.lg.Error("not taking the config group's answer", zap.Uint64("want-version", want),
					zap.Uint64("got-version", c.Version), zap.Int("got-buckets", len(c.Buckets)), zap.String("reason", why))
			}
			if !sleep(ctx, d.cfg.PollInterval) {
				return
			}
			continue
		}
		if _, listed := c.Groups[d.cfg.Group]; listed && !st.Joined {
			// A config that lists this group may be an earlier group's
			// of the same id: wait for the join, whose MarkJoined moves
			// the group past those.
			select {
			case <-changed:
			case <-ctx.Done():
			}
			continue
		}
		if d.takenID(st, c) {
			if refused != c.Version {
				refused = c.Version
				urls, _ := d.cfg.MemberURLs()
				d.lg.Warn("not taking a config that lists this group's id with none of its members' URLs: another group took the id of this one, "+
					"which left, and this group's members should be stopped (to join this group again, name its members' URLs)",
					zap.Uint64("version", c.Version), zap.Strings("servers", c.Groups[d.cfg.Group]), zap.Strings("member-urls", urls))
			}
			if !sleep(ctx, d.cfg.PollInterval) {
				return
			}
			continue
		}
		if why, err := d.followsOwn(ctx, st.Config); why != "" || err != nil {
			if why != "" && diverged != st.Config.Version {
				diverged = st.Config.Version
				d.lg.Error("not taking the config group's next config: "+why, zap.Uint64("version", st.Config.Version))
			} else if err != nil && ctx.Err() == nil {
				ownTries++
				d.logFailure(ownTries, "reading the config group's config of this group's version failed; retrying", zap.Error(err))
			}
			if !sleep(ctx, d.cfg.PollInterval) {
				return
			}
			continue
		}
		ownTries = 0
		pctx, cancel := context.WithTimeout(ctx, d.cfg.RequestTimeout)
		err = d.cfg.Store.ProposeConfig(pctx, c)
		cancel()
		if err != nil {
			if ctx.Err() == nil && codeOf(err) != codeNotSettled {
				d.lg.Warn("proposing the next config failed; retrying", zap.Uint64("version", c.Version), zap.Error(err))
				sleep(ctx, d.cfg.PollInterval)
			}
			continue
		}
		after := d.cfg.Store.ShardState()
		states := byState(after)
		d.lg.Info("took the next config", zap.Uint64("version", after.Config.Version),
			zap.Ints("serving", states[Serving]), zap.Ints("pulling", states[Pulling]), zap.Ints("be-pulling", states[BePulling]))
	}
}

// followsOwn reports why the config group's next config must not be
// taken ("" when it may): its config of own's version is not own, the
// one the group applied, so its history is not the one the group took (the
// config group alone restored from an older backup, then changed). Its
// next config then says where buckets go from a layout the group never
// had, and taking it could leave two groups serving one bucket at one
// version. The initial state, version 0, follows nothing.
func (d *Driver) followsOwn(ctx context.Context, own shardmap.Config) (string, error) {
	if own.Version == 0 {
		return "", nil
	}
	c, err := queryConfig(ctx, d.cfg.Client, d.eps, int64(own.Version), 0, d.cfg.RequestTimeout)
	switch {
	case err != nil:
		return "", err
	case c.Version != own.Version || !sameConfig(c, own):
		return fmt.Sprintf("the config group's config %d is not the one this group applied: was the config group restored alone from an older backup? "+
			"Restore every shard group and the config group from backups of one moment", own.Version), nil
	}
	return "", nil
}

// migrateLoop keeps one worker per bucket that needs a step (Pulling or
// GCing), at most Parallel of them trying at once.
func (d *Driver) migrateLoop(ctx context.Context) {
	sem := make(chan struct{}, d.cfg.Parallel)
	finished := make(chan int)
	running := map[int]bool{}
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		changed := d.cfg.Store.ShardChanged()
		st := d.cfg.Store.ShardState()
		for _, b := range pendingBuckets(st) {
			if running[b] {
				continue
			}
			running[b] = true
			wg.Add(1)
			go func() {
				defer wg.Done()
				d.migrate(ctx, b, st.Config.Version, sem)
				select {
				case finished <- b:
				case <-ctx.Done():
				}
			}()
		}
		select {
		case <-changed:
		case b := <-finished:
			delete(running, b)
		case <-ctx.Done():
			return
		}
	}
}

// migrate takes bucket b through its steps at config version: pull and
// install it, then have the old owner delete it and finish the GC. It
// returns once b needs nothing more at version, or ctx ends. Each try
// holds a place in sem; pauses between tries do not.
func (d *Driver) migrate(ctx context.Context, b int, version uint64, sem chan struct{}) {
	backoff := minBackoff
	tries := 0
	turn := b // start at a different member of the old owner for each bucket
	var gcFailingSince time.Time
	for ctx.Err() == nil {
		st := d.cfg.Store.ShardState()
		s := nextStep(st, b)
		if s.kind == stepNone || s.version != version {
			return
		}
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			return
		}
		var err error
		switch {
		case len(s.servers) == 0:
			err = fmt.Errorf("config %d names no servers of group %d, which held bucket %d", st.Prev.Version, s.from, b)
		case s.kind == stepPull:
			err = d.pull(ctx, s, s.servers[turn%len(s.servers)])
		default:
			err = d.gc(ctx, s, s.servers[turn%len(s.servers)])
		}
		<-sem
		if err == nil {
			tries, backoff, gcFailingSince = 0, minBackoff, time.Time{}
			continue
		}
		if ctx.Err() != nil {
			return
		}
		tries++
		turn++
		d.logFailure(tries, "bucket step failed; retrying on the next member of the old owner",
			zap.Int("bucket", b), zap.Uint64("version", version), zap.Stringer("step", s.kind),
			zap.Uint64("from-group", s.from), zap.Error(err))
		if s.kind == stepDelete {
			if gcFailingSince.IsZero() {
				gcFailingSince = time.Now()
			}
			if d.giveUpGC(ctx, st, s, gcFailingSince) {
				continue
			}
		}
		if !pause(ctx, &backoff) {
			return
		}
	}
}

// pull fetches the bucket of s from server, a member of its old owner,
// and installs it through the group's log.
func (d *Driver) pull(ctx context.Context, s step, server string) error {
	data, err := pullBucket(ctx, d.cfg.Client, server, s.bucket, s.version, d.cfg.MaxBucketBytes, d.cfg.PullTimeout)
	if err != nil {
		return err
	}
	ictx, cancel := context.WithTimeout(ctx, d.cfg.RequestTimeout)
	defer cancel()
	if err := d.cfg.Store.InstallBucket(ictx, s.bucket, s.version, data); err != nil {
		return fmt.Errorf("installing bucket %d: %w", s.bucket, err)
	}
	d.lg.Info("installed bucket", zap.Int("bucket", s.bucket), zap.Uint64("version", s.version),
		zap.Uint64("from-group", s.from), zap.String("from", server), zap.Int("bytes", len(data)))
	return nil
}

// gc tells server, a member of the old owner, to delete its copy of the
// bucket of s, then serves the bucket as any other (FinishGC).
func (d *Driver) gc(ctx context.Context, s step, server string) error {
	if err := deleteBucket(ctx, d.cfg.Client, server, s.bucket, s.version, d.cfg.RequestTimeout); err != nil {
		return err
	}
	d.lg.Info("old owner deleted bucket", zap.Int("bucket", s.bucket), zap.Uint64("version", s.version),
		zap.Uint64("from-group", s.from), zap.String("from", server))
	return d.finishGC(ctx, s)
}

func (d *Driver) finishGC(ctx context.Context, s step) error {
	fctx, cancel := context.WithTimeout(ctx, d.cfg.RequestTimeout)
	defer cancel()
	if err := d.cfg.Store.FinishGC(fctx, s.bucket, s.version); err != nil {
		return fmt.Errorf("finishing the GC of bucket %d: %w", s.bucket, err)
	}
	d.lg.Info("bucket migrated; serving it", zap.Int("bucket", s.bucket), zap.Uint64("version", s.version))
	return nil
}

// giveUpGC finishes the GC of the bucket of s without the old owner's
// word when that owner has left the config (it is no group of the
// current config) and deletes have failed for GCGiveUp: a group that
// left is usually shut down once its buckets moved, and its copy, which
// it can never serve again, must not keep this group from taking later
// configs. It reports whether it finished the GC.
func (d *Driver) giveUpGC(ctx context.Context, st ShardState, s step, since time.Time) bool {
	if _, stillThere := st.Config.Groups[s.from]; stillThere || time.Since(since) < d.cfg.GCGiveUp {
		return false
	}
	d.lg.Warn("the old owner left the config and does not answer; finishing the bucket's GC without it",
		zap.Int("bucket", s.bucket), zap.Uint64("version", s.version), zap.Uint64("from-group", s.from),
		zap.Duration("failing-for", time.Since(since)))
	return d.finishGC(ctx, s) == nil
}
