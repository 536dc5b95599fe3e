#!/usr/bin/env bash
# Installs what building, serving and testing Ferrite need on Debian 12, and nothing twice.
#   bash scripts/setup.sh          build + serve: compilers' C libraries (hwloc, udev, verbs, clang)
#   bash scripts/setup.sh --test   also the test peers and tools: verilator, yosys, memcached,
#                                  redis, libmemcached tools, nutcracker, qemu, a Python venv
#                                  (.venv: redis, pymemcache, prometheus_client, pytest), cargo-fuzz
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

build_packages=(build-essential pkg-config libhwloc-dev libudev-dev libibverbs-dev librdmacm-dev
    libclang-dev verilator)
test_packages=(yosys memcached redis-server redis-tools libmemcached-tools nutcracker iproute2
    python3-venv qemu-system-x86 cpio busybox-static kmod ibverbs-utils ibverbs-providers liblz4-dev
    curl)

packages=("${build_packages[@]}")
[[ ${1:-} == --test ]] && packages+=("${test_packages[@]}")

missing=()
for package in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q 'install ok installed' || missing+=("$package")
done
if ((${#missing[@]})); then
    sudo=()
    if ((EUID != 0)); then
        command -v sudo >/dev/null || {
            echo "setup: missing Debian packages and no root: run as root: apt-get update && apt-get install -y ${missing[*]}" >&2
            exit 1
        }
        sudo=(sudo)
    fi
    echo "setup: installing ${missing[*]}" >&2
    "${sudo[@]}" apt-get update -qq
    DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

command -v cargo >/dev/null || {
    echo "setup: cargo not found: install a stable Rust toolchain (rustup) first" >&2
    exit 1
}

if [[ ${1:-} == --test ]]; then
    if [[ ! -x .venv/bin/pytest ]]; then
        echo "setup: making the Python venv .venv" >&2
        python3 -m venv .venv
        .venv/bin/pip install -q --upgrade pip
    fi
    .venv/bin/pip install -q -r scripts/requirements-test.txt
    if ! cargo fuzz --version >/dev/null 2>&1; then
        echo "setup: installing cargo-fuzz" >&2
        cargo install -q cargo-fuzz --locked
    fi
fi
