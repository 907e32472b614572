package queryparam

import (
	"net/url"
	"strings"
	"testing"
)

func TestUnknown(t *testing.T) {
	long := strings.Repeat("x", 50)
	for _, tc := range []struct {
		query, what string
		takes       []string
		want        string
	}{
		{"", "PUT of a key", []string{"ttl"}, ""},
		{"ttl=5", "PUT of a key", []string{"ttl"}, ""},
		{"tll=5", "PUT of a key", []string{"ttl"}, `PUT of a key takes only the query parameter ttl; not "tll"`},
		{"z=1&b=2&ttl=5", "PUT of a key", []string{"ttl"}, `PUT of a key takes only the query parameter ttl; not "b"`},
		{"x", "POST /txn", nil, `POST /txn takes no query parameters; not "x"`},
		{long + "=1", "POST /txn", nil, `POST /txn takes no query parameters; not "` + long[:40] + `..."`},
		{"a=1", "W", []string{"b", "c"}, `W takes only the query parameters b, c; not "a"`},
	} {
		q, err := url.ParseQuery(tc.query)
		if err != nil {
			t.Fatal(err)
		}
		if got := Unknown(q, tc.what, tc.takes...); got != tc.want {
			t.Errorf("Unknown(%q, %v) = %q, want %q", tc.query, tc.takes, got, tc.want)
		}
	}
}
