package kvjson

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"unicode/utf16"
)

func TestLoneSurrogate(t *testing.T) {
	for _, tc := range []struct {
		body, want string
	}{
		{`{"a":"b"}`, ""},
		{`{"\u00e9":"\u20ac"}`, ""},
		{`{"k":"\ud83d\ude00"}`, ""},             // a pair: U+1F600
		{`{"k":"\uD83D\uDE00"}`, ""},             // upper case
		{`{"k":"\ud800"}`, `\ud800`},             // a high half alone
		{`{"k":"x\udc00y"}`, `\udc00`},           // a low half alone
		{`{"\ud800x":"v"}`, `\ud800`},            // in a key
		{`{"k":"\ud800\u0041"}`, `\ud800`},       // a high half, then no low one
		{`{"k":"\ud800\ud800\udc00"}`, `\ud800`}, // the first high half has no low one
		{`{"k":"\\ud800"}`, ""},                  // an escaped backslash, then text
		{`{"k":"\\\ud800"}`, `\ud800`},           // an escaped backslash, then the escape
		{`{"k":"\"\ud800"}`, `\ud800`},           // an escaped quote stays in the string
		{`{"k":"\u12"}`, ""},                     // malformed: the decoder's to refuse
		{`{"k":"\ud80`, ""},                      // cut short
		{`{"k":"\ud800`, `\ud800`},               // cut short after a whole escape
		{`{"k":"\ud800\u`, `\ud800`},
		{`{"k":"\ud800\udc0"}`, `\ud800`},
		{`{"k":"\udbff\udfff"}`, ""}, // the last pair
		{`{"k":"\ue000"}`, ""},       // past the surrogates
	} {
		got, ok := LoneSurrogate([]byte(tc.body))
		if got != tc.want || ok != (tc.want != "") {
			t.Errorf("LoneSurrogate(%s) = %q, %v; want %q", tc.body, got, ok, tc.want)
		}
	}
}

// FuzzLoneSurrogate: for a JSON string of \u escapes of any UTF-16 code
// units, LoneSurrogate finds one exactly when the units are not valid
// UTF-16, and when it finds none encoding/json decodes the units as
// utf16 does.
func FuzzLoneSurrogate(f *testing.F) {
	f.Add([]byte{0xd8, 0x3d, 0xde, 0x00})
	f.Add([]byte{0xd8, 0x00})
	f.Add([]byte{0xdc, 0x00, 0xd8, 0x00})
	f.Add([]byte{0x00, 0x41, 0xff, 0xfd})
	f.Fuzz(func(t *testing.T, raw []byte) {
		units := make([]uint16, len(raw)/2)
		var b strings.Builder
		b.WriteString(`"`)
		for i := range units {
			units[i] = uint16(raw[2*i])<<8 | uint16(raw[2*i+1])
			if i%2 == 0 {
				fmt.Fprintf(&b, `\u%04x`, units[i])
			} else {
				fmt.Fprintf(&b, `\u%04X`, units[i])
			}
		}
		b.WriteString(`"`)
		body := []byte(b.String())
		_, lone := LoneSurrogate(body)
		valid := true
		for i := 0; i < len(units); i++ {
			switch u := rune(units[i]); {
			case utf16.IsSurrogate(u) && u < 0xdc00 && i+1 < len(units) && 0xdc00 <= units[i+1] && units[i+1] < 0xe000:
				i++
			case utf16.IsSurrogate(u):
				valid = false
			}
		}
		if lone == valid {
			t.Fatalf("LoneSurrogate(%s) says lone %v for units %04x", body, lone, units)
		}
		if !lone {
			var s string
			if err := json.Unmarshal(body, &s); err != nil {
				t.Fatalf("json.Unmarshal(%s): %v", body, err)
			}
			if want := string(utf16.Decode(units)); s != want {
				t.Fatalf("json.Unmarshal(%s) = %q, want %q", body, s, want)
			}
		}
	})
}
