// Package backup is raftkv's backup file format: what GET /snapshot
// streams and `raftkv restore` reads (etcd's `etcdctl snapshot save` and
// `etcdutl snapshot restore`).
//
// A backup is one member's state machine as of one applied raft index,
// wrapped so that it can be checked and restored on its own: a header
// that says where it comes from, the state as the member's store writes
// its snapshot data files, and a SHA-256 over everything (etcd appends
// the same hash to its snapshot db).
//
// # Format (version 1)
//
// Integers are big endian.
//
//	magic      8 bytes "RAFTKVBK"
//	version    uint16, the format version (1)
//	index      uint64, the raft index the state is at (>= 1)
//	term       uint64, the raft term of the entry at that index (>= 1)
//	cluster    uint64, the cluster id of the member that took it
//	member     uint64, the id of the member that took it (>= 1)
//	mode       uint8: 1 plain member, 2 shard group member, 3 config group member
//	group      uint64, the shard group (non-zero only for mode 2)
//	buckets    uint32, the bucket count of the key space (1-16384)
//	created    int64, when it was taken, Unix nanoseconds
//	header CRC uint32, CRC-32C of the header fields above, magic included
//	data       chunks: uint32 length n (1 to 1 MiB), then n bytes of the
//	           state; a chunk of length 0 ends the data
//	trailer    32 bytes, SHA-256 of every byte before it
//
// Nothing may follow the trailer. The data is opaque here: it is whatever
// the store's snapshot function writes (kvstore's format, which carries
// its own version and checksum), so a backup keeps working whatever
// version of that format the member wrote; the binary that restores it
// must read that version. The data is framed in chunks because its length
// is not known when the header is sent: the state is streamed as it is
// encoded, never buffered whole.
//
// The header CRC lets a reader refuse a damaged header before it trusts
// its fields; the trailer covers the whole file, header included. A
// Reader hands out the data as it reads it and answers io.EOF only once
// the trailer matched and nothing follows it: a caller that must not act
// on a damaged file (restore) writes the data somewhere temporary and
// keeps it only after io.EOF.
//
// # What it must not do
//
// It knows nothing of raft, the store or the network: it imports only the
// standard library and shardmap (for the bucket bound). Both the server
// (daemon) and the Go client use it.
//
// # Invariants
//
//  1. A Reader returns io.EOF only for a whole file whose trailer matches
//     the SHA-256 of everything before it, with nothing after it; any
//     other file ends in ErrNotBackup, ErrVersion, ErrCorrupt,
//     ErrTruncated or ErrChecksum.
//  2. No length read from a file makes a Reader allocate more than one
//     chunk buffer of MaxChunk bytes.
//  3. A Writer writes a header only if Header.Validate accepts it, and
//     every header a Reader accepts passes Header.Validate.
package backup
