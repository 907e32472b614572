//go:build !kvstore_list

package daemon

import (
	"context"

	"github.com/raftkv/raftkv/httpapi"
)

// Until kvstore has Store.List (see kvlist.go), listings are refused.
var errNoList = httpapi.BadRequest("listing keys (GET /key?prefix=...) is not served by this build")

func (s store) List(context.Context, httpapi.ListOptions) (httpapi.ListResult, error) {
	return httpapi.ListResult{}, errNoList
}
