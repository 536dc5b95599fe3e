#!/usr/bin/env bash
# Builds ferrite (release) and runs it on its embedded defaults: RESP on 127.0.0.1:6379,
# memcached on 127.0.0.1:11211, data in DRAM. Extra arguments go to ferrite (see --help).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/setup.sh
cargo build --release --bin ferrite
exec target/release/ferrite "$@"
