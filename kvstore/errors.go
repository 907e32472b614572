package kvstore

// storeError lets the HTTP layer classify errors by behaviour. human, when
// set, is the sentence a client is shown instead of the HTTP layer's
// default for the behaviour; msg, Error(), carries the package prefix.
type storeError struct {
	msg      string
	human    string
	notFound bool
	timeout  bool
	bad      bool
	unavail  bool
}

func (e *storeError) Error() string        { return e.msg }
func (e *storeError) HumanMessage() string { return e.human }
func (e *storeError) NotFound() bool       { return e.notFound }
func (e *storeError) Timeout() bool        { return e.timeout }
func (e *storeError) BadRequest() bool     { return e.bad }
func (e *storeError) Unavailable() bool    { return e.unavail }

var (
	// ErrNotFound means the key is absent.
	ErrNotFound error = &storeError{msg: "kvstore: key not found", notFound: true}
	// ErrTimeout means the request's deadline passed first. For a write
	// its outcome is unknown: it may still be applied.
	ErrTimeout error = &storeError{msg: "kvstore: request timed out; its outcome is unknown", timeout: true}
	// ErrReadTimeout means a read's deadline passed before this member
	// caught up with the index the read needs.
	ErrReadTimeout error = &storeError{msg: "kvstore: read timed out waiting for this member to catch up", timeout: true,
		human: "the read timed out before this member caught up with the index it needs"}
	// ErrStopped means the store is shutting down, or its node stopped.
	// For a write it means the write was not applied: no entry carrying
	// it was handed to raft.
	ErrStopped error = &storeError{msg: "kvstore: store stopped", unavail: true,
		human: "this member is stopping; use another member"}
	// ErrOutcomeUnknown means a write was handed to raft, and the store
	// stopped, or its node did, or the caller went away, before this
	// member learned whether it was applied: it may be, on every member.
	ErrOutcomeUnknown error = &storeError{msg: "kvstore: write proposed, then stopped or canceled before applied; its outcome is unknown", timeout: true,
		human: "this member stopped before it learned whether the write was applied; it may or may not have been"}
	// ErrEmptyRequest means a write carried no operations or an empty key.
	ErrEmptyRequest error = &storeError{msg: "kvstore: empty key or no operations", bad: true,
		human: "the write has an empty key or no operations"}
)
