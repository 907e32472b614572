package client

import (
	"testing"

	"github.com/raftkv/raftkv/httpapi"
)

// TestReservedKeysMatchTheMembers: every path a member serves as an
// endpoint rather than as a key is a name the Client sends as /key/<key>,
// so that Get and Put reach the key. A member path added without this
// list once made Get("ui") return the dashboard.
func TestReservedKeysMatchTheMembers(t *testing.T) {
	for _, name := range httpapi.ReservedNames {
		if !reservedKey(name) {
			t.Errorf("members reserve /%s, but the Client would send the key %q there", name, name)
		}
	}
	for _, prefix := range httpapi.ReservedPrefixes {
		if !reservedKey(prefix + "x") {
			t.Errorf("members reserve /%s..., but the Client would send the key %q there", prefix, prefix+"x")
		}
	}
	// A sharded member's mounted routes (configgroup's and shardgroup's).
	for _, name := range []string{"config", "config/join", "shard/pull"} {
		if !reservedKey(name) {
			t.Errorf("sharded members serve /%s, but the Client would send the key %q there", name, name)
		}
	}
	// Names that are keys at the root stay there.
	for _, name := range []string{"plain", "txn", "keys", "uix", "status-page", "leader/transfer"} {
		if reservedKey(name) {
			t.Errorf("the Client sends the key %q as /key/%s, though /%s is a key at a member", name, name, name)
		}
	}
}
