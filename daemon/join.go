package daemon

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/raftkv/raftkv/httpapi"
	"go.uber.org/zap"
)

// joinVia asks the member at addr (a client host:port or URL, raftdb's
// -join) to add this member, retrying while the cluster has no leader or
// cannot be reached, until ctx ends. It returns the cluster id the answer names (httpapi.HeaderClusterID),
// 0 when it names none (a member of a binary from before cluster ids).
func joinVia(ctx context.Context, lg *zap.Logger, hc *http.Client, addr string, id uint64, peerURL, clientURL string) (uint64, error) {
	target := addr
	if !strings.Contains(target, "://") {
		// A member whose own client port serves TLS expects the others'
		// to as well.
		scheme, _, _ := strings.Cut(clientURL, "://")
		target = scheme + "://" + target
	}
	target = strings.TrimSuffix(target, "/") + "/join"
	pu, err := url.Parse(peerURL)
	if err != nil {
		return 0, err
	}
	cu, err := url.Parse(clientURL)
	if err != nil {
		return 0, err
	}
	// raftdb's raftAddr is a host:port, which means http; an https peer
	// URL goes whole, as /join takes it.
	raftAddr := pu.Host
	if pu.Scheme == "https" {
		raftAddr = peerURL
	}
	body, err := json.Marshal(map[string]any{"id": id, "raftAddr": raftAddr, "httpAddr": cu.Host})
	if err != nil {
		return 0, err
	}
	client := &http.Client{Transport: hc.Transport, Timeout: 10 * time.Second}
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, bytes.NewReader(body))
		if err != nil {
			return 0, err
		}
		req.Header.Set("Content-Type", "application/json")
		resp, err := client.Do(req)
		if err == nil {
			msg, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
			resp.Body.Close()
			switch {
			case resp.StatusCode/100 == 2:
				lg.Info("joined the cluster", zap.String("via", target))
				cid := resp.Header.Get(httpapi.HeaderClusterID)
				if cid == "" {
					return 0, nil
				}
				n, err := strconv.ParseUint(cid, 16, 64)
				if err != nil || n == 0 {
					return 0, fmt.Errorf("join via %s: the answer names cluster id %q", target, cid)
				}
				return n, nil
			case resp.StatusCode != http.StatusServiceUnavailable && resp.StatusCode != http.StatusGatewayTimeout:
				return 0, fmt.Errorf("join via %s: %s: %s", target, resp.Status, strings.TrimSpace(string(msg)))
			}
			err = errors.New(resp.Status)
		}
		lg.Warn("join request failed; retrying", zap.String("via", target), zap.Error(err))
		select {
		case <-ctx.Done():
			return 0, fmt.Errorf("join via %s: %w (last error: %v)", target, ctx.Err(), err)
		case <-time.After(500 * time.Millisecond):
		}
	}
}
