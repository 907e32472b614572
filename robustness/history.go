package robustness

import (
	"fmt"
	"slices"
	"sync"
	"time"
)

// Op is one recorded client operation.
type Op struct {
	// Client identifies the client for porcupine's visualization. A client
	// whose operation had an unknown outcome continues under a new id,
	// because that operation is still pending.
	Client int
	// Node is the base URL of the member that was asked.
	Node   string
	Input  Input
	Output Output
	// Call and Return are the invocation and response times, measured from
	// the start of the history on the monotonic clock. For an unknown
	// outcome Return is when the client gave up; the checker moves it to
	// the end of the history.
	Call, Return time.Duration
	// Status is the HTTP status, 0 if there was no response.
	Status int
	// Err is the transport error or the error body, if any.
	Err string
	// Once marks a write of the write-once key family, checked for
	// durability.
	Once bool
	// ClientID and Seq are a write's exactly-once identity (X-Client-ID,
	// X-Client-Seq), sent when ClientID is set; every retry of the write
	// carries the same.
	ClientID string `json:",omitempty"`
	Seq      uint64 `json:",omitempty"`
	// Attempts is how many times the request was sent (retries of an
	// unknown outcome under the same identity), when more than once.
	Attempts int `json:",omitempty"`
}

// Note is a timed remark in a history, such as a fault injected; it is
// shown as an annotation in the visualization.
type Note struct {
	At   time.Duration
	Text string
}

// History records operations and notes from many goroutines.
type History struct {
	start time.Time

	mu struct {
		sync.Mutex
		ops     []Op
		notes   []Note
		clients int
	}
}

// NewHistory starts an empty history; its clock starts now.
func NewHistory() *History { return &History{start: time.Now()} }

// Sibling starts an empty history on h's clock: for operations checked
// apart from h's (by another model) whose times must line up with h's
// notes.
func (h *History) Sibling() *History { return &History{start: h.start} }

// Now is the time since the history started, on the monotonic clock.
func (h *History) Now() time.Duration { return time.Since(h.start) }

// NewClient returns a fresh porcupine client id.
func (h *History) NewClient() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	id := h.mu.clients
	h.mu.clients++
	return id
}

// Add records op.
func (h *History) Add(op Op) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.mu.ops = append(h.mu.ops, op)
}

// Notef records a note at the current time.
func (h *History) Notef(format string, args ...any) {
	n := Note{At: h.Now(), Text: fmt.Sprintf(format, args...)}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.mu.notes = append(h.mu.notes, n)
}

// Ops returns a copy of the operations recorded so far, in order of call.
func (h *History) Ops() []Op {
	h.mu.Lock()
	ops := slices.Clone(h.mu.ops)
	h.mu.Unlock()
	slices.SortStableFunc(ops, func(a, b Op) int { return cmpDuration(a.Call, b.Call) })
	return ops
}

// Notes returns a copy of the notes recorded so far.
func (h *History) Notes() []Note {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.mu.notes)
}

// Len is the number of operations recorded so far.
func (h *History) Len() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.mu.ops)
}

func cmpDuration(a, b time.Duration) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// Stats counts the operations of a history by outcome.
type Stats struct {
	Ops           int // every recorded operation
	Reads         int // reads answered: value or not-found
	FailedReads   int // reads without an answer (dropped from the check)
	AckedWrites   int // puts and deletes acknowledged
	UnknownWrites int // puts and deletes with an unknown outcome
	FailedWrites  int // writes never sent, or refused with 4xx or 503
	Refused       int // writes refused with 4xx: a valid request should never be
	OnceAcked     int // acknowledged writes of the write-once family
	Keys          int // distinct keys
	MaxOpsPerKey  int // operations on the busiest key
}

// Summarize counts ops.
func Summarize(ops []Op) Stats {
	var s Stats
	perKey := map[string]int{}
	for _, op := range ops {
		s.Ops++
		perKey[op.Input.Key]++
		if op.Input.Op == OpGet {
			if op.Output.Result == ResultFailed {
				s.FailedReads++
			} else {
				s.Reads++
			}
			continue
		}
		switch op.Output.Result {
		case ResultOK:
			s.AckedWrites++
			if op.Once {
				s.OnceAcked++
			}
		case ResultUnknown:
			s.UnknownWrites++
		case ResultFailed:
			s.FailedWrites++
			if op.Status >= 400 && op.Status < 500 {
				s.Refused++
			}
		}
	}
	s.Keys = len(perKey)
	for _, n := range perKey {
		s.MaxOpsPerKey = max(s.MaxOpsPerKey, n)
	}
	return s
}

func (s Stats) String() string {
	return fmt.Sprintf("%d operations on %d keys (at most %d on one key): %d reads answered, %d unanswered; "+
		"%d writes acknowledged (%d write-once), %d with unknown outcome, %d not applied",
		s.Ops, s.Keys, s.MaxOpsPerKey, s.Reads, s.FailedReads, s.AckedWrites, s.OnceAcked, s.UnknownWrites, s.FailedWrites)
}
