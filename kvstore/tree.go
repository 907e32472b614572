package kvstore

// tree is the state: an ordered map of items, a copy-on-write B+ tree.
//
// Items live in the leaves; a branch holds its children and, for each
// child after the first, a separator: a key no greater than any key in
// that child and greater than every key in the child before it. A
// separator is a key only; it never holds a value, so a replaced value
// is not kept alive by a branch.
//
// Nodes are fixed arrays sized to fill one of the Go allocator's size
// classes, and the tree keeps them full where a general B-tree leaves them
// half full:
//   - a node that overflows with an item added at the very end of the tree
//     keeps all its items and starts a new node with the one added, so a
//     load of ascending keys fills every node (google/btree splits each
//     such node in half and never adds to the left half again);
//   - any other node that overflows first hands its first or last item to
//     a sibling with room, and splits in half only when neither has any.
//
// Clone is O(1): both trees then share every node, and each copies a node
// before its first change to it. Nodes are tagged with the tree that may
// change them in place; a clone gives both trees new tags. A tree and its
// clones may be read concurrently while one of them is changed, as the
// Store does when it writes a snapshot: a shared node is never changed.

import (
	"sync/atomic"
	"unsafe"
)

const (
	// nodeMax is the most items a leaf, or children a branch, holds at
	// rest. An insert may leave one more for the parent to resolve.
	nodeMax = 71
	// nodeMin is the least items or children a node keeps after a delete
	// before it merges with a sibling or takes from it.
	nodeMin = nodeMax / 3
	// nodeSizeClass is the allocator's size class a node fills.
	nodeSizeClass = 4096
)

// A compile-time check that a node fits its size class: a negative array
// length does not compile.
var _ [nodeSizeClass - unsafe.Sizeof(node{})]byte

// cowTag identifies the tree allowed to change a node in place. It is
// not zero-sized, so that each allocation has its own address.
type cowTag struct{ _ byte }

type node struct {
	tag *cowTag
	n   int
	// items are a leaf's items in order, or a branch's separators, where
	// items[i] separates kids[i] from kids[i-1] and items[0] is ignored
	// until the child moves to another branch. Slots from n on are zero.
	items [nodeMax + 1]item
	// kids is nil in a leaf.
	kids *[nodeMax + 1]*node
}

type tree struct {
	root   *node
	length int
	// bytes is the size of the items, itemSize each.
	bytes int64
	// sink, when set, is added each change of bytes: a Store's total over
	// its buckets (see Store.attachTreesLocked). A clone has none.
	sink *atomic.Int64
	tag  *cowTag
}

// itemOverhead is what a key costs in the tree besides its key and value
// bytes: its item (56 bytes) in a node.
const itemOverhead = int64(unsafe.Sizeof(item{}))

// itemSize is what it counts for in a tree's Bytes: its key and value
// (with a TTL's 8 bytes) and its item.
func itemSize(it item) int64 { return int64(len(it.key)+len(it.value)) + itemOverhead }

// Bytes is the size of the items: see itemSize.
func (t *tree) Bytes() int64 { return t.bytes }

// grow adds d to the tree's bytes and its sink's.
func (t *tree) grow(d int64) {
	t.bytes += d
	if t.sink != nil {
		t.sink.Add(d)
	}
}

// newTree returns an empty state. A B-tree rather than a map: its Clone is
// copy-on-write and O(1), so a snapshot captures the state without
// stopping writes, and it iterates in key order for snapshots and digests.
func newTree() *tree { return &tree{tag: new(cowTag)} }

// Len is the number of items.
func (t *tree) Len() int { return t.length }

// Clone returns a tree with the same items in O(1), and no sink; see
// tree.
func (t *tree) Clone() *tree {
	c := &tree{root: t.root, length: t.length, bytes: t.bytes, tag: new(cowTag)}
	t.tag = new(cowTag)
	return c
}

// takeLeaves empties the tree and returns the leaves it held, in key
// order. A clone read once (a snapshot being written) is read this way so
// that it lets go of each leaf as soon as it is read: the nodes the
// original copies meanwhile, and the values it replaces, are then kept
// only until the reader has passed them, not until it is done.
func (t *tree) takeLeaves() []*node {
	var leaves []*node
	var walk func(n *node)
	walk = func(n *node) {
		if n.kids == nil {
			leaves = append(leaves, n)
			return
		}
		for _, kid := range n.kids[:n.n] {
			walk(kid)
		}
	}
	if t.root != nil {
		walk(t.root)
	}
	t.root, t.length = nil, 0
	t.grow(-t.bytes)
	return leaves
}

// Get returns the item with key's key.
func (t *tree) Get(key item) (item, bool) {
	n := t.root
	if n == nil {
		return item{}, false
	}
	for n.kids != nil {
		n = n.kids[n.child(key)]
	}
	if i, ok := n.search(key); ok {
		return n.items[i], true
	}
	return item{}, false
}

// Ascend calls fn for each item in key order until fn returns false.
func (t *tree) Ascend(fn func(item) bool) {
	if t.root != nil {
		t.root.ascend(fn)
	}
}

func (n *node) ascend(fn func(item) bool) bool {
	if n.kids == nil {
		for i := range n.n {
			if !fn(n.items[i]) {
				return false
			}
		}
		return true
	}
	for i := range n.n {
		if !n.kids[i].ascend(fn) {
			return false
		}
	}
	return true
}

// ReplaceOrInsert adds it, or replaces the item with its key.
func (t *tree) ReplaceOrInsert(it item) {
	t.upsert(&upsert{it: it})
}

// Put adds it, or replaces the item with its key keeping that item's
// CreateIndex (its TTL is it's), and returns the item it replaced.
func (t *tree) Put(it item) (old item, found bool) {
	u := upsert{it: it, keepCreate: true}
	t.upsert(&u)
	return u.old, u.found
}

// upsert is one insertion: the item, whether a replaced item's CreateIndex
// is kept, and what it replaced.
type upsert struct {
	it         item
	keepCreate bool
	old        item
	found      bool
}

func (t *tree) upsert(u *upsert) {
	if t.root == nil {
		t.root = &node{tag: t.tag}
	}
	t.root = t.mutable(t.root)
	appended := t.insert(t.root, u, true)
	if t.root.n > nodeMax {
		// A new root above the old one resolves it as any overflow.
		old := t.root
		t.root = &node{tag: t.tag, n: 1, kids: new([nodeMax + 1]*node)}
		t.root.kids[0] = old
		t.overflow(t.root, 0, appended)
	}
}

// insert adds u's item under n, which this tree may change. The caller
// resolves an overflow of n; insert reports whether n overflowed with an
// item added at its end while it is the last node of its level
// (rightmost).
func (t *tree) insert(n *node, u *upsert, rightmost bool) (appended bool) {
	if n.kids == nil {
		i, found := n.search(u.it)
		if found {
			u.old, u.found = n.items[i], true
			if u.keepCreate {
				u.it.create = u.old.create&^ttlFlag | u.it.create&ttlFlag
			}
			n.items[i] = u.it
			t.grow(itemSize(u.it) - itemSize(u.old))
			return false
		}
		t.length++
		t.grow(itemSize(u.it))
		n.insertAt(i, u.it, nil)
		return rightmost && i == n.n-1 && n.n > nodeMax
	}
	i := n.child(u.it)
	kid := t.mutableKid(n, i)
	appended = t.insert(kid, u, rightmost && i == n.n-1)
	if kid.n <= nodeMax {
		return false
	}
	return t.overflow(n, i, appended)
}

// overflow resolves n's child i holding nodeMax+1 items or children, and
// reports whether n now overflowed by a child added at its end.
func (t *tree) overflow(n *node, i int, appended bool) bool {
	kid := n.kids[i]
	if !appended {
		// Hand one item to the sibling with more room, if either has any.
		s := -1
		if i > 0 && n.kids[i-1].n < nodeMax {
			s = i - 1
		}
		if i+1 < n.n && n.kids[i+1].n < nodeMax && (s < 0 || n.kids[i+1].n < n.kids[s].n) {
			s = i + 1
		}
		if s >= 0 {
			t.mutableKid(n, s)
			if s < i {
				t.shiftLeft(n, s, 1)
			} else {
				t.shiftRight(n, i, 1)
			}
			return false
		}
	}
	r := t.split(kid, appended)
	n.insertAt(i+1, separator(r.items[0]), r)
	return appended && n.n > nodeMax
}

// split moves the upper part of n, which overflowed, to a new node and
// returns it: only the last item or child when it was added at the end
// of the tree, else the upper half.
func (t *tree) split(n *node, appended bool) *node {
	m := n.n / 2
	if appended {
		m = n.n - 1
	}
	r := &node{tag: t.tag}
	if n.kids != nil {
		r.kids = new([nodeMax + 1]*node)
	}
	moveItems(r, 0, n, m, n.n-m)
	r.n = n.n - m
	n.truncate(m)
	return r
}

// Delete removes the item with key's key, if there is one, and returns it.
func (t *tree) Delete(key item) (old item, found bool) {
	old, found = t.Get(key)
	if !found {
		return old, false // no copy of the path for a missing key
	}
	t.root = t.mutable(t.root)
	t.delete(t.root, key)
	t.length--
	t.grow(-itemSize(old))
	switch {
	case t.root.kids != nil && t.root.n == 1:
		t.root = t.root.kids[0]
	case t.root.n == 0:
		t.root = nil
	}
	return old, true
}

// delete removes key, which is present, from under n, which this tree may
// change.
func (t *tree) delete(n *node, key item) {
	if n.kids == nil {
		i, _ := n.search(key)
		n.removeAt(i)
		return
	}
	i := n.child(key)
	kid := t.mutableKid(n, i)
	t.delete(kid, key)
	if kid.n >= nodeMin || n.n < 2 {
		return
	}
	// Merge with a sibling, or even the two out.
	j := max(i-1, 0) // the pair is kids j and j+1
	l := t.mutableKid(n, j)
	if r := n.kids[j+1]; l.n+r.n <= nodeMax {
		// r is dropped, so it is read, not copied, if it is shared.
		moveItems(l, l.n, r, 0, r.n)
		if r.kids != nil {
			l.items[l.n] = n.items[j+1]
		}
		l.n += r.n
		n.removeAt(j + 1)
		return
	}
	r := t.mutableKid(n, j+1)
	if l.n > r.n {
		t.shiftRight(n, j, (l.n-r.n)/2)
	} else {
		t.shiftLeft(n, j, (r.n-l.n)/2)
	}
}

// shiftLeft moves the first k items or children of n's child j+1 to the
// end of child j. Both must be this tree's to change.
func (t *tree) shiftLeft(n *node, j, k int) {
	l, r := n.kids[j], n.kids[j+1]
	if r.kids != nil {
		r.items[0] = n.items[j+1]
	}
	moveItems(l, l.n, r, 0, k)
	l.n += k
	moveItems(r, 0, r, k, r.n-k)
	r.truncate(r.n - k)
	n.items[j+1] = separator(r.items[0])
}

// shiftRight moves the last k items or children of n's child j to the
// front of child j+1. Both must be this tree's to change.
func (t *tree) shiftRight(n *node, j, k int) {
	l, r := n.kids[j], n.kids[j+1]
	if r.kids != nil {
		r.items[0] = n.items[j+1]
	}
	moveItems(r, k, r, 0, r.n)
	moveItems(r, 0, l, l.n-k, k)
	r.n += k
	l.truncate(l.n - k)
	n.items[j+1] = separator(r.items[0])
}

// mutable returns n if this tree may change it, else a copy it may.
func (t *tree) mutable(n *node) *node {
	if n.tag == t.tag {
		return n
	}
	c := new(node)
	*c = *n
	c.tag = t.tag
	if n.kids != nil {
		kids := *n.kids
		c.kids = &kids
	}
	return c
}

// mutableKid makes n's child i one this tree may change, linked in n
// (which it must be allowed to change), and returns it.
func (t *tree) mutableKid(n *node, i int) *node {
	n.kids[i] = t.mutable(n.kids[i])
	return n.kids[i]
}

// search returns the index of the first item not less than key, and
// whether it has key's key.
func (n *node) search(key item) (int, bool) {
	lo, hi := 0, n.n
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if itemLess(n.items[m], key) {
			lo = m + 1
		} else {
			hi = m
		}
	}
	return lo, lo < n.n && !itemLess(key, n.items[lo])
}

// child returns the index of the branch's child whose keys span key's.
func (n *node) child(key item) int {
	lo, hi := 1, n.n
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if itemLess(key, n.items[m]) {
			hi = m
		} else {
			lo = m + 1
		}
	}
	return lo - 1
}

// insertAt puts it (and, in a branch, kid) at index i.
func (n *node) insertAt(i int, it item, kid *node) {
	copy(n.items[i+1:n.n+1], n.items[i:n.n])
	n.items[i] = it
	if n.kids != nil {
		copy(n.kids[i+1:n.n+1], n.kids[i:n.n])
		n.kids[i] = kid
	}
	n.n++
}

// removeAt removes the item (and, in a branch, the child) at index i.
func (n *node) removeAt(i int) {
	copy(n.items[i:n.n], n.items[i+1:n.n])
	if n.kids != nil {
		copy(n.kids[i:n.n], n.kids[i+1:n.n])
	}
	n.truncate(n.n - 1)
}

// truncate keeps the first m items or children and zeroes the rest, so
// that they keep nothing alive.
func (n *node) truncate(m int) {
	clear(n.items[m:n.n])
	if n.kids != nil {
		clear(n.kids[m:n.n])
	}
	n.n = m
}

// moveItems copies k items, and children in a branch, from src at si to
// dst at di. It leaves both counts alone.
func moveItems(dst *node, di int, src *node, si, k int) {
	copy(dst.items[di:di+k], src.items[si:si+k])
	if src.kids != nil {
		copy(dst.kids[di:di+k], src.kids[si:si+k])
	}
}

// separator is it's key without its value.
func separator(it item) item { return item{prefix: it.prefix, key: it.key} }

// iterator walks a tree's items in key order from where seek put it. It
// must not outlive a change to the tree unless the tree is a clone no one
// changes.
type iterator struct {
	// path holds the nodes from the root to the current leaf and the
	// index taken in each.
	path []iterStep
}

type iterStep struct {
	n *node
	i int
}

// seek returns an iterator at the first item whose key is key or more.
func (t *tree) seek(key string) iterator {
	it := iterator{path: make([]iterStep, 0, 8)}
	n := t.root
	if n == nil {
		return it
	}
	k := item{prefix: keyPrefix(key), key: key}
	for n.kids != nil {
		i := n.child(k)
		it.path = append(it.path, iterStep{n, i})
		n = n.kids[i]
	}
	i, _ := n.search(k)
	it.path = append(it.path, iterStep{n, i})
	if i == n.n {
		it.up()
	}
	return it
}

// valid says whether the iterator is at an item.
func (it *iterator) valid() bool { return len(it.path) > 0 }

// item is the current item; valid must be true.
func (it *iterator) item() item {
	s := it.path[len(it.path)-1]
	return s.n.items[s.i]
}

// next moves to the next item, if there is one.
func (it *iterator) next() {
	s := &it.path[len(it.path)-1]
	if s.i++; s.i < s.n.n {
		return
	}
	it.up()
}

// up leaves the exhausted leaf at the end of the path for the first item
// of the next one, or empties the path at the end of the tree.
func (it *iterator) up() {
	it.path = it.path[:len(it.path)-1]
	for len(it.path) > 0 {
		s := &it.path[len(it.path)-1]
		if s.i++; s.i < s.n.n {
			n := s.n.kids[s.i]
			for n.kids != nil {
				it.path = append(it.path, iterStep{n, 0})
				n = n.kids[0]
			}
			it.path = append(it.path, iterStep{n, 0})
			return
		}
		it.path = it.path[:len(it.path)-1]
	}
}
