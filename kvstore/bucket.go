package kvstore

import (
	"container/heap"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"

	"github.com/raftkv/raftkv/shardmap"
)

// bucket is the state of one bucket of the key space: its keys and the
// dedup table of its writers, kept apart from the other buckets' so that
// the bucket can be exported, installed and dropped whole.
type bucket struct {
	data *tree
	// dedup is nil until a client with an id writes to the bucket.
	dedup *dedupTable
	// floor is the greatest version (ModIndex) given to a key of the
	// bucket or brought in with it by a migration, deleted keys' too,
	// floorAt the raft index of the entry that last gave one here (0 after
	// a restore or an install) and floorReq the request (applyState.req;
	// 0: none). See versionLocked.
	floor, floorAt, floorReq uint64
}

func newBuckets(n int) []bucket {
	b := make([]bucket, n)
	for i := range b {
		b[i].data = newTree()
	}
	return b
}

// setBucketLocked makes nb bucket b: its tree's bytes count in the
// store's DataBytes, and the tree it replaces no longer does. s.mu must be
// held for writing.
func (s *Store) setBucketLocked(b int, nb bucket) {
	if old := s.mu.buckets[b].data; old != nil && old.sink != nil {
		old.sink = nil
		s.dataBytes.Add(-old.bytes)
	}
	if nb.data != nil {
		nb.data.sink = &s.dataBytes
		s.dataBytes.Add(nb.data.bytes)
	}
	s.mu.buckets[b] = nb
}

// bucketOf is key's bucket. A plain member has one bucket and computes
// no hash.
func (s *Store) bucketOf(key string) int {
	if s.nbuckets == 1 {
		return 0
	}
	return shardmap.BucketOf(key, s.nbuckets)
}

// cloneTreesLocked returns a copy-on-write clone of every bucket's tree,
// in O(buckets). Cloning changes the originals' tags, so s.mu must be
// held for writing.
func (s *Store) cloneTreesLocked() []*tree {
	out := make([]*tree, len(s.mu.buckets))
	for i := range s.mu.buckets {
		out[i] = s.mu.buckets[i].data.Clone()
	}
	return out
}

// cloneBucketsLocked returns a copy-on-write clone of every bucket, in
// O(buckets). s.mu must be held for writing.
func (s *Store) cloneBucketsLocked() []bucket {
	out := make([]bucket, len(s.mu.buckets))
	for i, b := range s.mu.buckets {
		out[i] = bucket{data: b.data.Clone(), dedup: b.dedup.clone(), floor: b.floor}
	}
	return out
}

// Digest is the applied index, the key count and a SHA-256 over the
// sorted keys, each with its value, CreateIndex, ModIndex and TTL (of
// every bucket, merged in key order, so that members with different
// bucket counts of the same keys agree), all taken at one applied index.
// Members of one group apply the same entries, so their versions agree
// too. On a config group member, which holds no keys,
// the hash is over the configs instead.
func (s *Store) Digest() (index uint64, keys int, hash string) {
	s.mu.Lock()
	trees := s.cloneTreesLocked()
	// The index of the state under the lock: a commit of several raft
	// indexes changes the state at each, before setApplied.
	index = s.mu.index
	configs := s.mu.history.Configs // never changed once appended
	s.mu.Unlock()
	h := sha256.New()
	if s.mode == modeConfig {
		if err := json.NewEncoder(h).Encode(configs); err != nil {
			panic(err) // configs are maps and slices of numbers and strings
		}
	}
	var n [8]byte
	ascendMerged(trees, func(it item) bool {
		keys++
		binary.BigEndian.PutUint64(n[:], uint64(len(it.key)))
		h.Write(n[:])
		h.Write([]byte(it.key))
		binary.BigEndian.PutUint64(n[:], uint64(len(it.valueBytes())))
		h.Write(n[:])
		h.Write(it.valueBytes())
		for _, v := range [...]uint64{it.create, it.mod, uint64(it.ttl())} {
			binary.BigEndian.PutUint64(n[:], v)
			h.Write(n[:])
		}
		return true
	})
	return index, keys, hex.EncodeToString(h.Sum(nil))
}

// Len is the number of keys.
func (s *Store) Len() int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	n := 0
	for i := range s.mu.buckets {
		n += s.mu.buckets[i].data.Len()
	}
	return n
}

// ascendMerged calls fn for every item of trees, which hold disjoint keys,
// in key order, until fn returns false. It empties the trees, which must
// be clones no one else reads, letting go of each leaf once it is passed
// (see tree.takeLeaves).
func ascendMerged(trees []*tree, fn func(item) bool) {
	var h cursorHeap
	for _, t := range trees {
		if c := (cursor{leaves: t.takeLeaves()}); c.valid() {
			h = append(h, c)
		}
	}
	if len(h) == 1 { // one bucket, or one not empty: no merge
		for c := &h[0]; c.valid(); c.next() {
			if !fn(c.item()) {
				return
			}
		}
		return
	}
	heap.Init(&h)
	for len(h) > 0 {
		c := &h[0]
		if !fn(c.item()) {
			return
		}
		if c.next(); c.valid() {
			heap.Fix(&h, 0)
		} else {
			heap.Pop(&h)
		}
	}
}

// cursor walks the items of a list of leaves, dropping each leaf from the
// list once it has passed it.
type cursor struct {
	leaves []*node
	i      int // item index in leaves[0]
}

func (c *cursor) valid() bool { return len(c.leaves) > 0 && c.i < c.leaves[0].n }
func (c *cursor) item() item  { return c.leaves[0].items[c.i] }
func (c *cursor) next() {
	c.i++
	for len(c.leaves) > 0 && c.i >= c.leaves[0].n {
		c.leaves[0] = nil
		c.leaves = c.leaves[1:]
		c.i = 0
	}
}

type cursorHeap []cursor

func (h cursorHeap) Len() int           { return len(h) }
func (h cursorHeap) Less(i, j int) bool { return itemLess(h[i].item(), h[j].item()) }
func (h cursorHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *cursorHeap) Push(x any)        { *h = append(*h, x.(cursor)) }
func (h *cursorHeap) Pop() any {
	old := *h
	c := old[len(old)-1]
	*h = old[:len(old)-1]
	return c
}
