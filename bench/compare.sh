#!/usr/bin/env bash
# Runs the README's headline workloads RUNS times each (default 3) against a
# fresh local 3-member raftkv cluster and prints the median of each, so
# that the figures and their ratios come from one run on one machine. With
# RAFTEXAMPLE=/path/to/raftexample it also runs the PUT and GET workloads
# against etcd's raftexample, started the same way (it answers a PUT before
# the write is committed, and reads locally). Each run lasts DURATION (6s).
# With ETCD=1 it also runs etcd's one-client PUT (built from bench/etcd, as
# bench/etcd.sh does). Prints a Markdown table, with the members' CPU time
# (user plus system, summed over the three) per successful request, then
# the efficiency goals checked on this run's medians.
set -euo pipefail

cd "$(dirname "$0")/.."
runs=${RUNS:-3}
duration=${DURATION:-6s}

source bench/lib.sh

# The medians the goals compare, by name (system_workload).
declare -A fig
workloads() {
	local system=$1 leader=$2
	measure "$system PUT, 1 client, to the leader" put --endpoints "$leader" --clients 1
	fig[${system}_put1_tp]=$last_tp fig[${system}_put1_p50]=$last_p50
	for c in 16 64 256; do
		measure "$system PUT, $c clients, all members" put --endpoints "$endpoints" --clients "$c"
		fig[${system}_put${c}_cpu]=$last_cpu
	done
	measure "$system PUT, 64 clients, to the leader" put --endpoints "$leader" --clients 64
	if [ "$system" = raftkv ]; then
		measure "$system GET linearizable, 64 clients" get --endpoints "$endpoints" --clients 64
		fig[raftkv_get_cpu]=$last_cpu
		measure "$system GET stale, 64 clients" get --endpoints "$endpoints" --clients 64 --level stale
		fig[raftkv_sget_cpu]=$last_cpu
	else
		measure "$system GET (local), 64 clients" get --endpoints "$endpoints" --clients 64
		fig[${system}_get_cpu]=$last_cpu
	fi
}

# goal TEXT A OP B FACTOR prints whether A OP FACTOR*B held (or that a
# figure is missing).
goal() {
	local text=$1 a=$2 op=$3 b=$4 f=$5
	if [ -z "$a" ] || [ -z "$b" ]; then
		printf -- '- %s: not measured\n' "$text"
		return
	fi
	awk -v t="$text" -v a="$a" -v op="$op" -v b="$b" -v f="$f" 'BEGIN {
		r = a / b
		ok = (op == "<=") ? (a <= f * b) : (a >= f * b)
		printf "- %s: %.4g / %.4g = %.2f (%s)\n", t, a, b, r, ok ? "met" : "not met"
	}'
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
	stop
fi

if [ "${ETCD:-0}" = 1 ]; then
	start_etcd
	use_etcd_bench
	measure "etcd PUT, 1 client, to the leader" --endpoints "$etcd_leader" --clients 1
	fig[etcd_put1_tp]=$last_tp
	stop
fi

echo
echo "Goals (issue 22), on these medians:"
goal "PUT member CPU, 64 clients on all members, raftkv / raftexample <= 0.5" "${fig[raftkv_put64_cpu]:-}" "<=" "${fig[raftexample_put64_cpu]:-}" 0.5
goal "GET member CPU, linearizable / raftexample's local <= 1" "${fig[raftkv_get_cpu]:-}" "<=" "${fig[raftexample_get_cpu]:-}" 1
goal "GET member CPU, stale / raftexample's local <= 0.5" "${fig[raftkv_sget_cpu]:-}" "<=" "${fig[raftexample_get_cpu]:-}" 0.5
goal "PUT one client p50 in ms < 0.8" "${fig[raftkv_put1_p50]:-}" "<=" 0.8 1
goal "PUT one client rate, raftkv / etcd >= 2" "${fig[raftkv_put1_tp]:-}" ">=" "${fig[etcd_put1_tp]:-}" 2
