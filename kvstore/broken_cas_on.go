//go:build raftkv_broken_cas

package kvstore

// brokenCAS makes a Txn's compares (so If-Match and If-None-Match too)
// decided on the proposing member's local state before it proposes, the
// chosen branch then applied unconditionally: a deliberately broken build
// that the robustness suite's CAS and transaction models must catch.
// Never built by default.
const brokenCAS = true
