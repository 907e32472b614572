package shardgroup

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/raftkv/raftkv/shardmap"
)

// This file holds the driver's HTTP calls: to the config group (query,
// join) and to the members of other shard groups (pull, delete).

// maxErrorBody bounds what is read of an error answer.
const maxErrorBody = 4 << 10

// endpoints is a list of base URLs tried in turn: calls start at the
// current one, and a failure moves it on.
type endpoints struct {
	urls []string
	cur  atomic.Uint64
}

func newEndpoints(urls []string) *endpoints {
	e := &endpoints{}
	for _, u := range urls {
		e.urls = append(e.urls, strings.TrimSuffix(u, "/"))
	}
	return e
}

// pick returns the current URL and its turn, for failed.
func (e *endpoints) pick() (string, uint64) {
	turn := e.cur.Load()
	return e.urls[turn%uint64(len(e.urls))], turn
}

// failed moves past the URL of turn, once however many calls saw it fail.
func (e *endpoints) failed(turn uint64) { e.cur.CompareAndSwap(turn, turn+1) }

// remoteError is an answer other than the one a call wanted.
type remoteError struct {
	url    string
	status int
	code   string // the JSON body's code, if any
	msg    string
}

func (e *remoteError) Error() string {
	s := fmt.Sprintf("%s answered %d", e.url, e.status)
	if e.code != "" {
		s += " (" + e.code + ")"
	}
	if e.msg != "" {
		s += ": " + e.msg
	}
	return s
}

// Code is the answer's code, so codeOf reads remote and local errors
// alike.
func (e *remoteError) Code() string { return e.code }

// readError reads a non-wanted answer into a *remoteError.
func readError(u string, resp *http.Response) error {
	b, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	e := &remoteError{url: u, status: resp.StatusCode}
	var body struct{ Error, Code string }
	if mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type")); mt == "application/json" && json.Unmarshal(b, &body) == nil {
		e.code, e.msg = body.Code, body.Error
	} else {
		e.msg, _, _ = strings.Cut(strings.TrimSpace(string(b)), "\n")
	}
	return e
}

// call sends one request with the driver's client and headers, bounded by
// ctx, and returns the answer if its status is one of ok.
func call(ctx context.Context, client *http.Client, method, u string, body []byte, hdr map[string]string, ok ...int) (*http.Response, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	for _, s := range ok {
		if resp.StatusCode == s {
			return resp, nil
		}
	}
	defer resp.Body.Close()
	return nil, readError(u, resp)
}

// decodeConfig reads a config answer and checks it.
func decodeConfig(u string, resp *http.Response) (shardmap.Config, error) {
	defer resp.Body.Close()
	var c shardmap.Config
	err := json.NewDecoder(io.LimitReader(resp.Body, 64<<20)).Decode(&c)
	if err == nil {
		err = c.Validate()
	}
	if err != nil {
		return shardmap.Config{}, fmt.Errorf("%s answered an unusable config: %w", u, err)
	}
	return c, nil
}

// queryConfig asks the config group's current endpoint for config
// version (-1: the latest), waiting up to wait for it to exist (GET
// /config?version=&wait=).
func queryConfig(ctx context.Context, client *http.Client, eps *endpoints, version int64, wait, timeout time.Duration) (shardmap.Config, error) {
	base, turn := eps.pick()
	u := fmt.Sprintf("%s/config?version=%d&wait=%s", base, version, url.QueryEscape(wait.String()))
	ctx, cancel := context.WithTimeout(ctx, wait+timeout)
	defer cancel()
	resp, err := call(ctx, client, http.MethodGet, u, nil, nil, http.StatusOK)
	if err != nil {
		eps.failed(turn)
		return shardmap.Config{}, err
	}
	c, err := decodeConfig(u, resp)
	if err != nil {
		eps.failed(turn)
	}
	return c, err
}

// joinConfig asks the config group's current endpoint to join group gid
// with servers, as the writer (clientID, seq) so that a retry applies once.
func joinConfig(ctx context.Context, client *http.Client, eps *endpoints, gid uint64, servers []string, clientID string, seq uint64, timeout time.Duration) (shardmap.Config, error) {
	body, err := json.Marshal(map[string]map[string][]string{"groups": {strconv.FormatUint(gid, 10): servers}})
	if err != nil {
		return shardmap.Config{}, err
	}
	base, turn := eps.pick()
	u := base + "/config/join"
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	resp, err := call(ctx, client, http.MethodPost, u, body,
		map[string]string{"X-Client-ID": clientID, "X-Client-Seq": strconv.FormatUint(seq, 10)}, http.StatusOK)
	if err != nil {
		eps.failed(turn)
		return shardmap.Config{}, err
	}
	return decodeConfig(u, resp)
}

// pullBucket fetches bucket b at version from the old owner's member
// base: GET /shard/pull. The body is at most max bytes.
func pullBucket(ctx context.Context, client *http.Client, base string, b int, version uint64, max int64, timeout time.Duration) ([]byte, error) {
	u := fmt.Sprintf("%s/shard/pull?bucket=%d&version=%d", strings.TrimSuffix(base, "/"), b, version)
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	resp, err := call(ctx, client, http.MethodGet, u, nil, nil, http.StatusOK)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, max+1))
	switch {
	case err != nil:
		return nil, fmt.Errorf("reading bucket %d from %s: %w", b, u, err)
	case int64(len(data)) > max:
		return nil, fmt.Errorf("bucket %d from %s is over the limit of %d bytes", b, u, max)
	}
	return data, nil
}

// deleteBucket tells the old owner's member base that bucket b is
// installed at version: POST /shard/delete, answered once the old owner
// deleted its copy.
func deleteBucket(ctx context.Context, client *http.Client, base string, b int, version uint64, timeout time.Duration) error {
	u := fmt.Sprintf("%s/shard/delete?bucket=%d&version=%d", strings.TrimSuffix(base, "/"), b, version)
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	resp, err := call(ctx, client, http.MethodPost, u, nil, nil, http.StatusNoContent, http.StatusOK)
	if err != nil {
		return err
	}
	resp.Body.Close()
	return nil
}

// BucketCount asks the config group for its number of buckets (GET
// /config?version=0&level=stale: the count is fixed at the config group's
// creation, so any member's local state says it), trying each endpoint in
// turn, with a pause between rounds, until one answers or ctx ends. A
// shard member learns its count this way at its first start.
func BucketCount(ctx context.Context, client *http.Client, configEndpoints []string) (int, error) {
	if len(configEndpoints) == 0 {
		return 0, errors.New("shardgroup: no config endpoints")
	}
	if client == nil {
		client = http.DefaultClient
	}
	eps := newEndpoints(configEndpoints)
	return untilAnswered(ctx, eps, func() (int, error) {
		base, turn := eps.pick()
		u := base + "/config?version=0&level=stale"
		rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		resp, err := call(rctx, client, http.MethodGet, u, nil, nil, http.StatusOK)
		if err == nil {
			var c shardmap.Config
			if c, err = decodeConfig(u, resp); err == nil {
				return len(c.Buckets), nil
			}
		}
		eps.failed(turn)
		return 0, err
	})
}

// untilAnswered calls try, which asks the config group member eps picks
// and moves eps past it when it fails, until try succeeds: after each
// round of the endpoints it pauses (50 ms, doubling up to 1 s, with
// jitter), and it gives up once ctx ends.
func untilAnswered[T any](ctx context.Context, eps *endpoints, try func() (T, error)) (T, error) {
	pause := 50 * time.Millisecond
	for {
		_, turn := eps.pick()
		v, err := try()
		if err == nil {
			return v, nil
		}
		if turn%uint64(len(eps.urls)) == uint64(len(eps.urls))-1 || ctx.Err() != nil {
			select {
			case <-ctx.Done():
				var zero T
				return zero, fmt.Errorf("no config group member answered (%s): %w", strings.Join(eps.urls, ", "), err)
			case <-time.After(pause + rand.N(pause/2+1)):
			}
			pause = min(2*pause, time.Second)
		}
	}
}
