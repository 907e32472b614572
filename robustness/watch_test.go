package robustness

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/raftkv/raftkv/client"
)

// TestCheckWatchEvents: the watch checker passes a watch that delivered
// the history's writes and the state read at the end, and finds each
// way one can go wrong.
func TestCheckWatchEvents(t *testing.T) {
	put := func(key, value string, r Result, index uint64) Op {
		return Op{Input: Input{Op: OpPut, Key: "rk/" + key, Value: value}, Output: Output{Result: r, Index: index}}
	}
	ops := []Op{
		put("a", "1", ResultOK, 5), put("b", "2", ResultOK, 6), put("a", "3", ResultUnknown, 0),
		put("c", "4", ResultFailed, 0), {Input: Input{Op: OpDelete, Key: "rk/b"}, Output: Output{Result: ResultOK, Index: 8}},
		put("x", "9", ResultOK, 3), // another prefix's
	}
	ops[5].Input.Key = "other/x"
	ops[0].Output.Mod = 5 // the put's ETag
	ev := func(typ, key, value string, index uint64, pos uint32) client.WatchEvent {
		return client.WatchEvent{Type: typ, KV: client.KeyValue{Key: "rk/" + key, Value: []byte(value), ModIndex: index}, Index: index, Pos: pos, ID: fmt.Sprintf("%d.%d", index, pos)}
	}
	good := []client.WatchEvent{
		ev(client.EventPut, "a", "1", 5, 0), ev(client.EventPut, "b", "2", 6, 0), ev(client.EventPut, "a", "3", 7, 0),
		ev(client.EventDelete, "b", "", 8, 0), ev(client.EventPut, watchMarker, "end", 9, 0),
	}
	state := []statePage{{index: 8, kvs: map[string]string{"rk/a": "3"}}}
	if res := checkWatchEvents("rk/", good, nil, ops, state); !res.OK() || res.Acked != 2 || res.Events != 5 {
		t.Fatalf("a good watch: %s", res)
	}
	// The state read in two pages, at two indexes.
	paged := []statePage{{index: 6, last: "rk/a", kvs: map[string]string{"rk/a": "1"}}, {index: 7, after: "rk/a", kvs: map[string]string{"rk/b": "2"}}}
	if res := checkWatchEvents("rk/", good, nil, ops, paged); !res.OK() {
		t.Fatalf("a good watch, the state in two pages: %s", res)
	}

	for _, c := range []struct {
		name   string
		events func([]client.WatchEvent) []client.WatchEvent
		state  []statePage
		werr   error
		want   string
	}{
		{name: "an acknowledged put not delivered", want: "acknowledged put rk/b=2 at 6: delivered at 0",
			events: func(e []client.WatchEvent) []client.WatchEvent { return slices.Delete(e, 1, 2) }},
		{name: "out of order", want: "out of order",
			events: func(e []client.WatchEvent) []client.WatchEvent { e[0], e[1] = e[1], e[0]; return e }},
		{name: "a put answered not applied applied", want: "rk/c=4: its put was answered as not applied",
			events: func(e []client.WatchEvent) []client.WatchEvent {
				return append(e, ev(client.EventPut, "c", "4", 10, 0))
			}},
		{name: "a value put twice", want: "rk/a=3 put twice",
			events: func(e []client.WatchEvent) []client.WatchEvent {
				return append(e, ev(client.EventPut, "a", "3", 10, 0))
			}},
		{name: "a value nobody put", want: "rk/d=5: no client put it",
			events: func(e []client.WatchEvent) []client.WatchEvent {
				return slices.Insert(e, 4, ev(client.EventPut, "d", "5", 9, 0))
			}},
		{name: "a position repeated", want: "event 9.0 after 9.0",
			events: func(e []client.WatchEvent) []client.WatchEvent {
				return slices.Insert(e, 4, ev(client.EventPut, "a", "1", 9, 0))
			}},
		{name: "the state read differs", want: "rk/a=1 read at 8; the events up to it give \"3\"",
			state: []statePage{{index: 8, kvs: map[string]string{"rk/a": "1"}}}},
		{name: "a key the events leave absent", want: "rk/b=2 read at 8",
			state: []statePage{{index: 8, kvs: map[string]string{"rk/a": "3", "rk/b": "2"}}}},
		{name: "a key the events leave present", want: "rk/a absent when read at 8",
			state: []statePage{{index: 8, kvs: map[string]string{}}}},
		{name: "the watch ended", want: "the watch ended", werr: client.ErrUnavailable},
		{name: "an event's version not the put's ETag", want: "rk/a=1 wrote version 5 (its ETag); its event says 4",
			events: func(e []client.WatchEvent) []client.WatchEvent { e[0].KV.ModIndex = 4; return e }},
	} {
		events := slices.Clone(good)
		if c.events != nil {
			events = c.events(events)
		}
		st := state
		if c.state != nil {
			st = c.state
		}
		wantViolation(t, c.name, checkWatchEvents("rk/", events, c.werr, ops, st), c.want)
	}

	// Compacted: what came before is checked, not the rest.
	compacted := &client.Error{Code: client.CodeCompacted, OldestIndex: 7}
	res := checkWatchEvents("rk/", good[:2], compacted, ops, state)
	if !res.OK() || res.Compacted == "" || res.Acked != 2 {
		t.Fatalf("compacted at 7 after the events of 5 and 6: %s", res)
	}
	if res := checkWatchEvents("rk/", good[1:2], compacted, ops, state); res.OK() {
		t.Fatalf("compacted at 7, the acknowledged put at 5 missing: %s", res)
	}
}

// TestCheckRoutedEvents: the routed watch checker passes a merged stream
// (no order across keys, indexes of two groups) that delivered the
// history, and catches each way one can go wrong.
func TestCheckRoutedEvents(t *testing.T) {
	put := func(key, value string, r Result, call, ret time.Duration) Op {
		return Op{Input: Input{Op: OpPut, Key: "rk/" + key, Value: value}, Output: Output{Result: r, Index: 1}, Call: call, Return: ret}
	}
	ops := []Op{
		put("a", "1", ResultOK, 0, 10), put("a", "2", ResultOK, 20, 30), put("b", "3", ResultOK, 5, 15),
		put("b", "4", ResultUnknown, 40, 50), put("c", "5", ResultFailed, 0, 1),
	}
	ev := func(typ, key, value string, index uint64) client.WatchEvent {
		return client.WatchEvent{Type: typ, KV: client.KeyValue{Key: "rk/" + key, Value: []byte(value), ModIndex: index}}
	}
	// b is another group's: its indexes are not comparable with a's.
	good := []client.WatchEvent{
		ev(client.EventPut, "b", "3", 90), ev(client.EventPut, "a", "1", 5), ev(client.EventPut, "b", "4", 91),
		ev(client.EventPut, "a", "2", 3), ev(client.EventDelete, "b", "", 92), ev(client.EventPut, "m", "end", 7),
	}
	markers := []string{"rk/m"}
	ops[0].Output.Mod = 5 // the put's ETag
	state := map[string]string{"rk/a": "2"}
	if res := checkRoutedEvents("rk/", good, nil, ops, markers, state); !res.OK() || res.Acked != 3 {
		t.Fatalf("a good routed watch: %s", res)
	}
	for _, c := range []struct {
		name   string
		events func([]client.WatchEvent) []client.WatchEvent
		state  map[string]string
		want   string
	}{
		{name: "an acknowledged put not delivered", want: "acknowledged put rk/b=3: never delivered",
			events: func(e []client.WatchEvent) []client.WatchEvent { return e[1:] }},
		{name: "a key's puts against real time", want: "rk/a=1 returned before rk/a=2 began, but its event came after",
			events: func(e []client.WatchEvent) []client.WatchEvent { e[1], e[3] = e[3], e[1]; return e }},
		{name: "a failed put applied", want: "rk/c=5: its put was answered as not applied",
			events: func(e []client.WatchEvent) []client.WatchEvent { return append(e, ev(client.EventPut, "c", "5", 9)) }},
		{name: "a value put twice", want: "rk/b=3 put twice",
			events: func(e []client.WatchEvent) []client.WatchEvent { return append(e, ev(client.EventPut, "b", "3", 93)) }},
		{name: "a value nobody put", want: "rk/d=6: no client put it",
			events: func(e []client.WatchEvent) []client.WatchEvent { return append(e, ev(client.EventPut, "d", "6", 9)) }},
		{name: "the state read differs", want: "rk/a=1 read at the end", state: map[string]string{"rk/a": "1"}},
		{name: "an event's version not the put's ETag", want: "rk/a=1 wrote version 5 (its ETag); its event says 3",
			events: func(e []client.WatchEvent) []client.WatchEvent { e[1].KV.ModIndex = 3; return e }},
		{name: "a key the events leave present", want: "rk/a absent when read at the end", state: map[string]string{}},
	} {
		events := slices.Clone(good)
		if c.events != nil {
			events = c.events(events)
		}
		st := state
		if c.state != nil {
			st = c.state
		}
		wantViolation(t, c.name, checkRoutedEvents("rk/", events, nil, ops, markers, st), c.want)
	}
}

// wantViolation fails t unless res has a violation that says want.
func wantViolation(t *testing.T, name string, res WatchResult, want string) {
	t.Helper()
	if res.OK() || !slices.ContainsFunc(res.Violations, func(v string) bool { return strings.Contains(v, want) }) {
		t.Errorf("%s: %s; want a violation with %q", name, res, want)
	}
}
