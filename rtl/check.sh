#!/usr/bin/env bash
# Lints every module with Verilator and synthesizes each with yosys' plain generic flow,
# `synth -top <module>`, failing on any latch; prints the figures that rtl/README.md and the
# README's `## Offload` section quote.
#
#   bash rtl/check.sh [module...]
#
# lints every module, then synthesizes the named ones (default: all), side by side: about 1.5
# minutes of CPU for each LZ4 module, so about 2 minutes on 2 idle cores (15 on a machine busy
# with five other builds); each yosys peaks at about 1.6 GB.
#
# The LZ4 modules keep their large memories in `ferrite_ram` macros (ferrite_ram.v). yosys defines
# SYNTHESIS, under which the macro is an empty module, i.e. a black box that `synth` keeps as one
# cell per instance; Verilator simulates the behavioural model. The macros' bits are counted from
# that model (read with -nosynthesis, which leaves SYNTHESIS undefined).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
modules=(crc64 lz4_decompress lz4_compress)
# Instantiated by the modules; read with each of them.
library=(ferrite_ram.v byte_window.v output_beat.v)
synthesize=("$@")
[[ ${#synthesize[@]} -gt 0 ]] || synthesize=("${modules[@]}")

for module in "${modules[@]}"; do
    verilator --lint-only -Wall --top-module "$module" "$module.v" "${library[@]}"
done
echo "lint: verilator -Wall clean for ${modules[*]}"

workdir=$(mktemp -d)
trap 'rm -rf "$workdir"' EXIT

# Synthesizes one module and prints its figures; fails on a latch.
synthesize_module() {
    local module=$1
    local sources="$module.v ${library[*]}"
    yosys -p "read_verilog $sources; synth -top $module; tee -o $workdir/$module.stat stat" >"$workdir/$module.log"
    if grep -q "Latch inferred for" "$workdir/$module.log" || grep -q 'DLATCH' "$workdir/$module.stat"; then
        grep "Latch inferred for" "$workdir/$module.log" >&2 || true
        echo "$module: yosys inferred a latch" >&2
        return 1
    fi
    # The whole design's figures: `synth` keeps the hierarchy, and stat then ends with totals over
    # it (submodules counted by their contents, black boxes as one cell each).
    local totals="$workdir/$module.totals"
    if grep -q '=== design hierarchy ===' "$workdir/$module.stat"; then
        sed -n '/=== design hierarchy ===/,$p' "$workdir/$module.stat" >"$totals"
    else
        cp "$workdir/$module.stat" "$totals"
    fi
    # Every gate-level *DFF* cell is one flip-flop; ferrite_ram cells are the RAM macros.
    local cells flip_flops macros cpu memories memory_bits
    cells=$(awk '/Number of cells:/ {print $4}' "$totals")
    flip_flops=$(awk '$1 ~ /^\$_.*DFF.*_$/ {sum += $2} END {print sum + 0}' "$totals")
    macros=$(awk '$1 == "ferrite_ram" {sum += $2} END {print sum + 0}' "$totals")
    cpu=$(grep -o 'CPU: user [0-9.]*s' "$workdir/$module.log" | tail -1)
    echo "$module: synth -top $module: $cells cells ($macros ferrite_ram macros), $flip_flops flip-flops, no latches ($cpu)"

    # The memories as the RTL declares them, the macros' behavioural model included.
    yosys -q -p "read_verilog -nosynthesis $sources; hierarchy -top $module; proc; flatten; tee -o $workdir/$module.memories stat" >/dev/null
    memories=$(awk '/Number of memories:/ {print $4}' "$workdir/$module.memories")
    memory_bits=$(awk '/Number of memory bits:/ {print $5}' "$workdir/$module.memories")
    echo "$module: the RTL declares $memories memories ($memory_bits bits)"
}

# The modules synthesize side by side (each yosys is single-threaded); figures print in order.
jobs_started=()
for module in "${synthesize[@]}"; do
    synthesize_module "$module" >"$workdir/$module.figures" &
    jobs_started+=($!)
done
failed=0
for index in "${!synthesize[@]}"; do
    wait "${jobs_started[$index]}" || failed=1
    cat "$workdir/${synthesize[$index]}.figures"
done
echo "check.sh finished in ${SECONDS}s"
exit "$failed"
