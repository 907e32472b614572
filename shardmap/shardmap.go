// Package shardmap is the map from keys to shard groups that a sharded
// raftkv deployment shares: a key hashes to one of N buckets (CRC32 IEEE of
// the key, or of its {tag} part, modulo N, as eraft and Redis Cluster do),
// and a Config says which group serves each bucket and where each group's
// members answer. The config group replicates the list of Configs; shard
// groups apply them one version at a time; clients and routers cache one.
//
// Everything here is a pure function of its arguments, so that every member
// of the config group that applies the same operation to the same Config
// computes the same next Config.
package shardmap

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/crc32"
	"maps"
	"slices"
	"sort"
	"strings"
)

// DefaultBuckets is the number of buckets of a config group created
// without saying otherwise. eraft used 10; 256 leaves room to spread load
// over many groups in even shares.
const DefaultBuckets = 256

// MaxBuckets bounds the number of buckets (a Config carries one gid per
// bucket, and every shard group member keeps state per bucket).
const MaxBuckets = 1 << 14

var (
	// ErrInvalid: an operation's arguments are not usable (bad gid,
	// bucket out of range, no servers, a gid that is not in the config).
	ErrInvalid = errors.New("shardmap: invalid operation")
)

// Config is one version of the bucket map: bucket i is served by group
// Buckets[i] (0: by nobody), and Groups lists the client URLs of each
// group's members. Its JSON form is eraft's:
//
//	{"Version":6,"Buckets":[1,1,1,1,1,0,0,0,0,0],"Groups":{"1":["http://127.0.0.1:6088"]}}
type Config struct {
	Version uint64              `json:"Version"`
	Buckets []uint64            `json:"Buckets"`
	Groups  map[uint64][]string `json:"Groups"`
	// Pinned lists buckets placed by Move: a rebalance leaves them where
	// they are unless their group leaves.
	Pinned []int `json:"Pinned,omitempty"`
}

// Initial is version 0 of a map of n buckets: no groups, every bucket
// served by nobody.
func Initial(n int) (Config, error) {
	if n < 1 || n > MaxBuckets {
		return Config{}, fmt.Errorf("%w: bucket count %d must be 1-%d", ErrInvalid, n, MaxBuckets)
	}
	return Config{Buckets: make([]uint64, n), Groups: map[uint64][]string{}}, nil
}

// Clone returns a deep copy of c.
func (c Config) Clone() Config {
	out := Config{Version: c.Version, Buckets: slices.Clone(c.Buckets), Groups: make(map[uint64][]string, len(c.Groups)), Pinned: slices.Clone(c.Pinned)}
	for gid, servers := range c.Groups {
		out.Groups[gid] = slices.Clone(servers)
	}
	return out
}

// Validate checks that c is internally consistent: every bucket is served
// by 0 or a listed group, every group has servers.
func (c Config) Validate() error {
	if len(c.Buckets) < 1 || len(c.Buckets) > MaxBuckets {
		return fmt.Errorf("%w: config has %d buckets", ErrInvalid, len(c.Buckets))
	}
	for i, gid := range c.Buckets {
		if _, ok := c.Groups[gid]; gid != 0 && !ok {
			return fmt.Errorf("%w: bucket %d is served by group %d, which the config does not list", ErrInvalid, i, gid)
		}
	}
	for gid, servers := range c.Groups {
		if gid == 0 {
			return fmt.Errorf("%w: group id 0 means nobody", ErrInvalid)
		}
		if len(servers) == 0 {
			return fmt.Errorf("%w: group %d lists no servers", ErrInvalid, gid)
		}
	}
	for _, b := range c.Pinned {
		if b < 0 || b >= len(c.Buckets) {
			return fmt.Errorf("%w: pinned bucket %d out of range", ErrInvalid, b)
		}
	}
	return nil
}

// Digest is a short hex digest of c's version, buckets, and groups with
// their servers in order (not Pinned, which says nothing of where the
// buckets are), equal for equal configs however they were carried: a
// group and the config group compare configs of one version by it.
func (c Config) Digest() string {
	h := sha256.New()
	var buf [binary.MaxVarintLen64]byte
	num := func(v uint64) { h.Write(buf[:binary.PutUvarint(buf[:], v)]) }
	num(c.Version)
	num(uint64(len(c.Buckets)))
	for _, g := range c.Buckets {
		num(g)
	}
	gids := c.GIDs()
	num(uint64(len(gids)))
	for _, gid := range gids {
		num(gid)
		num(uint64(len(c.Groups[gid])))
		for _, s := range c.Groups[gid] {
			num(uint64(len(s)))
			h.Write([]byte(s))
		}
	}
	return hex.EncodeToString(h.Sum(nil)[:16])
}

// Owner is the group that serves bucket b (0: nobody, or b out of range).
func (c Config) Owner(b int) uint64 {
	if b < 0 || b >= len(c.Buckets) {
		return 0
	}
	return c.Buckets[b]
}

// OwnerOfKey is the group that serves key.
func (c Config) OwnerOfKey(key string) uint64 { return c.Owner(BucketOf(key, len(c.Buckets))) }

// GIDs lists the groups of c in ascending order.
func (c Config) GIDs() []uint64 {
	return slices.Sorted(maps.Keys(c.Groups))
}

// BucketsOf lists the buckets group gid serves, in ascending order.
func (c Config) BucketsOf(gid uint64) []int {
	var out []int
	for b, g := range c.Buckets {
		if g == gid {
			out = append(out, b)
		}
	}
	return out
}

// HashPart is the part of key that chooses its bucket: the text between
// the first '{' and the first '}' after it, when that is not empty (a
// Redis Cluster hash tag: "{user42}:cart" and "{user42}:profile" share a
// bucket); otherwise the whole key.
func HashPart(key string) string {
	if i := strings.IndexByte(key, '{'); i >= 0 {
		if j := strings.IndexByte(key[i+1:], '}'); j > 0 {
			return key[i+1 : i+1+j]
		}
	}
	return key
}

// BucketOf is the bucket of key among n: CRC32 (IEEE, as eraft) of its
// HashPart, modulo n.
func BucketOf(key string, n int) int {
	if n <= 1 {
		return 0
	}
	return int(crc32.ChecksumIEEE([]byte(HashPart(key))) % uint32(n))
}

// Join adds groups (gid -> client URLs) and rebalances. A gid already in
// the config keeps its buckets and takes the new URLs.
func (c Config) Join(groups map[uint64][]string) (Config, error) {
	if len(groups) == 0 {
		return Config{}, fmt.Errorf("%w: join names no group", ErrInvalid)
	}
	next := c.Clone()
	next.Version++
	for gid, servers := range groups {
		if gid == 0 {
			return Config{}, fmt.Errorf("%w: group id 0 means nobody; use 1 or more", ErrInvalid)
		}
		if len(servers) == 0 {
			return Config{}, fmt.Errorf("%w: group %d lists no servers", ErrInvalid, gid)
		}
		for _, s := range servers {
			if strings.TrimSpace(s) == "" {
				return Config{}, fmt.Errorf("%w: group %d lists an empty server", ErrInvalid, gid)
			}
		}
		next.Groups[gid] = slices.Clone(servers)
	}
	next.rebalance()
	return next, nil
}

// Leave removes groups and hands their buckets to the others, rebalancing.
// Every gid must be in the config, and some group must stay: the keys of
// the last one would have nowhere to go.
func (c Config) Leave(gids []uint64) (Config, error) {
	if len(gids) == 0 {
		return Config{}, fmt.Errorf("%w: leave names no group", ErrInvalid)
	}
	staying := maps.Clone(c.Groups)
	for _, gid := range gids {
		delete(staying, gid)
	}
	if len(staying) == 0 && len(c.Groups) > 0 {
		return Config{}, fmt.Errorf("%w: the last group cannot leave; its keys would have nowhere to go", ErrInvalid)
	}
	next := c.Clone()
	next.Version++
	for _, gid := range gids {
		if _, ok := next.Groups[gid]; !ok {
			return Config{}, fmt.Errorf("%w: group %d is not in config %d", ErrInvalid, gid, c.Version)
		}
		delete(next.Groups, gid)
	}
	for b, g := range next.Buckets {
		if _, ok := next.Groups[g]; !ok {
			next.Buckets[b] = 0
		}
	}
	next.Pinned = slices.DeleteFunc(next.Pinned, func(b int) bool { return next.Buckets[b] == 0 })
	next.rebalance()
	return next, nil
}

// Move places bucket b on group gid by hand and pins it there: later
// rebalances leave it unless gid leaves.
func (c Config) Move(b int, gid uint64) (Config, error) {
	if b < 0 || b >= len(c.Buckets) {
		return Config{}, fmt.Errorf("%w: bucket %d is not in 0-%d", ErrInvalid, b, len(c.Buckets)-1)
	}
	if _, ok := c.Groups[gid]; !ok {
		return Config{}, fmt.Errorf("%w: group %d is not in config %d", ErrInvalid, gid, c.Version)
	}
	next := c.Clone()
	next.Version++
	next.Buckets[b] = gid
	if !slices.Contains(next.Pinned, b) {
		next.Pinned = append(next.Pinned, b)
		slices.Sort(next.Pinned)
	}
	return next, nil
}

// rebalance spreads the buckets evenly over the groups with the fewest
// moves, deterministically. Each group's target is n/g buckets, and the
// n%g groups holding most today (ties: lower gid) get one more, so the
// groups that must give up buckets give up as few as possible. Buckets of
// nobody and a group's unpinned buckets beyond its target (its highest
// first) go, lowest first, to the groups below their target, the
// emptiest first (ties: lower gid). Pinned buckets stay, and count toward
// their group's share.
func (c *Config) rebalance() {
	gids := c.GIDs()
	if len(gids) == 0 {
		clear(c.Buckets)
		c.Pinned = nil
		return
	}
	count := map[uint64]int{}
	for _, g := range c.Buckets {
		if g != 0 {
			count[g]++
		}
	}
	byLoad := slices.Clone(gids)
	sort.SliceStable(byLoad, func(i, j int) bool { return count[byLoad[i]] > count[byLoad[j]] })
	n, g := len(c.Buckets), len(gids)
	target := map[uint64]int{}
	for i, gid := range byLoad {
		target[gid] = n / g
		if i < n%g {
			target[gid]++
		}
	}
	pinned := map[int]bool{}
	for _, b := range c.Pinned {
		pinned[b] = true
	}
	var free []int
	for b, gid := range c.Buckets {
		if gid == 0 {
			free = append(free, b)
		}
	}
	for _, gid := range gids {
		mine := c.BucketsOf(gid)
		for i := len(mine) - 1; i >= 0 && count[gid] > target[gid]; i-- {
			if b := mine[i]; !pinned[b] {
				c.Buckets[b] = 0
				count[gid]--
				free = append(free, b)
			}
		}
	}
	slices.Sort(free)
	for _, b := range free {
		var best uint64
		for _, gid := range gids {
			if count[gid] >= target[gid] {
				continue
			}
			if best == 0 || count[gid] < count[best] {
				best = gid
			}
		}
		if best == 0 {
			// Every group is at its target while pinned buckets hold some
			// above theirs: the leftovers go to the emptiest group.
			best = gids[0]
			for _, gid := range gids {
				if count[gid] < count[best] {
					best = gid
				}
			}
		}
		c.Buckets[b] = best
		count[best]++
	}
}

// History is the config group's replicated state: every Config, version 0
// first, each one the previous with one operation applied.
type History struct {
	Configs []Config `json:"configs"`
}

// NewHistory starts a history at Initial(n).
func NewHistory(n int) (History, error) {
	c, err := Initial(n)
	if err != nil {
		return History{}, err
	}
	return History{Configs: []Config{c}}, nil
}

// Latest is the newest config.
func (h History) Latest() Config { return h.Configs[len(h.Configs)-1] }

// Query returns config version v, or the latest when v is negative or
// past the latest (as 6.824's shardctrler).
func (h History) Query(v int64) Config {
	if v < 0 || v >= int64(len(h.Configs)) {
		return h.Latest()
	}
	return h.Configs[v]
}

// Append records next, which must be the latest config's successor.
func (h *History) Append(next Config) error {
	if want := h.Latest().Version + 1; next.Version != want {
		return fmt.Errorf("%w: config version %d does not follow %d", ErrInvalid, next.Version, want-1)
	}
	h.Configs = append(h.Configs, next)
	return nil
}
