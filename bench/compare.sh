#!/usr/bin/env bash
# Runs the README's headline workloads RUNS times each (default 3) against a
# fresh local 3-member raftkv cluster and prints the median of each, so
# that the figures and their ratios come from one run on one machine. With
# RAFTEXAMPLE=/path/to/raftexample it also runs the PUT and GET workloads
# against etcd's raftexample, started the same way (it answers a PUT before
# the write is committed, and reads locally). Both clusters then run side
# by side, and each workload's runs alternate between them (raftkv's
# first, then raftexample's, RUNS times), so that a machine whose speed
# drifts over minutes weighs on both alike rather than on whichever ran
# later; each run waits for the other cluster to go quiet first. Each run
# lasts DURATION (6s). With ETCD=1 it also runs etcd's one-client PUT
# (built from bench/etcd, as bench/etcd.sh does), once the two clusters
# are stopped. Prints a Markdown table, with the members' CPU time (user
# plus system, summed over the three, from the run's start until the
# cluster is quiet after it; see once) per successful request, then the
# efficiency goals checked on this run's medians.
set -euo pipefail

cd "$(dirname "$0")/.."
runs=${RUNS:-3}
duration=${DURATION:-6s}

source bench/lib.sh

# The medians the goals compare, by name (system_workload).
declare -A fig

# Each run's figures, by row label: space-separated lists.
declare -A r_tp r_p50 r_p99 r_cpu
rows=()

# once SYSTEM LABEL ARGS... runs the load generator once against SYSTEM's
# cluster (raftkv or raftexample) and adds its figures to LABEL's row.
#
# The members' CPU is read from /proc/<pid>/stat, the same way for both
# systems, from just before the run until the cluster is quiet again
# after it. raftexample answers a PUT before it proposes it and goes on
# committing what it answered for seconds after a run of many clients
# (two minutes after three runs of 64 clients on its leader): that work
# is the run's, and counted in it. Before the run the other cluster is let
# go quiet too, so that its CPU goes to no run of this one.
once() {
	local system=$1 label=$2 r c own other t0 t1
	shift 2
	[[ " ${rows[*]} " == *" $label "* ]] || rows+=("$label")
	own=$kv_pid_list other=$rx_pids
	[ "$system" = raftexample ] && own=$rx_pids other=$kv_pid_list
	# shellcheck disable=SC2086 # one pid a word
	[ -n "$other" ] && quiet ${other//,/ }
	# shellcheck disable=SC2086
	t0=$(proc_cpu_ticks ${own//,/ })
	r=$("$bench" "$@" --duration "$duration" --json)
	# shellcheck disable=SC2086
	quiet ${own//,/ }
	# shellcheck disable=SC2086
	t1=$(proc_cpu_ticks ${own//,/ })
	c=$(cpu_per_op "$((t1 - t0))" "$(num ops <<<"$r")")
	r_tp[$label]+=" $(num throughput <<<"$r")"
	r_p50[$label]+=" $(num p50 <<<"$r")"
	r_p99[$label]+=" $(num p99 <<<"$r")"
	[ -n "$c" ] && r_cpu[$label]+=" $c"
	return 0
}

# quiet PID... waits, for up to 5 minutes, until the processes use less
# than a twentieth of a core (at most 1 clock tick in 0.2 s), and says so
# on stderr when it took longer than a second.
quiet() {
	local t0 t1 i
	for i in $(seq 1 1500); do
		t0=$(proc_cpu_ticks "$@")
		sleep 0.2
		t1=$(proc_cpu_ticks "$@")
		if [ $((t1 - t0)) -le 1 ]; then
			[ "$i" -gt 5 ] && echo "compare: waited $((i / 5)) s for a cluster to go quiet" >&2
			return 0
		fi
	done
	echo "compare: a cluster stayed busy for 5 minutes" >&2
}

# row LABEL prints LABEL's table row of medians, and leaves them in
# last_tp, last_p50 and last_cpu.
row() {
	local label=$1 c=-
	# shellcheck disable=SC2086 # the lists split on purpose
	last_tp=$(median ${r_tp[$label]}) last_p50=$(median ${r_p50[$label]}) last_cpu=""
	# shellcheck disable=SC2086
	[ -n "${r_cpu[$label]:-}" ] && last_cpu=$(median ${r_cpu[$label]}) && c="$last_cpu µs"
	# shellcheck disable=SC2086
	printf '| %s | %s/s | %s ms | %s ms | %s |\n' "$label" "$(k "$last_tp")" "$(ms "$last_p50")" "$(ms "$(median ${r_p99[$label]})")" "$c"
}

# workload NAME KV_ARGS... [-- RX_ARGS...] runs RUNS rounds of the
# workload, each once against raftkv ("raftkv NAME") and, when
# raftexample runs and RX_ARGS are given, once against it ("raftexample
# NAME"). A workload label with "|" names raftkv's and raftexample's rows
# apart ("raftkv's|raftexample's").
workload() {
	local name=$1 kv=() rx=() i
	shift
	while [ $# -gt 0 ] && [ "$1" != -- ]; do kv+=("$1"); shift; done
	[ $# -gt 0 ] && shift && rx=("$@")
	local kv_name=${name%%|*} rx_name=${name#*|}
	for i in $(seq 1 "$runs"); do
		once raftkv "raftkv $kv_name" "${kv[@]}"
		if [ -n "$rx_pids" ] && [ ${#rx[@]} -gt 0 ]; then
			once raftexample "raftexample $rx_name" "${rx[@]}"
		fi
	done
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

start_cluster 3 raftkv
kv_all=$endpoints kv_leader=$(leader_url) kv_pid_list=$(IFS=,; echo "${pids[*]}")
rx_pids="" rx_all="" rx_first=""
if [ -n "${RAFTEXAMPLE:-}" ]; then
	kv_count=${#pids[@]} # raftexample's members follow raftkv's in pids
	# raftexample keeps its data dirs in the working directory.
	mkdir "$work/raftexample" && cd "$work/raftexample"
	pick_ports 3
	for i in 1 2 3; do
		"$RAFTEXAMPLE" --id "$i" --cluster "$cluster" --port "${cports[$((i-1))]}" >"raftexample-$i.log" 2>&1 &
		pids+=($!)
	done
	cd - >/dev/null
	wait_write "$first"
	sleep 2 # raftexample answers before it has a leader; let one be elected
	rx_pids=$(IFS=,; echo "${pids[*]:$kv_count}") rx_all=$endpoints rx_first=$first
fi

echo "| workload ($runs runs of $duration, median; raftkv and raftexample alternated) | throughput | p50 | p99 | member CPU/op |"
echo "| --- | ---: | ---: | ---: | ---: |"
workload "PUT, 1 client, to the leader" put --endpoints "$kv_leader" --clients 1 -- put --endpoints "$rx_first" --clients 1
for c in 16 64 256; do
	workload "PUT, $c clients, all members" put --endpoints "$kv_all" --clients "$c" -- put --endpoints "$rx_all" --clients "$c"
done
workload "PUT, 64 clients, to the leader" put --endpoints "$kv_leader" --clients 64 -- put --endpoints "$rx_first" --clients 64
workload "GET linearizable, 64 clients|GET (local), 64 clients" get --endpoints "$kv_all" --clients 64 -- get --endpoints "$rx_all" --clients 64
workload "GET stale, 64 clients" get --endpoints "$kv_all" --clients 64 --level stale
stop

for label in "${rows[@]}"; do
	row "$label"
	case $label in
	"raftkv PUT, 1 client, to the leader") fig[raftkv_put1_tp]=$last_tp fig[raftkv_put1_p50]=$last_p50 ;;
	"raftkv PUT, "*" clients, all members" | "raftexample PUT, "*" clients, all members")
		c=${label#* PUT, } c=${c%% *}
		fig[${label%% *}_put${c}_cpu]=$last_cpu ;;
	"raftkv GET linearizable, 64 clients") fig[raftkv_get_cpu]=$last_cpu ;;
	"raftkv GET stale, 64 clients") fig[raftkv_sget_cpu]=$last_cpu ;;
	"raftexample GET (local), 64 clients") fig[raftexample_get_cpu]=$last_cpu ;;
	esac
done

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
