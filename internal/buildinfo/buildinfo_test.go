package buildinfo

import (
	"runtime"
	"testing"
)

func TestGet(t *testing.T) {
	in := Get()
	if in.Go != runtime.Version() || in.Version == "" {
		t.Errorf("Get() = %+v; want Go %s and a version", in, runtime.Version())
	}
}

func TestShort(t *testing.T) {
	for _, tc := range []struct {
		in   Info
		want string
	}{
		{Info{Version: "(devel)"}, "(devel)"},
		{Info{Version: "(devel)", Revision: "7364110dd2e1aa0b5e3b9f4c1a2d3e4f5a6b7c8d"}, "(devel) 7364110dd2e1"},
		{Info{Version: "v1.2.0", Revision: "abc", Modified: true}, "v1.2.0 abc modified"},
		{Info{Version: "v0.0.0-20261205110428-73641101b97e+dirty", Revision: "73641101b97ef867da6bf25285babffca83d0cc7", Modified: true},
			"v0.0.0-20261205110428-73641101b97e+dirty"},
		{Info{Version: "v0.0.0-20261205110428-73641101b97e", Revision: "73641101b97ef867da6bf25285babffca83d0cc7"},
			"v0.0.0-20261205110428-73641101b97e"},
	} {
		if got := tc.in.Short(); got != tc.want {
			t.Errorf("%+v.Short() = %q, want %q", tc.in, got, tc.want)
		}
	}
}
