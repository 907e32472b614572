// Package buildinfo is what a raftkv binary knows of its own build: the
// module version, the VCS revision it was built from and the Go version.
// Commands print it for --version; members and routers show it in GET
// /status, so that an operator can see which binary each one runs, as
// in the middle of a rolling upgrade.
package buildinfo

import (
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
)

// Info is a binary's build, as GET /status shows it.
type Info struct {
	// Version is the module version: "(devel)" for a binary built from a
	// checkout, a tag such as v1.2.0 for one installed by version.
	Version string `json:"version"`
	// Revision is the VCS revision, empty when the binary was built
	// without VCS information (go run, go test, -buildvcs=false).
	Revision string `json:"revision,omitempty"`
	// Modified says the work tree had uncommitted changes.
	Modified bool   `json:"modified,omitempty"`
	Go       string `json:"go"`
	// Level is the feature level the binary speaks (see Level).
	Level uint32 `json:"level"`
}

// level is the feature level this binary speaks: each level adds
// operations whose entries members of a lower level would misapply, so a
// member serves them only once every member speaks it (the cluster level;
// see raftnode's Config.Level). Binaries from before levels speak 0. A
// build for tests may set it with -ldflags, as the tests of a rolling
// upgrade do to stand for an older binary.
var level = "3"

// Level is this binary's feature level.
func Level() uint32 {
	v, err := strconv.ParseUint(level, 10, 32)
	if err != nil {
		panic("buildinfo: level " + strconv.Quote(level) + " is not a number")
	}
	return uint32(v)
}

// Get reads this binary's build, once.
var Get = sync.OnceValue(func() Info {
	in := Info{Version: "unknown", Go: runtime.Version(), Level: Level()}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return in
	}
	if bi.Main.Version != "" {
		in.Version = bi.Main.Version
	}
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			in.Revision = s.Value
		case "vcs.modified":
			in.Modified = s.Value == "true"
		}
	}
	return in
})

// Short is in for a column: the version, then the revision's first 12
// characters and "modified" when it applies, unless the version says
// them already (Go stamps a binary built from a checkout with a
// pseudo-version such as v0.0.0-20261205110428-73641101b97e+dirty).
func (in Info) Short() string {
	s := in.Version
	rev := in.Revision
	if len(rev) > 12 {
		rev = rev[:12]
	}
	if rev != "" && !strings.Contains(s, rev) {
		s += " " + rev
	}
	if in.Modified && !strings.HasSuffix(s, "+dirty") {
		s += " modified"
	}
	return s
}
