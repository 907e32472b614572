package raftnode

// Failpoints name the steps of saving a snapshot, in the order they are
// taken. A test sets Node.failpoint to stop the member at one of them, as
// a crash would, and restarts it from what its data dir held at that
// moment; etcd marks the same steps with gofail comments.
const (
	// The data file of a snapshot from the leader was saved by the
	// transport; nothing else was.
	fpSnapReceived = "snapshot-received"
	// The data file of this member's own snapshot was written.
	fpSnapDataWritten = "snapshot-data-written"
	// The .snap file was saved, but not its WAL record.
	fpSnapFileSaved = "snapshot-file-saved"
	// The WAL record of the snapshot was saved and synced.
	fpSnapRecordSaved = "snapshot-wal-record-saved"
	// A snapshot from the leader: the HardState that commits it was handed
	// to the WAL, which may still buffer it.
	fpSnapHardStateSaved = "snapshot-hardstate-saved"
	// Older WAL segments and data files were released for purging.
	fpSnapReleased = "snapshot-released"
)

// fail runs the failpoint set by a test, if any; an error stops the node.
func (n *Node) fail(name string) error {
	if n.failpoint == nil {
		return nil
	}
	return n.failpoint(name)
}
