package raftnode

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

// nodeError is this package's error: msg is Error(), prefixed with the
// package name; human, when set, is the sentence a client is shown instead
// of the HTTP layer's default for the kind.
type nodeError struct {
	msg   string
	human string
	kind  kind
}

func (e *nodeError) Error() string        { return e.msg }
func (e *nodeError) HumanMessage() string { return e.human }
func (e *nodeError) Unavailable() bool    { return e.kind == unavailable }
func (e *nodeError) Timeout() bool        { return e.kind == timeout }
func (e *nodeError) Conflict() bool       { return e.kind == conflict }
func (e *nodeError) NotFound() bool       { return e.kind == notFound }
func (e *nodeError) BadRequest() bool     { return e.kind == badRequest }

// NoLeader reports whether the error is that this member knows no leader.
func (e *nodeError) NoLeader() bool { return error(e) == ErrNoLeader }

// LearnerNotReady reports whether the error is that a learner is too far
// behind the leader to be promoted.
func (e *nodeError) LearnerNotReady() bool { return error(e) == ErrLearnerNotReady }

// LeaderTransferTimeout reports whether the error is that leadership did
// not move before the caller's deadline.
func (e *nodeError) LeaderTransferTimeout() bool { return error(e) == ErrTransferTimeout }

func newError(k kind, msg, human string) error { return &nodeError{msg: msg, human: human, kind: k} }

var (
	// ErrStopped is returned by calls made after the node stopped. To a
	// proposal it means the proposal reached no raft log.
	ErrStopped = newError(unavailable, "raftnode: node stopped",
		"this member is stopping; use another member")
	// ErrRemoved means this member applied its own removal from the cluster.
	ErrRemoved = newError(unavailable, "raftnode: this member was removed from the cluster",
		"this member was removed from the cluster; use another member")
	// ErrNoLeader means the member knows no leader, so it cannot propose;
	// proposals, reads and membership changes wait a while for one first
	// (leaderwait.go).
	ErrNoLeader = newError(unavailable, "raftnode: no leader", "")
	// ErrProposalDropped means raft refused the proposal (no leader known,
	// leadership transfer, or too much uncommitted data); retry later.
	ErrProposalDropped = newError(unavailable, "raftnode: proposal dropped; no leader or leader busy",
		"the leader could not take the request (it is changing or busy); retry shortly")
	// ErrTimeout means the request's deadline passed before it was
	// applied; its outcome is unknown.
	ErrTimeout = newError(timeout, "raftnode: request timed out; its outcome is unknown", "")
	// ErrOutcomeUnknown means the proposal or membership change was handed
	// to raft, which may have appended it and sent it on, and the node
	// stopped (or the caller gave up) before it knew what became of it: it
	// may still be applied.
	ErrOutcomeUnknown = newError(timeout, "raftnode: proposed, then stopped or canceled before applied; its outcome is unknown",
		"this member stopped before it learned whether the change was applied; it may or may not have been")
	// ErrReadTimeout means a linearizable read could not be confirmed by a
	// quorum in time (no quorum reachable, or the deadline passed).
	ErrReadTimeout = newError(timeout, "raftnode: linearizable read not confirmed by a quorum in time",
		"the read timed out before a quorum of members confirmed it")
	// ErrMemberExists means the id is already a member.
	ErrMemberExists = newError(conflict, "raftnode: member id already in use",
		"the member id is already in use")
	// ErrMemberRemoved means the id belonged to a removed member; ids are
	// never reused.
	ErrMemberRemoved = newError(conflict, "raftnode: member id was removed and cannot be reused",
		"the member id belonged to a removed member and cannot be reused; add the member under a new id")
	// ErrPeerURLExists means another member already uses the peer URL.
	ErrPeerURLExists = newError(conflict, "raftnode: peer URL already used by another member",
		"the peer URL is already used by another member")
	// ErrConfChangeInProgress means another membership change is not yet
	// applied; raft allows one at a time.
	ErrConfChangeInProgress = newError(conflict, "raftnode: another membership change is in progress",
		"another membership change is in progress; retry once it is applied")
	// ErrMemberNotFound means the id is not a member.
	ErrMemberNotFound = newError(notFound, "raftnode: no such member", "")
	// ErrLastMember means removing the member would leave no voter.
	ErrLastMember = newError(badRequest, "raftnode: cannot remove the last voting member",
		"cannot remove the last voting member")
	// ErrInvalidMember means the id or peer URL of a membership change is
	// malformed.
	ErrInvalidMember = newError(badRequest, "raftnode: invalid member id or peer URL",
		"invalid member id or peer URL")
	// ErrNotLearner means a member to be promoted is a voter already.
	ErrNotLearner = newError(conflict, "raftnode: member is not a learner",
		"the member is a voting member already; only a learner can be promoted")
	// ErrLearnerNotReady means a learner's log is too far behind the
	// leader's for it to be promoted (see PromoteMember).
	ErrLearnerNotReady = newError(conflict, "raftnode: learner is not caught up with the leader",
		"the learner has not caught up with the leader yet; retry once it has")
	// ErrNotLeader means the request needs the leader's view of the
	// followers (promoting a learner, transferring leadership), and this
	// member is not the leader.
	ErrNotLeader = newError(unavailable, "raftnode: this member is not the leader",
		"this member is not the leader; send the request to the leader")
	// ErrTransferTarget means leadership cannot go to the member asked
	// for (unknown, a learner) or there is no voter to give it to.
	ErrTransferTarget = newError(conflict, "raftnode: no such voting member to transfer leadership to",
		"leadership can only be transferred to another voting member")
	// ErrTransferTimeout means leadership had not moved to the transferee
	// when the caller's deadline passed, or the transferee's connection
	// went down; it may still move.
	ErrTransferTimeout = newError(timeout, "raftnode: leadership transfer not completed",
		"leadership did not move before the deadline; it may still move, or stay with the current leader")
)

// detailError is a sentinel with the detail that names what it is about
// (which id, which peer URL and why). Error() reads as
// fmt.Errorf("%w: detail") would; HumanMessage says it all in one sentence.
type detailError struct {
	err    error
	detail string
	human  string
}

func (e *detailError) Error() string        { return e.err.Error() + ": " + e.detail }
func (e *detailError) HumanMessage() string { return e.human }
func (e *detailError) Unwrap() error        { return e.err }

// withDetail wraps sentinel with detail, for logs, and human, for clients.
func withDetail(sentinel error, detail, human string) error {
	return &detailError{err: sentinel, detail: detail, human: human}
}
