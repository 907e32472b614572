package client

import (
	"fmt"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// KeyValue is a key's value and versions.
type KeyValue struct {
	Key   string
	Value []byte
	// CreateIndex and ModIndex are the versions (of the key's group) of
	// the writes that created the key and last modified it: the raft
	// index of the entry that carried the write, or above it when that
	// index had already given a version in the key's bucket (see the
	// README's "Versions"). ModIndex names one value of the key for
	// good, and is what WithIfMatch takes.
	CreateIndex, ModIndex uint64
	// TTL is the time to live the last put gave the key (not the time
	// left); 0: none.
	TTL time.Duration
}

// Headers of a read's versions.
const (
	HeaderCreateIndex = "X-Create-Index"
	HeaderTTL         = "X-TTL"
)

// versionsOf reads the versions of key from a read's headers: ETag
// "<mod index>", X-Create-Index, X-TTL (seconds) and X-Raft-Index.
func versionsOf(key string, h http.Header) (KeyValue, uint64) {
	kv := KeyValue{Key: key}
	kv.ModIndex, _ = parseETag(h.Get("ETag"))
	kv.CreateIndex, _ = strconv.ParseUint(h.Get(HeaderCreateIndex), 10, 64)
	if s, err := strconv.ParseFloat(h.Get(HeaderTTL), 64); err == nil && s > 0 {
		kv.TTL = secondsDuration(s)
	}
	index, _ := strconv.ParseUint(h.Get(HeaderRaftIndex), 10, 64)
	return kv, index
}

// parseETag reads an entity tag "<mod index>".
func parseETag(v string) (uint64, bool) {
	v = strings.TrimSpace(v)
	if len(v) >= 2 && v[0] == '"' && v[len(v)-1] == '"' {
		v = v[1 : len(v)-1]
	}
	n, err := strconv.ParseUint(v, 10, 64)
	return n, err == nil && v != "" && v[0] != '+'
}

// WithIfMatch makes a Put or Delete apply only if the key is at version
// mod (its ModIndex, as GetKV returns it; 0: only if the key is absent).
// Otherwise the call fails with ErrPreconditionFailed, whose *Error's
// ModIndex is the key's current version, and nothing is changed
// (If-Match: "<mod>").
func WithIfMatch(mod uint64) WriteOption {
	return func(c *call) {
		c.setHeader("If-Match", `"`+strconv.FormatUint(mod, 10)+`"`)
		c.conds++
	}
}

// WithIfExists makes a Put or Delete apply only if the key exists
// (If-Match: *); otherwise ErrPreconditionFailed, as WithIfMatch.
func WithIfExists() WriteOption {
	return func(c *call) {
		c.setHeader("If-Match", "*")
		c.conds++
	}
}

// WithIfAbsent makes a Put apply only if the key is absent (If-None-Match:
// *); otherwise ErrPreconditionFailed, as WithIfMatch.
func WithIfAbsent() WriteOption {
	return func(c *call) {
		c.setHeader("If-None-Match", "*")
		c.conds++
	}
}

// WithTTL makes a Put's key expire ttl after the write is applied (1s to
// a year, whole seconds or more precise); a Put without it makes the key
// permanent. Expiry is decided by the key's group's leader and is seen
// by watches as an "expire" event.
func WithTTL(ttl time.Duration) WriteOption { return func(c *call) { c.ttl = ttl } }

func (c *call) setHeader(name, value string) {
	if c.header == nil {
		c.header = http.Header{}
	}
	c.header.Set(name, value)
}

// MinTTL and MaxTTL bound the TTL a member takes (WithTTL, TxnOp.TTL).
const (
	MinTTL = time.Second
	MaxTTL = 8760 * time.Hour
)

// checkWriteOptions refuses the options a write cannot carry, before
// anything is sent, and puts a Put's TTL in its query.
func (c *call) checkWriteOptions() error {
	if c.conds > 1 {
		return badInput(c.op, c.key, "give one condition: WithIfMatch, WithIfExists or WithIfAbsent, once")
	}
	if c.conds > 0 && c.method != http.MethodPut && c.method != http.MethodDelete {
		return badInput(c.op, c.key, "WithIfMatch and WithIfAbsent go with Put and Delete")
	}
	if c.header.Get("If-None-Match") != "" && c.method != http.MethodPut {
		return badInput(c.op, c.key, "WithIfAbsent goes with Put")
	}
	if c.ttl == 0 {
		return nil
	}
	if c.method != http.MethodPut {
		return badInput(c.op, c.key, "WithTTL goes with Put")
	}
	if c.ttl < MinTTL || c.ttl > MaxTTL {
		return badInput(c.op, c.key, "WithTTL(%v): a TTL is from %v to %v", c.ttl, MinTTL, MaxTTL)
	}
	sep := "?"
	if strings.Contains(c.path, "?") {
		sep = "&"
	}
	c.path += sep + "ttl=" + url.QueryEscape(fmt.Sprint(c.ttl))
	return nil
}

// secondsDuration is s seconds, rounded to the nanosecond: 4.1 seconds is
// 4.1 s, where truncating the float product gives 4.099999999 s, which a
// router would pass on as X-TTL 4.099999999.
func secondsDuration(s float64) time.Duration {
	return time.Duration(math.Round(s * float64(time.Second)))
}
