package main

import (
	"net"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/raftkv/raftkv/testcluster"
)

// TestSignalWhileStarting stops a member that is still starting: a new
// shard member whose config group does not answer waits in start-up for
// its bucket count. SIGTERM or SIGINT then ends it cleanly (status 0,
// and a log line that says so) rather than by the signal's default
// action.
func TestSignalWhileStarting(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the raftkv binary")
	}
	bin := testcluster.BuildBinary(t)
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGINT} {
		t.Run(sig.String(), func(t *testing.T) {
			ports := testcluster.FreePorts(t, 3) // peer, client, a config group nobody runs
			client := "127.0.0.1:" + strconv.Itoa(ports[1])
			cmd := exec.Command(bin, "--group", "1", "--config-endpoints", "http://127.0.0.1:"+strconv.Itoa(ports[2]),
				"--id", "1", "--cluster", "http://127.0.0.1:"+strconv.Itoa(ports[0]),
				"--port", strconv.Itoa(ports[1]), "--listen-host", "127.0.0.1", "--data-dir", t.TempDir())
			logs := stderrToFile(t, cmd)
			done := startMember(t, cmd)

			// Start claims the client port first, then asks the config
			// group (for up to 30 s): a member that accepts connections
			// is starting.
			awaitMember(t, done, logs, "connection to "+client, func() error {
				c, err := net.DialTimeout("tcp", client, time.Second)
				if err == nil {
					c.Close()
				}
				return err
			})
			if err := cmd.Process.Signal(sig); err != nil {
				t.Fatal(err)
			}
			select {
			case <-done:
			case <-time.After(10 * time.Second):
				t.Fatalf("still running 10 s after %v:\n%s", sig, logs())
			}
			if code := cmd.ProcessState.ExitCode(); code != 0 {
				t.Errorf("exit status %d after %v (%v), want 0:\n%s", code, sig, cmd.ProcessState, logs())
			}
			if !strings.Contains(logs(), `"msg":"stopped while starting","signal":"`+sig.String()+`"`) {
				t.Errorf("no log line says it stopped while starting on %v:\n%s", sig, logs())
			}
		})
	}
}
