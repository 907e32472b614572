//go:build !raftkv_broken_cas

package kvstore

// brokenCAS is true only in the deliberately broken build used as the
// negative control of the CAS and transaction models (build tag
// raftkv_broken_cas).
const brokenCAS = false
