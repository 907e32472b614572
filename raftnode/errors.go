package raftnode

import "errors"

// kind classifies an error by what a caller should do about it. The
// methods below let the HTTP layer map errors to statuses without
// importing this package.
type kind int

const (
	unavailable kind = iota + 1
	timeout
	conflict
	notFound
	badRequest
)

type nodeError struct {
	msg  string
	kind kind
}

func (e *nodeError) Error() string      { return e.msg }
func (e *nodeError) Unavailable() bool  { return e.kind == unavailable }
func (e *nodeError) Timeout() bool      { return e.kind == timeout }
func (e *nodeError) Conflict() bool     { return e.kind == conflict }
func (e *nodeError) NotFound() bool     { return e.kind == notFound }
func (e *nodeError) BadRequest() bool   { return e.kind == badRequest }
func newError(k kind, msg string) error { return &nodeError{msg: msg, kind: k} }

var (
	// ErrStopped is returned by calls made after the node stopped. To a
	// proposal it means the proposal reached no raft log.
	ErrStopped = newError(unavailable, "raftnode: node stopped")
	// ErrRemoved means this member applied its own removal from the cluster.
	ErrRemoved = newError(unavailable, "raftnode: this member was removed from the cluster")
	// ErrNoLeader means the member knows no leader, so it cannot propose.
	ErrNoLeader = newError(unavailable, "raftnode: no leader")
	// ErrProposalDropped means raft refused the proposal (no leader known,
	// leadership transfer, or too much uncommitted data); retry later.
	ErrProposalDropped = newError(unavailable, "raftnode: proposal dropped; no leader or leader busy")
	// ErrTimeout means the request's deadline passed before it was
	// applied; its outcome is unknown.
	ErrTimeout = newError(timeout, "raftnode: request timed out; its outcome is unknown")
	// ErrOutcomeUnknown means the proposal or membership change was handed
	// to raft, which may have appended it and sent it on, and the node
	// stopped (or the caller gave up) before it knew what became of it: it
	// may still be applied.
	ErrOutcomeUnknown = newError(timeout, "raftnode: proposed, then stopped or canceled before applied; its outcome is unknown")
	// ErrReadTimeout means a linearizable read could not be confirmed by a
	// quorum in time (no quorum reachable, or the deadline passed).
	ErrReadTimeout = newError(timeout, "raftnode: linearizable read not confirmed by a quorum in time")
	// ErrMemberExists means the id is already a member.
	ErrMemberExists = newError(conflict, "raftnode: member id already in use")
	// ErrMemberRemoved means the id belonged to a removed member; ids are
	// never reused.
	ErrMemberRemoved = newError(conflict, "raftnode: member id was removed and cannot be reused")
	// ErrPeerURLExists means another member already uses the peer URL.
	ErrPeerURLExists = newError(conflict, "raftnode: peer URL already used by another member")
	// ErrConfChangeInProgress means another membership change is not yet
	// applied; raft allows one at a time.
	ErrConfChangeInProgress = newError(conflict, "raftnode: another membership change is in progress")
	// ErrMemberNotFound means the id is not a member.
	ErrMemberNotFound = newError(notFound, "raftnode: no such member")
	// ErrLastMember means removing the member would leave no voter.
	ErrLastMember = newError(badRequest, "raftnode: cannot remove the last voting member")
	// ErrInvalidMember means the id or peer URL of a membership change is
	// malformed.
	ErrInvalidMember = newError(badRequest, "raftnode: invalid member id or peer URL")
)

// isKind reports whether err is a raftnode error of kind k.
func isKind(err error, k kind) bool {
	var ne *nodeError
	return errors.As(err, &ne) && ne.kind == k
}
