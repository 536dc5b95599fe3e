#!/usr/bin/env bash
# Ferrite against redis-server and memcached, side by side in one run, all driven by the project's
# loadgen the same way: CONNS connections, VALUE-byte values, KEYSPACE keys (preloaded), SET and
# GET, pipelines PIPELINES. Prints a markdown table of medians over REPEAT rounds: ops/s, p50/p99
# and ops per server-CPU-second (server CPU time from /proc, the figure that survives the client
# sharing the machine's cores), plus the ratio to the best peer.
#
# usage: bash benches/scripts/compare.sh            (from the repo root; builds release first)
# knobs (env): SERVERS PIPELINES OPS REQ_P1 REQ_P16 CONNS KEYSPACE VALUE REPEAT FERRITE_ARGS
#   SERVERS defaults to "ferrite-uring ferrite-epoll redis memcached-t1 memcached-t2";
#   ferrite-IO-tN runs ferrite with N shards (--threads N) instead of one per core;
#   each server is measured on the protocols it speaks (ferrite: redis, memcache, memcache-meta).
#   PIN=1 runs every server on CPU 0 and the load generator on CPU 1 (taskset), so no server
#   time-shares a core with its client; ferrite then takes one shard (the one CPU it is allowed).
#   null (RESP) and null-memcache (text) are the ceiling, not a peer: ../shared/bench/nullserver.rs,
#   a do-nothing epoll server answering every request with a constant; left out of the ratio.
# Every server listens on 127.0.0.1 on a free port and is stopped by its PID.
NAME=compare
# shellcheck source=common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
SERVERS=${SERVERS:-"ferrite-uring ferrite-epoll redis memcached-t1 memcached-t2"}
PIPELINES=${PIPELINES:-"1 16"}
OPS=${OPS:-"set get"}
PROTOCOLS=${PROTOCOLS:-"redis memcache memcache-meta"}
REQ_P1=${REQ_P1:-200000}
REQ_P16=${REQ_P16:-1000000}
CONNS=${CONNS:-50}
KEYSPACE=${KEYSPACE:-100000}
VALUE=${VALUE:-100}
REPEAT=${REPEAT:-3}
MAX_S=${MAX_S:-20}
need "redis-server memcached iproute2" redis-server memcached ss
on_server=() on_client=()
if [[ ${PIN:-0} == 1 ]]; then
    need util-linux taskset
    on_server=(taskset -c 0) on_client=(taskset -c 1)
fi

# The do-nothing server the shared bench kit ships, built once into $work when asked for.
nullserver=$work/nullserver
if [[ " $SERVERS " == *" null"* ]]; then
    source_file=../shared/bench/nullserver.rs
    [[ -f $source_file ]] || { echo "compare: $source_file not found (the null server comes from the shared bench kit)" >&2; exit 1; }
    rustc -O -o "$nullserver" "$source_file"
fi

# start SERVER -> sets pid, and ports[protocol]
declare -A ports
start() {
    local server=$1 port mport
    ports=()
    case $server in
    ferrite-*)
        # ferrite-IO or ferrite-IO-tN (N shards)
        local io=${server#ferrite-} threads=()
        if [[ $io == *-t* ]]; then threads=(--threads "${io##*-t}"); io=${io%-t*}; fi
        port=$(free_port) mport=$(free_port)
        "${on_server[@]}" target/release/ferrite --bind 127.0.0.1 --port "$port" --memcache-port "$mport" \
            --io "$io" "${threads[@]}" ${FERRITE_ARGS:-} >"$work/$server.log" 2>&1 &
        pid=$!
        ports=([redis]=$port [memcache]=$mport [memcache-meta]=$mport)
        wait_port "$port"; wait_port "$mport" ;;
    redis)
        port=$(free_port)
        "${on_server[@]}" redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no --daemonize no \
            --dir "$work" >"$work/redis.log" 2>&1 &
        pid=$!
        ports=([redis]=$port)
        wait_port "$port" ;;
    memcached-t*)
        port=$(free_port)
        local as_root=()
        ((EUID == 0)) && as_root=(-u root)
        "${on_server[@]}" memcached "${as_root[@]}" -l 127.0.0.1 -p "$port" -U 0 -t "${server#memcached-t}" -m 1024 -c 4096 \
            >"$work/$server.log" 2>&1 &
        pid=$!
        ports=([memcache]=$port [memcache-meta]=$port)
        wait_port "$port" ;;
    null | null-memcache)
        port=$(free_port)
        local mode=() protocol=redis
        [[ $server == null-memcache ]] && mode=(--memcache) protocol=memcache
        "${on_server[@]}" "$nullserver" --port "$port" "${mode[@]}" >"$work/$server.log" 2>&1 &
        pid=$!
        ports=([$protocol]=$port)
        wait_port "$port" ;;
    *) echo "compare: unknown server $server" >&2; exit 1 ;;
    esac
    pids+=("$pid")
}

csv=$work/compare.csv
echo "server,proto,op,pipeline,round,ops_per_s,p50_us,p99_us,server_cpu_pct" >"$csv"
for round in $(seq "$REPEAT"); do
    for server in $SERVERS; do
        start "$server"
        for proto in $PROTOCOLS; do
            [[ -n ${ports[$proto]:-} ]] || continue
            "${on_client[@]}" "$loadgen" --proto "$proto" --port "${ports[$proto]}" --mode load --requests "$KEYSPACE" \
                --value-size "$VALUE" --conns 8 --pipeline 64 >/dev/null
            for p in $PIPELINES; do
                for op in $OPS; do
                    requests=$REQ_P1; ((p > 1)) && requests=$REQ_P16
                    log "round $round: $server $proto $op P=$p"
                    line=$("${on_client[@]}" "$loadgen" --proto "$proto" --port "${ports[$proto]}" --mode "$op" --conns "$CONNS" \
                        --pipeline "$p" --requests "$requests" --keyspace "$KEYSPACE" --value-size "$VALUE" \
                        --max-seconds "$MAX_S" --server-pid "$pid") || log "loadgen reported errors: $line"
                    # label,proto,op,P,conns,threads,requests,wall,ops,avg,p50,p99,p999,max,hits,misses,errors,cli,srv,machine
                    awk -F, -v s="$server" -v r="$round" 'BEGIN{OFS=","} {print s, $2, $3, $4, r, $9, $11, $12, $19}' \
                        <<<"$line" >>"$csv"
                done
            done
        done
        kill "$pid"; wait "$pid" 2>/dev/null || true
    done
done

log "raw rows: $csv"
echo "| server | proto | op | P | ops/s | p50 µs | p99 µs | server CPU % | ops per server-CPU-s | × best peer (ops/CPU-s) |"
echo "|---|---|---|---|---|---|---|---|---|---|"
# Median round per (server, proto, op, P) by ops/s; then the ratio of ops per server-CPU-second to
# the best non-ferrite server on the same (proto, op, P).
tail -n +2 "$csv" | sort -t, -k1,1 -k2,2 -k3,3 -k4,4n -k6,6n | awk -F, '
    { key = $1 FS $2 FS $3 FS $4; rows[key, ++count[key]] = $0; if (!(key in seen)) { seen[key] = 1; order[++keys] = key } }
    END {
        for (i = 1; i <= keys; i++) {
            key = order[i]; split(rows[key, int((count[key] + 1) / 2)], f, ",")
            efficiency = f[9] > 0 ? f[6] / (f[9] / 100) : 0
            median[key] = f[6] FS f[7] FS f[8] FS f[9] FS efficiency
            cell = f[2] FS f[3] FS f[4]
            if (f[1] !~ /^(ferrite|null)/ && efficiency > best[cell]) best[cell] = efficiency
        }
        for (i = 1; i <= keys; i++) {
            key = order[i]; split(key, k, ","); split(median[key], m, ",")
            cell = k[2] FS k[3] FS k[4]
            ratio = best[cell] > 0 ? sprintf("%.2f", m[5] / best[cell]) : "-"
            printf "| %s | %s | %s | %s | %.0f | %.0f | %.0f | %.0f | %.0f | %s |\n", k[1], k[2], k[3], k[4], m[1], m[2], m[3], m[4], m[5], ratio
        }
    }'
