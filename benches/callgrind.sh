#!/usr/bin/env bash
# Instructions per get (W1, one in flight) of each client's process, under callgrind.
#
#   benches/callgrind.sh [N] [CLIENT...]      (default N=20000, every client)
#   WORKLOAD=W7 benches/callgrind.sh [N] [CLIENT...]
#                                             (per get_many of 100 keys over three servers;
#                                              clients ours, ours-ketama, raw; default all three)
#
# Collection is toggled on entry and exit of `callgrind_measured_gets`, which runs the N
# gets: connecting, warming up and memcached itself (another process, not traced) are not
# counted. The async clients run on a current-thread runtime there, so their driver tasks
# run on the measured thread and are counted.
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-20000}
shift || true
clients=("$@")
workload=${WORKLOAD:-W1}
if [ "$workload" = W7 ]; then
    what="calls"
    [ ${#clients[@]} -gt 0 ] || clients=(raw ours ours-ketama)
else
    what="gets"
    [ ${#clients[@]} -gt 0 ] || clients=(raw raw-tokio ours memcache async-memcached)
fi
command -v valgrind >/dev/null || { echo "valgrind not found: apt-get install valgrind" >&2; exit 1; }
cargo build --release -q -p memcache-benches
bin="${CARGO_TARGET_DIR:-target}/release/memcache-benches"
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
for client in "${clients[@]}"; do
    valgrind --tool=callgrind --callgrind-out-file="$out/$client" \
        --collect-atstart=no --toggle-collect='*callgrind_measured_gets*' \
        "$bin" --callgrind "$workload" --client "$client" --n "$n" 2>"$out/$client.log" \
        || { cat "$out/$client.log" >&2; exit 1; }
    total=$(awk '/^summary:/ { print $2 }' "$out/$client")
    printf '%-16s %12s instructions / %s %s = %6d per %s\n' "$client" "$total" "$n" "$what" \
        $((total / n)) "${what%s}"
done
