package backup

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"testing"
)

// FuzzParseHeader: any input either parses into a header that Validate
// accepts and that encodes back into the same bytes, or is refused with
// one of the package's errors; nothing panics.
func FuzzParseHeader(f *testing.F) {
	f.Add(appendHeader(nil, testHeader()))
	f.Add(appendHeader(nil, Header{Index: 1, Term: 1, MemberID: 1, Mode: ModePlain, Buckets: 1}))
	f.Add([]byte(Magic))
	f.Add([]byte("raftkv-kv-snapshot-2\n"))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		h, err := ParseHeader(bytes.NewReader(data))
		if err != nil {
			if !errors.Is(err, ErrNotBackup) && !errors.Is(err, ErrVersion) && !errors.Is(err, ErrCorrupt) && !errors.Is(err, ErrTruncated) {
				t.Fatalf("ParseHeader: %v, not one of the package's errors", err)
			}
			return
		}
		if err := h.Validate(); err != nil {
			t.Fatalf("parsed header %+v fails Validate: %v", h, err)
		}
		if again := appendHeader(nil, h); !bytes.Equal(again, data[:HeaderSize]) {
			t.Fatalf("header %+v encodes to %x, was read from %x", h, again, data[:HeaderSize])
		}
	})
}

// FuzzReader: a Reader accepts only files whose trailer is the SHA-256
// of the rest, and never panics.
func FuzzReader(f *testing.F) {
	f.Add(encode(f, testHeader(), []byte("some state")))
	f.Add(encode(f, testHeader(), nil))
	f.Add(encode(f, testHeader(), bytes.Repeat([]byte{7}, 3000), 1000))
	f.Fuzz(func(t *testing.T, data []byte) {
		if _, err := Verify(bytes.NewReader(data)); err != nil {
			return
		}
		sum := sha256.Sum256(data[:len(data)-TrailerSize])
		if !bytes.Equal(sum[:], data[len(data)-TrailerSize:]) {
			t.Fatalf("accepted a file whose trailer is not its SHA-256")
		}
	})
}
