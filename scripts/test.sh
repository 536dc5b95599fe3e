#!/usr/bin/env bash
# The whole test suite, on a fresh Debian 12 machine: installs what it needs, then runs
# the Rust tests (unit, property, crash, integration against the real binary and real peers),
# the fuzz targets for a bounded time, and the Python client tests.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/setup.sh --test

# Each step says how long the one before took, so the suite's 30-minute budget stays visible.
step_started=$SECONDS
step() {
    printf '\n=== %s (previous step: %ss) ===\n' "$*" $((SECONDS - step_started))
    step_started=$SECONDS
}

step "build"
cargo build --release --workspace --all-targets

step "rust tests"
cargo test --release --workspace

step "rtl: Verilator lint and yosys synth -top of every module"
bash rtl/check.sh

step "soft-RoCE VM (rdma_rxe under QEMU)"
bash scripts/rxe/test.sh

step "fuzz (bounded)"
bash scripts/fuzz.sh "${FUZZ_SECONDS:-20}"

if compgen -G "datapath/tests/python/test_*.py" >/dev/null; then
    step "python client tests"
    .venv/bin/pytest -q datapath/tests/python
fi
echo "suite finished in ${SECONDS}s"
