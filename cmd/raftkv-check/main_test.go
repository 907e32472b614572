package main

import (
	"bytes"
	"errors"
	"flag"
	"io"
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
		o, err := parseFlags(tc.args, io.Discard)
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

func TestHelpAndVersion(t *testing.T) {
	var help bytes.Buffer
	if _, err := parseFlags([]string{"--help"}, &help); !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("--help: %v, want flag.ErrHelp", err)
	}
	for _, want := range []string{"raftkv-check runs a workload", "\nExamples:\n  raftkv-check --endpoints ", "\nFlags:\n", "-version"} {
		if !strings.Contains(help.String(), want) {
			t.Errorf("--help lacks %q:\n%s", want, help.String())
		}
	}
	if !strings.HasPrefix(help.String(), "raftkv-check runs") {
		t.Errorf("--help does not start with what the command does:\n%s", help.String())
	}
	help.Reset()
	if _, err := parseFlags([]string{"--nope"}, &help); err == nil || help.Len() > 0 {
		t.Errorf("an unknown flag: %v, and the help written: %q", err, help.String())
	}
	if _, err := parseFlags([]string{"--version"}, &help); !errors.Is(err, errVersion) {
		t.Errorf("--version: %v, want errVersion", err)
	}
}
