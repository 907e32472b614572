package testcluster

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"slices"
	"strings"
	"time"
)

// timelineEvents are the parts of node log messages that a failed test's
// timeline keeps: who campaigned and led in which term, which peer links
// rafthttp saw come and go, and membership changes. Lines the cluster
// itself writes into the logs ("=== testcluster: ...": starts, link
// faults) are kept too.
var timelineEvents = []string{
	"became leader", "became follower", "became candidate", "became pre-candidate",
	"elected leader", "lost leader", "leader changed",
	"peer became active", "peer became inactive",
	"member added", "member removed",
}

// timelineFields are the structured fields printed beside an event's message.
var timelineFields = []string{"from", "to", "peer-id", "error"}

// timelineLines is how many events, the last ones, a failed test prints.
const timelineLines = 150

// testclusterMark starts the lines the cluster writes into node logs;
// markTag tells their events apart.
const (
	testclusterMark = "=== testcluster: "
	markTag         = "\x00"
)

type event struct {
	at   time.Time
	node int
	text string
}

// timeline merges the events of the given node logs, oldest first, and
// renders the last ones, at most last of them, one per line. It is what a
// failed test prints besides each log's tail, which often covers only the
// shutdown.
func timeline(logs map[int]string, last int) string {
	var evs []event
	for id, path := range logs {
		b, err := os.ReadFile(path)
		if err != nil {
			continue
		}
		for line := range strings.Lines(string(b)) {
			if ev, ok := parseEvent(strings.TrimRight(line, "\n")); ok {
				ev.node = id
				evs = append(evs, ev)
			}
		}
	}
	slices.SortStableFunc(evs, func(a, b event) int { return a.at.Compare(b.at) })
	// A line the cluster wrote into every log (markLogs) is one event.
	evs = slices.CompactFunc(evs, func(a, b event) bool {
		return strings.HasPrefix(a.text, markTag) && a.at.Equal(b.at) && a.text == b.text
	})
	if len(evs) > last {
		evs = evs[len(evs)-last:]
	}
	var out strings.Builder
	for _, ev := range evs {
		who := fmt.Sprintf("node %d", ev.node)
		if strings.HasPrefix(ev.text, markTag) {
			who = "test"
		}
		fmt.Fprintf(&out, "%s %s: %s\n", ev.at.UTC().Format("15:04:05.000"), who, strings.TrimPrefix(ev.text, markTag))
	}
	return out.String()
}

// parseEvent returns the event a log line records, if it is one the
// timeline keeps: a zap JSON line whose message names a timelineEvents
// entry, or a line of the cluster's own.
func parseEvent(line string) (event, bool) {
	if rest, ok := strings.CutPrefix(line, testclusterMark); ok {
		stamp, text, _ := strings.Cut(rest, " ")
		at, err := time.Parse(time.RFC3339Nano, stamp)
		if err != nil {
			return event{}, false
		}
		return event{at: at, text: markTag + clipText(text, 160)}, true
	}
	if !strings.HasPrefix(line, "{") {
		return event{}, false
	}
	var rec map[string]any
	if json.Unmarshal([]byte(line), &rec) != nil {
		return event{}, false
	}
	msg, _ := rec["msg"].(string)
	ts, _ := rec["ts"].(float64)
	if msg == "" || ts == 0 || !slices.ContainsFunc(timelineEvents, func(e string) bool { return strings.Contains(msg, e) }) {
		return event{}, false
	}
	text := msg
	for _, f := range timelineFields {
		if v, ok := rec[f]; ok {
			text += fmt.Sprintf(" %s=%v", f, v)
		}
	}
	// zap writes seconds as a float: microseconds are what it keeps exactly.
	return event{at: time.UnixMicro(int64(math.Round(ts * 1e6))), text: clipText(text, 200)}, true
}

func clipText(s string, n int) string {
	if len(s) > n {
		return s[:n] + "..."
	}
	return s
}

// markLogs appends a line of the cluster's own, stamped now, to every
// node log, so that the timeline shows what the test did when.
func (c *Cluster) markLogs(text string) {
	line := fmt.Sprintf("%s%s %s\n", testclusterMark, time.Now().Format(time.RFC3339Nano), text)
	for _, id := range c.IDs() {
		// O_APPEND, as the node's own writes: whole lines do not interleave.
		f, err := os.OpenFile(c.LogPath(id), os.O_WRONLY|os.O_APPEND, 0)
		if err != nil {
			continue
		}
		f.WriteString(line)
		f.Close()
	}
}
