#!/usr/bin/env bash
# The tiered store against DRAM-only Ferrite and memcached with the same DRAM, in one run: a
# look-aside cache (loadgen --mode cache: GET, and SET the key after a miss) under Zipf(SKEW) over
# KEYSPACE keys of VALUE-byte JSON-like records, over the memcached text protocol for all.
# Each server: WARM GETs to fill it, then MEASURE GETs whose hit ratio and latency are reported,
# then the items it holds (memcached `stats` curr_items, both tiers for Ferrite), then (Ferrite)
# HOT GETs (4 connections, no pipelining) of the 10,000 most popular keys, which every
# configuration holds in DRAM.
#
# usage: bash benches/scripts/tiered.sh        (from the repo root; builds release first)
# knobs (env): DRAM COLD KEYSPACE SKEW VALUE WARM MEASURE HOT SERVERS
#   SERVERS defaults to "ferrite-dram ferrite-tiered ferrite-tiered-all memcached"
# Every server listens on 127.0.0.1 on a free port and is stopped by its PID; the cold files
# live in a temporary directory removed at the end.
NAME=tiered REMOVE_WORK=1
# shellcheck source=common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
DRAM_MIB=${DRAM_MIB:-256}
COLD_MIB=${COLD_MIB:-2048}
KEYSPACE=${KEYSPACE:-4000000}
SKEW=${SKEW:-0.99}
VALUE=${VALUE:-1024}
WARM=${WARM:-6000000}
MEASURE=${MEASURE:-2000000}
HOT=${HOT:-100000}
SERVERS=${SERVERS:-"ferrite-dram ferrite-tiered ferrite-tiered-all memcached"}
need "memcached iproute2 python3" memcached ss python3
# stat PORT NAME: a figure of memcached-protocol `stats` (0 when absent).
stat() {
    python3 - "$1" "$2" <<'PY'
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
s.sendall(b"stats\r\n")
data = b""
while not data.endswith(b"END\r\n"):
    data += s.recv(65536)
for line in data.decode().splitlines():
    parts = line.split()
    if len(parts) == 3 and parts[1] == sys.argv[2]:
        print(parts[2]); break
else:
    print(0)
PY
}

start() {
    local server=$1 port
    port=$(free_port)
    case $server in
    ferrite-*)
        local tier=()
        case $server in
        ferrite-tiered) tier=(--data-file "$work/items" --data-size "${COLD_MIB}MiB") ;;
        ferrite-tiered-all) tier=(--data-file "$work/items" --data-size "${COLD_MIB}MiB" --cold-admission all) ;;
        esac
        rm -f "$work"/items.*
        target/release/ferrite --bind 127.0.0.1 --port 0 --memcache-port "$port" \
            --memory "${DRAM_MIB}MiB" "${tier[@]}" >"$work/$server.log" 2>&1 &
        ;;
    memcached)
        local as_root=()
        ((EUID == 0)) && as_root=(-u root)
        memcached "${as_root[@]}" -l 127.0.0.1 -p "$port" -U 0 -t 2 -m "$DRAM_MIB" -c 4096 \
            >"$work/$server.log" 2>&1 &
        ;;
    esac
    pid=$!
    pids+=("$pid")
    wait_port "$port"
    server_port=$port
}

# run PORT PID LABEL ARGS...: one loadgen CSV line
run() {
    local port=$1 pid=$2 label=$3
    shift 3
    "$loadgen" --proto memcache --port "$port" --server-pid "$pid" --label "$label" \
        --value-kind json --value-size "$VALUE" --pipeline 16 --conns 50 --max-seconds 120 "$@"
}

echo "# Tiered store: look-aside cache, Zipf($SKEW) over $KEYSPACE keys of $VALUE B JSON"
echo
echo "- date: $(date -u '+%Y-%m-%d %H:%M UTC'); $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "- DRAM ${DRAM_MIB} MiB for every server; Ferrite tiered adds a ${COLD_MIB} MiB file tier"
echo "- $WARM GETs to warm, then $MEASURE measured (a miss SETs the key in the next batch); memcached protocol, 50 connections, pipeline 16"
echo
echo "| server | items held | hit ratio | GET+refill p50 / p99 (µs) | hot GETs p50 / p99 (µs) | cold keys | demoted | kept out | promoted | cold bytes raw → stored |"
echo "|---|---|---|---|---|---|---|---|---|---|"
for server in $SERVERS; do
    log "$server: warming"
    start "$server"
    run "$server_port" "$pid" warm --mode cache --key-dist "zipf:$SKEW" --keyspace "$KEYSPACE" \
        --requests "$WARM" --seed 1 >/dev/null
    log "$server: measuring"
    measured=$(run "$server_port" "$pid" measure --mode cache --key-dist "zipf:$SKEW" \
        --keyspace "$KEYSPACE" --requests "$MEASURE" --seed 2)
    IFS=, read -r _ _ _ _ _ _ _ _ _ _ p50 p99 _ _ hits misses _ <<<"$measured"
    items=$(stat "$server_port" curr_items)
    hot="—"
    if [[ $server == ferrite-* ]]; then
        hot_line=$("$loadgen" --proto memcache --port "$server_port" --label hot --mode get \
            --key-dist uniform --keyspace 10000 --value-size "$VALUE" --conns 4 --pipeline 1 \
            --requests "$HOT" --seed 3 --max-seconds 60)
        IFS=, read -r _ _ _ _ _ _ _ _ _ _ hot50 hot99 _ <<<"$hot_line"
        hot="$hot50 / $hot99"
    fi
    cold=$(stat "$server_port" tier_cold_keys)
    demoted=$(stat "$server_port" tier_demoted_keys)
    rejected=$(stat "$server_port" tier_admission_rejected_keys)
    promoted=$(stat "$server_port" tier_promoted_keys)
    raw=$(stat "$server_port" tier_compressed_raw_bytes)
    stored=$(stat "$server_port" tier_compressed_stored_bytes)
    ratio=$(python3 -c "print(f'{$hits / max(1, $hits + $misses):.3f}')")
    squeeze=$(python3 -c "print(f'{$raw/2**20:.0f} → {$stored/2**20:.0f} MiB ({$raw / max(1, $stored):.2f}x)' if $raw else '—')")
    echo "| $server | $items | $ratio | $p50 / $p99 | $hot | $cold | $demoted | $rejected | $promoted | $squeeze |"
    kill "$pid"
    wait "$pid" 2>/dev/null || true
done
