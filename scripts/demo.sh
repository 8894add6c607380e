#!/usr/bin/env bash
# Runs the examples against a memcached that this script starts on a free loopback port and
# stops again on exit. Installs memcached first if it is missing (as root, with apt-get).
set -euo pipefail

# The examples to run, in order (names of [[example]]s of package memcache-examples).
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
memcached_pid=""
cleanup() {
    if [[ -n "$memcached_pid" ]]; then
        kill "$memcached_pid" 2>/dev/null || true
        wait "$memcached_pid" 2>/dev/null || true
    fi
    rm -rf "$workdir"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# -p -1: the kernel picks a free port; memcached writes "TCP INET: <port>" into the file
# named by MEMCACHED_PORT_FILENAME once it listens. -U 0: no UDP.
user_args=()
if [[ $(id -u) -eq 0 ]]; then
    user_args=(-u root) # memcached refuses to run as root without -u
fi
MEMCACHED_PORT_FILENAME="$workdir/port" \
    "$memcached_bin" -p -1 -U 0 -l 127.0.0.1 "${user_args[@]}" >"$workdir/memcached.log" 2>&1 &
memcached_pid=$!

port=""
for _ in $(seq 1 200); do
    if [[ -s "$workdir/port" ]]; then
        port=$(sed -n 's/^TCP INET: //p' "$workdir/port" | head -n 1)
        [[ -n "$port" ]] && break
    fi
    if ! kill -0 "$memcached_pid" 2>/dev/null; then
        echo "memcached exited at start:" >&2
        cat "$workdir/memcached.log" >&2
        memcached_pid=""
        exit 1
    fi
    sleep 0.05
done
if [[ -z "$port" ]]; then
    echo "memcached did not report its port within 10 seconds" >&2
    exit 1
fi
echo "==> memcached $("$memcached_bin" -V | cut -d' ' -f2) on 127.0.0.1:$port (pid $memcached_pid)"

for example in $EXAMPLES; do
    echo "==> cargo run --example $example"
    MEMCACHED_ADDR="127.0.0.1:$port" cargo run -q -p memcache-examples --example "$example"
done
echo "==> done; stopping memcached"
