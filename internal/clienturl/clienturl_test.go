package clienturl

import (
	"strings"
	"testing"
)

func TestCheck(t *testing.T) {
	for _, s := range []string{
		"http://127.0.0.1:7380",
		"https://kv.example.com:443",
		"http://kv.example.com",
		"http://[::1]:7380",
		"http://127.0.0.1:7380/",
	} {
		if err := Check(s); err != nil {
			t.Errorf("Check(%q) = %v, want nil", s, err)
		}
	}
	for s, want := range map[string]string{
		"127.0.0.1:7380":            "scheme",
		"notaurl":                   "scheme",
		"ftp://127.0.0.1:7380":      `scheme "ftp"`,
		"http://":                   "no host",
		"http://:7380":              "no host",
		"http:127.0.0.1":            "scheme",
		"http://u:p@127.0.0.1:7380": "user info",
		"http://127.0.0.1:7380/x":   "path",
		"http://127.0.0.1:7380//":   "path",
		"http://127.0.0.1:7380?a=1": "query",
		"http://127.0.0.1:7380/?":   "query",
		"http://127.0.0.1:7380#f":   "fragment",
		"http://127.0.0.1:0":        "port 0",
		"http://127.0.0.1:70000":    "port 70000",
		"http://127.0.0.1:":         "empty port",
		"http://127.0.0.1:73x":      "invalid port",
		"http://127.0.0.1:7380 ":    "",
		"http://[::1":               "",
	} {
		err := Check(s)
		if err == nil {
			t.Errorf("Check(%q) = nil, want an error", s)
			continue
		}
		if !strings.Contains(err.Error(), want) {
			t.Errorf("Check(%q) = %q, want it to mention %q", s, err, want)
		}
	}
}
