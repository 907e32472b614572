//go:build !kvstore_txn

package daemon

import (
	"context"

	"github.com/raftkv/raftkv/httpapi"
)

// Until kvstore has Store.Txn (see kvtxn.go), POST /txn and conditional
// writes are refused before anything is proposed.
var errNoTxn = httpapi.BadRequest("transactions and conditional writes (POST /txn, If-Match, If-None-Match) are not served by this build")

func (s store) Txn(context.Context, httpapi.Txn, httpapi.WriteOptions) (httpapi.TxnResult, error) {
	return httpapi.TxnResult{}, errNoTxn
}
