package robustness

import (
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"
)

// ms is a history time.
func ms(n int) time.Duration { return time.Duration(n) * time.Millisecond }

func put(k, v string, call, ret int, res Result) Op {
	return Op{Input: Input{Op: OpPut, Key: k, Value: v}, Output: Output{Result: res}, Call: ms(call), Return: ms(ret)}
}

func del(k string, call, ret int, res Result) Op {
	return Op{Input: Input{Op: OpDelete, Key: k}, Output: Output{Result: res}, Call: ms(call), Return: ms(ret)}
}

func get(k, v string, call, ret int) Op {
	out := Output{Result: ResultValue, Value: v}
	if v == "" {
		out = Output{Result: ResultNotFound}
	}
	return Op{Input: Input{Op: OpGet, Key: k}, Output: out, Call: ms(call), Return: ms(ret)}
}

func failedGet(k string, call, ret int) Op {
	return Op{Input: Input{Op: OpGet, Key: k}, Output: Output{Result: ResultFailed}, Call: ms(call), Return: ms(ret)}
}

func TestCheckLinearizable(t *testing.T) {
	for _, tc := range []struct {
		name string
		ops  []Op
		want porcupine.CheckResult
	}{
		{"empty", nil, porcupine.Ok},
		{"read own write", []Op{put("a", "1", 0, 10, ResultOK), get("a", "1", 20, 30)}, porcupine.Ok},
		{"absent at first", []Op{get("a", "", 0, 10), put("a", "1", 20, 30, ResultOK)}, porcupine.Ok},
		{"stale read", []Op{
			put("a", "1", 0, 10, ResultOK), put("a", "2", 20, 30, ResultOK), get("a", "1", 40, 50),
		}, porcupine.Illegal},
		{"concurrent read may see either", []Op{
			put("a", "1", 0, 10, ResultOK), put("a", "2", 20, 40, ResultOK), get("a", "1", 25, 35), get("a", "2", 30, 50),
		}, porcupine.Ok},
		{"value never written", []Op{put("a", "1", 0, 10, ResultOK), get("a", "9", 20, 30)}, porcupine.Illegal},
		{"lost acknowledged write", []Op{put("a", "1", 0, 10, ResultOK), get("a", "", 20, 30)}, porcupine.Illegal},
		{"deleted", []Op{put("a", "1", 0, 10, ResultOK), del("a", 20, 30, ResultOK), get("a", "", 40, 50)}, porcupine.Ok},
		{"read of deleted value", []Op{put("a", "1", 0, 10, ResultOK), del("a", 20, 30, ResultOK), get("a", "1", 40, 50)}, porcupine.Illegal},
		{"unknown put applied late", []Op{
			put("a", "1", 0, 10, ResultUnknown), get("a", "", 20, 30), put("a", "2", 40, 50, ResultOK), get("a", "1", 60, 70),
		}, porcupine.Ok},
		{"unknown put never applied", []Op{put("a", "1", 0, 10, ResultUnknown), get("a", "", 20, 30)}, porcupine.Ok},
		{"unknown put applied, then undone", []Op{
			put("a", "1", 0, 10, ResultUnknown), get("a", "1", 20, 30), get("a", "", 40, 50),
		}, porcupine.Illegal},
		{"unknown delete applied late", []Op{
			put("a", "1", 0, 10, ResultOK), del("a", 20, 30, ResultUnknown), get("a", "1", 40, 50), get("a", "", 60, 70),
		}, porcupine.Ok},
		{"failed operations are ignored", []Op{
			put("a", "1", 0, 10, ResultOK), put("a", "2", 20, 30, ResultFailed), failedGet("a", 40, 50), get("a", "1", 60, 70),
		}, porcupine.Ok},
		{"keys are independent", []Op{
			put("a", "1", 0, 10, ResultOK), put("b", "2", 0, 10, ResultOK), get("a", "1", 20, 30), get("b", "2", 20, 30),
		}, porcupine.Ok},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := CheckLinearizable(tc.ops, nil, 10*time.Second, "")
			if r.Result != tc.want {
				t.Errorf("got %s, want %s", r, tc.want)
			}
		})
	}
}

func TestPorcupineOpsDropsUnobservableUnknownWrites(t *testing.T) {
	ops := []Op{
		put("a", "1", 0, 10, ResultUnknown), // never read: dropped
		put("a", "2", 0, 10, ResultUnknown), // read: kept, returns at the end
		get("a", "2", 20, 30),
		get("b", "", 0, 5),              // returned before the delete was called
		del("b", 10, 20, ResultUnknown), // no not-found read of b after its call: dropped
		put("b", "3", 30, 40, ResultOK), // the read after it cannot tell
		get("b", "3", 50, 60),
		del("c", 40, 50, ResultUnknown), // a not-found read after its call: kept
		get("c", "", 60, 70),
		put("d", "9", 0, 10, ResultFailed), // failed: dropped
		failedGet("d", 20, 30),             // failed: dropped
	}
	got := PorcupineOps(ops)
	kept := map[string]int64{}
	for _, op := range got {
		in := op.Input.(Input)
		if op.Output.(Output).Result == ResultUnknown {
			kept[in.Op.String()+" "+in.Key+" "+in.Value] = op.Return
		}
	}
	end := int64(ms(70)) + 1
	want := map[string]int64{"put a 2": end, "delete c ": end}
	if len(kept) != len(want) {
		t.Fatalf("unknown writes kept: %v, want %v", kept, want)
	}
	for k, v := range want {
		if kept[k] != v {
			t.Errorf("%s: return %d, want %d (kept %v)", k, kept[k], v, kept)
		}
	}
	if len(got) != 7 {
		t.Errorf("kept %d operations, want 7: %v", len(got), got)
	}
}

func TestClassify(t *testing.T) {
	for _, tc := range []struct {
		kind OpKind
		r    response
		want Result
	}{
		{OpPut, response{status: http.StatusNoContent}, ResultOK},
		{OpPut, response{status: http.StatusServiceUnavailable}, ResultFailed},
		{OpDelete, response{status: http.StatusServiceUnavailable}, ResultFailed},
		{OpPut, response{status: http.StatusGatewayTimeout}, ResultUnknown},
		{OpPut, response{status: http.StatusInternalServerError}, ResultUnknown},
		{OpPut, response{status: http.StatusBadRequest}, ResultFailed},
		{OpPut, response{err: errTest}, ResultUnknown},
		{OpPut, response{err: errTest, notSent: true}, ResultFailed},
		{OpDelete, response{status: http.StatusNoContent}, ResultOK},
		{OpDelete, response{err: errTest}, ResultUnknown},
		{OpGet, response{status: http.StatusOK, body: []byte("v")}, ResultValue},
		{OpGet, response{status: http.StatusNotFound}, ResultNotFound},
		{OpGet, response{status: http.StatusServiceUnavailable}, ResultFailed},
		{OpGet, response{status: http.StatusGatewayTimeout}, ResultFailed},
		{OpGet, response{err: errTest}, ResultFailed},
	} {
		if got := classify(tc.kind, tc.r); got.Result != tc.want {
			t.Errorf("classify(%s, %+v) = %s, want %s", tc.kind, tc.r, got.Result, tc.want)
		}
	}
}

var errTest = http.ErrHandlerTimeout

func TestVisualizationOfIllegalHistory(t *testing.T) {
	path := filepath.Join(t.TempDir(), "h.html")
	ops := []Op{put("a", "1", 0, 10, ResultOK), put("a", "2", 20, 30, ResultOK), get("a", "1", 40, 50)}
	r := CheckLinearizable(ops, []Note{{At: ms(15), Text: "fault"}}, 10*time.Second, path)
	if r.Result != porcupine.Illegal || r.Visualization != path || r.Err != nil {
		t.Fatalf("got %+v", r)
	}
	if len(r.BadKeys) != 1 || r.BadKeys[0] != "a" {
		t.Errorf("bad keys %v, want [a]", r.BadKeys)
	}
}
