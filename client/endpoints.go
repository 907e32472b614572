package client

import (
	"context"
	"fmt"
	"slices"
	"time"

	"go.uber.org/zap"
)

// Endpoints returns the client URLs a Client of Endpoints sends to now
// (Config.Endpoints, or those of the last SetEndpoints or Sync), and nil
// for a sharded Client.
func (c *Client) Endpoints() []string {
	if m := c.endpoints.Load(); m != nil {
		return slices.Clone(m.urls)
	}
	return nil
}

// SetEndpoints replaces the client URLs a Client of Endpoints sends to,
// as etcd's clientv3 SetEndpoints: calls from then on try these. The
// member calls went to first stays first if it is among them. A sharded
// Client follows the config group's config and has none to set.
func (c *Client) SetEndpoints(urls ...string) error {
	if c.Sharded() {
		return badInput("set endpoints", "", "a sharded Client sends each key to its group from the config; it has no endpoints to set")
	}
	if len(urls) == 0 {
		return badInput("set endpoints", "", "no endpoint given")
	}
	for _, u := range urls {
		if _, err := normalizeURL(u); err != nil {
			return badInput("set endpoints", "", "%v", err)
		}
	}
	next := newMembers(urls)
	if old := c.endpoints.Load(); old != nil {
		_, cur := old.pick()
		if i := slices.Index(next.urls, cur); i >= 0 {
			next.cur.Store(uint64(i))
		}
	}
	c.endpoints.Store(next)
	return nil
}

// Sync sets the Client's endpoints to the client URLs of the members of
// its group, as GET /status of one of them lists them (members that have
// not published one yet are left out), as etcd's clientv3 Sync. It fails
// when the endpoints answer no member list (routers), and changes nothing
// then.
func (c *Client) Sync(ctx context.Context) error {
	if c.Sharded() {
		return badInput("sync", "", "a sharded Client follows the config group's config; it has no endpoints to sync")
	}
	st, err := c.Status(ctx)
	if err != nil {
		return err
	}
	var urls []string
	for _, m := range st.Members {
		urls = append(urls, m.ClientURLs...)
	}
	if len(urls) == 0 {
		return &Error{Op: "sync", Endpoint: st.Endpoint, Code: CodeInternal,
			Message: fmt.Sprintf("%s lists no member with a client URL (a router has no member list)", st.Endpoint)}
	}
	slices.Sort(urls)
	if slices.Equal(urls, c.sortedEndpoints()) {
		return nil
	}
	c.lg.Info("client: endpoints follow the group's members", zap.Strings("endpoints", urls))
	return c.SetEndpoints(urls...)
}

// sortedEndpoints are the current endpoints, sorted.
func (c *Client) sortedEndpoints() []string {
	eps := c.Endpoints()
	slices.Sort(eps)
	return eps
}

// autoSync calls Sync every interval until Close.
func (c *Client) autoSync(every time.Duration) {
	defer close(c.synced)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-c.life.Done():
			return
		case <-t.C:
		}
		ctx, cancel := context.WithTimeout(c.life, min(every, c.cfg.RequestTimeout))
		if err := c.Sync(ctx); err != nil {
			c.lg.Debug("client: auto-sync", zap.Error(err))
		}
		cancel()
	}
}
