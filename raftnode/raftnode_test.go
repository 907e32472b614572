package raftnode

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"
)

func ent(i uint64) *raftpb.Entry { return &raftpb.Entry{Index: proto.Uint64(i), Term: proto.Uint64(1)} }

func TestEntriesToApply(t *testing.T) {
	tests := []struct {
		name      string
		ents      []*raftpb.Entry
		applied   uint64
		wantFirst uint64
		wantLen   int
		wantErr   bool
	}{
		{"empty", nil, 5, 0, 0, false},
		{"all new", []*raftpb.Entry{ent(6), ent(7)}, 5, 6, 2, false},
		{"some applied", []*raftpb.Entry{ent(4), ent(5), ent(6)}, 5, 6, 1, false},
		{"all applied", []*raftpb.Entry{ent(3), ent(4)}, 5, 0, 0, false},
		{"gap", []*raftpb.Entry{ent(8)}, 5, 0, 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := entriesToApply(tt.ents, tt.applied)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, want error %v", err, tt.wantErr)
			}
			if len(got) != tt.wantLen {
				t.Fatalf("got %d entries, want %d", len(got), tt.wantLen)
			}
			if tt.wantLen > 0 && got[0].GetIndex() != tt.wantFirst {
				t.Fatalf("first index %d, want %d", got[0].GetIndex(), tt.wantFirst)
			}
		})
	}
}

// TestProcessMessagesPatchesSnapshotConfState: a snapshot sent to a member
// added after the snapshot was taken must list that member, and the
// stored snapshot must not be modified.
// A follower forwards proposals and read requests before its fsync;
// everything else, responses above all, waits for it.
func TestSplitForwarded(t *testing.T) {
	msg := func(typ raftpb.MessageType) *raftpb.Message { return &raftpb.Message{Type: typ.Enum()} }
	in := []*raftpb.Message{
		msg(raftpb.MsgAppResp), msg(raftpb.MsgProp), msg(raftpb.MsgVoteResp),
		msg(raftpb.MsgReadIndex), msg(raftpb.MsgHeartbeatResp), msg(raftpb.MsgProp),
	}
	early, rest := splitForwarded(in)
	types := func(ms []*raftpb.Message) (out []raftpb.MessageType) {
		for _, m := range ms {
			out = append(out, m.GetType())
		}
		return out
	}
	if got, want := types(early), []raftpb.MessageType{raftpb.MsgProp, raftpb.MsgReadIndex, raftpb.MsgProp}; !slices.Equal(got, want) {
		t.Errorf("forwarded early: %v, want %v", got, want)
	}
	if got, want := types(rest), []raftpb.MessageType{raftpb.MsgAppResp, raftpb.MsgVoteResp, raftpb.MsgHeartbeatResp}; !slices.Equal(got, want) {
		t.Errorf("sent after fsync: %v, want %v", got, want)
	}
}

func TestProcessMessagesPatchesSnapshotConfState(t *testing.T) {
	n := &Node{confState: &raftpb.ConfState{Voters: []uint64{1, 2, 3, 4}}}
	stored := &raftpb.Snapshot{
		Data:     []byte("state"),
		Metadata: &raftpb.SnapshotMetadata{Index: proto.Uint64(10), Term: proto.Uint64(2), ConfState: &raftpb.ConfState{Voters: []uint64{1, 2, 3}}},
	}
	msgs := []*raftpb.Message{
		{Type: raftpb.MsgApp.Enum(), To: proto.Uint64(2)},
		{Type: raftpb.MsgSnap.Enum(), To: proto.Uint64(4), Snapshot: stored},
	}
	out := n.processMessages(msgs)
	if got := out[0].GetSnapshot(); got != nil {
		t.Fatalf("append message got a snapshot: %v", got)
	}
	s := out[1].GetSnapshot()
	if got := s.GetMetadata().GetConfState().GetVoters(); len(got) != 4 || got[3] != 4 {
		t.Fatalf("patched voters = %v, want [1 2 3 4]", got)
	}
	if s.GetMetadata().GetIndex() != 10 || s.GetMetadata().GetTerm() != 2 || !bytes.Equal(s.GetData(), []byte("state")) {
		t.Fatalf("patched snapshot lost index, term or data: %v", s)
	}
	if got := stored.GetMetadata().GetConfState().GetVoters(); len(got) != 3 {
		t.Fatalf("stored snapshot was modified: voters %v", got)
	}
}

func TestEnvelopeRoundTrip(t *testing.T) {
	m := newMembership()
	m.Members[1] = Member{ID: 1, PeerURL: "http://127.0.0.1:1", ClientURL: "http://127.0.0.1:2"}
	m.Removed[7] = true
	data, err := encodeEnvelope(m)
	if err != nil {
		t.Fatal(err)
	}
	env, err := decodeEnvelope(data)
	if err != nil {
		t.Fatal(err)
	}
	if env.Membership.Members[1] != m.Members[1] || !env.Membership.Removed[7] {
		t.Fatalf("round trip mismatch: %+v", env)
	}
	if _, err := decodeEnvelope([]byte("garbage")); err == nil {
		t.Fatal("decoding garbage succeeded")
	}
}

func TestWriteDataFileAndPrune(t *testing.T) {
	dir := t.TempDir()
	for _, index := range []uint64{5, 10, 20, 30} {
		payload := bytes.Repeat([]byte{byte(index)}, int(index))
		n, err := writeDataFile(dir, index, 0, nil, func(w io.Writer) error { _, err := w.Write(payload); return err })
		if err != nil || n != int64(index) {
			t.Fatalf("write %d: %d bytes, %v", index, n, err)
		}
		got, err := os.ReadFile(filepath.Join(dir, dataFileName(index)))
		if err != nil || !bytes.Equal(got, payload) {
			t.Fatalf("read back %d: %v", index, err)
		}
	}
	failed := errors.New("disk full")
	if _, err := writeDataFile(dir, 40, 0, nil, func(io.Writer) error { return failed }); !errors.Is(err, failed) {
		t.Fatalf("a failing writer: %v", err)
	}
	pruneDataFiles(zaptest.NewLogger(t), dir, 2, 30)
	ents, _ := os.ReadDir(dir)
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	if want := []string{dataFileName(20), dataFileName(30)}; !slices.Equal(names, want) {
		t.Fatalf("after prune: %v, want %v (and no temporary files)", names, want)
	}
}

// TestWriteDataFilePacing: a data file is written no faster than its rate,
// and a stop during the write ends it with ErrStopped and no file.
func TestWriteDataFilePacing(t *testing.T) {
	dir := t.TempDir()
	chunk := bytes.Repeat([]byte{7}, 64<<10)
	writeMiB := func(mib int) func(io.Writer) error {
		return func(w io.Writer) error {
			for range mib * 16 {
				if _, err := w.Write(chunk); err != nil {
					return err
				}
			}
			return nil
		}
	}
	start := time.Now()
	if n, err := writeDataFile(dir, 1, 8<<20, nil, writeMiB(2)); err != nil || n != 2<<20 {
		t.Fatalf("paced write: %d bytes, %v", n, err)
	}
	// 2 MiB at 8 MiB/s is due after 250ms; a slow machine only adds to it.
	if took := time.Since(start); took < 200*time.Millisecond {
		t.Fatalf("2 MiB at 8 MiB/s took %v", took)
	}
	stopc := make(chan struct{})
	time.AfterFunc(50*time.Millisecond, func() { close(stopc) })
	if _, err := writeDataFile(dir, 2, 1<<20, stopc, writeMiB(64)); !errors.Is(err, ErrStopped) {
		t.Fatalf("write stopped midway: %v, want ErrStopped", err)
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != 1 || ents[0].Name() != dataFileName(1) {
		t.Fatalf("files after a stopped write: %v", ents)
	}
}

func TestAttributesRoundTrip(t *testing.T) {
	data, err := encodeAttributes(attributes{ID: 3, ClientURL: "http://h:1"})
	if err != nil {
		t.Fatal(err)
	}
	if data[0] != entryAttributes {
		t.Fatalf("kind byte %d", data[0])
	}
	a, err := decodeAttributes(data[1:])
	if err != nil || a.ID != 3 || a.ClientURL != "http://h:1" {
		t.Fatalf("got %+v, %v", a, err)
	}
	if w := wrapAppData([]byte("x")); w[0] != entryApp || string(w[1:]) != "x" {
		t.Fatalf("wrapAppData = %q", w)
	}
}

func TestMembershipChecks(t *testing.T) {
	m := newMembership()
	m.Members[1] = Member{ID: 1, PeerURL: "http://127.0.0.1:12379", ClientURL: "http://127.0.0.1:12380"}
	m.Members[2] = Member{ID: 2, PeerURL: "http://127.0.0.1:22379"}
	m.Removed[3] = true
	tests := []struct {
		name  string
		err   error
		want  error
		human string // the sentence for clients: which id, which URL, why
	}{
		{"add new", m.checkAdd(4, "http://127.0.0.1:42379"), nil, ""},
		{"add zero id", m.checkAdd(0, "http://127.0.0.1:42379"), ErrInvalidMember, "the member id must be positive"},
		{"add bad url", m.checkAdd(4, "127.0.0.1:42379"), ErrInvalidMember, `bad peer URL "127.0.0.1:42379": must start with http:// or https://`},
		{"add no port", m.checkAdd(4, "http://127.0.0.1"), ErrInvalidMember, `bad peer URL "http://127.0.0.1": no port`},
		{"add existing id", m.checkAdd(2, "http://127.0.0.1:42379"), ErrMemberExists, "member id 2 is already in use"},
		{"add removed id", m.checkAdd(3, "http://127.0.0.1:42379"), ErrMemberRemoved,
			"member id 3 belonged to a removed member and cannot be reused; add the member under a new id"},
		{"add used url", m.checkAdd(4, "http://127.0.0.1:22379"), ErrPeerURLExists, "peer URL http://127.0.0.1:22379 is already used by member 2"},
		{"add a client url", m.checkAdd(4, "http://127.0.0.1:12380"), ErrInvalidMember,
			"bad peer URL http://127.0.0.1:12380: it is member 1's client URL; a peer URL is the member's --cluster entry, its peer port"},
		{"update to a client url", m.checkUpdate(2, "http://127.0.0.1:12380"), ErrInvalidMember,
			"bad peer URL http://127.0.0.1:12380: it is member 1's client URL; a peer URL is the member's --cluster entry, its peer port"},
		{"remove member", m.checkRemove(2), nil, ""},
		{"remove unknown", m.checkRemove(9), ErrMemberNotFound, "there is no member 9"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if !errors.Is(tt.err, tt.want) && !(tt.want == nil && tt.err == nil) {
				t.Fatalf("err = %v, want %v", tt.err, tt.want)
			}
			if tt.err == nil {
				return
			}
			var h interface{ HumanMessage() string }
			if !errors.As(tt.err, &h) || h.HumanMessage() != tt.human {
				t.Errorf("HumanMessage of %v = %q, want %q", tt.err, h.HumanMessage(), tt.human)
			}
			if !strings.HasPrefix(tt.err.Error(), tt.want.Error()+": ") {
				t.Errorf("Error() = %q, want the sentinel's %q and the detail", tt.err, tt.want)
			}
		})
	}
	single := newMembership()
	single.Members[1] = Member{ID: 1}
	if err := single.checkRemove(1); !errors.Is(err, ErrLastMember) {
		t.Fatalf("removing the last member: %v", err)
	}
}

func TestConfigValidate(t *testing.T) {
	base := func() Config {
		return Config{ID: 1, Peers: []string{"http://127.0.0.1:1", "http://127.0.0.1:2"}, DataDir: "/tmp/x"}
	}
	tests := []struct {
		name   string
		mutate func(*Config)
		ok     bool
	}{
		{"valid", func(*Config) {}, true},
		{"zero id", func(c *Config) { c.ID = 0 }, false},
		{"id outside peers", func(c *Config) { c.ID = 3 }, false},
		{"no peers", func(c *Config) { c.Peers = nil }, false},
		{"bad peer", func(c *Config) { c.Peers[1] = "ftp://x:1" }, false},
		{"duplicate peer", func(c *Config) { c.Peers[1] = c.Peers[0] }, false},
		{"relative data dir", func(c *Config) { c.DataDir = "data" }, false},
		{"no data dir", func(c *Config) { c.DataDir = "" }, false},
		{"election not above heartbeat", func(c *Config) { c.ElectionTicks, c.HeartbeatTicks = 2, 2 }, false},
		{"one snapshot file", func(c *Config) { c.MaxSnapshotFiles = 1 }, false},
		{"two snapshot files", func(c *Config) { c.MaxSnapshotFiles = 2 }, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := base()
			tt.mutate(&c)
			c.applyDefaults()
			if err := c.Validate(); (err == nil) != tt.ok {
				t.Fatalf("Validate() = %v, want ok=%v", err, tt.ok)
			}
		})
	}
}

func TestErrorBehaviour(t *testing.T) {
	type behaviour interface {
		Unavailable() bool
		Timeout() bool
		Conflict() bool
		NotFound() bool
		BadRequest() bool
	}
	tests := []struct {
		err  error
		want string
	}{
		{ErrNoLeader, "unavailable"}, {ErrStopped, "unavailable"}, {ErrProposalDropped, "unavailable"},
		{ErrTimeout, "timeout"}, {ErrOutcomeUnknown, "timeout"}, {ErrMemberExists, "conflict"}, {ErrConfChangeInProgress, "conflict"},
		{ErrMemberNotFound, "notfound"}, {ErrInvalidMember, "badrequest"}, {ErrLastMember, "badrequest"},
	}
	for _, tt := range tests {
		var b behaviour
		if !errors.As(tt.err, &b) {
			t.Fatalf("%v has no behaviour methods", tt.err)
		}
		got := map[string]bool{"unavailable": b.Unavailable(), "timeout": b.Timeout(), "conflict": b.Conflict(), "notfound": b.NotFound(), "badrequest": b.BadRequest()}
		// No sentence for clients repeats the package prefix of Error().
		if h := tt.err.(interface{ HumanMessage() string }).HumanMessage(); strings.Contains(h, "raftnode") {
			t.Errorf("%v: HumanMessage %q names the package", tt.err, h)
		}
		if noLeader := tt.err.(interface{ NoLeader() bool }).NoLeader(); noLeader != (tt.err == ErrNoLeader) {
			t.Errorf("%v: NoLeader() = %v", tt.err, noLeader)
		}
		for k, v := range got {
			if v != (k == tt.want) {
				t.Errorf("%v: %s() = %v", tt.err, k, v)
			}
		}
	}
}

// After a snapshot the log keeps SnapshotCatchUpEntries entries behind it,
// or fewer when those carry more than SnapshotCatchUpBytes of data.
func TestCompactIndex(t *testing.T) {
	ms := raft.NewMemoryStorage()
	var ents []*raftpb.Entry
	for i := uint64(1); i <= 100; i++ {
		e := ent(i)
		e.Data = make([]byte, 100)
		ents = append(ents, e)
	}
	if err := ms.Append(ents); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name                 string
		entries, bytes, want uint64
		at                   uint64
	}{
		{"entries bound", 10, 1 << 20, 80, 90},
		{"bytes bound", 50, 1000, 80, 90}, // 10 entries of 100 bytes fit
		{"fewer entries than the catch-up", 500, 1 << 20, 1, 90},
		{"nothing fits", 10, 50, 90, 90},
	} {
		n := &Node{cfg: Config{SnapshotCatchUpEntries: c.entries, SnapshotCatchUpBytes: c.bytes}, disk: &diskState{storage: ms}}
		got, err := n.compactIndex(c.at)
		if err != nil || got != c.want {
			t.Errorf("%s: compactIndex(%d) = %d, %v; want %d", c.name, c.at, got, err, c.want)
		}
	}
}

func TestBatchRoundTrip(t *testing.T) {
	tests := []struct {
		name     string
		payloads [][]byte
	}{
		{"one", [][]byte{[]byte("a")}},
		{"empty payload", [][]byte{{}, []byte("b")}},
		{"binary", [][]byte{{0, 1, 2, 0xff, 0x80}, bytes.Repeat([]byte{0x80}, 300)}},
		{"many", func() [][]byte {
			var ps [][]byte
			for i := range 200 {
				ps = append(ps, bytes.Repeat([]byte{byte(i)}, i))
			}
			return ps
		}()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			data := encodeBatch(7, 1<<40, tt.payloads)
			if data[0] != entryBatch {
				t.Fatalf("kind byte %d", data[0])
			}
			member, seq, got, err := decodeBatch(data[1:])
			if err != nil {
				t.Fatal(err)
			}
			if member != 7 || seq != 1<<40 || len(got) != len(tt.payloads) {
				t.Fatalf("member %d seq %d, %d payloads", member, seq, len(got))
			}
			for i := range got {
				if !bytes.Equal(got[i], tt.payloads[i]) {
					t.Fatalf("payload %d: %x, want %x", i, got[i], tt.payloads[i])
				}
			}
		})
	}
}

func TestDecodeBatchRejectsBadFraming(t *testing.T) {
	good := encodeBatch(1, 2, [][]byte{[]byte("hello"), []byte("world")})[1:]
	tests := []struct {
		name string
		data []byte
	}{
		{"empty", nil},
		{"no seq", []byte{1}},
		{"no count", []byte{1, 2}},
		{"count past the data", []byte{1, 2, 9, 0}},
		{"truncated payload", good[:len(good)-1]},
		{"trailing bytes", append(append([]byte{}, good...), 0)},
		{"length past the data", []byte{1, 2, 1, 0xff, 0x01, 'x'}},
		{"overlong varint", append([]byte{1, 2, 1}, bytes.Repeat([]byte{0xff}, 11)...)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, _, _, err := decodeBatch(tt.data); !errors.Is(err, errBadBatch) {
				t.Fatalf("decodeBatch(%x) = %v, want errBadBatch", tt.data, err)
			}
		})
	}
}

// TestGatherPolicy checks when the leader's batcher proposes what it has
// queued: at once for the first batch and for a lone client's, after most
// of the previous batch's bytes under load, and after the wait otherwise.
func TestGatherPolicy(t *testing.T) {
	g := gatherPolicy{wait: time.Millisecond, limit: 1000}
	if g.due(0, 0, true) {
		t.Fatal("due with nothing queued")
	}
	if !g.due(1, 10, false) {
		t.Fatal("the first batch waits")
	}
	g.proposed(10) // a lone client's write
	if !g.due(1, 10, false) {
		t.Fatal("a lone client's next write waits")
	}
	g.proposed(500) // a batch under load: gather 450 bytes
	for _, tt := range []struct {
		n, size int
		waited  bool
		want    bool
	}{{1, 100, false, false}, {3, 449, false, false}, {3, 450, false, true}, {5, 600, false, true}, {1, 100, true, true}, {0, 0, true, false}, {1, 0, true, true}} {
		if got := g.due(tt.n, tt.size, tt.waited); got != tt.want {
			t.Errorf("after a 500-byte batch, due(%d payloads, %d bytes, waited %v) = %v, want %v", tt.n, tt.size, tt.waited, got, tt.want)
		}
	}
	g.proposed(5000) // larger than a message: gather no more than one
	if g.due(9, 999, false) || !g.due(9, 1000, false) {
		t.Errorf("after a batch over the limit, the target is %d, want the limit 1000", g.target)
	}
	never := gatherPolicy{wait: -1, limit: 1000}
	never.proposed(500)
	if !never.due(1, 1, false) {
		t.Error("with a negative wait, a payload waits")
	}
}
