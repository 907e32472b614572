package main

import (
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/raftkv/raftkv/testcluster"
)

func TestMonitorEnv(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   []string
		want []string // nil: left alone
	}{
		{"no GODEBUG", []string{"HOME=/h", "PATH=/bin"}, []string{"HOME=/h", "PATH=/bin", "GODEBUG=" + monitorSetting}},
		{"empty GODEBUG", []string{"GODEBUG=", "HOME=/h"}, []string{"GODEBUG=" + monitorSetting, "HOME=/h"}},
		{"other settings kept", []string{"GODEBUG=madvdontneed=1,gctrace=1"}, []string{"GODEBUG=madvdontneed=1,gctrace=1," + monitorSetting}},
		{"schedtrace=0 keeps Go's default", []string{"GODEBUG=schedtrace=0"}, nil},
		{"schedtrace set among others", []string{"A=1", "GODEBUG=gctrace=1,schedtrace=1000"}, nil},
		{"a name that only ends in schedtrace", []string{"GODEBUG=xschedtrace=1"}, []string{"GODEBUG=xschedtrace=1," + monitorSetting}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := monitorEnv(tc.in); !slices.Equal(got, tc.want) || (got == nil) != (tc.want == nil) {
				t.Errorf("monitorEnv(%q) = %q, want %q", tc.in, got, tc.want)
			}
		})
	}
}

// TestQuietMonitorRestart runs the binary as a user would and checks that
// the serving member runs with the monitor setting in its environment
// (the same process, started again by execve), and that GODEBUG naming
// schedtrace is left as it is.
func TestQuietMonitorRestart(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the raftkv binary")
	}
	bin := testcluster.BuildBinary(t)
	for _, tc := range []struct {
		name, godebug, want string
	}{
		{"added", "", "GODEBUG=" + monitorSetting},
		{"appended", "GODEBUG=gctrace=0", "GODEBUG=gctrace=0," + monitorSetting},
		{"left alone", "GODEBUG=schedtrace=0", "GODEBUG=schedtrace=0"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ports := testcluster.FreePorts(t, 2)
			cmd := exec.Command(bin, "--id", "1", "--cluster", "http://127.0.0.1:"+strconv.Itoa(ports[0]),
				"--port", strconv.Itoa(ports[1]), "--listen-host", "127.0.0.1", "--data-dir", t.TempDir())
			cmd.Env = slices.DeleteFunc(os.Environ(), func(kv string) bool { return strings.HasPrefix(kv, "GODEBUG=") })
			if tc.godebug != "" {
				cmd.Env = append(cmd.Env, tc.godebug)
			}
			logs := stderrToFile(t, cmd)
			done := startMember(t, cmd)

			// The member answers a write only once it runs for good, so its
			// environment is the final one by then.
			url := "http://127.0.0.1:" + strconv.Itoa(ports[1]) + "/k"
			awaitMember(t, done, logs, "write acknowledged", func() error {
				req, _ := http.NewRequest(http.MethodPut, url, strings.NewReader("v"))
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					return err
				}
				resp.Body.Close()
				if resp.StatusCode != http.StatusNoContent {
					return fmt.Errorf("PUT: status %d", resp.StatusCode)
				}
				return nil
			})
			raw, err := os.ReadFile("/proc/" + strconv.Itoa(cmd.Process.Pid) + "/environ")
			if err != nil {
				t.Fatal(err)
			}
			var godebug []string
			for kv := range strings.SplitSeq(string(raw), "\x00") {
				if strings.HasPrefix(kv, "GODEBUG=") {
					godebug = append(godebug, kv)
				}
			}
			if len(godebug) != 1 || godebug[0] != tc.want {
				t.Errorf("the serving member's GODEBUG: %q, want [%q]", godebug, tc.want)
			}
			if strings.Contains(logs(), "SCHED") {
				t.Errorf("stderr holds a scheduler trace:\n%s", logs())
			}
		})
	}
}
