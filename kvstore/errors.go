package kvstore

import "fmt"

// storeError lets the HTTP layer classify errors by behaviour. human, when
// set, is the sentence a client is shown instead of the HTTP layer's
// default for the behaviour; msg, Error(), carries the package prefix.
// code, when set, is the error's name on the wire (the "code" of a JSON
// error answer), for errors the HTTP layer's table has no row of its own
// for.
type storeError struct {
	msg         string
	human       string
	code        string
	notFound    bool
	timeout     bool
	bad         bool
	unavail     bool
	conflict    bool
	misdirected bool
	gone        bool
}

func (e *storeError) Error() string        { return e.msg }
func (e *storeError) HumanMessage() string { return e.human }
func (e *storeError) NotFound() bool       { return e.notFound }
func (e *storeError) Timeout() bool        { return e.timeout }
func (e *storeError) BadRequest() bool     { return e.bad }
func (e *storeError) Unavailable() bool    { return e.unavail }
func (e *storeError) Conflict() bool       { return e.conflict }
func (e *storeError) Misdirected() bool    { return e.misdirected }
func (e *storeError) Gone() bool           { return e.gone }

// Code is the error's wire code, or "" when the HTTP layer's table names
// it by its behaviour alone.
func (e *storeError) Code() string { return e.code }

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
	// ErrLevelUnconfirmed means a write waited for this member to learn
	// the cluster level (awaitClusterLevel) and no quorum answered it in
	// time: nothing was proposed.
	ErrLevelUnconfirmed error = &storeError{msg: "kvstore: cluster level not confirmed by a quorum; the write was not proposed", unavail: true,
		human: "this member could not reach a quorum to learn the cluster level before proposing the write, which was not applied; retry, or use another member"}
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
	// ErrCoveredBySnapshot means this member caught up past a write of
	// its own by a snapshot, which does not say whether the write was
	// applied, refused, or answered as a duplicate: its outcome is
	// unknown. Sending it again with the same client id and sequence
	// number is safe.
	ErrCoveredBySnapshot error = &storeError{msg: "kvstore: write covered by a snapshot; its outcome is unknown", timeout: true,
		human: "this member caught up by a snapshot and did not see what became of the write; it may or may not have been applied"}
	// ErrEmptyRequest means a write carried no operations or an empty key.
	ErrEmptyRequest error = &storeError{msg: "kvstore: empty key or no operations", bad: true,
		human: "the write has an empty key or no operations"}
	// ErrBadOp means a write carried an operation a client may not send
	// (not a put or delete), or a TTL on a delete.
	ErrBadOp error = &storeError{msg: "kvstore: invalid operation", bad: true,
		human: "an operation is neither a put nor a delete"}
	// ErrBadTTL means a put's TTL is negative or longer than MaxTTL.
	ErrBadTTL error = &storeError{msg: "kvstore: invalid TTL", bad: true,
		human: "a TTL must be positive and at most 100 years"}
	// ErrBadWatch means a watch's options are inconsistent; errors that
	// wrap it say how.
	ErrBadWatch error = &storeError{msg: "kvstore: invalid watch", bad: true,
		human: "the watch's options are invalid"}
	// ErrCompacted means a watch asked for events older than this
	// member's window; a *CompactedError wraps it with the oldest index
	// the member can watch from.
	ErrCompacted error = &storeError{msg: "kvstore: events compacted", gone: true, code: "compacted",
		human: "the events asked for are older than this member keeps"}
	// ErrWatcherTooSlow means a watcher fell behind the member's window
	// of events: the ones it had still to deliver are gone.
	ErrWatcherTooSlow error = &storeError{msg: "kvstore: watcher too slow", code: "too_slow",
		human: "the watcher fell too far behind the changes; watch again from the last event received"}
	// ErrBadList means a listing's options are inconsistent; errors that
	// wrap it say how.
	ErrBadList error = &storeError{msg: "kvstore: invalid listing", bad: true,
		human: "the listing's options are invalid"}
	// ErrBadRange means a range delete's options are inconsistent; errors
	// that wrap it say how.
	ErrBadRange error = &storeError{msg: "kvstore: invalid range delete", bad: true,
		human: "the range delete's options are invalid"}
	// ErrBadTxn means a transaction is malformed; errors that wrap it say
	// how.
	ErrBadTxn error = &storeError{msg: "kvstore: invalid transaction", bad: true,
		human: "the transaction is invalid"}
	// ErrTxnResultNotKept means a retried transaction was applied before,
	// and the dedup table did not keep its get results, which changed
	// since: the error says its index and branch, but has not those
	// values. It is a 504, as an unknown outcome is: a retry that was
	// applied must never be told otherwise (a 4xx or 503 says "not
	// applied"), and a 200 without the get values would be read by
	// clients that predate this answer as gets of empty values.
	ErrTxnResultNotKept error = &storeError{msg: "kvstore: transaction applied before; its get results were not kept", timeout: true,
		code: "result_not_kept", human: "the transaction was applied already; its get results were too large to keep for a retry"}
	// ErrNoSpace means a write would take the keys past Config.QuotaBytes;
	// nothing was proposed. Errors that wrap it give the figures.
	ErrNoSpace error = &storeError{msg: "kvstore: space quota exceeded", unavail: true, code: "no_space",
		human: "the keys would pass this member's space quota; delete keys to make room, or raise the quota"}
	// ErrHashNotKept means a member keeps no hash of the state at the
	// index asked for (Store.HashAt); errors that wrap it say why.
	ErrHashNotKept error = &storeError{msg: "kvstore: no hash kept at that index", notFound: true, code: "hash_not_kept",
		human: "this member keeps no hash of the state at that index"}
	// ErrHashBusy means a member still computes the hashes of earlier
	// hash checks and proposed no new one.
	ErrHashBusy error = &storeError{msg: "kvstore: hash checks under way", unavail: true, code: "hash_busy",
		human: "this member is still computing the hashes of earlier checks; retry shortly"}
	// ErrBadClientID means a write's client id is not 1-64 characters of
	// [A-Za-z0-9._-].
	ErrBadClientID error = &storeError{msg: "kvstore: invalid client id", bad: true,
		human: "the client id must be 1-64 characters of A-Z, a-z, 0-9, '.', '_' and '-'"}
	// ErrBadSeq means a write has a client id and no sequence number.
	ErrBadSeq error = &storeError{msg: "kvstore: client sequence number missing", bad: true,
		human: "a write with a client id needs a sequence number of 1 or more"}
	// ErrSeqTooOld means a write's sequence number is below the window
	// of results the state machine keeps for its client: it may have been
	// applied and forgotten since, so it cannot be judged. Nothing was
	// applied now; whether it was before is unknown.
	ErrSeqTooOld error = &storeError{msg: "kvstore: client sequence number below the dedup window; its outcome is unknown", timeout: true,
		code: "seq_too_old", human: "the write's sequence number is older than the results kept for its client, so whether it was applied before is unknown; it was not applied now"}
)

// Errors of sharding.
var (
	// ErrWrongGroup means a key's bucket is not served by this group in
	// its applied config; nothing was applied. It comes as a
	// *WrongGroupError, which says who serves the bucket.
	ErrWrongGroup error = &storeError{msg: "kvstore: key in a bucket this group does not serve", misdirected: true,
		code: "wrong_group", human: "the key belongs to a bucket this group does not serve"}
	// ErrBucketMoving means a key's bucket is being pulled into this
	// group and did not arrive in time; nothing was applied.
	ErrBucketMoving error = &storeError{msg: "kvstore: bucket being moved to this group", unavail: true,
		code: "bucket_moving", human: "the key's bucket is moving to this group and has not arrived yet; retry shortly"}
	// ErrNotReady means this group has not applied the config version an
	// operation is about yet.
	ErrNotReady error = &storeError{msg: "kvstore: config version not reached yet", conflict: true,
		code: "not_ready", human: "this group has not reached that config version yet"}
	// ErrBucketGone means a pull asked for a bucket this group does not
	// hold for it at that config version.
	ErrBucketGone error = &storeError{msg: "kvstore: bucket not held for that config version", conflict: true,
		code: "bucket_gone", human: "this group does not hold that bucket for that config version"}
	// ErrNotSettled means a config could not apply because a bucket is
	// still moving (Pulling, BePulling or GCing).
	ErrNotSettled error = &storeError{msg: "kvstore: migration in progress; config not applied", conflict: true,
		code: "not_settled", human: "a bucket is still moving, so the next config cannot apply yet"}
	// ErrBucketState means a bucket operation does not fit the bucket's
	// state at that config version (it would undo or skip a step).
	ErrBucketState error = &storeError{msg: "kvstore: bucket operation does not fit the bucket's state", conflict: true,
		code: "bucket_state", human: "the bucket is not in the state this operation needs"}
	// ErrBadShardOp means a shard operation's arguments are not usable.
	ErrBadShardOp error = &storeError{msg: "kvstore: invalid shard operation", bad: true,
		human: "the shard operation is invalid"}
	// ErrBadConfigOp means a config operation is not usable; errors that
	// wrap it say why.
	ErrBadConfigOp error = &storeError{msg: "kvstore: invalid config operation", bad: true,
		human: "the config operation is invalid"}
	// ErrNotConfigGroup means a config operation or query reached a
	// member that is not in the config group.
	ErrNotConfigGroup error = &storeError{msg: "kvstore: not a config group member", bad: true,
		human: "this member is not in the config group"}
	// ErrNoKeys means a key operation reached a config group member.
	ErrNoKeys error = &storeError{msg: "kvstore: config group member; no keys", bad: true,
		human: "this member belongs to the config group; it stores no keys"}
	// ErrConfigWaitTimeout means no config of the awaited version
	// appeared before the deadline.
	ErrConfigWaitTimeout error = &storeError{msg: "kvstore: config version did not appear in time", timeout: true,
		human: "no config of that version appeared in time"}
	// ErrNotShardGroup means a shard operation reached a member that is
	// not in a shard group.
	ErrNotShardGroup error = &storeError{msg: "kvstore: not a shard group member", bad: true,
		human: "this member is not in a shard group"}
)

// detailError is a storeError whose sentence for clients says more.
type detailError struct {
	base  *storeError
	human string
}

func (e *detailError) Error() string        { return e.base.msg + ": " + e.human }
func (e *detailError) Unwrap() error        { return e.base }
func (e *detailError) HumanMessage() string { return e.human }
func (e *detailError) Code() string         { return e.base.code }

// detailf returns base, a *storeError, with the client's sentence format.
func detailf(base error, format string, a ...any) error {
	return &detailError{base: base.(*storeError), human: fmt.Sprintf(format, a...)}
}

// WrongGroupError is ErrWrongGroup with what a client needs to go to the
// right group: the key's bucket, and who serves it in the config (Version)
// this group applied.
type WrongGroupError struct {
	Key    string
	Bucket int
	// Group is this group.
	Group uint64
	// Version is the config version this group applied.
	Version uint64
	// Owner is the group that serves Bucket in that config, 0 if none
	// does; Servers are its members' client URLs.
	Owner   uint64
	Servers []string
	// AskedVersion, for a request that named a config version (a
	// listing's ConfigVersion) other than Version, is that version; Key
	// is then "" and Bucket -1.
	AskedVersion uint64
}

func (e *WrongGroupError) Error() string { return "kvstore: " + e.HumanMessage() }
func (e *WrongGroupError) Unwrap() error { return ErrWrongGroup }

// Misdirected says the request went to the wrong group (HTTP 421).
func (e *WrongGroupError) Misdirected() bool { return true }

// Code is the error's wire code.
func (e *WrongGroupError) Code() string { return "wrong_group" }

func (e *WrongGroupError) HumanMessage() string {
	if e.AskedVersion != 0 {
		return fmt.Sprintf("the request names config %d, but group %d applied config %d", e.AskedVersion, e.Group, e.Version)
	}
	owner := "no group serves it"
	if e.Owner != 0 {
		owner = fmt.Sprintf("group %d serves it", e.Owner)
	}
	return fmt.Sprintf("key %q is in bucket %d, which group %d does not serve in config %d; %s", e.Key, e.Bucket, e.Group, e.Version, owner)
}

// CompactedError is ErrCompacted with the oldest raft index this member
// can deliver events from: a watch from Oldest on is served, unless the
// window moves on meanwhile.
type CompactedError struct {
	Oldest uint64
}

func (e *CompactedError) Error() string { return "kvstore: " + e.HumanMessage() }
func (e *CompactedError) Unwrap() error { return ErrCompacted }

// Gone says the events are gone for good (HTTP 410).
func (e *CompactedError) Gone() bool { return true }

// Code is the error's wire code.
func (e *CompactedError) Code() string { return "compacted" }

func (e *CompactedError) HumanMessage() string {
	return fmt.Sprintf("the events asked for are gone from this member; the oldest index it can watch from is %d", e.Oldest)
}
