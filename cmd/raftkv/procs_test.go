package main

import (
	"runtime"
	"testing"
)

func TestSharedProcs(t *testing.T) {
	local3 := []string{"http://127.0.0.1:12379", "http://localhost:22379", "http://[::1]:32379"}
	tests := []struct {
		name  string
		procs int
		peers []string
		want  int
	}{
		{"three members on two cores", 2, local3, 1},
		{"three members on eight cores", 8, local3, 3},
		{"three members on one core", 1, local3, 1},
		{"five members on four cores", 4, []string{"http://127.0.0.1:1", "http://127.0.0.2:1", "http://127.0.0.3:1", "http://127.0.0.4:1", "http://127.0.0.5:1"}, 1},
		{"a member alone", 8, []string{"http://127.0.0.1:12379"}, 0},
		{"one member elsewhere", 8, []string{"http://127.0.0.1:12379", "http://10.0.0.2:12379", "http://127.0.0.1:32379"}, 0},
		{"named hosts", 8, []string{"http://a:1", "http://b:1", "http://c:1"}, 0},
		{"https loopback", 4, []string{"https://127.0.0.1:1", "https://127.0.0.1:2"}, 2},
	}
	for _, tt := range tests {
		if got := sharedProcs(tt.procs, tt.peers); got != tt.want {
			t.Errorf("%s: sharedProcs(%d) = %d, want %d", tt.name, tt.procs, got, tt.want)
		}
	}
}

func TestSetProcs(t *testing.T) {
	before := runtime.GOMAXPROCS(0)
	t.Cleanup(func() { runtime.GOMAXPROCS(before) })
	local := []string{"http://127.0.0.1:1", "http://127.0.0.1:2"}
	noEnv := func(string) string { return "" }
	withEnv := func(k string) string {
		if k == "GOMAXPROCS" {
			return "7"
		}
		return ""
	}
	if got := setProcs(3, local, noEnv); got != 3 || runtime.GOMAXPROCS(0) != 3 {
		t.Errorf("--gomaxprocs 3: set %d, GOMAXPROCS %d", got, runtime.GOMAXPROCS(0))
	}
	runtime.GOMAXPROCS(4)
	if got := setProcs(0, local, noEnv); got != 2 || runtime.GOMAXPROCS(0) != 2 {
		t.Errorf("automatic, two local members on 4: set %d, GOMAXPROCS %d, want 2", got, runtime.GOMAXPROCS(0))
	}
	runtime.GOMAXPROCS(4)
	if got := setProcs(5, local, withEnv); got != 0 || runtime.GOMAXPROCS(0) != 4 {
		t.Errorf("GOMAXPROCS in the environment: set %d, GOMAXPROCS %d, want it left at 4", got, runtime.GOMAXPROCS(0))
	}
	if got := setProcs(0, []string{"http://10.0.0.1:1", "http://10.0.0.2:1"}, noEnv); got != 0 || runtime.GOMAXPROCS(0) != 4 {
		t.Errorf("members on other machines: set %d, GOMAXPROCS %d, want it left at 4", got, runtime.GOMAXPROCS(0))
	}
}
