# Shell functions shared by scripts/demo.sh and scripts/test.sh (sourced, not run).

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
        printf '\n==> installing %s\n' "${missing[*]}"
        apt-get update
        DEBIAN_FRONTEND=noninteractive apt-get install -y "${missing[@]}"
    else
        echo "missing: ${missing[*]}" >&2
        echo "install it, then run this script again:" >&2
        echo "    sudo apt-get update && sudo apt-get install -y ${missing[*]}" >&2
        exit 1
    fi
}

# Stops with a clear message when cargo is missing.
require_cargo() {
    if ! command -v cargo >/dev/null 2>&1; then
        echo "cargo not found: install Rust from https://rustup.rs, then run this script again" >&2
        exit 1
    fi
}

# Installs pymemcache for Debian's python3 when that cannot import it: the tests that check
# what a Python service reads and writes (tests/tests/typed_keyed_python.rs) run it.
ensure_pymemcache() {
    local python=/usr/bin/python3
    [[ -x $python ]] && "$python" -c 'import pymemcache' 2>/dev/null && return 0
    if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null 2>&1; then
        printf '\n==> installing pymemcache for %s\n' "$python"
        if ! [[ -x $python ]] || ! "$python" -m pip --version >/dev/null 2>&1; then
            apt-get update
            DEBIAN_FRONTEND=noninteractive apt-get install -y python3 python3-pip
        fi
        "$python" -m pip install --break-system-packages pymemcache==4.0.0
    else
        echo "missing: pymemcache for $python" >&2
        echo "install it, then run this script again:" >&2
        echo "    sudo $python -m pip install --break-system-packages pymemcache==4.0.0" >&2
        exit 1
    fi
}
