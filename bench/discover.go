package bench

import (
	"cmp"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"time"
)

// ErrDiscover is wrapped by every error of Discover.
var ErrDiscover = errors.New("bench: discover")

// discoverPoll is the pause between two GET /status while some member has
// not published its client URL yet.
const discoverPoll = 100 * time.Millisecond

// errUnpublished marks a member list in which some member has no client URL.
var errUnpublished = errors.New("publishes no client URL")

// Discover returns the client URL of every member that GET /status of
// endpoint lists, in member id order. A member publishes its client URL
// through raft shortly after it starts, so while some member has none,
// Discover asks again, until timeout (zero means DefaultTimeout); it then
// fails rather than leave that member out of the load silently. tlsCfg
// (nil: Go's defaults) is for https endpoints.
func Discover(ctx context.Context, endpoint string, timeout time.Duration, tlsCfg *tls.Config) ([]string, error) {
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	endpoint = strings.TrimRight(endpoint, "/")
	if err := checkEndpoint(endpoint); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrDiscover, err)
	}
	tr := &http.Transport{DisableKeepAlives: true, TLSClientConfig: tlsCfg} // no proxy, nothing left open
	defer tr.CloseIdleConnections()
	var unpublished error // the last answer that listed a member without a client URL
	for {
		urls, err := discoverOnce(ctx, &http.Client{Transport: tr}, endpoint)
		if err != nil && unpublished != nil && ctx.Err() != nil {
			// The deadline cut the next try short: why it kept asking
			// says more than the cut.
			return nil, unpublished
		}
		if err == nil || !errors.Is(err, errUnpublished) {
			return urls, err
		}
		unpublished = err
		t := time.NewTimer(discoverPoll)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, err
		case <-t.C:
		}
	}
}

func discoverOnce(ctx context.Context, client *http.Client, endpoint string) ([]string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, endpoint+"/status", nil)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrDiscover, err)
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrDiscover, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, fmt.Errorf("%w: GET %s/status: %w", ErrDiscover, endpoint, err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%w: GET %s/status: %s: %s", ErrDiscover, endpoint, resp.Status, strings.TrimSpace(string(body)))
	}
	var st struct {
		Members []statusMember `json:"members"`
	}
	if err := json.Unmarshal(body, &st); err != nil {
		return nil, fmt.Errorf("%w: GET %s/status: %w", ErrDiscover, endpoint, err)
	}
	slices.SortFunc(st.Members, func(a, b statusMember) int { return cmp.Compare(a.ID, b.ID) })
	var urls []string
	for _, m := range st.Members {
		if len(m.ClientURLs) == 0 {
			return nil, fmt.Errorf("%w: member %d %w", ErrDiscover, m.ID, errUnpublished)
		}
		u := strings.TrimRight(m.ClientURLs[0], "/")
		if !slices.Contains(urls, u) {
			urls = append(urls, u)
		}
	}
	if len(urls) == 0 {
		return nil, fmt.Errorf("%w: GET %s/status lists no member", ErrDiscover, endpoint)
	}
	return urls, nil
}

// statusMember is the part of a member in GET /status that Discover reads.
type statusMember struct {
	ID         uint64   `json:"id"`
	ClientURLs []string `json:"clientURLs"`
}
