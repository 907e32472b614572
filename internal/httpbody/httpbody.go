// Package httpbody reads a request's body up to a limit, for the members'
// HTTP API and the router alike.
package httpbody

import (
	"io"
	"net/http"
)

// Read reads r's body, at most limit bytes; a longer body is an
// *http.MaxBytesError. A body whose Content-Length is over the limit is
// refused before any of it is read: its client waits for no upload (curl's
// `Expect: 100-continue` gets the answer instead of a 100), and one that
// announces more than it sends gets its answer at once rather than at the
// read timeout. Unread, such a body cannot be skipped to the next request,
// so an HTTP/1 connection is closed after the answer (net/http would
// otherwise read up to 256 KiB of the body before answering); an HTTP/2
// stream is reset alone, and its connection stays.
func Read(w http.ResponseWriter, r *http.Request, limit int64) ([]byte, error) {
	if r.ContentLength > limit {
		if r.ProtoMajor == 1 {
			w.Header().Set("Connection", "close")
		}
		return nil, &http.MaxBytesError{Limit: limit}
	}
	return io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
}
