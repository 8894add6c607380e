#!/usr/bin/env bash
# Runs the examples against memcacheds that this script starts on free loopback ports and
# stops again on exit: one for the single-server examples, three for the cluster example
# (started with -A, so that the example can stop one with `shutdown`), and one for the
# example service (package memcache-service), which the load generator then drives for a
# few seconds before the service is stopped with SIGTERM. Installs memcached first if it is
# missing (as root, with apt-get).
set -euo pipefail

# The examples to run against one server, in order (names of [[example]]s of package
# memcache-examples); `cluster` runs after them, against three.
EXAMPLES="quickstart read_through"
# The load the service gets: memcache-loadgen's flags.
LOADGEN_FLAGS="--duration 5s --concurrency 32 --write-ratio 0.05 --keys 1000"
# The pause the service adds to each database query, standing for the round trip to a
# database server (SQLite, in-process, answers in microseconds).
SERVICE_DB_LATENCY=1ms

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

echo "==> cargo build -p memcache-service (the service and its load generator)"
cargo build -q -p memcache-service --bins
target_dir=$(cargo metadata --format-version 1 --no-deps |
    sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')
bin="$target_dir/debug"
start_memcached 4
# LISTEN port 0: any free port; the service writes the one it got into SERVICE_ADDR_FILE.
MEMCACHE_URL="memcache://127.0.0.1:$port/?timeout=200ms&connect_timeout=200ms" \
    DATABASE_URL="$workdir/service.db" LISTEN=127.0.0.1:0 \
    SERVICE_ADDR_FILE="$workdir/service-addr" DB_LATENCY="$SERVICE_DB_LATENCY" \
    "$bin/memcache-service" 2>"$workdir/service.log" &
service_pid=$!
pids+=("$service_pid")
service_addr=""
for _ in $(seq 1 200); do
    [[ -s "$workdir/service-addr" ]] && service_addr=$(head -n 1 "$workdir/service-addr") && break
    if ! kill -0 "$service_pid" 2>/dev/null; then
        echo "memcache-service exited at start:" >&2
        cat "$workdir/service.log" >&2
        exit 1
    fi
    sleep 0.05
done
if [[ -z "$service_addr" ]]; then
    echo "memcache-service did not report its address within 10 seconds" >&2
    exit 1
fi
echo "==> memcache-service on http://$service_addr (pid $service_pid; database queries take $SERVICE_DB_LATENCY more)"
echo "==> memcache-loadgen --target http://$service_addr $LOADGEN_FLAGS"
# shellcheck disable=SC2086 # the flags are split on purpose
"$bin/memcache-loadgen" --target "http://$service_addr" $LOADGEN_FLAGS
echo "==> stopping memcache-service (SIGTERM)"
kill -TERM "$service_pid"
wait "$service_pid"
tail -n 1 "$workdir/service.log"
echo "==> done; stopping memcached"
