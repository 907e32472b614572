package testcluster

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// BinaryEnv names an environment variable that, when set, is the path of a prebuilt
// raftkv binary to use instead of building one.
const BinaryEnv = "RAFTKV_BINARY"

// build is the result of the one build per test process. Each test process builds into
// its own temporary directory, so concurrent `go test` runs do not share a binary.
var build struct {
	once sync.Once
	dir  string // removed by Main
	path string
	err  error
}

// BuildBinary returns the path of a raftkv binary built from ./cmd/raftkv of the module
// that contains the current directory. It builds at most once per test process (with
// -race if the test binary has it) and fails t if the build fails.
func BuildBinary(t testing.TB) string {
	t.Helper()
	if p := os.Getenv(BinaryEnv); p != "" {
		return p
	}
	build.once.Do(func() { build.dir, build.path, build.err = buildBinary() })
	if build.err != nil {
		t.Fatalf("testcluster: %v", build.err)
	}
	return build.path
}

// tagged holds the binaries built with more flags, one per set of flags.
var tagged struct {
	sync.Mutex
	paths map[string]string
}

// BuildBinaryTags is BuildBinary for a build with `-tags tags`, such as the
// deliberately broken builds negative controls run. It builds once per tag
// set per test process; Main removes the binaries.
func BuildBinaryTags(t testing.TB, tags string) string {
	t.Helper()
	return BuildBinaryFlags(t, "-tags", tags)
}

// BuildBinaryFlags is BuildBinary for a build with more flags of go
// build, such as -tags or -ldflags. It builds once per set of flags per
// test process; Main removes the binaries.
func BuildBinaryFlags(t testing.TB, flags ...string) string {
	t.Helper()
	tagged.Lock()
	defer tagged.Unlock()
	key := strings.Join(flags, "\x00")
	if p, ok := tagged.paths[key]; ok {
		return p
	}
	dir, path, err := buildBinary(flags...)
	if err != nil {
		t.Fatalf("testcluster: %v", err)
	}
	if tagged.paths == nil {
		tagged.paths = map[string]string{}
	}
	tagged.paths[key] = path
	extraDirs = append(extraDirs, dir)
	return path
}

// extraDirs are build directories Main removes besides build.dir.
var extraDirs []string

// Main runs the tests of m, removes the binary built by BuildBinary and exits. Call it
// from TestMain: func TestMain(m *testing.M) { testcluster.Main(m) }.
func Main(m *testing.M) { os.Exit(Run(m)) }

// Run is Main without the exit: it returns m.Run's code, for a TestMain
// that has more to clean up.
func Run(m *testing.M) int {
	code := m.Run()
	if build.dir != "" {
		os.RemoveAll(build.dir)
	}
	for _, d := range extraDirs {
		os.RemoveAll(d)
	}
	return code
}

func buildBinary(flags ...string) (dir, path string, err error) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", "", fmt.Errorf("go env GOMOD: %w", err)
	}
	gomod := strings.TrimSpace(string(out))
	if gomod == "" || gomod == os.DevNull {
		return "", "", fmt.Errorf("go env GOMOD: not inside a module")
	}
	dir, err = os.MkdirTemp("", "raftkv-testcluster-")
	if err != nil {
		return "", "", err
	}
	// Nodes of a Blackholable cluster run as other users, who must reach the binary.
	if err := os.Chmod(dir, 0o755); err != nil {
		os.RemoveAll(dir)
		return "", "", err
	}
	path = filepath.Join(dir, "raftkv")
	args := append([]string{"build", "-o", path}, flags...)
	if raceEnabled {
		args = append(args, "-race")
	}
	args = append(args, "./cmd/raftkv")
	cmd := exec.Command("go", args...)
	cmd.Dir = filepath.Dir(gomod)
	if out, err := cmd.CombinedOutput(); err != nil {
		os.RemoveAll(dir)
		return "", "", fmt.Errorf("go %s: %w\n%s", strings.Join(args, " "), err, out)
	}
	return dir, path, nil
}
