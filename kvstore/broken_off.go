//go:build !raftkv_brokenreads

package kvstore

// brokenLocalReads is true only in the deliberately broken build used as
// the robustness suite's negative control (build tag raftkv_brokenreads).
const brokenLocalReads = false
