#!/usr/bin/env bash
# Runs the headline workloads of bench/compare.sh against a fresh local
# 3-member etcd (fsync on, built from the go.etcd.io/etcd/server/v3 module
# raftkv uses, in bench/etcd) with bench/etcd's gRPC load generator, RUNS
# times each (default 3) for DURATION (6s), and prints a Markdown table of
# medians, so that etcd's figures come from the machine raftkv's do.
set -euo pipefail

cd "$(dirname "$0")/.."
runs=${RUNS:-3}
duration=${DURATION:-6s}

build_raftkv=0
source bench/lib.sh

start_etcd

use_etcd_bench

echo "| workload ($runs runs of $duration, median) | throughput | p50 | p99 | member CPU/op |"
echo "| --- | ---: | ---: | ---: | ---: |"
measure "etcd PUT, 1 client, to the leader" --endpoints "$etcd_leader" --clients 1
for c in 16 64 256; do
	measure "etcd PUT, $c clients, all members" --endpoints "$etcd_all" --clients "$c"
done
measure "etcd PUT, 256 clients over 16 connections, all members" --endpoints "$etcd_all" --clients 256 --conns 16
measure "etcd PUT, 64 clients, to the leader" --endpoints "$etcd_leader" --clients 64
measure "etcd GET linearizable, 64 clients" --endpoints "$etcd_all" --clients 64 --mode get
measure "etcd GET serializable, 64 clients" --endpoints "$etcd_all" --clients 64 --mode sget
