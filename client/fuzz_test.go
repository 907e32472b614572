package client

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"maps"
	"math"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The fuzz targets of the client's data-model parsers: the watch's
// Server-Sent Events stream, a member's event id, and the continue token
// of a listing gathered from groups (which the router passes on too).
// Run one as a fuzzer with: go test -run='^$' -fuzz=FuzzWatchStream ./client/

// FuzzWatchStream reads an arbitrary stream as a watch's: it never
// panics, always ends with an error (a stream that ends is one), delivers
// each event with the position of its id, and leaves a resumption point
// within bounds: after a position below 2^32 of an index >= 1, or from an
// index.
func FuzzWatchStream(f *testing.F) {
	for _, s := range []string{
		": progress 5\n\nid: 6.0\nevent: put\ndata: {\"type\":\"put\",\"key\":\"a\",\"value\":\"x\",\"create_index\":6,\"mod_index\":6}\n\n",
		"id: 7.1\nevent: delete\ndata: {\"type\":\"delete\",\"key\":\"a\",\"mod_index\":7}\n\n: progress 9\n\n",
		"id: 7.1\nevent: put\ndata: {\"key_base64\":\"/w==\",\"value_base64\":\"AA==\",\"mod_index\":7}\n\n",
		"event: error\ndata: {\"code\":\"too_slow\",\"error\":\"the watcher fell behind\"}\n\n",
		"event: error\ndata: {\"code\":\"compacted\",\"oldest_index\":40}\n\n",
		"id: 1=71.0,2=98\nevent: put\ndata: {\"key\":\"a\",\"mod_index\":71}\n\n",
		"id: 12\n\n", "id: 18446744073709551615\n\n", "id: 0.0\n\n", "id: 5.4294967296\n\n",
		"event: bucket_out\ndata: {\"type\":\"bucket_out\",\"bucket\":3,\"version\":2,\"mod_index\":9}\n\n",
		"id: 9.1\nevent: group_left\ndata: {\"type\":\"group_left\",\"version\":2,\"mod_index\":9}\n\n",
		"data: {\"key\":\"a\"\ndata: }\n\n", "data: not json\n\n", "id: 3.1\ndata: {\"key_base64\":\"!!\"}\n\n",
		": progress 0\n\n", ": progress 18446744073709551615\n\n", ": progress -1\n\n", "",
		"id: 12.0\nevent: put\ndata: {\"key\":\"a\",\"mod_index\":12}\n\n: progress 12", // cut in ": progress 123"
		"id:4.2\r\nevent:put\r\ndata:{\"key\":\"a\",\"mod_index\":4}\r\n\r\n",
	} {
		f.Add([]byte(s), false, false)
		f.Add([]byte(s), true, true)
	}
	f.Fuzz(func(t *testing.T, stream []byte, progress, markers bool) {
		w := &watchStream{opts: WatchOptions{Prefix: "p", IdleTimeout: time.Minute, Progress: progress, Markers: markers},
			afterPos: -1, cancel: func() {}}
		ch := make(chan WatchEvent, len(stream)+1)
		err := w.read(context.Background(), bytes.NewReader(stream), ch)
		close(ch)
		if err == nil {
			t.Fatal("read returned nil: a stream that ends must say why")
		}
		for ev := range ch {
			if ev.Type == EventProgress {
				if !progress {
					t.Fatalf("a progress event without WatchOptions.Progress: %+v", ev)
				}
				continue
			}
			if (ev.Type == EventBucketIn || ev.Type == EventBucketOut || ev.Type == EventGroupLeft) && !markers {
				t.Fatalf("a marker without WatchOptions.Markers: %+v", ev)
			}
			if i, p, ok := strings.Cut(ev.ID, "."); ok {
				pos, err := strconv.ParseUint(p, 10, 32)
				if n, err2 := strconv.ParseUint(i, 10, 64); err == nil && err2 == nil && n > 0 && (uint64(ev.Pos) != pos || ev.Index != n) {
					t.Fatalf("event id %q delivered with index %d, position %d", ev.ID, ev.Index, ev.Pos)
				}
			}
		}
		if w.afterPos < -1 || w.afterPos > math.MaxUint32 || (w.afterPos >= 0 && w.fromIndex < 1) {
			t.Fatalf("resumption point out of bounds: from %d after %d", w.fromIndex, w.afterPos)
		}
		// A last line the stream ended in the middle of says nothing.
		whole := &watchStream{opts: w.opts, afterPos: -1, cancel: func() {}}
		_ = whole.read(context.Background(), bytes.NewReader(stream[:bytes.LastIndexByte(stream, '\n')+1]), make(chan WatchEvent, len(stream)+1))
		if whole.fromIndex != w.fromIndex || whole.afterPos != w.afterPos || whole.lastID != w.lastID {
			t.Fatalf("a cut last line moved the resumption point: (%d, %d, %q), without it (%d, %d, %q)",
				w.fromIndex, w.afterPos, w.lastID, whole.fromIndex, whole.afterPos, whole.lastID)
		}
	})
}

// FuzzParseEventID: a member's event id "<index>.<pos>" reads as an index
// >= 1 and a position, written back to the same, or not at all.
func FuzzParseEventID(f *testing.F) {
	for _, s := range []string{"71.0", "1.4294967295", "1.4294967296", "0.0", "71", "", ".", "+1.2", "1.+2", "1.2.3", " 1.2", "18446744073709551615.0"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, id string) {
		index, pos, ok := parseEventID(id)
		if !ok {
			return
		}
		if index < 1 {
			t.Fatalf("parseEventID(%q) = %d, %d: index 0", id, index, pos)
		}
		back := strconv.FormatUint(index, 10) + "." + strconv.FormatUint(uint64(pos), 10)
		if i2, p2, ok := parseEventID(back); !ok || i2 != index || p2 != pos {
			t.Fatalf("parseEventID(%q) = %d, %d; written back as %q: %d, %d, %v", id, index, pos, back, i2, p2, ok)
		}
	})
}

// FuzzDecodeGroupsToken: a gathered listing's continue token decodes,
// for its own range only, to a token with a last key that encodes back to
// itself; anything else is a bad request, not a zero token taken for the
// start of the range. Tokens of version 1 (keys as JSON text) are read
// too.
func FuzzDecodeGroupsToken(f *testing.F) {
	f.Add(groupsToken{Prefix: "p/", After: "p/k", Indexes: map[uint64]uint64{1: 71, 2: 98}}.encode(), "p/", "", "")
	f.Add(groupsToken{Start: "a", End: "b", After: "a\x00"}.encode(), "", "a", "b")
	f.Add(groupsToken{Prefix: "\xff", After: "\xff\x80"}.encode(), "\xff", "", "")
	f.Add(groupsToken{}.encode(), "", "", "")
	v1 := func(w tokenWire) string { b, _ := json.Marshal(w); return base64.RawURLEncoding.EncodeToString(b) }
	f.Add(v1(tokenWire{V: 1, Prefix: "p/", After: "p/k", Indexes: map[uint64]uint64{1: 71}}), "p/", "", "")
	f.Add(v1(tokenWire{V: 3, AfterB: []byte("k")}), "", "", "")
	for _, s := range []string{"", "e30", "!!", "eyJ2IjoxLCJhIjoiayJ9", "eyJ2IjoxLCJhIjoiayIsImkiOnsiLTEiOjV9fQ", "bnVsbA"} {
		f.Add(s, "", "", "")
	}
	f.Fuzz(func(t *testing.T, s, prefix, start, end string) {
		opts := ListOptions{Prefix: prefix, Start: start, End: end}
		tok, err := decodeGroupsToken(s, opts)
		if err != nil {
			var e *Error
			if !errors.As(err, &e) || e.Code != CodeBadRequest || !errors.Is(err, ErrBadRequest) {
				t.Fatalf("decodeGroupsToken(%q) error %v: not a bad request", s, err)
			}
			return
		}
		if tok.After == "" || tok.Prefix != prefix || tok.Start != start || tok.End != end {
			t.Fatalf("decodeGroupsToken(%q) = %+v for range %q %q %q", s, tok, prefix, start, end)
		}
		again, err := decodeGroupsToken(tok.encode(), opts)
		if err != nil || again.After != tok.After || !maps.Equal(again.Indexes, tok.Indexes) {
			t.Fatalf("round trip of %+v: %+v, %v", tok, again, err)
		}
	})
}
