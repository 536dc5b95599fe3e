#!/usr/bin/env bash
# The soft-RoCE part of the suite: boots Debian's kernel under QEMU (TCG) with an rdma_rxe device
# and runs each scenario in it, judging by the markers init.sh prints on the serial console.
# Needs: qemu-system-x86, busybox-static, cpio, kmod, iproute2, ibverbs-utils, ibverbs-providers
# (scripts/setup.sh --test installs them). Kernel package and initramfs are cached in target/rxe.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
kdir=target/rxe
for tool in qemu-system-x86_64 busybox cpio depmod; do
    command -v "$tool" >/dev/null || { echo "rxe: $tool missing: run bash scripts/setup.sh --test" >&2; exit 1; }
done
cargo build -q --release -p platform --bin ferrite-probe
bash scripts/rxe/prepare-kernel.sh "$kdir" >/dev/null
failed=0
run_single() { # NAME SCENARIO BINARY...
    local name=$1 scenario=$2
    shift 2
    bash scripts/rxe/build-initramfs.sh "$kdir" "$kdir/$name.cpio.gz" "$scenario" "$@"
    if bash scripts/rxe/boot.sh "$kdir" "$kdir/$name.cpio.gz" "$kdir/$name.log"; then
        echo "rxe: $name ok"
    else
        echo "rxe: $name FAILED; serial console:" >&2
        tail -30 "$kdir/$name.log" >&2
        failed=1
    fi
}
run_single probe scripts/rxe/scenarios/probe.sh target/release/ferrite-probe
exit "$failed"
