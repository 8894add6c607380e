#!/usr/bin/env bash
# Runs the examples against memcacheds that this script starts on free loopback ports and
# stops again on exit: one for the single-server examples, three for the cluster example
# (started with -A, so that the example can stop one with `shutdown`). Installs memcached
# first if it is missing (as root, with apt-get).
set -euo pipefail

# The examples to run against one server, in order (names of [[example]]s of package
# memcache-examples); `cluster` runs last, against three.
EXAMPLES="quickstart read_through"

cd "$(dirname "${BASH_SOURCE[0]}")/.."

# shellcheck source=scripts/lib.sh
source scripts/lib.sh

require_cargo
if [[ -n "${MEMCACHED_BIN:-}" ]]; then
    memcached_bin=$MEMCACHED_BIN
else
    ensure_packages memcached
    memcached_bin=$(find_program memcached)
fi

workdir=$(mktemp -d)
pids=()
cleanup() {
    for pid in "${pids[@]}"; do
        kill "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    rm -rf "$workdir"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

user_args=()
if [[ $(id -u) -eq 0 ]]; then
    user_args=(-u root) # memcached refuses to run as root without -u
fi

# Starts memcached number $1 (extra arguments follow) and sets $port to the port it listens
# on. -p -1: the kernel picks a free port; memcached writes "TCP INET: <port>" into the file
# named by MEMCACHED_PORT_FILENAME once it listens. -U 0: no UDP.
start_memcached() {
    local n=$1
    shift
    MEMCACHED_PORT_FILENAME="$workdir/port-$n" \
        "$memcached_bin" -p -1 -U 0 -l 127.0.0.1 "${user_args[@]}" "$@" \
        >"$workdir/memcached-$n.log" 2>&1 &
    local pid=$!
    pids+=("$pid")
    port=""
    for _ in $(seq 1 200); do
        if [[ -s "$workdir/port-$n" ]]; then
            port=$(sed -n 's/^TCP INET: //p' "$workdir/port-$n" | head -n 1)
            [[ -n "$port" ]] && break
        fi
        if ! kill -0 "$pid" 2>/dev/null; then
            echo "memcached exited at start:" >&2
            cat "$workdir/memcached-$n.log" >&2
            exit 1
        fi
        sleep 0.05
    done
    if [[ -z "$port" ]]; then
        echo "memcached did not report its port within 10 seconds" >&2
        exit 1
    fi
    echo "==> memcached $("$memcached_bin" -V | cut -d' ' -f2) on 127.0.0.1:$port (pid $pid)"
}

start_memcached 0
single="127.0.0.1:$port"
for example in $EXAMPLES; do
    echo "==> cargo run --example $example"
    MEMCACHED_ADDR="$single" cargo run -q -p memcache-examples --example "$example"
done

cluster=()
for n in 1 2 3; do
    start_memcached "$n" -A
    cluster+=("127.0.0.1:$port")
done
servers=$(IFS=,; echo "${cluster[*]}")
echo "==> cargo run --example cluster (servers $servers)"
MEMCACHED_SERVERS="$servers" cargo run -q -p memcache-examples --example cluster
echo "==> done; stopping memcached"
