package bench

import (
	"os"
	"strings"
	"testing"
	"time"
)

func TestParseCPUMetric(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		want     time.Duration
		wantErr  string
	}{
		{"plain", "# HELP process_cpu_seconds_total Total user and system CPU time spent in seconds.\n" +
			"# TYPE process_cpu_seconds_total counter\nprocess_cpu_seconds_total 12.34\nprocess_max_fds 1024\n", 12340 * time.Millisecond, ""},
		{"labels", `process_cpu_seconds_total{member="1"} 0.5` + "\n", 500 * time.Millisecond, ""},
		{"exponent", "process_cpu_seconds_total 1.5e+01\n", 15 * time.Second, ""},
		{"a longer name first", "process_cpu_seconds_total_x 9\nprocess_cpu_seconds_total 2\n", 2 * time.Second, ""},
		{"absent", "go_goroutines 7\n", 0, "no process_cpu_seconds_total"},
		{"no value", "process_cpu_seconds_total \n", 0, "bad line"},
		{"not a number", "process_cpu_seconds_total x\n", 0, "bad line"},
		{"negative", "process_cpu_seconds_total -1\n", 0, "bad line"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseCPUMetric(strings.NewReader(tc.in))
			switch {
			case tc.wantErr == "" && (err != nil || got != tc.want):
				t.Fatalf("= %v, %v; want %v", got, err, tc.want)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Fatalf("= %v, %v; want an error containing %q", got, err, tc.wantErr)
			}
		})
	}
}

func TestParseProcStat(t *testing.T) {
	// Fields 14 and 15 (utime, stime) are 250 and 50 ticks: 3 s.
	tail := " S 1 2 3 4 5 6 7 8 9 10 250 50 0 0 20 0 1 0 100 200 300"
	for _, tc := range []struct {
		name, in string
		want     time.Duration
		wantErr  bool
	}{
		{"plain", "42 (raftkv)" + tail, 3 * time.Second, false},
		{"name with spaces and parentheses", "42 (a (b) c)" + tail, 3 * time.Second, false},
		{"short", "42 (raftkv) S 1 2 3", 0, true},
		{"no name", "42 raftkv" + tail, 0, true},
		{"not a number", "42 (raftkv) S 1 2 3 4 5 6 7 8 9 10 x 50 0", 0, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseProcStat([]byte(tc.in))
			if (err != nil) != tc.wantErr || got != tc.want {
				t.Fatalf("= %v, %v; want %v (error %v)", got, err, tc.want, tc.wantErr)
			}
		})
	}
}

// TestReadProcCPU reads this process's own CPU time, which grows as it
// spins.
func TestReadProcCPU(t *testing.T) {
	if _, err := os.Stat("/proc/self/stat"); err != nil {
		t.Skip("no /proc")
	}
	before, err := readProcCPU(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		x := 0
		for i := range 1_000_000 {
			x += i
		}
		_ = x
		after, err := readProcCPU(os.Getpid())
		if err != nil {
			t.Fatal(err)
		}
		if after > before {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("CPU time stayed at %v for 10s of spinning", before)
		}
	}
}
