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

(cd bench/etcd && go build -o "$work/etcd" ./cmd/etcd && go build -o "$work/etcd-bench" ./cmd/etcd-bench)

ccs=() peers=() initial=""
for i in 1 2 3; do
	ccs+=("127.0.0.1:$(freeport)")
	peer="http://127.0.0.1:$(freeport)"
	peers+=("$peer")
	initial="$initial,m$i=$peer"
done
initial=${initial#,}
for i in 1 2 3; do
	"$work/etcd" --name "m$i" --data-dir "$work/etcd-$i" \
		--listen-client-urls "http://${ccs[$((i-1))]}" --advertise-client-urls "http://${ccs[$((i-1))]}" \
		--listen-peer-urls "${peers[$((i-1))]}" --initial-advertise-peer-urls "${peers[$((i-1))]}" \
		--initial-cluster "$initial" --initial-cluster-state new --log-level error >"$work/etcd-$i.log" 2>&1 &
	pids+=($!)
done
all=$(IFS=,; echo "${ccs[*]}")

# The JSON gateway answers a member's status, which names the leader.
leader=""
for _ in $(seq 1 200); do
	for c in "${ccs[@]}"; do
		s=$(curl -sf -X POST -d '{}' "http://$c/v3/maintenance/status" || true)
		id=$(grep -o '"member_id":"[0-9]*"' <<<"$s" | cut -d'"' -f4 || true)
		lead=$(grep -o '"leader":"[0-9]*"' <<<"$s" | cut -d'"' -f4 || true)
		if [ -n "$id" ] && [ "$id" = "$lead" ]; then leader=$c; fi
	done
	[ -n "$leader" ] && break
	sleep 0.1
done
[ -n "$leader" ] || { echo "etcd elected no leader within 20s" >&2; exit 1; }

# etcd-bench prints its JSON line without being asked. The members' CPU
# is read from /proc around each whole run of it (lib.sh's measure).
loadgen=("$work/etcd-bench") loadjson=() cpu_pids=("${pids[@]}")

echo "| workload ($runs runs of $duration, median) | throughput | p50 | p99 | member CPU/op |"
echo "| --- | ---: | ---: | ---: | ---: |"
measure "etcd PUT, 1 client, to the leader" --endpoints "$leader" --clients 1
for c in 16 64 256; do
	measure "etcd PUT, $c clients, all members" --endpoints "$all" --clients "$c"
done
measure "etcd PUT, 256 clients over 16 connections, all members" --endpoints "$all" --clients 256 --conns 16
measure "etcd PUT, 64 clients, to the leader" --endpoints "$leader" --clients 64
measure "etcd GET linearizable, 64 clients" --endpoints "$all" --clients 64 --mode get
measure "etcd GET serializable, 64 clients" --endpoints "$all" --clients 64 --mode sget
