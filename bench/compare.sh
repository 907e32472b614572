#!/usr/bin/env bash
# Runs the README's headline workloads RUNS times each (default 3) against a
# fresh local 3-member raftkv cluster and prints the median of each, so
# that the figures and their ratios come from one run on one machine. With
# RAFTEXAMPLE=/path/to/raftexample it also runs the PUT and GET workloads
# against etcd's raftexample, started the same way (it answers a PUT before
# the write is committed, and reads locally). Each run lasts DURATION (6s).
# Prints a Markdown table, with the members' CPU time (user plus system,
# summed over the three) per successful request.
set -euo pipefail

cd "$(dirname "$0")/.."
runs=${RUNS:-3}
duration=${DURATION:-6s}

source bench/lib.sh

workloads() {
	local system=$1 leader=$2
	measure "$system PUT, 1 client, to the leader" put --endpoints "$leader" --clients 1
	for c in 16 64 256; do
		measure "$system PUT, $c clients, all members" put --endpoints "$endpoints" --clients "$c"
	done
	measure "$system PUT, 64 clients, to the leader" put --endpoints "$leader" --clients 64
	if [ "$system" = raftkv ]; then
		measure "$system GET linearizable, 64 clients" get --endpoints "$endpoints" --clients 64
		measure "$system GET stale, 64 clients" get --endpoints "$endpoints" --clients 64 --level stale
	else
		measure "$system GET (local), 64 clients" get --endpoints "$endpoints" --clients 64
	fi
}

echo "| workload ($runs runs of $duration, median) | throughput | p50 | p99 | member CPU/op |"
echo "| --- | ---: | ---: | ---: | ---: |"
start_cluster 3 raftkv
workloads raftkv "$(leader_url)"
stop

if [ -n "${RAFTEXAMPLE:-}" ]; then
	# raftexample keeps its data dirs in the working directory.
	mkdir "$work/raftexample" && cd "$work/raftexample"
	pick_ports 3
	for i in 1 2 3; do
		"$RAFTEXAMPLE" --id "$i" --cluster "$cluster" --port "${cports[$((i-1))]}" >"raftexample-$i.log" 2>&1 &
		pids+=($!)
	done
	wait_write "$first"
	sleep 2 # raftexample answers before it has a leader; let one be elected
	# raftexample has no /metrics: the load generator reads the members'
	# CPU from /proc/<pid>/stat around its measured phase instead.
	loadextra=(--cpu-pids "$(IFS=,; echo "${pids[*]}")")
	workloads raftexample "$first"
	cd - >/dev/null
fi
