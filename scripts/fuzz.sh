#!/usr/bin/env bash
# Runs every cargo-fuzz target of every crate for SECONDS each (default 20), on the stable
# toolchain (RUSTC_BOOTSTRAP lets cargo-fuzz pass its -Z flags). Fails on the first crash.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
seconds=${1:-20}
ran=0
for manifest in */fuzz/Cargo.toml; do
    [[ -f $manifest ]] || continue
    crate=$(dirname "$(dirname "$manifest")")
    for target in $(cd "$crate" && RUSTC_BOOTSTRAP=1 cargo fuzz list); do
        echo "fuzz: $crate/$target for ${seconds}s"
        (cd "$crate" && RUSTC_BOOTSTRAP=1 cargo fuzz run "$target" -- -max_total_time="$seconds" -rss_limit_mb=2048) \
            > "target/fuzz-$target.log" 2>&1 || {
            tail -40 "target/fuzz-$target.log"
            echo "fuzz: $crate/$target FAILED (log: target/fuzz-$target.log)" >&2
            exit 1
        }
        ran=$((ran + 1))
    done
done
echo "fuzz: $ran targets ran clean"
