//go:build !kvstore_watch

package daemon

import (
	"context"

	"github.com/raftkv/raftkv/httpapi"
)

// Until kvstore has Store.Watch (see kvwatch.go), watches are refused.
var errNoWatch = httpapi.BadRequest("watching keys (?watch=true) is not served by this build")

func (s store) Watch(context.Context, httpapi.WatchOptions) (httpapi.Watcher, error) {
	return nil, errNoWatch
}
