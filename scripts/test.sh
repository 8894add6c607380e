#!/usr/bin/env bash
# Checks and tests the whole workspace, as CI does: formatting, clippy, then every test
# (unit, integration against real servers, doc tests). Installs the servers the tests start
# (memcached, ...) with apt-get when running as root, and the rustfmt/clippy components.
set -euo pipefail

# Programs the integration tests start; each is also its Debian package name.
TEST_SERVERS="memcached nutcracker"
# Toolchain components the checks need.
RUST_COMPONENTS="rustfmt clippy"

cd "$(dirname "${BASH_SOURCE[0]}")/.."

step() {
    printf '\n==> %s\n' "$*"
}

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
        step "installing ${missing[*]}"
        apt-get update
        DEBIAN_FRONTEND=noninteractive apt-get install -y "${missing[@]}"
    else
        echo "missing: ${missing[*]}" >&2
        echo "install it, then run this script again:" >&2
        echo "    sudo apt-get update && sudo apt-get install -y ${missing[*]}" >&2
        exit 1
    fi
}

# Adds the rustup components whose cargo subcommand does not run.
ensure_components() {
    local component subcommand
    for component in "$@"; do
        case "$component" in
            rustfmt) subcommand=fmt ;;
            *) subcommand=$component ;;
        esac
        cargo "$subcommand" --version >/dev/null 2>&1 && continue
        if command -v rustup >/dev/null 2>&1; then
            step "rustup component add $component"
            rustup component add "$component"
        else
            echo "cargo $subcommand not found and no rustup to add it: install the $component component" >&2
            exit 1
        fi
    done
}

step "checking prerequisites"
if ! command -v cargo >/dev/null 2>&1; then
    echo "cargo not found: install Rust from https://rustup.rs, then run this script again" >&2
    exit 1
fi
# shellcheck disable=SC2086 # the lists are split on purpose
ensure_packages $TEST_SERVERS
# shellcheck disable=SC2086
ensure_components $RUST_COMPONENTS

step "cargo fmt --all -- --check"
cargo fmt --all -- --check

step "cargo clippy --workspace --all-targets --all-features -- -D warnings"
cargo clippy --workspace --all-targets --all-features -- -D warnings

step "cargo test --workspace --all-features"
cargo test --workspace --all-features

step "all checks passed"
