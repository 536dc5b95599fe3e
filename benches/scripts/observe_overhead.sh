#!/usr/bin/env bash
# What observability costs: one ferrite with --observability on (latency histograms, slow log
# check, hot-key sampling, anomaly windows, the /metrics endpoint scraped once a second) and one with
# it off (no clock read, no histogram, no sketch, no endpoint), both one shard (--threads 1), driven
# in the same run by the project's loadgen at pipeline depth P=1, rounds alternating between the two
# (the order flips every round). Prints the median over REPEAT rounds of ops/s, p50/p99 and server
# CPU per operation (utime + stime from /proc over the run, divided by the requests), and the
# overhead of "on" against "off".
#
# usage: bash benches/scripts/observe_overhead.sh     (from the repo root; builds release first)
# knobs (env): REPEAT OPS REQUESTS CONNS KEYSPACE VALUE PIPELINE PROTO
# Both servers listen on 127.0.0.1 on free ports and are stopped by their PIDs.
NAME=observe_overhead
# shellcheck source=common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
REPEAT=${REPEAT:-7}
OPS=${OPS:-"get set"}
REQUESTS=${REQUESTS:-200000}
CONNS=${CONNS:-50}
KEYSPACE=${KEYSPACE:-100000}
VALUE=${VALUE:-100}
PIPELINE=${PIPELINE:-1}
PROTO=${PROTO:-redis}
need "iproute2 curl" ss curl

declare -A port pid
metrics_port=$(free_port)
for mode in on off; do
    port[$mode]=$(free_port)
    metrics=(--metrics-port 0)
    [[ $mode == on ]] && metrics=(--metrics-port "$metrics_port")
    target/release/ferrite --bind 127.0.0.1 --port "${port[$mode]}" --memcache-port "$(free_port)" \
        --threads 1 --observability "$mode" "${metrics[@]}" >"$work/ferrite-$mode.log" 2>&1 &
    pid[$mode]=$!
    pids+=("$!")
    wait_port "${port[$mode]}"
    "$loadgen" --proto "$PROTO" --port "${port[$mode]}" --mode load --requests "$KEYSPACE" \
        --value-size "$VALUE" --conns 8 --pipeline 64 >/dev/null
done
wait_port "$metrics_port"
# A Prometheus server scrapes every few seconds; once a second is harsher.
(while sleep 1; do curl -s -o /dev/null "http://127.0.0.1:$metrics_port/metrics" || true; done) &
pids+=("$!")

csv=$work/overhead.csv
echo "mode,op,round,ops_per_s,p50_us,p99_us,server_cpu_us_per_op" >"$csv"
# utime + stime of a process, in clock ticks (/proc/PID/stat fields 14 and 15).
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
ticks_per_second=$(getconf CLK_TCK)
for round in $(seq "$REPEAT"); do
    order="on off"
    ((round % 2 == 0)) && order="off on"
    for op in $OPS; do
        for mode in $order; do
            log "round $round: $op, observability $mode"
            before=$(cpu_ticks "${pid[$mode]}")
            line=$("$loadgen" --proto "$PROTO" --port "${port[$mode]}" --mode "$op" --conns "$CONNS" \
                --pipeline "$PIPELINE" --requests "$REQUESTS" --keyspace "$KEYSPACE" --value-size "$VALUE")
            after=$(cpu_ticks "${pid[$mode]}")
            # label,proto,op,P,conns,threads,requests,wall,ops,avg,p50,p99,p999,max,hits,misses,errors,...
            awk -F, -v m="$mode" -v r="$round" -v ticks=$((after - before)) -v hz="$ticks_per_second" \
                'BEGIN{OFS=","} {print m, $3, r, $9, $11, $12, ticks * 1e6 / hz / $7}' <<<"$line" >>"$csv"
        done
    done
done

log "raw rows: $csv"
echo "| op | observability | ops/s (median) | p50 µs | p99 µs | server CPU µs per op | ops/s, on vs off | server CPU per op, on vs off |"
echo "|---|---|---|---|---|---|---|---|"
# The overhead columns are medians of the rounds' paired ratios (on and off ran back to back in
# each round), which cancel most of what the machine's other load does to a round.
tail -n +2 "$csv" | awk -F, '
    function median(list, n,   sorted, i, j, t) {
        for (i = 1; i <= n; i++) sorted[i] = list[i]
        for (i = 2; i <= n; i++) for (j = i; j > 1 && sorted[j - 1] > sorted[j]; j--) {
            t = sorted[j]; sorted[j] = sorted[j - 1]; sorted[j - 1] = t
        }
        return n % 2 ? sorted[(n + 1) / 2] : (sorted[n / 2] + sorted[n / 2 + 1]) / 2
    }
    {
        key = $2 FS $1; n = ++count[key]
        ops[key, n] = $4; p50[key, n] = $5; p99[key, n] = $6; cpu[key, n] = $7
        if (!($2 in seen)) { seen[$2] = 1; order[++ops_count] = $2 }
    }
    END {
        for (i = 1; i <= ops_count; i++) {
            op = order[i]
            for (m = 1; m <= 2; m++) {
                mode = m == 1 ? "on" : "off"; key = op FS mode; n = count[key]
                for (k = 1; k <= n; k++) { a[k] = ops[key, k]; b[k] = p50[key, k]; c[k] = p99[key, k]; d[k] = cpu[key, k] }
                o[mode] = median(a, n); q50[mode] = median(b, n); q99[mode] = median(c, n); u[mode] = median(d, n)
            }
            n = count[op FS "on"]
            for (k = 1; k <= n; k++) {
                r1[k] = ops[op FS "on", k] / ops[op FS "off", k]
                r2[k] = cpu[op FS "off", k] > 0 ? cpu[op FS "on", k] / cpu[op FS "off", k] : 1
            }
            ops_change = sprintf("%+.1f %%", (median(r1, n) - 1) * 100)
            cpu_change = sprintf("%+.1f %%", (median(r2, n) - 1) * 100)
            for (m = 1; m <= 2; m++) {
                mode = m == 1 ? "on" : "off"
                printf "| %s | %s | %.0f | %.0f | %.0f | %.2f | %s | %s |\n", op, mode, o[mode], q50[mode], q99[mode], u[mode], mode == "on" ? ops_change : "-", mode == "on" ? cpu_change : "-"
            }
        }
    }'
