#!/usr/bin/env bash
# Runs the benchmark matrix of the README's Benchmarks section on this
# machine: for each row, a fresh local cluster of real raftkv processes is
# started, the keyspace is written once (sequential keys), then random
# overwrites and linearizable reads run for a fixed time; each member's RSS
# is read from /metrics after the writes. Prints one Markdown table row per
# configuration. Usage: bench/matrix.sh [rows...], a row being
# nodes:keyspace:value-size, e.g. bench/matrix.sh 3:100000:256 5:100000:256
set -euo pipefail

cd "$(dirname "$0")/.."
rows=("$@")
if [ ${#rows[@]} -eq 0 ]; then
	rows=(3:100000:256 3:1000000:256 3:5000000:256 3:100000:64 3:100000:1024 3:10000:65536 5:100000:256)
fi
clients=${CLIENTS:-64}
duration=${DURATION:-10s}

source bench/lib.sh

echo "| members | keyspace | value | load PUT/s | PUT/s | PUT p50 | PUT p99 | GET/s | GET p99 | RSS per member | raw data |"
echo "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
for row in "${rows[@]}"; do
	IFS=: read -r n keyspace vsize <<<"$row"
	start_cluster "$n" "data-$row"
	common=(--endpoints "$endpoints" --clients "$clients" --keyspace "$keyspace" --value-size "$vsize" --json)
	load=$("$bench" put "${common[@]}" --seq --total "$keyspace")
	put=$("$bench" put "${common[@]}" --duration "$duration")
	rss=0
	for e in ${endpoints//,/ }; do
		r=$(curl -s "$e/metrics" | awk '/^process_resident_memory_bytes/ {printf "%d", $2}')
		if [ "$r" -gt "$rss" ]; then rss=$r; fi
	done
	get=$("$bench" get "${common[@]}" --duration "$duration")
	raw=$(( keyspace * (8 + vsize) ))
	printf '| %s | %s | %s | %s | %s | %s ms | %s ms | %s | %s ms | %d MB (%s) | %d MB |\n' \
		"$n" "$keyspace" "$vsize" \
		"$(k "$(num throughput <<<"$load")")" \
		"$(k "$(num throughput <<<"$put")")" \
		"$(ms "$(num p50 <<<"$put")")" "$(ms "$(num p99 <<<"$put")")" \
		"$(k "$(num throughput <<<"$get")")" \
		"$(ms "$(num p99 <<<"$get")")" \
		$(( rss / 1000000 )) "$(awk -v a="$rss" -v b="$raw" 'BEGIN { printf "%.1fx", a / b }')" $(( raw / 1000000 ))
	stop
	rm -rf "$work"/data-*
done
