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
