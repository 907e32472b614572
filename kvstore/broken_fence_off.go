//go:build !raftkv_broken_fence

package kvstore

// brokenFence is true only in the deliberately broken build used as a
// negative control of the sharding tests (build tag raftkv_broken_fence).
const brokenFence = false
