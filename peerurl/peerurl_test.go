package peerurl

import (
	"errors"
	"net"
	"net/url"
	"testing"

	"go.etcd.io/etcd/client/pkg/v3/types"
)

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		in, want string // want "" means refused
	}{
		{"http://127.0.0.1:42379", "http://127.0.0.1:42379"},
		{" http://Node4.Example:042379/\n", "http://node4.example:42379"},
		{"http://[::1]:1", "http://[::1]:1"},
		{"http://[::ffff:127.0.0.1]:80", "http://[::ffff:127.0.0.1]:80"},
		{"http://h_1.x-y:9", "http://h_1.x-y:9"},
		{"https://127.0.0.1:42379", "https://127.0.0.1:42379"},
		{"HTTPS://Node4.Example:042379", "https://node4.example:42379"},
		{"http://[fe80::1%25eth0]:1", ""},
		{"http://a]b:1", ""},
		{"http://h:1/raft", ""},
		{"http://h:1?", ""},
		{"http://h:1#", "http://h:1"},
		{"http://u@h:1", ""},
		{"http://h", ""},
		{"h:1", ""},
		{"http://:1", ""},
		{"http://h:65536", ""},
		{"http://h:0", ""},
		{"http://a..b:1", ""},
		{"ftp://h:1", ""},
		{"", ""},
	} {
		got, err := Parse(tc.in)
		if tc.want == "" {
			if err == nil || !errors.Is(err, ErrInvalid) {
				t.Errorf("Parse(%q) = %q, %v; want an ErrInvalid", tc.in, got, err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("Parse(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
}

func TestParseRefusesWithAReason(t *testing.T) {
	_, err := Parse("ftp://127.0.0.1:2380")
	var e *Error
	if !errors.As(err, &e) || e.Reason == "" || e.URL != "ftp://127.0.0.1:2380" {
		t.Fatalf("Parse(ftp) = %v; want an *Error naming the URL and the reason", err)
	}
}

func TestScheme(t *testing.T) {
	for in, want := range map[string]string{
		"http://127.0.0.1:1": "http", "HTTPS://h:1": "https", "https://h": "", "ftp://h:1": "",
	} {
		if got := Scheme(in); got != want {
			t.Errorf("Scheme(%q) = %q; want %q", in, got, want)
		}
	}
}

// FuzzParse: a peer URL Parse accepts is canonical (accepting it again
// gives it back unchanged), has exactly the form rafthttp needs (a
// host:port that net.SplitHostPort splits, a port 1-65535, nothing else),
// and is one etcd's rafthttp accepts: its AddPeer panics on any other.
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"http://127.0.0.1:42379", " https://Node4.Example:042379/\n", "http://[::1]:1",
		"http://[fe80::1%25eth0]:1", "http://a]b:1", "http://h:1/", "http://h:1?", "http://h:1#",
		"http://u@h:1", "http://h", "h:1", "http://:1", "http://h:65536", "http://a..b:1",
		"http://[::ffff:127.0.0.1]:80", "http://1.2.3:4", "http://h_1.x-y:9", "ftp://h:1", "",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		out, err := Parse(s)
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("Parse(%q): error %v is not ErrInvalid", s, err)
			}
			return
		}
		again, err := Parse(out)
		if err != nil || again != out {
			t.Fatalf("Parse(%q) = %q, not canonical: again %q, %v", s, out, again, err)
		}
		u, err := url.Parse(out)
		if err != nil {
			t.Fatalf("Parse(%q) = %q does not parse: %v", s, out, err)
		}
		host, port, err := net.SplitHostPort(u.Host)
		if err != nil || host == "" || port == "" || port[0] == '0' {
			t.Fatalf("Parse(%q) = %q: host:port %q does not split cleanly: %v", s, out, u.Host, err)
		}
		if (u.Scheme != "http" && u.Scheme != "https") || u.Path != "" || u.RawQuery != "" || u.ForceQuery ||
			u.Fragment != "" || u.User != nil || u.Opaque != "" || out != u.Scheme+"://"+u.Host {
			t.Fatalf("Parse(%q) = %q is not http(s)://host:port", s, out)
		}
		if _, err := types.NewURLs([]string{out}); err != nil {
			t.Fatalf("Parse accepts %q (%q), which rafthttp refuses (and panics on): %v", s, out, err)
		}
	})
}
