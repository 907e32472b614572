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

work=$(mktemp -d)
pids=()
stop() {
	for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done
	for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
	pids=()
}
trap 'stop; rm -rf "$work"' EXIT

go build -o "$work/raftkv" ./cmd/raftkv
go build -o "$work/raftkv-bench" ./cmd/raftkv-bench

# freeport prints a port nothing listens on (a fresh one each call).
used=" "
freeport() {
	local p
	while :; do
		p=$(( 20000 + RANDOM % 30000 ))
		[[ $used == *" $p "* ]] && continue
		(exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null && continue
		used="$used$p "
		echo "$p"
		return
	done
}
# num NAME reads a raftkv-bench --json line on stdin and prints field NAME.
num() { grep -o "\"$1\":[0-9.]*" | head -1 | cut -d: -f2; }
k() { awk -v x="$1" 'BEGIN { printf "%.1fk", x / 1000 }'; }
ms() { awk -v x="$1" 'BEGIN { printf "%.1f", x }'; }

echo "| members | keyspace | value | load PUT/s | PUT/s | PUT p50 | PUT p99 | GET/s | GET p99 | RSS per member | raw data |"
echo "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
for row in "${rows[@]}"; do
	IFS=: read -r n keyspace vsize <<<"$row"
	peers=() ; cports=()
	for i in $(seq 1 "$n"); do peers+=("http://127.0.0.1:$(freeport)"); cports+=("$(freeport)"); done
	cluster=$(IFS=,; echo "${peers[*]}")
	endpoints=""
	for i in $(seq 1 "$n"); do
		"$work/raftkv" --id "$i" --cluster "$cluster" --port "${cports[$((i-1))]}" \
			--listen-host 127.0.0.1 --data-dir "$work/data-$row-$i" >"$work/log-$row-$i" 2>&1 &
		pids+=($!)
		endpoints="$endpoints,http://127.0.0.1:${cports[$((i-1))]}"
	done
	endpoints=${endpoints#,}
	first=${endpoints%%,*}
	for _ in $(seq 1 100); do
		curl -sf -XPUT -d x "$first/warm-up" >/dev/null 2>&1 && break
		sleep 0.1
	done
	common=(--endpoints "$endpoints" --clients "$clients" --keyspace "$keyspace" --value-size "$vsize" --json)
	load=$("$work/raftkv-bench" put "${common[@]}" --seq --total "$keyspace")
	put=$("$work/raftkv-bench" put "${common[@]}" --duration "$duration")
	rss=0
	for e in ${endpoints//,/ }; do
		r=$(curl -s "$e/metrics" | awk '/^process_resident_memory_bytes/ {printf "%d", $2}')
		if [ "$r" -gt "$rss" ]; then rss=$r; fi
	done
	get=$("$work/raftkv-bench" get "${common[@]}" --duration "$duration")
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
