#!/usr/bin/env bash
# Measures how soon a cluster whose members were all killed takes writes
# again (the README's figures). A fresh local cluster of MEMBERS members
# (3 by default; 1 measures a lone voter) takes a write; then, ROUNDS
# times, every member is killed with kill -9 and started again with the
# same command line, and the time from the start to the first PUT that
# succeeds on any member is printed, then the median. Extra arguments are
# passed to every raftkv.
set -euo pipefail

cd "$(dirname "$0")/.."
members=${MEMBERS:-3}
rounds=${ROUNDS:-5}

source bench/lib.sh

start_cluster "$members" restart "$@"

# put_any tries one PUT on each member, with a short timeout.
put_any() {
	local p
	for p in "${cports[@]}"; do
		curl -sf -m 0.5 -X PUT -d v "http://127.0.0.1:$p/restart-probe" >/dev/null 2>&1 && return 0
	done
	return 1
}

times=()
for r in $(seq 1 "$rounds"); do
	stop
	t0=$(date +%s%N)
	for i in $(seq 1 "$members"); do
		start_member "$i" restart "$@"
	done
	deadline=$(( t0 + 20000000000 ))
	until put_any; do
		if [ "$(date +%s%N)" -gt "$deadline" ]; then
			echo "round $r: no write succeeded within 20 s of the start" >&2
			exit 1
		fi
		sleep 0.01
	done
	t=$(awk -v d="$(( $(date +%s%N) - t0 ))" 'BEGIN { printf "%.2f", d / 1e9 }')
	times+=("$t")
	echo "round $r: $members member(s) killed and started again: first write after $t s"
done
echo "median: $(median "${times[@]}") s over $rounds rounds"
