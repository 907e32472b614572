// Package clienturl decides what a member's client URL may look like: the
// one a member advertises, a config endpoint, a server the config group
// records for a shard group, and an endpoint a client, router or tool
// dials. They are all joined with a path such as "/key/a", so anything
// after the host but one slash would be lost or misread; peer URLs have
// package peerurl.
package clienturl

import (
	"errors"
	"net/url"
	"strconv"
	"strings"
)

// Check returns nil if s is http://host[:port] or https://host[:port],
// with at most one "/" after it, and otherwise an error saying what is
// wrong, for the caller to put after the URL in its own words.
func Check(s string) error {
	if !strings.Contains(s, "://") {
		return errors.New("has no http:// or https:// scheme")
	}
	u, err := url.Parse(s)
	switch {
	case err != nil:
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return err
	case u.Scheme != "http" && u.Scheme != "https":
		return errors.New("has scheme " + strconv.Quote(u.Scheme) + ", not http or https")
	case u.Host == "" || strings.HasPrefix(u.Host, ":"):
		return errors.New("has no host")
	case u.User != nil:
		return errors.New("carries user info")
	case u.Path != "" && u.Path != "/":
		return errors.New("has a path")
	case u.RawQuery != "" || u.ForceQuery:
		return errors.New("has a query")
	case u.Fragment != "":
		return errors.New("has a fragment")
	}
	if p := u.Port(); p != "" {
		if n, err := strconv.ParseUint(p, 10, 16); err != nil || n == 0 {
			return errors.New("has port " + p + ", not 1-65535")
		}
	} else if strings.HasSuffix(u.Host, ":") {
		return errors.New("has an empty port")
	}
	return nil
}
