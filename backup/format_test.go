package backup

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"io"
	"math/rand/v2"
	"strings"
	"testing"
	"testing/iotest"
	"time"
)

func testHeader() Header {
	return Header{
		Version:   Version,
		Index:     12345,
		Term:      7,
		ClusterID: 0x1000,
		MemberID:  2,
		Mode:      ModeShard,
		Group:     3,
		Buckets:   256,
		Created:   time.Date(2026, 12, 4, 12, 33, 0, 123456789, time.UTC),
	}
}

// encode writes a backup of h and data, in writes of the given sizes
// (cycled), and returns the file.
func encode(t testing.TB, h Header, data []byte, writes ...int) []byte {
	t.Helper()
	return encodeChunks(t, h, data, chunkSize, writes...)
}

// encodeChunks is encode with chunks of size bytes.
func encodeChunks(t testing.TB, h Header, data []byte, size int, writes ...int) []byte {
	t.Helper()
	var buf bytes.Buffer
	w, err := newWriterSize(&buf, h, size)
	if err != nil {
		t.Fatalf("NewWriter: %v", err)
	}
	if len(writes) == 0 {
		writes = []int{len(data) + 1}
	}
	for i := 0; len(data) > 0; i++ {
		n := min(writes[i%len(writes)], len(data))
		if k, err := w.Write(data[:n]); err != nil || k != n {
			t.Fatalf("Write(%d bytes) = %d, %v", n, k, err)
		}
		data = data[n:]
	}
	if err := w.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	return buf.Bytes()
}

func randomBytes(n int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, seed))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// TestRoundTrip: what a Writer writes, a Reader reads back, header and
// data, whatever the sizes of the writes and of the reads.
func TestRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		name   string
		size   int
		writes []int
		reads  func(io.Reader) io.Reader
	}{
		{"empty", 0, nil, nil},
		{"one byte", 1, nil, nil},
		{"chunk minus one", chunkSize - 1, nil, nil},
		{"one chunk", chunkSize, nil, nil},
		{"chunk plus one", chunkSize + 1, nil, nil},
		{"many chunks in small writes", 5*chunkSize + 17, []int{1, 7, 4096, 100003}, nil},
		{"one big write", 3*chunkSize + 5, nil, nil},
		{"read a byte at a time", 2*chunkSize + 3, nil, iotest.OneByteReader},
		{"half reads", 2*chunkSize + 3, nil, iotest.HalfReader},
	} {
		t.Run(tc.name, func(t *testing.T) {
			data := randomBytes(tc.size, uint64(tc.size))
			file := encode(t, testHeader(), data, tc.writes...)
			var in io.Reader = bytes.NewReader(file)
			if tc.reads != nil {
				in = tc.reads(in)
			}
			r, err := NewReader(in)
			if err != nil {
				t.Fatalf("NewReader: %v", err)
			}
			if got, want := r.Header(), testHeader(); got != want {
				t.Errorf("header %+v, want %+v", got, want)
			}
			got, err := io.ReadAll(r)
			if err != nil {
				t.Fatalf("ReadAll: %v", err)
			}
			if !bytes.Equal(got, data) {
				t.Fatalf("read %d bytes back, wrote %d (or they differ)", len(got), len(data))
			}
			// io.EOF sticks.
			if n, err := r.Read(make([]byte, 10)); n != 0 || err != io.EOF {
				t.Errorf("Read after the end = %d, %v; want 0, io.EOF", n, err)
			}
			if h, err := Verify(bytes.NewReader(file)); err != nil || h != testHeader() {
				t.Errorf("Verify = %+v, %v", h, err)
			}
			sum := sha256.Sum256(file[:len(file)-TrailerSize])
			if !bytes.Equal(sum[:], file[len(file)-TrailerSize:]) {
				t.Errorf("the trailer is not the SHA-256 of the rest of the file")
			}
		})
	}
}

// TestHeaderFields: every mode and the extremes of each field survive a
// round trip; a zero Created stays zero.
func TestHeaderFields(t *testing.T) {
	for _, h := range []Header{
		{Version: Version, Index: 1, Term: 1, MemberID: 1, Mode: ModePlain, Buckets: 1},
		{Version: Version, Index: ^uint64(0), Term: ^uint64(0), ClusterID: ^uint64(0), MemberID: ^uint64(0),
			Mode: ModeShard, Group: ^uint64(0), Buckets: 1 << 14, Created: time.Unix(0, 1).UTC()},
		{Version: Version, Index: 9, Term: 2, MemberID: 3, Mode: ModeConfig, Buckets: 256, Created: time.Unix(1e9, 5).UTC()},
	} {
		got, err := ParseHeader(bytes.NewReader(appendHeader(nil, h)))
		if err != nil || got != h {
			t.Errorf("ParseHeader(%+v) = %+v, %v", h, got, err)
		}
	}
}

// TestWriterRefusesBadHeaders: NewWriter writes nothing for a header a
// Reader would refuse.
func TestWriterRefusesBadHeaders(t *testing.T) {
	good := testHeader()
	for name, change := range map[string]func(*Header){
		"index 0":            func(h *Header) { h.Index = 0 },
		"term 0":             func(h *Header) { h.Term = 0 },
		"member 0":           func(h *Header) { h.MemberID = 0 },
		"mode 0":             func(h *Header) { h.Mode = 0 },
		"mode 4":             func(h *Header) { h.Mode = 4 },
		"shard of group 0":   func(h *Header) { h.Group = 0 },
		"plain with a group": func(h *Header) { h.Mode = ModePlain },
		"config with group":  func(h *Header) { h.Mode = ModeConfig },
		"0 buckets":          func(h *Header) { h.Buckets = 0 },
		"too many buckets":   func(h *Header) { h.Buckets = 1<<14 + 1 },
	} {
		h := good
		change(&h)
		var buf bytes.Buffer
		if _, err := NewWriter(&buf, h); !errors.Is(err, ErrInvalidHeader) || buf.Len() != 0 {
			t.Errorf("%s: NewWriter = %v and %d bytes written; want ErrInvalidHeader and none", name, err, buf.Len())
		}
	}
}

// readAll reads a whole backup and returns the first error.
func readAll(file []byte) error {
	_, err := Verify(bytes.NewReader(file))
	return err
}

// TestTruncation: every proper prefix of a backup of several chunks is
// refused as truncated, the empty file and a part of the magic included.
func TestTruncation(t *testing.T) {
	file := encodeChunks(t, testHeader(), randomBytes(1000, 1), 300, 70)
	if chunks := (1000 + 299) / 300; len(file) != HeaderSize+chunks*4+1000+4+TrailerSize {
		t.Fatalf("a file of %d bytes, want %d chunks", len(file), chunks)
	}
	for n := range len(file) {
		err := readAll(file[:n])
		if !errors.Is(err, ErrTruncated) {
			t.Fatalf("a prefix of %d of %d bytes: %v, want ErrTruncated", n, len(file), err)
		}
	}
	if err := readAll(file); err != nil {
		t.Fatalf("the whole file: %v", err)
	}
}

// TestBitFlips: a backup with any one bit flipped is refused, wherever
// the bit is: in the magic, the header, a chunk length, the data, the
// end of the data or the trailer.
func TestBitFlips(t *testing.T) {
	file := encodeChunks(t, testHeader(), randomBytes(300, 2), 100)
	for i := range len(file) {
		for bit := range 8 {
			bad := bytes.Clone(file)
			bad[i] ^= 1 << bit
			err := readAll(bad)
			if err == nil {
				t.Fatalf("byte %d bit %d flipped: accepted", i, bit)
			}
			if !errors.Is(err, ErrNotBackup) && !errors.Is(err, ErrVersion) && !errors.Is(err, ErrCorrupt) &&
				!errors.Is(err, ErrTruncated) && !errors.Is(err, ErrChecksum) {
				t.Fatalf("byte %d bit %d flipped: %v, not one of the package's errors", i, bit, err)
			}
		}
	}
	// A flip in the data is a checksum mismatch, which names both sums.
	bad := bytes.Clone(file)
	bad[HeaderSize+4+10] ^= 0x80
	if err := readAll(bad); !errors.Is(err, ErrChecksum) || !strings.Contains(err.Error(), "SHA-256") {
		t.Errorf("a flip in the data: %v, want ErrChecksum", err)
	}
	// A flip in the header is caught by its CRC before anything is read.
	bad = bytes.Clone(file)
	bad[len(Magic)+2+3] ^= 1
	if _, err := NewReader(bytes.NewReader(bad)); !errors.Is(err, ErrCorrupt) {
		t.Errorf("a flip in the index: NewReader = %v, want ErrCorrupt", err)
	}
}

// TestRefusals: the other ways a file is not a backup.
func TestRefusals(t *testing.T) {
	file := encode(t, testHeader(), []byte("state"))
	withVersion := func(v uint16) []byte {
		b := bytes.Clone(file)
		binary.BigEndian.PutUint16(b[len(Magic):], v)
		return b
	}
	hugeChunk := bytes.Clone(file[:HeaderSize])
	hugeChunk = binary.BigEndian.AppendUint32(hugeChunk, MaxChunk+1)
	hugeChunk = append(hugeChunk, make([]byte, 100)...)
	for _, tc := range []struct {
		name string
		file []byte
		want error
	}{
		{"not a backup", []byte("raftkv-kv-snapshot-2\nwhatever follows"), ErrNotBackup},
		{"version 2", withVersion(2), ErrVersion},
		{"version 0", withVersion(0), ErrVersion},
		{"bytes after the trailer", append(bytes.Clone(file), 0), ErrCorrupt},
		{"a chunk over the limit", hugeChunk, ErrCorrupt},
		{"the trailer of another file", append(bytes.Clone(file[:len(file)-TrailerSize]), make([]byte, TrailerSize)...), ErrChecksum},
	} {
		if err := readAll(tc.file); !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
		}
	}
}

// failWriter fails every write after the first ok ones.
type failWriter struct{ ok int }

func (w *failWriter) Write(p []byte) (int, error) {
	if w.ok == 0 {
		return 0, errors.New("disk full")
	}
	w.ok--
	return len(p), nil
}

// TestWriterErrorsStick: a failed write fails every later call, Close
// included, and nothing claims success.
func TestWriterErrorsStick(t *testing.T) {
	if _, err := NewWriter(&failWriter{}, testHeader()); err == nil {
		t.Fatal("NewWriter on a failing writer: no error")
	}
	w, err := NewWriter(&failWriter{ok: 1}, testHeader())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(make([]byte, chunkSize)); err == nil {
		t.Fatal("a write of a chunk to a failing writer: no error")
	}
	if _, err := w.Write([]byte("x")); err == nil {
		t.Error("a write after a failure: no error")
	}
	if err := w.Close(); err == nil {
		t.Error("Close after a failure: no error")
	}
	var buf bytes.Buffer
	w, _ = NewWriter(&buf, testHeader())
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write([]byte("x")); !errors.Is(err, ErrClosed) {
		t.Errorf("Write after Close = %v, want ErrClosed", err)
	}
}
