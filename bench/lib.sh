# Helpers shared by the bench/*.sh scripts: source it from the repo root.
# It builds raftkv and raftkv-bench into a temporary folder ($work), starts
# local clusters of real processes on free ports, and kills them on exit.

work=$(mktemp -d)
pids=()
stop() {
	for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done
	for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
	pids=()
}
trap 'stop; rm -rf "$work"' EXIT

# A script that runs no raftkv (etcd.sh) sets build_raftkv=0 first.
if [ "${build_raftkv:-1}" = 1 ]; then
	go build -o "$work/raftkv" ./cmd/raftkv
	go build -o "$work/raftkv-bench" ./cmd/raftkv-bench
fi
bench="$work/raftkv-bench"

# freeport prints a port nothing listens on (a fresh one each call), below
# the kernel's ephemeral ports, which outgoing connections may take.
used=" "
freeport() {
	local p
	while :; do
		p=$(( 10000 + RANDOM % 22000 ))
		[[ $used == *" $p "* ]] && continue
		(exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null && continue
		used="$used$p "
		echo "$p"
		return
	done
}

# start_cluster N TAG [FLAGS...] starts N raftkv members with their data
# and logs under $work/TAG-<id>, and waits until a write succeeds. It sets
# what pick_ports sets, and logs (the log files).
start_cluster() {
	local n=$1 tag=$2 i
	shift 2
	pick_ports "$n"
	logs=()
	for i in $(seq 1 "$n"); do
		"$work/raftkv" --id "$i" --cluster "$cluster" --port "${cports[$((i-1))]}" \
			--listen-host 127.0.0.1 --data-dir "$work/$tag-$i" "$@" >"$work/$tag-$i.log" 2>&1 &
		pids+=($!)
		logs+=("$work/$tag-$i.log")
	done
	wait_write "$first"
}

# pick_ports N chooses free ports for N members (raftexample's layout): it sets
# cluster (the peer URLs, comma-separated), cports (the client ports),
# endpoints (the client URLs, comma-separated) and first (member 1's).
pick_ports() {
	local i peers=()
	cports=() endpoints=""
	for i in $(seq 1 "$1"); do
		peers+=("http://127.0.0.1:$(freeport)")
		cports+=("$(freeport)")
		endpoints="$endpoints,http://127.0.0.1:${cports[$((i-1))]}"
	done
	cluster=$(IFS=,; echo "${peers[*]}")
	endpoints=${endpoints#,}
	first=${endpoints%%,*}
}

# wait_write URL waits up to 20s until URL takes a write.
wait_write() {
	for _ in $(seq 1 200); do
		curl -sf -XPUT -d x "$1/warm-up" >/dev/null 2>&1 && return
		sleep 0.1
	done
	echo "no write succeeded on $1 within 20s" >&2
	return 1
}

# leader_url prints the client URL of the leader, from member 1's /status.
leader_url() {
	local id
	id=$(curl -s "$first/status" | grep -o '"leader":[0-9]*' | cut -d: -f2)
	echo "$endpoints" | tr , '\n' | sed -n "${id}p"
}

# num NAME reads a raftkv-bench --json line on stdin and prints field NAME.
num() { grep -o "\"$1\":[0-9.]*" | head -1 | cut -d: -f2; }
k() { awk -v x="$1" 'BEGIN { printf "%.1fk", x / 1000 }'; }
ms() { awk -v x="$1" 'BEGIN { printf "%.2f", x }'; }
# median prints the median of its arguments.
median() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

# measure LABEL ARGS... runs the load generator with ARGS $runs times, for
# $duration each, and prints a table row with the median throughput, p50
# and p99. The load generator is $loadgen, which prints one JSON line of
# raftkv-bench's fields when given $loadjson; a script may set others.
loadgen=("$bench") loadjson=(--json)
measure() {
	local label=$1 tp=() p50=() p99=() r
	shift
	for _ in $(seq 1 "$runs"); do
		r=$("${loadgen[@]}" "$@" --duration "$duration" "${loadjson[@]}")
		tp+=("$(num throughput <<<"$r")") p50+=("$(num p50 <<<"$r")") p99+=("$(num p99 <<<"$r")")
	done
	printf '| %s | %s/s | %s ms | %s ms |\n' "$label" "$(k "$(median "${tp[@]}")")" "$(ms "$(median "${p50[@]}")")" "$(ms "$(median "${p99[@]}")")"
}
