package bench

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// This file holds the watch workload. The run writes one key outside the
// watched prefix and opens Watchers watches of <prefix>w/, spread over
// the endpoints, each from the index after that write: none can miss an
// event of the run however long it takes to open them all. Then Clients
// writers put fresh keys (<prefix>w/<n>, n counting every write) at
// Rate puts per second in all, for Duration. After the last write the
// run waits until every watcher has the event of the last acknowledged
// write, and checks each watcher's stream: ids strictly increasing, each
// event's raft index the X-Raft-Index its write was acknowledged with,
// every acknowledged write present, and the same events in the same order
// as every other watcher. A stream that ends early (too_slow) or any of
// these is a problem: the run fails.
//
// Latency is from a write's acknowledgement to a watcher's receipt of
// its event, for every watcher and every acknowledged write; a watcher
// that got the event before the writer got its answer counts 0.

// watchSettle bounds the wait for the watchers to catch up after the
// last write.
const watchSettle = 30 * time.Second

// watchKeyDigits is the width of the write numbers in watched keys.
const watchKeyDigits = 12

// watchAck is an acknowledged write: when, and at which raft index.
type watchAck struct {
	at    time.Duration // since the writers' start
	index uint64
}

// sseWatcher is one watch stream and what it received.
type sseWatcher struct {
	id  int
	url string

	mu     sync.Mutex
	seqs   []int64         // the write number of each event, in order
	recv   []time.Duration // when each event came, since the writers' start
	mods   []uint64        // each event's mod index
	last   [2]uint64       // id (index, pos) of the last event
	err    string          // why the stream ended early, or a problem in it
	upTo   atomic.Uint64   // mod index of the last event received
	ended  atomic.Bool
	header chan error
}

func (d *dataRun) watch(ctx context.Context) error {
	cfg := d.cfg
	wp := cfg.Prefix + "w/"
	// The index every watch starts after.
	var startIndex uint64
	ok, why := retry(ctx, func() (bool, string) {
		a, err := d.do(ctx, http.MethodPut, keyURL(d.endpoint(0), cfg.Prefix+"start"), nil, []byte("0"))
		if err == nil && a.status == http.StatusNoContent {
			startIndex, err = strconv.ParseUint(a.header.Get("X-Raft-Index"), 10, 64)
			if err == nil {
				return true, ""
			}
		}
		return false, describe(a.status, clipBytes(a.body), err)
	})
	if !ok {
		return fmt.Errorf("bench: watch: the first write failed: %s", why)
	}

	wctx, stopWatches := context.WithCancel(ctx)
	defer stopWatches()
	var t0 atomic.Pointer[time.Time] // the writers' start; nil until then
	ws := make([]*sseWatcher, cfg.Watchers)
	var readers sync.WaitGroup
	sem := make(chan struct{}, 64) // watches being opened at once
	var openErr atomic.Value
	for i := range ws {
		q := url.Values{"watch": {"true"}, "prefix": {wp}, "from_index": {strconv.FormatUint(startIndex+1, 10)}}
		w := &sseWatcher{id: i, url: d.endpoint(i) + "/key?" + q.Encode(), header: make(chan error, 1)}
		ws[i] = w
		sem <- struct{}{}
		readers.Go(func() {
			d.readWatch(wctx, w, &t0, sem)
		})
	}
	for _, w := range ws {
		if err := <-w.header; err != nil {
			openErr.CompareAndSwap(nil, fmt.Errorf("bench: watch: opening watcher %d (%s): %w", w.id, w.url, err))
		}
	}
	if err, _ := openErr.Load().(error); err != nil {
		stopWatches()
		readers.Wait()
		return err
	}

	// The writers.
	var (
		ackMu sync.Mutex
		acks  = map[int64]watchAck{}
		next  atomic.Int64
	)
	start := time.Now()
	t0.Store(&start)
	end := start.Add(cfg.Duration)
	var writers sync.WaitGroup
	for id := range cfg.Clients {
		writers.Go(func() {
			vals := newValueGen(cfg.ValueSize)
			for ctx.Err() == nil {
				n := next.Add(1) - 1
				due := time.Now()
				if cfg.Rate > 0 {
					due = start.Add(time.Duration(float64(n) * float64(time.Second) / cfg.Rate))
				}
				if !due.Before(end) {
					return
				}
				if !sleepUntil(ctx, due) {
					return
				}
				key := wp + Key(uint64(n), watchKeyDigits)
				a, err := d.do(ctx, http.MethodPut, keyURL(d.endpoint(id), key), nil, asText(vals.value(uint64(n+1))))
				at := time.Since(start)
				if err != nil || a.status != http.StatusNoContent {
					d.fail(ctx, a, err)
					continue
				}
				idx, err := strconv.ParseUint(a.header.Get("X-Raft-Index"), 10, 64)
				if err != nil {
					d.problem("watch: the PUT of %s answered X-Raft-Index %q", key, a.header.Get("X-Raft-Index"))
					continue
				}
				ackMu.Lock()
				acks[n] = watchAck{at: at, index: idx}
				ackMu.Unlock()
			}
		})
	}
	writers.Wait()
	var lastIndex uint64
	for _, a := range acks {
		lastIndex = max(lastIndex, a.index)
	}
	// Wait for every watcher to reach the last acknowledged write.
	deadline := time.Now().Add(watchSettle)
	for ctx.Err() == nil && time.Now().Before(deadline) {
		behind := 0
		for _, w := range ws {
			if !w.ended.Load() && w.upTo.Load() < lastIndex {
				behind++
			}
		}
		if behind == 0 {
			break
		}
		sleepUntil(ctx, time.Now().Add(10*time.Millisecond))
	}
	stopWatches()
	readers.Wait()
	if ctx.Err() != nil {
		return nil
	}
	d.res.Writes = uint64(len(acks))
	d.checkWatchers(ws, acks, lastIndex)
	return nil
}

// sleepUntil waits until t or the end of ctx; it reports whether t came.
func sleepUntil(ctx context.Context, t time.Time) bool {
	dur := time.Until(t)
	if dur <= 0 {
		return ctx.Err() == nil
	}
	tm := time.NewTimer(dur)
	defer tm.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-tm.C:
		return true
	}
}

// readWatch opens w's stream, reports on w.header whether it opened (and
// frees its place in sem), then reads its events until ctx ends.
func (d *dataRun) readWatch(ctx context.Context, w *sseWatcher, t0 *atomic.Pointer[time.Time], sem chan struct{}) {
	defer w.ended.Store(true)
	opened := false
	report := func(err error) {
		if !opened {
			opened = true
			<-sem
			w.header <- err
		}
	}
	defer report(fmt.Errorf("the stream ended before it opened"))
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, w.url, nil)
	if err != nil {
		report(err)
		return
	}
	req.Header.Set("Accept", "text/event-stream")
	resp, err := d.hc.Do(req)
	if err != nil {
		report(err)
		return
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		var b [200]byte
		n, _ := resp.Body.Read(b[:])
		report(fmt.Errorf("HTTP %d: %s", resp.StatusCode, bytes.TrimSpace(b[:n])))
		return
	}
	report(nil)
	br := bufio.NewReaderSize(resp.Body, 64<<10)
	var id, name, data []byte
	for {
		line, err := br.ReadSlice('\n')
		if err != nil {
			if ctx.Err() == nil {
				w.fail("the stream ended: %v", err)
			}
			return
		}
		line = bytes.TrimRight(line, "\r\n")
		switch {
		case len(line) == 0:
			if name != nil || data != nil {
				now := time.Duration(-1)
				if s := t0.Load(); s != nil {
					now = time.Since(*s)
				}
				if !d.watchEvent(w, string(id), string(name), data, now) {
					return
				}
			}
			id, name, data = id[:0], nil, nil
		case line[0] == ':':
		case bytes.HasPrefix(line, []byte("id:")):
			id = append(id[:0], bytes.TrimPrefix(bytes.TrimPrefix(line, []byte("id:")), []byte(" "))...)
		case bytes.HasPrefix(line, []byte("event:")):
			name = append(name[:0], bytes.TrimPrefix(bytes.TrimPrefix(line, []byte("event:")), []byte(" "))...)
		case bytes.HasPrefix(line, []byte("data:")):
			data = append(data[:0], bytes.TrimPrefix(bytes.TrimPrefix(line, []byte("data:")), []byte(" "))...)
		}
	}
}

func (w *sseWatcher) fail(format string, args ...any) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.err == "" {
		w.err = fmt.Sprintf(format, args...)
	}
}

// watchEvent records one event of w; false ends the stream.
func (d *dataRun) watchEvent(w *sseWatcher, id, name string, data []byte, now time.Duration) bool {
	if name != "put" {
		w.fail("event %q (id %q): %s", name, id, clip(string(data)))
		return false
	}
	idx, pos, err := splitEventID(id)
	if err != nil {
		w.fail("event id %q: %v", id, err)
		return false
	}
	var ev struct {
		Key      string `json:"key"`
		ModIndex uint64 `json:"mod_index"`
	}
	if err := json.Unmarshal(data, &ev); err != nil {
		w.fail("event %s: %v", id, err)
		return false
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.seqs) > 0 && (idx < w.last[0] || idx == w.last[0] && pos <= w.last[1]) {
		w.err = fmt.Sprintf("event %s after %d.%d: out of order", id, w.last[0], w.last[1])
		return false
	}
	w.last = [2]uint64{idx, pos}
	prefix := d.cfg.Prefix + "w/"
	n, err := strconv.ParseInt(ev.Key[min(len(prefix), len(ev.Key)):], 10, 64)
	if len(ev.Key) != len(prefix)+watchKeyDigits || ev.Key[:len(prefix)] != prefix || err != nil || ev.ModIndex < idx {
		// A write's version is at least its raft index (above it when
		// its index gave one to the key's bucket already).
		w.err = fmt.Sprintf("event %s: key %q at mod index %d, not a write of the run", id, ev.Key, ev.ModIndex)
		return false
	}
	if now < 0 {
		w.err = fmt.Sprintf("event %s before the first write", id)
		return false
	}
	w.seqs, w.recv, w.mods = append(w.seqs, n), append(w.recv, now), append(w.mods, idx)
	w.upTo.Store(idx)
	return true
}

// splitEventID reads an SSE id "<index>.<pos>".
func splitEventID(id string) (index, pos uint64, err error) {
	i := bytes.IndexByte([]byte(id), '.')
	if i < 0 {
		return 0, 0, fmt.Errorf("no position")
	}
	if index, err = strconv.ParseUint(id[:i], 10, 64); err != nil {
		return 0, 0, err
	}
	if pos, err = strconv.ParseUint(id[i+1:], 10, 32); err != nil {
		return 0, 0, err
	}
	return index, pos, nil
}

// checkWatchers checks every watcher's events against the acknowledged
// writes and each other, and fills the result's counts and latencies.
func (d *dataRun) checkWatchers(ws []*sseWatcher, acks map[int64]watchAck, lastIndex uint64) {
	var ref []int64 // the first complete watcher's events up to lastIndex
	var lastRecv time.Duration
	for _, w := range ws {
		if w.err != "" {
			d.problem("watch: watcher %d (%s): %s", w.id, w.url, w.err)
			continue
		}
		var got []int64
		have := make(map[int64]bool, len(acks))
		for i, n := range w.seqs {
			if w.mods[i] > lastIndex {
				break
			}
			got = append(got, n)
			have[n] = true
			d.res.Ops++
			lastRecv = max(lastRecv, w.recv[i])
			a, ok := acks[n]
			if !ok {
				continue // a write of unknown outcome
			}
			if a.index != w.mods[i] {
				d.problem("watch: watcher %d: the write of key %d was acknowledged at index %d, its event came at %d", w.id, n, a.index, w.mods[i])
			}
			d.res.Latency.Record(max(w.recv[i]-a.at, 0))
		}
		missing := 0
		for n := range acks {
			if !have[n] {
				missing++
			}
		}
		if missing > 0 {
			d.problem("watch: watcher %d (%s): %d of %d acknowledged writes never came (a gap)", w.id, w.url, missing, len(acks))
			continue
		}
		if ref == nil {
			ref = got
		} else if !equalSeqs(ref, got) {
			d.problem("watch: watcher %d: its %d events are not the same sequence as another watcher's %d", w.id, len(got), len(ref))
		}
	}
	d.res.Elapsed = lastRecv
}

func equalSeqs(a, b []int64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
