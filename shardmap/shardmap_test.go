package shardmap

import (
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"testing"
)

func TestHashPart(t *testing.T) {
	for _, tc := range []struct{ key, want string }{
		{"plain", "plain"},
		{"{user42}:cart", "user42"},
		{"x{user42}y", "user42"},
		{"{}:empty-tag", "{}:empty-tag"},
		{"{a}{b}", "a"},
		{"no}close{", "no}close{"},
		{"{open", "{open"},
		{"a{b}}", "b"},
	} {
		if got := HashPart(tc.key); got != tc.want {
			t.Errorf("HashPart(%q) = %q, want %q", tc.key, got, tc.want)
		}
	}
}

func TestBucketOfIsCRC32ModN(t *testing.T) {
	// Values computed independently: crc32 IEEE of "foo" is 0x8c736521.
	if got, want := BucketOf("foo", 256), int(uint32(0x8c736521)%256); got != want {
		t.Fatalf("BucketOf(foo, 256) = %d, want %d", got, want)
	}
	if got, want := BucketOf("foo", 10), int(uint32(0x8c736521)%10); got != want {
		t.Fatalf("BucketOf(foo, 10) = %d, want %d", got, want)
	}
	if BucketOf("{foo}:a", 256) != BucketOf("foo", 256) || BucketOf("x{foo}", 256) != BucketOf("{foo}:b", 256) {
		t.Fatal("keys with the same tag are in different buckets")
	}
	if BucketOf("anything", 1) != 0 {
		t.Fatal("one bucket: every key is in bucket 0")
	}
}

func TestConfigJSONIsErafts(t *testing.T) {
	c := Config{Version: 6, Buckets: []uint64{1, 1, 1, 1, 1, 0, 0, 0, 0, 0},
		Groups: map[uint64][]string{1: {"127.0.0.1:6088", "127.0.0.1:6089", "127.0.0.1:6090"}}}
	b, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"Version":6,"Buckets":[1,1,1,1,1,0,0,0,0,0],"Groups":{"1":["127.0.0.1:6088","127.0.0.1:6089","127.0.0.1:6090"]}}`
	if string(b) != want {
		t.Fatalf("JSON %s\nwant %s", b, want)
	}
	var back Config
	if err := json.Unmarshal([]byte(want), &back); err != nil || !reflect.DeepEqual(back, c) {
		t.Fatalf("round trip: %+v, %v", back, err)
	}
}

func counts(c Config) map[uint64]int {
	m := map[uint64]int{}
	for _, g := range c.Buckets {
		m[g]++
	}
	return m
}

func moves(a, b Config) int {
	n := 0
	for i := range a.Buckets {
		if a.Buckets[i] != b.Buckets[i] {
			n++
		}
	}
	return n
}

// minMoves is the fewest buckets any balanced assignment must move from
// c's: the buckets of nobody, plus what groups hold beyond the best
// targets (the n%g extra shares going to the groups holding most).
func minMoves(c Config, gids []uint64) int {
	n, g := len(c.Buckets), len(gids)
	cnt := counts(c)
	held := make([]int, 0, g)
	for _, gid := range gids {
		held = append(held, cnt[gid])
	}
	slices.Sort(held)
	slices.Reverse(held)
	m := 0
	for i, h := range held {
		target := n / g
		if i < n%g {
			target++
		}
		m += max(0, h-target)
	}
	for b, gid := range c.Buckets {
		if !slices.Contains(gids, gid) {
			_ = b
			m++
		}
	}
	return m
}

func checkBalanced(t *testing.T, c Config) {
	t.Helper()
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if len(c.Groups) == 0 {
		for _, g := range c.Buckets {
			if g != 0 {
				t.Fatalf("no groups, but a bucket is served by %d", g)
			}
		}
		return
	}
	cnt := counts(c)
	if cnt[0] != 0 {
		t.Fatalf("%d buckets served by nobody with %d groups", cnt[0], len(c.Groups))
	}
	lo, hi := len(c.Buckets), 0
	for gid := range c.Groups {
		lo, hi = min(lo, cnt[gid]), max(hi, cnt[gid])
	}
	if hi-lo > 1 {
		t.Fatalf("unbalanced: %v", cnt)
	}
}

func TestJoinLeaveBalanceWithFewestMoves(t *testing.T) {
	for _, n := range []int{1, 7, 10, 256} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			c, err := Initial(n)
			if err != nil {
				t.Fatal(err)
			}
			rng := rand.New(rand.NewPCG(uint64(n), 1))
			var next uint64 = 1
			for step := 0; step < 200; step++ {
				var out Config
				var err error
				gids := c.GIDs()
				switch {
				case len(gids) <= 1 || rng.IntN(3) > 0 && len(gids) < 12:
					join := map[uint64][]string{}
					for k := rng.IntN(2) + 1; k > 0; k-- {
						join[next] = []string{fmt.Sprintf("http://127.0.0.1:%d", next)}
						next++
					}
					out, err = c.Join(join)
				default:
					leave := []uint64{gids[rng.IntN(len(gids))]}
					out, err = c.Leave(leave)
				}
				if err != nil {
					t.Fatal(err)
				}
				if out.Version != c.Version+1 {
					t.Fatalf("version %d after %d", out.Version, c.Version)
				}
				checkBalanced(t, out)
				if got, want := moves(c, out), minMoves(c, out.GIDs()); got != want {
					t.Fatalf("step %d: moved %d buckets, fewest possible %d\nbefore %v\nafter  %v", step, got, want, c.Buckets, out.Buckets)
				}
				c = out
			}
		})
	}
}

func TestRebalanceIsDeterministic(t *testing.T) {
	c, _ := Initial(256)
	a, _ := c.Join(map[uint64][]string{3: {"c"}, 1: {"a"}, 2: {"b"}})
	for i := 0; i < 20; i++ {
		b, _ := c.Join(map[uint64][]string{2: {"b"}, 3: {"c"}, 1: {"a"}})
		if !reflect.DeepEqual(a, b) {
			t.Fatal("the same join gave two different configs")
		}
	}
}

func TestMovePinsAgainstRebalance(t *testing.T) {
	c, _ := Initial(10)
	c, _ = c.Join(map[uint64][]string{1: {"a"}})
	c, _ = c.Join(map[uint64][]string{2: {"b"}})
	b := c.BucketsOf(2)[0]
	c, err := c.Move(b, 1)
	if err != nil || c.Owner(b) != 1 {
		t.Fatalf("move: %v, owner %d", err, c.Owner(b))
	}
	c, _ = c.Join(map[uint64][]string{3: {"c"}})
	if c.Owner(b) != 1 {
		t.Fatalf("pinned bucket %d moved to %d by a join", b, c.Owner(b))
	}
	c, _ = c.Leave([]uint64{1})
	if c.Owner(b) == 1 || c.Owner(b) == 0 || slices.Contains(c.Pinned, b) {
		t.Fatalf("bucket %d of a group that left: owner %d, pinned %v", b, c.Owner(b), c.Pinned)
	}
	checkBalanced(t, c)
}

func TestBadOperations(t *testing.T) {
	c, _ := Initial(10)
	c, _ = c.Join(map[uint64][]string{1: {"a"}})
	for name, op := range map[string]func() (Config, error){
		"join none":      func() (Config, error) { return c.Join(nil) },
		"join gid 0":     func() (Config, error) { return c.Join(map[uint64][]string{0: {"x"}}) },
		"join no server": func() (Config, error) { return c.Join(map[uint64][]string{2: {}}) },
		"leave unknown":  func() (Config, error) { return c.Leave([]uint64{9}) },
		"leave none":     func() (Config, error) { return c.Leave(nil) },
		"leave the last": func() (Config, error) { return c.Leave([]uint64{1}) },
		"move range":     func() (Config, error) { return c.Move(10, 1) },
		"move negative":  func() (Config, error) { return c.Move(-1, 1) },
		"move unknown":   func() (Config, error) { return c.Move(0, 9) },
	} {
		if _, err := op(); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: %v, want ErrInvalid", name, err)
		}
	}
	if _, err := Initial(0); !errors.Is(err, ErrInvalid) {
		t.Error("Initial(0) accepted")
	}
}

func TestHistoryQuery(t *testing.T) {
	h, _ := NewHistory(4)
	c1, _ := h.Latest().Join(map[uint64][]string{1: {"a"}})
	if err := h.Append(c1); err != nil {
		t.Fatal(err)
	}
	if err := h.Append(c1); err == nil {
		t.Fatal("appended a config out of order")
	}
	if h.Query(-1).Version != 1 || h.Query(0).Version != 0 || h.Query(99).Version != 1 {
		t.Fatal("query")
	}
}

func FuzzBucketOf(f *testing.F) {
	for _, s := range []string{"", "{", "}", "{}", "{a}", "a{b}c", "\xff{\xfe}"} {
		f.Add(s, 256)
	}
	f.Fuzz(func(t *testing.T, key string, n int) {
		if n < 1 || n > MaxBuckets {
			return
		}
		b := BucketOf(key, n)
		if b < 0 || b >= n {
			t.Fatalf("BucketOf(%q, %d) = %d", key, n, b)
		}
		if p := HashPart(key); BucketOf(p, n) != b && HashPart(p) == p {
			t.Fatalf("key %q and its hash part %q are in different buckets", key, p)
		}
	})
}

func TestDigest(t *testing.T) {
	c := Config{Version: 3, Buckets: []uint64{1, 2, 1}, Groups: map[uint64][]string{1: {"http://a", "http://b"}, 2: {"http://c"}}, Pinned: []int{1}}
	b, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	var back Config
	if err := json.Unmarshal(b, &back); err != nil || back.Digest() != c.Digest() {
		t.Fatalf("digest after a JSON round trip: %s, want %s (%v)", back.Digest(), c.Digest(), err)
	}
	unpinned := c.Clone()
	unpinned.Pinned = nil
	if unpinned.Digest() != c.Digest() {
		t.Error("Pinned changed the digest")
	}
	for name, change := range map[string]func(*Config){
		"version":      func(c *Config) { c.Version++ },
		"a bucket":     func(c *Config) { c.Buckets[0] = 2 },
		"server order": func(c *Config) { c.Groups[1] = []string{"http://b", "http://a"} },
		"a group":      func(c *Config) { c.Groups[3] = []string{"http://d"} },
	} {
		d := c.Clone()
		change(&d)
		if d.Digest() == c.Digest() {
			t.Errorf("changing %s kept the digest", name)
		}
	}
}
