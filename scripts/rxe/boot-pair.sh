#!/usr/bin/env bash
# Boots two soft-RoCE VMs joined by a qemu socket link (an emulated Ethernet cable over host
# loopback TCP): VM A (10.0.0.1, role server) and VM B (10.0.0.2, role client), each with its
# own rxe device, so RDMA crosses a real (emulated) wire between two kernels.
# usage: boot-pair.sh KDIR INITRD LOG_PREFIX      exit 0 only when both scenarios printed PASS
set -euo pipefail
# no_timer_check: on a loaded host TCG runs too slowly for the kernel's early IO-APIC timer check,
# which then panics ("IO-APIC + timer doesn't work!") before init runs
kdir=$1 initrd=$2 prefix=$3
release=$(cat "$kdir/kpkg/release")
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
common=(-accel tcg -cpu max -m 1G -smp 1 -nographic -no-reboot -kernel "$kdir/kpkg/boot/vmlinuz-$release"
    -initrd "$initrd")
boot() { # NAME NETDEV MAC ROLE IP PEER
    timeout "${RXE_VM_SECONDS:-150}" qemu-system-x86_64 "${common[@]}" -netdev "socket,id=n0,$2" \
        -device "virtio-net-pci,netdev=n0,mac=$3" \
        -append "console=ttyS0 panic=-1 quiet no_timer_check rxe.mode=node rxe.role=$4 rxe.ip=$5 rxe.peer=$6" \
        >"$prefix-$1.log" 2>&1 || true
}
boot a "listen=127.0.0.1:$port" 52:54:00:12:34:01 server 10.0.0.1 10.0.0.2 &
first=$!
# the listening side must be up before the other connects
for _ in $(seq 100); do [[ -n $(ss -Hltn "sport = :$port") ]] && break; sleep 0.05; done
boot b "connect=127.0.0.1:$port" 52:54:00:12:34:02 client 10.0.0.2 10.0.0.1
wait "$first"
grep -q '^FERRITE-RXE: PASS' "$prefix-a.log" && grep -q '^FERRITE-RXE: PASS' "$prefix-b.log"
