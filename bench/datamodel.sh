#!/usr/bin/env bash
# Runs the data-model workloads of raftkv-bench (cas, txn, list, watch)
# RUNS times each (default 3) against a fresh local 3-member raftkv
# cluster, at CLIENTS clients (64), each run lasting DURATION (6s), and
# prints a Markdown table of the medians. watch opens WATCHERS watches
# (1000) spread over the members, with the CLIENTS writers putting
# WATCH_RATE puts/s in all (100). A run that finds a problem (a lost
# update, a walk missing a key, a watcher with a gap) stops the script.
# WORKLOADS (default "cas txn list watch") picks some of them.
set -euo pipefail

cd "$(dirname "$0")/.."
runs=${RUNS:-3}
duration=${DURATION:-6s}
clients=${CLIENTS:-64}
watchers=${WATCHERS:-1000}
rate=${WATCH_RATE:-100}
workloads=" ${WORKLOADS:-cas txn list watch} "
want() { [[ $workloads == *" $1 "* ]]; }

source bench/lib.sh

# row LABEL ARGS... runs one workload $runs times and prints the medians
# of its successes/s, its second rate (conflicts/s, keys/s or writes/s)
# and its p50 and p99.
row() {
	local label=$1 tp=() second=() p50=() p99=() r s d
	shift
	for _ in $(seq 1 "$runs"); do
		r=$("$bench" "$@" --endpoints "$endpoints" --clients "$clients" --duration "$duration" --json)
		d=$(num duration_s <<<"$r")
		case $1 in
		cas | txn) s=$(awk -v n="$(num conflicts <<<"$r")" -v d="$d" 'BEGIN { print n / d }') ;;
		list) s=$(num keys_per_s <<<"$r") ;;
		watch) s=$(awk -v n="$(num writes <<<"$r")" -v d="$d" 'BEGIN { print n / d }') ;;
		esac
		tp+=("$(num throughput <<<"$r")") second+=("$s") p50+=("$(num p50 <<<"$r")") p99+=("$(num p99 <<<"$r")")
	done
	printf '| %s | %s/s | %s/s | %s ms | %s ms |\n' "$label" "$(k "$(median "${tp[@]}")")" \
		"$(k "$(median "${second[@]}")")" "$(ms "$(median "${p50[@]}")")" "$(ms "$(median "${p99[@]}")")"
}

echo "| workload ($clients clients, $runs runs of $duration, median) | successes | conflicts, keys or writes | p50 | p99 |"
echo "| --- | ---: | ---: | ---: | ---: |"
start_cluster 3 dm
if want cas; then
	row "cas, keyspace 1000: GET, then PUT with If-Match" cas --keyspace 1000
	row "cas, keyspace 100: more conflicts" cas --keyspace 100
fi
if want txn; then
	row "txn, keyspace 100000: compare, two puts (each client its own keys)" txn --keyspace 100000
fi
if want list; then
	row "list, 10000 keys, pages of 100 (keys/s)" list --keyspace 10000 --page-size 100
	row "list, 10000 keys, pages of 1000 (keys/s)" list --keyspace 10000 --page-size 1000
fi
if want watch; then
	row "watch, $watchers watchers, $rate puts/s (events/s delivered; writes/s; delivery latency)" watch --watchers "$watchers" --rate "$rate"
fi
stop
