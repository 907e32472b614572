// Command etcd-bench loads an etcd cluster through clientv3 (gRPC) as
// raftkv-bench loads raftkv: --clients workers, each with one request in
// flight, share --conns clients (gRPC connections, requests spread over
// --endpoints); keys are random over --keyspace, of --key-size bytes. It
// prints one JSON line with the fields of raftkv-bench --json that
// bench/etcd.sh reads.
//
//	etcd-bench --mode put --endpoints 127.0.0.1:2379 --clients 64 --duration 6s
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

func main() {
	var (
		endpoints = flag.String("endpoints", "127.0.0.1:2379", "comma-separated client endpoints")
		mode      = flag.String("mode", "put", "put, get (linearizable) or sget (serializable)")
		clients   = flag.Int("clients", 1, "concurrent workers")
		conns     = flag.Int("conns", 1, "gRPC clients the workers share")
		duration  = flag.Duration("duration", 6*time.Second, "how long to run")
		keySize   = flag.Int("key-size", 8, "key length in bytes")
		valueSize = flag.Int("value-size", 256, "value length in bytes")
		keyspace  = flag.Int("keyspace", 100000, "number of distinct keys")
		timeout   = flag.Duration("timeout", 5*time.Second, "bound of one request")
	)
	flag.Parse()
	if *clients < 1 || *conns < 1 || *keySize < 1 || *keyspace < 1 || *duration <= 0 ||
		!slices.Contains([]string{"put", "get", "sget"}, *mode) {
		fmt.Fprintln(os.Stderr, "etcd-bench: bad flags")
		os.Exit(2)
	}
	cs := make([]*clientv3.Client, *conns)
	for i := range cs {
		c, err := clientv3.New(clientv3.Config{Endpoints: strings.Split(*endpoints, ","), DialTimeout: 5 * time.Second})
		if err != nil {
			fmt.Fprintln(os.Stderr, "etcd-bench:", err)
			os.Exit(1)
		}
		defer c.Close()
		cs[i] = c
	}
	value := strings.Repeat("v", *valueSize)
	var (
		mu     sync.Mutex
		lats   []time.Duration
		failed int
		wg     sync.WaitGroup
	)
	start := time.Now()
	deadline := start.Add(*duration)
	for w := range *clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := cs[w%len(cs)]
			var mine []time.Duration
			bad := 0
			for time.Now().Before(deadline) {
				key := fmt.Sprintf("%0*d", *keySize, rand.IntN(*keyspace))
				key = key[len(key)-*keySize:]
				ctx, cancel := context.WithTimeout(context.Background(), *timeout)
				t := time.Now()
				var err error
				switch *mode {
				case "put":
					_, err = c.Put(ctx, key, value)
				case "get":
					_, err = c.Get(ctx, key)
				case "sget":
					_, err = c.Get(ctx, key, clientv3.WithSerializable())
				}
				d := time.Since(t)
				cancel()
				if err != nil {
					bad++
					continue
				}
				mine = append(mine, d)
			}
			mu.Lock()
			lats = append(lats, mine...)
			failed += bad
			mu.Unlock()
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	slices.Sort(lats)
	q := func(p float64) float64 {
		if len(lats) == 0 {
			return 0
		}
		return float64(lats[int(p*float64(len(lats)-1))]) / 1e6
	}
	json.NewEncoder(os.Stdout).Encode(map[string]any{
		"mode": *mode, "clients": *clients, "conns": *conns, "ops": len(lats), "failed": failed,
		"throughput": float64(len(lats)) / elapsed.Seconds(),
		"latency_ms": map[string]float64{"p50": q(0.50), "p99": q(0.99), "p99.9": q(0.999), "max": q(1)},
	})
	if len(lats) == 0 {
		os.Exit(1)
	}
}
