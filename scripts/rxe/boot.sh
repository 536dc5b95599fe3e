#!/usr/bin/env bash
# Boots one soft-RoCE VM (TCG: this workplace has no usable KVM) and judges its serial console.
# usage: boot.sh KDIR INITRD LOG [KERNEL-ARGS...]     exit 0 only when the scenario printed PASS
set -euo pipefail
# no_timer_check: on a loaded host TCG runs too slowly for the kernel's early IO-APIC timer check,
# which then panics ("IO-APIC + timer doesn't work!") before init runs
kdir=$1 initrd=$2 log=$3
shift 3
release=$(cat "$kdir/kpkg/release")
timeout "${RXE_VM_SECONDS:-120}" qemu-system-x86_64 -accel tcg -cpu max -m 1G -smp "${RXE_SMP:-2}" \
    -nographic -no-reboot -kernel "$kdir/kpkg/boot/vmlinuz-$release" -initrd "$initrd" \
    -append "console=ttyS0 panic=-1 quiet no_timer_check rxe.mode=single $*" -nic none >"$log" 2>&1 || true
grep -q '^FERRITE-RXE: PASS' "$log"
