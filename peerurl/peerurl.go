// Package peerurl is the one place that decides what a raft peer URL may
// look like. rafthttp dials such a URL and panics on one whose host:port it
// cannot split; a conf change carrying one would crash every member that
// applies it, at every restart. So every peer URL that enters raftkv (the
// --cluster flag, POST /<id>, POST /join, a member list in a snapshot)
// passes through Parse first.
package peerurl

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
)

// ErrInvalid is wrapped by every error Parse returns.
var ErrInvalid = errors.New("peerurl: invalid peer URL")

// Error is a peer URL Parse refused, with the reason in words.
type Error struct {
	URL    string
	Reason string
}

func (e *Error) Error() string { return fmt.Sprintf("peer URL %q: %s", e.URL, e.Reason) }

// Unwrap makes errors.Is(err, ErrInvalid) hold.
func (e *Error) Unwrap() error { return ErrInvalid }

// Parse checks a peer URL (http://host:port or https://host:port, nothing
// more) and returns it in one canonical spelling: the scheme and host
// lower-cased (an IP address in its shortest form) and the port without
// leading zeros, so that one address is not added twice under two
// spellings. The host must be an IP address or a DNS name. Surrounding
// white space and one trailing "/" are accepted. Whether https can be
// dialed (the member has peer TLS) is for the caller to check: see
// Scheme.
func Parse(s string) (string, error) {
	s = strings.TrimSpace(s)
	bad := func(reason string) (string, error) { return "", &Error{URL: s, Reason: reason} }
	if s == "" {
		return bad("empty; a peer URL looks like http://127.0.0.1:42379")
	}
	u, err := url.Parse(s)
	switch {
	case err != nil && strings.Contains(s, "://"):
		return bad("not a URL")
	case err != nil, u.Scheme != "http" && u.Scheme != "https":
		return bad("must start with http:// or https://")
	case u.Opaque != "":
		return bad("must be http://host:port or https://host:port")
	case u.Hostname() == "":
		return bad("no host")
	case u.Port() == "":
		return bad("no port")
	case u.Path != "" && u.Path != "/":
		return bad("must not have a path")
	case u.User != nil || u.RawQuery != "" || u.ForceQuery || u.Fragment != "":
		return bad("must not have user info, a query or a fragment")
	}
	host, portText, err := net.SplitHostPort(u.Host)
	if err != nil {
		return bad("host and port do not split")
	}
	port, err := strconv.ParseUint(portText, 10, 16)
	if err != nil || port == 0 {
		return bad("port must be 1-65535")
	}
	if ip, err := netip.ParseAddr(host); err == nil {
		if ip.Zone() != "" {
			return bad("an IPv6 zone is not supported")
		}
		host = ip.String()
	} else if !isDNSName(host) {
		return bad("host must be an IP address or a DNS name")
	}
	return u.Scheme + "://" + net.JoinHostPort(strings.ToLower(host), strconv.FormatUint(port, 10)), nil
}

// Scheme is the scheme of a URL Parse accepts ("http" or "https"), and ""
// for one it refuses.
func Scheme(s string) string {
	u, err := Parse(s)
	if err != nil {
		return ""
	}
	scheme, _, _ := strings.Cut(u, "://")
	return scheme
}

// Validate reports whether Parse accepts s.
func Validate(s string) error {
	_, err := Parse(s)
	return err
}

// isDNSName reports whether host is dot-separated labels of 1 to 63 ASCII
// letters, digits, '-' or '_' (seen in practice), at most 253 bytes in all.
func isDNSName(host string) bool {
	if len(host) == 0 || len(host) > 253 {
		return false
	}
	for label := range strings.SplitSeq(host, ".") {
		if len(label) == 0 || len(label) > 63 {
			return false
		}
		for _, c := range []byte(label) {
			if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
				return false
			}
		}
	}
	return true
}
