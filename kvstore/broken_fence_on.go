//go:build raftkv_broken_fence

package kvstore

// brokenFence makes ExportBucket, InstallBucket and DeleteBucket skip
// their config version and bucket status checks, and writes skip the
// bucket fence at apply: a deliberately broken build that the sharding
// tests (and the robustness suite) must catch. Never built by default.
const brokenFence = true
