package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"

	"github.com/raftkv/raftkv/bench"
)

// dataFlags are the flags the data-model modes (cas, txn, list, watch)
// read; the others belong to put, get, mixed and delete.
var dataFlags = map[string]bool{
	"endpoints": true, "all": true, "clients": true, "keyspace": true, "value-size": true,
	"duration": true, "rate": true, "timeout": true, "seed": true, "json": true,
	"page-size": true, "watchers": true, "version": true, "cacert": true, "cert": true, "key": true,
}

// parseData fills o.data from the flags fs parsed, for a data-model mode.
func parseData(fs *flag.FlagSet, o *options, endpoints, configEndpoints string, pageSize, watchers int) (*options, error) {
	var bad error
	fs.Visit(func(f *flag.Flag) {
		if !dataFlags[f.Name] && bad == nil {
			bad = fmt.Errorf("--%s does not apply to %s runs", f.Name, o.cfg.Mode)
		}
	})
	if bad != nil {
		return nil, bad
	}
	if configEndpoints != "" {
		return nil, fmt.Errorf("--config-endpoints does not apply to %s runs", o.cfg.Mode)
	}
	c := o.cfg
	switch {
	case c.Clients <= 0:
		return nil, fmt.Errorf("--clients %d: want at least 1", c.Clients)
	case c.Keyspace <= 0:
		return nil, fmt.Errorf("--keyspace %d: want at least 1", c.Keyspace)
	case c.Timeout <= 0:
		return nil, fmt.Errorf("--timeout %v: want more than 0", c.Timeout)
	case pageSize <= 0:
		return nil, fmt.Errorf("--page-size %d: want at least 1", pageSize)
	case watchers <= 0:
		return nil, fmt.Errorf("--watchers %d: want at least 1", watchers)
	case c.Duration < 0:
		return nil, fmt.Errorf("--duration %v: want more than 0", c.Duration)
	}
	d := &bench.DataConfig{
		Mode: c.Mode, Endpoints: splitList(endpoints), Clients: c.Clients, ValueSize: c.ValueSize,
		Duration: c.Duration, PageSize: pageSize, Watchers: watchers, Rate: c.Rate,
		Timeout: c.Timeout, Seed: c.Seed, TLS: c.TLS,
	}
	keyspaceSet := false
	fs.Visit(func(f *flag.Flag) { keyspaceSet = keyspaceSet || f.Name == "keyspace" })
	if keyspaceSet {
		d.Keyspace = c.Keyspace
	}
	if err := d.Validate(); err != nil {
		return nil, err
	}
	o.data = d
	return o, nil
}

// runData runs a data-model mode; its exit status is run's, and 1 when
// the run found a problem (a lost update, a gap in a watch...).
func runData(ctx context.Context, opts *options, stdout, stderr io.Writer) int {
	cfg := *opts.data
	if opts.all {
		urls, err := bench.Discover(ctx, cfg.Endpoints[0], cfg.Timeout, cfg.TLS)
		if err != nil {
			fmt.Fprintln(stderr, "raftkv-bench:", err)
			return 1
		}
		cfg.Endpoints = urls
	}
	res, err := bench.RunData(ctx, cfg)
	if err != nil {
		fmt.Fprintln(stderr, "raftkv-bench:", err)
		if errors.Is(err, bench.ErrInvalidConfig) {
			return 2
		}
		return 1
	}
	if opts.json {
		err = res.WriteJSON(stdout)
	} else {
		err = res.WriteText(stdout)
	}
	if err != nil {
		fmt.Fprintln(stderr, "raftkv-bench:", err)
		return 1
	}
	switch {
	case res.Interrupted:
		return 130
	case len(res.Problems) > 0:
		for _, p := range res.Problems {
			fmt.Fprintln(stderr, "raftkv-bench:", p)
		}
		return 1
	case res.Ops == 0:
		fmt.Fprintln(stderr, "raftkv-bench: no request succeeded")
		return 1
	}
	return 0
}
