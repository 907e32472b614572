package router

import (
	"math"
	"net/http"
	"testing"
)

// FuzzParseCursor: a merged watch's Last-Event-ID (its SSE id, such as
// 1=71.0@4,2=98@4) parses to a position of each group within bounds that
// the cursor's String writes back to the same cursor, or is a 400; never
// a cursor that would silently start a group from now on.
// Run it as a fuzzer with: go test -run='^$' -fuzz=FuzzParseCursor ./router/
func FuzzParseCursor(f *testing.F) {
	for _, s := range []string{"1=71.0,2=98", "1=71", "3=5.4294967295", "1=71.0,1=72.0", "1=0", "1=0.3", "0=5",
		"1=18446744073709551615", "1=18446744073709551615.0", "1=5.4294967296", "", ",", "1=", "=5", "1=5,", " 1=5 ",
		"1=5, 2=6", "1=+5", "1=5.-1", "a=b", "1=5=6", "1=5.2.3", "1=71.0@4,2=98@4", "1=5@0", "1=5@", "1=5@3@4", "1=@4",
		"1=5.2@18446744073709551615"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		c, err := parseCursor(s)
		if err != nil {
			a, ok := err.(*answer)
			if !ok || a.status != http.StatusBadRequest || c != nil {
				t.Fatalf("parseCursor(%q) = %v, %v: want no cursor and a 400", s, c, err)
			}
			return
		}
		if len(c) == 0 {
			t.Fatalf("parseCursor(%q) = an empty cursor and no error", s)
		}
		for g, p := range c {
			if g == 0 || p.index == 0 || p.pos < -1 || p.pos > math.MaxUint32 || (p.pos < 0 && p.index == math.MaxUint64) {
				t.Fatalf("parseCursor(%q): group %d at %+v, out of bounds", s, g, p)
			}
		}
		again, err := parseCursor(c.String())
		if err != nil || len(again) != len(c) {
			t.Fatalf("parseCursor(%q) = %v, written back as %q: %v, %v", s, c, c.String(), again, err)
		}
		for g, p := range c {
			if again[g] != p {
				t.Fatalf("round trip of %q: group %d at %+v, then %+v", s, g, p, again[g])
			}
		}
	})
}

// TestParseCursorRejects: a cursor naming a group twice, an index 0 (a
// group the cursor's String leaves out, which would then start from now
// on) or, without a position, the last index (nothing can follow it)
// is refused.
func TestParseCursorRejects(t *testing.T) {
	for _, s := range []string{"1=71.0,1=72.0", "1=5,2=6,1=7", "1=0", "2=0.3", "1=18446744073709551615", "1=5@0", "1=5@", "1=5@x",
		"1=5@3@4", "1=@4", "1=5.@4"} {
		if c, err := parseCursor(s); err == nil {
			t.Errorf("parseCursor(%q) = %v, want a 400", s, c)
		}
	}
	for _, s := range []string{"1=71.0,2=98", "1=18446744073709551615.0", "7=1", "1=71.0@4,2=98@5"} {
		if _, err := parseCursor(s); err != nil {
			t.Errorf("parseCursor(%q): %v", s, err)
		}
	}
	if c, err := parseCursor("1=71.0@4,2=98"); err != nil || c[1] != (position{71, 0, 4}) || c[2] != (position{98, -1, 0}) ||
		c.String() != "1=71.0@4,2=98" {
		t.Errorf(`parseCursor("1=71.0@4,2=98") = %+v (%q), %v`, c, c.String(), err)
	}
}
