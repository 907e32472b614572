package kvstore

// storeError lets the HTTP layer classify errors by behaviour.
type storeError struct {
	msg      string
	notFound bool
	timeout  bool
	bad      bool
	unavail  bool
}

func (e *storeError) Error() string     { return e.msg }
func (e *storeError) NotFound() bool    { return e.notFound }
func (e *storeError) Timeout() bool     { return e.timeout }
func (e *storeError) BadRequest() bool  { return e.bad }
func (e *storeError) Unavailable() bool { return e.unavail }

var (
	// ErrNotFound means the key is absent.
	ErrNotFound error = &storeError{msg: "kvstore: key not found", notFound: true}
	// ErrTimeout means the request's deadline passed first. For a write
	// its outcome is unknown: it may still be applied.
	ErrTimeout error = &storeError{msg: "kvstore: request timed out; its outcome is unknown", timeout: true}
	// ErrReadTimeout means a read's deadline passed before this member
	// caught up with the index the read needs.
	ErrReadTimeout error = &storeError{msg: "kvstore: read timed out waiting for this member to catch up", timeout: true}
	// ErrStopped means the store is shutting down, or its node stopped.
	// For a write it means the write was not applied: no entry carrying
	// it was handed to raft.
	ErrStopped error = &storeError{msg: "kvstore: store stopped", unavail: true}
	// ErrOutcomeUnknown means a write was handed to raft, and the store
	// stopped, or its node did, or the caller went away, before this
	// member learned whether it was applied: it may be, on every member.
	ErrOutcomeUnknown error = &storeError{msg: "kvstore: write proposed, then stopped or canceled before applied; its outcome is unknown", timeout: true}
	// ErrEmptyRequest means a write carried no operations or an empty key.
	ErrEmptyRequest error = &storeError{msg: "kvstore: empty key or no operations", bad: true}
)
