#!/usr/bin/env bash
# Lints every module with Verilator and synthesizes it with yosys, printing the figures that
# rtl/README.md and the README's `## Offload` section quote.
#
#   bash rtl/check.sh [--full] [module...]
#
# lints every module, then synthesizes the named ones (default: all; about 8 minutes on 2 cores,
# mostly lz4_compress). --full runs the plain `synth -top` on the LZ4 modules too, which maps
# their 64 KiB memories to flip-flops (far longer, several GB of RAM).
#
# The LZ4 modules' large memories carry the attribute `ferrite_ram`. Generic `synth` has no RAM
# primitive and would turn them into half a million flip-flops each, so the default run is
# `synth` with one change: memory_map skips memories marked `ferrite_ram`, which stay memory
# cells and are counted as memory bits. Everything else (queues, registers) is mapped as usual.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
full=
if [[ ${1:-} == --full ]]; then
    full=--full
    shift
fi
modules=(crc64 lz4_decompress lz4_compress)
synthesize=("$@")
[[ ${#synthesize[@]} -gt 0 ]] || synthesize=("${modules[@]}")

for module in "${modules[@]}"; do
    verilator --lint-only -Wall "$module.v"
done
echo "lint: verilator -Wall clean for ${modules[*]}"

# Same passes as `synth` (yosys 0.23), except memory_map's -attr.
synth_keeping_rams() {
    local module=$1
    echo "read_verilog $module.v
synth -top $module -run begin:fine
opt -fast -full
memory_map -attr !ferrite_ram
opt -full
techmap
opt -fast
abc -fast
opt -fast
hierarchy -check
check -assert"
}

# Fails on any latch; prints cells and flip-flops (every gate-level *DFF* cell is one bit).
report() {
    local module=$1 log=$2 stat=$3
    if grep -q "Latch inferred for" "$log"; then
        grep "Latch inferred for" "$log" >&2
        echo "$module: yosys inferred a latch" >&2
        exit 1
    fi
    local cells flip_flops
    cells=$(awk '/Number of cells:/ {print $4}' "$stat")
    flip_flops=$(awk '$1 ~ /^\$_.*DFF.*_$/ {sum += $2} END {print sum + 0}' "$stat")
    echo "$module: $cells cells, $flip_flops flip-flops, no latches"
}

workdir=$(mktemp -d)
trap 'rm -rf "$workdir"' EXIT
for module in "${synthesize[@]}"; do
    # Memories as the RTL declares them, before synthesis.
    yosys -q -p "read_verilog $module.v; hierarchy -top $module; proc; tee -o $workdir/$module.mem stat" >/dev/null
    memories=$(awk '/Number of memories:/ {print $4}' "$workdir/$module.mem")
    memory_bits=$(awk '/Number of memory bits:/ {print $5}' "$workdir/$module.mem")
    if [[ $module == crc64 || $full == --full ]]; then
        yosys -p "read_verilog $module.v; synth -top $module; tee -o $workdir/$module.stat stat" >"$workdir/$module.log"
        report "$module" "$workdir/$module.log" "$workdir/$module.stat"
        echo "$module: plain synth -top $module; the RTL declares $memories memories ($memory_bits bits)"
    else
        yosys -p "$(synth_keeping_rams "$module"); tee -o $workdir/$module.stat stat" >"$workdir/$module.log"
        report "$module" "$workdir/$module.log" "$workdir/$module.stat"
        kept=$(awk '$1 == "$mem_v2" {print $2}' "$workdir/$module.stat")
        echo "$module: the RTL declares $memories memories ($memory_bits bits); ${kept:-0} ferrite_ram memories stay RAM cells"
    fi
done
