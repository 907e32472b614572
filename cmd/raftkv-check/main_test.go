package main

import (
	"strings"
	"testing"
	"time"
)

func TestParseFlags(t *testing.T) {
	for _, tc := range []struct {
		args    []string
		wantErr string
	}{
		{[]string{"--endpoints", "http://127.0.0.1:12380,http://127.0.0.1:22380/"}, ""},
		{nil, "--endpoints is required"},
		{[]string{"--endpoints", "127.0.0.1:12380"}, "not an http(s) URL"},
		{[]string{"--endpoints", "http://a:1", "--duration", "0s"}, "--duration must be positive"},
		{[]string{"--endpoints", "http://a:1", "--clients", "0"}, "must be positive"},
		{[]string{"--endpoints", "http://a:1", "--rate", "-1"}, "must not be negative"},
		{[]string{"--endpoints", "http://a:1", "extra"}, "unexpected arguments"},
	} {
		o, err := parseFlags(tc.args)
		switch {
		case tc.wantErr == "" && err != nil:
			t.Errorf("%q: %v", tc.args, err)
		case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
			t.Errorf("%q: error %v, want one containing %q", tc.args, err, tc.wantErr)
		case tc.wantErr == "":
			if len(o.endpoints) != 2 || o.endpoints[1] != "http://127.0.0.1:22380" {
				t.Errorf("%q: endpoints %q", tc.args, o.endpoints)
			}
			if o.duration != 30*time.Second || o.seed == 0 || !strings.HasPrefix(o.prefix, "raftkv-check/") {
				t.Errorf("%q: defaults %+v", tc.args, o)
			}
		}
	}
}
