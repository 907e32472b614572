package daemon

import (
	"fmt"
	"net/http"

	"github.com/raftkv/raftkv/ui"
)

// dashboard is the handler of /ui on the client port: the web dashboard of
// the cluster of the member whose client URL is clientURL (package ui),
// asking the others with client (nil: ui's own).
func dashboard(clientURL string, client *http.Client) http.Handler {
	h, err := ui.New(ui.Config{Self: clientURL, Client: client})
	if err != nil {
		// Config.Validate refuses a client URL ui would.
		panic(fmt.Sprintf("daemon: dashboard for client URL %q: %v", clientURL, err))
	}
	return h
}
