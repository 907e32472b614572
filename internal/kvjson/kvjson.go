// Package kvjson is the JSON form of a key that members and routers write
// in transaction gets, listings and watch events: key and value as text,
// or as key_base64 and value_base64 when they are not UTF-8, with the
// key's versions and TTL.
package kvjson

import (
	"encoding/base64"
	"time"
	"unicode/utf8"
)

// KV is a key in a JSON answer.
type KV struct {
	Key         string   `json:"key,omitempty"`
	KeyBase64   string   `json:"key_base64,omitempty"`
	Value       *string  `json:"value,omitempty"`
	ValueBase64 *string  `json:"value_base64,omitempty"`
	CreateIndex uint64   `json:"create_index,omitempty"`
	ModIndex    uint64   `json:"mod_index,omitempty"`
	TTL         *float64 `json:"ttl,omitempty"` // seconds
}

// Of is a key in a JSON answer; withValue says whether to include its
// value (not for keys_only), ttl 0 means none.
func Of(key string, value []byte, createIndex, modIndex uint64, ttl time.Duration, withValue bool) KV {
	j := KV{CreateIndex: createIndex, ModIndex: modIndex}
	if utf8.ValidString(key) {
		j.Key = key
	} else {
		j.KeyBase64 = base64.StdEncoding.EncodeToString([]byte(key))
	}
	if withValue {
		if utf8.Valid(value) {
			v := string(value)
			j.Value = &v
		} else {
			v := base64.StdEncoding.EncodeToString(value)
			j.ValueBase64 = &v
		}
	}
	if ttl > 0 {
		secs := ttl.Seconds()
		j.TTL = &secs
	}
	return j
}

// LoneSurrogate returns the first escape in body's JSON strings of a
// UTF-16 surrogate that is not half of a pair (\ud800-\udbff followed by
// \udc00-\udfff), and whether there is one. Such an escape stands for no
// character, and encoding/json decodes it as U+FFFD, so two different
// keys or values would become one: a member refuses them instead. body
// is not otherwise checked; what is not JSON the decoder refuses.
func LoneSurrogate(body []byte) (string, bool) {
	inString := false
	for i := 0; i < len(body); i++ {
		c := body[i]
		if !inString {
			inString = c == '"'
			continue
		}
		switch c {
		case '"':
			inString = false
		case '\\':
			r, ok := escapedUnit(body[i:])
			switch {
			case !ok: // \n and the like, or malformed
				i++
			case 0xd800 <= r && r < 0xdc00:
				if low, ok := escapedUnit(body[i+6:]); ok && 0xdc00 <= low && low < 0xe000 {
					i += 11
					continue
				}
				return string(body[i : i+6]), true
			case 0xdc00 <= r && r < 0xe000:
				return string(body[i : i+6]), true
			default:
				i += 5
			}
		}
	}
	return "", false
}

// escapedUnit decodes the \uXXXX escape b starts with.
func escapedUnit(b []byte) (rune, bool) {
	if len(b) < 6 || b[0] != '\\' || b[1] != 'u' {
		return 0, false
	}
	var r rune
	for _, c := range b[2:6] {
		switch {
		case '0' <= c && c <= '9':
			r = r<<4 | rune(c-'0')
		case 'a' <= c && c <= 'f':
			r = r<<4 | rune(c-'a'+10)
		case 'A' <= c && c <= 'F':
			r = r<<4 | rune(c-'A'+10)
		default:
			return 0, false
		}
	}
	return r, true
}
