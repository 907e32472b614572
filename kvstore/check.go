package kvstore

import "io"

// SnapshotKind is what CheckSnapshot found in a snapshot's data: the
// kind of store it is of, and how many keys it holds.
type SnapshotKind struct {
	// Mode is "plain", "shard" or "config".
	Mode string
	// Group is the shard group of a shard member's state, else 0.
	Group uint64
	// Buckets is the bucket count of the key space.
	Buckets int
	// Keys is the number of keys in every bucket.
	Keys int
}

// CheckSnapshot decodes a snapshot's data, as written by the function
// Snapshot returns, the way a member restoring it would: the format and
// its version, every part of the state, the checksum. It says what kind
// of store the state is of, or why this binary could not restore it
// (ErrCorruptSnapshot). size, when positive, is the data's length. It
// holds the decoded state until it returns. A snapshot of format 1 (from
// before buckets) is said to be of one bucket: it restores into a plain
// member of any bucket count. It is the hook through which
// a backup is checked before a data dir is made of it (daemon.Restore).
func CheckSnapshot(r io.Reader, size int64) (SnapshotKind, error) {
	st, err := readSnapshot(r, size)
	if err != nil {
		return SnapshotKind{}, err
	}
	k := SnapshotKind{Mode: st.mode.String(), Group: st.group, Buckets: st.nbuckets}
	for _, b := range st.buckets {
		k.Keys += b.data.Len()
	}
	return k, nil
}
