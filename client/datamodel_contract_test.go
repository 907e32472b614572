package client

// An in-test server that follows the data model's wire (README "Versions,
// conditional writes and TTLs", "Transactions", "Listing keys",
// "Watching keys"): for watches, which no real raftkv process serves yet
// (kvstore's Watch is being built against the same contract), and for
// what real members cannot be made to do on cue (a stream cut after N
// events, a config version changed between two pages). Real members are
// tested in datamodel_test.go.

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/raftkv/raftkv/internal/kvjson"
)

// dataMember is one member of one group: keys with versions, a log of
// events, conditional writes, txns, listings and watches.
type dataMember struct {
	srv *httptest.Server

	mu struct {
		sync.Mutex
		index   uint64
		kvs     map[string]KeyValue
		events  []WatchEvent // every event, in order
		oldest  uint64       // the oldest index a watch may start from
		version uint64       // config version; 0: not a shard member
		// cutAfter, if > 0, ends each stream after it sent that many
		// events, as a member that stops does.
		cutAfter int
		// compactAfter, if > 0, ends each stream after that many events
		// with a compacted error, its window restarted past them, as a
		// member that restored a snapshot does.
		compactAfter int
		lists        []string // the query of each listing
		ranges       []string // the query of each range delete
		// rangeTimeout makes range deletes answer 504 after deleting.
		rangeTimeout bool
		// rangeNoLeader makes range deletes answer 503 without deleting.
		rangeNoLeader bool
		changed       chan struct{}
	}
}

func newDataMember(t *testing.T) *dataMember {
	t.Helper()
	m := &dataMember{}
	m.mu.kvs = map[string]KeyValue{}
	m.mu.changed = make(chan struct{})
	m.mu.oldest = 1
	m.srv = httptest.NewServer(http.HandlerFunc(m.serve))
	t.Cleanup(m.srv.Close)
	t.Cleanup(m.srv.CloseClientConnections)
	return m
}

// applyLocked applies one write of ops at the next index.
func (m *dataMember) applyLocked(ops []TxnOp) uint64 {
	m.mu.index++
	for pos, op := range ops {
		kv, ok := m.mu.kvs[op.Key]
		ev := WatchEvent{KV: KeyValue{Key: op.Key, ModIndex: m.mu.index}, Pos: uint32(pos), ID: fmt.Sprintf("%d.%d", m.mu.index, pos)}
		switch op.Type {
		case TxnPut:
			if !ok {
				kv.CreateIndex = m.mu.index
			}
			kv = KeyValue{Key: op.Key, Value: op.Value, CreateIndex: kv.CreateIndex, ModIndex: m.mu.index, TTL: op.TTL}
			m.mu.kvs[op.Key] = kv
			ev.Type, ev.KV = EventPut, kv
		case TxnDelete:
			delete(m.mu.kvs, op.Key)
			ev.Type, ev.KV.CreateIndex = EventDelete, kv.CreateIndex
		}
		m.mu.events = append(m.mu.events, ev)
	}
	close(m.mu.changed)
	m.mu.changed = make(chan struct{})
	return m.mu.index
}

func (m *dataMember) put(key, value string) uint64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.applyLocked([]TxnOp{OpPut(key, []byte(value), 0)})
}

func writeJSONBody(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

func (m *dataMember) serve(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	switch {
	case q.Get("watch") == "true":
		m.watch(w, r)
	case r.URL.Path == "/txn" && r.Method == http.MethodPost:
		m.txn(w, r)
	case r.URL.Path == "/key" && r.Method == http.MethodGet:
		m.list(w, r)
	case r.URL.Path == "/key" && r.Method == http.MethodDelete:
		m.deleteRange(w, r)
	case r.Method == http.MethodPut || r.Method == http.MethodDelete:
		m.write(w, r)
	default:
		http.NotFound(w, r)
	}
}

func (m *dataMember) keyOf(r *http.Request) string {
	if k, ok := strings.CutPrefix(r.URL.Path, "/key/"); ok {
		return k
	}
	return r.URL.Path[1:]
}

// write serves PUT and DELETE, with If-Match and If-None-Match.
func (m *dataMember) write(w http.ResponseWriter, r *http.Request) {
	key := m.keyOf(r)
	body, _ := io.ReadAll(r.Body)
	m.mu.Lock()
	defer m.mu.Unlock()
	cur, found := m.mu.kvs[key]
	ok := true
	if v := r.Header.Get("If-Match"); v != "" {
		mod, _ := strconv.ParseUint(strings.Trim(v, `"`), 10, 64)
		ok = cur.ModIndex == mod
	}
	if r.Header.Get("If-None-Match") == "*" {
		ok = !found
	}
	if !ok {
		if found {
			w.Header().Set("ETag", fmt.Sprintf(`"%d"`, cur.ModIndex))
		}
		w.Header().Set(HeaderRaftIndex, strconv.FormatUint(m.mu.index, 10))
		writeJSONBody(w, http.StatusPreconditionFailed, map[string]any{"error": "key is at another version", "code": "precondition_failed"})
		return
	}
	op := OpDelete(key)
	if r.Method == http.MethodPut {
		op = OpPut(key, body, 0)
	}
	index := m.applyLocked([]TxnOp{op})
	w.Header().Set(HeaderRaftIndex, strconv.FormatUint(index, 10))
	w.WriteHeader(http.StatusNoContent)
}

// txn serves POST /txn for compares on mod and exists, puts, deletes and
// gets.
func (m *dataMember) txn(w http.ResponseWriter, r *http.Request) {
	var t struct {
		Compare []struct {
			Key      string  `json:"key"`
			Target   string  `json:"target"`
			Result   string  `json:"result"`
			ModIndex *uint64 `json:"mod_index"`
			Exists   *bool   `json:"exists"`
		} `json:"compare"`
		Success, Failure []struct {
			Put *struct {
				Key, Value string
			} `json:"put"`
			Delete *struct{ Key string } `json:"delete"`
			Get    *struct{ Key string } `json:"get"`
		}
	}
	if err := json.NewDecoder(r.Body).Decode(&t); err != nil {
		writeJSONBody(w, http.StatusBadRequest, map[string]any{"error": err.Error(), "code": "bad_request"})
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	holds := true
	for _, c := range t.Compare {
		kv, found := m.mu.kvs[c.Key]
		switch {
		case c.Target == "mod" && c.ModIndex != nil && c.Result == "equal":
			holds = holds && kv.ModIndex == *c.ModIndex
		case c.Target == "exists" && c.Exists != nil && c.Result == "equal":
			holds = holds && found == *c.Exists
		default:
			writeJSONBody(w, http.StatusBadRequest, map[string]any{"error": "unsupported compare", "code": "bad_request"})
			return
		}
	}
	branch := t.Success
	if !holds {
		branch = t.Failure
	}
	var ops []TxnOp
	var responses []map[string]any
	for _, op := range branch {
		switch {
		case op.Put != nil:
			ops = append(ops, OpPut(op.Put.Key, []byte(op.Put.Value), 0))
			responses = append(responses, map[string]any{"put": map[string]any{}})
		case op.Delete != nil:
			ops = append(ops, OpDelete(op.Delete.Key))
			responses = append(responses, map[string]any{"delete": map[string]any{}})
		case op.Get != nil:
			kv, found := m.mu.kvs[op.Get.Key]
			g := map[string]any{"key": op.Get.Key, "found": found}
			if found {
				g["value"], g["mod_index"], g["create_index"] = string(kv.Value), kv.ModIndex, kv.CreateIndex
			}
			responses = append(responses, map[string]any{"get": g})
		}
	}
	index := m.mu.index
	if len(ops) > 0 {
		index = m.applyLocked(ops)
	}
	writeJSONBody(w, http.StatusOK, map[string]any{"succeeded": holds, "index": index, "responses": responses})
}

// staleLocked answers 421 wrong_group, and says so, when q names a
// config version other than the member's.
func (m *dataMember) staleLocked(w http.ResponseWriter, q url.Values) bool {
	if v := q.Get("config_version"); v != "" && m.mu.version != 0 && v != strconv.FormatUint(m.mu.version, 10) {
		w.Header().Set(HeaderConfigVersion, strconv.FormatUint(m.mu.version, 10))
		writeJSONBody(w, http.StatusMisdirectedRequest, map[string]any{"error": "stale map", "code": "wrong_group", "version": m.mu.version})
		return true
	}
	return false
}

// deleteRange serves DELETE /key?prefix|start&end and config_version.
func (m *dataMember) deleteRange(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	m.mu.Lock()
	defer m.mu.Unlock()
	m.mu.ranges = append(m.mu.ranges, r.URL.RawQuery)
	if m.staleLocked(w, q) {
		return
	}
	if m.mu.rangeNoLeader {
		w.Header().Set("Retry-After", "1")
		writeJSONBody(w, http.StatusServiceUnavailable, map[string]any{"error": "no leader", "code": "no_leader"})
		return
	}
	prefix, start, end := q.Get("prefix"), q.Get("start"), q.Get("end")
	var ops []TxnOp
	for _, k := range slices.Sorted(maps.Keys(m.mu.kvs)) {
		if prefix != "" && strings.HasPrefix(k, prefix) || prefix == "" && k >= start && (end == "" || k < end) {
			ops = append(ops, OpDelete(k))
		}
	}
	index := m.applyLocked(ops)
	if m.mu.rangeTimeout {
		writeJSONBody(w, http.StatusGatewayTimeout, map[string]any{"error": "the write may or may not have been applied", "code": "outcome_unknown"})
		return
	}
	writeJSONBody(w, http.StatusOK, map[string]any{"index": index, "deleted": len(ops)})
}

// list serves GET /key?prefix|start&end, limit, continue (the last key,
// in base64) and config_version.
func (m *dataMember) list(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	m.mu.Lock()
	defer m.mu.Unlock()
	m.mu.lists = append(m.mu.lists, r.URL.RawQuery)
	if m.staleLocked(w, q) {
		return
	}
	limit := 1000
	if v := q.Get("limit"); v != "" {
		limit, _ = strconv.Atoi(v)
	}
	after := ""
	if v := q.Get("continue"); v != "" {
		b, _ := base64.RawURLEncoding.DecodeString(v)
		after = string(b)
	}
	var keys []string
	for k := range m.mu.kvs {
		in := strings.HasPrefix(k, q.Get("prefix"))
		if s := q.Get("start"); s != "" && k < s {
			in = false
		}
		if e := q.Get("end"); e != "" && k >= e {
			in = false
		}
		if in && k > after {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	out := map[string]any{"index": m.mu.index, "more": false}
	if len(keys) > limit {
		keys = keys[:limit]
		out["more"], out["continue"] = true, base64.RawURLEncoding.EncodeToString([]byte(keys[limit-1]))
	}
	kvs := []kvjson.KV{}
	for _, k := range keys {
		kv := m.mu.kvs[k]
		kvs = append(kvs, kvjson.Of(k, kv.Value, kv.CreateIndex, kv.ModIndex, 0, true))
	}
	out["kvs"] = kvs
	writeJSONBody(w, http.StatusOK, out)
}

// watch serves a watch of a prefix (or a key) as Server-Sent Events, from
// from_index or after Last-Event-ID.
func (m *dataMember) watch(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	from, afterPos := uint64(0), int64(-1)
	if v := q.Get("from_index"); v != "" {
		from, _ = strconv.ParseUint(v, 10, 64)
	}
	if id := r.Header.Get("Last-Event-ID"); id != "" {
		i, p, ok := strings.Cut(id, ".")
		from, _ = strconv.ParseUint(i, 10, 64)
		if ok {
			n, _ := strconv.ParseInt(p, 10, 64)
			afterPos = n
		} else {
			from++
		}
	}
	m.mu.Lock()
	if from == 0 {
		from = m.mu.index + 1
	}
	if from < m.mu.oldest {
		oldest := m.mu.oldest
		m.mu.Unlock()
		writeJSONBody(w, http.StatusGone, map[string]any{"error": "compacted", "code": "compacted", "oldest_index": oldest})
		return
	}
	cut, compact := m.mu.cutAfter, m.mu.compactAfter
	progress := m.mu.index
	m.mu.Unlock()
	w.Header().Set("Content-Type", "text/event-stream")
	w.WriteHeader(http.StatusOK)
	fmt.Fprintf(w, ": progress %d\n\n", min(progress, from-1))
	w.(http.Flusher).Flush()
	key, prefix := m.keyOf(r), q.Get("prefix")
	sent, next := 0, 0
	for {
		m.mu.Lock()
		evs := m.mu.events[next:]
		next = len(m.mu.events)
		ch := m.mu.changed
		index := m.mu.index
		m.mu.Unlock()
		for _, ev := range evs {
			if ev.KV.ModIndex < from || (ev.KV.ModIndex == from && int64(ev.Pos) <= afterPos) {
				continue
			}
			if r.URL.Path == "/key" && !strings.HasPrefix(ev.KV.Key, prefix) || r.URL.Path != "/key" && ev.KV.Key != key {
				continue
			}
			if cut > 0 && sent == cut {
				return // the member went away
			}
			if compact > 0 && sent == compact {
				m.mu.Lock()
				m.mu.oldest = m.mu.index + 1
				m.mu.Unlock()
				fmt.Fprintf(w, "event: error\ndata: {\"code\":\"compacted\",\"error\":\"compacted\",\"oldest_index\":%d}\n\n", index+1)
				return
			}
			d, _ := json.Marshal(map[string]any{"type": ev.Type, "key": ev.KV.Key, "value": string(ev.KV.Value),
				"create_index": ev.KV.CreateIndex, "mod_index": ev.KV.ModIndex})
			fmt.Fprintf(w, "id: %s\nevent: %s\ndata: %s\n\n", ev.ID, ev.Type, d)
			sent++
		}
		fmt.Fprintf(w, ": progress %d\n\n", index)
		w.(http.Flusher).Flush()
		select {
		case <-ch:
		case <-r.Context().Done():
			return
		}
	}
}
