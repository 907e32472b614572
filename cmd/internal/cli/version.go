package cli

import (
	"fmt"
	"runtime"
	"runtime/debug"
)

// Version is the text of a command's --version: its module version, the VCS
// revision it was built from (with "(modified)" when the work tree had
// uncommitted changes), and the Go version and platform. A binary built
// without VCS information (go run, go test, -buildvcs=false) says
// "unknown" for the revision.
func Version(command string) string {
	version, revision, modified := "unknown", "unknown", false
	if bi, ok := debug.ReadBuildInfo(); ok {
		if bi.Main.Version != "" {
			version = bi.Main.Version
		}
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				revision = s.Value
			case "vcs.modified":
				modified = s.Value == "true"
			}
		}
	}
	if modified {
		revision += " (modified)"
	}
	return fmt.Sprintf("%s version: %s\nVCS revision: %s\nGo version: %s\nGo OS/Arch: %s/%s\n",
		command, version, revision, runtime.Version(), runtime.GOOS, runtime.GOARCH)
}
