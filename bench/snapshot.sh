#!/usr/bin/env bash
# Measures what snapshots of a large state cost the writes running
# meanwhile, and how long a member of that state takes to serve again after
# a restart (the README's figures). A fresh local 3-member cluster writes
# KEYS keys once (sequential, VALUE bytes each), then runs WINDOWS
# one-second windows of random overwrites by CLIENTS clients; each window
# counts as "during" if any member was writing a snapshot in it (from the
# members' "saved snapshot" log lines), else as "steady". Prints the median
# and worst p99 of each kind, every member's RSS after the load, and the
# restart time: from starting a killed member to its first linearizable
# read. Extra arguments are passed to every raftkv.
set -euo pipefail

cd "$(dirname "$0")/.."
keys=${KEYS:-1000000}
vsize=${VALUE:-256}
windows=${WINDOWS:-40}
clients=${CLIENTS:-64}

source bench/lib.sh

start_cluster 3 snap --log-level info "$@"
common=(--endpoints "$endpoints" --clients "$clients" --keyspace "$keys" --value-size "$vsize" --json)
load=$("$bench" put "${common[@]}" --seq --total "$keys")
echo "load: $keys keys of $vsize bytes at $(k "$(num throughput <<<"$load")") PUT/s"
raw=$(( keys * (8 + vsize) ))
for e in ${endpoints//,/ }; do
	r=$(curl -s "$e/metrics" | awk '/^process_resident_memory_bytes/ {printf "%d", $2}')
	echo "RSS of $e after the load: $(( r / 1000000 )) MB ($(awk -v a="$r" -v b="$raw" 'BEGIN { printf "%.2fx", a / b }') the raw $(( raw / 1000000 )) MB)"
done

: >"$work/windows"
for _ in $(seq 1 "$windows"); do
	s=$(date +%s.%N)
	r=$("$bench" put "${common[@]}" --duration 1s)
	echo "$s $(date +%s.%N) $(num throughput <<<"$r") $(num p99 <<<"$r")" >>"$work/windows"
done
# Each snapshot as "start end" in Unix seconds, from its log line (none
# may have been taken: a small state, a short run).
{ grep -h '"saved snapshot"' "${logs[@]}" || true; } |
	sed -E 's/.*"ts":([0-9.]+).*"took":([0-9.]+).*/\1 \2/' |
	awk '{ printf "%.3f %.3f\n", $1 - $2, $1 }' >"$work/snapshots"
awk -v clients="$clients" '
	NR == FNR { a[NR] = $1; b[NR] = $2; n = NR; next }
	{
		during = 0
		for (i = 1; i <= n; i++) if (a[i] < $2 && b[i] > $1) during = 1
		kind = during ? "during" : "steady"
		p99[kind] = p99[kind] " " $4; tput[kind] = tput[kind] " " $3; count[kind]++
	}
	# stats prints the median and the worst of list: the highest, or with
	# low set the lowest.
	function stats(list, low,   v, m, i, j, t) {
		m = split(list, v, " ")
		for (i = 1; i <= m; i++) for (j = i + 1; j <= m; j++) if (v[j] + 0 < v[i] + 0) { t = v[i]; v[i] = v[j]; v[j] = t }
		return sprintf("median %.1f, worst %.1f", (m % 2) ? v[(m + 1) / 2] : (v[m / 2] + v[m / 2 + 1]) / 2, low ? v[1] : v[m])
	}
	END {
		for (kind in count)
			printf "%s snapshots: %d windows, p99 ms %s; PUT/s %s\n", kind, count[kind], stats(p99[kind], 0), stats(tput[kind], 1)
	}' "$work/snapshots" "$work/windows"
echo "snapshots taken while measuring: $(awk -v t="$(head -1 "$work/windows" | cut -d' ' -f1)" '$2 > t' "$work/snapshots" | wc -l)"

# Restart member 3 from its WAL and snapshot and time its first
# linearizable read.
url3=$(echo "$endpoints" | cut -d, -f3)
cmd=$(tr '\0' ' ' </proc/"${pids[2]}"/cmdline)
kill -9 "${pids[2]}"
wait "${pids[2]}" 2>/dev/null || true
start=$(date +%s.%N)
$cmd >>"${logs[2]}" 2>&1 &
pids[2]=$!
until curl -sf "$url3/00000000" >/dev/null 2>&1; do sleep 0.02; done
echo "restart of a member holding $keys keys to its first linearizable read: $(awk -v s="$start" -v e="$(date +%s.%N)" 'BEGIN { printf "%.2f s", e - s }')"
r=$(curl -s "$url3/metrics" | awk '/^process_resident_memory_bytes/ {printf "%d", $2}')
echo "RSS of the restarted member: $(( r / 1000000 )) MB ($(awk -v a="$r" -v b="$raw" 'BEGIN { printf "%.2fx", a / b }'))"
