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
cargo build -q --release --bin ferrite --bin ferrite-cli --bin loadgen
# the verbs tests are ignored on hosts without RDMA; the VM runs them with --ignored
link_test=$(cargo test -q --release -p platform --test rdma_link --no-run --message-format=json |
    sed -n 's/.*"executable":"\([^"]*\)".*/\1/p' | tail -1)
[[ -x $link_test ]] || { echo "rxe: could not build the rdma_link test binary" >&2; exit 1; }
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
mkdir -p "$kdir/bin" && cp "$link_test" "$kdir/bin/rdma_link"
run_pair() { # NAME SCENARIO BINARY...
    local name=$1 scenario=$2
    shift 2
    bash scripts/rxe/build-initramfs.sh "$kdir" "$kdir/$name.cpio.gz" "$scenario" "$@"
    if bash scripts/rxe/boot-pair.sh "$kdir" "$kdir/$name.cpio.gz" "$kdir/$name"; then
        echo "rxe: $name ok (two VMs)"
    else
        echo "rxe: $name FAILED; serial consoles:" >&2
        tail -n 20 "$kdir/$name-a.log" "$kdir/$name-b.log" >&2
        failed=1
    fi
}
run_single probe scripts/rxe/scenarios/probe.sh target/release/ferrite-probe
run_single link scripts/rxe/scenarios/link.sh "$kdir/bin/rdma_link"
run_pair link-pair scripts/rxe/scenarios/link-pair.sh "$kdir/bin/rdma_link"
server_binaries=(target/release/ferrite target/release/ferrite-cli target/release/loadgen)
run_single server scripts/rxe/scenarios/server.sh "${server_binaries[@]}"
run_pair server-pair scripts/rxe/scenarios/server.sh "${server_binaries[@]}"
run_single device-removal scripts/rxe/scenarios/device-removal.sh "${server_binaries[@]}"
# RDMA vs TCP figures from the runs above, for the README
grep -ah '^FERRITE-BENCH' "$kdir"/server.log "$kdir"/server-pair-b.log >"$kdir/bench.csv" || true
exit "$failed"
