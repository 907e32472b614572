package raftnode

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.etcd.io/etcd/client/pkg/v3/transport"
)

// Cluster ids.
//
// rafthttp tags every message with its cluster id and refuses one of
// another id (412), so members of two clusters never mix logs. A cluster
// made by starting its members for the first time has raftexample's
// constant, DefaultClusterID; a cluster restored from a backup gets one of
// its own (RestoredClusterID), so that a member of the cluster the backup
// came from that still runs, at a peer URL the restored cluster took over
// (a restore in place, one old member not stopped), cannot lead the
// restored members and append its own log after theirs, as etcd's new
// cluster token on a restore prevents. A member keeps its cluster's id in
// its WAL's metadata; a WAL without it (written before ids were kept) is
// DefaultClusterID's. A member that joins a cluster asks the others for
// the id (DiscoverClusterID) before it writes its WAL.

// DefaultClusterID is the cluster id of a cluster made by starting its
// members (raftexample's constant).
const DefaultClusterID = 0x1000

// ClusterIDPath is served on the peer port: GET answers the member's
// cluster id in hex, for DiscoverClusterID.
const ClusterIDPath = "/raftkv/cluster-id"

// walMetadata is what a member writes as its WAL's metadata.
type walMetadata struct {
	ClusterID string `json:"cluster_id"` // hex, as rafthttp writes it
	// MemberID is the member the WAL is of (hex), as etcd keeps its
	// NodeID there: a data dir started under another --id would vote and
	// acknowledge as a member whose log it does not hold. Absent in WALs
	// written before it, which are not checked; binaries before it
	// ignore it.
	MemberID string `json:"member_id,omitempty"`
	// StartLevel is the cluster level this member started a new cluster
	// at (startLevel), 0 for one that joined or was restored; see
	// restartLevel. Binaries before it ignore it.
	StartLevel uint32 `json:"start_level,omitempty"`
}

// encodeWALMetadata is the metadata of member's WAL in cluster id
// (member 0: a WAL any member may start from).
func encodeWALMetadata(id, member uint64, startLevel uint32) []byte {
	md := walMetadata{ClusterID: strconv.FormatUint(id, 16), StartLevel: startLevel}
	if member != 0 {
		md.MemberID = strconv.FormatUint(member, 16)
	}
	b, _ := json.Marshal(md)
	return b
}

// decodeWALMetadata reads the cluster id, the member id (0: not recorded)
// and the start level from a WAL's metadata; none means DefaultClusterID,
// 0 and 0.
func decodeWALMetadata(b []byte) (id, member uint64, startLevel uint32, err error) {
	if len(b) == 0 {
		return DefaultClusterID, 0, 0, nil
	}
	var md walMetadata
	if err := json.Unmarshal(b, &md); err != nil {
		return 0, 0, 0, fmt.Errorf("raftnode: wal metadata %.64q: %w", b, err)
	}
	id, err = strconv.ParseUint(md.ClusterID, 16, 64)
	if err != nil || id == 0 {
		return 0, 0, 0, fmt.Errorf("raftnode: wal metadata names cluster id %q", md.ClusterID)
	}
	if md.MemberID != "" {
		if member, err = strconv.ParseUint(md.MemberID, 16, 64); err != nil || member == 0 {
			return 0, 0, 0, fmt.Errorf("raftnode: wal metadata names member id %q", md.MemberID)
		}
	}
	return id, member, md.StartLevel, nil
}

// RestoredClusterID is the cluster id of a cluster restored from a backup
// whose state is at index and term and was captured at created (in
// nanoseconds since 1970), with the members at peers, in id order: every
// member restored from the same file with the same peers gets the same
// id, and it is neither DefaultClusterID nor that of a restore of another
// backup or to other peers, but for a 2^-64 chance.
func RestoredClusterID(index, term uint64, created int64, peers []string) uint64 {
	h := sha256.New()
	var b [24]byte
	binary.BigEndian.PutUint64(b[0:], index)
	binary.BigEndian.PutUint64(b[8:], term)
	binary.BigEndian.PutUint64(b[16:], uint64(created))
	h.Write(b[:])
	for _, p := range peers {
		h.Write([]byte(p))
		h.Write([]byte{0})
	}
	id := binary.BigEndian.Uint64(h.Sum(nil))
	if id == 0 || id == DefaultClusterID {
		id ^= 0x5a5a5a5a5a5a5a5a
	}
	return id
}

// DiscoverClusterID asks the members at peers (other than self, the index
// of this member's own URL) for their cluster id (GET ClusterIDPath on
// the peer port, with tlsInfo's client certificate for https URLs), all
// of them in each round, with a pause between rounds, until it has an
// answer or ctx ends. A member answers only a member of its cluster (the
// joiner must have been added), so a member of another cluster left at
// one of the URLs (the cluster a restored one came from) does not; the
// members that answer must agree. A member that serves no such path
// (404: a binary from before cluster ids were kept) is taken for
// DefaultClusterID when no member names an id.
func DiscoverClusterID(ctx context.Context, peers []string, self int, tlsInfo transport.TLSInfo) (uint64, error) {
	client := &http.Client{Timeout: 5 * time.Second}
	if !tlsInfo.Empty() {
		cfg, err := tlsInfo.ClientConfig()
		if err != nil {
			return 0, fmt.Errorf("raftnode: peer TLS: %w", err)
		}
		client.Transport = &http.Transport{TLSClientConfig: cfg, Proxy: nil}
	}
	defer client.CloseIdleConnections()
	if len(peers) < 2 {
		return 0, errors.New("raftnode: no other member to ask for the cluster id")
	}
	pause := 100 * time.Millisecond
	var last string // what the last round's members said
	for {
		type answer struct {
			id  uint64
			err error
		}
		answers := make([]answer, len(peers))
		var wg sync.WaitGroup
		for i, p := range peers {
			if i == self {
				continue
			}
			wg.Go(func() {
				id, err := askClusterID(ctx, client, p, uint64(self+1))
				answers[i] = answer{id, err}
			})
		}
		wg.Wait()
		named := map[uint64]bool{}
		older, refused := false, false
		var failed []string
		for i, a := range answers {
			switch {
			case i == self:
			case errors.Is(a.err, errNoClusterIDPath):
				older = true
			case a.err != nil:
				refused = refused || errors.Is(a.err, errNotAMember)
				failed = append(failed, a.err.Error())
			default:
				named[a.id] = true
			}
		}
		last = strings.Join(failed, "; ")
		switch {
		case len(named) == 1:
			for id := range named {
				return id, nil
			}
		case len(named) > 1:
			last = fmt.Sprintf("the members name different cluster ids: %x", slices.Sorted(maps.Keys(named)))
		case older && !refused:
			// A member that does not count this one yet may be of a
			// restored cluster: only members that cannot name an id
			// at all mean the default.
			return DefaultClusterID, nil
		}
		select {
		case <-ctx.Done():
			return 0, fmt.Errorf("raftnode: no member answered with the cluster id: %s", last)
		case <-time.After(pause + rand.N(pause/2+1)):
		}
		pause = min(2*pause, time.Second)
	}
}

// errNoClusterIDPath is a member's 404 to ClusterIDPath: a binary from
// before cluster ids were kept. errNotAMember is its 403: the asking
// member is not (yet) one of its cluster.
var (
	errNoClusterIDPath = errors.New("raftnode: the member serves no cluster id")
	errNotAMember      = errors.New("not a member")
)

// askClusterID asks the member at peerURL for its cluster id, as member
// from, named the way rafthttp names the sender of its requests.
func askClusterID(ctx context.Context, client *http.Client, peerURL string, from uint64) (uint64, error) {
	u := strings.TrimSuffix(peerURL, "/") + ClusterIDPath
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return 0, err
	}
	req.Header.Set("X-Server-From", strconv.FormatUint(from, 16))
	resp, err := client.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64))
	switch resp.StatusCode {
	case http.StatusOK:
	case http.StatusNotFound:
		return 0, errNoClusterIDPath
	case http.StatusForbidden:
		return 0, fmt.Errorf("GET %s: %w: %s", u, errNotAMember, oneLine(b))
	default:
		return 0, fmt.Errorf("GET %s: %s: %s", u, resp.Status, oneLine(b))
	}
	id, err := strconv.ParseUint(strings.TrimSpace(string(b)), 16, 64)
	if err != nil || id == 0 {
		return 0, fmt.Errorf("GET %s: %q is no cluster id", u, b)
	}
	return id, nil
}

// oneLine is an answer's body fit for a one-line error: its words, at
// most 64 bytes of them.
func oneLine(b []byte) string {
	s := strings.Join(strings.Fields(string(b)), " ")
	if len(s) > 64 {
		s = s[:64] + "..."
	}
	return s
}

// clusterIDHandler serves ClusterIDPath for the cluster id, and the rest
// with next. It answers only a member: the requester names its id in
// X-Server-From, and isMember must know it.
func clusterIDHandler(id uint64, isMember func(uint64) bool, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != ClusterIDPath {
			next.ServeHTTP(w, r)
			return
		}
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		from, err := strconv.ParseUint(r.Header.Get("X-Server-From"), 16, 64)
		switch {
		case err != nil:
			http.Error(w, "X-Server-From must name the asking member's id in hex", http.StatusBadRequest)
			return
		case !isMember(from):
			http.Error(w, fmt.Sprintf("member %x is not a member of this cluster", from), http.StatusForbidden)
			return
		}
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprintf(w, "%x\n", id)
	})
}

// isMember reports whether id is a member (voter or learner) as this
// member last applied the membership.
func (n *Node) isMember(id uint64) bool {
	n.mu.RLock()
	defer n.mu.RUnlock()
	_, ok := n.mu.members.Members[id]
	return ok
}
