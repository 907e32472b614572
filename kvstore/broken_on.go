//go:build raftkv_brokenreads

package kvstore

// brokenLocalReads makes linearizable reads skip ReadIndex and serve local
// state: a deliberately broken build that the robustness suite must catch.
// Never built by default.
const brokenLocalReads = true
