#!/usr/bin/env bash
# Builds a busybox initramfs that boots Debian's kernel into a soft-RoCE (rdma_rxe) host and runs
# one scenario script. Everything the guest runs is copied from this host (same Debian release,
# so the libraries' ABI matches): busybox, iproute2's ip and rdma, libibverbs' rxe provider, the
# binaries named on the command line with their ldd closure, and the kernel modules rxe needs.
# usage: build-initramfs.sh KDIR OUT.cpio.gz SCENARIO.sh [BINARY...]
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
kdir=$1 out=$2 scenario=$3
shift 3
release=$(cat "$kdir/kpkg/release")
root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
mkdir -p "$root"/{bin,sbin,etc,proc,sys,dev,tmp,run,usr/bin,usr/sbin}
cp /bin/busybox "$root/bin/busybox"
# busybox's ip cannot make veth pairs; the real ip and rdma are copied below
for applet in $("$root/bin/busybox" --list | grep -vx ip); do
    [[ -e $root/bin/$applet ]] || ln -s busybox "$root/bin/$applet"
done
copy_with_libraries() { # FILE [DEST]
    local file=$1 dest=${2:-$1} library
    mkdir -p "$root$(dirname "$dest")"
    cp -L "$file" "$root$dest"
    ldd "$file" 2>/dev/null | grep -o '/[^ ]*' | while read -r library; do
        [[ -e $root$library ]] || { mkdir -p "$root$(dirname "$library")"; cp -L "$library" "$root$library"; }
    done
}
for tool in /usr/bin/ip /usr/bin/rdma /usr/bin/ibv_devinfo; do
    [[ -x $tool ]] || { echo "rxe: $tool missing (apt-get install iproute2 ibverbs-utils)" >&2; exit 1; }
    copy_with_libraries "$tool"
done
# libibverbs dlopens its provider, so ldd of the tools does not pull it in
provider=$(find /usr/lib -name 'librxe-rdmav*.so' -print -quit)
[[ -n $provider && -f /etc/libibverbs.d/rxe.driver ]] ||
    { echo "rxe: the rxe verbs provider is missing (apt-get install rdma-core ibverbs-providers)" >&2; exit 1; }
mkdir -p "$root/etc/libibverbs.d"
cp /etc/libibverbs.d/rxe.driver "$root/etc/libibverbs.d/"
copy_with_libraries "$provider"
for binary in "$@"; do copy_with_libraries "$binary" "/usr/bin/$(basename "$binary")"; done
modules=lib/modules/$release
mkdir -p "$root/$modules"
cp "$kdir/kpkg/$modules"/modules.* "$root/$modules/"
for module in rdma_rxe rdma_ucm veth crc32_generic virtio_net virtio_pci; do
    line=$(grep "/$module.ko:" "$kdir/kpkg/$modules/modules.dep")
    for path in ${line%%:*} ${line#*:}; do
        mkdir -p "$root/$modules/$(dirname "$path")"
        cp "$kdir/kpkg/$modules/$path" "$root/$modules/$path"
    done
done
cp "$here/init.sh" "$root/init"
cp "$scenario" "$root/scenario.sh"
chmod +x "$root/init" "$root/scenario.sh"
echo "root:x:0:0:root:/root:/bin/sh" >"$root/etc/passwd"
(cd "$root" && find . | cpio -o -H newc --quiet | gzip -1) >"$out"
