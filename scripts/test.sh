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

# shellcheck source=scripts/lib.sh
source scripts/lib.sh

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
require_cargo
# shellcheck disable=SC2086 # the lists are split on purpose
ensure_packages $TEST_SERVERS
ensure_pymemcache
# shellcheck disable=SC2086
ensure_components $RUST_COMPONENTS

step "cargo fmt --all -- --check"
cargo fmt --all -- --check

step "cargo clippy --workspace --all-targets --all-features -- -D warnings"
cargo clippy --workspace --all-targets --all-features -- -D warnings

step "cargo test --workspace --all-features"
cargo test --workspace --all-features

# --all-features builds memcache-core with tls; it must build, lint and pass without too.
step "memcache-core without its features: clippy, unit and doc tests"
cargo clippy -p memcache-core --all-targets -- -D warnings
cargo test -p memcache-core --lib
cargo test -p memcache-core --doc

step "all checks passed"
