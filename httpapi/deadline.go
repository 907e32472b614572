package httpapi

import (
	"context"
	"sync/atomic"
	"time"
)

// fastParent is the parent context of the fast path's calls: nothing
// cancels them but their deadline (the connection's loop answers each
// before it reads on), so callContext gives them shared deadlines.
var fastParent context.Context = fastParentCtx{context.Background()}

type fastParentCtx struct{ context.Context }

// deadlineSlot is how close in time the fast path's calls must begin to
// share one deadline context (see sharedDeadlines).
const deadlineSlot = 10 * time.Millisecond

// sharedDeadlines hands the fast path's calls their deadline contexts:
// one per deadlineSlot, ending RequestTimeout after the slot's end, so a
// call's deadline is RequestTimeout after it began plus at most a slot.
// A context of its own per call (context.WithTimeout) was 4% of a
// linearizable GET's CPU: a timer set and stopped, and a channel made,
// per request. A shared context is never canceled before its deadline;
// its timer ends it, and with it whatever a call derived from it and did
// not cancel itself.
type sharedDeadlines struct {
	cur atomic.Pointer[sharedDeadline]
}

type sharedDeadline struct {
	slot int64 // Unix nanoseconds / deadlineSlot
	ctx  context.Context
	// cancel is kept, not called: the deadline ends ctx.
	cancel context.CancelFunc
}

// context returns the context of the slot now is in, ending timeout
// after the slot's end.
func (d *sharedDeadlines) context(now time.Time, timeout time.Duration) context.Context {
	slot := now.UnixNano() / int64(deadlineSlot)
	if c := d.cur.Load(); c != nil && c.slot == slot {
		return c.ctx
	}
	// From now, which keeps its monotonic clock reading, so that a step
	// of the wall clock moves no deadline.
	end := time.Duration((slot+1)*int64(deadlineSlot) - now.UnixNano())
	c := &sharedDeadline{slot: slot}
	c.ctx, c.cancel = context.WithDeadline(context.Background(), now.Add(end+timeout))
	// Calls that begin together may each make one; any of them will do.
	d.cur.Store(c)
	return c.ctx
}
