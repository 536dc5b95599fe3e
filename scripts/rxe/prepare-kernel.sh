#!/usr/bin/env bash
# Fetches Debian's own kernel package (it ships rdma_rxe) and unpacks it into DIR/kpkg with a
# modules.dep (the .deb ships none). Cached: a second run does nothing.
# usage: prepare-kernel.sh DIR      prints the kernel release (e.g. 6.1.0-56-amd64)
set -euo pipefail
dir=$1
mkdir -p "$dir"
if [[ -f $dir/kpkg/release ]]; then cat "$dir/kpkg/release"; exit 0; fi
package=$(apt-cache depends linux-image-amd64 2>/dev/null | awk '/Depends: linux-image-[0-9]/ {print $2; exit}')
[[ -n $package ]] || { echo "rxe: cannot resolve linux-image-amd64 (run: apt-get update)" >&2; exit 1; }
release=${package#linux-image-}
(cd "$dir" && rm -f linux-image-*.deb && apt-get download "$package" >&2)
rm -rf "$dir/kpkg.tmp" && dpkg-deb -x "$dir"/linux-image-*.deb "$dir/kpkg.tmp"
depmod -b "$dir/kpkg.tmp" "$release"
echo "$release" >"$dir/kpkg.tmp/release"
rm -rf "$dir/kpkg" && mv "$dir/kpkg.tmp" "$dir/kpkg"
echo "$release"
