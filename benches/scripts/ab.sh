#!/usr/bin/env bash
# Two ferrite binaries against each other, the way this repo's performance commits were judged:
# alternating rounds (A, B, A, B, ...) so drift in a shared machine hits both alike, the server
# pinned to CPU 0 (one shard) and the load generator to CPU 1, medians of REPEAT rounds. Prints
# per cell: ops/s, p99 and ops per server-CPU-second of each, and B's ops per CPU-second ÷ A's.
#
# usage: bash benches/scripts/ab.sh OLD_BINARY NEW_BINARY       (from the repo root)
#   e.g. git worktree add /tmp/old HEAD~1 && (cd /tmp/old && cargo build --release --bin ferrite)
#        bash benches/scripts/ab.sh /tmp/old/target/release/ferrite target/release/ferrite
# knobs (env): CELLS ("proto:op:P ...", default "redis:get:1 redis:get:16 redis:set:16")
#   REPEAT (5) REQ_P1 (150000) REQ_P16 (1000000) CONNS (50) KEYSPACE (100000) VALUE (100)
NAME=ab
# shellcheck source=common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
(($# == 2)) || { echo "usage: bash benches/scripts/ab.sh OLD_BINARY NEW_BINARY" >&2; exit 1; }
binaries=("$1" "$2")
CELLS=${CELLS:-"redis:get:1 redis:get:16 redis:set:16"}
REPEAT=${REPEAT:-5}
REQ_P1=${REQ_P1:-150000}
REQ_P16=${REQ_P16:-1000000}
CONNS=${CONNS:-50}
KEYSPACE=${KEYSPACE:-100000}
VALUE=${VALUE:-100}
need util-linux taskset
need iproute2 ss

csv=$work/ab.csv
for round in $(seq "$REPEAT"); do
    for side in 0 1; do
        port=$(free_port) mport=$(free_port)
        taskset -c 0 "${binaries[side]}" --bind 127.0.0.1 --port "$port" --memcache-port "$mport" \
            --metrics-port 0 >"$work/server-$side.log" 2>&1 &
        pid=$!
        pids+=("$pid")
        wait_port "$port"; wait_port "$mport"
        loaded=" "
        for cell in $CELLS; do
            IFS=: read -r proto op p <<<"$cell"
            target=$port
            [[ $proto == memcache* ]] && target=$mport
            if [[ $loaded != *" $proto "* ]]; then
                taskset -c 1 "$loadgen" --proto "$proto" --port "$target" --mode load --requests "$KEYSPACE" \
                    --value-size "$VALUE" --conns 8 --pipeline 64 >/dev/null
                loaded+="$proto "
            fi
            requests=$REQ_P1; ((p > 1)) && requests=$REQ_P16
            log "round $round: ${binaries[side]} $cell"
            line=$(taskset -c 1 "$loadgen" --proto "$proto" --port "$target" --mode "$op" --conns "$CONNS" \
                --pipeline "$p" --requests "$requests" --keyspace "$KEYSPACE" --value-size "$VALUE" \
                --server-pid "$pid") || log "loadgen reported errors: $line"
            # loadgen: label,proto,op,P,conns,threads,requests,wall,ops,avg,p50,p99,p999,max,...,srv
            echo "$side,$cell,$line" >>"$csv"
        done
        kill "$pid"; wait "$pid" 2>/dev/null || true
    done
done

echo "| cell | A ops/s | A p99 µs | A ops/CPU-s | B ops/s | B p99 µs | B ops/CPU-s | B ÷ A (ops/CPU-s) |"
echo "|---|---|---|---|---|---|---|---|"
# Medians per (cell, side) of ops/s, p99 and ops per server-CPU-second, each taken on its own.
awk -F, '
    function median(list,    n, values, i, j, swap) {
        n = split(list, values, " ")
        for (i = 2; i <= n; i++)
            for (j = i; j > 1 && values[j - 1] + 0 > values[j] + 0; j--) {
                swap = values[j]; values[j] = values[j - 1]; values[j - 1] = swap
            }
        return values[int((n + 1) / 2)]
    }
    {
        key = $2 FS $1; if (!($2 in seen)) { seen[$2] = 1; cells[++count] = $2 }
        ops[key] = ops[key] " " $11; p99[key] = p99[key] " " $14
        efficiency[key] = efficiency[key] " " ($21 > 0 ? $11 / ($21 / 100) : 0)
    }
    END {
        for (i = 1; i <= count; i++) {
            a = cells[i] FS 0; b = cells[i] FS 1
            printf "| %s | %.0f | %.0f | %.0f | %.0f | %.0f | %.0f | %.3f |\n", cells[i],
                median(ops[a]), median(p99[a]), median(efficiency[a]),
                median(ops[b]), median(p99[b]), median(efficiency[b]),
                median(efficiency[b]) / median(efficiency[a])
        }
    }' "$csv"
