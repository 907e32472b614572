package router

import (
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/raftkv/raftkv/client"
)

// hasCondition reports whether hdr carries If-Match or If-None-Match, even
// empty: what a write that takes no condition refuses, as a member does.
func hasCondition(hdr http.Header) bool {
	return len(hdr.Values("If-Match")) > 0 || len(hdr.Values("If-None-Match")) > 0
}

// conditionOf reads a write's If-Match ("<mod index>", the number alone,
// or *) or If-None-Match (*), at most one, once, as a member does.
func conditionOf(r *http.Request) ([]client.WriteOption, error) {
	im, inm := r.Header.Values("If-Match"), r.Header.Values("If-None-Match")
	switch {
	case len(im) == 0 && len(inm) == 0:
		return nil, nil
	case len(im)+len(inm) > 1:
		return nil, bad("send one If-Match or one If-None-Match")
	case len(inm) == 1:
		if strings.TrimSpace(inm[0]) != "*" {
			return nil, bad("a write takes only If-None-Match: * (only if the key is absent); got %q", inm[0])
		}
		return []client.WriteOption{client.WithIfAbsent()}, nil
	}
	v := strings.TrimSpace(im[0])
	if v == "*" {
		return []client.WriteOption{client.WithIfExists()}, nil
	}
	t := v
	if len(t) >= 2 && t[0] == '"' && t[len(t)-1] == '"' {
		t = t[1 : len(t)-1]
	}
	mod, err := strconv.ParseUint(t, 10, 64)
	if err != nil || t == "" || t[0] == '+' {
		return nil, bad(`If-Match takes one entity tag, "<mod index>", or *; got %q`, v)
	}
	return []client.WriteOption{client.WithIfMatch(mod)}, nil
}

// ttlOf reads a PUT's ttl as a member does: a Go duration or whole
// seconds, 1s to a year, at most once; 0 when absent.
func ttlOf(q url.Values) (time.Duration, error) {
	vs := q["ttl"] // singleQuery refused a repeated one
	if len(vs) == 0 {
		return 0, nil
	}
	s := strings.TrimSpace(vs[0])
	var (
		d   time.Duration
		err error
	)
	if s != "" && strings.Trim(s, "0123456789") == "" {
		n, err := strconv.ParseUint(s, 10, 64)
		if err != nil || n > uint64(client.MaxTTL/time.Second) {
			return 0, badTTL(vs[0])
		}
		d = time.Duration(n) * time.Second
	} else if d, err = time.ParseDuration(s); err != nil {
		return 0, badTTL(vs[0])
	}
	if d < client.MinTTL || d > client.MaxTTL {
		return 0, badTTL(vs[0])
	}
	return d, nil
}

func badTTL(v string) error {
	return bad("ttl must be a duration from 1s to 8760h, like 30s, 5m or 2h, or a whole number of seconds; got %q", v)
}
