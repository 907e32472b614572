package raftnode

import (
	"bytes"
	"reflect"
	"testing"
)

// Run these as fuzzers with, for example:
//
//	go test -run='^$' -fuzz=FuzzDecodeEnvelope -fuzztime=60s ./raftnode/
//
// Without -fuzz, go test runs their seeds (f.Add and testdata/fuzz) as tests.

func mustEnvelope(f *testing.F, m membership) []byte {
	data, err := encodeEnvelope(m)
	if err != nil {
		f.Fatal(err)
	}
	return data
}

// FuzzDecodeEnvelope: decodeEnvelope never panics on arbitrary snapshot
// data; a membership it accepts has non-nil maps, survives the membership
// checks and an encode/decode round trip unchanged.
func FuzzDecodeEnvelope(f *testing.F) {
	m := newMembership()
	m.Members[1] = Member{ID: 1, PeerURL: "http://127.0.0.1:12379", ClientURL: "http://127.0.0.1:12380"}
	m.Members[2] = Member{ID: 2, PeerURL: "https://[::1]:22379"}
	m.Removed[7] = true
	good := mustEnvelope(f, m)
	for _, s := range [][]byte{
		good,
		good[:len(good)/2],
		append(append([]byte{}, good...), 0xff),
		mustEnvelope(f, newMembership()),
		mustEnvelope(f, membership{}),
		[]byte("garbage"),
		{},
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		env, err := decodeEnvelope(data)
		if err != nil {
			return
		}
		ms := env.Membership
		if ms.Members == nil || ms.Removed == nil {
			t.Fatalf("decoded membership has a nil map: %+v", ms)
		}
		sorted := ms.sorted()
		if len(sorted) != len(ms.Members) {
			t.Fatalf("sorted() lists %d of %d members", len(sorted), len(ms.Members))
		}
		for _, mem := range sorted {
			_ = ms.checkRemove(mem.ID)
			_ = ms.checkAdd(mem.ID, mem.PeerURL)
		}
		_ = ms.checkAdd(1<<64-1, "http://127.0.0.1:1")
		if c := ms.clone(); !reflect.DeepEqual(c, ms) {
			t.Fatalf("clone differs: %+v vs %+v", c, ms)
		}
		again, err := encodeEnvelope(ms)
		if err != nil {
			t.Fatalf("a decoded membership does not encode: %v", err)
		}
		env2, err := decodeEnvelope(again)
		if err != nil {
			t.Fatalf("a re-encoded membership does not decode: %v", err)
		}
		if !reflect.DeepEqual(env2.Membership, ms) {
			t.Fatalf("round trip changed the membership: %+v -> %+v", ms, env2.Membership)
		}
	})
}

// FuzzDecodeAttributes: decodeAttributes never panics on the bytes after an
// entryAttributes kind byte, and what it accepts encodes back to attributes
// that decode the same.
func FuzzDecodeAttributes(f *testing.F) {
	good, err := encodeAttributes(attributes{ID: 3, ClientURL: "http://127.0.0.1:32380"})
	if err != nil {
		f.Fatal(err)
	}
	for _, s := range [][]byte{good[1:], good[1 : len(good)-1], good, {}, []byte("garbage")} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		a, err := decodeAttributes(data)
		if err != nil {
			return
		}
		again, err := encodeAttributes(a)
		if err != nil {
			t.Fatalf("decoded attributes %+v do not encode: %v", a, err)
		}
		if again[0] != entryAttributes {
			t.Fatalf("kind byte %d, want %d", again[0], entryAttributes)
		}
		a2, err := decodeAttributes(again[1:])
		if err != nil || a2 != a {
			t.Fatalf("round trip: %+v -> %+v, %v", a, a2, err)
		}
	})
}

// FuzzDecodeBatch: a batch entry arrives from the log, so any bytes must
// decode or fail without a panic, and what decodes survives a round trip.
func FuzzDecodeBatch(f *testing.F) {
	good := encodeBatch(3, 9, [][]byte{[]byte("a"), {}, {0x80, 0xff}})
	for _, s := range [][]byte{good[1:], good[1 : len(good)-1], {}, {1, 1, 0}, []byte("garbage")} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		member, seq, payloads, err := decodeBatch(data)
		if err != nil {
			return
		}
		again := encodeBatch(member, seq, payloads)
		m2, s2, p2, err := decodeBatch(again[1:])
		if err != nil || m2 != member || s2 != seq || len(p2) != len(payloads) {
			t.Fatalf("round trip of %x: %d %d %d payloads, %v", data, m2, s2, len(p2), err)
		}
		for i := range p2 {
			if !bytes.Equal(p2[i], payloads[i]) {
				t.Fatalf("payload %d changed in a round trip", i)
			}
		}
	})
}
