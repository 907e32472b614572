package kvstore

import (
	"cmp"
	"maps"
	"slices"
	"strings"
)

// WriteOptions makes a write exactly-once across a client's retries: the
// state machine remembers, per bucket, the results of each client's recent
// sequence numbers, and answers a write whose (ClientID, Seq) it applied
// already with the first result instead of applying it again.
type WriteOptions struct {
	// ClientID names the client; "" means none (the write is applied
	// each time it is sent). 1-64 characters of A-Z, a-z, 0-9, '.', '_'
	// and '-'.
	ClientID string
	// Seq numbers the client's writes, 1 or more when ClientID is set; a
	// retry sends the same number again.
	Seq uint64
}

// Result is what a write did.
type Result struct {
	// Index is the raft index the write applied at; for a duplicate, the
	// index of its first apply.
	Index uint64
	// ModIndex is the version the write gave the keys it put (their ETag),
	// the same for all of them: Index, unless a key's bucket came from a
	// group whose versions had gone past this group's raft index. 0 when
	// it put no key, when its keys got different versions, when versions
	// are not kept, and for a duplicate of a write applied by a binary
	// that did not remember it.
	ModIndex uint64
	// Duplicate says the write was answered from the dedup table, not
	// applied again.
	Duplicate bool
}

// maxClientID is the longest client id.
const maxClientID = 64

// validClientID reports whether id is 1-64 characters of [A-Za-z0-9._-].
func validClientID(id string) bool {
	if len(id) < 1 || len(id) > maxClientID {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// checkWriteOptions validates wo before a write is proposed.
func checkWriteOptions(wo WriteOptions) error {
	switch {
	case wo.ClientID == "" && wo.Seq == 0:
		return nil
	case !validClientID(wo.ClientID):
		return ErrBadClientID
	case wo.Seq == 0:
		return ErrBadSeq
	}
	return nil
}

// dedupEntry is the remembered result of one (client, seq): the raft index
// the write applied at and, for a config operation, the config version it
// produced, for a key write or a transaction the version it gave the keys
// it put (Result.ModIndex), for a transaction its result.
type dedupEntry struct {
	seq, index, version uint64
	txn                 *storedTxn
}

// clientRecord is what a bucket remembers of one client: the results of
// its most recent sequence numbers, at most a window of them.
type clientRecord struct {
	// tag is the table allowed to change the record in place (see
	// dedupTable).
	tag *cowTag
	// last is the raft index of the client's latest write recorded here;
	// the table evicts the record with the lowest first.
	last uint64
	// floor: a seq below it that is not in ents may have been applied and
	// evicted since, so it cannot be judged. Every seq in ents is at least
	// floor.
	floor uint64
	// ents are the remembered results, by ascending seq.
	ents []dedupEntry
}

// find returns the entry of seq.
func (r *clientRecord) find(seq uint64) (dedupEntry, bool) {
	if n := len(r.ents); n > 0 && r.ents[n-1].seq == seq { // the usual retry: the latest
		return r.ents[n-1], true
	}
	i, ok := slices.BinarySearchFunc(r.ents, seq, func(e dedupEntry, s uint64) int { return cmp.Compare(e.seq, s) })
	if !ok {
		return dedupEntry{}, false
	}
	return r.ents[i], true
}

// dedupTable is one bucket's memory of its writers: client id -> record.
// It moves with the bucket and is part of every snapshot, so it is
// copy-on-write like the tree: clone shares the map and the records, and
// each table copies the map, or a record, before its first change to it.
type dedupTable struct {
	clients map[string]*clientRecord
	tag     *cowTag
	// shared says clients is shared with a clone and must be copied
	// before it changes.
	shared bool
}

func newDedupTable() *dedupTable {
	return &dedupTable{clients: map[string]*clientRecord{}, tag: new(cowTag)}
}

// clone returns a table with the same contents in O(1); nil for nil.
func (t *dedupTable) clone() *dedupTable {
	if t == nil {
		return nil
	}
	c := &dedupTable{clients: t.clients, tag: new(cowTag), shared: true}
	t.tag, t.shared = new(cowTag), true
	return c
}

// lookup returns the remembered result of (id, seq), if there is one, and
// otherwise whether seq is too old to judge.
func (t *dedupTable) lookup(id string, seq uint64) (e dedupEntry, found, tooOld bool) {
	if t == nil {
		return dedupEntry{}, false, false
	}
	r := t.clients[id]
	if r == nil {
		return dedupEntry{}, false, false
	}
	if e, ok := r.find(seq); ok {
		return e, true, false
	}
	return dedupEntry{}, false, seq < r.floor
}

// record remembers e as client id's result, written at raft index, keeping
// at most window results of the client (its lowest seqs go first) and at
// most maxClients clients (the least recently written go first).
func (t *dedupTable) record(id string, e dedupEntry, index uint64, window, maxClients int) {
	if t.shared {
		t.clients, t.shared = maps.Clone(t.clients), false
	}
	r := t.clients[id]
	switch {
	case r == nil:
		if len(t.clients) >= maxClients {
			t.evict(len(t.clients) - maxClients + 1)
		}
		r = &clientRecord{tag: t.tag}
		t.clients[id] = r
	case r.tag != t.tag:
		r = &clientRecord{tag: t.tag, last: r.last, floor: r.floor, ents: slices.Clone(r.ents)}
		t.clients[id] = r
	}
	r.last = max(r.last, index)
	if n := len(r.ents); n == 0 || r.ents[n-1].seq < e.seq {
		r.ents = append(r.ents, e)
	} else {
		i, _ := slices.BinarySearchFunc(r.ents, e.seq, func(x dedupEntry, s uint64) int { return cmp.Compare(x.seq, s) })
		r.ents = slices.Insert(r.ents, i, e)
	}
	r.trim(window)
}

// trim keeps the window highest seqs of r, raising its floor past those it
// lets go. r must be its table's to change.
func (r *clientRecord) trim(window int) {
	if k := len(r.ents) - window; k > 0 {
		r.floor = r.ents[k-1].seq + 1
		r.ents = r.ents[k:]
	}
}

// evict drops the k least recently written clients: lowest last first,
// ties by id, so every member drops the same ones.
func (t *dedupTable) evict(k int) {
	if k == 1 {
		var victim string
		var vr *clientRecord
		for id, r := range t.clients {
			if vr == nil || r.last < vr.last || r.last == vr.last && id < victim {
				victim, vr = id, r
			}
		}
		delete(t.clients, victim)
		return
	}
	ids := slices.Collect(maps.Keys(t.clients))
	slices.SortFunc(ids, func(a, b string) int {
		return cmp.Or(cmp.Compare(t.clients[a].last, t.clients[b].last), strings.Compare(a, b))
	})
	for _, id := range ids[:min(k, len(ids))] {
		delete(t.clients, id)
	}
}

// bound makes a table that came from elsewhere (an installed bucket) fit
// this store's window and client bound, as record would have.
func (t *dedupTable) bound(window, maxClients int) {
	if t == nil {
		return
	}
	if t.shared {
		t.clients, t.shared = maps.Clone(t.clients), false
	}
	if k := len(t.clients) - maxClients; k > 0 {
		t.evict(k)
	}
	for id, r := range t.clients {
		if len(r.ents) > window {
			if r.tag != t.tag {
				r = &clientRecord{tag: t.tag, last: r.last, floor: r.floor, ents: slices.Clone(r.ents)}
				t.clients[id] = r
			}
			r.trim(window)
		}
	}
}

// len is the number of clients remembered.
func (t *dedupTable) len() int {
	if t == nil {
		return 0
	}
	return len(t.clients)
}

// encode writes t (nil: an empty table) in its binary form: the client
// count, then each client in id order: id, last, floor, entry count, and
// each entry's seq, index and version, and withTxn its transaction result
// (storedTxn.encode).
func (t *dedupTable) encode(e *binWriter, withTxn bool) {
	if t == nil {
		e.uvarint(0)
		return
	}
	ids := slices.Sorted(maps.Keys(t.clients))
	e.uvarint(uint64(len(ids)))
	for _, id := range ids {
		r := t.clients[id]
		e.field([]byte(id))
		e.uvarint(r.last)
		e.uvarint(r.floor)
		e.uvarint(uint64(len(r.ents)))
		for _, x := range r.ents {
			e.uvarint(x.seq)
			e.uvarint(x.index)
			e.uvarint(x.version)
			if withTxn {
				x.txn.encode(e)
			}
		}
	}
}

// decodeDedupTable reads what encode wrote, checking it: valid client ids
// in ascending order, entries by ascending seq at or above the floor.
// It returns nil for an empty table.
func decodeDedupTable(d *binReader, withTxn bool) *dedupTable {
	n := d.count("dedup client count")
	if d.err != nil || n == 0 {
		return nil
	}
	t := newDedupTable()
	prev := ""
	for i := 0; i < n && d.err == nil; i++ {
		id := string(d.field("dedup client id", maxClientID))
		if d.err != nil {
			break
		}
		if !validClientID(id) {
			d.fail("dedup client %d: invalid id %q", i, id)
			break
		}
		if i > 0 && id <= prev {
			d.fail("dedup clients out of order at %d", i)
			break
		}
		prev = id
		r := &clientRecord{tag: t.tag, last: d.uvarint("dedup last index"), floor: d.uvarint("dedup floor")}
		m := d.count("dedup entry count")
		for j := 0; j < m && d.err == nil; j++ {
			x := dedupEntry{seq: d.uvarint("dedup seq"), index: d.uvarint("dedup index"), version: d.uvarint("dedup version")}
			if withTxn {
				x.txn = decodeStoredTxn(d)
			}
			switch {
			case d.err != nil:
			case x.seq == 0 || x.seq < r.floor:
				d.fail("dedup client %q: seq %d below its floor %d", id, x.seq, r.floor)
			case j > 0 && x.seq <= r.ents[j-1].seq:
				d.fail("dedup client %q: seqs out of order at %d", id, j)
			default:
				r.ents = append(r.ents, x)
			}
		}
		t.clients[id] = r
	}
	if d.err != nil {
		return nil
	}
	return t
}
