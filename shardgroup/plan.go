package shardgroup

import (
	"slices"

	"github.com/raftkv/raftkv/shardmap"
)

// This file holds the driver's decisions, pure functions of the
// replicated ShardState, so that whichever member leads, after whatever
// crash, decides the same next step from the same state.

// stepKind is what a bucket needs next.
type stepKind uint8

const (
	// stepNone: nothing (Serving, NotOwned, or BePulling: the new owner
	// acts).
	stepNone stepKind = iota
	// stepPull: fetch the bucket from its previous owner and install it.
	stepPull
	// stepDelete: tell the previous owner to delete its copy, then
	// finish the GC.
	stepDelete
)

func (k stepKind) String() string {
	return [...]string{"none", "pull", "delete"}[k]
}

// step is the next action for one bucket.
type step struct {
	kind    stepKind
	bucket  int
	version uint64 // the applied config the step is fenced by
	// from is the group that held the bucket in Prev, and servers its
	// members' client URLs there.
	from    uint64
	servers []string
}

// nextStep decides what bucket b needs in st: a Pulling bucket is pulled
// from the group that held it in the previous config, at the applied
// version; a GCing one is deleted there. The previous config is the one
// to ask, not the current: in the current one the old owner may have
// left, and it still holds the bucket, BePulling, at the current
// version.
func nextStep(st ShardState, b int) step {
	if b < 0 || b >= len(st.Status) {
		return step{bucket: b, version: st.Config.Version}
	}
	s := step{bucket: b, version: st.Config.Version}
	switch st.Status[b] {
	case Pulling:
		s.kind = stepPull
	case GCing:
		s.kind = stepDelete
	default:
		return s
	}
	s.from = st.Prev.Owner(b)
	s.servers = slices.Clone(st.Prev.Groups[s.from])
	return s
}

// pendingBuckets lists, in ascending order, the buckets that need a step.
func pendingBuckets(st ShardState) []int {
	var out []int
	for b, s := range st.Status {
		if s == Pulling || s == GCing {
			out = append(out, b)
		}
	}
	return out
}

// nextVersion is the config version to ask the config group for and
// propose, when the group may take one: only when settled, one version
// at a time.
func nextVersion(st ShardState) (uint64, bool) {
	if !st.Settled() {
		return 0, false
	}
	return st.Config.Version + 1, true
}

// acceptConfig reports why c, answered by the config group for version
// want, cannot be proposed to a group in state st ("" when it can).
func acceptConfig(st ShardState, want uint64, c shardmap.Config) string {
	switch {
	case c.Version < want:
		return "not yet" // the latest is older: nothing to do
	case c.Version > want:
		return "the config group answered a later version than asked"
	case len(c.Buckets) != len(st.Status):
		return "the config group's bucket count differs from this group's"
	case c.Validate() != nil:
		return "the config group answered an inconsistent config"
	}
	return ""
}

// byState lists the buckets of st in each state, for logs and /status.
func byState(st ShardState) map[BucketStatus][]int {
	out := map[BucketStatus][]int{Serving: {}, Pulling: {}, BePulling: {}, GCing: {}}
	for b, s := range st.Status {
		if s != NotOwned {
			out[s] = append(out[s], b)
		}
	}
	return out
}
