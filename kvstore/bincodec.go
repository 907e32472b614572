package kvstore

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"unsafe"
)

// The binary forms of a bucket (BucketData) and of a snapshot share these
// helpers: uvarints and length-prefixed fields, written to and read from
// streams whose CRC-32C the helpers keep.

// maxField bounds one length field, so a corrupt input cannot make a
// reader allocate without limit.
const maxField = 1 << 30

var crcTable = crc32.MakeTable(crc32.Castagnoli)

// binWriter writes uvarints and fields to w, keeping the CRC-32C of what
// it wrote; the first error sticks and ends all writing.
type binWriter struct {
	w   io.Writer
	crc uint32
	err error
	buf [binary.MaxVarintLen64]byte
}

func (e *binWriter) write(b []byte) {
	if e.err != nil {
		return
	}
	e.crc = crc32.Update(e.crc, crcTable, b)
	_, e.err = e.w.Write(b)
}

func (e *binWriter) uvarint(v uint64) {
	n := binary.PutUvarint(e.buf[:], v)
	e.write(e.buf[:n])
}

// field writes b's length, then b.
func (e *binWriter) field(b []byte) {
	e.uvarint(uint64(len(b)))
	e.write(b)
}

// sum writes the CRC-32C of everything written before it, big endian.
func (e *binWriter) sum() {
	var b [4]byte
	binary.BigEndian.PutUint32(b[:], e.crc)
	e.write(b[:])
}

// byteReader is what binReader reads from.
type byteReader interface {
	io.Reader
	io.ByteReader
}

// binReader reads what binWriter writes, keeping the CRC-32C of what it
// read. The first error sticks: later reads return zeros, and err says
// what went wrong first.
type binReader struct {
	r   byteReader
	crc uint32
	err error
	// limit, when positive, bounds the bytes a field or a count may
	// claim: the input's length, when it is known.
	limit int
}

func (d *binReader) fail(format string, a ...any) {
	if d.err == nil {
		d.err = fmt.Errorf(format, a...)
	}
}

func (d *binReader) ReadByte() (byte, error) {
	b, err := d.r.ReadByte()
	if err == nil {
		d.crc = crc32.Update(d.crc, crcTable, []byte{b})
	}
	return b, err
}

func (d *binReader) uvarint(what string) uint64 {
	if d.err != nil {
		return 0
	}
	v, err := binary.ReadUvarint(d)
	if err != nil {
		d.fail("%s: %v", what, unexpected(err))
	}
	return v
}

// count reads a uvarint that counts things of at least one byte each.
func (d *binReader) count(what string) int {
	n := d.uvarint(what)
	if d.err == nil && (n > maxField || d.limit > 0 && n > uint64(d.limit)) {
		d.fail("%s: %d is more than the input holds", what, n)
		return 0
	}
	return int(n)
}

// field reads a length and that many bytes, at most max.
func (d *binReader) field(what string, max int) []byte {
	n := d.count(what)
	if d.err != nil {
		return nil
	}
	if n > max {
		d.fail("%s: %d bytes, more than %d", what, n, max)
		return nil
	}
	b := make([]byte, n)
	if _, err := io.ReadFull(d.r, b); err != nil {
		d.fail("%s: %v", what, unexpected(err))
		return nil
	}
	d.crc = crc32.Update(d.crc, crcTable, b)
	return b
}

// raw reads n bytes with no length before them.
func (d *binReader) raw(n int) []byte {
	if d.err != nil {
		return nil
	}
	b := make([]byte, n)
	if _, err := io.ReadFull(d.r, b); err != nil {
		d.fail("%v", unexpected(err))
		return nil
	}
	d.crc = crc32.Update(d.crc, crcTable, b)
	return b
}

// checkSum reads the CRC-32C that binWriter.sum wrote and compares it with
// that of the bytes read before it.
func (d *binReader) checkSum() {
	if d.err != nil {
		return
	}
	want := d.crc
	var b [4]byte
	if _, err := io.ReadFull(d.r, b[:]); err != nil {
		d.fail("checksum: %v", unexpected(err))
		return
	}
	if binary.BigEndian.Uint32(b[:]) != want {
		d.fail("checksum mismatch")
	}
}

// unsafeBytes is s's bytes, not copied: the caller must not change them.
func unsafeBytes(s string) []byte { return unsafe.Slice(unsafe.StringData(s), len(s)) }

func unexpected(err error) error {
	if errors.Is(err, io.EOF) {
		return io.ErrUnexpectedEOF
	}
	return err
}
