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
		start_member "$i" "$tag" "$@"
		logs+=("$work/$tag-$i.log")
	done
	wait_write "$first"
}

# start_member I TAG [FLAGS...] starts member I on the ports pick_ports
# chose, with its data dir $work/TAG-I and its log appended to
# $work/TAG-I.log; the same call starts it again after it was stopped.
start_member() {
	local i=$1 tag=$2
	shift 2
	"$work/raftkv" --id "$i" --cluster "$cluster" --port "${cports[$((i-1))]}" \
		--listen-host 127.0.0.1 --data-dir "$work/$tag-$i" "$@" >>"$work/$tag-$i.log" 2>&1 &
	pids+=($!)
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

# start_etcd builds etcd and its load generator from bench/etcd (the etcd
# server module raftkv uses) and starts 3 etcd members (fsync on) on free
# ports, with data and logs under $work. It sets etcd_all (the client
# endpoints, comma-separated), etcd_leader (the leader's) and etcd_pids.
start_etcd() {
	(cd bench/etcd && go build -o "$work/etcd" ./cmd/etcd && go build -o "$work/etcd-bench" ./cmd/etcd-bench)
	local ccs=() peers=() initial="" i c s id lead peer
	etcd_pids=()
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
		etcd_pids+=($!)
	done
	etcd_all=$(IFS=,; echo "${ccs[*]}")
	# The JSON gateway answers a member's status, which names the leader.
	etcd_leader=""
	for _ in $(seq 1 200); do
		for c in "${ccs[@]}"; do
			s=$(curl -sf -X POST -d '{}' "http://$c/v3/maintenance/status" || true)
			id=$(grep -o '"member_id":"[0-9]*"' <<<"$s" | cut -d'"' -f4 || true)
			lead=$(grep -o '"leader":"[0-9]*"' <<<"$s" | cut -d'"' -f4 || true)
			if [ -n "$id" ] && [ "$id" = "$lead" ]; then etcd_leader=$c; fi
		done
		[ -n "$etcd_leader" ] && break
		sleep 0.1
	done
	[ -n "$etcd_leader" ] || { echo "etcd elected no leader within 20s" >&2; return 1; }
}

# use_etcd_bench makes measure run etcd's load generator, which prints its
# JSON line without being asked; the members' CPU is read from /proc
# around each whole run of it.
use_etcd_bench() {
	loadgen=("$work/etcd-bench") loadjson=() loadextra=() cpu_pids=("${etcd_pids[@]}")
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

# proc_cpu_ticks PID... prints the user plus system CPU time of the
# processes, in clock ticks (1/100 s): fields 14 and 15 of /proc/PID/stat,
# counted from the end of the command name, which may hold spaces.
proc_cpu_ticks() {
	local p t=0 f
	for p in "$@"; do
		f=$(sed 's/.*) //' "/proc/$p/stat")
		t=$(awk -v t="$t" '{ print t + $12 + $13 }' <<<"$f")
	done
	echo "$t"
}

# cpu_per_op TICKS OPS prints the CPU per operation in µs of TICKS clock
# ticks (1/100 s) over OPS operations, nothing when OPS is 0.
cpu_per_op() { awk -v t="$1" -v n="$2" 'BEGIN { if (n > 0) printf "%.1f", t * 10000 / n }'; }

# measure LABEL ARGS... runs the load generator with ARGS $runs times, for
# $duration each, and prints a table row with the median throughput, p50,
# p99 and the members' CPU per successful request. The load generator is
# $loadgen, which prints one JSON line of raftkv-bench's fields when given
# $loadjson, after ARGS and $loadextra; a script may set others. The CPU
# comes from the line's member_cpu_us_per_op (raftkv-bench reads the members' /metrics, or the
# processes given with --cpu-pids, around its measured phase); a load
# generator without it gets the CPU of the processes in $cpu_pids read
# around its whole run, start-up included. It leaves the medians in last_tp,
# last_p50 and last_cpu (empty when unknown) for the script to compare.
loadgen=("$bench") loadjson=(--json) loadextra=() cpu_pids=()
measure() {
	local label=$1 tp=() p50=() p99=() cpu=() r c t0 t1
	shift
	for _ in $(seq 1 "$runs"); do
		[ ${#cpu_pids[@]} -gt 0 ] && t0=$(proc_cpu_ticks "${cpu_pids[@]}")
		r=$("${loadgen[@]}" "$@" --duration "$duration" "${loadjson[@]}" "${loadextra[@]}")
		c=$(num member_cpu_us_per_op <<<"$r" || true)
		if [ -z "$c" ] && [ ${#cpu_pids[@]} -gt 0 ]; then
			t1=$(proc_cpu_ticks "${cpu_pids[@]}")
			c=$(cpu_per_op "$((t1 - t0))" "$(num ops <<<"$r")")
		fi
		tp+=("$(num throughput <<<"$r")") p50+=("$(num p50 <<<"$r")") p99+=("$(num p99 <<<"$r")")
		[ -n "$c" ] && cpu+=("$c")
	done
	last_tp=$(median "${tp[@]}") last_p50=$(median "${p50[@]}") last_cpu=""
	c=-
	[ ${#cpu[@]} -gt 0 ] && last_cpu=$(median "${cpu[@]}") && c="$last_cpu µs"
	printf '| %s | %s/s | %s ms | %s ms | %s |\n' "$label" "$(k "$(median "${tp[@]}")")" "$(ms "$(median "${p50[@]}")")" "$(ms "$(median "${p99[@]}")")" "$c"
}
