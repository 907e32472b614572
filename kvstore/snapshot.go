package kvstore

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/gob"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"maps"
	"os"

	"github.com/raftkv/raftkv/shardmap"
	"go.uber.org/zap"
)

// Snapshot format, binary-safe and streamed so that neither writing nor
// reading needs the whole state as one buffer:
//
//	magic "raftkv-kv-snapshot-1\n"
//	uvarint length, gob of snapshotHeader (key count, sessions)
//	per key, in key order: uvarint length, key, uvarint length, value
//	CRC-32C (big endian) of everything before it
const snapshotMagic = "raftkv-kv-snapshot-1\n"

// maxSnapshotField bounds one length field, so a corrupt file cannot make
// the reader allocate without limit.
const maxSnapshotField = 1 << 30

// ErrCorruptSnapshot means a snapshot's data does not decode.
var ErrCorruptSnapshot = errors.New("kvstore: corrupt snapshot")

type snapshotHeader struct {
	Keys     int
	Sessions map[uint64]*session
	// Dedup holds each bucket's dedup table in its binary form.
	Dedup [][]byte
	// Shard is a shard group member's state beside its keys.
	Shard *shardHeader
	// History is a config group member's state.
	History *shardmap.History
}

// shardHeader is shardState in a form gob encodes.
type shardHeader struct {
	Config, Prev shardmap.Config
	Status       []BucketStatus
	Joined       bool
}

// snapState is the whole state of a store, as a snapshot captures it.
type snapState struct {
	// buckets holds each bucket's keys and dedup table.
	buckets  []bucket
	sessions map[uint64]*session
	// shard is set for a shard group member.
	shard *shardState
	// history is set for a config group member.
	history *shardmap.History
}

// writeSnapshot streams st to w. It empties st's trees, which must be
// clones no one else reads (see tree.takeLeaves).
func writeSnapshot(w io.Writer, st *snapState) error {
	bw := bufio.NewWriterSize(w, 256<<10)
	crc := crc32.New(crcTable)
	out := io.MultiWriter(bw, crc)
	keys := 0
	trees := make([]*tree, len(st.buckets))
	dedup := make([][]byte, len(st.buckets))
	for i, b := range st.buckets {
		keys += b.data.Len()
		trees[i] = b.data
		var buf bytes.Buffer
		e := binWriter{w: &buf}
		b.dedup.encode(&e)
		dedup[i] = buf.Bytes()
	}
	st.buckets = nil
	h := snapshotHeader{Keys: keys, Sessions: st.sessions, Dedup: dedup}
	h.History = st.history
	if sh := st.shard; sh != nil {
		h.Shard = &shardHeader{Config: sh.config, Prev: sh.prev, Status: sh.status, Joined: sh.joined}
	}
	var hdr bytes.Buffer
	if err := gob.NewEncoder(&hdr).Encode(h); err != nil {
		return fmt.Errorf("kvstore: encode snapshot header: %w", err)
	}
	var lenBuf [binary.MaxVarintLen64]byte
	writeField := func(b []byte) error {
		n := binary.PutUvarint(lenBuf[:], uint64(len(b)))
		if _, err := out.Write(lenBuf[:n]); err != nil {
			return err
		}
		_, err := out.Write(b)
		return err
	}
	if _, err := io.WriteString(out, snapshotMagic); err != nil {
		return err
	}
	if err := writeField(hdr.Bytes()); err != nil {
		return err
	}
	// Each leaf is let go of once written: see takeLeaves.
	var err error
	ascendMerged(trees, func(it item) bool {
		if err = writeField([]byte(it.key)); err != nil {
			return false
		}
		err = writeField(it.valueBytes())
		return err == nil
	})
	if err != nil {
		return err
	}
	var sum [4]byte
	binary.BigEndian.PutUint32(sum[:], crc.Sum32())
	if _, err := bw.Write(sum[:]); err != nil {
		return err
	}
	return bw.Flush()
}

// readSnapshot decodes a stream written by writeSnapshot into nbuckets
// buckets.
func readSnapshot(r io.Reader, nbuckets int) (*snapState, error) {
	br := bufio.NewReaderSize(r, 256<<10)
	crc := crc32.New(crcTable)
	in := io.TeeReader(br, crc)
	corrupt := func(format string, a ...any) error {
		return fmt.Errorf("%w: %s", ErrCorruptSnapshot, fmt.Sprintf(format, a...))
	}
	magic := make([]byte, len(snapshotMagic))
	if _, err := io.ReadFull(in, magic); err != nil || string(magic) != snapshotMagic {
		return nil, corrupt("bad magic")
	}
	byteReader := &teeByteReader{r: br, crc: crc}
	readField := func() ([]byte, error) {
		n, err := binary.ReadUvarint(byteReader)
		if err != nil {
			return nil, err
		}
		if n > maxSnapshotField {
			return nil, fmt.Errorf("field of %d bytes", n)
		}
		b := make([]byte, n)
		_, err = io.ReadFull(in, b)
		return b, err
	}
	hdrBytes, err := readField()
	if err != nil {
		return nil, corrupt("header: %v", err)
	}
	var hdr snapshotHeader
	if err := gob.NewDecoder(bytes.NewReader(hdrBytes)).Decode(&hdr); err != nil {
		return nil, corrupt("header: %v", err)
	}
	if hdr.Keys < 0 {
		return nil, corrupt("negative key count")
	}
	st := &snapState{buckets: newBuckets(nbuckets)}
	if len(hdr.Dedup) > 0 && len(hdr.Dedup) != nbuckets {
		return nil, corrupt("%d dedup tables for %d buckets", len(hdr.Dedup), nbuckets)
	}
	for i, b := range hdr.Dedup {
		d := &binReader{r: bytes.NewReader(b), limit: len(b)}
		if st.buckets[i].dedup = decodeDedupTable(d); d.err != nil {
			return nil, corrupt("dedup table of bucket %d: %v", i, d.err)
		}
	}
	var last string
	for i := 0; i < hdr.Keys; i++ {
		k, err := readField()
		if err != nil {
			return nil, corrupt("key %d: %v", i, err)
		}
		v, err := readField()
		if err != nil {
			return nil, corrupt("value %d: %v", i, err)
		}
		if i > 0 && string(k) <= last {
			return nil, corrupt("keys out of order at %d", i)
		}
		last = string(k)
		st.buckets[shardmap.BucketOf(last, nbuckets)].data.ReplaceOrInsert(newItem(last, v))
	}
	want := crc.Sum32()
	var sum [4]byte
	if _, err := io.ReadFull(br, sum[:]); err != nil {
		return nil, corrupt("checksum: %v", err)
	}
	if binary.BigEndian.Uint32(sum[:]) != want {
		return nil, corrupt("checksum mismatch")
	}
	if hdr.Sessions == nil {
		hdr.Sessions = map[uint64]*session{}
	}
	for id, ss := range hdr.Sessions {
		if ss == nil {
			ss = &session{}
			hdr.Sessions[id] = ss
		}
		if ss.Applied == nil {
			ss.Applied = map[uint64]bool{}
		}
	}
	st.sessions = hdr.Sessions
	if sh := hdr.Shard; sh != nil {
		if len(sh.Status) != nbuckets || len(sh.Config.Buckets) != nbuckets || len(sh.Prev.Buckets) != nbuckets {
			return nil, corrupt("shard state of %d buckets, want %d", len(sh.Status), nbuckets)
		}
		if sh.Config.Groups == nil {
			sh.Config.Groups = map[uint64][]string{}
		}
		if sh.Prev.Groups == nil {
			sh.Prev.Groups = map[uint64][]string{}
		}
		st.shard = &shardState{config: sh.Config, prev: sh.Prev, status: sh.Status, joined: sh.Joined}
	}
	if h := hdr.History; h != nil {
		if len(h.Configs) == 0 {
			return nil, corrupt("empty config history")
		}
		for i := range h.Configs {
			if h.Configs[i].Groups == nil {
				h.Configs[i].Groups = map[uint64][]string{}
			}
		}
		st.history = h
	}
	return st, nil
}

// teeByteReader feeds the bytes binary.ReadUvarint reads into the CRC.
type teeByteReader struct {
	r   *bufio.Reader
	crc io.Writer
}

func (t *teeByteReader) ReadByte() (byte, error) {
	b, err := t.r.ReadByte()
	if err == nil {
		t.crc.Write([]byte{b})
	}
	return b, err
}

// Snapshot captures the state as of the last applied commit, in
// O(buckets): a copy-on-write clone of each bucket's tree and a copy of
// the sessions. The returned function writes that state while applying
// goes on, once: it lets go of the state as it writes it.
// raftnode calls Snapshot when every published commit has been applied.
func (s *Store) Snapshot() (func(io.Writer) error, error) {
	s.mu.Lock()
	st := &snapState{buckets: s.cloneBucketsLocked(), sessions: make(map[uint64]*session, len(s.mu.sessions))}
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

// restore replaces the state with the snapshot in the file at path.
func (s *Store) restore(path string, index uint64) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("kvstore: open snapshot: %w", err)
	}
	defer f.Close()
	st, err := readSnapshot(f, len(s.mu.buckets))
	if err != nil {
		return fmt.Errorf("kvstore: snapshot %s: %w", path, err)
	}
	s.install(st, index)
	return nil
}

// install makes st the state as of index.
func (s *Store) install(st *snapState, index uint64) {
	s.mu.Lock()
	keys := 0
	for i, b := range st.buckets {
		s.mu.buckets[i] = b
		keys += b.data.Len()
	}
	s.mu.sessions = st.sessions
	if s.mode == modeShard {
		if st.shard != nil {
			s.mu.shard = *st.shard
		} else {
			s.mu.shard = newShardState(s.nbuckets)
		}
	}
	if s.mode == modeConfig {
		if st.history != nil {
			s.mu.history = *st.history
		} else {
			s.mu.history = newHistory(s.nbuckets)
		}
	}
	s.notifyLocked()
	own := st.sessions[s.session]
	s.mu.Unlock()
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
// duplicate, which only its entry would have said.
func (s *Store) coveredResult(p *pending, index uint64) result {
	if p.req.ClientID != "" || p.req.Ctl != nil || s.mode != modePlain {
		return result{err: ErrCoveredBySnapshot}
	}
	return result{index: index}
}
