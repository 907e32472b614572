package backup

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"hash/crc32"
	"io"
	"time"

	"github.com/raftkv/raftkv/shardmap"
)

const (
	// Magic starts every backup file.
	Magic = "RAFTKVBK"
	// Version is the format version this package writes and reads.
	Version = 1
	// HeaderSize is the length of a version 1 header, magic and CRC
	// included.
	HeaderSize = len(Magic) + 2 + 8 + 8 + 8 + 8 + 1 + 8 + 4 + 8 + 4
	// MaxChunk bounds the length of one data chunk.
	MaxChunk = 1 << 20
	// TrailerSize is the length of the SHA-256 trailer.
	TrailerSize = sha256.Size
)

// chunkSize is the length of the chunks a Writer writes.
const chunkSize = 64 << 10

var (
	// ErrNotBackup means the input does not start with Magic.
	ErrNotBackup = errors.New("backup: not a raftkv backup file")
	// ErrVersion means the file is of a format version this binary does
	// not read.
	ErrVersion = errors.New("backup: unsupported backup format version")
	// ErrCorrupt means a part of the file does not decode: a header whose
	// CRC or fields are wrong, a chunk longer than MaxChunk, bytes after
	// the trailer.
	ErrCorrupt = errors.New("backup: corrupt backup file")
	// ErrTruncated means the input ended before the trailer.
	ErrTruncated = errors.New("backup: truncated backup file")
	// ErrChecksum means the trailer is not the SHA-256 of the file.
	ErrChecksum = errors.New("backup: checksum mismatch")
	// ErrInvalidHeader means a Header given to NewWriter fails Validate.
	ErrInvalidHeader = errors.New("backup: invalid header")
	// ErrClosed means a Writer was used after Close or after an error.
	ErrClosed = errors.New("backup: writer closed")
)

// Mode is the kind of member a backup comes from; a restore makes a data
// dir of the same kind.
type Mode uint8

// The modes of raftkv members.
const (
	ModePlain  Mode = 1 // a member of today's single group; serves every key
	ModeShard  Mode = 2 // a member of a shard group
	ModeConfig Mode = 3 // a member of the config group
)

func (m Mode) String() string {
	switch m {
	case ModePlain:
		return "plain"
	case ModeShard:
		return "shard"
	case ModeConfig:
		return "config"
	}
	return fmt.Sprintf("mode(%d)", uint8(m))
}

// Header is what a backup says about the state it holds.
type Header struct {
	// Version is the file's format version; NewWriter writes Version
	// whatever it holds.
	Version uint16
	// Index is the raft index the state is at: it holds every entry up
	// to Index and none after. Term is the term of the entry at Index.
	Index, Term uint64
	// ClusterID is the cluster id of the member that took the backup.
	ClusterID uint64
	// MemberID is the raft id of the member that took the backup.
	MemberID uint64
	// Mode, Group and Buckets say what kind of member's state it is: a
	// restore makes a member of the same kind. Group is non-zero only for
	// ModeShard; Buckets is the bucket count of the key space (1 for a
	// plain member).
	Mode    Mode
	Group   uint64
	Buckets int
	// Created is when the state was captured, to the nanosecond.
	Created time.Time
}

// Validate reports the first field of h a backup cannot hold.
func (h Header) Validate() error {
	bad := func(format string, a ...any) error {
		return fmt.Errorf("%w: %s", ErrInvalidHeader, fmt.Sprintf(format, a...))
	}
	switch {
	case h.Index == 0:
		return bad("index 0")
	case h.Term == 0:
		return bad("term 0")
	case h.MemberID == 0:
		return bad("member id 0")
	case h.Mode != ModePlain && h.Mode != ModeShard && h.Mode != ModeConfig:
		return bad("unknown %v", h.Mode)
	case h.Mode == ModeShard && h.Group == 0:
		return bad("a shard member of group 0")
	case h.Mode != ModeShard && h.Group != 0:
		return bad("a %v member of group %d", h.Mode, h.Group)
	case h.Buckets < 1 || h.Buckets > shardmap.MaxBuckets:
		return bad("%d buckets, want 1-%d", h.Buckets, shardmap.MaxBuckets)
	}
	return nil
}

// Describe names the kind of member h's state is of, for messages.
func (h Header) Describe() string {
	switch h.Mode {
	case ModeShard:
		return fmt.Sprintf("a member of shard group %d of %d buckets", h.Group, h.Buckets)
	case ModeConfig:
		return fmt.Sprintf("a config group member of %d buckets", h.Buckets)
	case ModePlain:
		if h.Buckets != 1 {
			return fmt.Sprintf("a plain member of %d buckets", h.Buckets)
		}
		return "a plain member"
	}
	return h.Mode.String()
}

var crcTable = crc32.MakeTable(crc32.Castagnoli)

// appendHeader appends h's version 1 encoding to b.
func appendHeader(b []byte, h Header) []byte {
	start := len(b)
	b = append(b, Magic...)
	b = binary.BigEndian.AppendUint16(b, Version)
	b = binary.BigEndian.AppendUint64(b, h.Index)
	b = binary.BigEndian.AppendUint64(b, h.Term)
	b = binary.BigEndian.AppendUint64(b, h.ClusterID)
	b = binary.BigEndian.AppendUint64(b, h.MemberID)
	b = append(b, byte(h.Mode))
	b = binary.BigEndian.AppendUint64(b, h.Group)
	b = binary.BigEndian.AppendUint32(b, uint32(h.Buckets))
	var created int64
	if !h.Created.IsZero() {
		created = h.Created.UnixNano()
	}
	b = binary.BigEndian.AppendUint64(b, uint64(created))
	return binary.BigEndian.AppendUint32(b, crc32.Checksum(b[start:], crcTable))
}

// parseHeader decodes a header from b, which holds HeaderSize bytes or,
// when the input ended sooner, all of it.
func parseHeader(b []byte) (Header, error) {
	if n := min(len(b), len(Magic)); !bytes.Equal(b[:n], []byte(Magic[:n])) {
		return Header{}, ErrNotBackup
	}
	if len(b) < len(Magic)+2 {
		return Header{}, fmt.Errorf("%w: %d bytes, shorter than a header", ErrTruncated, len(b))
	}
	be := binary.BigEndian
	h := Header{Version: be.Uint16(b[len(Magic):])}
	if h.Version != Version {
		return Header{}, fmt.Errorf("%w: the file is of version %d, this binary reads version %d", ErrVersion, h.Version, Version)
	}
	if len(b) < HeaderSize {
		return Header{}, fmt.Errorf("%w: %d bytes, shorter than a header", ErrTruncated, len(b))
	}
	if got, want := be.Uint32(b[HeaderSize-4:]), crc32.Checksum(b[:HeaderSize-4], crcTable); got != want {
		return Header{}, fmt.Errorf("%w: header CRC %08x, want %08x", ErrCorrupt, got, want)
	}
	p := b[len(Magic)+2:]
	h.Index, p = be.Uint64(p), p[8:]
	h.Term, p = be.Uint64(p), p[8:]
	h.ClusterID, p = be.Uint64(p), p[8:]
	h.MemberID, p = be.Uint64(p), p[8:]
	h.Mode, p = Mode(p[0]), p[1:]
	h.Group, p = be.Uint64(p), p[8:]
	buckets, p := be.Uint32(p), p[4:]
	if created := int64(be.Uint64(p)); created != 0 {
		h.Created = time.Unix(0, created).UTC()
	}
	if buckets > shardmap.MaxBuckets {
		return Header{}, fmt.Errorf("%w: %d buckets, want 1-%d", ErrCorrupt, buckets, shardmap.MaxBuckets)
	}
	h.Buckets = int(buckets)
	if err := h.Validate(); err != nil {
		return Header{}, fmt.Errorf("%w: %w", ErrCorrupt, err)
	}
	return h, nil
}

// ParseHeader reads and checks the header at the start of r. It reads
// exactly HeaderSize bytes when the header is whole.
func ParseHeader(r io.Reader) (Header, error) {
	var b [HeaderSize]byte
	n, err := io.ReadFull(r, b[:])
	if err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) {
		return Header{}, fmt.Errorf("backup: reading the header: %w", err)
	}
	return parseHeader(b[:n])
}

// Writer writes a backup file: NewWriter writes the header, Write the
// state, Close the end of the data and the trailer. It holds at most one
// chunk of data.
type Writer struct {
	w   io.Writer
	sum hash.Hash
	// buf is the chunk being filled: 4 bytes for its length, then data.
	buf []byte
	err error
}

// NewWriter writes h's header to w and returns a Writer for the state.
func NewWriter(w io.Writer, h Header) (*Writer, error) {
	return newWriterSize(w, h, chunkSize)
}

// newWriterSize is NewWriter writing chunks of size bytes.
func newWriterSize(w io.Writer, h Header, size int) (*Writer, error) {
	if err := h.Validate(); err != nil {
		return nil, err
	}
	bw := &Writer{w: w, sum: sha256.New(), buf: make([]byte, 4, 4+size)}
	bw.emit(appendHeader(make([]byte, 0, HeaderSize), h))
	if bw.err != nil {
		return nil, bw.err
	}
	return bw, nil
}

// emit writes b to the file and to the checksum.
func (w *Writer) emit(b []byte) {
	if w.err != nil {
		return
	}
	w.sum.Write(b)
	if _, err := w.w.Write(b); err != nil {
		w.err = err
	}
}

// Write adds p to the state. After an error every call returns it.
func (w *Writer) Write(p []byte) (int, error) {
	if w.err != nil {
		return 0, w.err
	}
	n := 0
	for len(p) > 0 && w.err == nil {
		k := copy(w.buf[len(w.buf):cap(w.buf)], p)
		w.buf = w.buf[:len(w.buf)+k]
		p, n = p[k:], n+k
		if len(w.buf) == cap(w.buf) {
			w.flushChunk()
		}
	}
	return n, w.err
}

// flushChunk writes the chunk being filled, if it holds any data.
func (w *Writer) flushChunk() {
	if len(w.buf) == 4 {
		return
	}
	binary.BigEndian.PutUint32(w.buf, uint32(len(w.buf)-4))
	w.emit(w.buf)
	w.buf = w.buf[:4]
}

// Close writes the last chunk, the end of the data and the trailer. It
// does not close the underlying writer. The Writer takes no more data.
func (w *Writer) Close() error {
	if w.err != nil {
		return w.err
	}
	w.flushChunk()
	w.emit([]byte{0, 0, 0, 0})
	if w.err == nil {
		// The trailer is not part of what it sums.
		if _, err := w.w.Write(w.sum.Sum(nil)); err != nil {
			w.err = err
		}
	}
	if w.err != nil {
		return w.err
	}
	w.err = ErrClosed
	return nil
}

// Reader reads a backup file: NewReader reads its header, Read its state.
// Read answers io.EOF only after the trailer matched (invariant 1).
type Reader struct {
	br  *bufio.Reader
	sum hash.Hash
	hdr Header
	// left is what remains of the current chunk.
	left int
	// off is the offset of the next byte of the file.
	off int64
	err error // sticky: io.EOF once the file checked out
}

// NewReader reads and checks the header at the start of r.
func NewReader(r io.Reader) (*Reader, error) {
	rd := &Reader{br: bufio.NewReaderSize(r, chunkSize), sum: sha256.New()}
	b, err := rd.br.Peek(HeaderSize)
	if err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) {
		return nil, fmt.Errorf("backup: reading the header: %w", err)
	}
	if rd.hdr, err = parseHeader(b); err != nil {
		return nil, err
	}
	rd.consume(HeaderSize)
	return rd, nil
}

// Header is the file's header.
func (r *Reader) Header() Header { return r.hdr }

// consume hashes and skips n bytes that were peeked.
func (r *Reader) consume(n int) {
	b, _ := r.br.Peek(n)
	r.sum.Write(b)
	r.br.Discard(n)
	r.off += int64(n)
}

// readFull reads len(b) bytes that the checksum covers; what the file
// lacks is ErrTruncated.
func (r *Reader) readFull(b []byte, what string) error {
	n, err := io.ReadFull(r.br, b)
	r.sum.Write(b[:n])
	r.off += int64(n)
	return r.readErr(err, what)
}

func (r *Reader) readErr(err error, what string) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return fmt.Errorf("%w: the file ends at byte %d, in %s", ErrTruncated, r.off, what)
	}
	return fmt.Errorf("backup: reading %s at byte %d: %w", what, r.off, err)
}

// Read reads the state. It returns io.EOF once the state ended and the
// trailer matched; any error sticks.
func (r *Reader) Read(p []byte) (int, error) {
	if r.err != nil {
		return 0, r.err
	}
	for r.left == 0 {
		var lb [4]byte
		if err := r.readFull(lb[:], "a chunk length"); err != nil {
			r.err = err
			return 0, err
		}
		n := binary.BigEndian.Uint32(lb[:])
		switch {
		case n == 0:
			r.err = r.finish()
			return 0, r.err
		case n > MaxChunk:
			r.err = fmt.Errorf("%w: a chunk of %d bytes at byte %d, over the limit of %d", ErrCorrupt, n, r.off-4, MaxChunk)
			return 0, r.err
		}
		r.left = int(n)
	}
	if len(p) == 0 {
		return 0, nil
	}
	n, err := r.br.Read(p[:min(len(p), r.left)])
	r.sum.Write(p[:n])
	r.off += int64(n)
	r.left -= n
	if err != nil {
		r.err = r.readErr(err, "the data")
		return n, r.err
	}
	return n, nil
}

// finish checks the trailer and that nothing follows it: io.EOF when the
// file checks out.
func (r *Reader) finish() error {
	want := r.sum.Sum(nil)
	got := make([]byte, TrailerSize)
	n, err := io.ReadFull(r.br, got)
	r.off += int64(n)
	if err := r.readErr(err, "the trailer"); err != nil {
		return err
	}
	if !bytes.Equal(got, want) {
		return fmt.Errorf("%w: the file's SHA-256 is %x, its trailer says %x", ErrChecksum, want, got)
	}
	if _, err := r.br.ReadByte(); !errors.Is(err, io.EOF) {
		if err != nil {
			return fmt.Errorf("backup: reading after the trailer: %w", err)
		}
		return fmt.Errorf("%w: bytes after the trailer at byte %d", ErrCorrupt, r.off)
	}
	return io.EOF
}

// Verify reads a whole backup from r and returns its header, or why it
// is not a whole, intact backup.
func Verify(r io.Reader) (Header, error) {
	rd, err := NewReader(r)
	if err != nil {
		return Header{}, err
	}
	if _, err := io.Copy(io.Discard, rd); err != nil {
		return rd.Header(), err
	}
	return rd.Header(), nil
}
