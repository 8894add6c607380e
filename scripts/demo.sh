#!/usr/bin/env bash
# Runs the examples against a memcached that this script starts on a free loopback port and
# stops again on exit. Installs memcached first if it is missing (as root, with apt-get).
set -euo pipefail

# The examples to run, in order (names of [[example]]s of package memcache-examples).
EXAMPLES="quickstart read_through"

cd "$(dirname "${BASH_SOURCE[0]}")/.."

# Prints the path of a program found on PATH or in the usual system directories.
find_program() {
    command -v "$1" 2>/dev/null && return 0
    local dir
    for dir in /usr/sbin /usr/bin /usr/local/bin; do
        if [[ -x "$dir/$1" ]]; then
            echo "$dir/$1"
            return 0
        fi
    done
    return 1
}

# Succeeds if the program exists.
have() {
    find_program "$1" >/dev/null
}

# Installs the given Debian packages when their program of the same name is missing.
ensure_packages() {
    local missing=()
    local package
    for package in "$@"; do
        have "$package" || missing+=("$package")
    done
    [[ ${#missing[@]} -eq 0 ]] && return 0
    if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null 2>&1; then
        echo "==> installing ${missing[*]}"
        apt-get update
        DEBIAN_FRONTEND=noninteractive apt-get install -y "${missing[@]}"
    else
        echo "missing: ${missing[*]}" >&2
        echo "install it, then run this script again:" >&2
        echo "    sudo apt-get update && sudo apt-get install -y ${missing[*]}" >&2
        exit 1
    fi
}

if ! command -v cargo >/dev/null 2>&1; then
    echo "cargo not found: install Rust from https://rustup.rs, then run this script again" >&2
    exit 1
fi
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
