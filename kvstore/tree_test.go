package kvstore

import (
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"testing"
)

// checkTree verifies t's structure and that it holds exactly want.
func checkTree(t *testing.T, tr *tree, want map[string]string) {
	t.Helper()
	if tr.Len() != len(want) {
		t.Fatalf("Len() = %d, want %d", tr.Len(), len(want))
	}
	var size int64
	for k, v := range want {
		size += int64(len(k)+len(v)) + itemOverhead
	}
	if tr.Bytes() != size {
		t.Fatalf("Bytes() = %d, want %d", tr.Bytes(), size)
	}
	if tr.root != nil {
		if n := checkNode(t, tr.root, nil, nil, true); n != len(want) {
			t.Fatalf("%d items in the nodes, want %d", n, len(want))
		}
	} else if len(want) > 0 {
		t.Fatalf("no root, want %d items", len(want))
	}
	keys := make([]string, 0, len(want))
	for k := range want {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	i := 0
	tr.Ascend(func(it item) bool {
		if i >= len(keys) || it.key != keys[i] || it.value != want[it.key] || it.prefix != keyPrefix(it.key) {
			t.Fatalf("Ascend item %d = %q=%q, want %q", i, it.key, it.value, keys[min(i, len(keys)-1)])
		}
		i++
		return true
	})
	if i != len(keys) {
		t.Fatalf("Ascend gave %d items, want %d", i, len(keys))
	}
	for _, k := range keys {
		it, ok := tr.Get(newItem(k, nil))
		if !ok || it.value != want[k] {
			t.Fatalf("Get(%q) = %q, %v; want %q", k, it.value, ok, want[k])
		}
	}
	if _, ok := tr.Get(newItem("\xffmissing", nil)); ok {
		t.Fatal("Get of a missing key found it")
	}
}

// checkNode verifies the subtree at n, whose keys must lie in [lo, hi)
// (nil: unbounded), and returns its item count.
func checkNode(t *testing.T, n *node, lo, hi *item, root bool) int {
	t.Helper()
	if n.n > nodeMax || (!root && n.n < 1) || (root && n.kids != nil && n.n < 2) {
		t.Fatalf("node holds %d (max %d, root %v, branch %v)", n.n, nodeMax, root, n.kids != nil)
	}
	for i := n.n; i < len(n.items); i++ {
		if n.items[i] != (item{}) || (n.kids != nil && n.kids[i] != nil) {
			t.Fatalf("slot %d beyond the node's %d is not zero", i, n.n)
		}
	}
	if n.kids == nil {
		for i := range n.n {
			it := &n.items[i]
			if (lo != nil && itemLess(*it, *lo)) || (hi != nil && !itemLess(*it, *hi)) || (i > 0 && !itemLess(n.items[i-1], *it)) {
				t.Fatalf("leaf item %q out of order or bounds", it.key)
			}
		}
		return n.n
	}
	total := 0
	for i := range n.n {
		if i > 0 && n.items[i].value != "" {
			t.Fatalf("separator %q holds a value", n.items[i].key)
		}
		if i > 1 && !itemLess(n.items[i-1], n.items[i]) {
			t.Fatalf("separators out of order at %d", i)
		}
		klo, khi := lo, hi
		if i > 0 {
			klo = &n.items[i]
		}
		if i+1 < n.n {
			khi = &n.items[i+1]
		}
		if (n.kids[i].kids == nil) != (n.kids[0].kids == nil) {
			t.Fatal("leaves at different depths")
		}
		total += checkNode(t, n.kids[i], klo, khi, false)
	}
	return total
}

// frozenTree is a clone of a tree and the items it must keep however the
// tree it was cloned from changes.
type frozenTree struct {
	tree *tree
	want map[string]string
}

func freeze(tr *tree, want map[string]string) frozenTree {
	return frozenTree{tr.Clone(), maps.Clone(want)}
}

// branchLevels is the number of levels of branches above the leaves.
func branchLevels(tr *tree) int {
	d := 0
	for n := tr.root; n != nil && n.kids != nil; n = n.kids[0] {
		d++
	}
	return d
}

// fill is the share of the leaves' slots that hold items.
func fill(tr *tree) float64 {
	items, leaves := 0, 0
	var walk func(n *node)
	walk = func(n *node) {
		if n.kids == nil {
			items += n.n
			leaves++
			return
		}
		for i := range n.n {
			walk(n.kids[i])
		}
	}
	if tr.root != nil {
		walk(tr.root)
	}
	return float64(items) / float64(leaves*nodeMax)
}

func TestTreeMatchesMap(t *testing.T) {
	for _, tc := range []struct {
		name   string
		key    func(r *rand.Rand, i int) string
		ops    int
		drop   float64 // share of deletes
		every  int     // check every so many ops
		levels int     // the least levels of branches the tree must reach
	}{
		{"random", func(r *rand.Rand, _ int) string { return fmt.Sprintf("k%06d", r.IntN(20000)) }, 60000, 0.3, 7919, 0},
		{"few keys", func(r *rand.Rand, _ int) string { return fmt.Sprint(r.IntN(100)) }, 20000, 0.5, 997, 0},
		{"ascending", func(_ *rand.Rand, i int) string { return fmt.Sprintf("%08d", i) }, 30000, 0, 7919, 0},
		{"descending", func(_ *rand.Rand, i int) string { return fmt.Sprintf("%08d", 1e7-i) }, 30000, 0, 7919, 0},
		{"long shared prefix", func(r *rand.Rand, _ int) string { return fmt.Sprintf("prefix-of-all/%d", r.IntN(5000)) }, 30000, 0.4, 4999, 0},
		{"three levels of branches", func(r *rand.Rand, _ int) string { return fmt.Sprintf("%07d", r.IntN(1000000)) }, 400000, 0.15, 199999, 3},
		{"delete heavy", func(r *rand.Rand, _ int) string { return fmt.Sprintf("%05d", r.IntN(3000)) }, 40000, 0.7, 3001, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := rand.New(rand.NewPCG(1, uint64(len(tc.name))))
			tr, want := newTree(), map[string]string{}
			for i := range tc.ops {
				k := tc.key(r, i)
				if r.Float64() < tc.drop {
					tr.Delete(newItem(k, nil))
					delete(want, k)
				} else {
					v := fmt.Sprintf("v%d", i)
					tr.ReplaceOrInsert(newItem(k, []byte(v)))
					want[k] = v
				}
				if i%tc.every == 0 {
					checkTree(t, tr, want)
				}
			}
			checkTree(t, tr, want)
			if d := branchLevels(tr); d < tc.levels {
				t.Fatalf("%d levels of branches, want at least %d", d, tc.levels)
			}
			// Delete everything, in random order.
			keys := make([]string, 0, len(want))
			for k := range want {
				keys = append(keys, k)
			}
			slices.Sort(keys)
			r.Shuffle(len(keys), func(i, j int) { keys[i], keys[j] = keys[j], keys[i] })
			for i, k := range keys {
				tr.Delete(newItem(k, nil))
				delete(want, k)
				if i%max(1009, len(keys)/8) == 0 {
					checkTree(t, tr, want)
				}
			}
			checkTree(t, tr, want)
		})
	}
}

func TestTreeCloneIsolation(t *testing.T) {
	r := rand.New(rand.NewPCG(2, 3))
	tr, want := newTree(), map[string]string{}
	var clones []frozenTree
	for i := range 40000 {
		k := fmt.Sprintf("%05d", r.IntN(8000))
		if r.IntN(3) == 0 {
			tr.Delete(newItem(k, nil))
			delete(want, k)
		} else {
			v := fmt.Sprint(i)
			tr.ReplaceOrInsert(newItem(k, []byte(v)))
			want[k] = v
		}
		if i%5000 == 4999 {
			clones = append(clones, freeze(tr, want))
		}
	}
	checkTree(t, tr, want)
	for _, c := range clones {
		checkTree(t, c.tree, c.want)
	}
	// A clone changed in turn leaves the original alone.
	c := clones[len(clones)-1]
	for i := range 3000 {
		k := fmt.Sprintf("%05d", r.IntN(8000))
		c.tree.ReplaceOrInsert(newItem(k, []byte("clone")))
		c.want[k] = "clone"
		if i%2 == 0 {
			k = fmt.Sprintf("%05d", r.IntN(8000))
			c.tree.Delete(newItem(k, nil))
			delete(c.want, k)
		}
	}
	checkTree(t, c.tree, c.want)
	checkTree(t, tr, want)

	var seen []string
	tr.Ascend(func(it item) bool {
		seen = append(seen, it.key)
		return len(seen) < 3
	})
	if len(seen) != 3 {
		t.Fatalf("Ascend went on after false: %d items", len(seen))
	}
}

// TestTreeFill is why the tree is not google/btree: ascending keys, even
// when concurrent writers apply them slightly out of order, fill the
// leaves instead of leaving them half full.
func TestTreeFill(t *testing.T) {
	const n = 100000
	r := rand.New(rand.NewPCG(4, 5))
	for _, tc := range []struct {
		name string
		keys func() []int
		min  float64
	}{
		{"ascending", func() []int {
			k := make([]int, n)
			for i := range k {
				k[i] = i
			}
			return k
		}, 0.99},
		{"ascending, shuffled within 128", func() []int {
			k := make([]int, n)
			for i := range k {
				k[i] = i
			}
			for i := 0; i < n; i += 128 {
				w := k[i:min(i+128, n)]
				r.Shuffle(len(w), func(a, b int) { w[a], w[b] = w[b], w[a] })
			}
			return k
		}, 0.9},
		{"random", func() []int { return r.Perm(n) }, 0.75},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tr := newTree()
			for _, k := range tc.keys() {
				tr.ReplaceOrInsert(newItem(fmt.Sprintf("key%08d", k), []byte("v")))
			}
			if f := fill(tr); f < tc.min {
				t.Fatalf("leaves %.2f full, want at least %.2f", f, tc.min)
			} else {
				t.Logf("leaves %.3f full", f)
			}
		})
	}
}

// FuzzTree applies puts, deletes and clones read from the input to a tree
// and a map, and checks that they agree and that every clone kept is
// unchanged.
//
// Checking a clone costs a copy of the map and a walk of the clone, so an
// input keeps its first clonesKept clones to check; a later clone op
// clones and drops the clone, as a finished snapshot does, which still
// gives the tree new tags. Ops past opsMax are ignored. Without these
// bounds an input of 20000 ops took 6 s, not 10 ms, and the fuzzer stalled
// minimizing such inputs.
func FuzzTree(f *testing.F) {
	const clonesKept, opsMax = 16, 5000
	f.Add([]byte{0, 1, 2, 0, 1, 3, 1, 1, 2, 2, 0, 0})
	asc := make([]byte, 0, 3*700)
	for i := range 700 {
		asc = append(asc, 0, byte(i>>8), byte(i))
	}
	f.Add(asc)
	f.Fuzz(func(t *testing.T, ops []byte) {
		ops = ops[:min(len(ops), 3*opsMax)]
		tr, want := newTree(), map[string]string{}
		var clones []frozenTree
		for i := 0; i+3 <= len(ops); i += 3 {
			k := fmt.Sprintf("%02x%02x", ops[i+1], ops[i+2])
			switch ops[i] % 8 {
			case 0, 1, 2, 3, 4:
				tr.ReplaceOrInsert(newItem(k, []byte{byte(i)}))
				want[k] = string([]byte{byte(i)})
			case 5, 6:
				tr.Delete(newItem(k, nil))
				delete(want, k)
			case 7:
				if len(clones) < clonesKept {
					clones = append(clones, freeze(tr, want))
				} else {
					tr.Clone()
				}
			}
		}
		checkTree(t, tr, want)
		for _, c := range clones {
			checkTree(t, c.tree, c.want)
		}
	})
}
