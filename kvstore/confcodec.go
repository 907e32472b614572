package kvstore

import (
	"bytes"
	"maps"
	"slices"

	"github.com/raftkv/raftkv/shardmap"
)

// Entries and snapshots carry configs and config operations without gob
// maps: gob sizes a map by the count its input claims before it reads a
// single entry, so one corrupt or hostile count would have a member
// allocate gigabytes. Slices it grows as it reads, and the binary forms
// here bound every count by the input's length.

// maxServerURL bounds one server URL of a config.
const maxServerURL = 4096

// encodeConfig writes c: its version; its bucket count and each bucket's
// group; its group count and, by ascending gid, each gid, its server count
// and servers; its pinned bucket count and buckets.
func encodeConfig(e *binWriter, c *shardmap.Config) {
	e.uvarint(c.Version)
	e.uvarint(uint64(len(c.Buckets)))
	for _, g := range c.Buckets {
		e.uvarint(g)
	}
	gids := slices.Sorted(maps.Keys(c.Groups))
	e.uvarint(uint64(len(gids)))
	for _, gid := range gids {
		e.uvarint(gid)
		e.uvarint(uint64(len(c.Groups[gid])))
		for _, s := range c.Groups[gid] {
			e.field(unsafeBytes(s))
		}
	}
	e.uvarint(uint64(len(c.Pinned)))
	for _, b := range c.Pinned {
		e.uvarint(uint64(b))
	}
}

// decodeConfig reads what encodeConfig wrote and checks that it is a
// valid config (shardmap.Config.Validate).
func decodeConfig(d *binReader) shardmap.Config {
	c := shardmap.Config{Version: d.uvarint("config version"), Groups: map[uint64][]string{}}
	n := d.count("config bucket count")
	if d.err == nil && n > shardmap.MaxBuckets {
		d.fail("config of %d buckets", n)
	}
	for i := 0; i < n && d.err == nil; i++ {
		c.Buckets = append(c.Buckets, d.uvarint("config bucket"))
	}
	groups := d.count("config group count")
	prev := uint64(0)
	for i := 0; i < groups && d.err == nil; i++ {
		gid := d.uvarint("config gid")
		if d.err == nil && gid <= prev {
			d.fail("config gids out of order at %d", i)
		}
		prev = gid
		servers := make([]string, 0, 1)
		m := d.count("config server count")
		for j := 0; j < m && d.err == nil; j++ {
			servers = append(servers, string(d.field("config server", maxServerURL)))
		}
		c.Groups[gid] = servers
	}
	pinned := d.count("config pinned count")
	for i := 0; i < pinned && d.err == nil; i++ {
		c.Pinned = append(c.Pinned, int(min(d.uvarint("config pinned bucket"), shardmap.MaxBuckets)))
	}
	if d.err == nil {
		if err := c.Validate(); err != nil {
			d.fail("config %d: %v", c.Version, err)
		}
	}
	return c
}

func marshalConfig(c *shardmap.Config) []byte {
	var buf bytes.Buffer
	encodeConfig(&binWriter{w: &buf}, c) // a bytes.Buffer does not fail
	return buf.Bytes()
}

// unmarshalConfig decodes what marshalConfig wrote, all of it.
func unmarshalConfig(data []byte) (shardmap.Config, error) {
	r := bytes.NewReader(data)
	d := &binReader{r: r, limit: len(data)}
	c := decodeConfig(d)
	if d.err == nil && r.Len() != 0 {
		d.fail("%d bytes after the config", r.Len())
	}
	if d.err != nil {
		return shardmap.Config{}, detailf(ErrBadShardOp, "config: %v", d.err)
	}
	return c, nil
}

// wireConfigOp is ConfigOp as an entry carries it: Join as a list by
// ascending gid.
type wireConfigOp struct {
	Join  []wireGroup
	Leave []uint64
	Move  *MoveOp
}

type wireGroup struct {
	GID     uint64
	Servers []string
}

func (op *ConfigOp) wire() *wireConfigOp {
	w := &wireConfigOp{Leave: op.Leave, Move: op.Move}
	for _, gid := range slices.Sorted(maps.Keys(op.Join)) {
		w.Join = append(w.Join, wireGroup{GID: gid, Servers: op.Join[gid]})
	}
	return w
}

// op returns the ConfigOp w carries; a gid listed twice is refused.
func (w *wireConfigOp) op() (ConfigOp, error) {
	op := ConfigOp{Leave: w.Leave, Move: w.Move}
	if len(w.Join) > 0 {
		op.Join = make(map[uint64][]string, len(w.Join))
	}
	for _, g := range w.Join {
		if _, dup := op.Join[g.GID]; dup {
			return ConfigOp{}, detailf(ErrBadConfigOp, "join names group %d twice", g.GID)
		}
		op.Join[g.GID] = g.Servers
	}
	return op, nil
}
