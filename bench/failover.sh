#!/usr/bin/env bash
# Measures how soon a follower answers linearizable reads (OP=get, the
# default) or writes (OP=put) again after its leader is killed. ROUNDS
# times (5 by default), a fresh local cluster of 3 members takes a write,
# its leader is killed with kill -9, and one follower is sent the request
# in a loop (each waits for the member's answer); printed: the time from
# the kill to the follower's first success, and from the follower
# learning of the new leader (its log's "leader changed") to that
# success, then the medians. Extra arguments are passed to every raftkv.
set -euo pipefail

cd "$(dirname "$0")/.."
rounds=${ROUNDS:-5}
case ${OP:-get} in
get) request=(-X GET) ok=200 ;;
put) request=(-X PUT -d w) ok=204 ;;
*)
	echo "OP is get or put" >&2
	exit 2
	;;
esac

source bench/lib.sh

now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", b - a }'; }

total=() after=()
for r in $(seq 1 "$rounds"); do
	start_cluster 3 "failover$r" "$@"
	curl -sf -X PUT -d v "$first/failover-probe" >/dev/null
	lead=$(leader_url)
	IFS=, read -ra urls <<<"$endpoints"
	li="" fi=""
	for i in "${!urls[@]}"; do
		if [ "${urls[$i]}" = "$lead" ]; then
			li=$i
		elif [ -z "$fi" ]; then
			fi=$i
		fi
	done
	if [ -z "$li" ] || [ -z "$fi" ]; then
		echo "round $r: no leader found" >&2
		exit 1
	fi
	t0=$(now)
	kill -9 "${pids[$li]}"
	wait "${pids[$li]}" 2>/dev/null || true
	deadline=$(awk -v t="$t0" 'BEGIN { printf "%d", t + 30 }')
	until [ "$(curl -s -o /dev/null -w '%{http_code}' -m 10 "${request[@]}" "${urls[$fi]}/failover-probe")" = "$ok" ]; do
		if [ "$(date +%s)" -gt "$deadline" ]; then
			echo "round $r: no ${OP:-get} succeeded within 30 s of the kill" >&2
			exit 1
		fi
	done
	t=$(now)
	# The follower's last "leader changed" to a leader (not to none).
	known=$(grep -h '"msg":"leader changed"' "${logs[$fi]}" | grep -v '"to":0' |
		tail -1 | grep -o '"ts":[0-9.]*' | cut -d: -f2)
	total+=("$(since "$t0" "$t")")
	after+=("$(since "$known" "$t")")
	echo "round $r: first ${OP:-get} ${total[-1]} s after the kill, ${after[-1]} s after the follower knew the new leader"
	stop
done
echo "median: $(median "${total[@]}") s after the kill, $(median "${after[@]}") s after the new leader was known, over $rounds rounds"
