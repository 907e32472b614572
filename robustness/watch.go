package robustness

import (
	"cmp"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/raftkv/raftkv/client"
)

// WatchLog is a watch of a prefix through the Go client, opened before a
// workload runs and read while it runs, for CheckWatch: its stream moves
// from member to member as faults stop them.
type WatchLog struct {
	prefix string
	tls    *tls.Config
	cancel context.CancelFunc
	cl     *client.Client
	done   chan struct{}

	mu struct {
		sync.Mutex
		events []client.WatchEvent
		err    error // why the watch ended, if it did on its own
	}
	changed chan struct{} // a token after each event
}

// watchRequestTimeout is how long the watch's client tries members before
// it gives up on reconnecting: longer than any fault keeps every member
// down.
const watchRequestTimeout = 2 * time.Minute

// watchAutoSync is how often the watch's client reads the member list.
const watchAutoSync = 500 * time.Millisecond

// StartWatch opens a watch of every key with prefix, from now on, at the
// members nodes (base URLs) of one group, over TLS when tlsCfg is set. The
// watch follows the group's membership as members are replaced.
func StartWatch(nodes []string, prefix string, tlsCfg *tls.Config) (*WatchLog, error) {
	return startWatch(client.Config{Endpoints: nodes, RequestTimeout: watchRequestTimeout, TLS: tlsCfg,
		AutoSyncInterval: watchAutoSync}, prefix)
}

// StartRouterWatch opens a watch of every key with prefix, from now on,
// through the routers (base URLs). Routers have no member list to follow:
// the watch moves among the routers given.
func StartRouterWatch(routers []string, prefix string) (*WatchLog, error) {
	return startWatch(client.Config{Endpoints: routers, RequestTimeout: watchRequestTimeout}, prefix)
}

func startWatch(cfg client.Config, prefix string) (*WatchLog, error) {
	cl, err := client.New(cfg)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	// A member that stops (SIGSTOP) sends no heartbeat: after two missed
	// ones the stream moves on.
	events, err := cl.Watch(ctx, client.WatchOptions{Prefix: prefix, IdleTimeout: 11 * time.Second})
	if err != nil {
		cancel()
		cl.Close()
		return nil, err
	}
	w := &WatchLog{prefix: prefix, tls: cfg.TLS, cancel: cancel, cl: cl, done: make(chan struct{}), changed: make(chan struct{}, 1)}
	go func() {
		defer close(w.done)
		for ev := range events {
			w.mu.Lock()
			if ev.Err != nil {
				w.mu.err = ev.Err
			} else {
				w.mu.events = append(w.mu.events, ev)
			}
			w.mu.Unlock()
			select {
			case w.changed <- struct{}{}:
			default:
			}
		}
	}()
	return w, nil
}

// Stop ends the watch and returns what it delivered and the error that
// ended it first, if one did.
func (w *WatchLog) Stop() ([]client.WatchEvent, error) {
	w.cancel()
	<-w.done
	w.cl.Close()
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.mu.events, w.mu.err
}

// Events are the events the watch delivered so far.
func (w *WatchLog) Events() []client.WatchEvent {
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Clone(w.mu.events)
}

// waitFor waits until the watch delivered an event that ok accepts, it
// ended, or deadline passed.
func (w *WatchLog) waitFor(ok func(client.WatchEvent) bool, deadline time.Time) bool {
	for seen := 0; ; {
		stopped := false // done is closed after the last event is kept
		select {
		case <-w.done:
			stopped = true
		default:
		}
		w.mu.Lock()
		evs, ended := w.mu.events[seen:], stopped || w.mu.err != nil
		seen = len(w.mu.events)
		w.mu.Unlock()
		if slices.ContainsFunc(evs, ok) {
			return true
		}
		if ended {
			return false
		}
		select {
		case <-w.changed:
		case <-w.done:
		case <-time.After(time.Until(deadline)):
			return false
		}
	}
}

// WatchResult is what CheckWatch found.
type WatchResult struct {
	Events int // delivered, the end marker's included
	// Acked is the acknowledged puts looked for at their index.
	Acked int
	// Index is the raft index of the state read at the end (the highest
	// of its pages'), up to which the events were checked against it.
	Index uint64
	// Keys is how many keys the state read at the end holds.
	Keys int
	// Unsettled (routed watches) says the state read at the end changed
	// while the markers were written, so the events were not compared
	// with it.
	Unsettled bool
	// Compacted is set when the watch ended because no member kept the
	// events it needed (every one restored a snapshot past them): what
	// came before is checked, not the rest.
	Compacted string
	// Violations lists what is wrong, one line each.
	Violations []string
	Took       time.Duration
}

// OK reports whether the watch kept its promises.
func (r WatchResult) OK() bool { return len(r.Violations) == 0 }

func (r WatchResult) String() string {
	s := fmt.Sprintf("%d events for %d acknowledged puts", r.Events, r.Acked)
	switch {
	case r.Unsettled:
		s += ", not compared with the state at the end (it changed while read)"
	case r.Index > 0:
		s += fmt.Sprintf(", against %d keys read at index %d", r.Keys, r.Index)
	default:
		s += fmt.Sprintf(", against %d keys read at the end", r.Keys)
	}
	if r.Compacted != "" {
		s += "; " + r.Compacted
	}
	if len(r.Violations) > 0 {
		s += fmt.Sprintf("; %d violations: %s", len(r.Violations), strings.Join(clipList(r.Violations, 3), "; "))
	}
	return s
}

// watchMarker is the key CheckWatch writes after the workload: once the
// watch delivered its event, it delivered every event before it.
const watchMarker = "watch-end"

// CheckWatch checks a watch opened before the workload of ops (writes of
// keys under its prefix: puts, conditional puts, transactions, deletes),
// after the workload stopped and the members converged. It reads the
// state under the prefix at one of nodes, then writes a marker key after
// it and waits, until deadline, for the watch to deliver the marker's
// event. Then:
//   - the events come in (index, position) order, each once;
//   - every acknowledged put (historyPuts) is an event at its index, with
//     its value and the version its ETag or mod_index named;
//   - every put event is the value of a put of that key in ops, and not
//     of one that was certainly not applied (a 4xx, a 503, a 412, a
//     transaction's branch not taken), and no value is put twice (a
//     retried write applied once);
//   - the events up to each page's index give the state that page read.
func CheckWatch(w *WatchLog, c *Client, nodes []string, ops []Op, deadline time.Duration) WatchResult {
	start := time.Now()
	var found []string
	until := start.Add(deadline)
	state, err := readState(w, nodes, until)
	if err != nil {
		found = append(found, fmt.Sprintf("reading the state under %q: %v", w.prefix, err))
	}
	marker, err := writeMarker(c, nodes, w.prefix+watchMarker, until)
	if err != nil {
		found = append(found, fmt.Sprintf("writing the end marker: %v", err))
	} else if !w.waitFor(func(ev client.WatchEvent) bool { return ev.Index >= marker }, until) {
		found = append(found, fmt.Sprintf("the watch did not deliver the end marker's event (index %d) within %v", marker, deadline))
	}
	events, werr := w.Stop()
	res := checkWatchEvents(w.prefix, events, werr, ops, state)
	res.Violations = append(found, res.Violations...)
	res.Took = time.Since(start)
	return res
}

// checkWatchEvents checks what a watch of prefix delivered (events, and
// werr, the error that ended it) against the history ops and the state
// read at the end, as CheckWatch says.
func checkWatchEvents(prefix string, events []client.WatchEvent, werr error, ops []Op, state []statePage) WatchResult {
	var res WatchResult
	violate := func(format string, args ...any) {
		res.Violations = append(res.Violations, fmt.Sprintf(format, args...))
	}
	res.Events = len(events)
	var cut uint64 // the first index not checked for completeness (0: none)
	switch {
	case errors.Is(werr, client.ErrCompacted):
		cut = 1
		if ce := (*client.Error)(nil); errors.As(werr, &ce) {
			cut = max(ce.OldestIndex, 1)
		}
		if len(events) > 0 {
			cut = min(cut, events[len(events)-1].Index+1)
		}
		res.Compacted = fmt.Sprintf("the watch ended compacted (every member restored a snapshot past it): checked up to index %d", cut-1)
	case werr != nil:
		violate("the watch ended: %v", werr)
	}

	// Order, and each value put once.
	type kv = putKey
	putAt := map[kv]uint64{}
	mods := map[kv]uint64{} // the version each put event says
	for i, ev := range events {
		if i > 0 {
			p := events[i-1]
			if i, pi := ev.Index, p.Index; i < pi || i == pi && ev.Pos <= p.Pos {
				violate("event %s after %s: out of order or repeated", ev.ID, p.ID)
			}
		}
		if ev.Type != client.EventPut {
			continue
		}
		k := kv{ev.KV.Key, string(ev.KV.Value)}
		if at, dup := putAt[k]; dup {
			violate("%s=%s put twice, at %d and %d", k.key, k.value, at, ev.Index)
		}
		putAt[k], mods[k] = ev.Index, ev.KV.ModIndex
	}

	// The history's puts: acknowledged ones were delivered at their index;
	// every put event is of a put that may have been applied.
	puts, acked := historyPuts(prefix, ops)
	for _, a := range acked {
		if a.index == 0 || cut != 0 && a.index >= cut {
			continue
		}
		res.Acked++
		if at, ok := putAt[a.putKey]; !ok || at != a.index {
			violate("acknowledged put %s=%s at %d: delivered at %d (0: never)", a.key, a.value, a.index, at)
		} else if a.mod != 0 && mods[a.putKey] != a.mod {
			violate("acknowledged put %s=%s wrote version %d (its ETag); its event says %d", a.key, a.value, a.mod, mods[a.putKey])
		}
	}
	checkOrigins(putAt, puts, []string{prefix + watchMarker}, violate)

	// The events give the state read at the end.
	for _, p := range state {
		res.Index = max(res.Index, p.index)
		res.Keys += len(p.kvs)
		if cut != 0 && p.index >= cut {
			continue
		}
		folded := map[string]string{}
		for _, ev := range events {
			if ev.Index > p.index {
				break
			}
			if !p.covers(ev.KV.Key) {
				continue
			}
			if ev.Type == client.EventPut {
				folded[ev.KV.Key] = string(ev.KV.Value)
			} else {
				delete(folded, ev.KV.Key)
			}
		}
		for _, key := range slices.Sorted(maps.Keys(p.kvs)) {
			v := p.kvs[key]
			if got, ok := folded[key]; !ok || got != v {
				violate("%s=%s read at %d; the events up to it give %q (present %v)", key, v, p.index, got, ok)
			}
			delete(folded, key)
		}
		for _, key := range slices.Sorted(maps.Keys(folded)) {
			v := folded[key]
			violate("%s absent when read at %d; the events up to it give %s", key, p.index, v)
		}
	}
	return res
}

// statePage is one page of the state read at the end: the keys of
// (after, last] (to the end of the prefix when last is ""), at index.
type statePage struct {
	after, last string
	index       uint64
	kvs         map[string]string
}

func (p statePage) covers(key string) bool {
	return key > p.after && (p.last == "" || key <= p.last)
}

// readState lists the keys under w's prefix, page by page, through a
// client of nodes.
func readState(w *WatchLog, nodes []string, until time.Time) ([]statePage, error) {
	ctx, cancel := context.WithDeadline(context.Background(), until)
	defer cancel()
	cl, err := client.New(client.Config{Endpoints: nodes, RequestTimeout: time.Until(until), TLS: w.tls})
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	var pages []statePage
	opts := client.ListOptions{Prefix: w.prefix, Limit: 1000}
	after := ""
	for {
		page, err := cl.List(ctx, opts)
		if err != nil {
			return pages, err
		}
		p := statePage{after: after, index: page.Index, kvs: map[string]string{}}
		for _, kv := range page.KVs {
			p.kvs[kv.Key] = string(kv.Value)
		}
		if page.More && len(page.KVs) > 0 {
			p.last = page.KVs[len(page.KVs)-1].Key
		}
		pages = append(pages, p)
		if !page.More {
			return pages, nil
		}
		after, opts.Continue = p.last, page.Continue
	}
}

// writeMarker puts key through c at the first of nodes that acknowledges
// it, and returns its raft index.
func writeMarker(c *Client, nodes []string, key string, until time.Time) (uint64, error) {
	h := NewHistory()
	var last Op
	for i := 0; time.Now().Before(until); i++ {
		last = c.Do(h, Op{Node: nodes[i%len(nodes)], Input: Input{Op: OpPut, Key: key, Value: fmt.Sprint(time.Now().UnixNano())}})
		if last.Output.Result == ResultOK && last.Output.Index > 0 {
			return last.Output.Index, nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	return 0, fmt.Errorf("no member acknowledged it; the last answer: %d %s", last.Status, last.Err)
}

// CheckRoutedWatch is CheckWatch for a watch through routers, whose
// stream merges every group's: there is no order across groups, and an
// event's index is its group's (after a bucket moved, a key's next event
// can have a lower one). markers are keys of the watch's prefix, one in
// each group's buckets: once the watch delivered the event of each, it
// delivered every event before it. It checks that
//   - every acknowledged put is an event of its key with its value and
//     the version its ETag or mod_index named;
//   - of two acknowledged puts of a key, the one that returned before the
//     other began is the earlier event of that key;
//   - every put event is the value of a put of that key in ops, and not
//     of one answered as not applied, and no value is put twice;
//   - the events, key by key, give the state read at the end (when it
//     was the same before the markers and after).
func CheckRoutedWatch(w *WatchLog, c *Client, routers []string, ops []Op, markers []string, deadline time.Duration) WatchResult {
	start := time.Now()
	var found []string
	until := start.Add(deadline)
	before, err := readKeys(w, routers, until)
	if err != nil {
		found = append(found, fmt.Sprintf("reading the state under %q: %v", w.prefix, err))
	}
	for _, m := range markers {
		if _, err := writeMarker(c, routers, m, until); err != nil {
			found = append(found, fmt.Sprintf("writing the end marker %s: %v", m, err))
			continue
		}
		if !w.waitFor(func(ev client.WatchEvent) bool { return ev.KV.Key == m }, until) {
			found = append(found, fmt.Sprintf("the watch did not deliver the end marker %s within %v", m, deadline))
		}
	}
	after, err := readKeys(w, routers, until)
	if err != nil {
		found = append(found, fmt.Sprintf("reading the state under %q again: %v", w.prefix, err))
	}
	events, werr := w.Stop()
	for _, m := range markers {
		delete(after, m)
	}
	state := before
	if !maps.Equal(before, after) {
		state = nil // a write of unknown outcome landed in between
	}
	res := checkRoutedEvents(w.prefix, events, werr, ops, markers, state)
	res.Unsettled = state == nil
	res.Violations = append(found, res.Violations...)
	res.Took = time.Since(start)
	return res
}

// checkRoutedEvents checks a routed watch's events as CheckRoutedWatch
// says; state nil: not against a state.
func checkRoutedEvents(prefix string, events []client.WatchEvent, werr error, ops []Op, markers []string, state map[string]string) WatchResult {
	var res WatchResult
	violate := func(format string, args ...any) {
		res.Violations = append(res.Violations, fmt.Sprintf(format, args...))
	}
	res.Events = len(events)
	switch {
	case errors.Is(werr, client.ErrCompacted):
		res.Compacted = "the watch ended compacted: checked as far as it went"
	case werr != nil:
		violate("the watch ended: %v", werr)
	}
	type kv = putKey
	seq := map[kv]int{}     // a put's place among its key's events
	mods := map[kv]uint64{} // the version each put event says
	perKey := map[string]int{}
	for _, ev := range events {
		n := perKey[ev.KV.Key]
		perKey[ev.KV.Key] = n + 1
		if ev.Type != client.EventPut {
			continue
		}
		k := kv{ev.KV.Key, string(ev.KV.Value)}
		if _, dup := seq[k]; dup {
			violate("%s=%s put twice", k.key, k.value)
		}
		seq[k], mods[k] = n, ev.KV.ModIndex
	}
	puts, all := historyPuts(prefix, ops)
	byKey := map[string][]ackedPut{} // the delivered ones
	for _, a := range all {
		res.Acked++
		if _, ok := seq[a.putKey]; !ok {
			if res.Compacted == "" {
				violate("acknowledged put %s=%s: never delivered", a.key, a.value)
			}
			continue
		} else if a.mod != 0 && mods[a.putKey] != a.mod {
			violate("acknowledged put %s=%s wrote version %d (its ETag); its event says %d", a.key, a.value, a.mod, mods[a.putKey])
		}
		byKey[a.key] = append(byKey[a.key], a)
	}
	// Real-time order of a key's acknowledged puts.
	for _, key := range slices.Sorted(maps.Keys(byKey)) {
		kops := byKey[key]
		for i, a := range kops {
			for _, b := range kops[i+1:] {
				for _, p := range [][2]ackedPut{{a, b}, {b, a}} {
					if first, then := p[0], p[1]; first.ret < then.call && seq[first.putKey] > seq[then.putKey] {
						violate("%s=%s returned before %s=%s began, but its event came after", key, first.value, key, then.value)
					}
				}
			}
		}
	}
	checkOrigins(seq, puts, markers, violate)
	if state != nil && res.Compacted == "" {
		res.Keys = len(state)
		folded := map[string]string{}
		for _, ev := range events {
			if slices.Contains(markers, ev.KV.Key) {
				continue
			}
			if ev.Type == client.EventPut {
				folded[ev.KV.Key] = string(ev.KV.Value)
			} else {
				delete(folded, ev.KV.Key)
			}
		}
		for _, key := range slices.Sorted(maps.Keys(state)) {
			v := state[key]
			if got, ok := folded[key]; !ok || got != v {
				violate("%s=%s read at the end; the events give %q (present %v)", key, v, got, ok)
			}
			delete(folded, key)
		}
		for _, key := range slices.Sorted(maps.Keys(folded)) {
			v := folded[key]
			violate("%s absent when read at the end; the events give %s", key, v)
		}
	}
	return res
}

// putKey is a put of a value to a key: the workloads write each value
// once.
type putKey struct{ key, value string }

// ackedPut is a put the history says was applied: a put, a conditional
// put or a transaction's put of the branch it took, answered 2xx.
type ackedPut struct {
	putKey
	// index is the raft index the answer named; mod the version it
	// wrote (ETag, a transaction's mod_index), 0 when not given.
	index, mod uint64
	call, ret  time.Duration
}

// historyPuts reads ops' puts of keys under prefix: whether each may have
// been applied (ResultFailed: certainly not: refused, 412, or the branch
// of a transaction that was not taken; ResultOK or ResultUnknown: it may
// have), and the acknowledged ones.
func historyPuts(prefix string, ops []Op) (map[putKey]Result, []ackedPut) {
	puts := map[putKey]Result{}
	var acked []ackedPut
	note := func(op Op, key, value string, r Result) {
		if !strings.HasPrefix(key, prefix) {
			return
		}
		k := putKey{key, value}
		puts[k] = r
		if r == ResultOK {
			acked = append(acked, ackedPut{putKey: k, index: op.Output.Index, mod: op.Output.Mod, call: op.Call, ret: op.Return})
		}
	}
	for _, op := range ops {
		r := op.Output.Result
		if r == ResultPrecondition {
			r = ResultFailed
		}
		switch op.Input.Op {
		case OpPut, OpPutIfMatch, OpPutIfAbsent:
			note(op, op.Input.Key, op.Input.Value, r)
		case OpTxn:
			for _, branch := range []struct {
				ops   []TxnOp
				taken bool
			}{{op.Input.Txn.Success, op.Output.Succeeded}, {op.Input.Txn.Failure, !op.Output.Succeeded}} {
				br := r
				if r == ResultOK && !branch.taken {
					br = ResultFailed
				}
				for _, t := range branch.ops {
					if t.Op == OpPut {
						note(op, t.Key, t.Value, br)
					}
				}
			}
		}
	}
	return puts, acked
}

// checkOrigins finds the put events (the keys of delivered) that no put
// of puts made, or only one answered as not applied; the events of the
// keys skip are the checker's own.
func checkOrigins[V any](delivered map[putKey]V, puts map[putKey]Result, skip []string, violate func(string, ...any)) {
	keys := slices.SortedFunc(maps.Keys(delivered), func(a, b putKey) int {
		return cmp.Or(strings.Compare(a.key, b.key), strings.Compare(a.value, b.value))
	})
	for _, k := range keys {
		if slices.Contains(skip, k.key) {
			continue
		}
		switch r, ok := puts[k]; {
		case !ok:
			violate("event of %s=%s: no client put it", k.key, k.value)
		case r == ResultFailed:
			violate("event of %s=%s: its put was answered as not applied", k.key, k.value)
		}
	}
}

// readKeys lists every key under w's prefix through a client of nodes.
func readKeys(w *WatchLog, nodes []string, until time.Time) (map[string]string, error) {
	pages, err := readState(w, nodes, until)
	out := map[string]string{}
	for _, p := range pages {
		maps.Copy(out, p.kvs)
	}
	return out, err
}
