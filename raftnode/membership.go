package raftnode

import (
	"bytes"
	"encoding/gob"
	"fmt"
	"maps"
	"sort"

	"github.com/raftkv/raftkv/peerurl"
)

// Member is one member of the cluster as this node last applied it.
type Member struct {
	ID      uint64
	PeerURL string
	// ClientURL is the member's client address, once it has published it.
	ClientURL string
	// IsLearner: the member receives the log and snapshots but does not
	// vote, and cannot lead, until it is promoted. Snapshots taken before
	// learners existed decode with false, which they all were.
	IsLearner bool
	// URLIndex is the raft index of the conf change that gave the member
	// PeerURL. The first members' come from each member's own bootstrap
	// entries, written from its own --cluster, so their PeerURLs may
	// differ from member to member (a proxy per link) at the same
	// URLIndex; only a later change raises it. 0 in snapshots of binaries
	// from before it.
	URLIndex uint64
}

// membership is the member list derived from applied conf changes. It is
// persisted inside every snapshot (see envelope), because a snapshot
// replaces the log that held the conf changes.
type membership struct {
	Members map[uint64]Member
	// Removed holds ids that left the cluster; they are never reused, and
	// rafthttp answers their messages with "removed".
	Removed map[uint64]bool
	// ClusterLevel is the feature level every member speaks, as the
	// leader last decided it (see Node.ProposeClusterLevel); it only
	// rises. Binaries from before levels leave it out of their snapshots,
	// which then decode with 0.
	ClusterLevel uint32
}

func newMembership() membership {
	return membership{Members: map[uint64]Member{}, Removed: map[uint64]bool{}}
}

func (m membership) clone() membership {
	c := newMembership()
	for id, mem := range m.Members {
		c.Members[id] = mem
	}
	for id := range m.Removed {
		c.Removed[id] = true
	}
	c.ClusterLevel = m.ClusterLevel
	return c
}

func (m membership) sorted() []Member {
	out := make([]Member, 0, len(m.Members))
	for _, mem := range m.Members {
		out = append(out, mem)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// checkAdd validates adding id at peerURL against this membership.
func (m membership) checkAdd(id uint64, peerURL string) error {
	if id == 0 {
		return withDetail(ErrInvalidMember, "id must be positive", "the member id must be positive")
	}
	if err := peerurl.Validate(peerURL); err != nil {
		return withDetail(ErrInvalidMember, err.Error(), "bad "+err.Error()) // "peer URL %q: reason"
	}
	if m.Removed[id] {
		return withDetail(ErrMemberRemoved, fmt.Sprint(id),
			fmt.Sprintf("member id %d belonged to a removed member and cannot be reused; add the member under a new id", id))
	}
	if _, ok := m.Members[id]; ok {
		return withDetail(ErrMemberExists, fmt.Sprint(id), fmt.Sprintf("member id %d is already in use", id))
	}
	for _, mem := range m.Members {
		if mem.PeerURL == peerURL {
			return withDetail(ErrPeerURLExists, fmt.Sprintf("%s is member %d", peerURL, mem.ID),
				fmt.Sprintf("peer URL %s is already used by member %d", peerURL, mem.ID))
		}
	}
	return m.checkNotClientURL(peerURL)
}

// checkNotClientURL refuses, as a peer URL, a member's client URL: the
// members would send raft messages to a client port, and the member
// would never be reached (a mix-up of the two ports).
func (m membership) checkNotClientURL(peerURL string) error {
	for _, mem := range m.Members {
		if mem.ClientURL != "" && mem.ClientURL == peerURL {
			return withDetail(ErrInvalidMember, fmt.Sprintf("%s is member %d's client URL", peerURL, mem.ID),
				fmt.Sprintf("bad peer URL %s: it is member %d's client URL; a peer URL is the member's --cluster entry, its peer port", peerURL, mem.ID))
		}
	}
	return nil
}

// checkUpdate validates giving member id the peer URL peerURL.
func (m membership) checkUpdate(id uint64, peerURL string) error {
	if _, ok := m.Members[id]; !ok {
		return withDetail(ErrMemberNotFound, fmt.Sprint(id), fmt.Sprintf("there is no member %d", id))
	}
	if err := peerurl.Validate(peerURL); err != nil {
		return withDetail(ErrInvalidMember, err.Error(), "bad "+err.Error())
	}
	for _, mem := range m.Members {
		if mem.ID != id && mem.PeerURL == peerURL {
			return withDetail(ErrPeerURLExists, fmt.Sprintf("%s is member %d", peerURL, mem.ID),
				fmt.Sprintf("peer URL %s is already used by member %d", peerURL, mem.ID))
		}
	}
	return m.checkNotClientURL(peerURL)
}

// checkRemove validates removing id against this membership. raft panics
// on a change that leaves no voter, learners or not.
func (m membership) checkRemove(id uint64) error {
	mem, ok := m.Members[id]
	if !ok {
		return withDetail(ErrMemberNotFound, fmt.Sprint(id), fmt.Sprintf("there is no member %d", id))
	}
	if !mem.IsLearner && m.voters() == 1 {
		return ErrLastMember
	}
	return nil
}

// voters counts the members that are not learners.
func (m membership) voters() int {
	n := 0
	for _, mem := range m.Members {
		if !mem.IsLearner {
			n++
		}
	}
	return n
}

// checkPromote validates promoting id, which must be a learner.
func (m membership) checkPromote(id uint64) error {
	mem, ok := m.Members[id]
	switch {
	case !ok:
		return withDetail(ErrMemberNotFound, fmt.Sprint(id), fmt.Sprintf("there is no member %d", id))
	case !mem.IsLearner:
		return withDetail(ErrNotLearner, fmt.Sprint(id),
			fmt.Sprintf("member %d is a voting member already; only a learner can be promoted", id))
	}
	return nil
}

// checkTransferee validates id as the member to hand leadership to.
func (m membership) checkTransferee(id uint64) error {
	mem, ok := m.Members[id]
	switch {
	case !ok:
		return withDetail(ErrTransferTarget, fmt.Sprintf("%d is not a member", id),
			fmt.Sprintf("there is no member %d to transfer leadership to", id))
	case mem.IsLearner:
		return withDetail(ErrTransferTarget, fmt.Sprintf("%d is a learner", id),
			fmt.Sprintf("member %d is a learner, which cannot lead; promote it first", id))
	}
	return nil
}

// envelope is the data of a raft snapshot: raftnode's membership. The
// application's state travels and rests beside it, in the snapshot's data
// file (see snapfile.go), which raftnode never interprets.
type envelope struct {
	Membership membership
}

func encodeEnvelope(m membership) ([]byte, error) {
	var buf bytes.Buffer
	if err := gob.NewEncoder(&buf).Encode(envelope{Membership: m}); err != nil {
		return nil, fmt.Errorf("raftnode: encode snapshot: %w", err)
	}
	return buf.Bytes(), nil
}

func decodeEnvelope(data []byte) (envelope, error) {
	var env envelope
	if err := gob.NewDecoder(bytes.NewReader(data)).Decode(&env); err != nil {
		return envelope{}, fmt.Errorf("raftnode: decode snapshot: %w", err)
	}
	if env.Membership.Members == nil {
		env.Membership.Members = map[uint64]Member{}
	}
	if env.Membership.Removed == nil {
		env.Membership.Removed = map[uint64]bool{}
	}
	// raftnode writes only true; an id mapped to false is not removed, and
	// is dropped so that every reading of the map (a lookup, a range, a
	// clone) agrees.
	maps.DeleteFunc(env.Membership.Removed, func(_ uint64, removed bool) bool { return !removed })
	return env, nil
}

// Entry data written by raftnode starts with one byte that says whose it
// is, so raftnode's own records never reach the application.
const (
	entryApp        byte = 0 // application data follows
	entryAttributes byte = 1 // a member's published attributes (gob)
	entryBatch      byte = 2 // application payloads merged by a leader (batcher)
	// entryClusterLevel raises the cluster level (a uvarint follows).
	// Binaries from before levels skip it as a kind they do not know.
	entryClusterLevel byte = 3
)

func wrapAppData(data []byte) []byte {
	out := make([]byte, 1+len(data))
	out[0] = entryApp
	copy(out[1:], data)
	return out
}

// attributes is what a member publishes about itself through raft.
type attributes struct {
	ID        uint64
	ClientURL string
}

func encodeAttributes(a attributes) ([]byte, error) {
	var buf bytes.Buffer
	buf.WriteByte(entryAttributes)
	if err := gob.NewEncoder(&buf).Encode(a); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func decodeAttributes(data []byte) (attributes, error) {
	var a attributes
	err := gob.NewDecoder(bytes.NewReader(data)).Decode(&a)
	return a, err
}
