package httpapi

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The fuzz targets of the data model's parsers: POST /txn's body,
// If-Match and If-None-Match, ?ttl=, the listing's continue token,
// Last-Event-ID and from_index. Each checks that valid input parses to
// values within their bounds that encode back to the same values, and
// that invalid input is an error of the parser's kind, not a zero value.

// txnBodyOf is t in POST /txn's JSON, keys and values in base64 so that
// any bytes survive; it is the encoder FuzzParseTxn round-trips through.
func txnBodyOf(t Txn) []byte {
	b64 := func(b []byte) string { return base64.StdEncoding.EncodeToString(b) }
	ops := func(in []TxnOp) []map[string]any {
		out := []map[string]any{}
		for _, o := range in {
			k := map[string]any{"key_base64": b64([]byte(o.Key))}
			switch o.Type {
			case TxnPut:
				k["value_base64"] = b64(o.Value)
				if o.TTL > 0 {
					k["ttl"] = o.TTL.String()
				}
				out = append(out, map[string]any{"put": k})
			case TxnDelete:
				out = append(out, map[string]any{"delete": k})
			default:
				out = append(out, map[string]any{"get": k})
			}
		}
		return out
	}
	var cmps []map[string]any
	for _, c := range t.Compares {
		m := map[string]any{"key_base64": b64([]byte(c.Key)), "result": map[CompareOp]string{CompareEqual: "equal", CompareNotEqual: "not_equal", CompareGreater: "greater", CompareLess: "less"}[c.Op]}
		switch c.Target {
		case CompareValue:
			m["target"], m["value_base64"] = "value", b64(c.Value)
		case CompareMod:
			m["target"], m["mod_index"] = "mod", c.Index
		case CompareCreate:
			m["target"], m["create_revision"] = "create", strconv.FormatUint(c.Index, 10)
		case CompareExists:
			m["target"], m["exists"] = "exists", c.Exists
		}
		cmps = append(cmps, m)
	}
	b, err := json.Marshal(map[string]any{"compare": cmps, "success": ops(t.Success), "failure": ops(t.Failure)})
	if err != nil {
		panic(err)
	}
	return b
}

// FuzzParseTxn: any body parses to a Txn within the limits, which encodes
// and parses back to itself, or is refused with ErrBadTxn.
func FuzzParseTxn(f *testing.F) {
	for _, s := range []string{
		`{"compare":[{"key":"a","target":"value","result":"equal","value":"x"},{"key":"b","target":"mod","result":"<","mod_index":5}],
		  "success":[{"put":{"key":"a","value":"y","ttl":"30s"}},{"delete":{"key":"b"}}],"failure":[{"get":{"key":"a"}}]}`,
		`{"compare":[{"key_base64":"/w==","target":"CREATE","result":"EQUAL","create_revision":"0"},{"key":"d","target":"exists","result":"!=","exists":true}],
		  "success":[{"request_put":{"key":"a","value_base64":"AP8=","ttl":60}},{"request_delete_range":{"key":"b"}},{"request_range":{"key":"c"}}]}`,
		`{}`, `{"success":[]}`, ``, `null`, `[]`, `{"sucess":[]}`, `{"compare":[{"key":"a"}]}`,
		`{"compare":[{"key":"a","target":"mod","result":"equal","mod_index":-1}]}`,
		`{"compare":[{"key":"a","target":"mod","result":"equal","mod_index":"+5"}]}`,
		`{"compare":[{"key":"a","target":"exists","result":">","exists":true}]}`,
		`{"success":[{"put":{"key":"a","ttl":"0s"}}]}`, `{"success":[{"put":{"key":"a","ttl":1.5}}]}`,
		`{"success":[{"put":{"key":"a"},"get":{"key":"a"}}]}`, `{"success":[{"put":{"key":""}}]}`,
		`{"success":[{"get":{"key":"a","key_base64":"YQ=="}}]}`, `{} {}`, "{\"success\":[{\"put\":{\"key\":\"\xff\"}}]}",
	} {
		f.Add([]byte(s))
	}
	h := &handler{cfg: Config{}.withDefaults()}
	f.Fuzz(func(t *testing.T, body []byte) {
		txn, err := h.parseTxn(body)
		if err != nil {
			if !errors.Is(err, ErrBadTxn) {
				t.Fatalf("error %v is not ErrBadTxn", err)
			}
			if msg := humanMessage(err); msg == "" || strings.Contains(msg, "\n") {
				t.Fatalf("error sentence %q: want one line", msg)
			}
			return
		}
		if len(txn.Compares) > maxTxnCompares || len(txn.Success) > maxTxnOps || len(txn.Failure) > maxTxnOps {
			t.Fatalf("over the limits: %d compares, %d and %d ops", len(txn.Compares), len(txn.Success), len(txn.Failure))
		}
		for _, c := range txn.Compares {
			if c.Key == "" || len(c.Key) > h.cfg.MaxKeyBytes || c.Target < CompareValue || c.Target > CompareExists || c.Op < CompareEqual || c.Op > CompareLess {
				t.Fatalf("compare out of bounds: %+v", c)
			}
			if c.Target == CompareExists && c.Op != CompareEqual && c.Op != CompareNotEqual {
				t.Fatalf("exists compare with op %d", c.Op)
			}
		}
		for _, o := range append(append([]TxnOp(nil), txn.Success...), txn.Failure...) {
			if o.Key == "" || len(o.Key) > h.cfg.MaxKeyBytes || o.Type < TxnPut || o.Type > TxnGet {
				t.Fatalf("op out of bounds: %+v", o)
			}
			if o.TTL != 0 && (o.Type != TxnPut || o.TTL < minTTL || o.TTL > maxTTL) {
				t.Fatalf("op with ttl %v: %+v", o.TTL, o)
			}
		}
		again, err := h.parseTxn(txnBodyOf(txn))
		if err != nil {
			t.Fatalf("the encoding of %+v does not parse: %v", txn, err)
		}
		if a, b := fmt.Sprintf("%+v", txn), fmt.Sprintf("%+v", again); a != b {
			t.Fatalf("round trip:\n got %s\nwant %s", b, a)
		}
	})
}

// FuzzParseTTL: a ttl parses to 1s..8760h, and back from its Go duration
// (and from whole seconds), or is ErrBadTTL; txnTTL agrees with it.
func FuzzParseTTL(f *testing.F) {
	for _, s := range []string{"30s", "30", " 5m ", "1h30m", "8760h", "8761h", "31536000", "31536001", "0", "0s", "999ms",
		"1s", "-5s", "+5s", "1.5", "1.5s", "", "abc", "99999999999999999999", "1e3s", "٣"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, err := parseTTL(s)
		if err != nil {
			if !errors.Is(err, ErrBadTTL) || d != 0 {
				t.Fatalf("parseTTL(%q) = %v, %v: want 0 and ErrBadTTL", s, d, err)
			}
			return
		}
		if d < minTTL || d > maxTTL {
			t.Fatalf("parseTTL(%q) = %v: out of bounds", s, d)
		}
		if again, err := parseTTL(d.String()); err != nil || again != d {
			t.Fatalf("parseTTL(%q) = %v, but its String parses to %v, %v", s, d, again, err)
		}
		if d%time.Second == 0 {
			if again, err := parseTTL(strconv.FormatInt(int64(d/time.Second), 10)); err != nil || again != d {
				t.Fatalf("%v in whole seconds parses to %v, %v", d, again, err)
			}
		}
		raw, _ := json.Marshal(s)
		if got, err := txnTTL(raw); err != nil || got != d {
			t.Fatalf("txnTTL(%s) = %v, %v; parseTTL %v", raw, got, err, d)
		}
	})
}

// FuzzConditionOf: If-Match and If-None-Match give one condition whose
// entity tag reads back the same, or ErrBadPrecondition.
func FuzzConditionOf(f *testing.F) {
	f.Add(`"5"`, "", true, false, false, uint8(0))
	f.Add("5", "", true, false, false, uint8(1))
	f.Add("*", "", true, false, false, uint8(1))
	f.Add("", "*", false, true, false, uint8(0))
	f.Add("", "*", false, true, false, uint8(1))
	f.Add(`W/"5"`, "", true, false, false, uint8(0))
	f.Add(`"5"`, `"6"`, true, true, false, uint8(0))
	f.Add(`"5"`, "", true, false, true, uint8(0))
	f.Add(`"-1"`, "", true, false, false, uint8(0))
	f.Add(`"+1"`, "", true, false, false, uint8(0))
	f.Add(`""`, "", true, false, false, uint8(0))
	f.Add(`"18446744073709551616"`, "", true, false, false, uint8(0))
	f.Add(`"`, "", true, false, false, uint8(0))
	methods := []string{http.MethodPut, http.MethodDelete}
	f.Fuzz(func(t *testing.T, im, inm string, hasIM, hasINM, twice bool, m uint8) {
		hdr := http.Header{}
		if hasIM {
			hdr.Add("If-Match", im)
			if twice {
				hdr.Add("If-Match", im)
			}
		}
		if hasINM {
			hdr.Add("If-None-Match", inm)
		}
		method := methods[int(m)%len(methods)]
		c, err := conditionOf(hdr, method)
		if err != nil {
			if !errors.Is(err, ErrBadPrecondition) || c != (condition{}) {
				t.Fatalf("conditionOf = %+v, %v: want the zero condition and ErrBadPrecondition", c, err)
			}
			return
		}
		switch c.kind {
		case condNone:
			if hasIM || hasINM {
				t.Fatalf("no condition from If-Match %q (%v), If-None-Match %q (%v)", im, hasIM, inm, hasINM)
			}
		case condAbsent:
			if !hasINM || hasIM || method != http.MethodPut || strings.TrimSpace(inm) != "*" {
				t.Fatalf("If-None-Match: * from %q (method %s)", inm, method)
			}
		case condExists:
			if !hasIM || hasINM || twice || strings.TrimSpace(im) != "*" {
				t.Fatalf("If-Match: * from %q", im)
			}
		case condMod:
			if !hasIM || hasINM || twice {
				t.Fatalf("a version from If-Match %q, If-None-Match %q, twice %v", im, inm, twice)
			}
			if mod, ok := parseETag(etag(c.mod)); !ok || mod != c.mod {
				t.Fatalf("etag(%d) = %s reads back as %d, %v", c.mod, etag(c.mod), mod, ok)
			}
			if n, err := strconv.ParseUint(strings.Trim(strings.TrimSpace(im), `"`), 10, 64); err != nil || n != c.mod {
				t.Fatalf("If-Match %q read as %d", im, c.mod)
			}
		default:
			t.Fatalf("condition kind %d", c.kind)
		}
	})
}

// FuzzDecodeContinue: a continue token decodes to a token with a key,
// whose encoding decodes to the same token, or is ErrBadContinue.
func FuzzDecodeContinue(f *testing.F) {
	f.Add(encodeContinue(continueToken{scope: 42, index: 7, after: "k"}))
	f.Add(encodeContinue(continueToken{scope: math.MaxUint64, index: math.MaxUint64, after: "\xff\x00key"}))
	f.Add(encodeContinue(continueToken{scope: 1, index: 0, after: "a"}))
	for _, s := range []string{"", "AQ", "AgAAAAAAAAAqB2s", "AQAAAAAAAAAqBw", "AQAAAAAAAAAq_____________________wFr", "!!!", " AQAAAAAAAAAqB2s ", "AQAAAAAAAAAqB2s="} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		tok, err := decodeContinue(s)
		if err != nil {
			if !errors.Is(err, ErrBadContinue) || tok != (continueToken{}) {
				t.Fatalf("decodeContinue(%q) = %+v, %v: want the zero token and ErrBadContinue", s, tok, err)
			}
			return
		}
		if tok.after == "" {
			t.Fatalf("decodeContinue(%q) = %+v: no key to continue after", s, tok)
		}
		if again, err := decodeContinue(encodeContinue(tok)); err != nil || again != tok {
			t.Fatalf("round trip of %+v: %+v, %v", tok, again, err)
		}
	})
}

// FuzzContinueRoundTrip: every token a listing can issue (a non-empty
// last key) decodes to itself.
func FuzzContinueRoundTrip(f *testing.F) {
	f.Add(uint64(0), uint64(0), "a")
	f.Add(uint64(math.MaxUint64), uint64(math.MaxUint64), "\x00")
	f.Fuzz(func(t *testing.T, scope, index uint64, after string) {
		if after == "" {
			return // a page's last key is never empty
		}
		want := continueToken{scope: scope, index: index, after: after}
		if got, err := decodeContinue(encodeContinue(want)); err != nil || got != want {
			t.Fatalf("round trip of %+v: %+v, %v", want, got, err)
		}
	})
}

// FuzzParseEventID: a Last-Event-ID resumes at an index >= 1 after a
// position in [-1, 2^32), written back by EventID (or the index alone)
// to the same resumption; anything else is ErrBadWatch.
func FuzzParseEventID(f *testing.F) {
	for _, s := range []string{"71.0", "71", "0", "0.0", "1.4294967295", "1.4294967296", "18446744073709551615", "18446744073709551614",
		"18446744073709551615.3", "", ".", "5.", ".5", "+5", "5.+1", "-1", " 7.2 ", "7. 2", "1.2.3", "٧"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, id string) {
		from, after, err := ParseEventID(id)
		if err != nil {
			if !errors.Is(err, ErrBadWatch) || from != 0 || after != 0 {
				t.Fatalf("ParseEventID(%q) = %d, %d, %v: want zeros and ErrBadWatch", id, from, after, err)
			}
			return
		}
		if from < 1 || after < -1 || after > math.MaxUint32 {
			t.Fatalf("ParseEventID(%q) = %d, %d: out of bounds", id, from, after)
		}
		back := strconv.FormatUint(from-1, 10)
		if after >= 0 {
			back = EventID(from, uint32(after))
		}
		if f2, a2, err := ParseEventID(back); err != nil || f2 != from || a2 != after {
			t.Fatalf("ParseEventID(%q) = %d, %d; written back as %q it reads %d, %d, %v", id, from, after, back, f2, a2, err)
		}
	})
}

// FuzzParseWatch: a watch's from_index and Last-Event-ID become its
// options (Last-Event-ID winning), or ErrBadWatch.
func FuzzParseWatch(f *testing.F) {
	f.Add("5", "", false)
	f.Add("", "71.3", true)
	f.Add("5", "71", true)
	f.Add("-1", "", false)
	f.Add(" 18446744073709551615 ", "", false)
	f.Add("18446744073709551616", "", false)
	f.Add("5", "0.1", true)
	f.Add("0x10", "", false)
	h := &handler{cfg: Config{}.withDefaults()}
	f.Fuzz(func(t *testing.T, from, lastID string, hasLast bool) {
		q := url.Values{"watch": {"true"}, "prefix": {"p/"}}
		if from != "" {
			q.Set("from_index", from)
		}
		r := httptest.NewRequest(http.MethodGet, "/key?"+q.Encode(), nil)
		if hasLast {
			r.Header.Set(HeaderLastEventID, lastID)
		}
		req, err := h.parseWatch(r)
		if err != nil {
			if !errors.Is(err, ErrBadWatch) && !errors.Is(err, ErrBadQuery) {
				t.Fatalf("parseWatch(from_index %q, Last-Event-ID %q) = %v: not ErrBadWatch", from, lastID, err)
			}
			return
		}
		if req.opts.Prefix != "p/" || req.opts.Key != "" {
			t.Fatalf("options %+v", req.opts)
		}
		var wantFrom uint64
		wantAfter := int64(-1)
		if from != "" {
			n, err := strconv.ParseUint(strings.TrimSpace(from), 10, 64)
			if err != nil {
				t.Fatalf("from_index %q accepted as %d", from, req.opts.FromIndex)
			}
			wantFrom = n
		}
		if hasLast {
			if wantFrom, wantAfter, err = ParseEventID(lastID); err != nil {
				t.Fatalf("Last-Event-ID %q accepted: %+v", lastID, req.opts)
			}
		}
		if req.opts.FromIndex != wantFrom || req.opts.AfterPos != wantAfter {
			t.Fatalf("from_index %q, Last-Event-ID %q (%v): got from %d after %d, want %d %d",
				from, lastID, hasLast, req.opts.FromIndex, req.opts.AfterPos, wantFrom, wantAfter)
		}
	})
}
