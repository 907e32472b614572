package bench

import (
	"context"
	"errors"
	"net/http"

	"github.com/raftkv/raftkv/client"
)

// newViaClient makes the client.Client of a Config.ViaClient run.
func newViaClient(cfg *Config) (*client.Client, error) {
	return client.New(client.Config{
		Endpoints:       cfg.Endpoints,
		ConfigEndpoints: cfg.ConfigEndpoints,
		RequestTimeout:  cfg.Timeout,
		TLS:             cfg.TLS,
	})
}

// viaClient makes request method on key number k as one call of the run's
// client.Client, and reads its outcome as do's: the status of the answer
// that ended the call (204 for a write, 200 or 404 for a read), with the
// value in w.body if keep, or the error of a call that got no answer.
func (w *worker) viaClient(ctx context.Context, k int, method string, value []byte, keep bool) (status int, errBody string, err error) {
	c, key := w.r.client, Key(uint64(k), w.r.cfg.KeySize)
	switch method {
	case http.MethodPut:
		_, err = c.Put(ctx, key, value)
		status = http.StatusNoContent
	case http.MethodDelete:
		_, err = c.Delete(ctx, key)
		status = http.StatusNoContent
	default:
		var opts []client.ReadOption
		if w.r.cfg.Level == LevelStale {
			opts = append(opts, client.WithStale())
		}
		var v []byte
		v, err = c.Get(ctx, key, opts...)
		status = http.StatusOK
		if keep && err == nil {
			w.body = append(w.body[:0], v...)
		}
	}
	if err == nil {
		return status, "", nil
	}
	if errors.Is(err, client.ErrNotFound) && method == http.MethodGet {
		return http.StatusNotFound, "", nil
	}
	var ce *client.Error
	if errors.As(err, &ce) && ce.Status != 0 && ce.Err == nil {
		return ce.Status, ce.Message, nil
	}
	if ce != nil && ce.Err != nil {
		return 0, "", ce.Err
	}
	return 0, "", err
}
