package client

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
)

// Sentinel errors. A call's error is an *Error; test it with errors.Is
// against these, which look at its status and code (see Error.Is).
var (
	// ErrInvalidConfig is wrapped by Config.Validate's errors.
	ErrInvalidConfig = errors.New("client: invalid config")
	// ErrNotFound: the key is absent (404, code key_not_found).
	ErrNotFound = errors.New("client: key not found")
	// ErrBadRequest: the server (or the client, before sending) refused the
	// request as malformed (400, 413, code bad_request). Not retried.
	ErrBadRequest = errors.New("client: bad request")
	// ErrConflict: the request conflicts with the state (409, code conflict).
	ErrConflict = errors.New("client: conflict")
	// ErrUnavailable: no member could serve the call before its deadline,
	// and a write was certainly not applied: every try was refused (503,
	// 429) or never reached a member (the dial failed).
	ErrUnavailable = errors.New("client: unavailable")
	// ErrNoLeader: the last try found a group without a leader (code
	// no_leader). Such an error is also ErrUnavailable.
	ErrNoLeader = errors.New("client: no leader")
	// ErrTooManyRequests: the last try was shed by an overloaded member (429
	// or code too_many_requests). Such an error is also ErrUnavailable.
	ErrTooManyRequests = errors.New("client: too many requests")
	// ErrTimeout: the deadline passed: the server's (504) or the call's own.
	ErrTimeout = errors.New("client: timeout")
	// ErrOutcomeUnknown: a write may or may not have been applied: some try
	// timed out (504), lost its connection after the request went out, got
	// a 500, or the server could no longer judge its sequence number (code
	// seq_too_old). Retrying the same write with a new sequence number
	// writes it again.
	ErrOutcomeUnknown = errors.New("client: outcome of the write unknown")
	// ErrWrongGroup: members kept answering that another group serves the
	// key (421) until the call's deadline, though the config was refreshed.
	ErrWrongGroup = errors.New("client: wrong group")
	// ErrCrossGroup: a PutAll names keys that different groups serve; it is
	// refused before anything is sent, until transactions exist. Such an
	// error is also ErrBadRequest.
	ErrCrossGroup = errors.New("client: keys of one PutAll are served by different groups")
	// ErrPreconditionFailed: a conditional write (WithIfMatch,
	// WithIfAbsent) found the key in another state (412, code
	// precondition_failed); nothing was changed. The *Error's ModIndex is
	// the key's current version (0: the key is absent).
	ErrPreconditionFailed = errors.New("client: precondition failed")
	// ErrCompacted: a watch asked for events older than the member keeps
	// (410, code compacted); the *Error's OldestIndex is the oldest index
	// a watch can start from. Read the keys again and watch from the
	// index of that read.
	ErrCompacted = errors.New("client: events compacted")
	// ErrNoSpace: the write would take the keys past the members' space
	// quota (503, code no_space); nothing was applied. Deleting keys makes
	// room. Like a cluster_level refusal, each endpoint is asked once.
	ErrNoSpace = errors.New("client: space quota exceeded")
	// ErrNoConfigGroup: an admin call (Join, Leave, Move, Query) on a Client
	// built without ConfigEndpoints.
	ErrNoConfigGroup = errors.New("client: no config group (Config.ConfigEndpoints is empty)")
)

// Error codes: the "code" field of a server's JSON error body. A body
// without one gets the code its status implies (codeOfStatus).
const (
	CodeBadRequest      = "bad_request"
	CodeKeyNotFound     = "key_not_found"
	CodeConflict        = "conflict"
	CodeTooLarge        = "payload_too_large"
	CodeNoLeader        = "no_leader"
	CodeUnavailable     = "unavailable"
	CodeTooManyRequests = "too_many_requests"
	CodeTimeout         = "timeout"
	CodeOutcomeUnknown  = "outcome_unknown"
	CodeWrongGroup      = "wrong_group"
	CodeBucketMoving    = "bucket_moving"
	CodeSeqTooOld       = "seq_too_old"
	// CodeResultNotKept: a retried transaction was applied before, and
	// its get results, too large to keep, changed since (504; the
	// message names where it applied).
	CodeResultNotKept = "result_not_kept"
	CodeInternal      = "internal"
	// The data model's: a failed If-Match or If-None-Match (412), a watch
	// from an index no longer kept (410), a watch that fell behind, too
	// many watches on one member (503), a txn or batch across groups (a
	// router's 400, or the client's own, see ErrCrossGroup).
	CodePreconditionFailed = "precondition_failed"
	CodeCompacted          = "compacted"
	CodeTooSlow            = "too_slow"
	CodeTooManyWatchers    = "too_many_watchers"
	// CodeNoOwner is the client's own: the config gives the key's bucket to
	// no group (no group has joined yet).
	CodeNoOwner = "no_owner"
	// CodeCrossGroup is the client's own: see ErrCrossGroup.
	CodeCrossGroup = "cross_group"
	// CodeClusterLevel (503): the operation needs a higher cluster level
	// than the group runs at, as while a member runs an older binary.
	// Nothing was applied; the call asks each endpoint once, then fails.
	CodeClusterLevel = "cluster_level"
	// CodeNoSpace (503): a write that would take the keys past the
	// member's space quota (raftkv --quota-bytes); nothing was applied.
	CodeNoSpace = "no_space"
)

// Error is the error of a call: what the last try was answered, or why it
// got no answer, and whether a write may have been applied.
type Error struct {
	// Op is the call: "get", "put", "delete", "putall", "status", "config",
	// "join", "leave" or "move".
	Op string
	// Key is the key of a key call ("" for the others; the first key of a
	// PutAll).
	Key string
	// Endpoint is the base URL of the member that gave the last answer or
	// failed to ("" when the call failed before any try).
	Endpoint string
	// Status is the HTTP status of the last answer, 0 when there was none.
	Status int
	// Code is the server's error code, or the one its status implies, or
	// the client's own (CodeNoOwner, CodeCrossGroup, CodeBadRequest for
	// input refused before sending); "" for a try that got no answer.
	Code string
	// Message is the server's message (the "error" field of a JSON body, or
	// a text body's first line), or the client's.
	Message string
	// Version, Bucket, Owner and Servers are a 421's: the member's config
	// version, the key's bucket and, when the member knows them, the group
	// serving it and that group's members.
	Version uint64
	Bucket  int
	Owner   uint64
	Servers []string
	// Index is the last answer's X-Raft-Index: the index a 404 was read
	// at, or a 412's condition was judged at; 0 when it had none.
	Index uint64
	// ModIndex is a 412's: the key's current version, from its ETag; 0
	// when the key is absent.
	ModIndex uint64
	// OldestIndex is a 410's: the oldest index a watch can start from.
	OldestIndex uint64
	// Body, ContentType and RetryAfter are the last answer's, as sent, so
	// that a proxy can relay it (Body is cut at 64 KiB).
	Body        []byte
	ContentType string
	RetryAfter  string
	// Tries is the number of requests sent or attempted.
	Tries int
	// MaybeApplied reports that the call is a write and some try of it may
	// have been applied (see ErrOutcomeUnknown).
	MaybeApplied bool
	// Err is the transport error of the last try, or the context's error
	// when the call's deadline passed or its context was canceled.
	Err error
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("client: ")
	b.WriteString(e.Op)
	if e.Key != "" {
		fmt.Fprintf(&b, " %q", e.Key)
	}
	if e.Status != 0 {
		fmt.Fprintf(&b, ": %d %s", e.Status, http.StatusText(e.Status))
	}
	if e.Code != "" {
		fmt.Fprintf(&b, " (%s)", e.Code)
	}
	if e.Endpoint != "" {
		fmt.Fprintf(&b, " from %s", e.Endpoint)
	}
	if e.Message != "" {
		b.WriteString(": ")
		b.WriteString(e.Message)
	}
	if e.Err != nil {
		// One line: the deadline and the last try's error are joined
		// (errors.Join), which puts a newline between them.
		b.WriteString(": ")
		b.WriteString(strings.ReplaceAll(e.Err.Error(), "\n", "; "))
	}
	if e.Tries > 1 {
		fmt.Fprintf(&b, " (after %d tries)", e.Tries)
	}
	if e.MaybeApplied {
		b.WriteString("; the write may have been applied")
	}
	return b.String()
}

// Unwrap returns the transport or context error, if any.
func (e *Error) Unwrap() error { return e.Err }

// Is maps e to the sentinel errors by its status and code, so that
// errors.Is(err, client.ErrNotFound) works on any call's error.
func (e *Error) Is(target error) bool {
	switch target {
	case ErrNotFound:
		return e.Code == CodeKeyNotFound
	case ErrBadRequest:
		return e.Code == CodeBadRequest || e.Code == CodeTooLarge || e.Code == CodeCrossGroup
	case ErrConflict:
		return e.Code == CodeConflict
	case ErrCrossGroup:
		return e.Code == CodeCrossGroup
	case ErrPreconditionFailed:
		return e.Code == CodePreconditionFailed
	case ErrCompacted:
		return e.Code == CodeCompacted
	case ErrNoSpace:
		return !e.MaybeApplied && e.Code == CodeNoSpace
	case ErrWrongGroup:
		return e.Code == CodeWrongGroup
	case ErrNoLeader:
		return !e.MaybeApplied && e.Code == CodeNoLeader
	case ErrTooManyRequests:
		return !e.MaybeApplied && e.Code == CodeTooManyRequests
	case ErrUnavailable:
		return !e.MaybeApplied && e.unavailable()
	case ErrTimeout:
		return e.Code == CodeTimeout || e.Code == CodeOutcomeUnknown || errors.Is(e.Err, context.DeadlineExceeded)
	case ErrOutcomeUnknown:
		return e.MaybeApplied
	}
	return false
}

// unavailable reports whether the last try was refused for a reason that
// retrying later may cure: no leader, overload, a bucket moving or
// unowned, a member that could not be reached, a cluster level that an
// upgrade will raise.
func (e *Error) unavailable() bool {
	switch e.Code {
	case CodeNoLeader, CodeUnavailable, CodeTooManyRequests, CodeBucketMoving, CodeNoOwner, CodeTooManyWatchers, CodeClusterLevel:
		return true
	}
	return e.Status == 0 && transportError(e.Err)
}

// transportError reports whether err is or joins an error other than a
// context's: a member could not be reached, or its connection broke.
func transportError(err error) bool {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		for _, e := range j.Unwrap() {
			if transportError(e) {
				return true
			}
		}
		return false
	}
	return err != nil && !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, context.Canceled)
}

// codeOfStatus is the code an answer without one implies.
func codeOfStatus(status int) string {
	switch status {
	case http.StatusBadRequest:
		return CodeBadRequest
	case http.StatusNotFound:
		return CodeKeyNotFound
	case http.StatusConflict:
		return CodeConflict
	case http.StatusPreconditionFailed:
		return CodePreconditionFailed
	case http.StatusGone:
		return CodeCompacted
	case http.StatusRequestEntityTooLarge:
		return CodeTooLarge
	case http.StatusMisdirectedRequest, http.StatusTemporaryRedirect, http.StatusPermanentRedirect:
		return CodeWrongGroup
	case http.StatusTooManyRequests:
		return CodeTooManyRequests
	case http.StatusServiceUnavailable:
		return CodeUnavailable
	case http.StatusGatewayTimeout:
		return CodeTimeout
	}
	if status >= 500 {
		return CodeInternal
	}
	if status >= 400 {
		return CodeBadRequest
	}
	return ""
}
