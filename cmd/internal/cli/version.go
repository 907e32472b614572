package cli

import (
	"fmt"
	"runtime"

	"github.com/raftkv/raftkv/internal/buildinfo"
)

// Version is the text of a command's --version: its module version, the VCS
// revision it was built from (with "(modified)" when the work tree had
// uncommitted changes), the feature level it speaks (see buildinfo.Level),
// and the Go version and platform. A binary built
// without VCS information (go run, go test, -buildvcs=false) says
// "unknown" for the revision.
func Version(command string) string {
	in := buildinfo.Get()
	revision := in.Revision
	if revision == "" {
		revision = "unknown"
	}
	if in.Modified {
		revision += " (modified)"
	}
	return fmt.Sprintf("%s version: %s\nVCS revision: %s\nFeature level: %d\nGo version: %s\nGo OS/Arch: %s/%s\n",
		command, in.Version, revision, in.Level, in.Go, runtime.GOOS, runtime.GOARCH)
}
