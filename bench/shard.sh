#!/usr/bin/env bash
# Throughput of a sharded deployment with 1, 2 and 3 shard groups on this
# machine (docs/benchmarks.md, "Sharding"). For each count N it starts a
# config group of 3 members, N shard groups of 3 members each and a router,
# all real processes on free ports, waits until every group serves its
# buckets, and runs each workload RUNS times (default 3) for DURATION (6s):
#   router    raftkv-bench --endpoints <router>: every request through
#             `raftkv route`, which sends it on with package client
#   client    raftkv-bench --config-endpoints ... --via-client: every
#             request a call of one client.Client in the load generator
#   direct    raftkv-bench --config-endpoints ...: routed by bucket with
#             the load generator's own connections (the ceiling: no router,
#             no net/http)
# It prints a Markdown table of the medians, and the CPU time the shard
# members and the router spent per 1000 requests (utime+stime from
# /proc/<pid>/stat across each run, median of the runs): the per-group
# cost to scale by on a machine with more cores.
# Usage: bench/shard.sh [N...] (default 1 2 3); CLIENTS (64), RUNS, DURATION.
set -euo pipefail

cd "$(dirname "$0")/.."
counts=("$@")
if [ ${#counts[@]} -eq 0 ]; then
	counts=(1 2 3)
fi
runs=${RUNS:-3}
duration=${DURATION:-6s}
clients=${CLIENTS:-64}
buckets=256

source bench/lib.sh

hz=$(getconf CLK_TCK)
# cpu_ms PID... prints the CPU time (user + system) the processes have used
# so far, in milliseconds.
cpu_ms() {
	local p t=0
	for p in "$@"; do
		# Fields 14 and 15 of /proc/<pid>/stat, after the command in parentheses.
		t=$(( t + $(sed 's/.*) //' "/proc/$p/stat" | awk '{ print $12 + $13 }') ))
	done
	echo $(( t * 1000 / hz ))
}

# start_sharded N starts the config group, N shard groups and a router, and
# waits until every group serves the buckets of a config of all N. It sets
# config_endpoints, router, group_pids and router_pid.
start_sharded() {
	local n=$1 g i
	pick_ports 3
	config_endpoints=$endpoints
	for i in 1 2 3; do
		"$work/raftkv" --config-group --buckets "$buckets" --id "$i" --cluster "$cluster" \
			--port "${cports[$((i-1))]}" --listen-host 127.0.0.1 --data-dir "$work/config-$i" \
			>"$work/config-$i.log" 2>&1 &
		pids+=($!)
	done
	group_pids=()
	for g in $(seq 1 "$n"); do
		pick_ports 3
		for i in 1 2 3; do
			"$work/raftkv" --group "$g" --config-endpoints "$config_endpoints" --id "$i" --cluster "$cluster" \
				--port "${cports[$((i-1))]}" --listen-host 127.0.0.1 --data-dir "$work/group$g-$i" \
				>"$work/group$g-$i.log" 2>&1 &
			pids+=($!) group_pids+=($!)
		done
	done
	local rport
	rport=$(freeport)
	router=http://127.0.0.1:$rport
	"$work/raftkv" route --config-endpoints "$config_endpoints" --port "$rport" --listen-host 127.0.0.1 \
		>"$work/router.log" 2>&1 &
	pids+=($!) router_pid=$!
	# Settled: the config has N groups and a key of every group takes a
	# write through the router.
	for _ in $(seq 1 600); do
		local groups
		groups=$(curl -s "${config_endpoints%%,*}/status" | grep -o '"groups":{[^}]*}' | grep -o '"[0-9]*":' | wc -l || true)
		if [ "$groups" = "$n" ] && curl -sf -XPUT -d x "$router/warm-up" >/dev/null 2>&1; then
			local moving=0 u
			for u in $(curl -s "${config_endpoints%%,*}/config" | grep -o 'http://[0-9.:]*'); do
				curl -s "$u/status" | grep -q '"pulling":\[\],"bePulling":\[\],"gcing":\[\]' || moving=1
			done
			[ "$moving" = 0 ] && return
		fi
		sleep 0.1
	done
	echo "the deployment of $n groups did not settle within 60s" >&2
	return 1
}

# run_sharded LABEL ARGS... runs raftkv-bench ARGS $runs times and prints a
# table row: median throughput, p50, p99, and CPU ms per 1000 requests of
# the shard members and of the router.
run_sharded() {
	local label=$1 tp=() p50=() p99=() gcpu=() rcpu=() r g0 r0 g1 r1 ops
	shift
	for _ in $(seq 1 "$runs"); do
		g0=$(cpu_ms "${group_pids[@]}") r0=$(cpu_ms "$router_pid")
		r=$("$bench" "$@" --clients "$clients" --duration "$duration" --json)
		g1=$(cpu_ms "${group_pids[@]}") r1=$(cpu_ms "$router_pid")
		ops=$(num ops <<<"$r")
		tp+=("$(num throughput <<<"$r")") p50+=("$(num p50 <<<"$r")") p99+=("$(num p99 <<<"$r")")
		gcpu+=("$(awk -v c=$(( g1 - g0 )) -v o="$ops" 'BEGIN { printf "%.0f", c * 1000 / o }')")
		rcpu+=("$(awk -v c=$(( r1 - r0 )) -v o="$ops" 'BEGIN { printf "%.0f", c * 1000 / o }')")
	done
	printf '| %s | %s/s | %s ms | %s ms | %s ms | %s ms |\n' "$label" \
		"$(k "$(median "${tp[@]}")")" "$(ms "$(median "${p50[@]}")")" "$(ms "$(median "${p99[@]}")")" \
		"$(median "${gcpu[@]}")" "$(median "${rcpu[@]}")"
}

echo "| groups, workload ($clients clients, $runs runs of $duration, median) | throughput | p50 | p99 | CPU of the shard members per 1000 | CPU of the router per 1000 |"
echo "| --- | ---: | ---: | ---: | ---: | ---: |"
for n in "${counts[@]}"; do
	start_sharded "$n"
	run_sharded "$n, PUT via router" put --endpoints "$router"
	run_sharded "$n, PUT via client package" put --config-endpoints "$config_endpoints" --via-client
	run_sharded "$n, PUT direct" put --config-endpoints "$config_endpoints"
	run_sharded "$n, GET via router" get --endpoints "$router"
	run_sharded "$n, GET via client package" get --config-endpoints "$config_endpoints" --via-client
	stop
	rm -rf "$work"/config-* "$work"/group* "$work"/router.log
done
