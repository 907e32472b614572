package kvstore

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"time"

	"github.com/raftkv/raftkv/shardmap"
	"go.uber.org/zap"
)

// Snapshot format, binary-safe and streamed so that neither writing nor
// reading needs the whole state as one buffer:
//
//	magic "raftkv-kv-snapshot-3\n"
//	header: uvarints mode, group, bucket count, bucket sections; the
//	  sessions (sessionsEncode); a shard group member's config, previous
//	  config (encodeConfig), bucket statuses and joined flag; a config
//	  group member's configs
//	per bucket section (one for a config group member, holding no keys):
//	  uvarint version floor (see bucket.floor), uvarint key count; per
//	  key, in key order: uvarint length, key, uvarint length, value,
//	  uvarints CreateIndex, ModIndex and TTL (ns);
//	  then the bucket's dedup table (dedupTable.encode, transaction
//	  results included)
//	CRC-32C (big endian) of everything before it
//
// No part is gob: gob sizes a map by the count its input claims before it
// reads an element, so a corrupt count would allocate without bound; here
// no count may claim more than the file holds.
//
// Older formats are read too, so that a member of a new release catches
// up from a snapshot an older one wrote:
//
//   - format 2 ("raftkv-kv-snapshot-2\n") is format 3 without versions,
//     TTLs or transaction results;
//   - format 1 ("raftkv-kv-snapshot-1\n", a plain member from before
//     buckets): a length-prefixed gob header (key count, sessions), then
//     the keys and values, then the checksum. Its keys are read up to the
//     checksum and the checksum checked before the header is decoded, so
//     a corrupt header never reaches gob; its keys are spread over this
//     store's buckets.
//
// The releases that wrote formats 1 and 2 kept no versions, and left
// their keys at version 0 in the entries they wrote too (batch.Format):
// so a key restored from either has CreateIndex and ModIndex 0, as it has
// on a member that applied those entries, until its next write, and no
// TTL.
const (
	snapshotMagic   = "raftkv-kv-snapshot-3\n"
	snapshotMagicV2 = "raftkv-kv-snapshot-2\n"
	snapshotMagicV1 = "raftkv-kv-snapshot-1\n"
)

var (
	// ErrCorruptSnapshot means a snapshot's data does not decode.
	ErrCorruptSnapshot = errors.New("kvstore: corrupt snapshot")
	// ErrSnapshotMismatch means a snapshot is of a store of another mode,
	// group or bucket count than the one restoring it: its members were
	// started with different settings.
	ErrSnapshotMismatch = errors.New("kvstore: snapshot of another kind of store")
)

// snapState is the whole state of a store, as a snapshot captures it.
type snapState struct {
	mode     mode
	group    uint64
	nbuckets int
	// buckets holds each bucket's keys and dedup table; a config group
	// member has one, holding only the dedup table of config operations.
	buckets  []bucket
	sessions map[uint64]*session
	// shard is set for a shard group member.
	shard *shardState
	// history is set for a config group member.
	history *shardmap.History
	// format1 says st was read from format 1, which has no bucket count:
	// its keys are all in buckets[0] until spread.
	format1 bool
}

// describe names the kind of store st is of, for a mismatch.
func (st *snapState) describe() string {
	switch {
	case st.format1:
		return "format-1 plain member"
	case st.mode == modeShard:
		return fmt.Sprintf("shard group %d member with %d buckets", st.group, st.nbuckets)
	case st.mode == modeConfig:
		return fmt.Sprintf("config group member of %d buckets", st.nbuckets)
	}
	return fmt.Sprintf("%s member with %d buckets", st.mode, st.nbuckets)
}

// writeSnapshot streams st to w. It empties st's trees, which must be
// clones no one else reads (see tree.takeLeaves).
func writeSnapshot(w io.Writer, st *snapState) error {
	bw := bufio.NewWriterSize(w, 256<<10)
	e := &binWriter{w: bw}
	e.write([]byte(snapshotMagic))
	e.uvarint(uint64(st.mode))
	e.uvarint(st.group)
	e.uvarint(uint64(st.nbuckets))
	e.uvarint(uint64(len(st.buckets)))
	encodeSessions(e, st.sessions)
	switch st.mode {
	case modeShard:
		encodeConfig(e, &st.shard.config)
		encodeConfig(e, &st.shard.prev)
		for _, b := range st.shard.status {
			e.uvarint(uint64(b))
		}
		e.uvarint(boolUint(st.shard.joined))
	case modeConfig:
		e.uvarint(uint64(len(st.history.Configs)))
		for i := range st.history.Configs {
			encodeConfig(e, &st.history.Configs[i])
		}
	}
	buckets := st.buckets
	st.buckets = nil
	for i := range buckets {
		// Each leaf is let go of once written: see takeLeaves.
		encodeKeys(e, buckets[i].data, buckets[i].floor, true, true)
		buckets[i].dedup.encode(e, true)
		buckets[i] = bucket{}
	}
	e.sum()
	if e.err != nil {
		return e.err
	}
	return bw.Flush()
}

func boolUint(b bool) uint64 {
	if b {
		return 1
	}
	return 0
}

// readSnapshot decodes a stream written by writeSnapshot. size, when
// positive, is the stream's length: no count or length may claim more.
func readSnapshot(r io.Reader, size int64) (*snapState, error) {
	d := &binReader{r: bufio.NewReaderSize(r, 256<<10), limit: int(min(size, maxField))}
	corrupt := func(format string, a ...any) error {
		return fmt.Errorf("%w: %s", ErrCorruptSnapshot, fmt.Sprintf(format, a...))
	}
	var st *snapState
	switch string(d.raw(len(snapshotMagic))) {
	case snapshotMagic:
		st = readState(d, true)
	case snapshotMagicV2:
		st = readState(d, false)
	case snapshotMagicV1:
		st = readFormat1(d) // checks the checksum itself, first
	default:
		return nil, corrupt("bad magic")
	}
	if st == nil || !st.format1 {
		d.checkSum()
	}
	if d.err == nil {
		if _, err := d.r.ReadByte(); err != io.EOF {
			d.fail("bytes after the checksum")
		}
	}
	if d.err != nil {
		return nil, corrupt("%v", d.err)
	}
	return st, nil
}

// readState reads the state of a stream of format 3 (versioned) or 2
// after its magic.
func readState(d *binReader, versioned bool) *snapState {
	st := &snapState{mode: mode(d.uvarint("mode")), group: d.uvarint("group")}
	n, slots := d.count("bucket count"), d.count("bucket sections")
	st.nbuckets = n
	st.sessions = decodeSessions(d)
	if d.err != nil {
		return nil
	}
	wantSlots := n
	switch {
	case n < 1 || n > shardmap.MaxBuckets:
		d.fail("%d buckets", n)
	case st.mode == modePlain && st.group == 0:
	case st.mode == modeShard && st.group != 0:
		sh := shardState{config: decodeConfig(d), prev: decodeConfig(d)}
		for i := 0; i < n && d.err == nil; i++ {
			b := BucketStatus(min(d.uvarint("bucket status"), 255))
			if d.err == nil && b > GCing {
				d.fail("bucket %d: status %d", i, b)
			}
			sh.status = append(sh.status, b)
		}
		sh.joined = d.uvarint("joined") == 1
		if d.err == nil && (len(sh.config.Buckets) != n || len(sh.prev.Buckets) != n) {
			d.fail("configs of %d and %d buckets in a store of %d", len(sh.config.Buckets), len(sh.prev.Buckets), n)
		}
		st.shard = &sh
	case st.mode == modeConfig && st.group == 0:
		wantSlots = 1
		h := &shardmap.History{}
		count := d.count("config count")
		if d.err == nil && count == 0 {
			d.fail("no configs")
		}
		for i := 0; i < count && d.err == nil; i++ {
			c := decodeConfig(d)
			switch {
			case d.err != nil:
			case c.Version != uint64(i):
				d.fail("config %d at position %d", c.Version, i)
			case len(c.Buckets) != n:
				d.fail("config %d of %d buckets in a store of %d", c.Version, len(c.Buckets), n)
			}
			h.Configs = append(h.Configs, c)
		}
		st.history = h
	default:
		d.fail("a %s store of group %d", st.mode, st.group)
	}
	if d.err == nil && slots != wantSlots {
		d.fail("%d bucket sections, want %d", slots, wantSlots)
	}
	if d.err != nil {
		return nil
	}
	st.buckets = make([]bucket, slots)
	for i := range st.buckets {
		t, floor := decodeKeys(d, versioned)
		if d.err == nil && st.mode == modeConfig && t.Len() > 0 {
			d.fail("keys in a config group member's state")
		}
		if d.err == nil && n > 1 && st.mode != modeConfig {
			t.Ascend(func(it item) bool {
				if b := shardmap.BucketOf(it.key, n); b != i {
					d.fail("key %q of bucket %d in bucket %d", it.key, b, i)
					return false
				}
				return true
			})
		}
		st.buckets[i] = bucket{data: t, dedup: decodeDedupTable(d, versioned), floor: floor}
		if d.err != nil {
			return nil
		}
	}
	return st
}

// encodeSessions writes the session count, then each session by ascending
// id: id, watermark, applied count, applied ids ascending.
func encodeSessions(e *binWriter, sessions map[uint64]*session) {
	ids := slices.Sorted(maps.Keys(sessions))
	e.uvarint(uint64(len(ids)))
	for _, id := range ids {
		ss := sessions[id]
		e.uvarint(id)
		e.uvarint(ss.Watermark)
		applied := slices.Sorted(maps.Keys(ss.Applied))
		e.uvarint(uint64(len(applied)))
		for _, a := range applied {
			e.uvarint(a)
		}
	}
}

func decodeSessions(d *binReader) map[uint64]*session {
	out := map[uint64]*session{}
	n := d.count("session count")
	var prev uint64
	for i := 0; i < n && d.err == nil; i++ {
		id := d.uvarint("session id")
		if d.err == nil && i > 0 && id <= prev {
			d.fail("sessions out of order at %d", i)
		}
		prev = id
		ss := &session{Watermark: d.uvarint("session watermark"), Applied: map[uint64]bool{}}
		m := d.count("session applied count")
		var last uint64
		for j := 0; j < m && d.err == nil; j++ {
			a := d.uvarint("session applied id")
			if d.err == nil && j > 0 && a <= last {
				d.fail("session %d: applied ids out of order at %d", id, j)
			}
			last = a
			ss.Applied[a] = true
		}
		out[id] = ss
	}
	return out
}

// Snapshot captures the state as of the last applied commit, in
// O(buckets): a copy-on-write clone of each bucket's tree and a copy of
// the sessions. The returned function writes that state while applying
// goes on, once: it lets go of the state as it writes it.
// raftnode calls Snapshot when every published commit has been applied.
func (s *Store) Snapshot() (func(io.Writer) error, error) {
	s.mu.Lock()
	st := s.captureLocked()
	s.mu.Unlock()
	return func(w io.Writer) error {
		if st == nil {
			return errors.New("kvstore: snapshot already written")
		}
		cur := st
		st = nil
		return writeSnapshot(w, cur)
	}, nil
}

// captureLocked is the state as a snapshot captures it, in O(buckets):
// copy-on-write clones of the buckets, copies of the rest. s.mu must be
// held for writing.
func (s *Store) captureLocked() *snapState {
	st := &snapState{mode: s.mode, group: s.cfg.Group, nbuckets: s.nbuckets, buckets: s.cloneBucketsLocked(),
		sessions: make(map[uint64]*session, len(s.mu.sessions))}
	for id, ss := range s.mu.sessions {
		st.sessions[id] = &session{Watermark: ss.Watermark, Applied: maps.Clone(ss.Applied)}
	}
	if s.mode == modeShard {
		sh := s.mu.shard.clone()
		st.shard = &sh
	}
	if s.mode == modeConfig {
		st.history = &shardmap.History{Configs: s.mu.history.Configs} // configs never change once appended
	}
	return st
}

// restore replaces the state with the snapshot in the file at path.
func (s *Store) restore(path string, index uint64) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("kvstore: open snapshot: %w", err)
	}
	defer f.Close()
	var size int64
	if fi, err := f.Stat(); err == nil {
		size = fi.Size()
	}
	st, err := readSnapshot(f, size)
	if err != nil {
		return fmt.Errorf("kvstore: snapshot %s: %w", path, err)
	}
	if st.format1 && s.mode == modePlain {
		st.spread(s.nbuckets)
	}
	if st.mode != s.mode || st.group != s.cfg.Group || st.nbuckets != s.nbuckets {
		// Every member of a group restores the same bytes: one started
		// with other settings must not serve a state it misreads.
		mine := snapState{mode: s.mode, group: s.cfg.Group, nbuckets: s.nbuckets}
		return fmt.Errorf("%w: snapshot %s (index %d) is of a %s; this store is a %s",
			ErrSnapshotMismatch, path, index, st.describe(), mine.describe())
	}
	s.install(st, index)
	return nil
}

// install makes st the state as of index.
func (s *Store) install(st *snapState, index uint64) {
	s.mu.Lock()
	keys := 0
	s.exq.Lock()
	s.exq.h.reset() // expiry deadlines start again at the restore
	s.exq.Unlock()
	trees := make([]*tree, 0, len(st.buckets))
	for i, b := range st.buckets {
		s.setBucketLocked(i, b)
		keys += b.data.Len()
		trees = append(trees, b.data)
	}
	s.queueTreeExpiries(time.Now(), trees...)
	s.mu.sessions = st.sessions
	if st.shard != nil {
		s.mu.shard = *st.shard
		// Nothing of the configs before the snapshot is known but its
		// own: indexes before it have no version to tell.
		s.mu.configAt = s.mu.configAt[:0]
		if v := s.mu.shard.config.Version; v > 0 {
			s.noteConfigAtLocked(index, v)
		}
	}
	if st.history != nil {
		s.mu.history = *st.history
	}
	// A read from now on is of the state at index, and says so, before
	// setApplied (which waits for the window's reset) catches up.
	s.mu.index = max(s.mu.index, index)
	s.notifyLocked()
	own := st.sessions[s.session]
	s.mu.Unlock()
	s.resetWindow(index)
	s.lg.Info("restored state from snapshot", zap.Uint64("index", index), zap.Int("keys", keys))
	// Our writes that the snapshot covers will never be seen as entries.
	if own != nil {
		s.pmu.Lock()
		for id, p := range s.pmu.pending {
			if own.Applied[id] {
				s.finishLocked(p, s.coveredResult(p, index))
			}
		}
		s.pmu.Unlock()
	}
}

// coveredResult answers p, a request of this session that a snapshot
// taken at index covers. A plain write is applied whenever it is
// processed, so it was; any other may have been refused or answered as a
// duplicate, and a transaction's or a range delete's result is its own,
// which only its entry would have said.
func (s *Store) coveredResult(p *pending, index uint64) result {
	if p.req.ClientID != "" || p.req.Ctl != nil || p.req.Txn != nil || p.req.Range != nil || s.mode != modePlain {
		return result{err: ErrCoveredBySnapshot}
	}
	return result{index: index}
}
